#pragma once
// One training step of the GAN: its inputs (StepInputs), its arithmetic (GanStep: D's update, then G's, each with
// gradients averaged over the ranks), and the optimiser's update rule (UpdateRule: LibTorch's Adam, or Adam as
// device work), chosen once. How a step runs — eagerly or through a CUDA graph — is train/step_executor.hpp.
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "comm/communicator.hpp"
#include "data/loader.hpp"
#include "parallel/grad_sync.hpp"
#include "train/augment.hpp"
#include "train/capturable_adam.hpp"
#include "train/loss.hpp"
#include "train/plan.hpp"

namespace shardgan::train {

/// This rank's part of one step: the batch as loaded (uint8 NHWC: converted inside the step, so a CUDA graph's
/// static copy of it is the smallest) and the step's draws. Labels and flips are undefined when unused.
struct StepInputs {
  int64_t step = 0;
  torch::Tensor images, flips, real_labels, z, fake_labels;
  AugmentDraw augment_real, augment_fake_d, augment_fake_g;  ///< augment.policy set: this rank's rows of the draws

  /// Every tensor of the step (what goes to the device; what a CUDA graph reads).
  std::vector<torch::Tensor*> tensors();
};

/// The inputs of step `step` on this rank: the loaded batch, and the draws of a generator seeded by (train.seed,
/// step) for the whole global batch — z, fake labels, flips, augmentations — of which this rank takes its rows, so the
/// draws do not depend on the world size. On a GPU every tensor is in pinned memory (its copy is asynchronous).
StepInputs step_inputs(const Plan& plan, data::Batch& batch, int64_t step);

/// What one step reports: the losses, the seed's D(x), D(G(z)) (mean sigmoid of D's logits), and the L2 norms of D's
/// and G's averaged, unscaled gradients (0 for an fp16 update skipped for an inf or NaN).
struct StepLosses {
  torch::Tensor d, g, d_real, d_fake, grad_norm_d, grad_norm_g;
  int skipped = 0;  ///< updates skipped by fp16 loss scaling in this step (host verdicts; the scaler counts them)
};

/// How an optimiser applies the averaged gradients. Chosen once per run (make_update_rule).
class UpdateRule {
 public:
  virtual ~UpdateRule() = default;
  /// One update from the parameters' .grad. `skip`: a device flag (float32 scalar, 1: skip) from fp16's loss
  /// scaling under CUDA graphs; undefined otherwise.
  virtual void apply(const torch::Tensor& skip = {}) = 0;
  /// Before a checkpoint: the update's state into what LibTorch's optimiser saves.
  virtual void before_checkpoint() {}
};

/// LibTorch's Adam on the CPU; Adam as device work (CapturableAdam: LibTorch's fused kernel on CUDA, and what a graph
/// can hold) on a GPU or under runtime.cuda_graphs. After a resume the optimiser's loaded state is what it updates.
std::unique_ptr<UpdateRule> make_update_rule(const Placement& placement, torch::optim::Adam& optimizer);

/// The arithmetic of one step: D on real and generated images (plus lazy R1 when due), then G through D, each update
/// with gradients averaged over the ranks by its GradSync. Every rank runs it with its own inputs.
class GanStep {
 public:
  GanStep(const Plan& plan, Gan& gan, comm::Communicator& comm, parallel::GradSync& sync_g, parallel::GradSync& sync_d,
          AdaptiveAugment& ada);

  /// Whether step `step` adds the R1 penalty (one step in train.r1_every): the two kinds of step.
  bool r1_due(int64_t step) const;
  /// Host work before a step's device work (also before a graph's replay): seeds D's dropout for (seed, step, rank).
  void begin(int64_t step);
  /// The step on `in` (on this rank's device). Also ends fp16's loss-scaling step.
  StepLosses operator()(const StepInputs& in);
  /// Every host read of this step's device values (fp16's verdict, log means, checkpoints) waits here first, under
  /// the watchdog: a hung peer's collective is then a timeout, not a copy that never returns. Free on the CPU.
  void wait_for_device();
  void before_checkpoint();

 private:
  torch::Tensor d_step(const StepInputs& in, StepLosses& losses);
  void g_step(const StepInputs& in, const torch::Tensor& fake, StepLosses& losses);
  torch::Tensor real_images(const StepInputs& in) const;
  torch::Tensor seen_by_d(const torch::Tensor& images, const AugmentDraw& draw) const;
  torch::Tensor r1_penalty(const torch::Tensor& real, const torch::Tensor& real_logits) const;
  bool update(torch::nn::Module& module, parallel::GradSync& sync, UpdateRule& rule, const torch::Tensor& loss,
              int64_t step, torch::Tensor& grad_norm);
  bool gradients_finite(torch::nn::Module& module);
  torch::Tensor gradient_norm(torch::nn::Module& module);
  torch::Tensor agreed_skip_on_device(torch::nn::Module& module);

  const config::Config& cfg_;
  const Placement& placement_;
  const int rank_, world_;
  const int64_t classes_;
  Gan& gan_;
  comm::Communicator& comm_;
  parallel::GradSync &sync_g_, &sync_d_;
  AdaptiveAugment& ada_;
  const std::unique_ptr<GanLoss> loss_;
  std::unique_ptr<UpdateRule> rule_g_, rule_d_;
};

}  // namespace shardgan::train
