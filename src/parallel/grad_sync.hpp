#pragma once
#include <torch/types.h>

#include <cstdint>

#include <memory>
#include <vector>

#include "comm/communicator.hpp"
#include "compat/torch_compat.hpp"

namespace shardgan::parallel {

/// Keeps one model identical on every rank.
///
/// At the start, `broadcast` copies rank 0's parameters and buffers to every rank. During training, gradients are
/// averaged through flat buckets of at most `bucket_mb` MiB: parameters are assigned to buckets in reverse
/// registration order (the order backward produces their gradients), identically on every rank. Each parameter's
/// .grad is its part of a bucket — a view with the parameter's own strides (channels-last weights get channels-last
/// gradients, as autograd makes them) — zeroed by `prepare`, so autograd accumulates the gradient straight into
/// bucket memory (as DDP's reducer does). A post-hook on each parameter's gradient accumulator counts it in; when a
/// bucket is complete its all-reduce starts (asynchronously, in bucket order on every rank) while backward goes on
/// with earlier layers. `finish` waits for the buckets: .grad then holds the average. Nothing is copied, unless
/// autograd replaced a .grad (`copies` counts those; the tests require 0).
///
///   sync.prepare();  loss.backward();  sync.finish();  optimizer.step();
///
/// Each parameter must receive exactly one gradient per backward (true of the GAN models here); a parameter that
/// receives none contributes zeros. With one rank nothing needs averaging and GradSync stays out of the way, unless
/// `single_rank_too` (tests: buckets, hooks and the backend exercised on one GPU, where NCCL allows one rank only).
class GradSync {
 public:
  GradSync(comm::Communicator& comm, std::vector<torch::Tensor> parameters, double bucket_mb = 25.0,
           bool overlap = true, bool single_rank_too = false);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  /// Copies rank 0's values of `tensors` to every rank (parameters and buffers at start and after resume).
  void broadcast(const std::vector<torch::Tensor>& tensors);
  /// Points every .grad at its (zeroed) part of the buckets and arms the hooks for the next backward.
  void prepare();
  /// Waits for every bucket and writes the averaged gradients into .grad.
  void finish();
  /// Seconds spent blocked in `finish` waiting for communication, summed since construction (for benchmarks).
  double wait_seconds() const { return wait_seconds_; }
  std::size_t num_buckets() const { return buckets_.size(); }
  /// Gradients that autograd did not accumulate into their bucket and that had to be copied (0 in every use here).
  int64_t copies() const { return copies_; }

 private:
  struct Bucket {
    std::vector<std::size_t> parameters;  ///< indices into parameters_
    std::vector<int64_t> offsets;         ///< element offset of each parameter in `flat`
    std::vector<torch::Tensor> views;     ///< each parameter's part of `flat`, with the parameter's shape and strides
    torch::Tensor flat;
    torch::Tensor host;  ///< pinned host copy when CUDA gradients go through MPI
    std::size_t pending = 0;
    bool ready = false;
    std::unique_ptr<comm::Request> request;
  };
  void on_accumulated(std::size_t parameter);
  void launch_ready_buckets();

  comm::Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  std::vector<std::size_t> bucket_of_;       ///< parameter → bucket
  std::vector<std::size_t> slot_in_bucket_;  ///< parameter → position in its bucket
  std::vector<char> received_;
  /// Each parameter's gradient accumulator (kept alive: autograd would otherwise make a new one, without the hook)
  /// and its hook's key, removed on destruction.
  std::vector<std::pair<compat::GradAccumulatorPtr, uintptr_t>> hooks_;
  std::vector<Bucket> buckets_;
  std::size_t next_launch_ = 0;
  bool armed_ = false;
  bool overlap_;
  bool active_;  ///< more than one rank, or single_rank_too
  double wait_seconds_ = 0;
  int64_t copies_ = 0;
};

}  // namespace shardgan::parallel
