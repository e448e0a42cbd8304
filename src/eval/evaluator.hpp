#pragma once
#include <torch/types.h>

#include <filesystem>
#include <optional>
#include <vector>

#include "comm/communicator.hpp"
#include "eval/classifier.hpp"
#include "eval/eval_result.hpp"
#include "eval/frechet.hpp"
#include "model/discriminator.hpp"
#include "model/generator.hpp"

namespace shardgan::data {
class ShardDataset;
}

namespace shardgan::eval {


/// FD-clf, precision/recall/density/coverage, class consistency and per-class FD-clf, and discriminator scores,
/// sharded over the ranks of `comm` (nullptr: one process).
/// The real side is fixed at construction: `n` images of `dataset` drawn without replacement by `seed` (all of it
/// when smaller); their classifier features are reduced to mean/covariance once. Each evaluation generates `n`
/// images with the same noise, each for the class of the real image at the same position (so the generated class
/// mix is the data's), and every rank handles a contiguous slice of the `n`. The k-NN metrics need every feature on
/// every rank: the slices are gathered (n × 128 float64, 5 MB for n = 5000) and each rank computes a slice of the
/// distance blocks.
class Evaluator {
 public:
  Evaluator(Classifier classifier, const data::ShardDataset& dataset, int64_t n, uint64_t seed, int64_t z_dim,
            comm::Communicator* comm, torch::Device device);

  /// `generator` and `discriminator` are used in eval mode (their previous modes are restored). Collective: every
  /// rank must call it.
  EvalResult evaluate(model::GeneratorImpl& generator, model::DiscriminatorImpl& discriminator, bool conditional);

 private:
  Classifier classifier_;
  comm::Communicator* comm_;
  torch::Device device_;
  int64_t n_, begin_, end_, classes_;
  torch::Tensor real_images_, labels_, z_;  // this rank's slice
  torch::Tensor real_mean_, real_cov_;
  torch::Tensor real_features_, real_radii_, all_labels_;  // all n (every rank)
};

}  // namespace shardgan::eval
