#pragma once
#include <torch/torch.h>

#include <cstdint>

#include "train/step.hpp"

namespace shardgan::train {

/// Means of the logged quantities since the last log row, summed on the device (no device-to-host copy per step).
class LossMeter {
 public:
  void add(const StepLosses& l) {
    const torch::Tensor values =
        torch::stack({l.d.detach(), l.g.detach(), l.d_real, l.d_fake, l.grad_norm_d, l.grad_norm_g}).to(torch::kFloat64);
    sum_ = sum_.defined() ? sum_ + values : values;
    ++n_;
  }
  /// [loss_d, loss_g, d_real, d_fake, grad_norm_d, grad_norm_g] averaged over the steps since the last call, on the CPU; starts over.
  torch::Tensor take_mean() {
    torch::Tensor mean = (sum_ / static_cast<double>(n_)).to(torch::kCPU).contiguous();
    sum_ = torch::Tensor();
    n_ = 0;
    return mean;
  }
  int64_t count() const { return n_; }

 private:
  torch::Tensor sum_;
  int64_t n_ = 0;
};

}  // namespace shardgan::train
