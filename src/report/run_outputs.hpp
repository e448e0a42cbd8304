#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "report/report.hpp"
#include "report/rows.hpp"
#include "report/tensorboard.hpp"
#include "util/png.hpp"

namespace shardgan::report {

/// Everything rank 0 writes into the run folder besides checkpoints: metrics.jsonl, samples/epoch-NNNN.png,
/// losses.png, report.html, TensorBoard's event file, and the progress line on stderr (a bar on a terminal, a line per
/// log step otherwise; both with the elapsed time and an ETA at the recent rate).
class RunOutputs {
 public:
  /// Opens RUN_DIR; on resume keeps metrics.jsonl rows and sample grids up to `resume_step` and moves later ones
  /// aside — rows to metrics.rejected.jsonl (appended), grids to samples/rejected/ — since they belong to a history
  /// the resumed run replaces (metrics.jsonl is replaced atomically). Lines that are not rows (a crash-cut line, a
  /// line over kMaxMetricsLineBytes, a tail of NULs) are moved aside too. Memory stays bounded whatever the file
  /// holds: lines are read with LineReader, rejected ones copied by byte range with holes kept as holes.
  /// `steps_per_epoch` dates the epoch-NNNN grids.
  RunOutputs(std::filesystem::path run_dir, int64_t resume_step, int64_t total_steps, int64_t steps_per_epoch);
  ~RunOutputs();
  /// output.tensorboard: from here on every row, evaluation and grid also goes into TensorBoard's event file
  /// (tensorboard.hpp; older files superseded up to the resumed step), which starts with the resolved configuration
  /// (text "config"), and the hyperparameters for the HParams view with `metric_tags` as its metrics.
  void open_tensorboard(const std::string& config_toml, const std::vector<std::pair<std::string, HParamValue>>& hparams,
                        const std::vector<std::string>& metric_tags);
  /// At checkpoints and at the end: the events so far on disk (fsync'ed). Error on a failed write.
  void flush_tensorboard();
  /// The end of the run for the HParams view (trained to the end, or stopped to resume).
  void end_tensorboard(bool finished);
  /// Appends a metrics.jsonl row; a failed write (a full disk) is an Error naming the file and leaves no partial line.
  void log(const MetricsRow& row);
  /// Appends an evaluation row (class names label the per-class consistencies).
  void log_eval(const EvalRow& row, const std::vector<std::string>& class_names);
  /// samples/<name> ("epoch-0010.png" at epoch ends, "step-000500.png" between them), the grid after `step` steps.
  void write_samples(const std::string& name, const Image& grid, int64_t step);
  /// Re-renders losses.png from all rows so far.
  void write_loss_plot();
  /// Re-renders report.html (atomically) from all rows so far and at most 24 sample grids (the first, the newest and
  /// evenly spaced ones between; every grid stays in samples/).
  void write_report(const ReportInfo& info);
  /// The progress bar (terminal), or one line when `logged` (a metrics row was just written).
  void progress(int64_t step, int64_t epoch, const MetricsRow* last, bool logged);
  void finish_progress();

 private:
  void keep_metrics_up_to(int64_t resume_step);
  void append_metrics(const std::string& line);

  std::filesystem::path dir_;
  int64_t resume_step_, total_steps_;
  std::chrono::steady_clock::time_point started_, rate_time_;  ///< rate_*: the last log line, for the ETA
  int64_t rate_step_;
  std::optional<double> steps_per_s_;
  std::unique_ptr<TensorBoardLog> tensorboard_;
  bool terminal_;
  std::vector<MetricsRow> rows_;
  std::vector<EvalRow> evals_;
};

}  // namespace shardgan::report
