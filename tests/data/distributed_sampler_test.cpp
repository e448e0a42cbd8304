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

// Class-balanced: 70 / 20 / 10 images of three classes (and an empty fourth), each present class a third of every
// epoch, every image of a class used before any repeats, the same sequence for every world size, different per epoch.
TEST(DistributedSampler, ClassBalancedGivesEveryPresentClassEqualTurns) {
  std::vector<int64_t> labels;
  for (int i = 0; i < 100; ++i) labels.push_back(i < 70 ? 0 : i < 90 ? 1 : 2);
  std::rotate(labels.begin(), labels.begin() + 37, labels.end());  // classes interleaved in the file
  DistributedSampler one(100, 12, 1, 0, 9), three(100, 4, 3, 1, 9);
  one.balance_classes(labels, 4);
  three.balance_classes(labels, 4);
  const auto p = one.permutation(2);
  ASSERT_EQ(p.size(), 100u);
  std::vector<int> per_class(4, 0);
  for (int64_t i : p) ++per_class[static_cast<std::size_t>(labels[static_cast<std::size_t>(i)])];
  EXPECT_EQ(per_class, (std::vector<int>{34, 33, 33, 0}));
  // Class 0 (70 images, 34 turns): no image twice; class 2 (10 images, 33 turns): each 3 or 4 times.
  std::vector<int> seen(100, 0);
  for (int64_t i : p) ++seen[static_cast<std::size_t>(i)];
  for (int i = 0; i < 100; ++i) {
    const int64_t c = labels[static_cast<std::size_t>(i)];
    const int times = seen[static_cast<std::size_t>(i)];
    EXPECT_TRUE(c != 0 || times <= 1) << i;
    EXPECT_TRUE(c != 2 || times == 3 || times == 4) << i;
  }
  for (int64_t step = 0; step < 3 * one.steps_per_epoch(); ++step)
    EXPECT_EQ(one.global_batch_indices(step), three.global_batch_indices(step)) << step;
  EXPECT_NE(p, one.permutation(3));
  EXPECT_THROW(one.balance_classes({0, 1}, 2), Error);  // not one label per image
  std::vector<int64_t> bad(100, 0);
  bad[5] = 7;
  EXPECT_THROW(one.balance_classes(bad, 4), Error);
}

}  // namespace
}  // namespace shardgan::data
