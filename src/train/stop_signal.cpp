#include "train/stop_signal.hpp"

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>

namespace shardgan::train {
namespace {

std::atomic<int> g_signal{0};
std::atomic<bool> g_in_loop{false};
std::atomic<int64_t> g_first_ns{0};

/// A signal can arrive twice for one request (`scancel --full` signals the ranks and the launcher, which forwards
/// it): a repeat within this window is the same request, not an insistence.
constexpr int64_t kSameRequestNs = 3'000'000'000;

int64_t monotonic_ns() {  // clock_gettime is async-signal-safe
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

/// Before the training loop nothing is worth a checkpoint and a rank may be blocked in a start-up collective that
/// only the launcher can end, so a signal ends the process at once; in the loop the first one is recorded (the ranks
/// agree at the next step and checkpoint), and another one more than 3 s later ends the process at once.
extern "C" void on_signal(int signal) {
  const int64_t now = monotonic_ns();
  if (g_in_loop.load() && g_signal.load() != 0 && now - g_first_ns.load() < kSameRequestNs) return;
  if (!g_in_loop.load() || g_signal.load() != 0) {
    static const char kMessage[] =
        "shardgan-train: stopped by a signal before training started (or by a second one): exiting now, exit code 75 "
        "(resume with --resume auto)\n";
    const ssize_t ignored = write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
    (void)ignored;
    _exit(kExitStoppedBySignal);
  }
  g_first_ns.store(now);
  g_signal.store(signal);
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal : {SIGUSR1, SIGTERM, SIGINT}) sigaction(signal, &action, nullptr);
}

void enter_training_loop() {
  g_in_loop.store(true);
}

int stop_requested() {
  return g_signal.load();
}

}  // namespace shardgan::train
