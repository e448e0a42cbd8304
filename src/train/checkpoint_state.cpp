#include "train/checkpoint_state.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "util/checksum.hpp"
#include "util/input_file.hpp"
#include "util/json_depth.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

constexpr int64_t kMaxStep = int64_t{1} << 50;
constexpr int64_t kMaxWorld = 1 << 20;
constexpr std::size_t kMaxClasses = 1 << 16;
// state.json is a few KiB; one over shardgan::kMaxStateBytes (util/input_file.hpp) is not read.

bool known_file(const std::string& name) {
  return std::count(kCheckpointFiles.begin(), kCheckpointFiles.end(), name) +
             std::count(kOptionalCheckpointFiles.begin(), kOptionalCheckpointFiles.end(), name) >
         0;
}

/// `j[key]` as an integer in [lo, hi]; CorruptCheckpoint naming the key otherwise.
int64_t integer(const ordered_json& j, const char* key, int64_t lo, int64_t hi, const std::string& source) {
  if (!j.contains(key)) throw CorruptCheckpoint(cat(source, ": key '", key, "' is missing"));
  const ordered_json& v = j[key];
  if (!v.is_number_integer()) throw CorruptCheckpoint(cat(source, ": key '", key, "' is not an integer"));
  const int64_t n = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : v.get<int64_t>();
  if (n < lo || n > hi) throw CorruptCheckpoint(cat(source, ": key '", key, "' is ", n, ", outside ", lo, "..", hi));
  return n;
}

}  // namespace

std::string step_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%06lld", static_cast<long long>(step));
  return name;
}

std::string checkpoint_state_json(const CheckpointState& state, const std::map<std::string, std::string>& checksums) {
  ordered_json j;
  j["step"] = state.step;
  j["epoch"] = state.epoch;
  j["samples_seen"] = state.samples_seen;
  j["global_batch"] = state.global_batch;
  j["world_size"] = state.world_size;
  j["model_hash"] = state.model_hash;
  j["image_shape"] = {state.spec.shape.height, state.spec.shape.width, state.spec.shape.channels};
  j["class_names"] = state.spec.class_names;
  if (state.loss_scale)
    j["loss_scale"] = {{"scale", state.loss_scale->scale}, {"good_steps", state.loss_scale->good_steps}};
  if (state.augment) j["augment"] = {{"p", state.augment->p}, {"sign_sum", state.augment->sign_sum}};
  j["files"] = ordered_json::object();
  for (const auto& [name, sum] : checksums) j["files"][name] = sum;
  return j.dump(2) + "\n";
}

CheckpointState parse_checkpoint_state(const std::string& text, const std::string& source,
                                       std::map<std::string, std::string>* checksums) {
  if (!json_depth_within(text)) throw CorruptCheckpoint(cat(source, ": nests deeper than any state.json"));
  const ordered_json j = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw CorruptCheckpoint(cat(source, ": not a JSON object"));
  CheckpointState s;
  s.step = integer(j, "step", 0, kMaxStep, source);
  s.epoch = integer(j, "epoch", 0, kMaxStep, source);
  s.world_size = static_cast<int>(integer(j, "world_size", 1, kMaxWorld, source));
  // Written since elastic resume; older checkpoints lack them (0: derive from the step).
  s.samples_seen = j.contains("samples_seen") ? integer(j, "samples_seen", 0, kMaxStep * 4096, source) : 0;
  s.global_batch = j.contains("global_batch") ? integer(j, "global_batch", 0, int64_t{1} << 31, source) : 0;
  if (!j.contains("model_hash") || !j["model_hash"].is_string() || j["model_hash"].get<std::string>().size() > 64)
    throw CorruptCheckpoint(cat(source, ": key 'model_hash' is missing or not a short string"));
  s.model_hash = j["model_hash"].get<std::string>();
  const auto& shape = j.contains("image_shape") ? j["image_shape"] : ordered_json();
  if (!shape.is_array() || shape.size() != 3 || !shape[0].is_number_integer() || !shape[1].is_number_integer() ||
      !shape[2].is_number_integer())
    throw CorruptCheckpoint(cat(source, ": key 'image_shape' is not [height, width, channels]"));
  const int64_t h = shape[0].get<int64_t>(), w = shape[1].get<int64_t>(), c = shape[2].get<int64_t>();
  const auto side = static_cast<int64_t>(data::kMaxImageSide);
  if (h < 1 || w < 1 || h > side || w > side || (c != 1 && c != 3))
    throw CorruptCheckpoint(cat(source, ": key 'image_shape' [", h, ", ", w, ", ", c, "] is not an image shape"));
  s.spec.shape = data::ImageShape{static_cast<int>(h), static_cast<int>(w), static_cast<int>(c)};
  const auto& names = j.contains("class_names") ? j["class_names"] : ordered_json();
  if (!names.is_array() || names.size() > kMaxClasses ||
      !std::all_of(names.begin(), names.end(), [](const ordered_json& n) { return n.is_string(); }))
    throw CorruptCheckpoint(cat(source, ": key 'class_names' is not a list of names"));
  for (const auto& n : names) s.spec.class_names.push_back(n.get<std::string>());
  if (j.contains("loss_scale")) {
    const auto& ls = j["loss_scale"];
    if (!ls.is_object() || !ls.contains("scale") || !ls["scale"].is_number() ||
        !std::isfinite(ls["scale"].get<double>()) || ls["scale"].get<double>() < 1)
      throw CorruptCheckpoint(cat(source, ": key 'loss_scale.scale' is not a number >= 1"));
    s.loss_scale = LossScaleState{ls["scale"].get<double>(), integer(ls, "good_steps", 0, kMaxStep, source)};
  }
  if (j.contains("augment")) {
    const auto& a = j["augment"];
    const auto finite = [&](const char* key) {
      return a.is_object() && a.contains(key) && a[key].is_number() && std::isfinite(a[key].get<double>());
    };
    if (!finite("p") || a["p"].get<double>() < 0 || a["p"].get<double>() > 1)
      throw CorruptCheckpoint(cat(source, ": key 'augment.p' is not a number in [0, 1]"));
    if (!finite("sign_sum") || std::abs(a["sign_sum"].get<double>()) > 9007199254740992.0)
      throw CorruptCheckpoint(cat(source, ": key 'augment.sign_sum' is not a finite number"));
    s.augment = AugmentState{a["p"].get<double>(), a["sign_sum"].get<double>()};
  }
  const auto& files = j.contains("files") ? j["files"] : ordered_json();
  if (!files.is_object()) throw CorruptCheckpoint(cat(source, ": key 'files' is not an object"));
  for (const auto& [name, sum] : files.items()) {
    if (!known_file(name))
      throw CorruptCheckpoint(cat(source, ": lists an unexpected file '", shardgan::quoted(name), "'"));
    if (!sum.is_string() || sum.get<std::string>().size() > 64)
      throw CorruptCheckpoint(cat(source, ": the checksum of '", name, "' is not a short string"));
    if (checksums != nullptr) (*checksums)[name] = sum.get<std::string>();
  }
  for (const auto& name : kCheckpointFiles)
    if (!files.contains(name)) throw CorruptCheckpoint(cat(source, ": does not list ", name));
  return s;
}

namespace {

/// symlink_status that tells "not there" (a damaged checkpoint) from "cannot look" (an I/O or permission error,
/// which proves nothing about the checkpoint and stops the caller with a plain Error).
fs::file_status status_of(const fs::path& p) {
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(p, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) fail(p.string(), ": cannot be examined (", ec.message(), ")");
  return status;
}

/// CorruptCheckpoint unless `p` (not followed if a link) is a regular file: "missing (incomplete checkpoint)", or
/// "not a regular file (it is a FIFO)" and the like. Nothing is opened: a FIFO would block its reader.
void require_checkpoint_file(const fs::path& p) {
  const fs::file_status status = status_of(p);
  if (!fs::exists(status)) throw CorruptCheckpoint(cat(p.string(), ": missing (incomplete checkpoint)"));
  if (fs::is_regular_file(status)) return;
  const char* what = fs::is_symlink(status)          ? "is a symbolic link"
                     : fs::is_directory(status)      ? describe(FileKind::kDirectory)
                     : fs::is_fifo(status)           ? describe(FileKind::kFifo)
                     : fs::is_character_file(status) ? describe(FileKind::kCharDevice)
                     : fs::is_block_file(status)     ? describe(FileKind::kBlockDevice)
                     : fs::is_socket(status)         ? describe(FileKind::kSocket)
                                                     : describe(FileKind::kOther);
  throw CorruptCheckpoint(cat(p.string(), ": not a regular file (it ", what, ")"));
}

}  // namespace

CheckpointState read_checkpoint_state(const fs::path& dir) {
  const fs::path file = dir / "state.json";
  require_checkpoint_file(file);
  std::error_code ec;
  if (const uintmax_t bytes = fs::file_size(file, ec); !ec && bytes > kMaxStateBytes)
    throw CorruptCheckpoint(cat(file.string(), ": is over the ", byte_size(kMaxStateBytes),
                                " limit of a checkpoint state (larger than any state.json)"));
  // Opened without blocking and read to at most the limit (it may have changed since the checks above).
  const std::string text = read_bounded(file, kMaxStateBytes, "checkpoint state");
  std::map<std::string, std::string> checksums;
  CheckpointState s = parse_checkpoint_state(text, file.string(), &checksums);
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name != "state.json" && checksums.count(name) == 0)
      throw CorruptCheckpoint(
          cat((dir / shardgan::quoted(name)).string(), ": not part of the checkpoint (state.json does not list it)"));
  }
  for (const auto& [name, sum] : checksums) {
    const fs::path f = dir / name;
    require_checkpoint_file(f);
    if (file_checksum(f) != sum) throw CorruptCheckpoint(cat(f.string(), ": checksum mismatch (corrupted checkpoint)"));
  }
  return s;
}

namespace {

/// The step-N folders under RUN_DIR/checkpoints, newest first.
std::vector<std::pair<long long, fs::path>> checkpoint_folders(const fs::path& run_dir) {
  std::vector<std::pair<long long, fs::path>> all;
  const fs::path root = run_dir / "checkpoints";
  if (!fs::is_directory(root)) return all;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    long long step = -1;
    char rest = 0;
    if (e.is_directory() && std::sscanf(name.c_str(), "step-%lld%c", &step, &rest) == 1 && step >= 0)
      all.emplace_back(step, e.path());
  }
  std::sort(all.rbegin(), all.rend());
  return all;
}

/// Moves a checkpoint folder into RUN_DIR/checkpoints/rejected/ under a name not taken yet.
fs::path move_aside(const fs::path& dir) {
  const fs::path rejected = dir.parent_path() / "rejected";
  fs::create_directories(rejected);
  fs::path target = rejected / dir.filename();
  for (int i = 1; fs::exists(fs::symlink_status(target)); ++i)
    target = rejected / (dir.filename().string() + "." + std::to_string(i));
  fs::rename(dir, target);
  return target;
}

}  // namespace

std::optional<fs::path> find_latest_checkpoint(const fs::path& run_dir, std::vector<std::string>* skipped) {
  for (const auto& [step, dir] : checkpoint_folders(run_dir)) {
    try {
      read_checkpoint_state(dir);
      return dir;
    } catch (const CorruptCheckpoint& e) {  // any other Error (cannot read) propagates: it is not proof of damage
      if (skipped != nullptr) skipped->push_back(e.what());
    }
  }
  return std::nullopt;
}

std::vector<fs::path> reject_checkpoints_after(const fs::path& run_dir, int64_t step) {
  std::vector<fs::path> moved;
  for (const auto& [n, dir] : checkpoint_folders(run_dir))
    if (n > step) moved.push_back(move_aside(dir));
  return moved;
}

fs::path resolve_checkpoint(const fs::path& path) {
  // A folder either way: a FIFO, a file or a dangling link given as --checkpoint/--resume is named for what it is.
  if (file_kind(path) == FileKind::kMissing) fail(path.string(), ": is missing (expected a checkpoint or run folder)");
  require_directory(path, "checkpoint or run folder");
  // state.json present in any form (a FIFO, a link): read_checkpoint_state names what is wrong with it.
  if (fs::exists(status_of(path / "state.json"))) return path;
  if (fs::is_directory(path / "checkpoints")) {
    std::vector<std::string> skipped;
    if (auto found = find_latest_checkpoint(path, &skipped)) return *found;
    fail(path.string(), ": no valid checkpoint under checkpoints/",
         skipped.empty() ? "" : " (" + skipped.front() + ")");
  }
  fail(path.string(), ": not a checkpoint folder (no state.json) or a run folder (no checkpoints/)");
}

}  // namespace shardgan::train
