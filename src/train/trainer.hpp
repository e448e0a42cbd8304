#pragma once
#include <filesystem>
#include <string>

#include "comm/mpi_session.hpp"
#include "config/config.hpp"
#include "train/plan.hpp"

namespace shardgan::train {

struct TrainOptions {
  config::Config config;
  std::filesystem::path run_dir;
  std::string resume;  ///< "" (fresh), "auto" (newest valid checkpoint, or fresh), or a checkpoint/run folder
  bool dry_run = false;
  bool json = false;  ///< dry run: the plan as one JSON object
  /// runtime.cuda_graphs: what makes the graphs (empty: CUDA graphs). Tests inject parallel::make_emulated_graph,
  /// which also lets the graph path run on the CPU.
  GraphFactory make_graph;
};

/// Keeps freed tensor memory in the process instead of returning it to the kernel (glibc mallopt): every step
/// allocates and frees the same activation sizes, and mmap/munmap of each one costs page faults and zeroing — about
/// 10% of a CPU step for the seeds' DCGAN. Call once at the start of main.
void tune_allocator();

/// Trains (or, with dry_run, validates and prints the plan, changing nothing). Every rank calls it; rank 0 writes the
/// run folder. An error is one line and ends the whole job (run_or_abort). Returns the exit code: 0, 1 (an error on a
/// single rank), or kExitStoppedBySignal (75) when SIGUSR1/SIGTERM stopped it after a checkpoint.
int train(const TrainOptions& options, comm::MpiSession& session);

}  // namespace shardgan::train
