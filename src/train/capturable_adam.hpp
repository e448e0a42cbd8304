#pragma once
#include <torch/optim/adam.h>
#include <torch/types.h>

#include <vector>

namespace shardgan::train {

/// Adam's update as device work only, so that it can be captured in a CUDA graph. LibTorch's torch::optim::Adam
/// keeps the step count on the host and computes the bias corrections 1 - β^t there: a captured update would replay
/// step t's corrections forever. This one updates the same state (the optimizer's AdamParamState: exp_avg,
/// exp_avg_sq; created as LibTorch creates it when missing) with the count in a device tensor, which
/// `store_host_step` copies into the host's count that checkpoints save. A checkpoint written in either mode
/// therefore resumes in either. fp16 loss scaling passes each update's verdict: a skipped update changes nothing. On
/// CUDA the update is LibTorch's fused Adam kernel (one launch for all parameters): the trainer uses it for every CUDA
/// run, eager or graphed; elsewhere it is Adam's arithmetic per parameter, in LibTorch's order of operations (bit for
/// bit LibTorch's on the CPU, where eager runs keep torch::optim::Adam itself). Moments in another layout than their
/// parameter's (a checkpoint from a run without runtime.channels_last) are given the parameter's.
///
/// Every parameter must have a gradient at every step (true of the GAN models here), and the options must be those
/// the trainer uses (no weight decay, no AMSGrad, one parameter group); anything else fails here.
class CapturableAdam {
 public:
  explicit CapturableAdam(torch::optim::Adam& optimizer);
  /// One update from the parameters' .grad (device work only). `skip` (optional float32 scalar on the device, 0 or
  /// 1): when 1 nothing changes, the count included.
  void step(const torch::Tensor& skip = {});
  /// The device's count into the host's state (before a checkpoint is written; waits for the device).
  void store_host_step();
  /// The device's count (tests).
  int64_t device_step() const;

 private:
  std::vector<torch::Tensor> params_, exp_avgs_, exp_avg_sqs_;
  std::vector<torch::optim::AdamParamState*> states_;
  torch::Tensor step_;  ///< float32 (the fused kernel's type) on CUDA, float64 elsewhere
  double lr_, beta1_, beta2_, eps_;
  bool fused_;
};

}  // namespace shardgan::train
