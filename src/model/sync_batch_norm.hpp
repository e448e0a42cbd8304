#pragma once
#include <torch/arg.h>
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
struct SyncBatchNormOptions {
  /* implicit */ SyncBatchNormOptions(int64_t features) : features_(features) {}  // NOLINT: as BatchNormOptions
  TORCH_ARG(int64_t, features);
  TORCH_ARG(double, eps) = 1e-5;
  /// Weight of a new batch in the running statistics.
  TORCH_ARG(double, momentum) = 0.1;
};

class SyncBatchNormImpl : public torch::nn::Cloneable<SyncBatchNormImpl> {
 public:
  explicit SyncBatchNormImpl(const SyncBatchNormOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);
  /// The communicator the statistics go through (not owned; must outlive training). nullptr: local statistics.
  void set_communicator(comm::Communicator* comm) { comm_ = comm; }
  /// Weight of a new batch in the running statistics (1/(k+1) for the k-th batch gives their plain average).
  void set_momentum(double momentum) { options.momentum(momentum); }
  double momentum() const { return options.momentum(); }

  SyncBatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  comm::Communicator* comm_ = nullptr;
};
TORCH_MODULE(SyncBatchNorm);

}  // namespace shardgan::model
