#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "train/checkpoint_state.hpp"
#include "train/gan.hpp"

namespace shardgan::train {

/// RUN_DIR/checkpoints/step-NNNNNN/: generator.pt, discriminator.pt, optim_g.pt, optim_d.pt, generator_ema.pt
/// (model.g_ema > 0) (LibTorch archives), config.toml, the `extra` files (name → bytes: grad_compression.pt, PowerSGD's
/// state), and state.json last, holding the checksum of every other file.
/// Written into a staging folder and renamed, so a crash mid-write leaves the previous checkpoints intact; then
/// `latest` is replaced atomically and all but the newest `keep` checkpoints older than it are removed (newer ones are
/// not this function's: the trainer moves a replaced history aside with reject_checkpoints_after). Returns the
/// checkpoint's folder.
std::filesystem::path save_checkpoint(const std::filesystem::path& run_dir, Gan& gan, const CheckpointState& state,
                                      const std::string& config_toml, int64_t keep,
                                      const std::vector<std::pair<std::string, std::string>>& extra = {});

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
