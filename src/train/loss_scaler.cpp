#include "train/loss_scaler.hpp"

#include <torch/torch.h>

#include "util/error.hpp"

namespace shardgan::train {

namespace {
constexpr double kGrowth = 2.0;
constexpr double kBackoff = 0.5;
constexpr double kMinScale = 1.0;  ///< below 1 a loss scale only loses precision
}  // namespace

LossScaler::LossScaler(bool enabled, double initial_scale, int64_t growth_every)
    : enabled_(enabled), scale_(initial_scale), growth_every_(growth_every) {}

torch::Tensor LossScaler::scale(const torch::Tensor& loss) const {
  if (!enabled_) return loss;
  return on_device() ? loss * scale_t_.to(loss.scalar_type()) : loss * scale_;
}

torch::Tensor LossScaler::unscale_and_check(const std::vector<torch::Tensor>& parameters) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> bad;
  if (!enabled_) return torch::zeros({}, torch::kBool);
  // The same float either way: 1 / scale in double, rounded once.
  const torch::Tensor inverse = on_device() ? 1.0 / scale_t_ : torch::Tensor();
  for (const auto& p : parameters) {
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (inverse.defined()) {
      g.mul_(inverse);
    } else {
      g.mul_(1.0 / scale_);
    }
    bad.push_back(torch::isfinite(g).logical_not().any());
  }
  if (bad.empty()) return torch::zeros({}, torch::kBool);
  return torch::stack(bad).any();
}

void LossScaler::update(int skipped) {
  if (!enabled_) return;
  if (on_device()) fail("LossScaler::update on a device-mode scaler: its step ends with end_step_on_device");
  if (skipped > 0) {
    host_skips_ += skipped;
    scale_ = std::max(kMinScale, scale_ * kBackoff);
    good_steps_ = 0;
  } else if (++good_steps_ >= growth_every_) {
    scale_ *= kGrowth;
    good_steps_ = 0;
  }
}

void LossScaler::restore(double scale, int64_t good_steps) {
  if (!(scale >= kMinScale) || good_steps < 0)
    fail("invalid loss scale state: scale ", scale, ", good steps ", good_steps);
  scale_ = scale;
  good_steps_ = good_steps;
  if (on_device()) {
    scale_t_.fill_(scale);
    good_steps_t_.fill_(static_cast<double>(good_steps));
  }
}

double LossScaler::value() const {
  return on_device() ? scale_t_.item<double>() : scale_;
}

int64_t LossScaler::good_steps() const {
  return on_device() ? static_cast<int64_t>(good_steps_t_.item<double>()) : good_steps_;
}

void LossScaler::to_device(torch::Device device) {
  if (!enabled_) fail("LossScaler::to_device on a disabled scaler");
  const auto options = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  scale_t_ = torch::full({}, scale_, options);
  good_steps_t_ = torch::full({}, static_cast<double>(good_steps_), options);
  step_skipped_ = torch::zeros({}, options);
  skips_ = torch::zeros({}, options);
}

void LossScaler::note_update(const torch::Tensor& skipped) {
  step_skipped_.add_(skipped);
  skips_.add_(skipped);
}

void LossScaler::end_step_on_device() {
  torch::NoGradGuard no_grad;
  // update(skipped) with tensors: halve (not below kMinScale) and start counting again on a skip; otherwise count the
  // step and double after growth_every_ good ones. In place: a CUDA graph reads and writes the same memory.
  const torch::Tensor skipped = step_skipped_ > 0;
  const torch::Tensor good = torch::where(skipped, torch::zeros_like(good_steps_t_), good_steps_t_ + 1);
  const torch::Tensor grow = good >= static_cast<double>(growth_every_);
  const torch::Tensor backed_off = (scale_t_ * kBackoff).clamp_min(kMinScale);
  scale_t_.copy_(torch::where(skipped, backed_off, torch::where(grow, scale_t_ * kGrowth, scale_t_)));
  good_steps_t_.copy_(torch::where(grow, torch::zeros_like(good), good));
  step_skipped_.zero_();
}

int64_t LossScaler::take_skips() {
  int64_t n = host_skips_;
  host_skips_ = 0;
  if (on_device()) {
    n += static_cast<int64_t>(skips_.item<double>());
    skips_.zero_();
  }
  return n;
}

}  // namespace shardgan::train
