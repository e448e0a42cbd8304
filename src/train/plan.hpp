#pragma once
// What a run is, resolved and validated once, before anything is communicated or written: where each rank computes
// (Placement), what it trains on and for how long (Plan). Every check of a run's settings that needs more than the
// config file itself (devices, world size, data) is here; the config's own checks are in config/config.cpp. The dry
// run prints a Plan (as text, or as JSON for scripts) and changes nothing in the process.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "comm/mpi_session.hpp"
#include "config/config.hpp"
#include "data/distributed_sampler.hpp"
#include "data/shard_dataset.hpp"
#include "parallel/cuda_graph.hpp"
#include "train/gan.hpp"

namespace shardgan::train {

/// Makes the graph that holds one kind of training step on CUDA device `device` (runtime.cuda_graphs).
/// Production: parallel::make_cuda_graph. Tests inject parallel::make_emulated_graph to run the graph path on the CPU.
using GraphFactory = std::function<std::unique_ptr<parallel::StepGraph>(int device)>;

/// What the process has, as the plan sees it.
struct RankInfo {
  int rank = 0, world = 1, local_rank = 0, local_size = 1;
  std::string host;
  bool cuda_available = false;
  int cuda_devices = 0;
  unsigned cores = 1;
  static RankInfo of(const comm::MpiSession& session);  ///< asks LibTorch about CUDA (initialises the driver)
};

/// Where this rank computes and how it communicates: runtime.* and comm.* with `auto` resolved.
struct Placement {
  torch::Device device = torch::kCPU;
  int64_t threads = 1;
  config::Backend backend = config::Backend::kMpi;  ///< kMpi or kNccl, never kAuto
  bool autocast = false;                            ///< bf16 or fp16: the forward passes under autocast
  torch::ScalarType autocast_dtype = torch::kFloat32;
  bool graphs = false;           ///< runtime.cuda_graphs
  bool emulated_graphs = false;  ///< graphs on the CPU through an injected emulation (tests)
};

/// Resolves runtime.* and comm.* for this rank; Error on a combination that cannot run here. Pure: nothing in the
/// process changes. `emulated_graphs`: the caller injected a CPU graph emulation (tests), so runtime.cuda_graphs may
/// run without a GPU.
Placement resolve_placement(const config::Config& cfg, const RankInfo& rank, bool emulated_graphs);

/// What the process must be set to before anything else touches LibTorch: deterministic cuBLAS's workspace
/// (CUBLAS_WORKSPACE_CONFIG, which must be set before CUDA starts). Call before RankInfo::of.
void prepare_process(const config::Config& cfg, bool root);
/// Applies what is process-wide: LibTorch's threads, deterministic algorithms, no TF32 for deterministic runs.
void apply_placement(const config::Config& cfg, const Placement& placement);

/// Images per rank and step: train.batch_size, or train.global_batch split over the ranks.
int64_t per_rank_batch(const config::Config& cfg, int world);

/// What a run is. Every rank builds it; every rank checks the data (a bad shard stops every rank with the same
/// message). The models are made here, from train.seed, so that every rank starts from the same weights.
struct Plan {
  Plan(const config::Config& config, const RankInfo& rank, const Placement& placement);

  /// data.read_threads, or its automatic value: one thread copies from memory fast enough; streaming keeps 4 reads
  /// in flight, which a cold disk or a parallel file system needs (bench/loader_bench.sh).
  int read_threads() const;

  const config::Config& cfg;
  RankInfo rank;
  Placement placement;
  data::ShardDataset dataset;
  DataSpec spec;
  int64_t batch;  ///< per rank
  data::DistributedSampler sampler;
  int64_t steps_per_epoch;
  int64_t total_steps;
  Gan gan;
  std::string config_toml;
};

/// The dry run's report, as text (for people) and as one JSON object (for scripts: launch/train-local.sh).
std::string plan_text(const Plan& plan, const std::filesystem::path& run_dir);
std::string plan_json(const Plan& plan, const std::filesystem::path& run_dir);

}  // namespace shardgan::train
