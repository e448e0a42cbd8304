#pragma once
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "comm/communicator.hpp"

namespace shardgan::model {

/// BatchNorm whose batch statistics are all-reduced over the ranks in the forward pass (and the matching sums in
/// the backward pass), so N ranks × batch b normalise exactly like one batch of N·b. Works for [N, C] and
/// [N, C, H, W]. Parameters and buffers are named like torch::nn::BatchNorm's (weight, bias, running_mean,
/// running_var, num_batches_tracked), so checkpoints move freely between `local` and `sync`.
/// Without a communicator (or with one rank) it is plain BatchNorm.
class SyncBatchNormImpl : public torch::nn::Cloneable<SyncBatchNormImpl> {
 public:
  explicit SyncBatchNormImpl(int64_t features, double eps = 1e-5, double momentum = 0.1);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);
  /// The communicator the statistics go through (not owned; must outlive training). nullptr: local statistics.
  void set_communicator(comm::Communicator* comm) { comm_ = comm; }
  /// Weight of a new batch in the running statistics (1/(k+1) for the k-th batch gives their plain average).
  void set_momentum(double momentum) { momentum_ = momentum; }
  double momentum() const { return momentum_; }

  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  int64_t features_;
  double eps_, momentum_;
  comm::Communicator* comm_ = nullptr;
};
TORCH_MODULE(SyncBatchNorm);

}  // namespace shardgan::model
