#include "train/capturable_adam.hpp"

#include <torch/torch.h>

#include <sstream>
#include <string>
#include <type_traits>

#include "util/error.hpp"

namespace shardgan::train {
namespace {

/// The key of `p`'s state in Optimizer::state(): its TensorImpl's address, as text in LibTorch 1.13 and as the
/// pointer itself from 2.0 on.
template <typename Map>
typename Map::key_type state_key(const Map&, const torch::Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream text;  // c10::guts::to_string of the pointer, as 1.13's optimizers write it
    text << p.unsafeGetTensorImpl();
    return text.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

}  // namespace

CapturableAdam::CapturableAdam(torch::optim::Adam& optimizer) {
  if (optimizer.param_groups().size() != 1) fail("CapturableAdam: one parameter group expected");
  auto& group = optimizer.param_groups().front();
  const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
  if (options.weight_decay() != 0 || options.amsgrad())
    fail("CapturableAdam: weight decay and AMSGrad are not supported");
  lr_ = options.lr();
  std::tie(beta1_, beta2_) = options.betas();
  eps_ = options.eps();
  params_ = group.params();
  if (params_.empty()) fail("CapturableAdam: no parameters");
  auto& state = optimizer.state();
  int64_t step = -1;
  torch::NoGradGuard no_grad;
  for (const auto& p : params_) {
    auto& slot = state[state_key(state, p)];
    if (!slot) {  // as torch::optim::Adam::step creates it
      auto fresh = std::make_unique<torch::optim::AdamParamState>();
      fresh->step(0);
      fresh->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
      fresh->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
      slot = std::move(fresh);
    }
    auto* s = static_cast<torch::optim::AdamParamState*>(slot.get());
    // The fused kernel wants the moments in their parameter's layout (it refuses others); a checkpoint written
    // without runtime.channels_last holds contiguous ones for a channels-last parameter: same values, new strides.
    const auto in_layout_of_p = [&p](const torch::Tensor& moment) {
      return moment.strides().equals(p.strides()) ? moment
                                                  : torch::empty_like(p, at::MemoryFormat::Preserve).copy_(moment);
    };
    s->exp_avg(in_layout_of_p(s->exp_avg()));
    s->exp_avg_sq(in_layout_of_p(s->exp_avg_sq()));
    if (step >= 0 && s->step() != step)
      fail("CapturableAdam: the parameters' step counts differ (", step, " and ", s->step(), ")");
    step = s->step();
    states_.push_back(s);
    exp_avgs_.push_back(s->exp_avg());
    exp_avg_sqs_.push_back(s->exp_avg_sq());
  }
  fused_ = params_.front().is_cuda();
  step_ = torch::full({}, static_cast<double>(step),
                      params_.front().options().dtype(fused_ ? torch::kFloat32 : torch::kFloat64));
}

void CapturableAdam::step(const torch::Tensor& skip) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  grads.reserve(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    grads.push_back(params_[i].grad());
    if (!grads.back().defined()) fail("CapturableAdam: parameter ", i, " has no gradient");
  }
  if (skip.defined()) {
    step_.add_(1 - skip.to(step_.scalar_type()));
  } else {
    step_.add_(1);
  }
  if (fused_) {
    // The kernel reads the count (it does not advance it): one tensor serves every parameter. It returns at once
    // when found_inf is 1.
    const std::vector<torch::Tensor> steps(params_.size(), step_);
    // Two calls instead of naming the optional type: 1.13's is c10::optional (no conversion from std::optional),
    // 2.15 hides c10::optional under C10_NODEPRECATED; {} and a tensor convert to either.
    if (skip.defined()) {
      at::_fused_adam_(params_, grads, exp_avgs_, exp_avg_sqs_, /*max_exp_avg_sqs=*/{}, steps, lr_, beta1_, beta2_,
                       /*weight_decay=*/0.0, eps_, /*amsgrad=*/false, /*maximize=*/false, /*grad_scale=*/{},
                       /*found_inf=*/skip);
    } else {
      at::_fused_adam_(params_, grads, exp_avgs_, exp_avg_sqs_, /*max_exp_avg_sqs=*/{}, steps, lr_, beta1_, beta2_,
                       /*weight_decay=*/0.0, eps_, /*amsgrad=*/false, /*maximize=*/false);
    }
    return;
  }
  // torch::optim::Adam::step's operations, in its order, with t, the bias corrections and the step size as device
  // scalars; out of place, so that a skipped update keeps the old values.
  const torch::Tensor bias_correction1 = 1 - torch::pow(beta1_, step_);
  const torch::Tensor bias_correction2_sqrt = (1 - torch::pow(beta2_, step_)).sqrt();
  const torch::Tensor minus_step_size = -lr_ / bias_correction1;
  const torch::Tensor skipped = skip.defined() ? skip > 0 : torch::Tensor();
  const auto store = [&](torch::Tensor& into, const torch::Tensor& updated) {
    into.copy_(skipped.defined() ? torch::where(skipped, into, updated) : updated);
  };
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor m = (exp_avgs_[i] * beta1_).add_(grads[i], 1 - beta1_);
    const torch::Tensor v = (exp_avg_sqs_[i] * beta2_).addcmul_(grads[i], grads[i], 1 - beta2_);
    const torch::Tensor denom = (v.sqrt() / bias_correction2_sqrt).add_(eps_);
    // addcdiv_(exp_avg, denom, value) computes value · exp_avg / denom, in that order.
    store(params_[i], params_[i] + m * minus_step_size / denom);
    store(exp_avgs_[i], m);
    store(exp_avg_sqs_[i], v);
  }
}

void CapturableAdam::store_host_step() {
  const int64_t t = device_step();
  for (auto* s : states_) s->step(t);
}

int64_t CapturableAdam::device_step() const {
  return static_cast<int64_t>(step_.item<double>());
}

}  // namespace shardgan::train
