#include "model/resnet.hpp"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <string>

#include "model/spectral_norm.hpp"

namespace shardgan::model {
namespace nn = torch::nn;
namespace F = torch::nn::functional;
using torch::Tensor;

namespace {

/// Registers `layer` as `name`, spectrally normalised when `sn`; the forward as an AnyModule.
template <typename Holder>
nn::AnyModule add(nn::Module& owner, const std::string& name, Holder layer, bool sn) {
  if (sn) return nn::AnyModule(owner.register_module(name, SpectralNorm(layer, 0)));
  return nn::AnyModule(owner.register_module(name, layer));
}

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, bool bias = true) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).padding(kernel / 2).bias(bias));
}

Tensor up(const Tensor& x) {
  return F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest));
}

Tensor down(const Tensor& x) {
  return F::avg_pool2d(x, F::AvgPool2dFuncOptions(2));
}

int64_t levels(int64_t image_size) {
  int64_t k = 0;
  for (int64_t s = image_size; s > 4; s /= 2) ++k;
  return k;
}

}  // namespace

ConditionalNormImpl::ConditionalNormImpl(int64_t channels, int64_t num_classes, bool batchnorm) {
  if (batchnorm) norm_ = register_module("norm", SyncBatchNorm(channels));
  if (num_classes > 0) {
    gain_ = register_parameter("gain", torch::zeros({num_classes, channels}));
    bias_ = register_parameter("bias", torch::zeros({num_classes, channels}));
  }
}

Tensor ConditionalNormImpl::forward(const Tensor& x, const Tensor& labels) {
  Tensor y = norm_ ? norm_->forward(x) : x;
  if (!gain_.defined()) return y;
  const Tensor g = gain_.index_select(0, labels).unsqueeze(2).unsqueeze(3);
  const Tensor b = bias_.index_select(0, labels).unsqueeze(2).unsqueeze(3);
  return y * (1 + g) + b;
}

ResNetGeneratorImpl::ResNetGeneratorImpl(const ResNetOptions& o) : options_(o) {
  const int64_t k = levels(o.image_size), classes = o.num_classes;
  int64_t channels = 8 * o.width;
  project_ = add(*this, "project", nn::Linear(o.z_dim, channels * 16), o.spectral_norm);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t out = std::max<int64_t>(channels / 2, 1);
    const std::string p = "block" + std::to_string(i) + "_";
    Block b;
    b.norm1 = register_module(p + "norm1", ConditionalNorm(channels, classes, o.batchnorm));
    // With BatchNorm, no biases in the blocks: a per-channel constant reaches the output only through a BatchNorm
    // (the next block's, or the final one; the 1×1 shortcuts carry it along), which removes it. Their gradient is
    // exactly zero, Adam would turn the rounding noise of that zero into steps, and N ranks would no longer equal one.
    const bool bias = !o.batchnorm;
    b.conv1 = add(*this, p + "conv1", conv(channels, out, 3, bias), o.spectral_norm);
    b.norm2 = register_module(p + "norm2", ConditionalNorm(out, classes, o.batchnorm));
    b.conv2 = add(*this, p + "conv2", conv(out, out, 3, bias), o.spectral_norm);
    b.shortcut = add(*this, p + "shortcut", conv(channels, out, 1, bias), o.spectral_norm);
    blocks_.push_back(std::move(b));
    channels = out;
  }
  final_norm_ = register_module("final_norm", ConditionalNorm(channels, 0, o.batchnorm));
  to_image_ = add(*this, "to_image", conv(channels, o.channels, 3), o.spectral_norm);
}

Tensor ResNetGeneratorImpl::forward(const Tensor& z, const Tensor& labels) {
  Tensor x = project_.forward(z);
  x = x.view({x.size(0), 8 * options_.width, 4, 4});
  for (auto& b : blocks_) {
    Tensor h = up(torch::relu(b.norm1->forward(x, labels)));
    h = b.conv2.forward(torch::relu(b.norm2->forward(b.conv1.forward(h), labels)));
    x = h + b.shortcut.forward(up(x));
  }
  return torch::tanh(to_image_.forward(torch::relu(final_norm_->forward(x, Tensor()))));
}

ResNetDiscriminatorImpl::ResNetDiscriminatorImpl(const ResNetOptions& o) : options_(o) {
  const int64_t k = levels(o.image_size);
  int64_t in = o.channels, out = o.width;
  for (int64_t i = 0; i < k; ++i) {
    const std::string p = "block" + std::to_string(i) + "_";
    Block b;
    b.first = i == 0;
    b.conv1 = add(*this, p + "conv1", conv(in, out, 3), o.spectral_norm);
    b.conv2 = add(*this, p + "conv2", conv(out, out, 3), o.spectral_norm);
    b.shortcut = add(*this, p + "shortcut", conv(in, out, 1), o.spectral_norm);
    blocks_.push_back(std::move(b));
    in = out;
    out = std::min(out * 2, 16 * o.width);
  }
  head_ = add(*this, "head", nn::Linear(in, 1), o.spectral_norm);
  if (o.num_classes > 0) embed_ = add(*this, "embed", nn::Embedding(o.num_classes, in), o.spectral_norm);
}

Tensor ResNetDiscriminatorImpl::forward(const Tensor& images, const Tensor& labels) {
  Tensor x = images;
  for (auto& b : blocks_) {
    // The first block sees the image itself: no ReLU in front, and its shortcut pools before the 1×1 convolution.
    const Tensor h = down(b.conv2.forward(torch::relu(b.conv1.forward(b.first ? x : torch::relu(x)))));
    x = h + (b.first ? b.shortcut.forward(down(x)) : down(b.shortcut.forward(x)));
  }
  const Tensor features = torch::relu(x).sum({2, 3});
  Tensor logits = head_.forward(features).squeeze(1);
  if (!embed_.is_empty()) logits = logits + (embed_.forward(labels) * features).sum(1);
  return logits;
}

void resnet_init(nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& m : module.modules(/*include_self=*/true)) {
    const std::string name = m->name();
    const bool norm = name.find("SyncBatchNorm") != std::string::npos;
    for (auto& p : m->named_parameters(/*recurse=*/false)) {
      if (name.find("ConditionalNorm") != std::string::npos) {
        nn::init::zeros_(p.value());  // gain and bias per class
      } else if (p.key() == "weight") {
        if (norm) {
          nn::init::ones_(p.value());
        } else if (p.value().dim() >= 2) {
          nn::init::xavier_uniform_(p.value());
        }
      } else if (p.key() == "bias") {
        nn::init::zeros_(p.value());
      }
    }
  }
}

}  // namespace shardgan::model
