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
///
/// Under runtime.cuda_graphs (`to_device`) the same rules run as device work that a graph can hold, as GradScaler's
/// capturable form does: the scale and the count of good steps live in device tensors, each update's verdict is a
/// device flag (0 or 1) that the optimizer step obeys (`note_update`), and `end_step_on_device` applies the halving
/// and doubling. The host reads value(), good_steps() and take_skips() only when it logs or checkpoints.
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
  /// End of a training step in host mode: `skipped` updates of the step were skipped (0: none). A device-mode
  /// scaler ends its steps with end_step_on_device instead (calling this one is an error).
  void update(int skipped);

  /// From now on the state lives on `device` (runtime.cuda_graphs); enabled scalers only.
  void to_device(torch::Device device);
  bool on_device() const { return scale_t_.defined(); }
  /// Device mode: one update's agreed verdict (float32 scalar, 1: skipped), counted for this step and the log.
  void note_update(const torch::Tensor& skipped);
  /// Device mode: the end of a training step (the rule of `update`, on the device, from the noted verdicts).
  void end_step_on_device();
  /// Updates skipped since the last call, in either mode (device mode: reads the device).
  int64_t take_skips();

  double value() const;
  int64_t good_steps() const;
  /// From a checkpoint.
  void restore(double scale, int64_t good_steps);

 private:
  bool enabled_;
  double scale_;
  int64_t growth_every_;
  int64_t good_steps_ = 0;
  int64_t host_skips_ = 0;  ///< host mode: updates skipped since take_skips
  torch::Tensor scale_t_, good_steps_t_, step_skipped_, skips_;  ///< device mode (float64 scalars)
};

}  // namespace shardgan::train
