#include "data/distributed_sampler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "util/error.hpp"

namespace shardgan::data {
namespace {

TEST(DistributedSampler, PermutationIsOnePermutationSameOnEveryRankAndChangesPerEpoch) {
  const DistributedSampler r0(103, 4, 3, 0, 42), r2(103, 4, 3, 2, 42);
  const auto p = r0.permutation(5);
  EXPECT_EQ(p, r2.permutation(5));
  auto sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 103; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_NE(p, r0.permutation(6));
  EXPECT_NE(p, DistributedSampler(103, 4, 3, 0, 43).permutation(5));
}

TEST(DistributedSampler, RanksTakeDisjointPartsCoveringTheGlobalBatch) {
  const int world = 3;
  const DistributedSampler any(100, 5, world, 0, 7);
  EXPECT_EQ(any.steps_per_epoch(), 6);  // 100 / 15, the partial last batch is dropped
  std::set<int64_t> epoch_seen;
  for (int64_t step = 0; step < any.steps_per_epoch(); ++step) {
    std::vector<int64_t> joined;
    for (int r = 0; r < world; ++r) {
      const auto part = DistributedSampler(100, 5, world, r, 7).rank_indices(step);
      EXPECT_EQ(part.size(), 5u);
      joined.insert(joined.end(), part.begin(), part.end());
    }
    EXPECT_EQ(joined, any.global_batch_indices(step));
    for (int64_t i : joined) EXPECT_TRUE(epoch_seen.insert(i).second) << "index " << i << " twice in an epoch";
  }
  EXPECT_EQ(epoch_seen.size(), 90u);
}

TEST(DistributedSampler, GlobalBatchesDoNotDependOnTheWorldSize) {
  // 1 rank x 12, 2 ranks x 6, 3 ranks x 4, 4 ranks x 3: the same images in every step, across epochs.
  const DistributedSampler one(50, 12, 1, 0, 3);
  for (int world : {2, 3, 4}) {
    const DistributedSampler many(50, 12 / world, world, 0, 3);
    for (int64_t step = 0; step < 3 * one.steps_per_epoch(); ++step)
      ASSERT_EQ(one.global_batch_indices(step), many.global_batch_indices(step)) << "world " << world;
  }
}

TEST(DistributedSampler, BatchLargerThanTheDataIsAClearError) {
  try {
    DistributedSampler(10, 8, 2, 0, 0);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("train.batch_size 8 x 2 rank(s) = 16 images per step exceeds the data set's 10"),
        std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace shardgan::data
