#include "train/checkpoint.hpp"
#include "train/model_state.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "config/config.hpp"
#include "fixtures.hpp"
#include "util/error.hpp"
#include "basics.hpp"

namespace shardgan::train {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

const DataSpec kSpec{{8, 8, 1}, {"a", "b"}};

config::Config tiny(const std::vector<std::string>& overrides = {}) {
  return config::parse("[data]\npath = \"x\"\n[model]\nz_dim = 4\ng_width = 2\nd_width = 2\n", "test", overrides);
}

CheckpointState state_at(int64_t step, const config::Config& cfg) {
  CheckpointState s;
  s.step = step;
  s.epoch = step / 10;
  s.world_size = 2;
  s.model_hash = cfg.model_hash();
  s.spec = kSpec;
  return s;
}

std::vector<std::string> checkpoint_names(const fs::path& run) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(run / "checkpoints")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Checkpoint, WriteReadLoadRoundTrip) {
  TempDir tmp;
  const config::Config cfg = tiny();
  Gan gan(cfg, kSpec, torch::kCPU);
  const fs::path dir = save_checkpoint(tmp.path(), gan, state_at(30, cfg), cfg.to_toml(), 3);
  EXPECT_EQ(dir, tmp / "checkpoints" / "step-000030");
  const CheckpointState s = read_checkpoint_state(dir);
  EXPECT_EQ(s.step, 30);
  EXPECT_EQ(s.epoch, 3);
  EXPECT_EQ(s.world_size, 2);
  EXPECT_EQ(s.spec.shape, kSpec.shape);
  EXPECT_EQ(s.spec.class_names, kSpec.class_names);
  EXPECT_FALSE(s.loss_scale);  // fp32: no loss scale recorded
  torch::manual_seed(99);
  Gan other(cfg, kSpec, torch::kCPU);
  load_checkpoint(dir, other, cfg.model_hash(), /*optimizers=*/true);
  const auto a = train::state_tensors(gan), b = train::state_tensors(other);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  // sample/eval: the same models from the folder alone.
  const RestoredModels restored = restore_models(tmp.path());
  EXPECT_EQ(restored.dir, dir);
  EXPECT_EQ(restored.config.model.z_dim, 4);
  const auto c = train::state_tensors(restored.gan);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, c[i].second)) << a[i].first;
  // Another model shape is refused, naming the folder.
  const config::Config wider = tiny({"model.g_width=4"});
  Gan wide(wider, kSpec, torch::kCPU);
  EXPECT_THROW(load_checkpoint(dir, wide, wider.model_hash(), true), Error);
}

TEST(Checkpoint, Fp16LossScaleRoundTrips) {
  TempDir tmp;
  const config::Config cfg = tiny();
  Gan gan(cfg, kSpec, torch::kCPU);
  CheckpointState state = state_at(12, cfg);
  state.loss_scale = LossScaleState{8192, 17};
  const CheckpointState s = read_checkpoint_state(save_checkpoint(tmp.path(), gan, state, cfg.to_toml(), 3));
  ASSERT_TRUE(s.loss_scale);
  EXPECT_EQ(s.loss_scale->scale, 8192);
  EXPECT_EQ(s.loss_scale->good_steps, 17);
}

TEST(Checkpoint, KeepsTheNewestAndMovesAReplacedHistoryAside) {
  TempDir tmp;
  const config::Config cfg = tiny();
  Gan gan(cfg, kSpec, torch::kCPU);
  for (int64_t step : {10, 20, 30, 40}) save_checkpoint(tmp.path(), gan, state_at(step, cfg), cfg.to_toml(), 2);
  EXPECT_EQ(checkpoint_names(tmp.path()), (std::vector<std::string>{"latest", "step-000030", "step-000040"}));
  // Resumed from 30 and checkpointed at 35: step 40 belongs to the replaced history, moved aside (never deleted).
  const auto moved = reject_checkpoints_after(tmp.path(), 30);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0], tmp / "checkpoints" / "rejected" / "step-000040");
  save_checkpoint(tmp.path(), gan, state_at(35, cfg), cfg.to_toml(), 2);
  EXPECT_EQ(checkpoint_names(tmp.path()),
            (std::vector<std::string>{"latest", "rejected", "step-000030", "step-000035"}));
  EXPECT_NO_THROW(read_checkpoint_state(tmp / "checkpoints" / "rejected" / "step-000040"));
  const auto latest = testing::read_bytes(tmp / "checkpoints" / "latest");
  EXPECT_EQ(std::string(latest.begin(), latest.end()), "step-000035\n");
  // A second branch that reaches 40 again keeps both rejected histories.
  save_checkpoint(tmp.path(), gan, state_at(40, cfg), cfg.to_toml(), 2);
  reject_checkpoints_after(tmp.path(), 35);
  EXPECT_TRUE(fs::exists(tmp / "checkpoints" / "rejected" / "step-000040.1"));
}

/// A hostile or damaged state.json: proven corrupt (CorruptCheckpoint, skipped by --resume auto) with the key named,
/// at once — never a hang, a crash or a read of a file it names.
TEST(Checkpoint, StateJsonIsValidatedKeyByKey) {
  TempDir tmp;
  const config::Config cfg = tiny();
  Gan gan(cfg, kSpec, torch::kCPU);
  const fs::path dir = save_checkpoint(tmp.path(), gan, state_at(10, cfg), cfg.to_toml(), 5);
  const auto original = testing::read_bytes(dir / "state.json");
  const std::string text(original.begin(), original.end());
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    const auto at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) t.replace(at, from.size(), to);
    return t;
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {with("\"step\": 10", "\"step\": -3"), "key 'step' is -3"},
      {with("\"step\": 10", "\"step\": 1e400"), "not a JSON object"},
      {with("\"world_size\": 2", "\"world_size\": 0"), "key 'world_size' is 0"},
      {with("\"epoch\": 1", "\"epoch\": \"one\""), "key 'epoch' is not an integer"},
      {with("\"files\": {", "\"files\": {\"../../../dev/zero\": \"0\", "), "unexpected file '../../../dev/zero'"},
      {with("\"generator.pt\"", "\"generator.ptx\""), "unexpected file 'generator.ptx'"},
      {with("\"image_shape\": [", "\"image_shape\": [100000, "), "image_shape"},
      {"[1, 2]", "not a JSON object"},
      {"", "not a JSON object"},
  };
  for (const auto& [bad, needle] : cases) {
    testing::write_text(dir / "state.json", bad);
    try {
      read_checkpoint_state(dir);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const CorruptCheckpoint& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  testing::write_bytes(dir / "state.json", original);
  EXPECT_NO_THROW(read_checkpoint_state(dir));
  // Extra or non-regular files make the folder invalid too (a FIFO would block a checksum forever).
  testing::write_text(dir / "notes.txt", "x");
  EXPECT_THROW(read_checkpoint_state(dir), CorruptCheckpoint);
  fs::remove(dir / "notes.txt");
  fs::rename(dir / "optim_d.pt", tmp / "optim_d.pt");
  ASSERT_EQ(mkfifo((dir / "optim_d.pt").c_str(), 0600), 0);
  try {
    read_checkpoint_state(dir);
    ADD_FAILURE() << "a FIFO was accepted";
  } catch (const CorruptCheckpoint& e) {
    EXPECT_NE(std::string(e.what()).find("optim_d.pt: not a regular file"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, CorruptOrIncompleteOnesAreNamedAndSkipped) {
  TempDir tmp;
  const config::Config cfg = tiny();
  Gan gan(cfg, kSpec, torch::kCPU);
  save_checkpoint(tmp.path(), gan, state_at(10, cfg), cfg.to_toml(), 5);
  const fs::path newest = save_checkpoint(tmp.path(), gan, state_at(20, cfg), cfg.to_toml(), 5);
  auto bytes = testing::read_bytes(newest / "optim_d.pt");
  bytes[bytes.size() / 2] ^= 0xff;
  testing::write_bytes(newest / "optim_d.pt", bytes);
  try {
    read_checkpoint_state(newest);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optim_d.pt: checksum mismatch"), std::string::npos) << e.what();
  }
  std::vector<std::string> skipped;
  EXPECT_EQ(find_latest_checkpoint(tmp.path(), &skipped), tmp / "checkpoints" / "step-000010");
  ASSERT_EQ(skipped.size(), 1u);
  fs::remove(tmp / "checkpoints" / "step-000010" / "state.json");
  EXPECT_FALSE(find_latest_checkpoint(tmp.path()));
  EXPECT_THROW(resolve_checkpoint(tmp.path()), Error);
  EXPECT_THROW(resolve_checkpoint(tmp / "nowhere"), Error);
}

using shardgan::testing::error_of;

/// What a checkpoint that failed to write leaves: `latest` and the previous checkpoint as they were (valid, loadable),
/// no staging folder.
void expect_only_the_previous_checkpoint(const fs::path& run, const config::Config& cfg) {
  EXPECT_EQ(checkpoint_names(run), (std::vector<std::string>{"latest", "step-000010"}));
  const auto latest = testing::read_bytes(run / "checkpoints" / "latest");
  EXPECT_EQ(std::string(latest.begin(), latest.end()), "step-000010\n");
  EXPECT_EQ(find_latest_checkpoint(run), run / "checkpoints" / "step-000010");
  Gan resumed(cfg, kSpec, torch::kCPU);
  EXPECT_NO_THROW(load_checkpoint(run / "checkpoints" / "step-000010", resumed, cfg.model_hash(), true));
}

// A write that fails part-way (RLIMIT_FSIZE: any user, any file system; the write past the limit fails with EFBIG as
// it would with ENOSPC): one error naming the file as it would have been published, and nothing else changes. The
// archive writer LibTorch has for files would have ended the process from a destructor (exit 134).
TEST(Checkpoint, AWriteThatFailsNamesTheFileAndKeepsThePreviousCheckpoint) {
  TempDir tmp;
  const config::Config cfg = tiny();
  Gan gan(cfg, kSpec, torch::kCPU);
  const fs::path first = save_checkpoint(tmp.path(), gan, state_at(10, cfg), cfg.to_toml(), 3);
  uintmax_t largest = 0;
  for (const auto& e : fs::directory_iterator(first)) largest = std::max(largest, e.file_size());
  std::string message;
  {
    rlimit saved{};
    ::getrlimit(RLIMIT_FSIZE, &saved);
    const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{largest / 2, saved.rlim_max};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    message = error_of([&] { save_checkpoint(tmp.path(), gan, state_at(20, cfg), cfg.to_toml(), 3); });
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, old_handler);
  }
  const std::string dir = (tmp / "checkpoints" / "step-000020").string() + "/";
  EXPECT_EQ(message.rfind(dir, 0), 0u) << message;
  EXPECT_NE(message.find(".pt: write failed (File too large)"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
  expect_only_the_previous_checkpoint(tmp.path(), cfg);
}

// The real thing: a run folder on a small tmpfs, filled so that the second checkpoint runs out of space half-way
// (needs the right to mount, as root; skipped otherwise — the test above covers the same path for everyone).
TEST(Checkpoint, AFullFileSystemFailsTheCheckpointAndKeepsThePreviousOne) {
  TempDir tmp;
  const fs::path run = tmp / "run";
  fs::create_directory(run);
  if (::mount("tmpfs", run.c_str(), "tmpfs", 0, "size=8m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << ")";
  struct Unmount {
    fs::path dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{run};
  const config::Config cfg = tiny();
  Gan gan(cfg, kSpec, torch::kCPU);
  const fs::path first = save_checkpoint(run, gan, state_at(10, cfg), cfg.to_toml(), 3);
  uintmax_t bytes = 0;
  for (const auto& e : fs::directory_iterator(first)) bytes += e.file_size();
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(run.c_str(), &vfs), 0);
  const off_t leave = static_cast<off_t>(bytes / 2);
  const off_t fill = static_cast<off_t>(vfs.f_bavail * vfs.f_frsize) - leave;
  const int filler = ::open((run / "filler").c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(filler, 0);
  ASSERT_EQ(::fallocate(filler, 0, 0, fill), 0) << std::strerror(errno);
  ::close(filler);
  const std::string message = error_of([&] { save_checkpoint(run, gan, state_at(20, cfg), cfg.to_toml(), 3); });
  EXPECT_EQ(message.rfind((run / "checkpoints" / "step-000020").string() + "/", 0), 0u) << message;
  EXPECT_NE(message.find(": write failed (No space left on device)"), std::string::npos) << message;
  fs::remove(run / "filler");
  expect_only_the_previous_checkpoint(run, cfg);
  EXPECT_NO_THROW(save_checkpoint(run, gan, state_at(20, cfg), cfg.to_toml(), 3));  // with space again
  EXPECT_EQ(find_latest_checkpoint(run), run / "checkpoints" / "step-000020");
}

}  // namespace
}  // namespace shardgan::train
