#include "model/discriminator.hpp"

#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <mutex>

#include "model/fast_dropout.hpp"
#include "model/generator.hpp"
#include "model/spectral_norm.hpp"

namespace shardgan::model {

DiscriminatorImpl::DiscriminatorImpl(DiscriminatorOptions options) : options_(options) {
  namespace nn = torch::nn;
  check_image_size(options.image_size());
  if (options.arch() == Arch::kResNet) {
    ResNetOptions r;
    r.image_size = options.image_size();
    r.channels = options.channels();
    r.width = options.width();
    r.num_classes = options.num_classes();
    r.spectral_norm = options.spectral_norm();
    resnet_ = register_module("resnet", ResNetDiscriminator(r));
    return;
  }
  nn::Sequential blocks;
  int64_t in = options.channels(), out = options.width();
  for (int64_t size = options.image_size(); size > 4; size /= 2) {
    const nn::Conv2d conv(nn::Conv2dOptions(in, out, 4).stride(2).padding(1));
    if (options.spectral_norm()) {
      blocks->push_back(SpectralNorm(conv, 0));
    } else {
      blocks->push_back(conv);
    }
    blocks->push_back(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)));
    if (size > 8 && options.dropout() > 0) blocks->push_back(FastDropout(options.dropout(), dropout_generator_));
    in = out;
    out *= 2;
  }
  blocks->push_back(nn::Flatten());
  blocks_ = register_module("blocks", blocks);
  const nn::Linear head(in * 16, 1);
  if (options.spectral_norm()) {
    head_ = nn::AnyModule(register_module("head", SpectralNorm(head, 0)));
  } else {
    head_ = nn::AnyModule(register_module("head", head));
  }
  if (options.num_classes() > 0) embed_ = register_module("embed", nn::Embedding(options.num_classes(), in * 16));
}

void DiscriminatorImpl::seed_dropout(uint64_t seed) {
  {
    std::lock_guard<std::mutex> lock(dropout_generator_.mutex());
    dropout_generator_.set_current_seed(seed);
  }
  const auto params = parameters();
  if (params.empty() || !params.front().is_cuda()) return;
  at::Generator device_generator = at::globalContext().defaultGenerator(params.front().device());
  std::lock_guard<std::mutex> lock(device_generator.mutex());
  device_generator.set_current_seed(seed);
}

void init_weights(Arch arch, torch::nn::Module& module) {
  switch (arch) {
    case Arch::kResNet:
      resnet_init(module);
      return;
    case Arch::kDcgan:
      break;
  }
  dcgan_init(module);
}

torch::Tensor DiscriminatorImpl::forward(const torch::Tensor& images, const torch::Tensor& labels) {
  if (resnet_) return resnet_->forward(images, labels);
  const torch::Tensor features = blocks_->forward(images);
  torch::Tensor logits = head_.forward(features).squeeze(1);
  if (embed_) logits = logits + (embed_->forward(labels) * features).sum(1);
  return logits;
}

void dcgan_init(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& m : module.modules(/*include_self=*/true)) {
    const std::string name = m->name();
    const bool conv_or_linear = name.find("Conv") != std::string::npos || name.find("Linear") != std::string::npos ||
                                name.find("Embedding") != std::string::npos;
    const bool norm = name.find("BatchNorm") != std::string::npos;
    for (auto& p : m->named_parameters(/*recurse=*/false)) {
      if (p.key() == "weight") {
        if (conv_or_linear) torch::nn::init::normal_(p.value(), 0.0, 0.02);
        if (norm) torch::nn::init::normal_(p.value(), 1.0, 0.02);
      } else if (p.key() == "bias") {
        torch::nn::init::zeros_(p.value());
      }
    }
  }
}

}  // namespace shardgan::model
