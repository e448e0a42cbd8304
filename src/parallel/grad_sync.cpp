#include "parallel/grad_sync.hpp"

#include <torch/torch.h>

namespace shardgan::parallel {

GradSync::GradSync(comm::Communicator& comm, std::vector<torch::Tensor> parameters)
    : comm_(comm), parameters_(std::move(parameters)) {
  int64_t total = 0;
  for (const auto& p : parameters_) total += p.numel();
  if (!parameters_.empty()) flat_ = torch::zeros({total}, parameters_.front().options().dtype(torch::kFloat32));
}

void GradSync::broadcast(const std::vector<torch::Tensor>& tensors) {
  if (comm_.size() == 1) return;
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    torch::Tensor c = t.contiguous();
    if (c.scalar_type() == torch::kFloat32) {
      comm_.broadcast(c.data_ptr(), static_cast<std::size_t>(c.numel()), comm::DType::kFloat32, 0);
    } else if (c.scalar_type() == torch::kInt64) {
      comm_.broadcast(c.data_ptr(), static_cast<std::size_t>(c.numel()), comm::DType::kInt64, 0);
    } else {
      torch::Tensor f = c.to(torch::kFloat64);
      comm_.broadcast(f.data_ptr(), static_cast<std::size_t>(f.numel()), comm::DType::kFloat64, 0);
      c.copy_(f);
    }
    if (!c.is_same(t)) t.copy_(c);
  }
}

void GradSync::average_gradients() {
  if (comm_.size() == 1 || !flat_.defined()) return;
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const auto& p : parameters_) {
    auto slice = flat_.narrow(0, offset, p.numel());
    if (p.grad().defined()) {
      slice.copy_(p.grad().reshape({-1}));
    } else {
      slice.zero_();
    }
    offset += p.numel();
  }
  comm_.allreduce(flat_.data_ptr(), static_cast<std::size_t>(flat_.numel()), comm::DType::kFloat32,
                  comm::ReduceOp::kAvg);
  offset = 0;
  for (auto& p : parameters_) {
    auto slice = flat_.narrow(0, offset, p.numel()).view(p.sizes());
    if (p.grad().defined()) {
      p.mutable_grad().copy_(slice);
    } else {
      p.mutable_grad() = slice.clone();
    }
    offset += p.numel();
  }
}

}  // namespace shardgan::parallel
