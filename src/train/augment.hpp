#pragma once
// Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020), optionally gated per sample by an
// adaptive probability p (the StyleGAN2-ADA heuristic, Karras et al. 2020). D sees augmented reals and augmented
// fakes in its step and G's fakes through the same kind of augmentation in G's step, so D cannot learn the
// augmentations as a feature of the real data, and on small data sets it overfits much later.
//
// Every random number comes from (seed, step, role) for the whole global batch; a rank takes its rows, so N ranks ×
// b images see exactly what 1 rank × N·b sees, and a resumed run what the straight run saw.
#include <torch/types.h>

#include <cstdint>
#include <utility>

#include "comm/communicator.hpp"
#include "config/config.hpp"

namespace shardgan::train {

/// Which batch an augmentation is drawn for: each gets its own draws at every step.
enum class AugmentRole : uint64_t { kRealD = 0, kFakeD = 1, kFakeG = 2 };

/// The per-sample random numbers of one augmentation of a batch (rows = samples, on the CPU until `to`).
struct AugmentDraw {
  torch::Tensor color;   ///< [B, 3] uniform [0, 1): brightness, saturation, contrast magnitudes
  torch::Tensor shift;   ///< [B, 2] int64: translation (rows, columns) in [-side/8, side/8]
  torch::Tensor cutout;  ///< [B, 2] int64: centre of the cut-out square (row, column)
  torch::Tensor gate;    ///< [B, 5] uniform [0, 1): an operation applies to a sample when its gate < p

  /// Rows [begin, begin + count) on `device`.
  AugmentDraw rows(int64_t begin, int64_t count, torch::Device device) const;
};

/// The draws of `role` at `step` for the whole global batch of `height` × `width` images.
AugmentDraw draw_augment(uint64_t seed, int64_t step, AugmentRole role, int64_t global_batch, int64_t height,
                         int64_t width);

/// `images` [B, C, H, W] in [-1, 1] (any floating type, any device) augmented by the operations of `policy`, in
/// DiffAugment's order and ranges: brightness ± 0.5, saturation × [0, 2], contrast × [0.5, 1.5], an integer
/// translation of up to 1/8 of each side with zero padding, and one zeroed square of half the side. Each operation
/// applies to a sample when its gate is below `p` (a scalar tensor on the images' device); undefined `p`: always.
/// Differentiable with respect to `images`.
torch::Tensor augment(const torch::Tensor& images, const config::Config::Augment& policy, const AugmentDraw& draw,
                      const torch::Tensor& p = {});

/// ADA's controller of p. D's logits on augmented reals add their signs; every augment.ada_interval steps the sum
/// over all ranks gives r = E[sign(D(x))], and p moves by ± (global batch × interval) / (ada_kimg × 1000) towards
/// where r equals augment.ada_target, clamped to [0, 1]. p and the sum stay on the device (no host sync per step).
class AdaptiveAugment {
 public:
  /// Disabled (p undefined) unless augment.ada_target > 0.
  AdaptiveAugment(const config::Config::Augment& cfg, int64_t global_batch, torch::Device device);
  bool enabled() const { return p_.defined(); }
  /// p as a scalar tensor on the device, for `augment` (undefined when disabled: every operation always applies).
  const torch::Tensor& p() const { return p_; }
  /// Adds this rank's signs of D's logits on the (augmented) reals of one step.
  void observe(const torch::Tensor& real_logits);
  /// After step `done`: every ada_interval steps the ranks' sums are all-reduced into the global one and p is
  /// adjusted. Every rank calls it at every step.
  void after_step(int64_t done, comm::Communicator& comm);
  /// For a checkpoint (collective; the device values must be ready): p and the signs summed over the ranks since the
  /// last adjustment. Afterwards rank 0 holds that sum and the others 0, so the total is unchanged.
  std::pair<double, double> state(comm::Communicator& comm);
  /// Restores a checkpoint's p and sum (every rank reads the same checkpoint: rank 0 keeps the sum).
  void restore(double p, double sum, bool root);
  double value() const { return p_.item<double>(); }

 private:
  double target_ = 0, step_size_ = 0;
  int64_t interval_ = 1, global_batch_ = 0;
  torch::Tensor p_, sum_;  ///< float64 scalars on the device
};

}  // namespace shardgan::train
