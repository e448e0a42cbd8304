#pragma once
// Collectives on tensors: the one place that turns a tensor into (pointer, count, DType) and stages it when the
// communicator cannot take its memory (CUDA tensors over MPI go through pinned host memory). Call sites pass
// tensors and say nothing about dtypes, layouts or devices.
#include <torch/types.h>

#include "comm/communicator.hpp"

namespace shardgan::parallel {

/// The communicator DType of `t`'s scalar type (float32, float64, bfloat16, float16, int64, uint8); Error otherwise.
comm::DType dtype_of(const torch::Tensor& t);

/// Whether `t` must go through host memory to reach `comm`: a CUDA tensor and a host-memory-only backend.
inline bool needs_staging(const comm::Communicator& comm, const torch::Tensor& t) {
  return t.is_cuda() && !comm.device_memory();
}

/// A host copy of `t` in pinned (page-locked) memory, for fast device↔host copies.
inline torch::Tensor pinned_host_like(const torch::Tensor& t) {
  return torch::empty(t.sizes(), t.options().device(torch::kCPU).pinned_memory(true));
}

/// In-place all-reduce of `t` (any device, any layout, a dtype of dtype_of).
void allreduce(comm::Communicator& comm, const torch::Tensor& t, comm::ReduceOp op);

/// Every rank's `t` (the same shape on every rank), stacked in rank order: [size(), t's shape...] on t's device.
torch::Tensor allgather(comm::Communicator& comm, const torch::Tensor& t);

/// Copies `root`'s `t` into every rank's `t`. Any dtype: one the communicator has no DType for goes as float64.
void broadcast(comm::Communicator& comm, const torch::Tensor& t, int root);

}  // namespace shardgan::parallel
