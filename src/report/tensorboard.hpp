#pragma once
// TensorBoard's event files for a run (output.tensorboard): what rank 0 logs — every metrics.jsonl number as a
// scalar, the sample grids as images, the resolved configuration as text, and hparams for TensorBoard's HParams view
// — as events in RUN_DIR/events.out.tfevents.<time>.<host>, written off the training thread (event_file.hpp).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace shardgan::report {

class EventFileWriter;

/// A hyperparameter of the HParams view: a number, a string or a bool.
using HParamValue = std::variant<double, std::string, bool>;

/// One run's event file. Each run (a fresh start or a resume) writes a new file. On a resume the events of the older
/// files up to the resumed step are copied into it, its first event after the file version is a SessionLog START at
/// the resumed step (readers then drop anything they hold from that step on), and the older files are removed once
/// the copy is on disk: every reader sees each step once, whether or not it honours START. What they held after the
/// resumed step is kept in metrics.rejected.jsonl and samples/rejected/ (report/run_outputs.hpp).
class TensorBoardLog {
 public:
  TensorBoardLog(const std::filesystem::path& run_dir, int64_t resume_step);
  ~TensorBoardLog();
  TensorBoardLog(const TensorBoardLog&) = delete;
  TensorBoardLog& operator=(const TensorBoardLog&) = delete;

  /// Scalars at `step`, in one event.
  void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  /// A PNG image (`channels` 1 or 3).
  void image(int64_t step, const std::string& tag, std::string png, int width, int height, int channels);
  /// Markdown for the text plugin.
  void text(int64_t step, const std::string& tag, const std::string& markdown);
  /// The HParams view's experiment (the hyperparameters' names and types, the metrics' tags) and this session's
  /// values; `metric_tags` are scalar tags whose last values the view shows.
  void hparams(const std::vector<std::pair<std::string, HParamValue>>& values,
               const std::vector<std::string>& metric_tags);
  /// The HParams view's end of the session (success: the run trained to its end).
  void end_session(bool success);
  /// Waits until the events so far are written; fsyncs them when `sync` (at checkpoints). Error on a failed write.
  void flush(bool sync);
  const std::filesystem::path& file() const;

 private:
  std::unique_ptr<EventFileWriter> writer_;
  double start_time_;
};

/// The event files of `run_dir` (regular files whose names start "events.out.tfevents."), oldest first.
std::vector<std::filesystem::path> event_files(const std::filesystem::path& run_dir);

}  // namespace shardgan::report
