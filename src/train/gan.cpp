#include "train/gan.hpp"

#include <torch/torch.h>

#include "compat/torch_compat.hpp"
#include "model/image_tensor.hpp"
#include "model/spectral_norm.hpp"
#include "util/error.hpp"
#include "util/random.hpp"

namespace shardgan::train {

Gan::Gan(const config::Config& config, const DataSpec& data_spec, torch::Device device)
    : spec(data_spec),
      conditional(config.model.conditional),
      z_dim(config.model.z_dim),
      ema_decay(config.model.g_ema),
      loss_scaler(config.runtime.precision == config::Precision::kFp16, config.runtime.loss_scale,
                  config.runtime.loss_scale_growth_every) {
  if (spec.shape.height != spec.shape.width)
    fail("images are ", spec.shape.height, "x", spec.shape.width, "; the models need square images");
  model::check_image_size(spec.shape.height);
  const config::Arch arch = config.model.arch;
  const int64_t classes = conditional ? static_cast<int64_t>(spec.class_names.size()) : 0;
  const auto g_options = model::GeneratorOptions(spec.shape.height, spec.shape.channels)
                             .z_dim(config.model.z_dim)
                             .width(config.model.g_width)
                             .batchnorm(config.model.batchnorm != config::BatchNorm::kNone)
                             .num_classes(classes)
                             .embed_dim(config.model.embed_dim)
                             .spectral_norm(config.model.spectral_norm == config::SpectralNorm::kGD)
                             .arch(arch);
  generator = model::Generator(g_options);
  discriminator = model::Discriminator(model::DiscriminatorOptions(spec.shape.height, spec.shape.channels)
                                           .width(config.model.d_width)
                                           .dropout(config.model.dropout)
                                           .num_classes(classes)
                                           .spectral_norm(config.model.spectral_norm != config::SpectralNorm::kNone)
                                           .arch(arch));
  model::init_weights(arch, *generator);
  model::init_weights(arch, *discriminator);
  generator->to(device);
  discriminator->to(device);
  if (config.runtime.channels_last) {
    model::to_channels_last(*generator);
    model::to_channels_last(*discriminator);
  }
  if (ema_decay > 0) {
    generator_ema = model::Generator(g_options);
    generator_ema->to(device);
    if (config.runtime.channels_last) model::to_channels_last(*generator_ema);
    for (auto& p : generator_ema->parameters()) p.set_requires_grad(false);
    // The spectrally normalised layers of both, paired once (same structure, same order).
    const auto ema_modules = generator_ema->modules(/*include_self=*/false), g_modules = generator->modules(false);
    for (std::size_t i = 0; i < ema_modules.size(); ++i)
      if (auto* sn = ema_modules[i]->as<model::SpectralNormImpl>())
        ema_spectral_norms_.emplace_back(sn, g_modules[i]->as<model::SpectralNormImpl>());
    reset_ema();
  }
  const auto betas = std::make_tuple(config.optim.beta1, config.optim.beta2);
  optim_g = std::make_unique<torch::optim::Adam>(generator->parameters(),
                                                 torch::optim::AdamOptions(config.optim.lr_g).betas(betas));
  optim_d = std::make_unique<torch::optim::Adam>(discriminator->parameters(),
                                                 torch::optim::AdamOptions(config.optim.lr_d).betas(betas));
}

void Gan::update_ema(int64_t updates) {
  if (!generator_ema) return;
  const double beta = std::min(ema_decay, (1.0 + static_cast<double>(updates)) / (10.0 + static_cast<double>(updates)));
  torch::NoGradGuard no_grad;
  const auto ema = generator_ema->parameters();
  const auto g = generator->parameters();
#if SHARDGAN_TORCH_AT_LEAST(2, 0)  // 1.13 has no _foreach_lerp_; 2.x has its Scalar form (2.11, 2.15 checked)
  // One call for every parameter: on CUDA a few multi-tensor kernels instead of a launch per parameter; on the CPU
  // LibTorch runs lerp_ per tensor, so the result is the loop's below bit for bit (test
  // Ema.ForeachUpdateIsThePerParameterLerpBitForBit).
  at::_foreach_lerp_(ema, g, at::Scalar(1.0 - beta));
#else
  for (std::size_t i = 0; i < ema.size(); ++i) ema[i].lerp_(g[i], 1.0 - beta);
#endif
  // Spectral normalisation: the average uses G's power-iteration vectors (its own would depend on how often samples
  // were drawn, and a resume would not be bit-identical).
  for (const auto& [ema_sn, g_sn] : ema_spectral_norms_) ema_sn->copy_vectors_from(*g_sn);
}

void Gan::reset_ema() {
  if (!generator_ema) return;
  torch::NoGradGuard no_grad;
  const auto ema = generator_ema->parameters(), g = generator->parameters();
  for (std::size_t i = 0; i < ema.size(); ++i) ema[i].copy_(g[i]);
  const auto ema_buffers = generator_ema->buffers(), g_buffers = generator->buffers();
  for (std::size_t i = 0; i < ema_buffers.size(); ++i) ema_buffers[i].copy_(g_buffers[i]);
}

model::GeneratorImpl& Gan::sampling_generator(bool use_ema) {
  if (!generator_ema || !use_ema) {
    generator->eval();
    return *generator;
  }
  std::vector<model::SyncBatchNormImpl*> norms;
  for (auto& m : generator_ema->modules(/*include_self=*/false))
    if (auto* bn = m->as<model::SyncBatchNormImpl>()) norms.push_back(bn);
  if (!norms.empty()) {
    torch::NoGradGuard no_grad;
    const double momentum = norms.front()->momentum();
    const torch::Device device = generator_ema->parameters().front().device();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(rng::stream_seed(0, rng::Stream::kEmaBatchNorm));
    generator_ema->train();
    // Only BatchNorm learns here: spectral normalisation keeps G's vectors (see update_ema).
    for (auto& m : generator_ema->modules(/*include_self=*/false))
      if (auto* sn = m->as<model::SpectralNormImpl>()) sn->eval();
    for (auto* bn : norms) bn->num_batches_tracked.zero_();  // the same buffers however often it was re-estimated
    for (int64_t k = 0; k < 8; ++k) {
      for (auto* bn : norms) bn->set_momentum(1.0 / static_cast<double>(k + 1));  // plain average of the 8 batches
      const torch::Tensor z = torch::randn({64, z_dim}, gen).to(device);
      const int64_t classes = num_classes();
      generator_ema->forward(z, classes > 0 ? ((torch::arange(64) + 64 * k) % classes).to(device) : torch::Tensor());
    }
    for (auto* bn : norms) bn->set_momentum(momentum);
  }
  generator_ema->eval();
  return *generator_ema;
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace shardgan::train
