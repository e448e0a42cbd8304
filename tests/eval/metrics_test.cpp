// Metrics, EMA generator and run report: known answers, round trips, and the shapes the report promises.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "eval/classifier.hpp"
#include "eval/frechet.hpp"
#include "eval/manifold.hpp"
#include "fixtures.hpp"
#include "util/error.hpp"
#include "util/png.hpp"

namespace shardgan {
namespace {

using torch::Tensor;

Tensor random_spd(int64_t d, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const Tensor a = torch::randn({d, d}, gen, torch::kFloat64);
  return a.mm(a.t()) / d + 0.1 * torch::eye(d, torch::kFloat64);
}

TEST(Frechet, IdenticalGaussiansAreAtDistanceZero) {
  const Tensor s = random_spd(16, 1);
  const Tensor mu = torch::arange(16, torch::kFloat64);
  EXPECT_NEAR(eval::frechet_distance(mu, s, mu, s), 0.0, 1e-9);
}

TEST(Frechet, TwoByTwoNonCommutingCaseMatchesTheClosedForm) {
  // For 2x2 M with positive eigenvalues, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)). s1 s2 = [[2, 3], [1, 6]]:
  // trace 8, determinant 9, so tr sqrt(s1 s2) = sqrt(14); s1 and s2 do not commute.
  const Tensor s1 = torch::tensor({2.0, 1.0, 1.0, 2.0}, torch::kFloat64).view({2, 2});
  const Tensor s2 = torch::tensor({1.0, 0.0, 0.0, 3.0}, torch::kFloat64).view({2, 2});
  const Tensor mu1 = torch::tensor({0.0, 0.0}, torch::kFloat64), mu2 = torch::tensor({1.0, 2.0}, torch::kFloat64);
  EXPECT_NEAR(eval::frechet_distance(mu1, s1, mu2, s2), 5.0 + 4.0 + 4.0 - 2.0 * std::sqrt(14.0), 1e-10);
}

TEST(Frechet, IsotropicGaussiansOfDifferentScale) {
  // N(0, I) vs N(mu, 4I) in d dimensions: |mu|^2 + d + 4d - 2 * 2d = |mu|^2 + d.
  const int64_t d = 64;
  const Tensor mu = torch::full({d}, 0.5, torch::kFloat64);
  EXPECT_NEAR(eval::frechet_distance(torch::zeros({d}, torch::kFloat64), torch::eye(d, torch::kFloat64), mu,
                                     4 * torch::eye(d, torch::kFloat64)),
              0.25 * d + d, 1e-9);
}

TEST(Frechet, InvariantUnderARotationOfBothAndSoundForSingularCovariances) {
  const int64_t d = 32;
  const Tensor a = random_spd(d, 2), b = random_spd(d, 3);
  const Tensor mu1 = torch::zeros({d}, torch::kFloat64), mu2 = torch::ones({d}, torch::kFloat64);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const Tensor q = std::get<0>(torch::linalg_qr(torch::randn({d, d}, gen, torch::kFloat64)));
  const double direct = eval::frechet_distance(mu1, a, mu2, b);
  const double rotated = eval::frechet_distance(q.mv(mu1), q.mm(a).mm(q.t()), q.mv(mu2), q.mm(b).mm(q.t()));
  EXPECT_NEAR(direct, rotated, 1e-8 * direct);
  // Rank-deficient covariances (fewer samples than features): finite, never meaningfully negative.
  const Tensor x = torch::randn({8, d}, gen, torch::kFloat64);
  const Tensor singular = x.t().mm(x) / 7;
  const double fd = eval::frechet_distance(mu1, singular, mu1, singular);
  EXPECT_TRUE(std::isfinite(fd));
  // sqrt turns eigenvalues at rounding level (1e-15) into 3e-8 each: relative to the trace, still ~1e-7.
  EXPECT_NEAR(fd / singular.trace().item<double>(), 0.0, 1e-6);
  const Tensor root = eval::sqrtm_psd(a);
  EXPECT_TRUE(torch::allclose(root.mm(root), a, 1e-10, 1e-10));
}

// Known answers of precision/recall/density/coverage (k = 3).
TEST(Manifold, IdenticalSetsAreFullAndFarApartSetsAreEmpty) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const Tensor real = torch::randn({600, 16}, gen, torch::kFloat64);
  const eval::ManifoldMetrics same = eval::manifold_metrics(real, real.clone());
  EXPECT_EQ(same.precision, 1.0);
  EXPECT_EQ(same.recall, 1.0);
  EXPECT_EQ(same.coverage, 1.0);
  // Each real ball holds its centre and its k neighbours: (k + 1) / k.
  EXPECT_NEAR(same.density, 4.0 / 3.0, 1e-12);
  const eval::ManifoldMetrics apart = eval::manifold_metrics(real, real + 1000.0);
  EXPECT_EQ(apart.precision, 0.0);
  EXPECT_EQ(apart.recall, 0.0);
  EXPECT_EQ(apart.density, 0.0);
  EXPECT_EQ(apart.coverage, 0.0);
}

// A generator that reproduces only half of the real set (mode dropping): fidelity stays high, diversity halves.
TEST(Manifold, ModeDroppingLowersRecallAndCoverageNotPrecision) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const Tensor a = torch::randn({300, 8}, gen, torch::kFloat64), b = torch::randn({300, 8}, gen, torch::kFloat64) + 50;
  const Tensor real = torch::cat({a, b});
  const Tensor fake = torch::cat({a, a.flip(0)});  // only mode a, every sample twice
  const eval::ManifoldMetrics m = eval::manifold_metrics(real, fake);
  EXPECT_EQ(m.precision, 1.0);
  EXPECT_EQ(m.coverage, 0.5);
  EXPECT_NEAR(m.recall, 0.5, 1e-12);
  // Sharded sums add up to the whole: two "ranks" with half the rows each.
  const Tensor rr = eval::knn_radii(real, 3, {0, 600}), fr = eval::knn_radii(fake, 3, {0, 600});
  // (The same distances from other blocks of rows: equal up to the GEMM's summation order. Mode b sits at +50, so
  // |x|^2 + |y|^2 - 2 x.y cancels ~2e4 down to ~4: float64 leaves ~1e-12 absolute, more than 1e-12 relative with the
  // torch 2.15 wheel's BLAS.)
  EXPECT_TRUE(torch::allclose(torch::cat({eval::knn_radii(real, 3, {0, 250}), eval::knn_radii(real, 3, {250, 600})}),
                              rr, 1e-9, 0));
  const Tensor halves = eval::manifold_sums(real, rr, fake, fr, {0, 300}, {0, 111}) +
                        eval::manifold_sums(real, rr, fake, fr, {300, 600}, {111, 600});
  EXPECT_TRUE(torch::equal(halves, eval::manifold_sums(real, rr, fake, fr, {0, 600}, {0, 600})));
}

TEST(FeatureStats, MatchTheDirectMeanAndUnbiasedCovarianceWhateverTheChunks) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const Tensor f = torch::randn({500, 6}, gen, torch::kFloat32) * 3 + 1;
  eval::FeatureStats whole(6), chunks(6);
  whole.add(f);
  for (int64_t i = 0; i < 500; i += 97) chunks.add(f.narrow(0, i, std::min<int64_t>(97, 500 - i)));
  const Tensor fd = f.to(torch::kFloat64);
  const Tensor mean = fd.mean(0);
  const Tensor centred = fd - mean;
  const Tensor cov = centred.t().mm(centred) / 499;
  EXPECT_EQ(whole.count(), 500);
  EXPECT_TRUE(torch::allclose(whole.mean(), mean, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(whole.covariance(), cov, 1e-9, 1e-9));
  EXPECT_TRUE(torch::allclose(chunks.covariance(), cov, 1e-9, 1e-9));
  EXPECT_THROW(eval::FeatureStats(6).covariance(), Error);
}

TEST(Classifier, SavesAndLoadsAndRefusesOtherData) {
  testing::TempDir tmp;
  eval::ClassifierInfo info;
  info.shape = {16, 16, 3};
  info.class_names = {"cat", "dog", "bird"};
  info.width = 4;
  info.holdout_accuracy = 0.75;
  info.holdout_count = 12;
  eval::Classifier model(info);
  model->eval();
  const Tensor x = torch::rand({5, 3, 16, 16}) * 2 - 1;
  const Tensor expected = model->forward(x);
  EXPECT_EQ(model->features(x).sizes(), (std::vector<int64_t>{5, 128}));
  eval::save_classifier(tmp.path() / "clf.pt", model, info);
  eval::ClassifierInfo loaded_info;
  eval::Classifier loaded = eval::load_classifier(tmp.path() / "clf.pt", &loaded_info, torch::kCPU);
  EXPECT_TRUE(torch::equal(loaded->forward(x), expected));
  EXPECT_EQ(loaded_info.class_names, info.class_names);
  EXPECT_EQ(loaded_info.shape, info.shape);
  EXPECT_EQ(loaded_info.holdout_accuracy, 0.75);
  EXPECT_NO_THROW(eval::require_compatible("clf.pt", loaded_info, {16, 16, 3}, {"cat", "dog", "bird"}));
  try {
    eval::require_compatible("clf.pt", loaded_info, {32, 32, 3}, {"cat", "dog", "bird"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("clf.pt: classifier was trained on 16x16x3 images"), std::string::npos);
  }
  EXPECT_THROW(eval::require_compatible("clf.pt", loaded_info, {16, 16, 3}, {"dog", "cat", "bird"}), Error);
  testing::write_text(tmp.path() / "junk.pt", "not an archive");
  try {
    eval::load_classifier(tmp.path() / "junk.pt", nullptr, torch::kCPU);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.pt"), std::string::npos);
  }
}

}  // namespace
}  // namespace shardgan
