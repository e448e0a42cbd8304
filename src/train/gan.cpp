#include "train/gan.hpp"

#include "util/error.hpp"

namespace shardgan::train {

Gan::Gan(const config::Config& config, const DataSpec& data_spec, torch::Device device)
    : spec(data_spec), conditional(config.model.conditional), z_dim(config.model.z_dim) {
  if (spec.shape.height != spec.shape.width)
    fail("images are ", spec.shape.height, "x", spec.shape.width, "; the models need square images");
  model::check_image_size(spec.shape.height);
  const int64_t classes = conditional ? static_cast<int64_t>(spec.class_names.size()) : 0;
  generator = model::Generator(model::GeneratorOptions(spec.shape.height, spec.shape.channels)
                                   .z_dim(config.model.z_dim)
                                   .width(config.model.g_width)
                                   .batchnorm(config.model.batchnorm != "none")
                                   .num_classes(classes)
                                   .embed_dim(config.model.embed_dim));
  discriminator = model::Discriminator(model::DiscriminatorOptions(spec.shape.height, spec.shape.channels)
                                           .width(config.model.d_width)
                                           .dropout(config.model.dropout)
                                           .num_classes(classes));
  model::dcgan_init(*generator);
  model::dcgan_init(*discriminator);
  generator->to(device);
  discriminator->to(device);
  const auto betas = std::make_tuple(config.optim.beta1, config.optim.beta2);
  optim_g = std::make_unique<torch::optim::Adam>(generator->parameters(),
                                                 torch::optim::AdamOptions(config.optim.lr_g).betas(betas));
  optim_d = std::make_unique<torch::optim::Adam>(discriminator->parameters(),
                                                 torch::optim::AdamOptions(config.optim.lr_d).betas(betas));
}

int64_t parameter_count(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace shardgan::train
