#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "train/gan.hpp"

namespace shardgan::train {

/// fp16's dynamic loss scale (train/loss_scaler.hpp), carried across a resume.
struct LossScaleState {
  double scale = 0;
  int64_t good_steps = 0;
};

/// What a checkpoint records besides the tensors.
struct CheckpointState {
  int64_t step = 0;   ///< steps completed
  int64_t epoch = 0;  ///< epoch of the next step
  int world_size = 1;
  std::string model_hash;  ///< config::Config::model_hash(): the models' shapes (checked on load)
  DataSpec spec;
  std::optional<LossScaleState> loss_scale;  ///< runtime.precision = "fp16" only
};

/// RUN_DIR/checkpoints/step-NNNNNN/: generator.pt, discriminator.pt, optim_g.pt, optim_d.pt, generator_ema.pt
/// (model.g_ema > 0) (LibTorch archives), config.toml, and state.json last, holding the checksum of every other file.
/// Written into a staging folder and renamed, so a crash mid-write leaves the previous checkpoints intact; then
/// `latest` is replaced atomically and all but the newest `keep` checkpoints are removed. Returns the checkpoint's
/// folder.
std::filesystem::path save_checkpoint(const std::filesystem::path& run_dir, Gan& gan, const CheckpointState& state,
                                      const std::string& config_toml, int64_t keep);

/// Reads and validates a checkpoint folder: state.json readable, every file present with its checksum. Error naming
/// the file otherwise.
CheckpointState read_checkpoint_state(const std::filesystem::path& dir);

/// The newest valid checkpoint under RUN_DIR/checkpoints, skipping invalid ones (their reasons go to `skipped`).
std::optional<std::filesystem::path> find_latest_checkpoint(const std::filesystem::path& run_dir,
                                                            std::vector<std::string>* skipped = nullptr);

/// Resolves what --checkpoint/--resume name: a checkpoint folder, or a run folder (its newest valid checkpoint).
std::filesystem::path resolve_checkpoint(const std::filesystem::path& path);

/// A checkpoint opened for sampling or scoring: its folder, state, resolved configuration and models (CPU, weights
/// loaded, no optimiser state).
struct RestoredModels {
  std::filesystem::path dir;
  CheckpointState state;
  config::Config config;
  Gan gan;
};

/// What shardgan-sample and shardgan-eval start from: `path` resolved (a checkpoint or a run folder), validated, its
/// config.toml read and the models built and loaded on the CPU.
RestoredModels restore_models(const std::filesystem::path& path);

/// Loads the tensors of `dir` into `gan` (models and, when `optimizers`, optimiser states). The model hash must match.
void load_checkpoint(const std::filesystem::path& dir, Gan& gan, const std::string& model_hash, bool optimizers);

}  // namespace shardgan::train
