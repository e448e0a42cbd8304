// A checkpoint's state.json and the folder --checkpoint/--resume name: checked for what they are before anything is
// read (a FIFO would block, /dev/zero never ends), read up to kMaxStateBytes, and what they hold quoted short.
#include "train/checkpoint_state.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <functional>

#include "basics.hpp"
#include "util/checksum.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::train {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

/// A valid checkpoint folder without tensors: every file state.json lists, with its checksum.
fs::path write_checkpoint(const fs::path& dir) {
  fs::create_directories(dir);
  std::map<std::string, std::string> checksums;
  for (const auto& name : kCheckpointFiles) {
    testing::write_text(dir / name, "contents of " + name);
    checksums[name] = file_checksum(dir / name);
  }
  CheckpointState state;
  state.step = 2;
  state.model_hash = "0123456789abcdef";
  state.spec = data::DataSpec{data::ImageShape{8, 8, 1}, {"a", "b"}};
  testing::write_text(dir / "state.json", checkpoint_state_json(state, checksums));
  return dir;
}

/// The CorruptCheckpoint (or, with `corrupt` false, the plain Error) `f` throws, in at most 5 s.
std::string error_of(const std::function<void()>& f, bool corrupt = true) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string message;
  try {
    f();
  } catch (const CorruptCheckpoint& e) {
    EXPECT_TRUE(corrupt) << e.what();
    message = e.what();
  } catch (const Error& e) {
    EXPECT_FALSE(corrupt) << e.what();
    message = e.what();
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0) << message;
  return message;
}

TEST(CheckpointState, AValidFolderReads) {
  TempDir tmp;
  const fs::path dir = write_checkpoint(tmp / "step-000002");
  EXPECT_EQ(read_checkpoint_state(dir).step, 2);
  EXPECT_EQ(resolve_checkpoint(dir), dir);
  EXPECT_NE(error_of([&] { resolve_checkpoint(tmp.path()); }, false).find(": not a checkpoint folder"),
            std::string::npos);
}

TEST(CheckpointState, StateJsonThatIsNoRegularFileIsCorruptAndNamedForWhatItIs) {
  TempDir tmp;
  const fs::path dir = write_checkpoint(tmp / "ckpt");
  const fs::path state = dir / "state.json";
  const auto with_state = [&](const std::function<void()>& make) {
    fs::remove_all(state);
    make();
    return error_of([&] { read_checkpoint_state(dir); });
  };
  EXPECT_EQ(with_state([&] { ASSERT_EQ(::mkfifo(state.c_str(), 0600), 0); }),
            state.string() + ": not a regular file (it is a FIFO)");
  EXPECT_EQ(with_state([&] { fs::create_directory(state); }),
            state.string() + ": not a regular file (it is a directory)");
  EXPECT_EQ(with_state([&] { fs::create_symlink("/dev/zero", state); }),
            state.string() + ": not a regular file (it is a symbolic link)");
  EXPECT_EQ(with_state([] {}), state.string() + ": missing (incomplete checkpoint)");
  // Over the limit: corrupt, without reading it (sparse, so the test writes nothing).
  EXPECT_EQ(with_state([&] {
              testing::write_text(state, "{}");
              fs::resize_file(state, kMaxStateBytes + 1);
            }),
            state.string() + ": is over the 16 MiB limit of a checkpoint state (larger than any state.json)");
  // A FIFO among the listed files is named too (a checksum would block on it).
  write_checkpoint(dir);
  fs::remove(dir / "optim_g.pt");
  ASSERT_EQ(::mkfifo((dir / "optim_g.pt").c_str(), 0600), 0);
  EXPECT_EQ(error_of([&] { read_checkpoint_state(dir); }),
            (dir / "optim_g.pt").string() + ": not a regular file (it is a FIFO)");
}

// --checkpoint/--resume: a folder either way; anything else is named for what it is, before anything is opened.
TEST(CheckpointState, ResolveNamesWhatIsNoFolder) {
  TempDir tmp;
  ASSERT_EQ(::mkfifo((tmp / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(error_of([&] { resolve_checkpoint(tmp / "fifo"); }, false),
            "checkpoint or run folder " + (tmp / "fifo").string() + ": is a FIFO (a directory is needed)");
  testing::write_text(tmp / "file", "x");
  EXPECT_NE(error_of([&] { resolve_checkpoint(tmp / "file"); }, false).find("file: is a regular file (a directory"),
            std::string::npos);
  fs::create_symlink(tmp / "nowhere", tmp / "dangling");
  EXPECT_NE(error_of([&] { resolve_checkpoint(tmp / "dangling"); }, false).find("is a dangling symbolic link"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { resolve_checkpoint(tmp / "absent"); }, false),
            (tmp / "absent").string() + ": is missing (expected a checkpoint or run folder)");
  // A folder whose state.json is a FIFO (or a dangling link) is resolved as a checkpoint folder, so that reading it
  // says what is wrong, instead of "not a checkpoint folder".
  const fs::path dir = write_checkpoint(tmp / "ckpt");
  fs::remove(dir / "state.json");
  ASSERT_EQ(::mkfifo((dir / "state.json").c_str(), 0600), 0);
  EXPECT_EQ(resolve_checkpoint(dir), dir);
  fs::remove(dir / "state.json");
  fs::create_symlink(tmp / "nowhere", dir / "state.json");
  EXPECT_EQ(resolve_checkpoint(dir), dir);
  // A run folder whose newest checkpoint has a FIFO as state.json: skipped, the older one found.
  const fs::path run = tmp / "run";
  write_checkpoint(run / "checkpoints" / "step-000001");
  const fs::path newest = write_checkpoint(run / "checkpoints" / "step-000002");
  fs::remove(newest / "state.json");
  ASSERT_EQ(::mkfifo((newest / "state.json").c_str(), 0600), 0);
  std::vector<std::string> skipped;
  EXPECT_EQ(find_latest_checkpoint(run, &skipped), run / "checkpoints" / "step-000001");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("state.json: not a regular file (it is a FIFO)"), std::string::npos) << skipped[0];
}

// What state.json holds is quoted short: a megabyte file name is not echoed whole.
TEST(CheckpointState, InputTextInMessagesIsQuotedShort) {
  const std::string name(1 << 19, 'n');
  const std::string text = R"({"step": 1, "epoch": 0, "world_size": 1, "model_hash": "x", "image_shape": [8, 8, 1],
      "class_names": ["a"], "files": {")" +
                           name + R"(": "00"}})";
  const std::string e = error_of([&] { parse_checkpoint_state(text, "state.json"); });
  EXPECT_EQ(e, "state.json: lists an unexpected file '" + std::string(200, 'n') + "...(524088 more bytes)'");
  // An unlisted entry in the folder with a control character in its name stays on one line.
  TempDir tmp;
  const fs::path dir = write_checkpoint(tmp / "ckpt");
  testing::write_text(dir / "odd\nname", "x");
  const std::string extra = error_of([&] { read_checkpoint_state(dir); });
  EXPECT_EQ(extra.find('\n'), std::string::npos) << extra;
  EXPECT_NE(extra.find("odd?name: not part of the checkpoint"), std::string::npos) << extra;
}

}  // namespace
}  // namespace shardgan::train
