#include "data/shard_format.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "data/dataset_check.hpp"
#include "data/manifest.hpp"
#include "data/shard_dataset.hpp"
#include "fixtures.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"
#include "basics.hpp"

namespace shardgan::data {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

using testing::pixels_of;
using testing::write_set;

TEST(ShardFormat, WriterAndReaderAgreeOnEveryRowAndColumn) {
  TempDir tmp;
  const Manifest m = write_set(tmp.path(), 23, 10);
  ASSERT_EQ(m.shards.size(), 3u);
  EXPECT_EQ(m.shards[0].count, 10);
  EXPECT_EQ(m.shards[2].count, 3);
  EXPECT_EQ(m.class_counts, (std::vector<int64_t>{8, 8, 7}));

  int i = 0;
  for (const auto& info : m.shards) {
    ShardReader shard(tmp / info.file);
    EXPECT_EQ(shard.count(), info.count);
    EXPECT_EQ(shard.shape(), (ImageShape{4, 5, 3}));
    EXPECT_EQ(shard.class_names(), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(shard.source(), "test");
    EXPECT_EQ(shard.num_shards(), 3);
    EXPECT_EQ(shard.format_version(), kFormatVersion);
    const auto labels = shard.labels();
    const auto ids = shard.ids();
    const auto source = shard.int64_column("/source_labels");
    const auto ages = shard.float_column("/meta/age");
    const auto sex = shard.string_column("/meta/sex");
    std::vector<uint8_t> images(static_cast<std::size_t>(shard.count()) * shard.shape().bytes());
    shard.read_images(0, shard.count(), images.data());
    for (int64_t row = 0; row < shard.count(); ++row, ++i) {
      EXPECT_EQ(labels[row], i % 3);
      EXPECT_EQ(ids[row], "img#" + std::to_string(i));
      EXPECT_EQ(source[row], i % 3 + 7);
      if (i % 4 == 3) {
        EXPECT_TRUE(std::isnan(ages[row]));
      } else {
        EXPECT_EQ(ages[row], 5.0f * i);
      }
      EXPECT_EQ(sex[row], i % 2 ? "female" : "male");
      const auto expected = pixels_of(i, shard.shape());
      ASSERT_TRUE(std::equal(expected.begin(), expected.end(), images.begin() + row * shard.shape().bytes()))
          << "image " << i;
    }
  }
  EXPECT_EQ(i, 23);
}

TEST(ShardFormat, ReadsASliceOfRows) {
  TempDir tmp;
  write_set(tmp.path(), 10, 100);
  ShardReader shard(tmp / shard_file_name(0));
  std::vector<uint8_t> two(2 * shard.shape().bytes());
  shard.read_images(4, 2, two.data());
  const auto expected = pixels_of(5, shard.shape());
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), two.begin() + shard.shape().bytes()));
  EXPECT_THROW(shard.read_images(9, 2, two.data()), Error);
}

TEST(ShardFormat, SameAppendsGiveIdenticalBytes) {
  TempDir a, b;
  const Manifest ma = write_set(a.path(), 25, 10);
  const Manifest mb = write_set(b.path(), 25, 10);
  for (std::size_t s = 0; s < ma.shards.size(); ++s) {
    EXPECT_EQ(ma.shards[s].checksum, mb.shards[s].checksum);
    EXPECT_EQ(testing::read_bytes(a / ma.shards[s].file), testing::read_bytes(b / mb.shards[s].file));
  }
}

TEST(DatasetCheck, AValidSetHasNoProblems) {
  TempDir tmp;
  write_set(tmp.path(), 23, 10);
  EXPECT_TRUE(check_dataset(tmp.path()).empty());
}

TEST(DatasetCheck, AFlippedByteIsAChecksumProblemNamingTheShard) {
  TempDir tmp;
  const Manifest m = write_set(tmp.path(), 23, 10);
  const fs::path file = tmp / m.shards[1].file;
  auto bytes = testing::read_bytes(file);
  bytes[bytes.size() / 2] ^= 0xFF;
  testing::write_bytes(file, bytes);
  const auto problems = check_dataset(tmp.path());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("shard-00001.h5: checksum"), std::string::npos) << problems[0];
}

TEST(DatasetCheck, MissingOrTruncatedShardsAreReported) {
  TempDir tmp;
  const Manifest m = write_set(tmp.path(), 23, 10);
  fs::remove(tmp / m.shards[2].file);
  fs::resize_file(tmp / m.shards[0].file, 100);
  const auto problems = check_dataset(tmp.path());
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("shard-00000.h5: size is 100 bytes"), std::string::npos) << problems[0];
  EXPECT_NE(problems[1].find("shard-00002.h5: is missing"), std::string::npos) << problems[1];
}

using shardgan::testing::error_of;

// A shard that is not a regular file is named for what it is, before anything opens it (a FIFO would block the
// checksum or HDF5): "is missing" only when nothing is there.
TEST(DatasetCheck, ShardsThatAreNoRegularFilesAreNamedForWhatTheyAre) {
  TempDir tmp;
  const Manifest m = write_set(tmp.path(), 23, 10);
  const fs::path shard = tmp / m.shards[1].file;
  const auto problem_with = [&](const std::function<void()>& make) {
    fs::remove_all(shard);
    make();
    const auto problems = check_dataset(tmp.path());
    return problems.empty() ? std::string() : problems.front();
  };
  EXPECT_EQ(problem_with([&] { fs::create_directory(shard); }),
            "shard-00001.h5: is a directory (a regular file is needed)");
  EXPECT_EQ(problem_with([&] { fs::create_symlink("/dev/null", shard); }),
            "shard-00001.h5: is a character device (a regular file is needed)");
  EXPECT_EQ(problem_with([&] { fs::create_symlink(tmp / "nowhere.h5", shard); }),
            "shard-00001.h5: is a dangling symbolic link (a regular file is needed)");
  EXPECT_EQ(problem_with([&] { ASSERT_EQ(::mkfifo(shard.c_str(), 0600), 0); }),
            "shard-00001.h5: is a FIFO (a regular file is needed)");
  EXPECT_EQ(problem_with([] {}), "shard-00001.h5: is missing");
  // The reader on its own checks too, before HDF5 opens the path.
  ASSERT_EQ(::mkfifo((tmp / "fifo.h5").c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { ShardReader r(tmp / "fifo.h5"); }).find("fifo.h5: is a FIFO (a regular file is needed)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ShardReader r(tmp.path()); }).find(": is a directory"), std::string::npos);
  EXPECT_NE(error_of([&] { ShardReader r(tmp / "absent.h5"); }).find("absent.h5: is missing"), std::string::npos);
  // ... and so does a whole data set opened for training.
  EXPECT_NE(error_of([&] { ShardDataset d(tmp.path(), {}); }).find("shard-00001.h5: is missing"), std::string::npos);
}

// manifest.json and its folder are checked for what they are before anything is read, and the read is bounded.
TEST(Manifest, SpecialFilesAndOversizedManifestsAreRefusedAtOnce) {
  TempDir tmp;
  const fs::path set = tmp / "set";
  write_set(set, 3, 10);
  const fs::path manifest = set / kManifestName;
  fs::remove(manifest);
  ASSERT_EQ(::mkfifo(manifest.c_str(), 0600), 0);  // read with a blocking open, this would wait for a writer forever
  EXPECT_NE(error_of([&] { Manifest::load(set); }).find("manifest.json: is a FIFO (a regular file is needed)"),
            std::string::npos);
  EXPECT_NE(check_dataset(set).front().find("manifest.json: is a FIFO"), std::string::npos);
  fs::remove(manifest);
  fs::create_symlink("/dev/zero", manifest);  // endless: read whole, it would grow until killed
  EXPECT_NE(error_of([&] { Manifest::load(set); }).find("manifest.json: is a character device"), std::string::npos);
  fs::remove(manifest);
  fs::create_directory(manifest);
  EXPECT_NE(error_of([&] { Manifest::load(set); }).find("manifest.json: is a directory"), std::string::npos);
  fs::remove(manifest);
  EXPECT_NE(error_of([&] { Manifest::load(set); }).find("manifest.json: is missing"), std::string::npos);
  testing::write_text(manifest, "{}");
  fs::resize_file(manifest, kMaxManifestBytes + 1);  // sparse: nothing is held beyond the limit
  EXPECT_NE(error_of([&] { Manifest::load(set); }).find("manifest.json: is over the 64 MiB limit of a manifest"),
            std::string::npos);
  // The folder itself.
  ASSERT_EQ(::mkfifo((tmp / "fifo").c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { Manifest::load(tmp / "fifo"); }).find("fifo: is a FIFO (a directory is needed)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ShardDataset d(tmp / "fifo", {}); }).find("fifo: is a FIFO (a directory is needed)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { Manifest::load(tmp / "absent"); }).find("absent: not a packed data set folder (missing)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ShardDataset d(tmp / "absent", {}); }).find("absent: data folder does not exist"),
            std::string::npos);
}

// What a manifest holds is quoted short in a message: a megabyte shard name or JSON token is not echoed whole.
TEST(Manifest, InputTextInMessagesIsQuotedShort) {
  TempDir tmp;
  write_set(tmp.path(), 3, 10);
  auto j = nlohmann::json::parse(std::ifstream(tmp / kManifestName));
  j["shards"][0]["file"] = std::string(1 << 20, 'x');
  std::ofstream(tmp / kManifestName) << j.dump();
  std::string message = error_of([&] { Manifest::load(tmp.path()); });
  EXPECT_NE(message.find("is not shard-00000.h5"), std::string::npos) << message.substr(0, 500);
  EXPECT_LT(message.size(), 600u);
  std::ofstream(tmp / kManifestName) << "{\"format\": " << std::string(1 << 20, 'y') << "}";
  message = error_of([&] { Manifest::load(tmp.path()); });
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message.substr(0, 500);
  EXPECT_LT(message.size(), 600u);
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(DatasetCheck, ManifestCountsMustMatchTheShards) {
  TempDir tmp;
  write_set(tmp.path(), 23, 10);
  auto j = nlohmann::json::parse(std::ifstream(tmp / kManifestName));
  j["shards"][0]["count"] = 9;
  j["class_counts"][0] = 100;
  std::ofstream(tmp / kManifestName) << j.dump();
  const auto problems = check_dataset(tmp.path(), CheckOptions{false, true});
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].find("total_count 23 is not the sum of the shards' counts (22)"), std::string::npos)
      << problems[0];
}

// A hostile manifest: shard names outside the packer's own, counts that do not add up, shapes no image has,
// numbers JSON cannot hold — one Error naming the key, before any shard is opened.
TEST(Manifest, OnlyThePackersShardNamesAndConsistentCountsAreAccepted) {
  TempDir tmp;
  write_set(tmp.path(), 3, 10);
  const auto original = nlohmann::json::parse(std::ifstream(tmp / kManifestName));
  auto refused = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& needle) {
    auto j = original;
    edit(j);
    std::ofstream(tmp / kManifestName) << j.dump();
    try {
      Manifest::load(tmp.path());
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  refused([](auto& j) { j["shards"][0]["file"] = "../../etc/passwd"; }, "is not shard-00000.h5");
  refused([](auto& j) { j["shards"][0]["file"] = "/tmp/x.h5"; }, "is not shard-00000.h5");
  refused([](auto& j) { j["shards"][0]["count"] = -1; }, "count -1 is out of range");
  refused([](auto& j) { j["image_shape"] = {0, 5, 3}; }, "is not an image shape");
  refused([](auto& j) { j["image_shape"] = {4, 5, 2}; }, "is not an image shape");
  refused([](auto& j) { j["class_counts"] = {1, 2}; }, "2 class_counts for 3 class_names");
  refused([](auto& j) { j["shards"] = 7; }, "key 'shards' must be a list");
  std::ofstream(tmp / kManifestName) << "{\"format\": 1e999}";
  EXPECT_THROW(Manifest::load(tmp.path()), Error);  // a number JSON cannot hold: an Error, not another exception
  std::ofstream(tmp / kManifestName) << std::string(200000, '[');
  EXPECT_THROW(Manifest::load(tmp.path()), Error);  // nesting that would overflow the stack: refused before parsing
}

TEST(Manifest, MissingKeysAndWrongTypesNameTheKey) {
  TempDir tmp;
  write_set(tmp.path(), 3, 10);
  auto j = nlohmann::json::parse(std::ifstream(tmp / kManifestName));
  j.erase("class_names");
  std::ofstream(tmp / kManifestName) << j.dump();
  try {
    Manifest::load(tmp.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("key 'class_names' is missing"), std::string::npos) << e.what();
  }
  j["class_names"] = 3;
  std::ofstream(tmp / kManifestName) << j.dump();
  try {
    Manifest::load(tmp.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("key 'class_names' has the wrong type"), std::string::npos) << e.what();
  }
}

/// Rows of shards written by other tools with other /images layouts: read straight from the file (pread at the
/// offsets of the chunk index) where the bytes of a row lie in one run, through HDF5 otherwise; the same pixels
/// either way, and direct reads from several threads at once.
TEST(ShardFormat, RowsAreReadDirectlyOrThroughHdf5WhateverTheLayout) {
  TempDir tmp;
  write_set(tmp.path(), 50, 50);  // one shard, 4x5x3 images
  const fs::path original = tmp / "shard-00000.h5";
  EXPECT_TRUE(ShardReader(original).direct());
  struct Layout {
    std::string name, create;  // h5py keyword arguments of create_dataset
    bool direct;
  };
  const std::vector<Layout> layouts = {
      {"contiguous", "", true},
      {"fletcher32", "chunks=(8, 4, 5, 3), fletcher32=True", false},  // a filter: HDF5 reads it
      {"split_images", "chunks=(8, 2, 5, 3)", false},  // a chunk holds half images: a row is not one run of bytes
      {"edge_chunk", "chunks=(16, 4, 5, 3)", true},    // 50 rows: the last chunk is partly beyond the end
  };
  for (const auto& layout : layouts) {
    const fs::path copy = tmp / (layout.name + ".h5");
    fs::copy_file(original, copy);
    const auto result = testing::run(
        "/usr/bin/python3 -c \"import h5py, sys\n"
        "with h5py.File(sys.argv[1], 'r+') as f:\n"
        "    a = f['images'][()]\n"
        "    del f['images']\n"
        "    f.create_dataset('images', data=a" +
        (layout.create.empty() ? std::string() : ", " + layout.create) + ")\" " + copy.string() + " 2>&1");
    ASSERT_EQ(result.exit_code, 0) << layout.name << ": " << result.out;
    const ShardReader reader(copy);
    EXPECT_EQ(reader.direct(), layout.direct) << layout.name;
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    const int readers = reader.direct() ? 3 : 1;  // through HDF5, ShardDataset makes its callers take turns
    for (int t = 0; t < readers; ++t)
      threads.emplace_back([&, t] {
        for (int64_t begin = t; begin < 50; begin += readers == 1 ? 1 : 7) {
          const int64_t n = std::min<int64_t>(begin % 9 + 1, 50 - begin);  // runs across chunk borders too
          std::vector<uint8_t> out(static_cast<std::size_t>(n) * reader.shape().bytes());
          reader.read_images(begin, n, out.data());
          for (int64_t i = 0; i < n; ++i) {
            const auto expected = pixels_of(static_cast<int>(begin + i), reader.shape());
            if (!std::equal(expected.begin(), expected.end(), out.begin() + i * expected.size())) ++wrong;
          }
        }
      });
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(wrong.load(), 0) << layout.name;
  }
}

}  // namespace
}  // namespace shardgan::data
