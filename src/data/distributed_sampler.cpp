#include "data/distributed_sampler.hpp"

#include <numeric>

#include "util/error.hpp"
#include "util/random.hpp"

namespace shardgan::data {

DistributedSampler::DistributedSampler(int64_t dataset_size, int64_t batch_per_rank, int world_size, int rank,
                                       uint64_t seed)
    : size_(dataset_size), batch_(batch_per_rank), world_(world_size), rank_(rank), seed_(seed) {
  if (batch_ <= 0 || world_ <= 0 || rank_ < 0 || rank_ >= world_) fail("sampler: invalid batch/world/rank");
  steps_per_epoch_ = size_ / global_batch();
  if (steps_per_epoch_ == 0)
    fail("train.batch_size ", batch_, " x ", world_, " rank(s) = ", global_batch(),
         " images per step exceeds the data set's ", size_, " images (each rank's share is ", size_ / world_,
         "); lower train.batch_size or use fewer ranks");
}

std::vector<int64_t> DistributedSampler::permutation(int64_t epoch) const {
  std::vector<int64_t> p(static_cast<std::size_t>(size_));
  std::iota(p.begin(), p.end(), int64_t{0});
  uint64_t state = rng::stream_seed(seed_, rng::Stream::kEpochPermutation, static_cast<uint64_t>(epoch));
  for (int64_t i = size_ - 1; i > 0; --i) {
    // Unbiased index in [0, i] by rejection.
    const uint64_t bound = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do r = rng::splitmix64(state);
    while (r >= limit);
    std::swap(p[static_cast<std::size_t>(i)], p[r % bound]);
  }
  return p;
}

std::vector<int64_t> DistributedSampler::global_batch_indices(int64_t step) const {
  const int64_t epoch = step / steps_per_epoch_;
  const int64_t slot = step % steps_per_epoch_;
  if (epoch != cached_epoch_) {
    cached_ = permutation(epoch);
    cached_epoch_ = epoch;
  }
  const auto begin = cached_.begin() + slot * global_batch();
  return std::vector<int64_t>(begin, begin + global_batch());
}

std::vector<int64_t> DistributedSampler::rank_indices(int64_t step) const {
  const auto all = global_batch_indices(step);
  const auto begin = all.begin() + rank_ * batch_;
  return std::vector<int64_t>(begin, begin + batch_);
}

}  // namespace shardgan::data
