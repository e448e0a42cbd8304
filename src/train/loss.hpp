#pragma once
#include <torch/types.h>

#include <memory>

#include "config/config.hpp"

namespace shardgan::train {

/// A GAN objective (model.loss), chosen once from the config. Both functions take D's logits in float32 and return
/// the scalar the network minimises. A new loss is a subclass here plus a word in config.cpp's kLoss table.
class GanLoss {
 public:
  virtual ~GanLoss() = default;
  /// What D minimises on its logits for a real and a generated batch.
  virtual torch::Tensor discriminator(const torch::Tensor& real_logits, const torch::Tensor& fake_logits) const = 0;
  /// What G minimises on D's logits for its generated batch.
  virtual torch::Tensor generator(const torch::Tensor& fake_logits) const = 0;
};

/// bce: the seeds' binary cross-entropy, with G's non-saturating form (−log D(G(z))). hinge: D minimises
/// E[relu(1 − D(x))] + E[relu(1 + D(G(z)))], G minimises −E[D(G(z))] (Lim & Ye 2017; SAGAN, BigGAN).
std::unique_ptr<GanLoss> make_loss(config::Loss loss);

}  // namespace shardgan::train
