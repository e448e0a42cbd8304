#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace shardgan::train {

/// Dynamic loss scaling for fp16 training, with the rules of PyTorch's GradScaler: a loss is multiplied by the
/// scale before its backward pass so that small fp16 gradients do not flush to zero; after the gradients have been
/// averaged over the ranks they are divided by the scale and checked, and an update whose gradients hold an inf or
/// a NaN is skipped. Once per training step (after D's and G's updates) the scale is halved if either update was
/// skipped, and doubled after `growth_every` steps in a row without one. One scaler serves both networks, as one
/// GradScaler does in PyTorch's GAN recipes. The scale and the count of good steps are part of a checkpoint.
/// Disabled (fp32, bf16), every call passes through and every gradient counts as finite.
class LossScaler {
 public:
  LossScaler(bool enabled, double initial_scale, int64_t growth_every);

  bool enabled() const { return enabled_; }
  /// `loss` times the scale (`loss` itself when disabled).
  torch::Tensor scale(const torch::Tensor& loss) const;
  /// Divides the defined gradients of `parameters` by the scale, in place, and returns (on their device, without
  /// waiting for it) a boolean scalar: whether any element is inf or NaN. This is this rank's verdict: the trainer
  /// reads it under the watchdog and all-reduces it, so that every rank skips the same updates.
  torch::Tensor unscale_and_check(const std::vector<torch::Tensor>& parameters) const;
  /// End of a training step: `skipped` says whether any update of the step was skipped.
  void update(bool skipped);

  double value() const { return scale_; }
  int64_t good_steps() const { return good_steps_; }
  /// From a checkpoint.
  void restore(double scale, int64_t good_steps);

 private:
  bool enabled_;
  double scale_;
  int64_t growth_every_;
  int64_t good_steps_ = 0;
};

}  // namespace shardgan::train
