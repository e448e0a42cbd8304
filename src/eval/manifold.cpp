#include "eval/manifold.hpp"

#include <torch/torch.h>

#include "util/error.hpp"

namespace shardgan::eval {
using torch::Tensor;

namespace {

constexpr int64_t kChunk = 256;  // rows per distance block: kChunk × N float64 distances at a time
// A distance within this relative margin of a ball's radius counts as inside. The same pair's distance, computed in
// another block of rows (the radius from the real-real block, the test from the real-fake one), can differ in its
// last bits: a GEMM's summation order depends on the blocks' shapes (LibTorch 2.x's BLAS path does). Without the
// margin, an image's own k-th neighbour could fall just outside its ball, and the result would depend on chunking
// and on the number of ranks.
constexpr double kSlack = 1e-9;

Tensor widened(const Tensor& radii) {
  return radii * (1 + kSlack);
}

Tensor as_features(const Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
}

/// Euclidean distances [a rows, b rows] through the matrix product (|a|² + |b|² − 2ab), in float64: its
/// cancellation error (~1e-16 of |a|²) is far below any neighbour distance, and it is a GEMM, not a loop.
Tensor distances(const Tensor& a, const Tensor& b) {
  return torch::cdist(a, b, 2.0, /*compute_mode=*/1);
}

}  // namespace

Tensor knn_radii(const Tensor& set, int64_t k, RowRange rows) {
  const Tensor s = as_features(set);
  if (s.size(0) <= k) fail("precision/recall: ", s.size(0), " samples cannot have ", k, " nearest neighbours");
  std::vector<Tensor> out;
  for (int64_t i = rows.begin; i < rows.end; i += kChunk) {
    const Tensor d = distances(s.narrow(0, i, std::min(kChunk, rows.end - i)), s);
    // The k + 1 smallest include the row itself (distance 0): the k-th neighbour is the last of them.
    out.push_back(std::get<0>(d.topk(k + 1, 1, /*largest=*/false, /*sorted=*/true)).select(1, k));
  }
  return out.empty() ? torch::zeros({0}, torch::kFloat64) : torch::cat(out);
}

Tensor manifold_sums(const Tensor& real, const Tensor& real_radii, const Tensor& fake, const Tensor& fake_radii,
                     RowRange fake_rows, RowRange real_rows) {
  const Tensor r = as_features(real), f = as_features(fake);
  const Tensor r_radii = widened(real_radii.to(torch::kFloat64)), f_radii = widened(fake_radii.to(torch::kFloat64));
  Tensor sums = torch::zeros({4}, torch::kFloat64);
  for (int64_t j = fake_rows.begin; j < fake_rows.end; j += kChunk) {
    const Tensor inside = distances(f.narrow(0, j, std::min(kChunk, fake_rows.end - j)), r).le(r_radii.view({1, -1}));
    sums[0] += inside.any(1).sum().item<double>();
    sums[1] += inside.sum().item<double>();
  }
  for (int64_t i = real_rows.begin; i < real_rows.end; i += kChunk) {
    const int64_t m = std::min(kChunk, real_rows.end - i);
    const Tensor d = distances(r.narrow(0, i, m), f);
    sums[2] += d.le(f_radii.view({1, -1})).any(1).sum().item<double>();
    sums[3] += std::get<0>(d.min(1)).le(r_radii.narrow(0, i, m)).sum().item<double>();
  }
  return sums;
}

ManifoldMetrics manifold_metrics(const Tensor& sums, int64_t n_real, int64_t n_fake, int64_t k) {
  const auto s = sums.to(torch::kFloat64).contiguous();
  const double* v = s.data_ptr<double>();
  ManifoldMetrics m;
  m.precision = v[0] / static_cast<double>(n_fake);
  m.density = v[1] / static_cast<double>(k * n_fake);
  m.recall = v[2] / static_cast<double>(n_real);
  m.coverage = v[3] / static_cast<double>(n_real);
  return m;
}

ManifoldMetrics manifold_metrics(const Tensor& real, const Tensor& fake, int64_t k) {
  const int64_t n = real.size(0), m = fake.size(0);
  const Tensor sums = manifold_sums(real, knn_radii(real, k, {0, n}), fake, knn_radii(fake, k, {0, m}), {0, m}, {0, n});
  return manifold_metrics(sums, n, m, k);
}

}  // namespace shardgan::eval
