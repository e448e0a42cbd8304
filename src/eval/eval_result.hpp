#pragma once
// The one type of an evaluation's numbers: the evaluator fills it, a metrics.jsonl row carries it
// (report::EvalRow adds where and of which generator), shardgan-eval prints it. A new metric is a field here plus its
// JSON name in report/rows.cpp.
#include <cstdint>
#include <optional>
#include <vector>

namespace shardgan::eval {

/// One evaluation of a generator (and its discriminator) against the real data.
struct EvalResult {
  int64_t n = 0;                            ///< generated images (= real images) compared
  double fd_clf = 0;                        ///< Fréchet distance in the classifier's feature space
  std::optional<double> class_consistency;  ///< conditional models: classifier accuracy on the requested classes
  std::vector<double> per_class;            ///< the same per class (conditional models)
  double d_real = 0, d_fake = 0;            ///< discriminator's mean probability on the real and the generated images
  /// k-NN manifold metrics in the classifier's feature space (eval/manifold.hpp, k = 3).
  double precision = 0, recall = 0, density = 0, coverage = 0;
  std::vector<double> fd_per_class;  ///< conditional models: FD-clf of each class's images (NaN below 2 per class)
  double seconds = 0;
};

}  // namespace shardgan::eval
