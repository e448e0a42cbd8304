#include "eval/evaluator.hpp"

#include <torch/torch.h>

#include <chrono>
#include <limits>

#include "data/shard_dataset.hpp"
#include "eval/manifold.hpp"
#include "parallel/tensor_comm.hpp"
#include "util/error.hpp"
#include "util/random.hpp"

namespace shardgan::eval {
using torch::Tensor;

namespace {

constexpr int64_t kChunk = 250;

void sum_over_ranks(comm::Communicator* comm, const Tensor& t) {
  if (comm == nullptr || comm->size() == 1) return;
  parallel::allreduce(*comm, t, comm::ReduceOp::kSum);
}

/// The rows [begin, begin + m) every rank holds of an [n, …] tensor, assembled on every rank (a sum of zero-padded
/// parts: exact, and one all-reduce), in float64 on the CPU.
Tensor gather_rows(comm::Communicator* comm, const Tensor& mine, int64_t begin, int64_t n) {
  std::vector<int64_t> shape = mine.sizes().vec();
  shape[0] = n;
  Tensor all = torch::zeros(shape, torch::kFloat64);
  all.narrow(0, begin, mine.size(0)).copy_(mine.to(torch::kCPU, torch::kFloat64));
  sum_over_ranks(comm, all);
  return all;
}

/// FD-clf of each class: the real and the generated rows of that class (NaN where a class has fewer than 2).
std::vector<double> fd_per_class(const Tensor& real, const Tensor& fake, const Tensor& labels, int64_t classes) {
  std::vector<double> out;
  for (int64_t k = 0; k < classes; ++k) {
    const Tensor rows = labels.eq(k).nonzero().flatten();
    if (rows.numel() < 2) {
      out.push_back(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    FeatureStats r(real.size(1)), f(real.size(1));
    r.add(real.index_select(0, rows));
    f.add(fake.index_select(0, rows));
    out.push_back(frechet_distance(r.mean(), r.covariance(), f.mean(), f.covariance()));
  }
  return out;
}

/// Restores a module's training mode when it goes out of scope.
class ModeGuard {
 public:
  explicit ModeGuard(torch::nn::Module& m) : module_(m), training_(m.is_training()) { m.eval(); }
  ~ModeGuard() { module_.train(training_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  torch::nn::Module& module_;
  bool training_;
};

}  // namespace

Evaluator::Evaluator(Classifier classifier, const data::ShardDataset& dataset, int64_t n, uint64_t seed, int64_t z_dim,
                     comm::Communicator* comm, torch::Device device)
    : classifier_(std::move(classifier)),
      comm_(comm),
      device_(device),
      n_(std::min(n, dataset.size())),
      classes_(static_cast<int64_t>(dataset.manifest().class_names.size())) {
  const int world = comm_ != nullptr ? comm_->size() : 1, rank = comm_ != nullptr ? comm_->rank() : 0;
  begin_ = n_ * rank / world;
  end_ = n_ * (rank + 1) / world;
  // The same draws on every rank, whatever the world size: a permutation of the data, and noise for all n.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(rng::stream_seed(seed, rng::Stream::kEvaluation));
  const Tensor order = torch::randperm(dataset.size(), gen, torch::kInt64).narrow(0, 0, n_);
  const Tensor z = torch::randn({n_, z_dim}, gen);
  std::vector<int64_t> indices(order.data_ptr<int64_t>() + begin_, order.data_ptr<int64_t>() + end_);
  std::vector<int64_t> labels;
  for (int64_t index : indices) labels.push_back(dataset.labels()[static_cast<std::size_t>(index)]);
  std::vector<int64_t> all_labels;
  for (int64_t i = 0; i < n_; ++i)
    all_labels.push_back(dataset.labels()[static_cast<std::size_t>(order.data_ptr<int64_t>()[i])]);
  all_labels_ = torch::tensor(all_labels, torch::kInt64);
  real_images_ = load_images(dataset, indices);
  labels_ = torch::tensor(labels, torch::kInt64);
  z_ = z.narrow(0, begin_, end_ - begin_).clone();

  torch::NoGradGuard no_grad;
  classifier_->eval();
  FeatureStats real(classifier_->feature_dim());
  std::vector<Tensor> features{torch::zeros({0, classifier_->feature_dim()}, torch::kFloat64)};
  for (int64_t i = 0; i < end_ - begin_; i += kChunk) {
    features.push_back(
        classifier_->features(real_images_.narrow(0, i, std::min(kChunk, end_ - begin_ - i)).to(device_)));
    real.add(features.back());
  }
  real.allreduce(comm_);
  real_mean_ = real.mean();
  real_cov_ = real.covariance();
  real_features_ = gather_rows(comm_, torch::cat(features).to(torch::kCPU, torch::kFloat64), begin_, n_);
  real_radii_ = gather_rows(comm_, knn_radii(real_features_, kManifoldK, {begin_, end_}), begin_, n_);
}

EvalResult Evaluator::evaluate(model::GeneratorImpl& generator, model::DiscriminatorImpl& discriminator,
                               bool conditional) {
  const auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  ModeGuard g_mode(generator), d_mode(discriminator);
  FeatureStats fake(classifier_->feature_dim());
  std::vector<Tensor> fake_features{torch::zeros({0, classifier_->feature_dim()}, torch::kFloat64)};
  // [correct per class (C), count per class (C), sum D(real), sum D(fake)]
  Tensor counts = torch::zeros({2 * classes_ + 2}, torch::kFloat64);
  for (int64_t i = 0; i < end_ - begin_; i += kChunk) {
    const int64_t m = std::min(kChunk, end_ - begin_ - i);
    const Tensor y = labels_.narrow(0, i, m).to(device_);
    const Tensor cond = conditional ? y : Tensor();
    const Tensor images = generator.forward(z_.narrow(0, i, m).to(device_), cond).to(torch::kFloat32);
    const Tensor features = classifier_->features(images);
    fake.add(features);
    fake_features.push_back(features.to(torch::kCPU, torch::kFloat64));
    const Tensor correct = classifier_->logits(features).argmax(1).eq(y).to(torch::kCPU, torch::kFloat64);
    const Tensor y_cpu = y.to(torch::kCPU);
    counts.narrow(0, 0, classes_).index_add_(0, y_cpu, correct);
    counts.narrow(0, classes_, classes_).index_add_(0, y_cpu, torch::ones({m}, torch::kFloat64));
    const Tensor real = real_images_.narrow(0, i, m).to(device_);
    counts[2 * classes_] += torch::sigmoid(discriminator.forward(real, cond)).sum().item<double>();
    counts[2 * classes_ + 1] += torch::sigmoid(discriminator.forward(images, cond)).sum().item<double>();
  }
  fake.allreduce(comm_);
  sum_over_ranks(comm_, counts);
  const Tensor all_fake = gather_rows(comm_, torch::cat(fake_features), begin_, n_);
  const Tensor fake_radii = gather_rows(comm_, knn_radii(all_fake, kManifoldK, {begin_, end_}), begin_, n_);
  Tensor sums = manifold_sums(real_features_, real_radii_, all_fake, fake_radii, {begin_, end_}, {begin_, end_});
  sum_over_ranks(comm_, sums);

  EvalResult r;
  r.n = n_;
  r.fd_clf = frechet_distance(real_mean_, real_cov_, fake.mean(), fake.covariance());
  const auto c = counts.accessor<double, 1>();
  r.d_real = c[2 * classes_] / static_cast<double>(n_);
  r.d_fake = c[2 * classes_ + 1] / static_cast<double>(n_);
  const ManifoldMetrics m = manifold_metrics(sums, n_, n_);
  r.precision = m.precision;
  r.recall = m.recall;
  r.density = m.density;
  r.coverage = m.coverage;
  if (conditional) {
    double correct = 0;
    for (int64_t k = 0; k < classes_; ++k) {
      correct += c[k];
      r.per_class.push_back(c[classes_ + k] > 0 ? c[k] / c[classes_ + k] : 0.0);
    }
    r.class_consistency = correct / static_cast<double>(n_);
    r.fd_per_class = fd_per_class(real_features_, all_fake, all_labels_, classes_);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace shardgan::eval
