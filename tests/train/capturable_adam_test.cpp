#include "train/capturable_adam.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <sstream>

namespace shardgan::train {
namespace {

/// Two parameters (one channels-last 4-D, one vector) with the same gradients drawn per step.
struct Problem {
  explicit Problem(uint64_t seed) {
    torch::manual_seed(seed);
    weight = torch::randn({3, 2, 2, 2}).contiguous(at::MemoryFormat::ChannelsLast).set_requires_grad(true);
    bias = torch::randn({5}).set_requires_grad(true);
  }
  void gradients(int64_t step) const {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + static_cast<uint64_t>(step));
    weight.mutable_grad() = torch::randn(weight.sizes(), gen).contiguous(at::MemoryFormat::ChannelsLast);
    bias.mutable_grad() = torch::randn({5}, gen) * 1e-3;
  }
  torch::Tensor weight, bias;
};

torch::optim::AdamOptions options() {
  return torch::optim::AdamOptions(2e-3).betas(std::make_tuple(0.5, 0.999));
}

// The capturable update is LibTorch's Adam, bit for bit on the CPU, from a fresh state and from a state LibTorch
// made; the host's step count (what checkpoints save) follows, so LibTorch can take over again.
TEST(CapturableAdam, MatchesLibTorchAdamBitForBitAndKeepsItsState) {
  Problem eager(7), captured(7);
  torch::optim::Adam eager_adam({eager.weight, eager.bias}, options());
  torch::optim::Adam captured_adam({captured.weight, captured.bias}, options());
  // Three LibTorch steps on both, then the capturable one takes over the second optimizer's state.
  for (int64_t t = 0; t < 3; ++t) {
    eager.gradients(t);
    captured.gradients(t);
    eager_adam.step();
    captured_adam.step();
  }
  CapturableAdam capturable(captured_adam);
  EXPECT_EQ(capturable.device_step(), 3);
  for (int64_t t = 3; t < 20; ++t) {
    eager.gradients(t);
    captured.gradients(t);
    eager_adam.step();
    capturable.step();
  }
  EXPECT_EQ(capturable.device_step(), 20);
  capturable.store_host_step();
  EXPECT_TRUE(torch::equal(eager.weight, captured.weight));
  EXPECT_TRUE(torch::equal(eager.bias, captured.bias));
  EXPECT_TRUE(captured.weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  // The saved states are the same: step counts and moments.
  std::ostringstream a, b;
  torch::serialize::OutputArchive archive_a, archive_b;
  eager_adam.save(archive_a);
  captured_adam.save(archive_b);
  archive_a.save_to(a);
  archive_b.save_to(b);
  EXPECT_EQ(a.str().size(), b.str().size());
  const auto& sa = static_cast<const torch::optim::AdamParamState&>(*eager_adam.state().begin()->second);
  for (const auto& [key, state] : captured_adam.state()) {
    const auto& s = static_cast<const torch::optim::AdamParamState&>(*state);
    EXPECT_EQ(s.step(), sa.step());
  }
  // LibTorch continues from the state the capturable optimizer left.
  eager.gradients(20);
  captured.gradients(20);
  eager_adam.step();
  captured_adam.step();
  EXPECT_TRUE(torch::equal(eager.weight, captured.weight));
}

TEST(CapturableAdam, CreatesAFreshStateAsLibTorchDoes) {
  Problem eager(9), captured(9);
  torch::optim::Adam eager_adam({eager.weight, eager.bias}, options());
  torch::optim::Adam captured_adam({captured.weight, captured.bias}, options());
  CapturableAdam capturable(captured_adam);
  EXPECT_EQ(captured_adam.state().size(), 2u);
  for (int64_t t = 0; t < 5; ++t) {
    eager.gradients(t);
    captured.gradients(t);
    eager_adam.step();
    capturable.step();
  }
  EXPECT_TRUE(torch::equal(eager.weight, captured.weight));
  EXPECT_TRUE(torch::equal(eager.bias, captured.bias));
}

// fp16 under CUDA graphs: a skipped update (flag 1) leaves parameters, moments and the count as they were; a flag of
// 0 is the plain update, bit for bit.
TEST(CapturableAdam, ASkippedUpdateChangesNothing) {
  Problem eager(11), captured(11);
  torch::optim::Adam eager_adam({eager.weight, eager.bias}, options());
  torch::optim::Adam captured_adam({captured.weight, captured.bias}, options());
  CapturableAdam capturable(captured_adam);
  const torch::Tensor go = torch::zeros({}), skip = torch::ones({});
  for (int64_t t = 0; t < 6; ++t) {
    eager.gradients(t);
    captured.gradients(t);
    eager_adam.step();
    capturable.step(go);
    const torch::Tensor w = captured.weight.clone(), b = captured.bias.clone();
    captured.weight.mutable_grad().fill_(std::numeric_limits<float>::infinity());  // what a skip is for
    capturable.step(skip);
    EXPECT_TRUE(torch::equal(w, captured.weight));
    EXPECT_TRUE(torch::equal(b, captured.bias));
  }
  EXPECT_EQ(capturable.device_step(), 6);
  EXPECT_TRUE(torch::equal(eager.weight, captured.weight));
  EXPECT_TRUE(torch::equal(eager.bias, captured.bias));
}

TEST(CapturableAdam, RefusesWhatItDoesNotImplement) {
  Problem p(3);
  torch::optim::Adam decayed({p.weight}, options().weight_decay(0.1));
  EXPECT_THROW(CapturableAdam{decayed}, std::exception);
  torch::optim::Adam plain({p.weight, p.bias}, options());
  CapturableAdam capturable(plain);
  EXPECT_THROW(capturable.step(), std::exception);  // no gradients yet
}

}  // namespace
}  // namespace shardgan::train
