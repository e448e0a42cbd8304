// Metrics, EMA generator and run report: known answers, round trips, and the shapes the report promises.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "config/config.hpp"
#include "eval/classifier.hpp"
#include "eval/frechet.hpp"
#include "fixtures.hpp"
#include "train/gan.hpp"
#include "train/report.hpp"
#include "train/run_outputs.hpp"
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

TEST(Report, Base64KnownVectors) {
  EXPECT_EQ(train::base64(""), "");
  EXPECT_EQ(train::base64("f"), "Zg==");
  EXPECT_EQ(train::base64("fo"), "Zm8=");
  EXPECT_EQ(train::base64("foo"), "Zm9v");
  EXPECT_EQ(train::base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(train::base64(std::string("\xff\x00\x10", 3)), "/wAQ");
}

TEST(Report, HasEveryCurveTheSamplesAndTheEscapedConfig) {
  train::ReportInfo info{"run <1>", "[data]\npath = \"a<b\"\n", 2, "cpu", 128, 100, {"cat", "dog"}};
  std::vector<train::MetricsRow> rows;
  for (int64_t s = 10; s <= 100; s += 10)
    rows.push_back(train::MetricsRow{s, s / 50, 1.0 + 0.01 * s, 0.7, 0.6, 0.4, 400, 0.1 * s});
  std::vector<train::EvalRow> evals{{0, 0.0, 300, 0.1, {}, 0.5, 0.5, 100, 0.1, "ema"},
                                    {50, 1.0, 40, 0.8, {}, 0.6, 0.4, 100, 0.1, "ema"}};
  const std::string html = train::render_report(info, rows, evals, {{"epoch-0001", "\x89PNG"}});
  for (const char* curve : {"loss_d", "loss_g", "D(x)", "D(G(z))", "img/s", "FD-clf", "class consistency"})
    EXPECT_NE(html.find(std::string("class=\"curve\" data-name=\"") + curve), std::string::npos) << curve;
  EXPECT_NE(html.find("data:image/png;base64,iVBORw=="), std::string::npos);
  EXPECT_NE(html.find("path = &quot;a&lt;b&quot;"), std::string::npos);
  EXPECT_NE(html.find("run &lt;1&gt;"), std::string::npos);
  EXPECT_EQ(html.find("http://"),
            html.find("http://www.w3.org/2000/svg"));  // no link leaves the file but the SVG namespace
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // Without metrics or rows: still a page, no metric charts.
  const std::string empty = train::render_report(info, {}, {}, {});
  EXPECT_EQ(empty.find("FD-clf"), std::string::npos);
  EXPECT_NE(empty.find("no samples yet"), std::string::npos);
}

TEST(RunOutputs, ResumeRemovesGridsOfTheReplacedHistoryAndTheReportKeepsAtMost24) {
  testing::TempDir tmp;
  const auto samples = tmp.path() / "samples";
  std::filesystem::create_directories(samples);
  const Image grid(4, 4, 1, 128);
  for (const char* name : {"epoch-0001.png", "epoch-0003.png", "step-000050.png", "step-000200.png"})
    write_png(samples / name, grid);
  // Resumed from step 100 with 50 steps per epoch: epoch 3 (step 150) and step 200 were written after it.
  train::RunOutputs outputs(tmp.path(), 100, 1000, 50);
  EXPECT_TRUE(std::filesystem::exists(samples / "epoch-0001.png"));
  EXPECT_TRUE(std::filesystem::exists(samples / "step-000050.png"));
  EXPECT_FALSE(std::filesystem::exists(samples / "epoch-0003.png"));
  EXPECT_FALSE(std::filesystem::exists(samples / "step-000200.png"));
  for (int i = 0; i < 40; ++i) write_png(samples / ("step-" + std::to_string(100000 + i) + ".png"), grid);
  outputs.write_report(train::ReportInfo{"r", "", 1, "cpu", 8, 1000, {}});
  std::ifstream in(tmp.path() / "report.html");
  const std::string html((std::istreambuf_iterator<char>(in)), {});
  std::size_t images = 0;
  for (std::size_t at = html.find("data:image/png"); at != std::string::npos; at = html.find("data:image/png", at + 1))
    ++images;
  EXPECT_EQ(images, 24u);
  EXPECT_NE(html.find("step-100039"), std::string::npos);  // the newest is always there
}

config::Config tiny_config(double g_ema) {
  return config::parse(
      "[data]\npath = \"x\"\n[model]\nz_dim = 4\ng_width = 2\nd_width = 2\nconditional = true\n"
      "g_ema = " +
          std::to_string(g_ema) + "\n",
      "test");
}

TEST(Ema, FollowsTheGeneratorWithTheWarmedUpDecay) {
  const train::DataSpec spec{{8, 8, 1}, {"a", "b"}};
  EXPECT_FALSE(train::Gan(tiny_config(0), spec, torch::kCPU).generator_ema);
  train::Gan gan(tiny_config(0.999), spec, torch::kCPU);
  ASSERT_TRUE(gan.generator_ema);
  const auto g = gan.generator->parameters(), ema = gan.generator_ema->parameters();
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_TRUE(torch::equal(g[i], ema[i]));
  std::vector<Tensor> before;
  for (const auto& p : g) before.push_back(p.detach().clone());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : g) p.add_(1.0);
  }
  gan.update_ema(0);  // decay min(0.999, (1 + 0) / (10 + 0)) = 0.1
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_TRUE(torch::allclose(ema[i], before[i] + 0.9, 1e-6, 1e-6)) << i;
  gan.update_ema(1'000'000);  // long runs: the configured decay
  for (std::size_t i = 0; i < g.size(); ++i)
    EXPECT_TRUE(torch::allclose(ema[i], before[i] + 0.9 + 0.001 * 0.1, 1e-6, 1e-6)) << i;
  // Sampling re-estimates its BatchNorm statistics; the result does not depend on how often that happened.
  const Tensor z = torch::randn({4, 4});
  const Tensor y = torch::tensor({0, 1, 0, 1}, torch::kInt64);
  torch::NoGradGuard no_grad;
  const Tensor first = gan.sampling_generator().forward(z, y);
  const Tensor second = gan.sampling_generator().forward(z, y);
  EXPECT_TRUE(torch::equal(first, second));
  EXPECT_FALSE(gan.generator_ema->is_training());
}

TEST(Config, EmaAndEvalKeysAreChecked) {
  EXPECT_THROW(tiny_config(1.0), Error);
  EXPECT_THROW(config::parse("[data]\npath = \"x\"\n[eval]\nn = 0\n", "t"), Error);
  EXPECT_THROW(config::parse("[data]\npath = \"x\"\n[eval]\nevery_epoch = 1\n", "t"), Error);
  const auto c = config::parse("[data]\npath = \"x\"\n[eval]\nclassifier = \"c.pt\"\nn = 100\n", "t");
  EXPECT_EQ(c.eval.classifier, "c.pt");
  EXPECT_EQ(c.eval.n, 100);
  EXPECT_EQ(c.model.g_ema, 0.999);
  // The EMA decay does not change the models' shapes: checkpoints stay loadable.
  EXPECT_EQ(tiny_config(0.9).model_hash(), tiny_config(0.99).model_hash());
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
