#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <vector>

#include "comm/communicator.hpp"
#include "model/architecture.hpp"
#include "model/resnet.hpp"
#include "model/sync_batch_norm.hpp"

namespace shardgan::model {

/// Options of the DCGAN generator of the seeds, generalised to any power-of-two image size ≥ 8.
struct GeneratorOptions {
  GeneratorOptions(int64_t image_size, int64_t channels) : image_size_(image_size), channels_(channels) {}
  TORCH_ARG(int64_t, image_size);
  TORCH_ARG(int64_t, channels);
  TORCH_ARG(int64_t, z_dim) = 100;
  /// Base width w: 8w channels at 4×4 (w = 32 → 256, the seed), halved at every doubling of resolution.
  TORCH_ARG(int64_t, width) = 32;
  TORCH_ARG(bool, batchnorm) = true;
  /// Classes for conditional generation (0 = unconditional): a label embedding is concatenated to z.
  TORCH_ARG(int64_t, num_classes) = 0;
  TORCH_ARG(int64_t, embed_dim) = 50;
  /// Spectral normalisation of the projection and every transposed convolution (model/spectral_norm.hpp).
  TORCH_ARG(bool, spectral_norm) = false;
  /// Which network (model/architecture.hpp).
  TORCH_ARG(Arch, arch) = Arch::kDcgan;
};

/// BatchNorm layers are SyncBatchNorm modules: per-rank statistics (`local`, identical to torch::nn::BatchNorm) until
/// set_batchnorm_communicator switches them to statistics over all ranks (`sync`).
/// z → Linear(4·4·8w) → BatchNorm → LeakyReLU(0.2) → reshape → [ConvTranspose(4, s2) → BatchNorm → LeakyReLU]×k
/// → ConvTranspose(4, s2) to C channels → tanh. k = log2(size) − 3, so 32 px gives the seed's network exactly.
/// conv_transpose2d(x, w, stride 2, padding 1) of a 4x4 kernel (w: [in, out, 4, 4]) as one GEMM over the whole batch
/// and a col2im (fold), returned in float32. LibTorch's CPU kernel runs one small GEMM per image (16 columns for a
/// 4x4 input) and, under bf16 autocast, stays in float32; the generator uses this on the CPU for inputs of at most
/// 4x4, and 8x8 under bf16 autocast (GEMM and col2im in bf16 there). Measured for the seeds' blocks (batch 64, 1
/// thread, forward + backward): 256 -> 128 channels at 4x4, float32 55 -> 47 ms, bf16 autocast 55 -> 21 ms;
/// 128 -> 64 at 8x8, bf16 autocast 48 -> 43 ms (float32: 48 -> 72 ms, so not used there).
torch::Tensor transposed_conv_as_gemm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias = {});

class GeneratorImpl : public torch::nn::Module {
 public:
  explicit GeneratorImpl(GeneratorOptions options);
  /// z: [B, z_dim]; labels: [B] int64 (conditional only, else undefined). Returns [B, C, S, S] in [-1, 1].
  torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& labels = {});
  const GeneratorOptions& options() const { return options_; }
  /// Synchronised BatchNorm: batch statistics over all ranks through `comm` (nullptr: per-rank statistics).
  void set_batchnorm_communicator(comm::Communicator* comm);

 private:
  GeneratorOptions options_;
  torch::nn::Embedding embed_{nullptr};
  torch::nn::AnyModule project_;  ///< Linear(z [+ embedding] → 4·4·8w), spectrally normalised or not
  SyncBatchNorm project_norm_{nullptr};
  torch::nn::Sequential blocks_{nullptr};
  ResNetGenerator resnet_{nullptr};
};
TORCH_MODULE(Generator);

/// Throws Error naming the size when a model cannot be built for `image_size` (power of two, 8..1024).
void check_image_size(int64_t image_size);

}  // namespace shardgan::model
