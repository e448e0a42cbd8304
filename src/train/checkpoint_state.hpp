#pragma once
// A checkpoint folder without its tensors: state.json (written, parsed and validated here only), the files it may
// hold, and finding the newest valid one. No LibTorch: the fuzz harness of state.json builds without it.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/shard_format.hpp"
#include "util/error.hpp"

namespace shardgan::train {

/// fp16's dynamic loss scale (train/loss_scaler.hpp), carried across a resume.
struct LossScaleState {
  double scale = 0;
  int64_t good_steps = 0;
};

/// ADA's adaptive augmentation probability (train/augment.hpp), carried across a resume.
struct AugmentState {
  double p = 0;
  double sign_sum = 0;  ///< signs of D(real) summed over all ranks since p's last adjustment
};

/// What a checkpoint records besides the tensors.
struct CheckpointState {
  int64_t step = 0;          ///< steps completed
  int64_t epoch = 0;         ///< epoch of the next step
  int64_t samples_seen = 0;  ///< samples of the data order consumed (step × global batch when it never changed)
  int64_t global_batch = 0;  ///< images per step over all ranks when it was written
  int world_size = 1;
  std::string model_hash;  ///< config::Config::model_hash(): the models' shapes (checked on load)
  data::DataSpec spec;
  std::optional<LossScaleState> loss_scale;  ///< runtime.precision = "fp16" only
  std::optional<AugmentState> augment;       ///< augment.ada_target > 0 only
};

/// A checkpoint that is proven broken — unparsable or out-of-range state.json, a missing, extra, non-regular or
/// mismatching file — as opposed to one that could not be read (permissions, I/O errors), which is a plain Error.
class CorruptCheckpoint : public Error {
 public:
  using Error::Error;
};

/// The files a checkpoint holds besides state.json: the required ones, then the optional ones.
inline const std::vector<std::string> kCheckpointFiles = {"generator.pt", "discriminator.pt", "optim_g.pt",
                                                          "optim_d.pt", "config.toml"};
inline const std::vector<std::string> kOptionalCheckpointFiles = {"generator_ema.pt", "grad_compression.pt"};

/// "step-000123"
std::string step_name(int64_t step);

/// state.json's text for `state`, with `checksums` (file name → file_checksum) of every other file.
std::string checkpoint_state_json(const CheckpointState& state, const std::map<std::string, std::string>& checksums);

/// Parses state.json text (`source` names it in errors): every key present with its type and in range, only known
/// file names. CorruptCheckpoint naming the key otherwise. `checksums` receives the files' checksums.
CheckpointState parse_checkpoint_state(const std::string& text, const std::string& source,
                                       std::map<std::string, std::string>* checksums = nullptr);

/// Reads and validates a checkpoint folder: state.json valid, every file it lists present as a regular file with
/// its checksum, no other entry. CorruptCheckpoint naming the file when it is broken; Error when it cannot be read.
CheckpointState read_checkpoint_state(const std::filesystem::path& dir);

/// The newest valid checkpoint under RUN_DIR/checkpoints, skipping corrupt ones (their reasons go to `skipped`);
/// one that cannot be read (I/O, permissions) stops the search with its Error rather than being skipped. Nothing is
/// moved or deleted (see reject_checkpoints_after).
std::optional<std::filesystem::path> find_latest_checkpoint(const std::filesystem::path& run_dir,
                                                            std::vector<std::string>* skipped = nullptr);

/// Moves RUN_DIR/checkpoints/step-N folders with N > `step` into RUN_DIR/checkpoints/rejected/ (a history this run
/// replaces); returns what was moved.
std::vector<std::filesystem::path> reject_checkpoints_after(const std::filesystem::path& run_dir, int64_t step);

/// Resolves what --checkpoint/--resume name: a checkpoint folder, or a run folder (its newest valid checkpoint).
std::filesystem::path resolve_checkpoint(const std::filesystem::path& path);

}  // namespace shardgan::train
