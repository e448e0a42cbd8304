#pragma once
// comm.compression in the trainer: GradSync's settings from the configuration, and PowerSGD's state in a checkpoint
// (grad_compression.pt: Q, the same on every rank, and every rank's error feedback).
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.hpp"
#include "config/config.hpp"
#include "parallel/grad_sync.hpp"

namespace shardgan::train {

inline constexpr const char* kCompressionFile = "grad_compression.pt";

/// comm.compression as GradSync takes it, for G's gradients (`index` 0) or D's (1): the same Q draws on every rank.
parallel::GradCompression grad_compression(const config::Config& cfg, uint64_t index);

/// The GradSyncs whose state a checkpoint holds, named ("generator", "discriminator").
using NamedSyncs = std::vector<std::pair<std::string, parallel::GradSync*>>;

/// PowerSGD's state for a checkpoint: collective (every rank calls it, in step), every rank's error feedback gathered
/// to all (one tensor at a time, so the extra memory is world size × the largest matrix). The LibTorch archive's bytes
/// on rank 0; empty on the other ranks and when nothing is compressed (another mode, or one rank).
std::string compression_checkpoint(comm::Communicator& comm, const NamedSyncs& syncs, int64_t powersgd_rank);

/// Restores PowerSGD's state from checkpoint folder `dir` into `syncs` on every rank. A checkpoint written with the
/// same world size and comm.powersgd_rank gives back Q and this rank's error feedback exactly (a bit-identical
/// resume). Another world size keeps Q and restarts the error feedback at zero (the ranks' residuals cannot be
/// redistributed: each belongs to the gradients of the batches its rank saw); another rank, or a checkpoint without
/// the file, starts PowerSGD afresh. `root` says which of these happened. A file that does not hold what it should is
/// an Error naming it and the key.
void restore_compression(const std::filesystem::path& dir, const NamedSyncs& syncs, int rank, int world,
                         int64_t powersgd_rank, bool root);

}  // namespace shardgan::train
