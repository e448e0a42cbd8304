#pragma once
#include <torch/types.h>

#include <cstring>

#include "comm/communicator.hpp"

namespace shardgan::parallel {

/// Whether `t` must go through host memory to reach `comm`: CUDA tensors with the MPI backend (Open MPI from Debian
/// is not CUDA-aware). NCCL takes device memory directly; CPU tensors go to MPI as they are.
inline bool needs_staging(const comm::Communicator& comm, const torch::Tensor& t) {
  return t.is_cuda() && std::strcmp(comm.backend(), "mpi") == 0;
}

/// A host copy of `t` in pinned (page-locked) memory, for fast device↔host copies.
inline torch::Tensor pinned_host_like(const torch::Tensor& t) {
  return torch::empty(t.sizes(), t.options().device(torch::kCPU).pinned_memory(true));
}

}  // namespace shardgan::parallel
