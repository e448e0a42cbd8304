#include "model/fast_dropout.hpp"

#include <torch/autograd.h>
#include <torch/torch.h>

#include <cmath>

#include "util/random.hpp"

namespace shardgan::model {
namespace {

using rng::splitmix64;

struct MaskedScale : torch::autograd::Function<MaskedScale> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               const torch::Tensor& mask) {
    ctx->save_for_backward({mask});
    return input * mask;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto mask = ctx->get_saved_variables()[0];
    return {grads[0] * mask, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor dropout_mask(torch::IntArrayRef sizes, double p, uint64_t seed, const torch::TensorOptions& options) {
  torch::Tensor mask = torch::empty(sizes, torch::TensorOptions().dtype(torch::kFloat32));
  float* m = mask.data_ptr<float>();
  const int64_t n = mask.numel();
  const auto threshold = static_cast<uint32_t>(std::lround(p * 65536.0));
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  uint64_t state = seed;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint64_t r = splitmix64(state);
    for (int k = 0; k < 4; ++k) m[i + k] = ((r >> (16 * k)) & 0xFFFF) >= threshold ? scale : 0.0f;
  }
  if (i < n) {
    const uint64_t r = splitmix64(state);
    for (int k = 0; i < n; ++i, ++k) m[i] = ((r >> (16 * k)) & 0xFFFF) >= threshold ? scale : 0.0f;
  }
  return options.dtype() == torch::kFloat32 ? mask : mask.to(options.dtype());
}

torch::Tensor FastDropoutImpl::forward(const torch::Tensor& input) {
  if (!is_training() || p_ <= 0) return input;
  if (!input.device().is_cpu()) return torch::dropout(input, p_, /*train=*/true);
  const auto seed =
      static_cast<uint64_t>(torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kInt64).item<int64_t>());
  return MaskedScale::apply(input, dropout_mask(input.sizes(), p_, seed, input.options()));
}

}  // namespace shardgan::model
