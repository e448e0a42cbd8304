#include "model/generator.hpp"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/fold.h>
#include <torch/nn/modules/activation.h>

#include "model/spectral_norm.hpp"
#include "compat/torch_compat.hpp"
#include "util/error.hpp"

namespace shardgan::model {

torch::Tensor transposed_conv_as_gemm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias) {
  const int64_t n = x.size(0), in = x.size(1), h = x.size(2), wd = x.size(3), out = w.size(1);
  const torch::Tensor columns = torch::matmul(w.reshape({in, out * 16}).t(), x.reshape({n, in, h * wd}));
  torch::Tensor y = torch::nn::functional::fold(
                        columns, torch::nn::functional::FoldFuncOptions({2 * h, 2 * wd}, {4, 4}).stride(2).padding(1))
                        .to(torch::kFloat32);
  if (bias.defined()) y = y + bias.to(torch::kFloat32).view({1, -1, 1, 1});
  return y;
}

void check_image_size(int64_t image_size) {
  if (image_size < 8 || image_size > 1024 || (image_size & (image_size - 1)) != 0)
    fail("image size ", image_size, " cannot be built: the models need a power of two from 8 to 1024 (4x4 doubled)");
}

GeneratorImpl::GeneratorImpl(GeneratorOptions options) : options_(options) {
  namespace nn = torch::nn;
  check_image_size(options.image_size());
  if (options.arch() == Arch::kResNet) {
    ResNetOptions r;
    r.image_size = options.image_size();
    r.channels = options.channels();
    r.z_dim = options.z_dim();
    r.width = options.width();
    r.num_classes = options.num_classes();
    r.batchnorm = options.batchnorm();
    r.spectral_norm = options.spectral_norm();
    resnet_ = register_module("resnet", ResNetGenerator(r));
    return;
  }
  int64_t channels = 8 * options.width();
  int64_t input = options.z_dim();
  if (options.num_classes() > 0) {
    embed_ = register_module("embed", nn::Embedding(options.num_classes(), options.embed_dim()));
    input += options.embed_dim();
  }
  // No bias when BatchNorm follows: BatchNorm's shift makes it redundant, its gradient is exactly zero, and Adam
  // would turn the rounding noise of that zero into random steps (the seed's Dense has one; it changes nothing).
  // Spectral normalisation wraps a layer: register it under the layer's name either way.
  const auto add = [&](const std::string& name, auto layer, int64_t out_dim) {
    if (options.spectral_norm()) return nn::AnyModule(register_module(name, SpectralNorm(layer, out_dim)));
    return nn::AnyModule(register_module(name, layer));
  };
  project_ = add("project", nn::Linear(nn::LinearOptions(input, channels * 16).bias(!options.batchnorm())), 0);
  if (options.batchnorm()) project_norm_ = register_module("project_norm", SyncBatchNorm(channels * 16));

  nn::Sequential blocks;
  for (int64_t size = 4; size * 2 < options.image_size(); size *= 2) {
    const int64_t out = std::max<int64_t>(channels / 2, 1);
    const nn::ConvTranspose2d up(
        nn::ConvTranspose2dOptions(channels, out, 4).stride(2).padding(1).bias(!options.batchnorm()));
    if (options.spectral_norm()) {
      blocks->push_back(SpectralNorm(up, 1));
    } else {
      blocks->push_back(up);
    }
    if (options.batchnorm()) blocks->push_back(SyncBatchNorm(out));
    blocks->push_back(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)));
    channels = out;
  }
  const nn::ConvTranspose2d to_image(nn::ConvTranspose2dOptions(channels, options.channels(), 4).stride(2).padding(1));
  if (options.spectral_norm()) {
    blocks->push_back(SpectralNorm(to_image, 1));
  } else {
    blocks->push_back(to_image);
  }
  blocks->push_back(nn::Tanh());
  blocks_ = register_module("blocks", blocks);
}

void GeneratorImpl::set_batchnorm_communicator(comm::Communicator* comm) {
  for (auto& m : modules(/*include_self=*/false))
    if (auto* bn = m->as<SyncBatchNormImpl>()) bn->set_communicator(comm);
}

torch::Tensor GeneratorImpl::forward(const torch::Tensor& z, const torch::Tensor& labels) {
  if (resnet_) return resnet_->forward(z, labels);
  torch::Tensor x = z;
  if (embed_) x = torch::cat({z, embed_->forward(labels)}, 1);
  x = project_.forward(x);
  if (project_norm_) x = project_norm_->forward(x);
  x = torch::nn::functional::leaky_relu(x, torch::nn::functional::LeakyReLUFuncOptions().negative_slope(0.2));
  x = x.view({x.size(0), 8 * options_.width(), 4, 4});
  const int64_t gemm_up_to = compat::cpu_autocast_to_bf16() ? 64 : 16;  // input pixels
  for (auto& block : *blocks_) {
    // Every ConvTranspose2d here is a plain 4x4/stride 2/padding 1 one, as built above (spectrally normalised ones
    // are SpectralNorm modules). On a CPU input of at most 4x4 (8x8 under bf16 autocast) the batched GEMM is faster;
    // for larger inputs LibTorch's own kernel is.
    const auto* conv = block.ptr()->as<torch::nn::ConvTranspose2dImpl>();
    if (conv != nullptr && x.device().is_cpu() && x.size(2) * x.size(3) <= gemm_up_to) {
      x = transposed_conv_as_gemm(x, conv->weight, conv->bias);
    } else {
      x = block.forward(x);
    }
  }
  return x;
}

}  // namespace shardgan::model
