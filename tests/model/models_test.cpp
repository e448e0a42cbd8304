#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/discriminator.hpp"
#include "model/fast_dropout.hpp"
#include "model/generator.hpp"
#include "model/spectral_norm.hpp"
#include "train/gan.hpp"
#include "compat/torch_compat.hpp"
#include "util/error.hpp"
#include "util/random.hpp"

namespace shardgan::model {
namespace {

struct Shape {
  int64_t size, channels, classes;
};

class ModelShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(ModelShapes, GeneratorAndDiscriminatorFitTheImageSize) {
  const Shape s = GetParam();
  Generator g(GeneratorOptions(s.size, s.channels).z_dim(16).width(4).num_classes(s.classes).embed_dim(5));
  Discriminator d(DiscriminatorOptions(s.size, s.channels).width(4).num_classes(s.classes));
  const torch::Tensor z = torch::randn({3, 16});
  const torch::Tensor y = s.classes > 0 ? torch::tensor({0, 1, 2}, torch::kInt64) % s.classes : torch::Tensor();
  const torch::Tensor images = g->forward(z, y);
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{3, s.channels, s.size, s.size}));
  EXPECT_LE(images.abs().max().item<float>(), 1.0f);  // tanh
  const torch::Tensor logits = d->forward(images, y);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3}));
  // Gradients reach every parameter of both networks.
  logits.sum().backward();
  for (const auto& p : g->named_parameters()) EXPECT_TRUE(p.value().grad().defined()) << "G " << p.key();
  for (const auto& p : d->named_parameters()) EXPECT_TRUE(p.value().grad().defined()) << "D " << p.key();
}

INSTANTIATE_TEST_SUITE_P(Sizes, ModelShapes,
                         ::testing::Values(Shape{16, 1, 0}, Shape{32, 3, 0}, Shape{64, 3, 0}, Shape{16, 1, 10},
                                           Shape{32, 3, 2}, Shape{64, 1, 7}));

TEST(Models, SeedConfigurationMatchesTheSeedsNetworks) {
  // The seeds' (and the PyTorch peer's) DCGAN at 32x32x3: the same layers give the same parameter counts, less the
  // 4096 biases of the Linear layer that BatchNorm makes redundant (1,080,707 in the peer).
  Generator g(GeneratorOptions(32, 3));
  Discriminator d(DiscriminatorOptions(32, 3));
  EXPECT_EQ(train::parameter_count(*g), 1080707 - 4096);
  EXPECT_EQ(train::parameter_count(*d), 662977);
  // Dropout after the first two convolutions only, as in the seed.
  int dropouts = 0;
  for (const auto& m : d->modules()) dropouts += m->as<FastDropout>() != nullptr;
  EXPECT_EQ(dropouts, 2);
}

TEST(FastDropout, KeepsOneMinusPScaledAndIsReproducible) {
  const auto mask = dropout_mask({1000, 1000}, 0.3, 42, torch::kFloat32);
  const double kept = (mask > 0).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(kept, 0.7, 0.002);
  EXPECT_NEAR(mask.mean().item<double>(), 1.0, 0.003);  // inverted dropout keeps the expectation
  EXPECT_FLOAT_EQ(mask.max().item<float>(), static_cast<float>(1 / 0.7));
  EXPECT_TRUE(torch::equal(mask, dropout_mask({1000, 1000}, 0.3, 42, torch::kFloat32)));
  EXPECT_FALSE(torch::equal(mask, dropout_mask({1000, 1000}, 0.3, 43, torch::kFloat32)));
  // The stream is splitmix64's, element 4j + k from bits [16k, 16k + 16) of draw j, across the vectorised blocks.
  {
    const int64_t n = 2 * 4096 + 7;
    const auto m = dropout_mask({n}, 0.3, 99, torch::kFloat32);
    const auto* got = m.data_ptr<float>();
    uint64_t state = 99, draw = 0;
    int wrong = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (i % 4 == 0) draw = rng::splitmix64(state);
      const bool keep = ((draw >> (16 * (i % 4))) & 0xFFFF) >= 19661;  // round(0.3 * 65536)
      wrong += got[i] != (keep ? static_cast<float>(1 / 0.7) : 0.0f);
    }
    EXPECT_EQ(wrong, 0);
  }
  // Neighbouring elements are independent (no visible structure in the 16-bit lanes).
  const auto a = (mask.view({-1, 4}) > 0).to(torch::kFloat64);
  const double both = (a.select(1, 0) * a.select(1, 1)).mean().item<double>();
  EXPECT_NEAR(both, 0.49, 0.003);

  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
  FastDropout dropout(0.3, gen);
  const torch::Tensor x = torch::ones({64, 100}, torch::requires_grad());
  gen.set_current_seed(7);
  const auto y1 = dropout->forward(x);
  torch::manual_seed(1);  // LibTorch's global generator plays no part
  gen.set_current_seed(7);
  const auto y2 = dropout->forward(x);
  EXPECT_TRUE(torch::equal(y1, y2));  // seeded from its own generator
  EXPECT_FALSE(torch::equal(y1, dropout->forward(x)));  // which advances
  y1.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), y1.detach()));  // gradient passes through the same mask
  dropout->eval();
  EXPECT_TRUE(torch::equal(dropout->forward(x), x));
}

/// The generator's GEMM form of a transposed convolution gives LibTorch's values and gradients (float32), and stays
/// within bf16's precision under autocast (where LibTorch's own kernel stays in float32).
TEST(Models, TransposedConvolutionAsOneGemmMatchesLibTorch) {
  torch::manual_seed(3);
  const auto x = torch::randn({5, 16, 4, 4}).requires_grad_();
  const auto w = (0.1 * torch::randn({16, 8, 4, 4})).requires_grad_();
  const auto b = torch::randn({8}).requires_grad_();
  const auto expected = torch::conv_transpose2d(x, w, b, /*stride=*/2, /*padding=*/1);
  const auto got = transposed_conv_as_gemm(x, w, b);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-5));
  const auto g = torch::randn_like(expected);
  const auto ref = torch::autograd::grad({expected}, {x, w, b}, {g});
  const auto mine = torch::autograd::grad({got}, {x, w, b}, {g});
  for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_TRUE(torch::allclose(mine[i], ref[i], 1e-4, 1e-5)) << i;
  {
    compat::AutocastGuard autocast(true, torch::kCPU, torch::kBFloat16);
    const auto low = transposed_conv_as_gemm(x, w, b);
    EXPECT_EQ(low.scalar_type(), torch::kFloat32);
    EXPECT_LT((low - expected).abs().max().item<double>(), 0.02 * expected.abs().max().item<double>());
  }
}

TEST(Models, DcganInitialisation) {
  Generator g(GeneratorOptions(32, 3));
  dcgan_init(*g);
  for (const auto& p : g->named_parameters()) {
    const auto& t = p.value();
    if (p.key().find("bias") != std::string::npos) {
      EXPECT_EQ(t.abs().max().item<float>(), 0.0f) << p.key();
    } else if (t.numel() > 1000) {
      EXPECT_NEAR(t.std().item<double>(), 0.02, 0.002) << p.key();
    }
  }
}

TEST(Models, SizesThatCannotBeBuiltAreClearErrors) {
  for (int64_t size : {4, 24, 28, 2048}) {
    try {
      Generator g(GeneratorOptions(size, 1));
      FAIL() << size;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("image size " + std::to_string(size) + " cannot be built"),
                std::string::npos);
    }
  }
}

}  // namespace
}  // namespace shardgan::model

namespace shardgan::model {
namespace {

// Power iteration converges to the largest singular value; the layer then computes with W / σ (spectral norm 1).
TEST(SpectralNorm, ConvergesToTheLargestSingularValueAndNormalisesTheWeight) {
  torch::manual_seed(5);
  torch::nn::Linear linear(12, 7);
  SpectralNorm sn(linear, 0);
  const torch::Tensor x = torch::randn({3, 12});
  sn->train();
  for (int i = 0; i < 50; ++i) sn->forward(x);
  const double largest = torch::linalg_svdvals(linear->weight.detach()).max().item<double>();
  EXPECT_NEAR(sn->sigma(), largest, 1e-4 * largest);
  sn->eval();  // no iteration in eval mode: the same σ, the same output
  const torch::Tensor y = sn->forward(x);
  EXPECT_TRUE(torch::allclose(y, torch::nn::functional::linear(x, linear->weight / largest, linear->bias), 1e-4, 1e-5));
  EXPECT_TRUE(torch::equal(sn->forward(x), y));
  // The wrapped layer keeps its own weight (the trained parameter), and gradients reach it.
  EXPECT_TRUE(linear->weight.requires_grad());
  y.sum().backward();
  EXPECT_GT(linear->weight.grad().abs().sum().item<double>(), 0);
  // A transposed convolution's weight is [in, out, k, k]: its output dimension is 1.
  torch::nn::ConvTranspose2d up(torch::nn::ConvTranspose2dOptions(6, 4, 4).stride(2).padding(1));
  SpectralNorm sn_up(up, 1);
  for (int i = 0; i < 100; ++i) sn_up->forward(torch::randn({2, 6, 4, 4}));
  const double up_largest = torch::linalg_svdvals(up->weight.detach().transpose(0, 1).flatten(1)).max().item<double>();
  EXPECT_NEAR(sn_up->sigma(), up_largest, 1e-3 * up_largest);
}

TEST(SpectralNorm, ModelsWithItKeepTheirShapesAndCarryUAndVAsBuffers) {
  Discriminator d(DiscriminatorOptions(32, 3).spectral_norm(true).num_classes(4));
  Generator g(GeneratorOptions(32, 3).spectral_norm(true).num_classes(4));
  const torch::Tensor labels = torch::tensor({0, 1, 2, 3});
  const torch::Tensor images = g->forward(torch::randn({4, 100}), labels);
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{4, 3, 32, 32}));
  EXPECT_EQ(d->forward(images, labels).sizes(), (std::vector<int64_t>{4}));
  int uv = 0;
  for (const auto& b : d->named_buffers()) uv += b.key().size() > 2 && b.key().substr(b.key().size() - 2) == ".u";
  EXPECT_EQ(uv, 4);  // three convolutions and the head
  const auto before = d->named_buffers()["blocks.0.u"].clone();
  d->forward(images, labels);  // training mode: one more iteration
  EXPECT_FALSE(torch::equal(before, d->named_buffers()["blocks.0.u"]));
}

}  // namespace
}  // namespace shardgan::model

namespace shardgan::model {
namespace {

// model.arch = "resnet": G and D at 32, 64 and 128 px, conditional (class-conditional BatchNorm in G, projection in
// D) and spectrally normalised; outputs in range and of the right shape; gradients reach every parameter.
TEST(ResNet, BuildsFor32To128PixelsAndTrainsEveryParameter) {
  for (int64_t size : {32, 64, 128}) {
    torch::manual_seed(1);
    Generator g(GeneratorOptions(size, 3).arch(Arch::kResNet).width(8).z_dim(16).num_classes(3).spectral_norm(true));
    Discriminator d(DiscriminatorOptions(size, 3).arch(Arch::kResNet).width(8).num_classes(3).spectral_norm(true));
    dcgan_init(*g);  // replaced below by the ResNet initialisation
    resnet_init(*g);
    resnet_init(*d);
    const torch::Tensor labels = torch::tensor({0, 1, 2, 1});
    const torch::Tensor images = g->forward(torch::randn({4, 16}), labels);
    ASSERT_EQ(images.sizes(), (std::vector<int64_t>{4, 3, size, size})) << size;
    EXPECT_LE(images.abs().max().item<float>(), 1.0f);
    const torch::Tensor logits = d->forward(images, labels);
    ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{4})) << size;
    logits.sum().backward();
    for (const auto& p : d->named_parameters()) EXPECT_TRUE(p.value().grad().defined()) << size << " D " << p.key();
    for (const auto& p : g->named_parameters())
      EXPECT_TRUE(p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0)
          << size << " G " << p.key();
  }
}

TEST(ResNet, ClassConditionalBatchNormStartsAsPlainBatchNormAndThenDependsOnTheClass) {
  torch::manual_seed(2);
  Generator g(GeneratorOptions(32, 1).arch(Arch::kResNet).width(4).z_dim(8).num_classes(2));
  resnet_init(*g);
  g->eval();
  const torch::Tensor z = torch::randn({1, 8}).repeat({2, 1});
  const torch::Tensor same = g->forward(z, torch::tensor({0, 1}));
  EXPECT_TRUE(torch::equal(same[0], same[1]));  // gains and biases start at 0
  torch::NoGradGuard no_grad;
  for (auto& p : g->named_parameters())
    if (p.key().find("gain") != std::string::npos) p.value()[1].fill_(0.5);
  const torch::Tensor differ = g->forward(z, torch::tensor({0, 1}));
  EXPECT_FALSE(torch::equal(differ[0], differ[1]));
}

}  // namespace
}  // namespace shardgan::model
