#include "train/step_executor.hpp"

#include <torch/torch.h>

#include <array>

#include "parallel/cuda_graph.hpp"

namespace shardgan::train {
namespace {

class EagerExecutor final : public StepExecutor {
 public:
  explicit EagerExecutor(torch::Device device) : device_(device) {}
  StepLosses run(GanStep& step, StepInputs in) override {
    for (torch::Tensor* t : in.tensors())
      if (t->defined()) *t = t->to(device_, t->scalar_type(), /*non_blocking=*/true);
    step.begin(in.step);
    return step(in);
  }

 private:
  torch::Device device_;
};

/// The (host) inputs are copied into the tensors the graphs read; of each kind of step (with or without R1) the
/// first kWarmupSteps run eagerly on the graph's stream, the next is captured, and every later one replays it.
/// Dropout draws from the device's generator, seeded for the step as in eager mode (GanStep::begin): a replay reads
/// the seed at launch, so the masks are those of an eager step. ADA's p and sign sum are device tensors the graph
/// reads and adds to in place; the host adjusts p between replays (AdaptiveAugment::after_step).
class GraphedExecutor final : public StepExecutor {
 public:
  GraphedExecutor(torch::Device device, const GraphFactory& make_graph) : device_(device) {
    for (auto& kind : kinds_) kind.graph = make_graph(device.index());
  }

  StepLosses run(GanStep& step, StepInputs in) override {
    constexpr int64_t kWarmupSteps = 3;
    const bool first = !static_in_.images.defined();
    static_in_.step = in.step;
    const auto statics = static_in_.tensors(), news = in.tensors();
    for (std::size_t i = 0; i < statics.size(); ++i) {
      if (!news[i]->defined()) continue;
      if (first) {
        *statics[i] = news[i]->to(device_, news[i]->scalar_type(), /*non_blocking=*/true, /*copy=*/true);
      } else {
        statics[i]->copy_(*news[i], /*non_blocking=*/true);
      }
    }
    Kind& kind = kinds_[step.r1_due(in.step) ? 1 : 0];
    const auto body = [this, &step, &kind] { kind.losses = step(static_in_); };
    step.begin(in.step);
    if (kind.runs < kWarmupSteps) {
      kind.graph->warm_up(body);
    } else {
      if (kind.runs == kWarmupSteps) kind.graph->capture(body);
      kind.graph->replay();
    }
    ++kind.runs;
    return kind.losses;
  }

 private:
  struct Kind {
    std::unique_ptr<parallel::StepGraph> graph;
    int64_t runs = 0;
    StepLosses losses;  ///< the graph's outputs
  };
  torch::Device device_;
  std::array<Kind, 2> kinds_;  ///< [0]: plain steps, [1]: steps with R1
  StepInputs static_in_;       ///< the graphs' inputs, shared by both kinds
};

}  // namespace

std::unique_ptr<StepExecutor> make_step_executor(const Plan& plan, Gan& gan, const GraphFactory& make_graph) {
  if (!plan.placement.graphs) return std::make_unique<EagerExecutor>(plan.placement.device);
  if (gan.loss_scaler.enabled()) gan.loss_scaler.to_device(plan.placement.device);
  return std::make_unique<GraphedExecutor>(plan.placement.device,
                                           make_graph ? make_graph : GraphFactory(parallel::make_cuda_graph));
}

}  // namespace shardgan::train
