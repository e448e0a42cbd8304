#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compat/torch_compat.hpp"
#include "config/config.hpp"
#include "train/gan.hpp"
#include "train/model_state.hpp"
#include "train/loss.hpp"

namespace shardgan {
namespace {

using torch::Tensor;

config::Config tiny_config(double g_ema) {
  return config::parse(
      "[data]\npath = \"x\"\n[model]\nz_dim = 4\ng_width = 2\nd_width = 2\nconditional = true\n"
      "g_ema = " +
          std::to_string(g_ema) + "\n",
      "test");
}

TEST(Gan, ChannelsLastPutsEvery4dWeightInThatLayoutAndKeepsTheValues) {
  const train::DataSpec spec{{16, 16, 3}, {"a", "b"}};
  torch::manual_seed(3);
  const train::Gan plain(tiny_config(0.999), spec, torch::kCPU);
  torch::manual_seed(3);
  auto cfg = tiny_config(0.999);
  cfg.runtime.channels_last = true;
  const train::Gan nhwc(cfg, spec, torch::kCPU);
  const auto a = train::state_tensors(plain), b = train::state_tensors(nhwc);
  ASSERT_EQ(a.size(), b.size());
  int four_d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    if (b[i].second.dim() != 4) continue;
    ++four_d;
    EXPECT_TRUE(b[i].second.is_contiguous(at::MemoryFormat::ChannelsLast)) << b[i].first;
    EXPECT_FALSE(b[i].second.is_contiguous()) << b[i].first;
  }
  EXPECT_GE(four_d, 6);  // G's transposed convolutions, D's convolutions, and the EMA generator's
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

// update_ema is one at::_foreach_lerp_ from LibTorch 2.0 on (a per-parameter loop in 1.13): on the CPU the result
// must be lerp_'s per parameter bit for bit, as earlier checkpoints were made, also for channels-last weights.
TEST(Ema, ForeachUpdateIsThePerParameterLerpBitForBit) {
  const train::DataSpec spec{{16, 16, 3}, {"a", "b"}};
  auto cfg = tiny_config(0.999);
  cfg.runtime.channels_last = true;
  train::Gan gan(cfg, spec, torch::kCPU);
  const auto g = gan.generator->parameters(), ema = gan.generator_ema->parameters();
  std::vector<Tensor> expected;
  for (const auto& p : ema) expected.push_back(p.detach().clone(at::MemoryFormat::Preserve));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(17);
  torch::NoGradGuard no_grad;
  for (const int64_t updates : {0, 1, 7, 100, 1'000'000}) {
    for (auto& p : g) p.add_(torch::randn(p.sizes(), gen).to(p.options()) * 0.1);  // G moves by a step
    gan.update_ema(updates);
    const double beta = std::min(0.999, (1.0 + updates) / (10.0 + updates));  // update_ema's decay
    for (std::size_t i = 0; i < g.size(); ++i) expected[i].lerp_(g[i], 1.0 - beta);
    for (std::size_t i = 0; i < g.size(); ++i) {
      EXPECT_TRUE(torch::equal(ema[i], expected[i])) << "parameter " << i << " after update " << updates;
      EXPECT_EQ(ema[i].strides(), g[i].strides()) << i;
    }
  }
}

// train.deterministic on CUDA: LibTorch refuses cuBLAS GEMMs unless CUBLAS_WORKSPACE_CONFIG is ":4096:8" or
// ":16:8"; the trainer sets it before CUDA starts when it is missing or another value, and leaves it otherwise.
TEST(Runtime, DeterministicCudaRunsGetADeterministicCublasWorkspace) {
  using compat::deterministic_cublas_workspace;
  EXPECT_EQ(deterministic_cublas_workspace(true, true, nullptr), ":4096:8");     // absent: set
  EXPECT_EQ(deterministic_cublas_workspace(true, true, ""), ":4096:8");          // invalid: replaced
  EXPECT_EQ(deterministic_cublas_workspace(true, true, ":4096:2"), ":4096:8");   // cuBLAS's default-ish: replaced
  EXPECT_EQ(deterministic_cublas_workspace(true, true, ":4096:8 "), ":4096:8");  // not exactly LibTorch's value
  EXPECT_EQ(deterministic_cublas_workspace(true, true, ":4096:8"), std::nullopt);  // valid: the user's kept
  EXPECT_EQ(deterministic_cublas_workspace(true, true, ":16:8"), std::nullopt);
  for (const char* value : {static_cast<const char*>(nullptr), ":1:1", ":16:8"}) {
    EXPECT_EQ(deterministic_cublas_workspace(false, true, value), std::nullopt);  // not deterministic: untouched
    EXPECT_EQ(deterministic_cublas_workspace(true, false, value), std::nullopt);  // runtime.device = "cpu"
  }
}

TEST(Loss, BceAndHingeMatchTheirFormulas) {
  const Tensor real = torch::tensor({2.0f, -1.0f, 0.5f}), fake = torch::tensor({-3.0f, 0.0f, 1.5f});
  const auto bce = train::make_loss(config::Loss::kBce);
  const auto softplus = [](const Tensor& x) { return torch::log1p(torch::exp(x)); };
  // −log σ(x) = softplus(−x), −log(1 − σ(x)) = softplus(x)
  EXPECT_TRUE(torch::allclose(bce->discriminator(real, fake), softplus(-real).mean() + softplus(fake).mean()));
  EXPECT_TRUE(torch::allclose(bce->generator(fake), softplus(-fake).mean()));
  const auto hinge = train::make_loss(config::Loss::kHinge);
  // D: mean(relu(1 − real)) = (0 + 2 + 0.5) / 3, mean(relu(1 + fake)) = (0 + 1 + 2.5) / 3
  EXPECT_NEAR(hinge->discriminator(real, fake).item<float>(), 2.5f / 3 + 3.5f / 3, 1e-6);
  EXPECT_NEAR(hinge->generator(fake).item<float>(), -(-3.0f + 0.0f + 1.5f) / 3, 1e-6);
}

// The one state registry: every tensor of every model once, named by its model; the agreed view leaves out exactly
// the EMA generator's buffers (re-estimated when it samples).
TEST(Gan, StateTensorsCoverEveryModelTensorOnce) {
  const train::DataSpec spec{{8, 8, 1}, {"a", "b"}};
  train::Gan gan(tiny_config(0.999), spec, torch::kCPU);
  const auto named = train::state_tensors(gan);
  std::set<std::string> names;
  for (const auto& [name, t] : named) EXPECT_TRUE(names.insert(name).second) << name;
  std::size_t expected = 0;
  for (const auto* m : std::vector<const torch::nn::Module*>{gan.generator.get(), gan.discriminator.get(),
                                                             gan.generator_ema.get()})
    expected += m->parameters().size() + m->buffers().size();
  EXPECT_EQ(named.size(), expected);
  EXPECT_EQ(names.count("generator_ema/" + gan.generator_ema->named_parameters().begin()->key()), 1u);
  ASSERT_FALSE(gan.generator_ema->buffers().empty());
  const auto agreed = train::state_tensors(gan, train::StateView::kAgreed);
  EXPECT_EQ(agreed.size(), expected - gan.generator_ema->buffers().size());
  for (const auto& b : gan.generator_ema->named_buffers())
    for (const auto& [name, t] : agreed) EXPECT_NE(name, "generator_ema/" + b.key());
  const auto modules = train::state_modules(gan);
  ASSERT_EQ(modules.size(), 3u);
  EXPECT_EQ(modules[2].name, "generator_ema");
  EXPECT_EQ(train::state_optimizers(gan).size(), 2u);
}

}  // namespace
}  // namespace shardgan
