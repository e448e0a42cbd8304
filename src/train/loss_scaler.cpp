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
  return enabled_ ? loss * scale_ : loss;
}

torch::Tensor LossScaler::unscale_and_check(const std::vector<torch::Tensor>& parameters) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> bad;
  for (const auto& p : parameters) {
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (enabled_) g.mul_(1.0 / scale_);
    if (enabled_) bad.push_back(torch::isfinite(g).logical_not().any());
  }
  if (bad.empty()) return torch::zeros({}, torch::kBool);
  return torch::stack(bad).any();
}

void LossScaler::update(bool skipped) {
  if (!enabled_) return;
  if (skipped) {
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
}

}  // namespace shardgan::train
