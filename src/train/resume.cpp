#include "train/resume.hpp"

#include <cstdio>

#include "train/checkpoint.hpp"
#include "util/error.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;

ResumePoint choose_resume_point(const std::string& resume, const fs::path& run_dir, const Plan& plan, bool root) {
  ResumePoint point;
  if (resume == "auto") {
    std::vector<std::string> skipped;
    point.checkpoint = find_latest_checkpoint(run_dir, &skipped);
    if (root)
      for (const auto& s : skipped) std::fprintf(stderr, "shardgan-train: skipping invalid checkpoint: %s\n", s.c_str());
  } else if (!resume.empty()) {
    point.checkpoint = resolve_checkpoint(resume);
  } else if (find_latest_checkpoint(run_dir)) {
    fail(run_dir.string(),
         ": holds checkpoints from an earlier run; use --resume auto to continue it or another --run-dir");
  }
  if (!point.checkpoint) return point;
  const fs::path& dir = *point.checkpoint;
  const CheckpointState state = read_checkpoint_state(dir);
  if (state.spec.shape != plan.spec.shape || state.spec.class_names != plan.spec.class_names)
    fail(dir.string(), ": checkpoint was trained on data of another shape or other classes");
  const int64_t global = plan.sampler.global_batch();
  if (state.global_batch > 0 && state.global_batch != global)
    fail(dir.string(), ": written with a global batch of ", state.global_batch, " (", state.world_size,
         " rank(s)); this run has ", global, " (", plan.rank.world, " x ", plan.batch,
         "). Resume with the same global batch (train.global_batch = ", state.global_batch,
         ") so that training continues where it stopped in the data order");
  if (root && state.world_size != plan.rank.world)
    std::fprintf(stderr, "shardgan-train: resuming a %d-rank run on %d rank(s), global batch %lld as before\n",
                 state.world_size, plan.rank.world, static_cast<long long>(global));
  point.state = state;
  point.step = state.step;
  return point;
}

void restore(const ResumePoint& point, const Plan& plan, Gan& gan, AdaptiveAugment& ada, bool root) {
  if (!point.checkpoint) return;
  const CheckpointState& state = *point.state;
  load_checkpoint(*point.checkpoint, gan, plan.cfg.model_hash(), /*optimizers=*/true);
  if (state.loss_scale && gan.loss_scaler.enabled())
    gan.loss_scaler.restore(state.loss_scale->scale, state.loss_scale->good_steps);
  if (state.augment) ada.restore(state.augment->p, state.augment->sign_sum, root);
  if (root)
    std::fprintf(stderr, "shardgan-train: resuming from %s (step %lld)\n", point.checkpoint->c_str(),
                 static_cast<long long>(point.step));
}

}  // namespace shardgan::train
