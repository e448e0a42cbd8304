#include "model/sync_batch_norm.hpp"

#include <torch/autograd.h>
#include <torch/torch.h>

#include "parallel/tensor_comm.hpp"

namespace shardgan::model {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

/// The communicator, as autograd keeps it between forward and backward (saved_data holds IValues; a capsule holds
/// any object). Statistics are kept in float64 so that the single-pass variance E[x²] − E[x]² loses nothing against
/// a one-rank BatchNorm.
struct CommunicatorRef : torch::CustomClassHolder {
  explicit CommunicatorRef(comm::Communicator* c) : comm(c) {}
  comm::Communicator* comm;
};

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
                        Tensor running_mean, Tensor running_var, double eps, double momentum,
                        comm::Communicator* comm) {
    const Tensor xd = x.to(torch::kFloat64);
    const auto dims = reduce_dims(xd);
    const int64_t channels = x.size(1);
    // [sum (C), sum of squares (C), count (1)] summed over ranks in one all-reduce.
    Tensor stats = torch::cat({xd.sum(dims), (xd * xd).sum(dims),
                               torch::full({1}, static_cast<double>(xd.numel() / channels), xd.options())})
                       .contiguous();
    parallel::allreduce(*comm, stats, comm::ReduceOp::kSum);
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
    ctx->saved_data["comm"] = c10::IValue::make_capsule(c10::make_intrusive<CommunicatorRef>(comm));
    return (xhat * weight.view(shape) + bias.view(shape)).to(x.scalar_type());
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &xhat = saved[0], &invstd = saved[1], &weight = saved[2], &count = saved[3];
    const auto ref = ctx->saved_data["comm"].toCapsule();
    comm::Communicator* comm = static_cast<CommunicatorRef*>(ref.get())->comm;
    const Tensor dy = grads[0].to(torch::kFloat32);
    const auto dims = reduce_dims(dy);
    const int64_t channels = dy.size(1);
    const Tensor sum_dy_local = dy.sum(dims);
    const Tensor sum_dy_xhat_local = (dy * xhat).sum(dims);
    // The statistics depended on every rank's inputs: the input gradient needs the global sums.
    Tensor sums = torch::cat({sum_dy_local, sum_dy_xhat_local}).to(torch::kFloat64).contiguous();
    parallel::allreduce(*comm, sums, comm::ReduceOp::kSum);
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

SyncBatchNormImpl::SyncBatchNormImpl(const SyncBatchNormOptions& options_) : options(options_) {
  reset();
}

void SyncBatchNormImpl::reset() {
  const int64_t c = options.features();
  weight = register_parameter("weight", torch::ones({c}));
  bias = register_parameter("bias", torch::zeros({c}));
  running_mean = register_buffer("running_mean", torch::zeros({c}));
  running_var = register_buffer("running_var", torch::ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kInt64));
}

Tensor SyncBatchNormImpl::forward(const Tensor& input) {
  if (is_training()) {
    torch::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
  }
  if (!is_training() || comm_ == nullptr || comm_->size() == 1)
    return torch::batch_norm(input, weight, bias, running_mean, running_var, is_training(), options.momentum(),
                             options.eps(), /*cudnn_enabled=*/true);
  return SyncBatchNormFn::apply(input, weight, bias, running_mean, running_var, options.eps(), options.momentum(),
                                comm_);
}

}  // namespace shardgan::model
