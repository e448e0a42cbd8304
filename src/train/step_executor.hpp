#pragma once
// How a training step runs, chosen once per run: eagerly (the inputs copied to the device, GanStep called), or through
// CUDA graphs (runtime.cuda_graphs: the inputs copied into static tensors; of each kind of step — with or without R1 —
// a few warm-up steps, then one capture, then replays).
#include <memory>

#include "train/plan.hpp"
#include "train/step.hpp"

namespace shardgan::train {

class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  /// Runs `step` on `in` (host tensors, pinned on a GPU); the losses are device tensors, ready after the fence.
  virtual StepLosses run(GanStep& step, StepInputs in) = 0;
};

/// The executor of `plan.placement`: eager, or graphed with graphs from `make_graph` (parallel::make_cuda_graph when
/// empty). The graphed executor moves fp16's loss scaler to the device (the scale a graph reads).
std::unique_ptr<StepExecutor> make_step_executor(const Plan& plan, Gan& gan, const GraphFactory& make_graph);

}  // namespace shardgan::train
