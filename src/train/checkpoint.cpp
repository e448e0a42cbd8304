#include "train/checkpoint.hpp"

#include <torch/serialize.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/atomic_file.hpp"
#include "util/checksum.hpp"
#include "util/error.hpp"
#include "util/staging_dir.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

constexpr const char* kTensorFiles[] = {"generator.pt", "discriminator.pt", "optim_g.pt", "optim_d.pt"};

std::string step_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%06lld", static_cast<long long>(step));
  return name;
}

}  // namespace

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
  ordered_json j;
  j["step"] = state.step;
  j["epoch"] = state.epoch;
  j["world_size"] = state.world_size;
  j["model_hash"] = state.model_hash;
  j["image_shape"] = {state.spec.shape.height, state.spec.shape.width, state.spec.shape.channels};
  j["class_names"] = state.spec.class_names;
  if (state.loss_scale)
    j["loss_scale"] = {{"scale", state.loss_scale->scale}, {"good_steps", state.loss_scale->good_steps}};
  j["files"] = ordered_json::object();
  for (const char* name : kTensorFiles) j["files"][name] = file_checksum(staging.path() / name);
  if (gan.generator_ema) j["files"]["generator_ema.pt"] = file_checksum(staging.path() / "generator_ema.pt");
  j["files"]["config.toml"] = file_checksum(staging.path() / "config.toml");
  {
    std::ofstream out(staging.path() / "state.json");
    out << j.dump(2) << '\n';
    out.close();
    if (!out) fail((staging.path() / "state.json").string(), ": write failed (disk full?)");
  }
  read_checkpoint_state(staging.path());  // everything on disk as recorded, before anything older is dropped
  staging.commit(/*replace=*/true);
  write_text_atomically(root / "latest", step_name(state.step) + "\n");

  // Keep the newest `keep` by step number (never the one just written), warn instead of failing on a delete.
  std::vector<std::pair<long long, fs::path>> all;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.rfind("step-", 0) != 0 || e.path() == target) continue;
    const long long step = std::atoll(name.c_str() + 5);
    if (step > state.step) {
      // Written by a run this one replaced (resumed from an older checkpoint): not part of this history.
      std::fprintf(stderr, "shardgan-train: removing %s, newer than the resumed history\n", e.path().c_str());
      std::error_code ec;
      fs::remove_all(e.path(), ec);
      continue;
    }
    all.emplace_back(step, e.path());
  }
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i + static_cast<std::size_t>(keep) < all.size() + 1; ++i) {
    std::error_code ec;
    fs::remove_all(all[i].second, ec);
    if (ec)
      std::fprintf(stderr, "shardgan-train: could not remove old checkpoint %s: %s\n", all[i].second.c_str(),
                   ec.message().c_str());
  }
  return target;
}

CheckpointState read_checkpoint_state(const fs::path& dir) {
  const fs::path file = dir / "state.json";
  if (!fs::exists(file)) fail(file.string(), ": missing (incomplete checkpoint)");
  ordered_json j;
  try {
    j = ordered_json::parse(std::ifstream(file));
    CheckpointState s;
    s.step = j.at("step").get<int64_t>();
    s.epoch = j.at("epoch").get<int64_t>();
    s.world_size = j.at("world_size").get<int>();
    s.model_hash = j.at("model_hash").get<std::string>();
    const auto shape = j.at("image_shape").get<std::vector<int>>();
    s.spec.shape = data::ImageShape{shape.at(0), shape.at(1), shape.at(2)};
    s.spec.class_names = j.at("class_names").get<std::vector<std::string>>();
    if (j.contains("loss_scale"))
      s.loss_scale =
          LossScaleState{j["loss_scale"].at("scale").get<double>(), j["loss_scale"].at("good_steps").get<int64_t>()};
    for (const auto& [name, sum] : j.at("files").items()) {
      const fs::path f = dir / name;
      if (!fs::exists(f)) fail(f.string(), ": missing (incomplete checkpoint)");
      if (file_checksum(f) != sum.get<std::string>()) fail(f.string(), ": checksum mismatch (corrupted checkpoint)");
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    fail(file.string(), ": unreadable (", e.what(), ")");
  }
}

std::optional<fs::path> find_latest_checkpoint(const fs::path& run_dir, std::vector<std::string>* skipped) {
  const fs::path root = run_dir / "checkpoints";
  if (!fs::is_directory(root)) return std::nullopt;
  std::vector<std::pair<long long, fs::path>> all;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("step-", 0) == 0) all.emplace_back(std::atoll(name.c_str() + 5), e.path());
  }
  std::sort(all.rbegin(), all.rend());  // newest step first
  for (const auto& [step, dir] : all) {
    try {
      read_checkpoint_state(dir);
      return dir;
    } catch (const Error& e) {
      if (skipped != nullptr) skipped->push_back(e.what());
    }
  }
  return std::nullopt;
}

fs::path resolve_checkpoint(const fs::path& path) {
  if (fs::exists(path / "state.json")) return path;
  if (fs::is_directory(path / "checkpoints")) {
    std::vector<std::string> skipped;
    if (auto found = find_latest_checkpoint(path, &skipped)) return *found;
    fail(path.string(), ": no valid checkpoint under checkpoints/",
         skipped.empty() ? "" : " (" + skipped.front() + ")");
  }
  fail(path.string(), ": not a checkpoint folder (no state.json) or a run folder (no checkpoints/)");
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
