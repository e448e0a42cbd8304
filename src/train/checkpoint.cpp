#include "train/checkpoint.hpp"

#include <torch/serialize.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string_view>

#include "train/model_state.hpp"
#include "util/atomic_file.hpp"
#include "util/checksum.hpp"
#include "util/error.hpp"
#include "util/staging_dir.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;

fs::path save_checkpoint(const fs::path& run_dir, Gan& gan, const CheckpointState& state,
                         const std::string& config_toml, int64_t keep,
                         const std::vector<std::pair<std::string, std::string>>& extra) {
  const fs::path root = run_dir / "checkpoints";
  fs::create_directories(root);
  const fs::path target = root / step_name(state.step);
  StagingDir staging(target);
  // Each file is made in memory and written with checked writes: LibTorch's file writer reports a full disk from a
  // destructor, which ends the process (std::terminate) instead of failing this write. A failure names the file as
  // it would be published; the staging folder goes with everything in it, and older checkpoints stay as they were.
  std::vector<std::string> written;
  const auto write = [&](const std::string& name, std::string_view bytes) {
    write_file_checked(staging.path() / name, bytes, target / name);
    written.push_back(name);
  };
  const auto write_archive = [&](const std::string& name, torch::serialize::OutputArchive& archive) {
    std::ostringstream bytes;
    archive.save_to(bytes);
    write(name + ".pt", std::move(bytes).str());
  };
  for (const auto& [name, module] : state_modules(gan)) {  // one LibTorch archive per entry of the state registry
    torch::serialize::OutputArchive archive;
    module->save(archive);
    write_archive(name, archive);
  }
  for (const auto& [name, optimizer] : state_optimizers(gan)) {
    torch::serialize::OutputArchive archive;
    optimizer->save(archive);
    write_archive(name, archive);
  }
  write("config.toml", config_toml);
  for (const auto& [name, bytes] : extra) write(name, bytes);
  std::map<std::string, std::string> checksums;
  for (const auto& name : written) checksums[name] = file_checksum(staging.path() / name);
  write_file_checked(staging.path() / "state.json", checkpoint_state_json(state, checksums), target / "state.json");
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
    const auto load = [&](const std::string& name, const auto& into) {
      torch::serialize::InputArchive archive;
      archive.load_from((dir / (name + ".pt")).string(), device);
      into->load(archive);
    };
    // The EMA generator: as saved; for a checkpoint without one (written with model.g_ema = 0, or before EMA
    // existed), training starts the average from G, and sampling/scoring use G itself.
    const bool has_ema = fs::exists(dir / "generator_ema.pt");
    for (const auto& [name, module] : state_modules(gan))
      if (name != "generator_ema" || has_ema) load(name, module);
    if (gan.generator_ema && !has_ema) {
      if (optimizers) {
        gan.reset_ema();
      } else {
        gan.generator_ema = nullptr;
      }
    }
    if (optimizers) {
      // Loading an optimiser restores its saved options too; the run's configuration decides them instead.
      for (const auto& [name, optimizer] : state_optimizers(gan)) {
        const auto keep = optimizer->param_groups().front().options().clone();
        load(name, optimizer);
        optimizer->param_groups().front().set_options(keep->clone());
      }
    }
  } catch (const c10::Error& e) {
    fail(dir.string(), ": cannot load tensors (", e.what_without_backtrace(), ")");
  }
}

}  // namespace shardgan::train
