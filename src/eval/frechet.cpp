#include "eval/frechet.hpp"

#include <torch/torch.h>

#include "parallel/tensor_comm.hpp"
#include "util/error.hpp"

namespace shardgan::eval {

using torch::Tensor;

FeatureStats::FeatureStats(int64_t dim)
    : sum_(torch::zeros({dim}, torch::kFloat64)), outer_(torch::zeros({dim, dim}, torch::kFloat64)) {}

void FeatureStats::add(const Tensor& features) {
  const Tensor f = features.detach().to(torch::kCPU, torch::kFloat64);
  if (f.dim() != 2 || f.size(1) != sum_.size(0))
    fail("feature statistics: expected [N, ", sum_.size(0), "] features, got ", f.sizes());
  sum_ += f.sum(0);
  outer_ += f.t().mm(f);
  count_ += static_cast<double>(f.size(0));
}

void FeatureStats::allreduce(comm::Communicator* comm) {
  if (comm == nullptr || comm->size() == 1) return;
  Tensor packed = torch::cat({sum_, outer_.flatten(), torch::full({1}, count_, torch::kFloat64)}).contiguous();
  parallel::allreduce(*comm, packed, comm::ReduceOp::kSum);
  const int64_t d = sum_.size(0);
  sum_ = packed.narrow(0, 0, d).clone();
  outer_ = packed.narrow(0, d, d * d).view({d, d}).clone();
  count_ = packed[d + d * d].item<double>();
}

Tensor FeatureStats::mean() const {
  if (count_ < 1) fail("feature statistics: no samples");
  return sum_ / count_;
}

Tensor FeatureStats::covariance() const {
  if (count_ < 2) fail("feature statistics: a covariance needs at least 2 samples, have ", count_);
  const Tensor mu = mean();
  const Tensor cov = (outer_ - count_ * torch::outer(mu, mu)) / (count_ - 1);
  return (cov + cov.t()) / 2;  // exactly symmetric
}

Tensor sqrtm_psd(const Tensor& matrix) {
  const Tensor m = matrix.to(torch::kFloat64);
  const auto [values, vectors] = torch::linalg_eigh(m);
  return vectors.mm(torch::diag(values.clamp_min(0).sqrt())).mm(vectors.t());
}

double frechet_distance(const Tensor& mu1, const Tensor& s1, const Tensor& mu2, const Tensor& s2) {
  const Tensor a = s1.to(torch::kFloat64), b = s2.to(torch::kFloat64);
  if (a.dim() != 2 || a.size(0) != a.size(1) || b.sizes() != a.sizes() || mu1.numel() != a.size(0) ||
      mu2.numel() != a.size(0))
    fail("Fréchet distance: mean and covariance shapes disagree");
  const Tensor root = sqrtm_psd(a);
  Tensor product = root.mm(b).mm(root);
  product = (product + product.t()) / 2;
  const double trace_sqrt = torch::linalg_eigvalsh(product).clamp_min(0).sqrt().sum().item<double>();
  const Tensor diff = mu1.to(torch::kFloat64) - mu2.to(torch::kFloat64);
  return diff.dot(diff).item<double>() + a.trace().item<double>() + b.trace().item<double>() - 2 * trace_sqrt;
}

}  // namespace shardgan::eval
