#include "model/spectral_norm.hpp"

#include <torch/torch.h>

namespace shardgan::model {
using torch::Tensor;

namespace {

constexpr double kEps = 1e-12;

Tensor normalized(const Tensor& x) {
  return x / x.norm().clamp_min(kEps);
}

/// W v and Wᵀ u as products and sums: element-wise operations keep float32 under autocast (a matrix-vector product
/// would run in bf16/fp16 there), and the matrices are small.
Tensor times(const Tensor& w, const Tensor& v) {
  return (w * v.unsqueeze(0)).sum(1);
}
Tensor transposed_times(const Tensor& w, const Tensor& u) {
  return (w * u.unsqueeze(1)).sum(0);
}

/// Puts the wrapped layer's weight back when the forward pass ends, also by an exception.
class WeightSwap {
 public:
  WeightSwap(Tensor* slot, Tensor replacement) : slot_(slot), original_(*slot) { *slot_ = std::move(replacement); }
  ~WeightSwap() { *slot_ = original_; }
  WeightSwap(const WeightSwap&) = delete;
  WeightSwap& operator=(const WeightSwap&) = delete;

 private:
  Tensor* slot_;
  Tensor original_;
};

}  // namespace

void SpectralNormImpl::init(int64_t out_dim) {
  out_dim_ = out_dim;
  const Tensor w = matrix(*weight_);
  // From LibTorch's global generator: train.seed makes them the same on every rank (rank 0's are broadcast anyway).
  u_ = register_buffer("u", normalized(torch::randn({w.size(0)}, w.options())));
  v_ = register_buffer("v", normalized(torch::randn({w.size(1)}, w.options())));
}

Tensor SpectralNormImpl::matrix(const Tensor& weight) const {
  return (out_dim_ == 0 ? weight : weight.transpose(0, out_dim_)).flatten(1);
}

Tensor SpectralNormImpl::forward(const Tensor& input) {
  const Tensor w = matrix(*weight_);
  if (is_training()) {
    torch::NoGradGuard no_grad;
    const Tensor wd = w.detach();
    v_.copy_(normalized(transposed_times(wd, u_)));
    u_.copy_(normalized(times(wd, v_)));
  }
  // σ = uᵀ W v, differentiable in W; u and v are constants of this pass (copies, so that the next pass's in-place
  // update cannot touch what this pass's backward reads).
  const Tensor sigma = (u_.detach().clone() * times(w, v_.detach().clone())).sum();
  WeightSwap swap(weight_, *weight_ / sigma);
  return forward_(input);
}

void SpectralNormImpl::copy_vectors_from(const SpectralNormImpl& other) {
  torch::NoGradGuard no_grad;
  u_.copy_(other.u_);
  v_.copy_(other.v_);
}

double SpectralNormImpl::sigma() const {
  torch::NoGradGuard no_grad;
  return (u_ * times(matrix(*weight_), v_)).sum().item<double>();
}

}  // namespace shardgan::model
