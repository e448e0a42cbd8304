#include "data/loader.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace shardgan::data {

Loader::Loader(const ShardDataset& dataset, const DistributedSampler& sampler, int64_t first_step, int64_t end_step,
               int depth, int threads)
    : dataset_(dataset),
      next_step_(first_step),
      end_step_(end_step),
      depth_(std::max<int64_t>({1, depth, threads})),
      stride_(std::max(1, threads)) {
  // Each thread gets its own sampler: it caches the current epoch's permutation and is not thread-safe.
  for (int64_t t = 0; t < stride_; ++t)
    threads_.emplace_back([this, sampler, first = first_step + t] { run(sampler, first); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void Loader::run(DistributedSampler sampler, int64_t first) {
  try {
    for (int64_t step = first; step < end_step_; step += stride_) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stop_ || error_ || step < next_step_ + depth_; });
        if (stop_ || error_) return;
      }
      Batch batch;
      batch.step = step;
      const auto indices = sampler.rank_indices(step);
      batch.images.resize(indices.size() * dataset_.shape().bytes());
      dataset_.read(indices, batch.images.data());
      batch.labels.reserve(indices.size());
      for (int64_t i : indices) batch.labels.push_back(dataset_.labels()[static_cast<std::size_t>(i)]);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.emplace(step, std::move(batch));
      }
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::current_exception();
    changed_.notify_all();
  }
}

Batch Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_step_ >= end_step_) fail("Loader: next() after the last step (", end_step_, ")");
  changed_.wait(lock, [&] { return ready_.count(next_step_) > 0 || error_; });
  const auto it = ready_.find(next_step_);
  if (it == ready_.end()) std::rethrow_exception(error_);
  Batch batch = std::move(it->second);
  ready_.erase(it);
  ++next_step_;
  changed_.notify_all();
  return batch;
}

}  // namespace shardgan::data
