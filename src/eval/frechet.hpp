#pragma once
#include <torch/types.h>

#include "comm/communicator.hpp"

namespace shardgan::eval {

/// Running first and second moments of feature vectors in float64 (sums, so ranks can add theirs with one
/// all-reduce), from which the mean and the covariance follow.
class FeatureStats {
 public:
  explicit FeatureStats(int64_t dim);
  /// Adds the rows of `features` [N, dim] (any floating type, any device).
  void add(const torch::Tensor& features);
  /// Sums the statistics of all ranks in place (no-op without a communicator or with one rank).
  void allreduce(comm::Communicator* comm);
  int64_t count() const { return static_cast<int64_t>(count_); }
  torch::Tensor mean() const;
  /// Unbiased covariance (divides by N - 1, as numpy.cov and every FID implementation do).
  torch::Tensor covariance() const;

 private:
  torch::Tensor sum_, outer_;  // [dim], [dim, dim], float64 on the CPU
  double count_ = 0;
};

/// Square root of a symmetric positive semi-definite matrix by eigen-decomposition: V diag(sqrt(max(λ, 0))) Vᵀ.
torch::Tensor sqrtm_psd(const torch::Tensor& matrix);

/// Fréchet distance between N(mu1, s1) and N(mu2, s2):
///   |mu1 − mu2|² + tr(s1) + tr(s2) − 2 tr((s1 s2)^½),
/// with tr((s1 s2)^½) computed as the sum of the square roots of the eigenvalues of the symmetric PSD matrix
/// s1^½ s2 s1^½ (same eigenvalues as s1 s2), in float64. Never complex, never negative beyond rounding.
double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& s1, const torch::Tensor& mu2,
                        const torch::Tensor& s2);

}  // namespace shardgan::eval
