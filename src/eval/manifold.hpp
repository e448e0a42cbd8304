#pragma once
// Precision, recall (Kynkäänniemi et al. 2019, "Improved precision and recall metric for assessing generative
// models") and density, coverage (Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative
// models") from k-nearest-neighbour balls in a feature space. Each real (generated) sample's ball reaches its k-th
// nearest other real (generated) sample:
//   precision = share of generated samples inside some real ball       (fidelity)
//   recall    = share of real samples inside some generated ball        (diversity)
//   density   = real balls containing a generated sample, / k, averaged (fidelity, robust to real outliers)
//   coverage  = share of real balls that contain some generated sample  (diversity, robust to fake outliers)
// Identical sets give precision = recall = coverage = 1 and density = (k + 1) / k; far-apart sets give 0.
#include <torch/types.h>

#include <cstdint>

namespace shardgan::eval {

/// The k of the k-NN balls (both papers' recommendation for a few thousand samples).
constexpr int64_t kManifoldK = 3;

/// Rows [begin, end) of a set: the part one rank computes.
struct RowRange {
  int64_t begin = 0, end = 0;
};

/// Distance from each row in `rows` of `set` [N, D] to its k-th nearest other row of `set` (float64, [end − begin]).
torch::Tensor knn_radii(const torch::Tensor& set, int64_t k, RowRange rows);

/// The four sums the metrics need, for generated rows `fake_rows` and real rows `real_rows` (so ranks can each take a
/// part and add their sums): [generated inside some real ball, real balls containing each generated (summed), real
/// inside some generated ball, real balls containing some generated]. float64 [4] on the CPU.
torch::Tensor manifold_sums(const torch::Tensor& real, const torch::Tensor& real_radii, const torch::Tensor& fake,
                            const torch::Tensor& fake_radii, RowRange fake_rows, RowRange real_rows);

struct ManifoldMetrics {
  double precision = 0, recall = 0, density = 0, coverage = 0;
};

/// The metrics from the sums over all rows of `n_real` real and `n_fake` generated samples.
ManifoldMetrics manifold_metrics(const torch::Tensor& sums, int64_t n_real, int64_t n_fake, int64_t k = kManifoldK);

/// All four on whole sets in one process (tests, small sets).
ManifoldMetrics manifold_metrics(const torch::Tensor& real, const torch::Tensor& fake, int64_t k = kManifoldK);

}  // namespace shardgan::eval
