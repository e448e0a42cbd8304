#include "train/stop_signal.hpp"

#include <atomic>
#include <csignal>

namespace shardgan::train {
namespace {

std::atomic<int> g_signal{0};

extern "C" void record_signal(int signal) {
  g_signal.store(signal);
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = record_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int stop_requested() {
  return g_signal.load();
}

}  // namespace shardgan::train
