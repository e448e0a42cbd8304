#include "train/capturable_adam.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

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

/// The same problem twice, each with a torch::optim::Adam: one stays LibTorch's (eager), the other's state is what a
/// CapturableAdam updates (captured).
struct Twins {
  explicit Twins(uint64_t seed) : eager(seed), captured(seed) {}
  void gradients(int64_t step) const {
    eager.gradients(step);
    captured.gradients(step);
  }
  /// Steps [from, to) with LibTorch's Adam on both.
  void libtorch_steps(int64_t from, int64_t to) {
    for (int64_t t = from; t < to; ++t) {
      gradients(t);
      eager_adam.step();
      captured_adam.step();
    }
  }
  void expect_equal() const {
    EXPECT_TRUE(torch::equal(eager.weight, captured.weight));
    EXPECT_TRUE(torch::equal(eager.bias, captured.bias));
  }
  Problem eager, captured;
  torch::optim::Adam eager_adam{{eager.weight, eager.bias}, options()};
  torch::optim::Adam captured_adam{{captured.weight, captured.bias}, options()};
};

// The capturable update is LibTorch's Adam, bit for bit on the CPU, from a fresh state and from a state LibTorch
// made; the host's step count (what checkpoints save) follows, so LibTorch can take over again.
TEST(CapturableAdam, MatchesLibTorchAdamBitForBitAndKeepsItsState) {
  Twins twins(7);
  // Three LibTorch steps on both, then the capturable one takes over the second optimizer's state.
  twins.libtorch_steps(0, 3);
  CapturableAdam capturable(twins.captured_adam);
  EXPECT_EQ(capturable.device_step(), 3);
  for (int64_t t = 3; t < 20; ++t) {
    twins.gradients(t);
    twins.eager_adam.step();
    capturable.step();
  }
  EXPECT_EQ(capturable.device_step(), 20);
  capturable.store_host_step();
  twins.expect_equal();
  EXPECT_TRUE(twins.captured.weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  // The saved step counts are the same.
  const auto step_of = [](const auto& entry) {
    return static_cast<const torch::optim::AdamParamState&>(*entry.second).step();
  };
  for (const auto& entry : twins.captured_adam.state()) EXPECT_EQ(step_of(entry), 20);
  for (const auto& entry : twins.eager_adam.state()) EXPECT_EQ(step_of(entry), 20);
  // LibTorch continues from the state the capturable optimizer left.
  twins.gradients(20);
  twins.eager_adam.step();
  twins.captured_adam.step();
  twins.expect_equal();
}

TEST(CapturableAdam, CreatesAFreshStateAsLibTorchDoes) {
  Twins twins(9);
  CapturableAdam capturable(twins.captured_adam);
  EXPECT_EQ(twins.captured_adam.state().size(), 2u);
  for (int64_t t = 0; t < 5; ++t) {
    twins.gradients(t);
    twins.eager_adam.step();
    capturable.step();
  }
  twins.expect_equal();
}

// fp16 under CUDA graphs: a skipped update (flag 1) leaves parameters, moments and the count as they were; a flag of
// 0 is the plain update, bit for bit.
TEST(CapturableAdam, ASkippedUpdateChangesNothing) {
  Twins twins(11);
  CapturableAdam capturable(twins.captured_adam);
  const torch::Tensor go = torch::zeros({}), skip = torch::ones({});
  for (int64_t t = 0; t < 6; ++t) {
    twins.gradients(t);
    twins.eager_adam.step();
    capturable.step(go);
    const torch::Tensor w = twins.captured.weight.clone(), b = twins.captured.bias.clone();
    twins.captured.weight.mutable_grad().fill_(std::numeric_limits<float>::infinity());  // what a skip is for
    capturable.step(skip);
    EXPECT_TRUE(torch::equal(w, twins.captured.weight));
    EXPECT_TRUE(torch::equal(b, twins.captured.bias));
  }
  EXPECT_EQ(capturable.device_step(), 6);
  twins.expect_equal();  // the moments were kept too: later updates would differ otherwise
}

// A checkpoint from a run without runtime.channels_last resumed with it: the moments are contiguous, the parameter
// channels-last. CapturableAdam gives them the parameter's layout (the fused CUDA kernel refuses others) and the same
// values, and the updates stay LibTorch's bit for bit (checkpoints keep working: the state is the optimizer's).
TEST(CapturableAdam, GivesTheMomentsTheirParametersLayout) {
  Twins twins(13);
  twins.libtorch_steps(0, 2);
  torch::optim::AdamParamState* state = nullptr;  // the 4-D weight's
  for (auto& entry : twins.captured_adam.state()) {
    auto& candidate = static_cast<torch::optim::AdamParamState&>(*entry.second);
    if (candidate.exp_avg().dim() == 4) state = &candidate;
  }
  ASSERT_NE(state, nullptr);
  auto& weight_state = *state;
  weight_state.exp_avg(weight_state.exp_avg().contiguous());
  weight_state.exp_avg_sq(weight_state.exp_avg_sq().contiguous());
  ASSERT_FALSE(weight_state.exp_avg().strides().equals(twins.captured.weight.strides()));
  const torch::Tensor m = weight_state.exp_avg(), v = weight_state.exp_avg_sq();
  CapturableAdam capturable(twins.captured_adam);
  EXPECT_TRUE(weight_state.exp_avg().strides().equals(twins.captured.weight.strides()));
  EXPECT_TRUE(weight_state.exp_avg_sq().strides().equals(twins.captured.weight.strides()));
  EXPECT_TRUE(torch::equal(weight_state.exp_avg(), m));
  EXPECT_TRUE(torch::equal(weight_state.exp_avg_sq(), v));
  for (int64_t t = 2; t < 6; ++t) {
    twins.gradients(t);
    twins.eager_adam.step();
    capturable.step();
  }
  twins.expect_equal();
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
