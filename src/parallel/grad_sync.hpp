#pragma once
#include <torch/types.h>

#include <cstdint>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.hpp"
#include "compat/torch_compat.hpp"

namespace shardgan::parallel {

/// What the gradient all-reduce sends (comm.compression). docs/design.md has the error of each and when it pays.
struct GradCompression {
  enum class Mode {
    kNone,      ///< float32: the average, exactly as one rank with the global batch would compute it (to rounding)
    kBf16,      ///< each bucket as bfloat16 (half the bytes): g/N rounded to bf16, summed with a rounding per addition
    kFp16,      ///< each bucket as float16: the same with 3 more mantissa bits and float16's range (g/N < 65504)
    kPowerSgd,  ///< PowerSGD (Vogels et al. 2019): matrices as rank-r products with error feedback, the rest float32
  };
  Mode mode = Mode::kNone;
  int64_t rank = 4;        ///< PowerSGD's r
  int64_t start_step = 0;  ///< PowerSGD: steps before this one are all-reduced uncompressed
  uint64_t seed = 0;       ///< PowerSGD: Q's first draw (the same on every rank)
  bool saturate = true;    ///< fp16: an overflow becomes ±65504, not inf (false: fp16 loss scaling wants to see it)
};

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
///   sync.prepare(step);  loss.backward();  sync.finish();  optimizer.step();
///
/// With compression (GradCompression) the same buckets, hooks and overlap carry fewer bytes:
/// - bf16 / fp16: a complete bucket is divided by the world size into a half-width copy (the division first, so
///   float16 cannot overflow in the sum), all-reduced as a sum, and written back into the float32 .grad views.
/// - PowerSGD: each bucket holds its vectors and small matrices first (all-reduced as float32, as without
///   compression), then its compressible matrices M (a parameter viewed as rows × the rest, compressed when the
///   rank-r factors are at most half its size). A complete bucket adds each matrix's error feedback into M and starts
///   the all-reduce of P = M·Q (Q: last step's, warm start); `finish` then orthogonalises each averaged P, all-reduces
///   Q = Mᵀ·P per bucket, and writes P·Qᵀ into .grad, keeping M − P·Qᵀ as the next step's error feedback. Before
///   `start_step` every bucket goes uncompressed. The collectives are the same on every rank and in the same order:
///   during backward the buckets' float32 parts and P's, in bucket order; in `finish` the Q's, in bucket order.
///
/// Each parameter must receive exactly one gradient per backward (true of the GAN models here); a parameter that
/// receives none contributes zeros. With one rank nothing needs averaging and GradSync stays out of the way (no
/// compression either), unless `single_rank_too` (tests: buckets, hooks and the backend exercised on one GPU, where
/// NCCL allows one rank only).
class GradSync {
 public:
  GradSync(comm::Communicator& comm, std::vector<torch::Tensor> parameters, double bucket_mb = 25.0,
           bool overlap = true, bool single_rank_too = false, GradCompression compression = {});
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  /// Copies rank 0's values of `tensors` to every rank (parameters and buffers at start and after resume).
  void broadcast(const std::vector<torch::Tensor>& tensors);
  /// Points every .grad at its (zeroed) part of the buckets and arms the hooks for the next backward, of training
  /// step `step` (which decides whether PowerSGD compresses it).
  void prepare(int64_t step = 0);
  /// Waits for every bucket and writes the averaged gradients into .grad.
  void finish();
  /// Seconds spent blocked in `finish` waiting for communication, summed since construction (for benchmarks).
  double wait_seconds() const { return wait_seconds_; }
  std::size_t num_buckets() const { return buckets_.size(); }
  /// Gradients that autograd did not accumulate into their bucket and that had to be copied (0 in every use here).
  int64_t copies() const { return copies_; }
  /// Bytes this rank handed to all-reduces (the payload; the bytes on the wire depend on the backend's algorithm)
  /// and synchronisations (`finish` calls), since construction.
  int64_t bytes_sent() const { return bytes_sent_; }
  int64_t syncs() const { return syncs_; }
  /// What one synchronisation of training step `step` hands to all-reduces (what bytes_sent grows by; also for a
  /// step a CUDA graph replays, where no host code counts). 0 with one rank.
  int64_t bytes_per_sync(int64_t step) const;
  /// Parameters PowerSGD compresses (0 for the other modes, and with one rank).
  std::size_t compressed_matrices() const { return low_rank_.size(); }

  /// PowerSGD's state, the live tensors: "q/<k>" (the warm-start Q of parameter k, the same on every rank) and
  /// "error/<k>" (this rank's error feedback, rows × the rest). Empty for the other modes. A checkpoint saves these;
  /// a resume copies saved values into them (reset_compression_state: what a resume without them starts from).
  std::vector<std::pair<std::string, torch::Tensor>> compression_state() const;
  /// Q back to its first draw and the error feedback to zero (the state before the first compressed step).
  void reset_compression_state();

 private:
  /// One all-reduce of `data`, staged through pinned host memory (`host`) when the backend needs it.
  struct Transfer {
    torch::Tensor data, host;
    std::unique_ptr<comm::Request> request;
    void bind(const comm::Communicator& comm, torch::Tensor tensor);
    void start(comm::Communicator& comm, comm::ReduceOp op, int64_t& bytes);
    void wait();
  };
  /// A parameter PowerSGD compresses: its gradient as an n × m matrix M.
  struct LowRank {
    std::size_t parameter;
    int64_t n, m;
    torch::Tensor error;   ///< n × m: the error feedback; during a step M itself (gradient + error feedback)
    torch::Tensor p, q;    ///< n × r and m × r, parts of the bucket's P and Q buffers
    torch::Tensor q_init;  ///< Q's first draw
  };
  struct Bucket {
    std::vector<std::size_t> parameters;  ///< indices into parameters_
    std::vector<int64_t> offsets;         ///< element offset of each parameter in `flat`
    std::vector<torch::Tensor> views;     ///< each parameter's part of `flat`, with the parameter's shape and strides
    torch::Tensor flat;
    std::size_t pending = 0;
    bool ready = false;
    bool compressed = false;            ///< this step's all-reduce goes through `low`/`p` (PowerSGD), not `whole`
    Transfer whole;                     ///< all of `flat`: float32, or its half-width copy (bf16 / fp16)
    Transfer plain;                     ///< PowerSGD: the float32 prefix of `flat` (vectors and small matrices)
    Transfer p, q;                      ///< PowerSGD: the bucket's P and Q factors
    std::vector<std::size_t> low_rank;  ///< indices into low_rank_, in `flat` order
  };
  void on_accumulated(std::size_t parameter);
  void launch_ready_buckets();
  void launch(Bucket& b);
  void finish_low_rank();

  comm::Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  std::vector<std::size_t> bucket_of_;       ///< parameter → bucket
  std::vector<std::size_t> slot_in_bucket_;  ///< parameter → position in its bucket
  std::vector<char> received_;
  /// Each parameter's gradient accumulator (kept alive: autograd would otherwise make a new one, without the hook)
  /// and its hook's key, removed on destruction.
  std::vector<std::pair<compat::GradAccumulatorPtr, uintptr_t>> hooks_;
  std::vector<Bucket> buckets_;
  std::vector<LowRank> low_rank_;
  GradCompression compression_;
  torch::Tensor inverse_world_;  ///< 1 / world size (bf16 / fp16: the division before the cast)
  std::size_t next_launch_ = 0;
  bool armed_ = false;
  bool compress_step_ = false;  ///< PowerSGD compresses this step
  bool overlap_;
  bool active_;  ///< more than one rank, or single_rank_too
  double wait_seconds_ = 0;
  int64_t copies_ = 0;
  int64_t bytes_sent_ = 0;
  int64_t syncs_ = 0;
  int64_t uncompressed_bytes_ = 0, compressed_bytes_ = 0;  ///< per synchronisation (bytes_per_sync)
};

/// Orthonormalises the columns of `matrix` (n × r, n ≥ r) in place by Gram-Schmidt, as device work: each column
/// divided by its norm (a zero column stays zero, not NaN), then removed from the later ones; twice, because one pass
/// leaves a column that was (nearly) dependent on the earlier ones as normalised rounding noise that is not orthogonal
/// to them (a gradient of rank below r), and the second pass makes it so ("twice is enough", Giraud et al. 2005).
void orthogonalize_columns(torch::Tensor& matrix);

}  // namespace shardgan::parallel
