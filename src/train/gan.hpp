#pragma once
#include <torch/optim/adam.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/shard_format.hpp"
#include "model/discriminator.hpp"
#include "model/generator.hpp"

namespace shardgan::train {

/// What the models are built for: the data's image shape and classes (stored in checkpoints so that sampling needs
/// no data).
struct DataSpec {
  data::ImageShape shape;
  std::vector<std::string> class_names;
};

/// The two networks and their optimisers, built from a config for a data spec, on a device.
struct Gan {
  Gan(const config::Config& config, const DataSpec& spec, torch::Device device);

  int64_t num_classes() const { return conditional ? static_cast<int64_t>(spec.class_names.size()) : 0; }

  DataSpec spec;
  bool conditional;
  int64_t z_dim;
  model::Generator generator{nullptr};
  model::Discriminator discriminator{nullptr};
  std::unique_ptr<torch::optim::Adam> optim_g;
  std::unique_ptr<torch::optim::Adam> optim_d;
};

/// Number of scalar parameters of a module.
int64_t parameter_count(torch::nn::Module& module);

}  // namespace shardgan::train
