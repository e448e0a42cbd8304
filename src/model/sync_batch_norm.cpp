#include "model/sync_batch_norm.hpp"

#include <torch/autograd.h>
#include <torch/torch.h>

#include "parallel/staging.hpp"

namespace shardgan::model {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

/// Sums `t` (float64, contiguous, on CPU or the communicator's device) over the ranks in place. Statistics are kept
/// in float64 so that the single-pass variance E[x²] − E[x]² loses nothing against a one-rank BatchNorm.
void all_sum(comm::Communicator* comm, Tensor& t) {
  if (parallel::needs_staging(*comm, t)) {
    Tensor host = t.to(torch::kCPU);
    comm->allreduce(host.data_ptr(), static_cast<std::size_t>(host.numel()), comm::DType::kFloat64,
                    comm::ReduceOp::kSum);
    t.copy_(host);
    return;
  }
  comm->allreduce(t.data_ptr(), static_cast<std::size_t>(t.numel()), comm::DType::kFloat64, comm::ReduceOp::kSum);
}

/// Reduces over every dimension but the channel one (1).
std::vector<int64_t> reduce_dims(const Tensor& x) {
  std::vector<int64_t> dims = {0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

std::vector<int64_t> channel_shape(const Tensor& x) {
  std::vector<int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
  shape[1] = x.size(1);
  return shape;
}

struct SyncBatchNormFn : torch::autograd::Function<SyncBatchNormFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        Tensor running_mean, Tensor running_var, double eps, double momentum, int64_t comm_address) {
    auto* comm = reinterpret_cast<comm::Communicator*>(comm_address);
    const Tensor xd = x.to(torch::kFloat64);
    const auto dims = reduce_dims(xd);
    const int64_t channels = x.size(1);
    // [sum (C), sum of squares (C), count (1)] summed over ranks in one all-reduce.
    Tensor stats = torch::cat({xd.sum(dims), (xd * xd).sum(dims),
                               torch::full({1}, static_cast<double>(xd.numel() / channels), xd.options())})
                       .contiguous();
    all_sum(comm, stats);
    const Tensor count = stats.narrow(0, 2 * channels, 1);
    const Tensor mean_d = stats.narrow(0, 0, channels) / count;
    const Tensor var_d = (stats.narrow(0, channels, channels) / count - mean_d * mean_d).clamp_min(0);
    const Tensor mean = mean_d.to(torch::kFloat32), var = var_d.to(torch::kFloat32);
    const Tensor invstd = (var_d + eps).rsqrt().to(torch::kFloat32);
    const Tensor xf = x.to(torch::kFloat32);
    {
      torch::NoGradGuard no_grad;
      const double n = count.item<double>();
      running_mean.mul_(1 - momentum).add_(mean * momentum);
      running_var.mul_(1 - momentum).add_(var * (n / std::max(n - 1, 1.0)) * momentum);
    }
    const auto shape = channel_shape(x);
    const Tensor xhat = (xf - mean.view(shape)) * invstd.view(shape);
    ctx->save_for_backward({xhat, invstd, weight, count});
    ctx->saved_data["comm"] = comm_address;
    return (xhat * weight.view(shape) + bias.view(shape)).to(x.scalar_type());
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &xhat = saved[0], &invstd = saved[1], &weight = saved[2], &count = saved[3];
    auto* comm = reinterpret_cast<comm::Communicator*>(ctx->saved_data["comm"].toInt());
    const Tensor dy = grads[0].to(torch::kFloat32);
    const auto dims = reduce_dims(dy);
    const int64_t channels = dy.size(1);
    const Tensor sum_dy_local = dy.sum(dims);
    const Tensor sum_dy_xhat_local = (dy * xhat).sum(dims);
    // The statistics depended on every rank's inputs: the input gradient needs the global sums.
    Tensor sums = torch::cat({sum_dy_local, sum_dy_xhat_local}).to(torch::kFloat64).contiguous();
    all_sum(comm, sums);
    const auto shape = channel_shape(dy);
    const Tensor mean_dy = (sums.narrow(0, 0, channels) / count).to(torch::kFloat32).view(shape);
    const Tensor mean_dy_xhat = (sums.narrow(0, channels, channels) / count).to(torch::kFloat32).view(shape);
    const Tensor dx = (weight * invstd).view(shape) * (dy - mean_dy - xhat * mean_dy_xhat);
    // Parameter gradients stay local: GradSync averages them like every other gradient.
    return {dx.to(grads[0].scalar_type()),
            sum_dy_xhat_local,
            sum_dy_local,
            Tensor(),
            Tensor(),
            Tensor(),
            Tensor(),
            Tensor()};
  }
};

}  // namespace

SyncBatchNormImpl::SyncBatchNormImpl(int64_t features, double eps, double momentum)
    : features_(features), eps_(eps), momentum_(momentum) {
  reset();
}

void SyncBatchNormImpl::reset() {
  weight = register_parameter("weight", torch::ones({features_}));
  bias = register_parameter("bias", torch::zeros({features_}));
  running_mean = register_buffer("running_mean", torch::zeros({features_}));
  running_var = register_buffer("running_var", torch::ones({features_}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kInt64));
}

Tensor SyncBatchNormImpl::forward(const Tensor& input) {
  if (is_training()) {
    torch::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
  }
  if (!is_training() || comm_ == nullptr || comm_->size() == 1)
    return torch::batch_norm(input, weight, bias, running_mean, running_var, is_training(), momentum_, eps_,
                             /*cudnn_enabled=*/true);
  return SyncBatchNormFn::apply(input, weight, bias, running_mean, running_var, eps_, momentum_,
                                reinterpret_cast<int64_t>(comm_));
}

}  // namespace shardgan::model
