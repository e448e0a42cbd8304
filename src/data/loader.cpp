#include "data/loader.hpp"

#include "util/error.hpp"

namespace shardgan::data {

Loader::Loader(const ShardDataset& dataset, DistributedSampler sampler, int64_t first_step, int64_t end_step, int depth)
    : dataset_(dataset),
      sampler_(std::move(sampler)),
      next_step_(first_step),
      end_step_(end_step),
      depth_(static_cast<std::size_t>(std::max(1, depth))),
      thread_([this] { run(); }) {}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void Loader::run() {
  try {
    for (int64_t step = next_step_; step < end_step_; ++step) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stop_ || ready_.size() < depth_; });
        if (stop_) return;
      }
      Batch batch;
      batch.step = step;
      const auto indices = sampler_.rank_indices(step);
      batch.images.resize(indices.size() * dataset_.shape().bytes());
      dataset_.read(indices, batch.images.data());
      batch.labels.reserve(indices.size());
      for (int64_t i : indices) batch.labels.push_back(dataset_.labels()[static_cast<std::size_t>(i)]);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.push_back(std::move(batch));
      }
      changed_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    changed_.notify_all();
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
    changed_.notify_all();
  }
}

Batch Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || error_ || done_; });
  if (ready_.empty()) {
    if (error_) std::rethrow_exception(error_);
    fail("Loader: next() after the last step (", end_step_, ")");
  }
  Batch batch = std::move(ready_.front());
  ready_.pop_front();
  changed_.notify_all();
  return batch;
}

}  // namespace shardgan::data
