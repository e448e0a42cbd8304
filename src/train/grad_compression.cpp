#include "train/grad_compression.hpp"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <cstdio>
#include <sstream>

#include "parallel/tensor_comm.hpp"
#include "util/error.hpp"
#include "util/random.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;

namespace {

/// An archive key: LibTorch's archives keep names as module attributes, so no dots and no slashes.
std::string archive_key(const std::string& sync, const std::string& state_name) {
  std::string key = sync + "_" + state_name;
  for (char& ch : key)
    if (ch == '/') ch = '_';
  return key;
}

int64_t scalar(torch::serialize::InputArchive& archive, const std::string& key) {
  torch::Tensor t;
  archive.read(key, t);
  return t.item<int64_t>();
}

}  // namespace

parallel::GradCompression grad_compression(const config::Config& cfg, uint64_t index) {
  using Mode = parallel::GradCompression::Mode;
  parallel::GradCompression c;
  switch (cfg.comm.compression) {
    case config::Compression::kNone: c.mode = Mode::kNone; break;
    case config::Compression::kBf16: c.mode = Mode::kBf16; break;
    case config::Compression::kFp16: c.mode = Mode::kFp16; break;
    case config::Compression::kPowerSgd: c.mode = Mode::kPowerSgd; break;
  }
  c.rank = cfg.comm.powersgd_rank;
  c.start_step = cfg.comm.powersgd_start_step;
  c.seed = rng::stream_seed(static_cast<uint64_t>(cfg.train.seed), rng::Stream::kPowerSgd, index);
  c.saturate = cfg.runtime.precision != config::Precision::kFp16;  // fp16's loss scaling must see an overflow
  return c;
}

std::string compression_checkpoint(comm::Communicator& comm, const NamedSyncs& syncs, int64_t powersgd_rank) {
  bool any = false;
  for (const auto& [name, sync] : syncs) any = any || sync->compressed_matrices() > 0;
  if (!any) return {};
  torch::NoGradGuard no_grad;
  torch::serialize::OutputArchive archive;
  archive.write("world_size", torch::tensor(static_cast<int64_t>(comm.size())));
  archive.write("powersgd_rank", torch::tensor(powersgd_rank));
  for (const auto& [name, sync] : syncs) {
    for (const auto& [state_name, tensor] : sync->compression_state()) {
      const bool per_rank = state_name.rfind("error/", 0) == 0;
      const torch::Tensor value = per_rank ? parallel::allgather(comm, tensor) : tensor;
      if (comm.rank() == 0) archive.write(archive_key(name, state_name), value.cpu());
    }
  }
  if (comm.rank() != 0) return {};
  std::ostringstream bytes;
  archive.save_to(bytes);
  return std::move(bytes).str();
}

void restore_compression(const fs::path& dir, const NamedSyncs& syncs, int rank, int world, int64_t powersgd_rank,
                         bool root) {
  bool any = false;
  for (const auto& [name, sync] : syncs) any = any || sync->compressed_matrices() > 0;
  const fs::path file = dir / kCompressionFile;
  const bool present = fs::exists(file);
  const auto say = [&](const char* what) {
    if (root) std::fprintf(stderr, "shardgan-train: comm.compression: %s\n", what);
  };
  if (!any) {
    if (present)
      say("the checkpoint's PowerSGD state is not used (this run does not compress with PowerSGD: another "
          "comm.compression, or one rank)");
    return;
  }
  if (!present) {
    say("the checkpoint holds no PowerSGD state: PowerSGD starts afresh (Q's first draw, no error feedback)");
    return;
  }
  torch::Device device = torch::kCPU;
  for (const auto& [name, sync] : syncs)
    if (sync->compressed_matrices() > 0) device = sync->compression_state().front().second.device();
  torch::NoGradGuard no_grad;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file.string(), device);
    if (scalar(archive, "powersgd_rank") != powersgd_rank) {
      say("the checkpoint's PowerSGD state has another comm.powersgd_rank: PowerSGD starts afresh");
      return;
    }
    const bool same_world = scalar(archive, "world_size") == world;
    if (!same_world)
      say("the checkpoint was written on another number of ranks: PowerSGD keeps Q, its error feedback restarts at "
          "zero");
    for (const auto& [name, sync] : syncs) {
      for (const auto& [state_name, live] : sync->compression_state()) {
        const bool per_rank = state_name.rfind("error/", 0) == 0;
        if (per_rank && !same_world) {
          live.zero_();
          continue;
        }
        const std::string key = archive_key(name, state_name);
        torch::Tensor saved;
        archive.read(key, saved);
        if (per_rank) saved = saved.select(0, rank);
        if (saved.sizes() != live.sizes())
          fail(file.string(), ": key '", key, "' has shape ", saved.sizes(), ", this run's is ", live.sizes());
        live.copy_(saved);
      }
    }
  } catch (const c10::Error& e) {
    fail(file.string(), ": cannot read PowerSGD's state (", e.what_without_backtrace(), ")");
  }
}

}  // namespace shardgan::train
