#pragma once
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace shardgan::model {

/// Inverted dropout whose CPU mask comes from a counter-based generator (splitmix64, 16 bits per element) instead of
/// one Mersenne-Twister draw per element: the same distribution (keep probability resolved to 1/65536), about ten
/// times cheaper to draw — dropout was 15% of a CPU training step of the seeds' DCGAN with torch::nn::Dropout. Its
/// seed is one draw per call from `generator`, a CPU generator its owner seeds (the discriminator's: see
/// DiscriminatorImpl::seed_dropout), never LibTorch's global one. CUDA tensors use torch::dropout, which draws from
/// the device's default generator (the one a CUDA graph can replay).
class FastDropoutImpl : public torch::nn::Cloneable<FastDropoutImpl> {
 public:
  FastDropoutImpl(double p, at::Generator generator) : p_(p), generator_(std::move(generator)) {}
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& input);
  double p() const { return p_; }

 private:
  double p_;
  at::Generator generator_;
};
TORCH_MODULE(FastDropout);

/// The mask itself: 0 with probability p, 1/(1-p) otherwise, for `sizes` in `options`' dtype, from `seed`.
torch::Tensor dropout_mask(torch::IntArrayRef sizes, double p, uint64_t seed, const torch::TensorOptions& options);

}  // namespace shardgan::model
