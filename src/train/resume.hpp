#pragma once
// Where a run starts: fresh, or from a checkpoint chosen by --resume and checked against the plan.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "train/augment.hpp"
#include "train/checkpoint_state.hpp"
#include "train/plan.hpp"

namespace shardgan::train {

struct ResumePoint {
  std::optional<std::filesystem::path> checkpoint;  ///< none: a fresh run
  std::optional<CheckpointState> state;
  int64_t step = 0;
};

/// Every rank reads the same checkpoint (shared file system): `resume` "" starts fresh (refused when `run_dir`
/// already holds checkpoints), "auto" takes the newest valid one (or starts fresh), anything else names a checkpoint
/// or a run folder. The checkpoint must have been written for the same data and the same global batch (elastic
/// resume: another world size continues the same data order). `root` prints what was skipped.
ResumePoint choose_resume_point(const std::string& resume, const std::filesystem::path& run_dir, const Plan& plan,
                                bool root);

/// Loads the checkpoint into the models, the optimisers, fp16's loss scale and ADA's state.
void restore(const ResumePoint& point, const Plan& plan, Gan& gan, AdaptiveAugment& ada, bool root);

}  // namespace shardgan::train
