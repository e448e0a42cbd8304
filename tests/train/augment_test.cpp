#include "train/augment.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace shardgan::train {
namespace {

config::Config::Augment policy(bool color, bool translation, bool cutout) {
  config::Config::Augment a;
  a.color = color;
  a.translation = translation;
  a.cutout = cutout;
  return a;
}

/// A draw for `b` samples with every operation at a chosen value.
AugmentDraw fixed_draw(int64_t b, std::vector<float> color, int64_t dy, int64_t dx, int64_t cy, int64_t cx) {
  AugmentDraw d;
  d.color = torch::tensor(color).repeat({b, 1});
  d.shift = torch::tensor({dy, dx}).repeat({b, 1});
  d.cutout = torch::tensor({cy, cx}).repeat({b, 1});
  d.gate = torch::full({b, 5}, 0.5f);
  return d;
}

TEST(Augment, ColorMovesBrightnessSaturationAndContrastByTheDrawnAmounts) {
  const torch::Tensor x = torch::rand({2, 3, 4, 4}) * 2 - 1;
  // Brightness: u = 1 adds 0.5; saturation u = 0.5 and contrast u = 0.5 are the identity.
  EXPECT_TRUE(torch::allclose(augment(x, policy(true, false, false), fixed_draw(2, {1, 0.5, 0.5}, 0, 0, 0, 0)), x + 0.5,
                              1e-5, 1e-5));
  // Saturation u = 0: every pixel becomes the mean of its channels (grey).
  const torch::Tensor grey = augment(x, policy(true, false, false), fixed_draw(2, {0.5, 0, 0.5}, 0, 0, 0, 0));
  EXPECT_TRUE(torch::allclose(grey, x.mean(1, true).expand_as(x), 1e-5, 1e-5));
  // Contrast u = 0: halfway to the image's mean.
  const torch::Tensor mean = x.mean({1, 2, 3}, true);
  EXPECT_TRUE(torch::allclose(augment(x, policy(true, false, false), fixed_draw(2, {0.5, 0.5, 0}, 0, 0, 0, 0)),
                              (x - mean) * 0.5 + mean, 1e-5, 1e-5));
}

TEST(Augment, TranslationShiftsWithZeroPadding) {
  const torch::Tensor x = torch::arange(1, 1 + 2 * 1 * 8 * 8, torch::kFloat32).view({2, 1, 8, 8});
  const torch::Tensor y = augment(x, policy(false, true, false), fixed_draw(2, {0, 0, 0}, 1, -1, 0, 0));
  // out[i][j] = x[i + 1][j − 1]: the last row and the first column are padding.
  EXPECT_TRUE(torch::equal(y.slice(2, 0, 7).slice(3, 1, 8), x.slice(2, 1, 8).slice(3, 0, 7)));
  EXPECT_EQ(y.select(2, 7).abs().sum().item<float>(), 0);
  EXPECT_EQ(y.select(3, 0).abs().sum().item<float>(), 0);
}

TEST(Augment, CutoutZeroesOneSquareOfHalfTheSide) {
  const torch::Tensor x = torch::ones({1, 3, 8, 8});
  const torch::Tensor inner = augment(x, policy(false, false, true), fixed_draw(1, {0, 0, 0}, 0, 0, 4, 4));
  EXPECT_EQ(inner.eq(0).sum().item<int64_t>(), 3 * 4 * 4);
  EXPECT_EQ(inner.slice(2, 2, 6).slice(3, 2, 6).abs().sum().item<float>(), 0);  // rows and columns 2..5
  // At a corner the square is clipped: centre (0, 0) zeroes rows and columns 0..1.
  const torch::Tensor corner = augment(x, policy(false, false, true), fixed_draw(1, {0, 0, 0}, 0, 0, 0, 0));
  EXPECT_EQ(corner.eq(0).sum().item<int64_t>(), 3 * 2 * 2);
}

TEST(Augment, GatesBelowPApplyAndPZeroIsTheIdentity) {
  const torch::Tensor x = torch::rand({64, 3, 8, 8}) * 2 - 1;
  const auto all = policy(true, true, true);
  const AugmentDraw d = draw_augment(7, 3, AugmentRole::kRealD, 64, 8, 8);
  EXPECT_TRUE(torch::equal(augment(x, all, d, torch::zeros({}, torch::kFloat64)), x));
  EXPECT_TRUE(torch::equal(augment(x, all, d, torch::ones({}, torch::kFloat64)), augment(x, all, d)));
  // p = 0.5: a sample whose five gates are all above p is untouched, one with a gate below changes.
  const torch::Tensor half = augment(x, all, d, torch::full({}, 0.5, torch::kFloat64));
  const torch::Tensor untouched = d.gate.ge(0.5).all(1), changed = half.ne(x).flatten(1).any(1);
  EXPECT_TRUE(torch::equal(changed, untouched.logical_not()));
  EXPECT_GT(untouched.sum().item<int64_t>(), 0);
}

TEST(Augment, DrawsDependOnSeedStepAndRoleOnlyAndCoverTheirRanges) {
  const AugmentDraw a = draw_augment(1, 5, AugmentRole::kFakeD, 4096, 32, 32);
  const AugmentDraw b = draw_augment(1, 5, AugmentRole::kFakeD, 4096, 32, 32);
  EXPECT_TRUE(torch::equal(a.color, b.color) && torch::equal(a.shift, b.shift) && torch::equal(a.gate, b.gate));
  EXPECT_FALSE(torch::equal(a.color, draw_augment(1, 5, AugmentRole::kFakeG, 4096, 32, 32).color));
  EXPECT_FALSE(torch::equal(a.color, draw_augment(1, 6, AugmentRole::kFakeD, 4096, 32, 32).color));
  EXPECT_EQ(a.shift.min().item<int64_t>(), -4);  // 32 / 8
  EXPECT_EQ(a.shift.max().item<int64_t>(), 4);
  EXPECT_EQ(a.cutout.min().item<int64_t>(), 0);
  EXPECT_EQ(a.cutout.max().item<int64_t>(), 32);  // DiffAugment: [0, side + 1 − size % 2)
  // A rank's rows are the global draw's rows.
  EXPECT_TRUE(torch::equal(a.rows(64, 32, torch::kCPU).shift, a.shift.narrow(0, 64, 32)));
}

TEST(Augment, IsDifferentiableAndPassesGradientsOnlyWhereImagePixelsSurvive) {
  const torch::Tensor x = torch::rand({2, 3, 8, 8}, torch::requires_grad());
  const AugmentDraw d = fixed_draw(2, {0.5, 0.5, 0.5}, 2, 0, 4, 4);
  augment(x, policy(true, true, true), d).sum().backward();
  // Rows 0..1 of the input are shifted out (dy = 2) and output rows 2..5 are cut out (input rows 4..7).
  const torch::Tensor g = x.grad();
  EXPECT_EQ(g.slice(2, 0, 2).abs().sum().item<float>(), 0);
  EXPECT_GT(g.slice(2, 2, 4).abs().sum().item<float>(), 0);
}

}  // namespace
}  // namespace shardgan::train
