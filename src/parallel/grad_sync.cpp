#include "parallel/grad_sync.hpp"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/torch.h>

#include <chrono>

#include "parallel/tensor_comm.hpp"
#include "util/error.hpp"

namespace shardgan::parallel {

GradSync::GradSync(comm::Communicator& comm, std::vector<torch::Tensor> parameters, double bucket_mb, bool overlap,
                   bool single_rank_too)
    : comm_(comm), parameters_(std::move(parameters)), overlap_(overlap), active_(comm.size() > 1 || single_rank_too) {
  const auto cap = static_cast<int64_t>(std::max(1.0, bucket_mb * 1024 * 1024 / 4));  // float32 elements
  bucket_of_.resize(parameters_.size());
  slot_in_bucket_.resize(parameters_.size());
  received_.assign(parameters_.size(), 0);
  int64_t filled = 0;
  for (std::size_t k = parameters_.size(); k-- > 0;) {
    const int64_t n = parameters_[k].numel();
    if (buckets_.empty() || (filled > 0 && filled + n > cap)) {
      buckets_.emplace_back();
      filled = 0;
    }
    Bucket& b = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    slot_in_bucket_[k] = b.parameters.size();
    b.parameters.push_back(k);
    b.offsets.push_back(filled);
    filled += n;
  }
  for (auto& b : buckets_) {
    int64_t total = 0;
    for (std::size_t k : b.parameters) total += parameters_[k].numel();
    b.flat = torch::zeros({total}, parameters_[b.parameters.front()].options().dtype(torch::kFloat32));
    if (needs_staging(comm_, b.flat)) b.host = pinned_host_like(b.flat);
    for (std::size_t i = 0; i < b.parameters.size(); ++i) {
      const torch::Tensor& p = parameters_[b.parameters[i]];
      if (!p.is_non_overlapping_and_dense()) fail("GradSync: a parameter whose elements overlap or have gaps");
      b.views.push_back(b.flat.narrow(0, b.offsets[i], p.numel()).as_strided(p.sizes(), p.strides()));
    }
  }
  if (active_) {
    for (std::size_t k = 0; k < parameters_.size(); ++k) {
      if (!parameters_[k].requires_grad()) continue;
      auto accumulator = torch::autograd::impl::grad_accumulator(parameters_[k]);
      const uintptr_t key = accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [this, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
            on_accumulated(k);
            return outputs;
          }));
      hooks_.emplace_back(std::move(accumulator), key);
    }
  }
}

GradSync::~GradSync() {
  for (auto& [accumulator, key] : hooks_) accumulator->del_post_hook(key);
}

void GradSync::broadcast(const std::vector<torch::Tensor>& tensors) {
  if (comm_.size() == 1) return;
  for (const auto& t : tensors) parallel::broadcast(comm_, t, 0);
}

void GradSync::prepare() {
  if (!active_) return;
  // .grad is the parameter's zeroed part of its bucket: autograd adds the gradient into it in place.
  for (auto& b : buckets_) {
    b.flat.zero_();
    for (std::size_t i = 0; i < b.parameters.size(); ++i) {
      torch::Tensor& grad = parameters_[b.parameters[i]].mutable_grad();
      if (!grad.defined() || !grad.is_same(b.views[i])) grad = b.views[i];
    }
    b.pending = b.parameters.size();
    b.ready = false;
    b.request.reset();
  }
  std::fill(received_.begin(), received_.end(), 0);
  next_launch_ = 0;
  armed_ = true;
}

void GradSync::on_accumulated(std::size_t parameter) {
  if (!armed_) return;  // a backward this object does not synchronise (e.g. D's gradients during the G step)
  if (received_[parameter]) fail("GradSync: parameter ", parameter, " received two gradients in one backward");
  received_[parameter] = 1;
  Bucket& b = buckets_[bucket_of_[parameter]];
  torch::Tensor& view = b.views[slot_in_bucket_[parameter]];
  torch::Tensor& grad = parameters_[parameter].mutable_grad();
  if (!grad.is_same(view)) {  // autograd replaced .grad instead of adding into it: copy, and point .grad back
    torch::NoGradGuard no_grad;
    view.copy_(grad);
    grad = view;
    ++copies_;
  }
  if (--b.pending == 0) b.ready = true;
  if (overlap_) launch_ready_buckets();
  // Let the backend progress the buckets in flight while backward continues.
  for (std::size_t i = 0; i < next_launch_; ++i)
    if (buckets_[i].request) buckets_[i].request->test();
}

void GradSync::launch_ready_buckets() {
  // Strictly in bucket order, so every rank issues the same collectives in the same order.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready) {
    Bucket& b = buckets_[next_launch_];
    if (b.host.defined()) b.host.copy_(b.flat);  // CUDA gradients to MPI: through pinned host memory
    torch::Tensor& buffer = b.host.defined() ? b.host : b.flat;
    b.request = comm_.allreduce_async(buffer.data_ptr(), static_cast<std::size_t>(buffer.numel()),
                                      comm::DType::kFloat32, comm::ReduceOp::kAvg);
    ++next_launch_;
  }
}

void GradSync::finish() {
  if (!active_) return;
  if (!armed_) fail("GradSync::finish without prepare() before the backward pass");
  armed_ = false;
  torch::NoGradGuard no_grad;
  for (std::size_t k = 0; k < parameters_.size(); ++k) {
    if (received_[k]) continue;  // no gradient this backward: its part of the bucket stays zero
    Bucket& b = buckets_[bucket_of_[k]];
    if (--b.pending == 0) b.ready = true;
  }
  launch_ready_buckets();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& b : buckets_) {
    b.request->wait();
    if (b.host.defined()) b.flat.copy_(b.host);
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& b : buckets_) b.request.reset();
}

}  // namespace shardgan::parallel
