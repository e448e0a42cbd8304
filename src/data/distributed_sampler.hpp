#pragma once
#include <cstdint>
#include <vector>

namespace shardgan::data {

/// Which images each rank trains on at each step. Per epoch, one permutation of the whole data set seeded by
/// (seed, epoch) — identical on every rank. The global batch of step s is the fixed slice
/// [i·G, (i+1)·G) of its epoch's permutation (i = s mod steps_per_epoch, G = world × batch); rank r takes
/// [r·b, (r+1)·b) of it. So the images of a step, taken over all ranks, do not depend on the world size.
/// The last partial global batch of an epoch is dropped.
class DistributedSampler {
 public:
  DistributedSampler(int64_t dataset_size, int64_t batch_per_rank, int world_size, int rank, uint64_t seed);

  /// Class-balanced sampling (data.sampling = "class_balanced"): an epoch's sequence still has one entry per image,
  /// but its classes take turns (each present class equally often, the order shuffled by (seed, epoch)), and the
  /// k-th turn of a class takes the k-th image of that class's own shuffle, cycling when a small class runs out. Rare
  /// classes are seen more often, common ones less; the sequence still does not depend on the world size.
  /// `labels[i]` is image i's class in [0, num_classes).
  void balance_classes(std::vector<int64_t> labels, int64_t num_classes);

  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t global_batch() const { return batch_ * world_; }
  int64_t batch_per_rank() const { return batch_; }
  /// The epoch's sequence of image indices: a permutation (uniform), or the class-balanced sequence.
  std::vector<int64_t> permutation(int64_t epoch) const;
  /// All ranks' indices of `step` (global step counting from 0 across epochs).
  std::vector<int64_t> global_batch_indices(int64_t step) const;
  /// This rank's part of it.
  std::vector<int64_t> rank_indices(int64_t step) const;

 private:
  int64_t size_;
  int64_t batch_;
  int world_;
  int rank_;
  uint64_t seed_;
  int64_t steps_per_epoch_;
  std::vector<std::vector<int64_t>> class_members_;  ///< class-balanced: the images of each present class
  // The last epoch's permutation, kept so consecutive steps do not reshuffle (not thread-safe: one user per sampler).
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> cached_;
};

}  // namespace shardgan::data
