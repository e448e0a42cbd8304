#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "data/distributed_sampler.hpp"
#include "data/shard_dataset.hpp"

namespace shardgan::data {

/// One rank's images and labels for one step, as stored (uint8 NHWC).
struct Batch {
  int64_t step = 0;
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
};

/// Prefetches this rank's batches for steps [first_step, end_step) on a background thread, `depth` ahead.
/// An error on the thread is rethrown by `next`; so is a call past `end_step` (an Error, not a wait forever).
class Loader {
 public:
  Loader(const ShardDataset& dataset, DistributedSampler sampler, int64_t first_step, int64_t end_step, int depth = 3);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;
  /// The next step's batch (blocks until it is ready).
  Batch next();

 private:
  void run();

  const ShardDataset& dataset_;
  DistributedSampler sampler_;
  int64_t next_step_;
  int64_t end_step_;
  std::size_t depth_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  bool done_ = false;  ///< every step's batch has been produced
  std::thread thread_;
};

}  // namespace shardgan::data
