#include "train/checkpoint.hpp"

#include <torch/serialize.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>

#include "util/atomic_file.hpp"
#include "util/checksum.hpp"
#include "util/error.hpp"
#include "util/staging_dir.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;

fs::path save_checkpoint(const fs::path& run_dir, Gan& gan, const CheckpointState& state,
                         const std::string& config_toml, int64_t keep) {
  const fs::path root = run_dir / "checkpoints";
  fs::create_directories(root);
  const fs::path target = root / step_name(state.step);
  StagingDir staging(target);
  torch::save(gan.generator, (staging.path() / "generator.pt").string());
  torch::save(gan.discriminator, (staging.path() / "discriminator.pt").string());
  torch::save(*gan.optim_g, (staging.path() / "optim_g.pt").string());
  torch::save(*gan.optim_d, (staging.path() / "optim_d.pt").string());
  if (gan.generator_ema) torch::save(gan.generator_ema, (staging.path() / "generator_ema.pt").string());
  {
    std::ofstream out(staging.path() / "config.toml");
    out << config_toml;
    out.close();
    if (!out) fail((staging.path() / "config.toml").string(), ": write failed (disk full?)");
  }
  std::map<std::string, std::string> checksums;
  for (const auto& name : kCheckpointFiles) checksums[name] = file_checksum(staging.path() / name);
  if (gan.generator_ema) checksums["generator_ema.pt"] = file_checksum(staging.path() / "generator_ema.pt");
  {
    std::ofstream out(staging.path() / "state.json");
    out << checkpoint_state_json(state, checksums);
    out.close();
    if (!out) fail((staging.path() / "state.json").string(), ": write failed (disk full?)");
  }
  read_checkpoint_state(staging.path());  // everything on disk as recorded, before anything older is dropped
  staging.commit(/*replace=*/true);       // flushed to disk, then published
  write_text_atomically(root / "latest", step_name(state.step) + "\n");

  // Keep the newest `keep` by step number (never the one just written); warn instead of failing on a delete.
  std::vector<std::pair<long long, fs::path>> older;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    long long step = -1;
    char rest = 0;
    if (e.is_directory() && e.path() != target && std::sscanf(name.c_str(), "step-%lld%c", &step, &rest) == 1 &&
        step < state.step)
      older.emplace_back(step, e.path());
  }
  std::sort(older.begin(), older.end());
  for (std::size_t i = 0; i + static_cast<std::size_t>(keep) < older.size() + 1; ++i) {
    std::error_code ec;
    fs::remove_all(older[i].second, ec);
    if (ec)
      std::fprintf(stderr, "shardgan-train: could not remove old checkpoint %s: %s\n", older[i].second.c_str(),
                   ec.message().c_str());
  }
  return target;
}

RestoredModels restore_models(const fs::path& path) {
  const fs::path dir = resolve_checkpoint(path);
  const CheckpointState state = read_checkpoint_state(dir);
  const config::Config config = config::load(dir / "config.toml");
  RestoredModels restored{dir, state, config, Gan(config, state.spec, torch::kCPU)};
  load_checkpoint(dir, restored.gan, config.model_hash(), /*optimizers=*/false);
  return restored;
}

void load_checkpoint(const fs::path& dir, Gan& gan, const std::string& model_hash, bool optimizers) {
  const CheckpointState state = read_checkpoint_state(dir);
  if (state.model_hash != model_hash)
    fail(dir.string(),
         ": checkpoint was written for a different model configuration (model.* keys differ: "
         "model hash ",
         state.model_hash, ", this config ", model_hash, ")");
  // Tensors go to the device the models live on, whatever device wrote them (rank 0's GPU, or a CPU run).
  const torch::Device device = gan.generator->parameters().front().device();
  try {
    torch::load(gan.generator, (dir / "generator.pt").string(), device);
    torch::load(gan.discriminator, (dir / "discriminator.pt").string(), device);
    // The EMA generator: as saved; for a checkpoint without one (written with model.g_ema = 0, or before EMA
    // existed), training starts the average from G, and sampling/scoring use G itself.
    if (gan.generator_ema && fs::exists(dir / "generator_ema.pt")) {
      torch::load(gan.generator_ema, (dir / "generator_ema.pt").string(), device);
    } else if (optimizers) {
      gan.reset_ema();
    } else {
      gan.generator_ema = nullptr;
    }
    if (optimizers) {
      // Loading an optimiser restores its saved options too; the run's configuration decides them instead.
      const auto keep_g = gan.optim_g->param_groups().front().options().clone();
      const auto keep_d = gan.optim_d->param_groups().front().options().clone();
      torch::load(*gan.optim_g, (dir / "optim_g.pt").string(), device);
      torch::load(*gan.optim_d, (dir / "optim_d.pt").string(), device);
      gan.optim_g->param_groups().front().set_options(keep_g->clone());
      gan.optim_d->param_groups().front().set_options(keep_d->clone());
    }
  } catch (const c10::Error& e) {
    fail(dir.string(), ": cannot load tensors (", e.what_without_backtrace(), ")");
  }
}

}  // namespace shardgan::train
