#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
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

/// Prefetches this rank's batches for steps [first_step, end_step) on `threads` background threads, at most `depth`
/// steps ahead of the consumer (depth is raised to `threads` if smaller). Thread t reads steps first_step + t,
/// first_step + t + threads, ...; `next` hands them out in step order. Several threads keep several reads in flight,
/// which is what a cold disk or a parallel file system needs; from the page cache one is plenty.
/// An error on a thread is rethrown by `next`; so is a call past `end_step` (an Error, not a wait forever).
class Loader {
 public:
  Loader(const ShardDataset& dataset, const DistributedSampler& sampler, int64_t first_step, int64_t end_step,
         int depth = 3, int threads = 1);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;
  /// The next step's batch (blocks until it is ready).
  Batch next();

 private:
  void run(DistributedSampler sampler, int64_t first);

  const ShardDataset& dataset_;
  int64_t next_step_;  ///< the step `next` hands out next
  int64_t end_step_;
  int64_t depth_;
  int64_t stride_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace shardgan::data
