#include "comm/watchdog.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace shardgan::comm {
namespace {
using namespace std::chrono_literals;

/// The fast watchdog of the tests that must not end the process: 100 ms timeout, a look every 10 ms.
constexpr double kShortTimeoutS = 0.1;
constexpr auto kPoll = 10ms;

/// Idles (no wait open) until the watchdog has looked at least `looks` more times, all of them after this call, and
/// at least `at_least` has passed; exits with code 3 when it stops looking (a watchdog that never looks would pass
/// these tests for nothing).
void idle_while_watched(const Watchdog& w, int looks, std::chrono::milliseconds at_least) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t before = w.checks();  // a look in progress now may have started before the idle: one more
  while (w.checks() < before + looks + 1 || std::chrono::steady_clock::now() - start < at_least) {
    if (std::chrono::steady_clock::now() - start > 10s) {
      std::fprintf(stderr, "the watchdog looked %lld times in 10 s\n", static_cast<long long>(w.checks() - before));
      std::exit(3);
    }
    std::this_thread::sleep_for(1ms);
  }
}

// In a child process: the watchdog ending it (exit code 70, its message on stderr) fails the test.
TEST(WatchdogDeathTest, CollectivesThatEndInTimeAreFine) {
  EXPECT_EXIT(
      {
        {
          Watchdog w(3, kShortTimeoutS, kPoll);
          for (int i = 0; i < 3; ++i) {
            w.set_step(i);
            w.begin("all-reduce");
            w.end();
          }
          // Idle time between collectives does not count: 3 timeouts and 5 looks with no wait open.
          idle_while_watched(w, 5, 300ms);
          // Nor does it count towards the next collective's wait.
          w.begin("broadcast");
          w.end();
          idle_while_watched(w, 2, 0ms);
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(WatchdogDeathTest, AHungCollectiveEndsTheProcessNamingRankStepOperationAndBucket) {
  EXPECT_EXIT(
      {
        Watchdog w(3, 1.0, kPoll);
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
        Watchdog w(0, 1.0, kPoll);
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

TEST(WatchdogDeathTest, AScopeEndsItsWaitAlsoWhenItThrows) {
  EXPECT_EXIT(
      {
        {
          Watchdog w(0, kShortTimeoutS, kPoll);
          try {
            Watchdog::Scope scope(w, "all-reduce");
            throw std::runtime_error("collective failed");
          } catch (const std::runtime_error&) {
          }
          idle_while_watched(w, 5, 300ms);  // 3 timeouts: the ended wait must not be counted
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace shardgan::comm
