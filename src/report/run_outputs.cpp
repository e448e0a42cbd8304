#include "report/run_outputs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "report/plot.hpp"
#include "report/report.hpp"
#include "util/atomic_file.hpp"
#include "util/clock_time.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"
#include "util/json_depth.hpp"

namespace shardgan::report {
namespace fs = std::filesystem;

RunOutputs::RunOutputs(fs::path run_dir, int64_t resume_step, int64_t total_steps, int64_t steps_per_epoch)
    : dir_(std::move(run_dir)),
      resume_step_(resume_step),
      total_steps_(total_steps),
      started_(std::chrono::steady_clock::now()),
      rate_time_(started_),
      rate_step_(resume_step),
      terminal_(isatty(STDERR_FILENO) != 0) {
  fs::create_directories(dir_ / "samples");
  for (const auto& e : fs::directory_iterator(dir_ / "samples")) {
    const std::string name = e.path().filename().string();
    long long n = 0;
    int64_t step = -1;
    if (std::sscanf(name.c_str(), "epoch-%lld.png", &n) == 1) step = n * steps_per_epoch;
    if (std::sscanf(name.c_str(), "step-%lld.png", &n) == 1) step = n;
    if (step > resume_step) {
      const fs::path rejected = dir_ / "samples" / "rejected";
      fs::create_directories(rejected);
      fs::path target = rejected / name;  // an earlier rejected history may hold the same name: keep both
      for (int i = 1; fs::exists(target); ++i)
        target = rejected / (e.path().stem().string() + "." + std::to_string(i) + ".png");
      fs::rename(e.path(), target);
    }
  }
  if (fs::exists(dir_ / "metrics.jsonl")) keep_metrics_up_to(resume_step);
}

RunOutputs::~RunOutputs() = default;

namespace {

/// Every number of a metrics.jsonl row as a TensorBoard scalar "<group>/<key>" (an object's numbers as
/// "<group>/<key>/<name>"); the step, and what is not a number (a NaN written as null, a word), left out.
std::vector<std::pair<std::string, double>> scalars_of(const nlohmann::ordered_json& row, const std::string& group) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& [key, value] : row.items()) {
    if (key == "step") continue;
    if (value.is_number()) out.emplace_back(group + "/" + key, value.get<double>());
    if (value.is_object())
      for (const auto& [name, v] : value.items())
        if (v.is_number()) out.emplace_back(group + "/" + key + "/" + name, v.get<double>());
  }
  return out;
}

/// A file descriptor closed when it goes.
struct Descriptor {
  int fd;
  ~Descriptor() { ::close(fd); }
};

}  // namespace

void RunOutputs::keep_metrics_up_to(int64_t resume_step) {
  const fs::path metrics = dir_ / "metrics.jsonl", aside = dir_ / "metrics.rejected.jsonl";
  // Lines are read with a stated maximum: an overlong one (a runaway line, or a hole of NULs where a power cut left
  // the file longer than its data) is skipped in pieces and rejected unparsed. Rejected lines never pass through
  // memory either: their byte ranges are copied from the file, holes skipped (a sparse tail stays sparse).
  LineReader reader(metrics, kMaxMetricsLineBytes, "metrics file");
  const Descriptor source{::open(metrics.c_str(), O_RDONLY | O_CLOEXEC)};
  if (source.fd < 0) fail(metrics.string(), ": cannot open (", std::strerror(errno), ")");
  std::optional<CheckedFile> rejected;    // opened at the first rejected line
  std::optional<uint64_t> rejected_from;  // the start of the run of rejected lines being read
  const auto move_aside = [&](uint64_t end) {
    if (!rejected_from) return;
    if (!rejected) rejected.emplace(aside, CheckedFile::Mode::kAppend);
    rejected->copy_range(source.fd, metrics, *rejected_from, end);
    char last = 0;  // a line a crash cut short has no '\n': end it, so that the next one appended stays apart
    if (::pread(source.fd, &last, 1, static_cast<off_t>(end - 1)) != 1 || last != '\n') rejected->write("\n");
    rejected_from.reset();
  };
  write_file_atomically(metrics, [&](const fs::path& tmp) {
    CheckedFile kept(tmp, CheckedFile::Mode::kCreate, metrics);
    std::string line;
    bool overlong = false;
    while (reader.next(line, &overlong)) {
      const auto j = !overlong && json_depth_within(line)
                         ? nlohmann::ordered_json::parse(line, nullptr, /*allow_exceptions=*/false)
                         : nlohmann::ordered_json(nlohmann::ordered_json::value_t::discarded);
      if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j["step"].is_number_integer() ||
          j["step"].get<int64_t>() > resume_step) {
        if (!rejected_from) rejected_from = reader.line_offset();  // a later history, or a line a crash cut short
        continue;
      }
      move_aside(reader.line_offset());
      if (auto row = parse_metrics_row(j)) rows_.push_back(*row);
      if (auto row = parse_eval_row(j)) evals_.push_back(*row);
      kept.write(line);
      kept.write("\n");
    }
    struct stat st {};
    if (::fstat(source.fd, &st) != 0) fail(metrics.string(), ": cannot read its size (", std::strerror(errno), ")");
    move_aside(static_cast<uint64_t>(st.st_size));
    // The rejected lines are on disk before metrics.jsonl loses them: a crash in between duplicates, never drops.
    if (rejected) rejected->finish(/*sync=*/true);
    kept.finish(/*sync=*/true);
  });
}

void RunOutputs::open_tensorboard(const std::string& config_toml,
                                  const std::vector<std::pair<std::string, HParamValue>>& hparams,
                                  const std::vector<std::string>& metric_tags) {
  tensorboard_ = std::make_unique<TensorBoardLog>(dir_, resume_step_);
  std::string markdown;  // indented: a code block in the text plugin's Markdown
  for (std::size_t begin = 0; begin < config_toml.size();) {
    const std::size_t end = std::min(config_toml.find('\n', begin), config_toml.size());
    markdown += "    " + config_toml.substr(begin, end - begin) + "\n";
    begin = end + 1;
  }
  tensorboard_->text(resume_step_, "config", markdown);
  tensorboard_->hparams(hparams, metric_tags);
  tensorboard_->flush(/*sync=*/false);  // a file that cannot be written fails the run here, before the first step
}

void RunOutputs::flush_tensorboard() {
  if (tensorboard_) tensorboard_->flush(/*sync=*/true);
}

void RunOutputs::end_tensorboard(bool finished) {
  if (!tensorboard_) return;
  if (finished) tensorboard_->end_session(/*success=*/true);
  tensorboard_->flush(/*sync=*/true);
}

void RunOutputs::log(const MetricsRow& r) {
  rows_.push_back(r);
  const auto j = to_json(r);
  append_metrics(j.dump());
  if (tensorboard_) tensorboard_->scalars(r.step, scalars_of(j, "train"));
}

void RunOutputs::append_metrics(const std::string& line) {
  // Not flushed per row (see docs/design.md, Durability); a failed write is cut back, leaving no partial line.
  CheckedFile out(dir_ / "metrics.jsonl", CheckedFile::Mode::kAppend);
  out.write(line + "\n");
  out.finish(/*sync=*/false);
}

void RunOutputs::log_eval(const EvalRow& e, const std::vector<std::string>& class_names) {
  evals_.push_back(e);
  const auto j = to_json(e, class_names);
  append_metrics(j.dump());
  if (tensorboard_) tensorboard_->scalars(e.step, scalars_of(j, "eval"));
}

void RunOutputs::write_report(const ReportInfo& info) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_ / "samples"))
    if (e.path().extension() == ".png") files.push_back(e.path());
  // In the order they were written (epoch-NNNN and step-NNNNNN grids interleave).
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    const auto ta = fs::last_write_time(a), tb = fs::last_write_time(b);
    return ta != tb ? ta < tb : a < b;
  });
  // At most kMaxImages grids, so the page stays small on long runs: the first, the newest, and evenly spaced ones
  // between (every grid stays in samples/).
  constexpr std::size_t kMaxImages = 24;
  if (files.size() > kMaxImages) {
    std::vector<fs::path> kept;
    for (std::size_t i = 0; i < kMaxImages; ++i) kept.push_back(files[i * (files.size() - 1) / (kMaxImages - 1)]);
    files = kept;
  }
  std::vector<ReportImage> images;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    images.push_back(ReportImage{f.stem().string(), std::string(std::istreambuf_iterator<char>(in), {})});
  }
  write_text_atomically(dir_ / "report.html", render_report(info, rows_, evals_, images));
}

void RunOutputs::write_samples(const std::string& name, const Image& grid, int64_t step) {
  std::string png = write_png(dir_ / "samples" / name, grid);
  if (tensorboard_) tensorboard_->image(step, "samples", std::move(png), grid.width, grid.height, grid.channels);
}

void RunOutputs::write_loss_plot() {
  Series d{"loss_d", {214, 39, 40}, {}, {}}, g{"loss_g", {31, 119, 180}, {}, {}};
  for (const auto& r : rows_) {
    d.x.push_back(static_cast<double>(r.step)), d.y.push_back(r.loss_d);
    g.x.push_back(static_cast<double>(r.step)), g.y.push_back(r.loss_g);
  }
  write_png(dir_ / "losses.png", plot_series({d, g}, "step"));
}

void RunOutputs::progress(int64_t step, int64_t epoch, const MetricsRow* last, bool logged) {
  const auto now = std::chrono::steady_clock::now();
  if (logged && step > rate_step_) {  // the recent rate: over the last log interval (evaluations and samples included)
    steps_per_s_ = static_cast<double>(step - rate_step_) / std::chrono::duration<double>(now - rate_time_).count();
    rate_time_ = now;
    rate_step_ = step;
  }
  char stats[160] = "";
  if (last != nullptr)
    std::snprintf(stats, sizeof(stats), "loss_d %.3f loss_g %.3f D(x) %.2f D(G(z)) %.2f %.0f img/s", last->loss_d,
                  last->loss_g, last->d_real, last->d_fake, last->img_per_s);
  const std::string times =
      "elapsed " + clock_time(std::chrono::duration<double>(now - started_).count()) + " eta " +
      (steps_per_s_ && *steps_per_s_ > 0 ? clock_time(static_cast<double>(total_steps_ - step) / *steps_per_s_)
                                         : std::string("?"));
  if (terminal_) {
    const int width = 30;
    const int filled = static_cast<int>(width * step / std::max<int64_t>(1, total_steps_));
    std::fprintf(stderr, "\r[%.*s%*s] %lld/%lld epoch %lld %s %s\033[K", filled, "##############################",
                 width - filled, "", static_cast<long long>(step), static_cast<long long>(total_steps_),
                 static_cast<long long>(epoch), times.c_str(), stats);
  } else if (logged && last != nullptr) {
    std::fprintf(stderr, "step %lld/%lld epoch %lld %s %s\n", static_cast<long long>(step),
                 static_cast<long long>(total_steps_), static_cast<long long>(epoch), times.c_str(), stats);
  }
  std::fflush(stderr);
}

void RunOutputs::finish_progress() {
  if (terminal_) std::fprintf(stderr, "\n");
}

}  // namespace shardgan::report
