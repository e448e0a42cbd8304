#pragma once
#include <torch/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "util/png.hpp"

namespace shardgan::train {

/// Tiles images [N, C, H, W] in [-1, 1] into one grid image, `columns` per row, 2 px gaps.
Image make_grid(const torch::Tensor& images, int64_t columns);

/// One logged step (a line of metrics.jsonl).
struct MetricsRow {
  int64_t step = 0;
  int64_t epoch = 0;
  double loss_d = 0, loss_g = 0, d_real = 0, d_fake = 0, img_per_s = 0, elapsed_s = 0;
};

/// Everything rank 0 writes into the run folder besides checkpoints: metrics.jsonl, samples/epoch-NNNN.png,
/// losses.png, and the progress line on stderr (a bar on a terminal, a line per log step otherwise).
class RunOutputs {
 public:
  /// Opens RUN_DIR; on resume keeps metrics.jsonl rows up to `resume_step` and drops later ones.
  RunOutputs(std::filesystem::path run_dir, int64_t resume_step, int64_t total_steps);
  void log(const MetricsRow& row);
  /// samples/<name> ("epoch-0010.png" at epoch ends, "step-000500.png" between them).
  void write_samples(const std::string& name, const Image& grid);
  /// Re-renders losses.png from all rows so far.
  void write_loss_plot();
  /// The progress bar (terminal), or one line when `logged` (a metrics row was just written).
  void progress(int64_t step, int64_t epoch, const MetricsRow* last, bool logged);
  void finish_progress();

 private:
  std::filesystem::path dir_;
  int64_t total_steps_;
  bool terminal_;
  std::vector<MetricsRow> rows_;
};

}  // namespace shardgan::train
