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

namespace {

/// Fisher-Yates with unbiased indices (rejection) from splitmix64 seeded by `state`.
void shuffle(std::vector<int64_t>& p, uint64_t state) {
  for (std::size_t i = p.size(); i-- > 1;) {
    const uint64_t bound = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do r = rng::splitmix64(state);
    while (r >= limit);
    std::swap(p[i], p[r % bound]);
  }
}

}  // namespace

void DistributedSampler::balance_classes(std::vector<int64_t> labels, int64_t num_classes) {
  if (static_cast<int64_t>(labels.size()) != size_)
    fail("class-balanced sampling: ", labels.size(), " labels for ", size_, " images");
  std::vector<std::vector<int64_t>> members(static_cast<std::size_t>(num_classes));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes)
      fail("class-balanced sampling: image ", i, " has label ", labels[i], " outside 0..", num_classes - 1);
    members[static_cast<std::size_t>(labels[i])].push_back(static_cast<int64_t>(i));
  }
  class_members_.clear();
  for (auto& m : members)
    if (!m.empty()) class_members_.push_back(std::move(m));
  cached_epoch_ = -1;
}

std::vector<int64_t> DistributedSampler::permutation(int64_t epoch) const {
  const uint64_t seed = rng::stream_seed(seed_, rng::Stream::kEpochPermutation, static_cast<uint64_t>(epoch));
  std::vector<int64_t> p(static_cast<std::size_t>(size_));
  if (class_members_.empty()) {
    std::iota(p.begin(), p.end(), int64_t{0});
    shuffle(p, seed);
    return p;
  }
  // Turns: position k belongs to class k mod C, then the turns are shuffled.
  const auto classes = static_cast<int64_t>(class_members_.size());
  for (int64_t k = 0; k < size_; ++k) p[static_cast<std::size_t>(k)] = k % classes;
  shuffle(p, seed);
  std::vector<std::vector<int64_t>> order = class_members_;
  for (std::size_t c = 0; c < order.size(); ++c) shuffle(order[c], rng::mix_seed(seed, c + 1));
  std::vector<std::size_t> next(order.size(), 0);
  for (auto& entry : p) {
    const auto c = static_cast<std::size_t>(entry);
    entry = order[c][next[c]++ % order[c].size()];
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
