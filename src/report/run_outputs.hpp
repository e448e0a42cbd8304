#pragma once
#include <torch/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
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

/// One evaluation (a line of metrics.jsonl with "kind": "eval").
struct EvalRow {
  int64_t step = 0;
  double epoch_fraction = 0;  ///< steps done / steps per epoch
  double fd_clf = 0;
  std::optional<double> class_consistency;
  std::vector<double> per_class;
  double d_real = 0, d_fake = 0;
  int64_t n = 0;
  double seconds = 0;
  std::string generator;  ///< "ema" or "g"
};

/// What the report says about the run besides its rows.
struct ReportInfo {
  std::string title;
  std::string config_toml;
  int world_size = 1;
  std::string device;
  int64_t global_batch = 0;
  int64_t total_steps = 0;
  std::vector<std::string> class_names;
};

/// Everything rank 0 writes into the run folder besides checkpoints: metrics.jsonl, samples/epoch-NNNN.png,
/// losses.png, and the progress line on stderr (a bar on a terminal, a line per log step otherwise).
class RunOutputs {
 public:
  /// Opens RUN_DIR; on resume keeps metrics.jsonl rows and sample grids up to `resume_step` and removes later ones
  /// (they belong to a history the resumed run replaces). `steps_per_epoch` dates the epoch-NNNN grids.
  RunOutputs(std::filesystem::path run_dir, int64_t resume_step, int64_t total_steps, int64_t steps_per_epoch);
  void log(const MetricsRow& row);
  /// Appends an evaluation row (class names label the per-class consistencies).
  void log_eval(const EvalRow& row, const std::vector<std::string>& class_names);
  /// samples/<name> ("epoch-0010.png" at epoch ends, "step-000500.png" between them).
  void write_samples(const std::string& name, const Image& grid);
  /// Re-renders losses.png from all rows so far.
  void write_loss_plot();
  /// Re-renders report.html (atomically) from all rows and sample grids so far.
  void write_report(const ReportInfo& info);
  /// The progress bar (terminal), or one line when `logged` (a metrics row was just written).
  void progress(int64_t step, int64_t epoch, const MetricsRow* last, bool logged);
  void finish_progress();

 private:
  void append_metrics(const std::string& line);

  std::filesystem::path dir_;
  int64_t total_steps_;
  bool terminal_;
  std::vector<MetricsRow> rows_;
  std::vector<EvalRow> evals_;
};

}  // namespace shardgan::train
