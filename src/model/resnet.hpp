#pragma once
// Residual GAN networks for 32–128 px (and any power of two from 8), in the shape of SNGAN (Miyato et al. 2018) and
// BigGAN (Brock et al. 2019) — model.arch = "resnet":
//   G: z → Linear → 4×4 × 8w → [GBlock: BN → ReLU → up×2 → conv3 → BN → ReLU → conv3, + up×2 → conv1]×k
//      → BN → ReLU → conv3 → tanh, channels halving at every doubling (8w at 4×4, w at full size for 32 px).
//      Conditional: class-conditional BatchNorm (a per-class gain and bias on top of each BatchNorm).
//   D: [DBlock: (ReLU →) conv3 → ReLU → conv3 → avg-pool ÷2, + conv1 → avg-pool]×k down to 4×4 → ReLU → sum over
//      space → Linear(1), channels doubling from w (capped at 16w). Conditional: projection <embed(y), h>.
// k = log2(size) − 2. Every convolution, linear layer and embedding of D (and of G with "gd") can be spectrally
// normalised. Weights: Xavier-uniform (the SNGAN reference); class gains 0, biases 0.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include "model/sync_batch_norm.hpp"

namespace shardgan::model {

struct ResNetOptions {
  int64_t image_size = 32, channels = 3, z_dim = 128, width = 32, num_classes = 0;
  bool batchnorm = true;  ///< G only
  bool spectral_norm = false;
};

/// BatchNorm (per-rank or synchronised, see SyncBatchNorm) followed, for a conditional model, by a per-class gain and
/// bias: x̂ · (1 + γ[y]) + β[y], γ and β embeddings initialised to 0. Without BatchNorm: the identity.
class ConditionalNormImpl : public torch::nn::Module {
 public:
  ConditionalNormImpl(int64_t channels, int64_t num_classes, bool batchnorm);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& labels);

 private:
  SyncBatchNorm norm_{nullptr};
  torch::Tensor gain_, bias_;  ///< [classes, channels]
};
TORCH_MODULE(ConditionalNorm);

class ResNetGeneratorImpl : public torch::nn::Module {
 public:
  explicit ResNetGeneratorImpl(const ResNetOptions& options);
  torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& labels);

 private:
  struct Block {
    ConditionalNorm norm1{nullptr}, norm2{nullptr};
    torch::nn::AnyModule conv1, conv2, shortcut;
  };
  ResNetOptions options_;
  torch::nn::AnyModule project_, to_image_;
  std::vector<Block> blocks_;
  ConditionalNorm final_norm_{nullptr};
};
TORCH_MODULE(ResNetGenerator);

class ResNetDiscriminatorImpl : public torch::nn::Module {
 public:
  explicit ResNetDiscriminatorImpl(const ResNetOptions& options);
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& labels);

 private:
  struct Block {
    bool first = false;
    torch::nn::AnyModule conv1, conv2, shortcut;
  };
  ResNetOptions options_;
  std::vector<Block> blocks_;
  torch::nn::AnyModule head_, embed_;
};
TORCH_MODULE(ResNetDiscriminator);

/// Xavier-uniform weights, zero biases; BatchNorm weights 1; conditional gains and biases 0.
void resnet_init(torch::nn::Module& module);

}  // namespace shardgan::model
