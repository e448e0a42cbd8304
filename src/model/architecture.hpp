#pragma once
// The model architectures (model.arch): each is a generator body, a discriminator body and a weight initialisation.
// GeneratorImpl and DiscriminatorImpl build the body of their options' arch; init_weights applies its
// initialisation. A new architecture is a new value here and one case in each of the three.
#include <torch/nn/module.h>

#include "config/config.hpp"

namespace shardgan::model {

/// model.arch: kDcgan, the seeds' DCGAN generalised to any power-of-two size (generator.hpp, discriminator.hpp);
/// kResNet, SNGAN/BigGAN-style residual networks (resnet.hpp).
using Arch = config::Arch;

/// The initialisation `arch` was designed with: DCGAN's N(0, 0.02), or the ResNet's Xavier (resnet_init).
void init_weights(Arch arch, torch::nn::Module& module);

}  // namespace shardgan::model
