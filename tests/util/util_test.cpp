#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <stdexcept>

#include "fixtures.hpp"
#include "util/atomic_file.hpp"
#include "util/checksum.hpp"
#include "util/error.hpp"
#include "util/error_message.hpp"
#include "util/png.hpp"
#include "util/random.hpp"
#include "util/staging_dir.hpp"

namespace shardgan {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

TEST(StagingDir, UncommittedFolderIsRemovedCommittedOneMovesIntoPlace) {
  TempDir tmp;
  fs::path staged;
  {
    StagingDir s(tmp / "out");
    staged = s.path();
    EXPECT_EQ(staged.parent_path(), tmp.path());
    testing::write_text(staged / "x", "1");
  }
  EXPECT_FALSE(fs::exists(staged));
  EXPECT_FALSE(fs::exists(tmp / "out"));
  {
    StagingDir s(tmp / "out");
    testing::write_text(s.path() / "x", "2");
    s.commit(false);
  }
  EXPECT_TRUE(fs::exists(tmp / "out" / "x"));
  StagingDir again(tmp / "out");
  EXPECT_THROW(again.commit(false), Error);
  testing::write_text(again.path() / "y", "3");
  again.commit(true);
  EXPECT_TRUE(fs::exists(tmp / "out" / "y"));
  EXPECT_FALSE(fs::exists(tmp / "out" / "x"));
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 1);
}

TEST(Checksum, KnownValueAndPrefix) {
  TempDir tmp;
  testing::write_text(tmp / "f", "");
  // XXH3-128 of the empty input.
  EXPECT_EQ(file_checksum(tmp / "f"), "xxh3-128:99aa06d3014798d86001c324468d497f");
  Md5 md5;
  md5.update("abc", 3);
  EXPECT_EQ(md5.finish(), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(AtomicFile, ReplacesWholeOrNotAtAllAndLeavesNoTemporary) {
  TempDir tmp;
  const fs::path file = tmp / "f.txt";
  write_text_atomically(file, "first\n");
  write_text_atomically(file, "second\n");
  const auto bytes = testing::read_bytes(file);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "second\n");
  // A writer that fails half-way: the old content stays, the temporary file is gone, the error passes through.
  EXPECT_THROW(write_file_atomically(file,
                                     [](const fs::path& t) {
                                       testing::write_text(t, "half");
                                       fail("disk full");
                                     }),
               Error);
  const auto kept = testing::read_bytes(file);
  EXPECT_EQ(std::string(kept.begin(), kept.end()), "second\n");
  EXPECT_FALSE(fs::exists(tmp / "f.txt.tmp"));
  // A folder that cannot be written: an Error naming the file.
  try {
    write_text_atomically(tmp / "no" / "such" / "dir" / "f", "x");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f: write failed"), std::string::npos) << e.what();
  }
}

TEST(Png, WrittenAtomicallyAndReadBack) {
  TempDir tmp;
  Image img(3, 2, 3, 0);
  for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 13);
  write_png(tmp / "a.png", img);
  EXPECT_FALSE(fs::exists(tmp / "a.png.tmp"));
  const Image back = read_png(tmp / "a.png");
  EXPECT_EQ(back.width, 3);
  EXPECT_EQ(back.height, 2);
  EXPECT_EQ(back.pixels, img.pixels);
}

TEST(Random, SplitmixKnownValuesAndStreamsThatDoNotCollide) {
  uint64_t state = 0;
  EXPECT_EQ(rng::splitmix64(state), 0xe220a8397b1dcdafull);  // the reference implementation's first output
  EXPECT_EQ(rng::splitmix64(state), 0x6e789e6aa1b965f4ull);
  // Every named stream and every rank's stream give different seeds for the same run seed and step.
  std::set<uint64_t> seeds;
  for (auto s : {rng::Stream::kEpochPermutation, rng::Stream::kStepNoise, rng::Stream::kSampleGrid,
                 rng::Stream::kEvaluation, rng::Stream::kEmaBatchNorm, rng::Stream::kHoldout})
    EXPECT_TRUE(seeds.insert(rng::stream_seed(7, s, 3)).second);
  for (int rank = 0; rank < 64; ++rank) EXPECT_TRUE(seeds.insert(rng::rank_step_seed(7, 3, rank)).second) << rank;
  EXPECT_NE(rng::stream_seed(7, rng::Stream::kStepNoise, 3), rng::stream_seed(7, rng::Stream::kStepNoise, 4));
  EXPECT_NE(rng::stream_seed(7, rng::Stream::kStepNoise, 3), rng::stream_seed(8, rng::Stream::kStepNoise, 3));
}

TEST(ErrorMessage, OneLineWithoutTrailingNewlines) {
  EXPECT_EQ(error_message(Error("data.toml: bad key\n  line 3\n\n")), "data.toml: bad key   line 3");
  EXPECT_EQ(error_message(std::runtime_error("plain")), "plain");
  EXPECT_EQ(error_message(std::runtime_error("\n")), "");
}

}  // namespace
}  // namespace shardgan
