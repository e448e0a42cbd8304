// What is due after each step, without running anything.
#include "train/cadence.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace shardgan::train {
namespace {

config::Config cadences() {
  config::Config c;
  c.train.log_every = 3;
  c.output.sample_every_epochs = 2;
  c.output.sample_every_steps = 0;
  c.output.checkpoint_every_steps = 5;
  c.comm.check_every = 4;
  c.eval.every_epochs = 1;
  return c;
}

std::vector<int64_t> steps_where(const Cadence& cadence, int64_t total, bool Due::*what) {
  std::vector<int64_t> steps;
  for (int64_t done = 1; done <= total; ++done)
    if (cadence.after(done, /*stop=*/false).*what) steps.push_back(done);
  return steps;
}

TEST(Cadence, EachOutputAtItsStepsAndEverythingButEvalAtTheEnd) {
  // 4 steps per epoch, 14 steps (the last epoch is cut short by train.max_steps).
  const Cadence cadence(cadences(), 4, 14, /*evaluates=*/true);
  EXPECT_EQ(steps_where(cadence, 14, &Due::epoch_end), (std::vector<int64_t>{4, 8, 12}));
  EXPECT_EQ(steps_where(cadence, 14, &Due::log), (std::vector<int64_t>{3, 6, 9, 12, 14}));
  EXPECT_EQ(steps_where(cadence, 14, &Due::sample), (std::vector<int64_t>{8, 14}));  // every 2nd epoch, and the end
  EXPECT_EQ(steps_where(cadence, 14, &Due::checkpoint), (std::vector<int64_t>{5, 10, 14}));
  // The parameter check runs before every checkpoint too.
  EXPECT_EQ(steps_where(cadence, 14, &Due::check), (std::vector<int64_t>{4, 5, 8, 10, 12, 14}));
  EXPECT_EQ(steps_where(cadence, 14, &Due::eval), (std::vector<int64_t>{4, 8, 12, 14}));
}

TEST(Cadence, NoEvaluationWithoutAClassifier) {
  const Cadence cadence(cadences(), 4, 14, /*evaluates=*/false);
  EXPECT_TRUE(steps_where(cadence, 14, &Due::eval).empty());
}

TEST(Cadence, SampleEveryStepsAddsGridsBetweenEpochEnds) {
  config::Config c = cadences();
  c.output.sample_every_steps = 3;
  const Cadence cadence(c, 4, 12, false);
  EXPECT_EQ(steps_where(cadence, 12, &Due::sample), (std::vector<int64_t>{3, 6, 8, 9, 12}));
}

TEST(Cadence, AStopForcesACheckpointAndTheCheckBeforeIt) {
  const Cadence cadence(cadences(), 4, 14, false);
  const Due plain = cadence.after(7, /*stop=*/false);
  EXPECT_FALSE(plain.checkpoint);
  EXPECT_FALSE(plain.check);
  const Due stopped = cadence.after(7, /*stop=*/true);
  EXPECT_TRUE(stopped.checkpoint);
  EXPECT_TRUE(stopped.check);
  EXPECT_TRUE(stopped.any());
  EXPECT_TRUE(stopped.reads_buffers());
}

TEST(Cadence, EpochOfAStepIsTheEpochItBelongedTo) {
  const Cadence cadence(cadences(), 4, 14, false);
  EXPECT_EQ(cadence.epoch_of(1), 0);
  EXPECT_EQ(cadence.epoch_of(4), 0);
  EXPECT_EQ(cadence.epoch_of(5), 1);
}

}  // namespace
}  // namespace shardgan::train
