#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <ATen/CPUGeneratorImpl.h>

#include "model/architecture.hpp"
#include "model/resnet.hpp"

namespace shardgan::model {

struct DiscriminatorOptions {
  DiscriminatorOptions(int64_t image_size, int64_t channels) : image_size_(image_size), channels_(channels) {}
  TORCH_ARG(int64_t, image_size);
  TORCH_ARG(int64_t, channels);
  /// w channels after the first block (w = 64 → 64, 128, 256: the seed), doubled at every halving.
  TORCH_ARG(int64_t, width) = 64;
  TORCH_ARG(double, dropout) = 0.3;
  /// Classes for conditional discrimination (0 = unconditional): projection discriminator (Miyato & Koyama 2018).
  TORCH_ARG(int64_t, num_classes) = 0;
  /// Spectral normalisation of every convolution and of the linear head (model/spectral_norm.hpp).
  TORCH_ARG(bool, spectral_norm) = false;
  /// Which network (model/architecture.hpp).
  TORCH_ARG(Arch, arch) = Arch::kDcgan;
};

/// [Conv(4, s2) → LeakyReLU(0.2) → Dropout]×k (no dropout after the last) → flatten → Linear(1): one logit per image
/// (the sigmoid lives in the loss). k = log2(size) − 2, down to 4×4. Conditional: + <embed(y), features>.
class DiscriminatorImpl : public torch::nn::Module {
 public:
  explicit DiscriminatorImpl(DiscriminatorOptions options);
  /// images: [B, C, S, S]; labels: [B] (conditional only). Returns logits [B].
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& labels = {});
  const DiscriminatorOptions& options() const { return options_; }
  /// Seeds the generator dropout draws from (its own CPU generator; on a GPU the device's default one, which a CUDA
  /// graph replays): the trainer seeds it for every step and rank, so masks depend on nothing else.
  void seed_dropout(uint64_t seed);

 private:
  DiscriminatorOptions options_;
  at::Generator dropout_generator_ = at::make_generator<at::CPUGeneratorImpl>(0);
  torch::nn::Sequential blocks_{nullptr};
  torch::nn::AnyModule head_;  ///< Linear(features → 1), spectrally normalised or not
  torch::nn::Embedding embed_{nullptr};
  ResNetDiscriminator resnet_{nullptr};
};
TORCH_MODULE(Discriminator);

/// DCGAN initialisation: conv and linear weights ~ N(0, 0.02), biases 0; BatchNorm weights ~ N(1, 0.02), biases 0.
void dcgan_init(torch::nn::Module& module);

}  // namespace shardgan::model
