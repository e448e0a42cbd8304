#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "comm/communicator.hpp"

namespace shardgan::comm {

/// Ends the job when a collective does not complete in time: a rank that died without MPI noticing, a hung NCCL
/// kernel, or ranks that issue different collectives. A background thread looks every `poll` (once a second); when
/// one wait has run longer than the timeout it runs the timeout action (the communicator's abort_collectives:
/// ncclCommAbort for NCCL), prints rank, step and operation on stderr and ends this process (exit code 70) —
/// mpirun/srun then take the other ranks down. Never a silent hang. What is timed is any wait between begin and end (a
/// Scope): blocking collectives, bucket waits, the host's poll of a device fence, and the communicator's creation.
class Watchdog {
 public:
  /// `poll`: how often the thread looks (a timeout is noticed up to one poll late); tests use a short one.
  Watchdog(int rank, double timeout_s, std::chrono::milliseconds poll = std::chrono::seconds(1));
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void set_step(int64_t step) {
    step_.store(step);
    bucket_counter_.store(0);
  }
  /// Marks the start and end of a collective named `what` (a string literal); `bucket` >= 0 numbers the gradient
  /// bucket all-reduces of the step in the order they were started.
  void begin(const char* what, int bucket = -1);
  void end();
  /// begin(what) … end() for the lifetime of a block, also when it throws.
  class Scope {
   public:
    Scope(Watchdog& w, const char* what, int bucket = -1) : w_(w) { w_.begin(what, bucket); }
    ~Scope() { w_.end(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Watchdog& w_;
  };
  /// What to do on the watchdog's thread before the process ends on a timeout (thread-safe, must not block).
  void set_timeout_action(std::function<void()> action);
  /// The number of the next asynchronous (bucket) all-reduce in this step.
  int next_bucket() { return bucket_counter_.fetch_add(1); }
  /// How many times the thread has looked and found nothing to end (no wait, or one still within the timeout).
  int64_t checks() const { return checks_.load(); }

 private:
  void run();

  int rank_;
  double timeout_s_;
  std::chrono::milliseconds poll_;
  std::atomic<int64_t> step_{-1};
  std::atomic<const char*> what_{nullptr};
  std::atomic<int> bucket_{-1};
  std::atomic<int> bucket_counter_{0};
  std::atomic<int64_t> started_ns_{0};
  std::atomic<int64_t> checks_{0};
  std::mutex mutex_;
  std::function<void()> timeout_action_;  ///< guarded by mutex_
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

/// Wraps a communicator so that every collective, bucket wait and host wait on a fence is timed by `watchdog` (which
/// must outlive it); a timeout makes the communicator abort its collectives before the process ends.
std::unique_ptr<Communicator> watched(std::unique_ptr<Communicator> inner, Watchdog& watchdog);

/// Exit code of a rank ended by the watchdog.
inline constexpr int kExitCollectiveTimeout = 70;

}  // namespace shardgan::comm
