#pragma once
#include <filesystem>
#include <string>

#include "comm/mpi_session.hpp"
#include "config/config.hpp"

namespace shardgan::train {

struct TrainOptions {
  config::Config config;
  std::filesystem::path run_dir;
  std::string resume;  ///< "" (fresh), "auto" (newest valid checkpoint, or fresh), or a checkpoint/run folder
  bool dry_run = false;
};

/// Trains (or, with dry_run, validates and prints the plan). Every rank calls it; rank 0 writes the run folder.
/// Throws Error on bad input; `main` turns that into one line and ends the whole job.
void train(const TrainOptions& options, comm::MpiSession& session);

}  // namespace shardgan::train
