#include "comm/watchdog.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace shardgan::comm {
namespace {

TEST(Watchdog, CollectivesThatEndInTimeAreFine) {
  Watchdog w(3, 1.0);
  for (int i = 0; i < 3; ++i) {
    w.set_step(i);
    w.begin("all-reduce");
    w.end();
  }
  // Idle time between collectives does not count.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
}

TEST(WatchdogDeathTest, AHungCollectiveEndsTheProcessNamingRankStepOperationAndBucket) {
  EXPECT_EXIT(
      {
        Watchdog w(3, 1.0);
        w.set_step(41);
        w.next_bucket();
        w.begin("gradient all-reduce", w.next_bucket());
        std::this_thread::sleep_for(std::chrono::seconds(10));
      },
      ::testing::ExitedWithCode(kExitCollectiveTimeout),
      "rank 3: gradient all-reduce \\(bucket 1 of the step\\) at step 41 did not complete within 1 s");
}

TEST(WatchdogDeathTest, ATimeoutPrintsThenRunsTheCommunicatorsAbortActionAndEnds) {
  EXPECT_EXIT(
      {
        Watchdog w(0, 1.0);
        w.set_timeout_action([] {
          std::fprintf(stderr, "abort action ran\n");
          std::this_thread::sleep_for(std::chrono::hours(1));  // an abort that blocks must not keep the process
        });
        Watchdog::Scope scope(w, "device work");
        std::this_thread::sleep_for(std::chrono::seconds(10));
      },
      ::testing::ExitedWithCode(kExitCollectiveTimeout),
      "rank 0: device work before the first step did not complete within 1 s.*\n.*abort action ran");
}

TEST(Watchdog, AScopeEndsItsWaitAlsoWhenItThrows) {
  Watchdog w(0, 1.0);
  try {
    Watchdog::Scope scope(w, "all-reduce");
    throw std::runtime_error("collective failed");
  } catch (const std::runtime_error&) {
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // the watchdog must not count the ended wait
}

}  // namespace
}  // namespace shardgan::comm
