#include "parallel/tensor_comm.hpp"

#include <torch/torch.h>

#include <optional>

#include "util/error.hpp"

namespace shardgan::parallel {
namespace {

std::optional<comm::DType> maybe_dtype(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return comm::DType::kFloat32;
    case torch::kFloat64: return comm::DType::kFloat64;
    case torch::kBFloat16: return comm::DType::kBFloat16;
    case torch::kHalf: return comm::DType::kFloat16;
    case torch::kInt64: return comm::DType::kInt64;
    case torch::kUInt8: return comm::DType::kUInt8;
    default: return std::nullopt;
  }
}

/// A contiguous tensor with `t`'s values in memory `comm` can take: `t` itself when it already is one.
torch::Tensor communicable(const comm::Communicator& comm, const torch::Tensor& t) {
  if (needs_staging(comm, t)) return pinned_host_like(t).copy_(t);
  return t.contiguous();
}

}  // namespace

comm::DType dtype_of(const torch::Tensor& t) {
  if (auto type = maybe_dtype(t.scalar_type())) return *type;
  fail("a collective on a ", t.scalar_type(),
       " tensor: supported are float32, float64, bfloat16, float16, int64, uint8");
}

void allreduce(comm::Communicator& comm, const torch::Tensor& t, comm::ReduceOp op) {
  const comm::DType type = dtype_of(t);
  torch::NoGradGuard no_grad;
  const torch::Tensor buffer = communicable(comm, t);
  comm.allreduce(buffer.data_ptr(), static_cast<std::size_t>(buffer.numel()), type, op);
  if (!buffer.is_same(t)) t.copy_(buffer);
}

torch::Tensor allgather(comm::Communicator& comm, const torch::Tensor& t) {
  torch::NoGradGuard no_grad;
  const torch::Tensor send = communicable(comm, t);
  std::vector<int64_t> shape{comm.size()};
  shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
  const torch::Tensor recv = torch::empty(shape, send.options().pinned_memory(false));
  comm.allgather(send.data_ptr(), recv.data_ptr(), static_cast<std::size_t>(send.numel()), dtype_of(send));
  return recv.to(t.device());
}

void broadcast(comm::Communicator& comm, const torch::Tensor& t, int root) {
  torch::NoGradGuard no_grad;
  const bool native = maybe_dtype(t.scalar_type()).has_value();
  const torch::Tensor typed = native ? t : t.to(torch::kFloat64);
  const torch::Tensor buffer = communicable(comm, typed);
  comm.broadcast(buffer.data_ptr(), static_cast<std::size_t>(buffer.numel()), dtype_of(buffer), root);
  if (!buffer.is_same(t)) t.copy_(buffer);
}

}  // namespace shardgan::parallel
