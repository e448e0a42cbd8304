#include "data/loader.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "fixtures.hpp"
#include "util/error.hpp"

namespace shardgan::data {
namespace {
using testing::TempDir;

TEST(Loader, ServesEachStepsIndicesInOrderFromMemoryOrStream) {
  TempDir tmp;
  testing::write_set(tmp.path(), 23, 10);
  for (Cache cache : {Cache::kMemory, Cache::kStream})
    for (int threads : {1, 3}) {
      ShardDataset::Options options;
      options.cache = cache;
      const ShardDataset dataset(tmp.path(), options);
      EXPECT_EQ(dataset.in_memory(), cache == Cache::kMemory);
      const DistributedSampler sampler(dataset.size(), 3, 2, 1, 5);  // rank 1 of 2, batch 3: 3 steps per epoch
      Loader loader(dataset, sampler, 2, 7, /*depth=*/2, threads);   // crosses two epoch boundaries
      for (int64_t step = 2; step < 7; ++step) {
        const Batch b = loader.next();
        EXPECT_EQ(b.step, step);
        const auto indices = sampler.rank_indices(step);
        ASSERT_EQ(b.labels.size(), indices.size());
        ASSERT_EQ(b.images.size(), indices.size() * dataset.shape().bytes());
        for (std::size_t k = 0; k < indices.size(); ++k) {
          const int i = static_cast<int>(indices[k]);
          EXPECT_EQ(b.labels[k], i % 3);
          const auto expected = testing::pixels_of(i, dataset.shape());
          EXPECT_TRUE(std::equal(expected.begin(), expected.end(), b.images.begin() + k * expected.size())) << i;
        }
      }
      EXPECT_THROW(loader.next(), Error);  // past the last step: an error, not a hang
    }
}

TEST(Loader, AReadErrorOnTheThreadIsRethrownByNext) {
  TempDir tmp;
  testing::write_set(tmp.path(), 23, 10);
  ShardDataset::Options options;
  options.cache = Cache::kStream;
  options.verify = false;
  const ShardDataset dataset(tmp.path(), options);
  std::filesystem::resize_file(tmp / dataset.manifest().shards[1].file, 100);  // truncated after opening
  const DistributedSampler sampler(dataset.size(), 20, 1, 0, 5);               // every step reads every shard
  Loader loader(dataset, sampler, 0, 3);
  EXPECT_THROW(
      {
        for (int i = 0; i < 3; ++i) loader.next();
      },
      std::exception);
}

/// Bytes this process has read through read(2)/pread(2) so far.
uint64_t bytes_read() {
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value)
    if (key == "rchar:") return value;
  return 0;
}

TEST(Loader, StreamingReadsOnlyTheRowsAskedForNotWholeChunks) {
  TempDir tmp;
  testing::write_set(tmp.path(), 40000, 40000);  // one shard of 60-byte images: 10 chunks of 4369 rows (256 KiB)
  ShardDataset::Options options;
  options.cache = Cache::kStream;
  options.verify = false;
  const ShardDataset dataset(tmp.path(), options);
  std::vector<uint8_t> out(dataset.shape().bytes());
  dataset.read({0}, out.data());  // warms HDF5's metadata (the chunk index)
  const uint64_t before = bytes_read();
  for (int64_t i = 4500; i < 40000; i += 1800) {  // 20 scattered rows in 9 chunks, one read each
    dataset.read({i}, out.data());
    const auto expected = testing::pixels_of(static_cast<int>(i), dataset.shape());
    ASSERT_TRUE(std::equal(expected.begin(), expected.end(), out.begin())) << i;
  }
  // 20 x 60 bytes asked for. A chunk cache would read 9 whole chunks (2.3 MB); the shards' /images has none.
  EXPECT_LT(bytes_read() - before, 20u * 60u * 4u);
}

TEST(Loader, StopsCleanlyWhenDestroyedEarly) {
  TempDir tmp;
  testing::write_set(tmp.path(), 23, 10);
  const ShardDataset dataset(tmp.path(), {});
  const DistributedSampler sampler(dataset.size(), 2, 1, 0, 5);
  Loader loader(dataset, sampler, 0, 1000, 3);
  EXPECT_EQ(loader.next().step, 0);
}  // the destructor stops the thread while it waits for room

}  // namespace
}  // namespace shardgan::data
