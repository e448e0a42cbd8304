#include "comm/watchdog.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace shardgan::comm {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Times the wait of an asynchronous all-reduce (the part that can hang).
class WatchedRequest final : public Request {
 public:
  WatchedRequest(std::unique_ptr<Request> inner, Watchdog& watchdog)
      : inner_(std::move(inner)), watchdog_(watchdog), bucket_(watchdog.next_bucket()) {}
  bool test() override { return inner_->test(); }
  void wait() override {
    Watchdog::Scope scope(watchdog_, "gradient all-reduce", bucket_);
    inner_->wait();
  }

 private:
  std::unique_ptr<Request> inner_;
  Watchdog& watchdog_;
  int bucket_;
};

/// Waits for a fence on the host: polls it (a CUDA event query for NCCL) under the watchdog, sleeping a little
/// longer each time up to 1 ms, so that a hung device is noticed without a blocking call nobody can time.
class WatchedFence final : public Request {
 public:
  WatchedFence(std::unique_ptr<Request> inner, Watchdog& watchdog) : inner_(std::move(inner)), watchdog_(watchdog) {}
  bool test() override { return inner_->test(); }
  void wait() override {
    if (!inner_->test()) {
      Watchdog::Scope scope(watchdog_, "device work (computation and gradient all-reduces)");
      for (int sleep_us = 10; !inner_->test(); sleep_us = std::min(2 * sleep_us, 1000))
        std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    }
    inner_->wait();  // also when it was done at once: reports a device that failed
  }

 private:
  std::unique_ptr<Request> inner_;
  Watchdog& watchdog_;
};

class WatchedCommunicator final : public Communicator {
 public:
  WatchedCommunicator(std::unique_ptr<Communicator> inner, Watchdog& watchdog)
      : inner_(std::move(inner)), watchdog_(watchdog) {
    Communicator* c = inner_.get();
    watchdog_.set_timeout_action([c] { c->abort_collectives(); });
  }
  ~WatchedCommunicator() override { watchdog_.set_timeout_action(nullptr); }
  const char* backend() const override { return inner_->backend(); }
  bool device_memory() const override { return inner_->device_memory(); }
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  void allreduce(void* data, std::size_t count, DType type, ReduceOp op) override {
    Scope s(watchdog_, "all-reduce");
    inner_->allreduce(data, count, type, op);
  }
  std::unique_ptr<Request> allreduce_async(void* data, std::size_t count, DType type, ReduceOp op) override {
    return std::make_unique<WatchedRequest>(inner_->allreduce_async(data, count, type, op), watchdog_);
  }
  void broadcast(void* data, std::size_t count, DType type, int root) override {
    Scope s(watchdog_, "broadcast");
    inner_->broadcast(data, count, type, root);
  }
  void allgather(const void* send, void* recv, std::size_t count, DType type) override {
    Scope s(watchdog_, "all-gather");
    inner_->allgather(send, recv, count, type);
  }
  void barrier() override {
    Scope s(watchdog_, "barrier");
    inner_->barrier();
  }
  std::unique_ptr<Request> fence() override { return std::make_unique<WatchedFence>(inner_->fence(), watchdog_); }
  void abort_collectives() override { inner_->abort_collectives(); }
  [[noreturn]] void abort(int code) override {
    inner_->abort(code);
    std::_Exit(code);  // not reached: the inner abort does not return
  }

 private:
  using Scope = Watchdog::Scope;
  std::unique_ptr<Communicator> inner_;
  Watchdog& watchdog_;
};

}  // namespace

Watchdog::Watchdog(int rank, double timeout_s, std::chrono::milliseconds poll)
    : rank_(rank), timeout_s_(timeout_s), poll_(poll), thread_([this] { run(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

void Watchdog::begin(const char* what, int bucket) {
  started_ns_.store(now_ns());
  bucket_.store(bucket);
  what_.store(what);
}

void Watchdog::end() {
  what_.store(nullptr);
}

void Watchdog::set_timeout_action(std::function<void()> action) {
  std::lock_guard<std::mutex> lock(mutex_);
  timeout_action_ = std::move(action);
}

void Watchdog::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_cv_.wait_for(lock, poll_, [&] { return stop_; })) {
    const char* what = what_.load();
    if (what == nullptr || static_cast<double>(now_ns() - started_ns_.load()) * 1e-9 < timeout_s_) {
      checks_.fetch_add(1);
      continue;
    }
    const std::function<void()> action = timeout_action_;
    lock.unlock();
    const int bucket = bucket_.load();
    char bucket_text[48] = "";
    if (bucket >= 0) std::snprintf(bucket_text, sizeof(bucket_text), " (bucket %d of the step)", bucket);
    const long long step = step_.load();
    char when[48] = "before the first step";
    if (step >= 0) std::snprintf(when, sizeof(when), "at step %lld", step);
    std::fprintf(stderr,
                 "shardgan-train: error: rank %d: %s%s %s did not complete within %g s (comm.timeout_s): "
                 "another rank died or hangs, ranks issued different collectives, or a file could not be read in "
                 "time; ending the job\n",
                 rank_, what, bucket_text, when, timeout_s_);
    std::fflush(stderr);
    // The backend's abort (ncclCommAbort) may itself block while peers are alive: it gets a few seconds on a thread
    // of its own, then the process ends whatever it did (process exit also tears down the device's work).
    if (action) {
      std::thread([action] { action(); }).detach();
      std::this_thread::sleep_for(std::chrono::seconds(3));
    }
    std::_Exit(kExitCollectiveTimeout);
  }
}

std::unique_ptr<Communicator> watched(std::unique_ptr<Communicator> inner, Watchdog& watchdog) {
  return std::make_unique<WatchedCommunicator>(std::move(inner), watchdog);
}

}  // namespace shardgan::comm
