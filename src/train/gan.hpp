#pragma once
#include <torch/optim/adam.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/shard_format.hpp"
#include "model/discriminator.hpp"
#include "model/generator.hpp"
#include "model/spectral_norm.hpp"
#include "train/loss_scaler.hpp"

namespace shardgan::train {

using data::DataSpec;

/// The two networks, their optimisers and fp16's loss scale, built from a config for a data spec, on a device (with
/// runtime.channels_last, the 4-D weights in channels-last layout).
struct Gan {
  Gan(const config::Config& config, const DataSpec& spec, torch::Device device);

  int64_t num_classes() const { return conditional ? static_cast<int64_t>(spec.class_names.size()) : 0; }

  /// After `updates` generator steps: ema ← β·ema + (1−β)·G for every parameter, β = min(model.g_ema,
  /// (1+updates)/(10+updates)) so that the average does not drag the random initialisation along in short runs.
  void update_ema(int64_t updates);
  /// Copies G's parameters and buffers into the EMA generator (start of training, or a checkpoint without one).
  void reset_ema();
  /// The generator samples and metrics come from, in eval mode: the EMA generator, its BatchNorm statistics
  /// re-estimated for its own weights from 8 batches of 64 fixed noise vectors (G's running statistics belong to
  /// G's weights, not to their average); or G itself when model.g_ema = 0 (or `use_ema` is false). Restore G's
  /// training mode after use.
  model::GeneratorImpl& sampling_generator(bool use_ema = true);

  DataSpec spec;
  bool conditional;
  int64_t z_dim;
  model::Generator generator{nullptr};
  model::Generator generator_ema{nullptr};  ///< model.g_ema > 0: the weight average of `generator`
  double ema_decay = 0;
  model::Discriminator discriminator{nullptr};
  std::unique_ptr<torch::optim::Adam> optim_g;
  std::unique_ptr<torch::optim::Adam> optim_d;
  LossScaler loss_scaler;  ///< enabled for runtime.precision = "fp16"

 private:
  /// (EMA layer, G layer) for every spectrally normalised layer: update_ema copies G's vectors.
  std::vector<std::pair<model::SpectralNormImpl*, model::SpectralNormImpl*>> ema_spectral_norms_;
};

/// Number of scalar parameters of a module.
int64_t parameter_count(const torch::nn::Module& module);

}  // namespace shardgan::train
