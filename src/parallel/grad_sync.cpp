#include "parallel/grad_sync.hpp"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/torch.h>

#include <chrono>

#include "parallel/tensor_comm.hpp"
#include "util/error.hpp"
#include "util/random.hpp"

namespace shardgan::parallel {
namespace {

using Mode = GradCompression::Mode;

/// Whether PowerSGD compresses `p`: a matrix (rows × the rest) whose rank-r factors take less than half its elements,
/// as PyTorch's PowerSGD hook decides with its default minimum compression rate of 2.
bool compressible(const torch::Tensor& p, int64_t r) {
  if (p.dim() < 2 || !p.requires_grad()) return false;
  const int64_t n = p.size(0), m = p.numel() / std::max<int64_t>(1, n);
  return 2 * r * (n + m) < n * m;
}

}  // namespace

void GradSync::Transfer::bind(const comm::Communicator& comm, torch::Tensor tensor) {
  data = std::move(tensor);
  if (needs_staging(comm, data)) host = pinned_host_like(data);
}

void GradSync::Transfer::start(comm::Communicator& comm, comm::ReduceOp op, int64_t& bytes) {
  if (host.defined()) host.copy_(data);  // CUDA gradients to MPI: through pinned host memory
  torch::Tensor& buffer = host.defined() ? host : data;
  request = comm.allreduce_async(buffer.data_ptr(), static_cast<std::size_t>(buffer.numel()), dtype_of(buffer), op);
  bytes += buffer.numel() * static_cast<int64_t>(buffer.element_size());
}

void GradSync::Transfer::wait() {
  request->wait();
  request.reset();
  if (host.defined()) data.copy_(host);
}

GradSync::GradSync(comm::Communicator& comm, std::vector<torch::Tensor> parameters, double bucket_mb, bool overlap,
                   bool single_rank_too, GradCompression compression)
    : comm_(comm),
      parameters_(std::move(parameters)),
      compression_(compression),
      overlap_(overlap),
      active_(comm.size() > 1 || single_rank_too) {
  const auto cap = static_cast<int64_t>(std::max(1.0, bucket_mb * 1024 * 1024 / 4));  // float32 elements
  const bool powersgd = active_ && compression_.mode == Mode::kPowerSgd;
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
    buckets_.back().parameters.push_back(k);
    filled += n;
  }
  torch::NoGradGuard no_grad;
  for (std::size_t index = 0; index < buckets_.size(); ++index) {
    Bucket& b = buckets_[index];
    // PowerSGD: the parameters sent as float32 first (one contiguous prefix), then the compressed matrices.
    if (powersgd)
      std::stable_partition(b.parameters.begin(), b.parameters.end(),
                            [&](std::size_t k) { return !compressible(parameters_[k], compression_.rank); });
    int64_t total = 0, plain = 0, p_size = 0, q_size = 0;
    for (std::size_t i = 0; i < b.parameters.size(); ++i) {
      const torch::Tensor& p = parameters_[b.parameters[i]];
      bucket_of_[b.parameters[i]] = index;
      slot_in_bucket_[b.parameters[i]] = i;
      b.offsets.push_back(total);
      total += p.numel();
      if (powersgd && compressible(p, compression_.rank)) {
        p_size += p.size(0) * compression_.rank;
        q_size += p.numel() / p.size(0) * compression_.rank;
      } else {
        plain = total;
      }
    }
    const auto options = parameters_[b.parameters.front()].options().dtype(torch::kFloat32);
    b.flat = torch::zeros({total}, options);
    for (std::size_t i = 0; i < b.parameters.size(); ++i) {
      const torch::Tensor& p = parameters_[b.parameters[i]];
      if (!p.is_non_overlapping_and_dense()) fail("GradSync: a parameter whose elements overlap or have gaps");
      b.views.push_back(b.flat.narrow(0, b.offsets[i], p.numel()).as_strided(p.sizes(), p.strides()));
    }
    switch (compression_.mode) {
      case Mode::kBf16: b.whole.bind(comm_, torch::empty({total}, options.dtype(torch::kBFloat16))); break;
      case Mode::kFp16: b.whole.bind(comm_, torch::empty({total}, options.dtype(torch::kHalf))); break;
      case Mode::kNone:
      case Mode::kPowerSgd: b.whole.bind(comm_, b.flat); break;
    }
    if (p_size == 0) continue;
    if (plain > 0) b.plain.bind(comm_, b.flat.narrow(0, 0, plain));
    b.p.bind(comm_, torch::zeros({p_size}, options));
    b.q.bind(comm_, torch::zeros({q_size}, options));
    const int64_t r = compression_.rank;
    int64_t p_at = 0, q_at = 0;
    for (std::size_t i = 0; i < b.parameters.size(); ++i) {
      const std::size_t k = b.parameters[i];
      if (b.offsets[i] < plain) continue;
      LowRank lr;
      lr.parameter = k;
      lr.n = parameters_[k].size(0);
      lr.m = parameters_[k].numel() / lr.n;
      lr.error = torch::zeros({lr.n, lr.m}, options);
      lr.p = b.p.data.narrow(0, p_at, lr.n * r).view({lr.n, r});
      lr.q = b.q.data.narrow(0, q_at, lr.m * r).view({lr.m, r});
      p_at += lr.n * r;
      q_at += lr.m * r;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(rng::mix_seed(compression_.seed, k));
      lr.q_init = torch::randn({lr.m, r}, gen, torch::kFloat32).to(options.device());
      lr.q.copy_(lr.q_init);
      b.low_rank.push_back(low_rank_.size());
      low_rank_.push_back(std::move(lr));
    }
  }
  if (!buckets_.empty()) inverse_world_ = torch::full({}, 1.0 / comm_.size(), buckets_.front().flat.options());
  const auto bytes = [](const Transfer& t) {
    return t.data.defined() ? t.data.numel() * static_cast<int64_t>(t.data.element_size()) : int64_t{0};
  };
  for (const auto& b : buckets_) {
    uncompressed_bytes_ += bytes(b.whole);
    compressed_bytes_ += b.low_rank.empty() ? bytes(b.whole) : bytes(b.plain) + bytes(b.p) + bytes(b.q);
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

void GradSync::prepare(int64_t step) {
  if (!active_) return;
  compress_step_ = compression_.mode == Mode::kPowerSgd && step >= compression_.start_step;
  // .grad is the parameter's zeroed part of its bucket: autograd adds the gradient into it in place.
  for (auto& b : buckets_) {
    b.flat.zero_();
    for (std::size_t i = 0; i < b.parameters.size(); ++i) {
      torch::Tensor& grad = parameters_[b.parameters[i]].mutable_grad();
      if (!grad.defined() || !grad.is_same(b.views[i])) grad = b.views[i];
    }
    b.pending = b.parameters.size();
    b.ready = false;
    b.compressed = compress_step_ && !b.low_rank.empty();
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
    for (Transfer* t : {&buckets_[i].whole, &buckets_[i].plain, &buckets_[i].p})
      if (t->request) t->request->test();
}

void GradSync::launch_ready_buckets() {
  // Strictly in bucket order, so every rank issues the same collectives in the same order.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready) launch(buckets_[next_launch_++]);
}

void GradSync::launch(Bucket& b) {
  torch::NoGradGuard no_grad;
  if (compression_.mode == Mode::kBf16 || compression_.mode == Mode::kFp16) {
    // g / N rounded once into the half-width buffer, then summed: the average, and float16 cannot overflow where
    // float32's average would not.
    at::mul_out(b.whole.data, b.flat, inverse_world_);
    b.whole.start(comm_, comm::ReduceOp::kSum, bytes_sent_);
    return;
  }
  if (!b.compressed) {
    b.whole.start(comm_, comm::ReduceOp::kAvg, bytes_sent_);
    return;
  }
  if (b.plain.data.defined()) b.plain.start(comm_, comm::ReduceOp::kAvg, bytes_sent_);
  for (std::size_t index : b.low_rank) {
    LowRank& lr = low_rank_[index];
    const torch::Tensor& grad = b.views[slot_in_bucket_[lr.parameter]];
    lr.error.view(grad.sizes()).add_(grad);  // M = gradient + error feedback
    at::mm_out(lr.p, lr.error, lr.q);        // P = M·Q, Q from the last step
  }
  b.p.start(comm_, comm::ReduceOp::kAvg, bytes_sent_);
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
  if (compress_step_) {
    finish_low_rank();
  } else {
    for (auto& b : buckets_) {
      b.whole.wait();
      if (b.whole.data.is_same(b.flat)) continue;
      b.flat.copy_(b.whole.data);  // bf16 / fp16 back into float32 .grad
      // float16 without loss scaling: an overflow saturates instead of reaching the optimiser as inf (with loss
      // scaling the inf stays, so that the scaler skips the step and lowers the scale).
      if (compression_.mode == Mode::kFp16 && compression_.saturate) b.flat.clamp_(-65504.0, 65504.0);
    }
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++syncs_;
}

/// PowerSGD's second half, after backward: every bucket's averaged P orthogonalised and its Q = Mᵀ·P all-reduced (in
/// bucket order), then P·Qᵀ into .grad and the error feedback M − P·Qᵀ kept.
void GradSync::finish_low_rank() {
  for (auto& b : buckets_) {
    if (!b.compressed) continue;
    b.p.wait();
    for (std::size_t index : b.low_rank) {
      LowRank& lr = low_rank_[index];
      orthogonalize_columns(lr.p);
      at::mm_out(lr.q, lr.error.t(), lr.p);
    }
    b.q.start(comm_, comm::ReduceOp::kAvg, bytes_sent_);
  }
  for (auto& b : buckets_) {
    if (!b.compressed) {
      b.whole.wait();
      continue;
    }
    if (b.plain.data.defined()) b.plain.wait();
    b.q.wait();
    for (std::size_t index : b.low_rank) {
      LowRank& lr = low_rank_[index];
      const torch::Tensor approximation = torch::mm(lr.p, lr.q.t());
      torch::Tensor& grad = b.views[slot_in_bucket_[lr.parameter]];
      grad.copy_(approximation.view(grad.sizes()));
      // An inf or NaN gradient (an update fp16's loss scaling skips) must not poison the state for good: such error
      // entries restart at 0, and a non-finite or all-zero column of Q (which would stay zero) at its first draw.
      lr.error.sub_(approximation).nan_to_num_(0.0, 0.0, 0.0);
      const torch::Tensor stuck = torch::logical_not(torch::isfinite(lr.q)).logical_or(lr.q.abs().amax({0}, true) == 0);
      lr.q.copy_(torch::where(stuck, lr.q_init, lr.q));
    }
  }
}

int64_t GradSync::bytes_per_sync(int64_t step) const {
  if (!active_) return 0;
  const bool compressed = compression_.mode == Mode::kPowerSgd && step >= compression_.start_step;
  return compressed ? compressed_bytes_ : uncompressed_bytes_;
}

std::vector<std::pair<std::string, torch::Tensor>> GradSync::compression_state() const {
  std::vector<std::pair<std::string, torch::Tensor>> state;
  for (const auto& lr : low_rank_) {
    state.emplace_back("q/" + std::to_string(lr.parameter), lr.q);
    state.emplace_back("error/" + std::to_string(lr.parameter), lr.error);
  }
  return state;
}

void GradSync::reset_compression_state() {
  torch::NoGradGuard no_grad;
  for (auto& lr : low_rank_) {
    lr.q.copy_(lr.q_init);
    lr.error.zero_();
  }
}

void orthogonalize_columns(torch::Tensor& matrix) {
  torch::NoGradGuard no_grad;
  const int64_t r = matrix.size(1);
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t i = 0; i < r; ++i) {
      torch::Tensor column = matrix.narrow(1, i, 1);
      column.div_(column.norm().clamp_min(1e-30));
      if (i + 1 < r) {
        torch::Tensor rest = matrix.narrow(1, i + 1, r - i - 1);
        rest.sub_((column * rest).sum(0, /*keepdim=*/true) * column);
      }
    }
  }
}

}  // namespace shardgan::parallel
