#pragma once
#include <torch/types.h>

#include <vector>

#include "comm/communicator.hpp"

namespace shardgan::parallel {

/// Keeps one model identical on every rank: broadcasts parameters and buffers from rank 0 at the start, and averages
/// gradients after each backward pass through one flat buffer (one all-reduce per model per step, fixed order).
/// Buffers on CUDA go through the communicator directly (NCCL); CPU tensors through MPI.
class GradSync {
 public:
  GradSync(comm::Communicator& comm, std::vector<torch::Tensor> parameters);

  /// Copies rank 0's values of `tensors` to every rank (parameters and buffers at start and after resume).
  void broadcast(const std::vector<torch::Tensor>& tensors);
  /// Replaces every parameter's gradient by its average over the ranks (missing gradients count as zero).
  void average_gradients();

 private:
  comm::Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  torch::Tensor flat_;
};

}  // namespace shardgan::parallel
