#include "train/loss_scaler.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

namespace shardgan::train {
namespace {

torch::Tensor with_grad(std::initializer_list<float> values) {
  torch::Tensor p = torch::zeros({static_cast<int64_t>(values.size())}, torch::requires_grad());
  p.mutable_grad() = torch::tensor(std::vector<float>(values));
  return p;
}

/// The scaler's verdict read back: true when every gradient is finite.
bool finite(const LossScaler& s, const std::vector<torch::Tensor>& parameters) {
  return !s.unscale_and_check(parameters).item<bool>();
}

TEST(LossScaler, ScalesTheLossAndUnscalesFiniteGradients) {
  LossScaler s(true, 1024, 2000);
  EXPECT_FLOAT_EQ(s.scale(torch::tensor(0.5f)).item<float>(), 512.0f);
  const torch::Tensor p = with_grad({1024.0f, -2048.0f});
  torch::Tensor undefined_grad = torch::zeros({3}, torch::requires_grad());  // no gradient this backward: ignored
  EXPECT_TRUE(finite(s, {p, undefined_grad}));
  EXPECT_TRUE(torch::equal(p.grad(), torch::tensor({1.0f, -2.0f})));
}

TEST(LossScaler, AnInfOrNanAnywhereFailsTheCheck) {
  LossScaler s(true, 2, 2000);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(finite(s, {with_grad({1, 2}), with_grad({3, inf})}));
  EXPECT_FALSE(finite(s, {with_grad({nan}), with_grad({1})}));
  EXPECT_FALSE(finite(s, {with_grad({-inf})}));
  EXPECT_TRUE(finite(s, {with_grad({std::numeric_limits<float>::max()})}));
}

TEST(LossScaler, HalvesOnASkipAndDoublesAfterGrowthEveryGoodSteps) {
  LossScaler s(true, 64, 3);
  s.update(/*skipped=*/true);
  EXPECT_EQ(s.value(), 32);
  s.update(false);
  s.update(false);
  EXPECT_EQ(s.value(), 32);
  EXPECT_EQ(s.good_steps(), 2);
  s.update(true);  // a skip starts the count over
  EXPECT_EQ(s.value(), 16);
  EXPECT_EQ(s.good_steps(), 0);
  for (int i = 0; i < 3; ++i) s.update(false);
  EXPECT_EQ(s.value(), 32);
  EXPECT_EQ(s.good_steps(), 0);
  for (int i = 0; i < 20; ++i) s.update(true);
  EXPECT_EQ(s.value(), 1);  // never below 1
  s.restore(4096, 2);
  EXPECT_EQ(s.value(), 4096);
  EXPECT_EQ(s.good_steps(), 2);
  EXPECT_THROW(s.restore(std::numeric_limits<double>::quiet_NaN(), 0), std::exception);
  EXPECT_THROW(s.restore(8, -1), std::exception);
}

TEST(LossScaler, DisabledPassesEverythingThrough) {
  LossScaler s(false, 65536, 1);
  const torch::Tensor loss = torch::tensor(0.25f);
  EXPECT_TRUE(s.scale(loss).is_same(loss));
  const torch::Tensor p = with_grad({std::numeric_limits<float>::infinity()});
  EXPECT_TRUE(finite(s, {p}));  // bf16/fp32 have no skipping: an inf there is the optimiser's to see
  s.update(true);
  EXPECT_EQ(s.value(), 65536);
}

// Skipped updates are counted one way in both modes: take_skips gives the updates skipped since the last call.
TEST(LossScaler, TakeSkipsCountsSkippedUpdatesInBothModes) {
  LossScaler host(true, 64, 100);
  host.update(2);  // both updates of a step skipped
  host.update(0);
  host.update(1);
  EXPECT_EQ(host.take_skips(), 3);
  EXPECT_EQ(host.take_skips(), 0);
  EXPECT_EQ(host.value(), 16);  // halved twice: once per step with a skip

  LossScaler device(true, 64, 100);
  device.to_device(torch::kCPU);
  device.note_update(torch::ones({}, torch::kFloat64));
  device.note_update(torch::zeros({}, torch::kFloat64));
  device.end_step_on_device();
  EXPECT_EQ(device.take_skips(), 1);
  EXPECT_EQ(device.value(), 32);
  // A device-mode scaler's step ends on the device: the host rule is refused, not silently ignored.
  EXPECT_THROW(device.update(1), std::exception);
}

}  // namespace
}  // namespace shardgan::train
