#include "train/stop_signal.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace shardgan::train {
namespace {

std::atomic<int> g_signal{0};
std::atomic<bool> g_in_loop{false};

/// Before the training loop nothing is worth a checkpoint and a rank may be blocked in a start-up collective that
/// only the launcher can end, so a signal ends the process at once; in the loop the first one is recorded (the ranks
/// agree at the next step and checkpoint), and a second one ends the process at once.
extern "C" void on_signal(int signal) {
  if (!g_in_loop.load() || g_signal.load() != 0) {
    static const char kMessage[] =
        "shardgan-train: stopped by a signal before training started (or by a second one): exiting now, exit code 75 "
        "(resume with --resume auto)\n";
    const ssize_t ignored = write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
    (void)ignored;
    _exit(kExitStoppedBySignal);
  }
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
