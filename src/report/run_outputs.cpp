#include "train/run_outputs.hpp"

#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "train/plot.hpp"
#include "train/report.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;

Image make_grid(const torch::Tensor& images, int64_t columns) {
  const torch::Tensor cpu = ((images.detach().to(torch::kCPU, torch::kFloat32) + 1) * 127.5)
                                .round()
                                .clamp(0, 255)
                                .to(torch::kUInt8)
                                .permute({0, 2, 3, 1})
                                .contiguous();
  const int64_t n = cpu.size(0), h = cpu.size(1), w = cpu.size(2), c = cpu.size(3);
  const int64_t cols = std::max<int64_t>(1, std::min(columns, n));
  const int64_t rows = (n + cols - 1) / cols;
  const int gap = 2;
  Image grid(static_cast<int>(cols * (w + gap) + gap), static_cast<int>(rows * (h + gap) + gap), static_cast<int>(c),
             255);
  const uint8_t* src = cpu.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t x0 = gap + (i % cols) * (w + gap), y0 = gap + (i / cols) * (h + gap);
    for (int64_t y = 0; y < h; ++y)
      std::copy_n(src + ((i * h + y) * w) * c, w * c, grid.at(static_cast<int>(x0), static_cast<int>(y0 + y)));
  }
  return grid;
}

RunOutputs::RunOutputs(fs::path run_dir, int64_t resume_step, int64_t total_steps, int64_t steps_per_epoch)
    : dir_(std::move(run_dir)), total_steps_(total_steps), terminal_(isatty(STDERR_FILENO) != 0) {
  fs::create_directories(dir_ / "samples");
  for (const auto& e : fs::directory_iterator(dir_ / "samples")) {
    const std::string name = e.path().filename().string();
    long long n = 0;
    int64_t step = -1;
    if (std::sscanf(name.c_str(), "epoch-%lld.png", &n) == 1) step = n * steps_per_epoch;
    if (std::sscanf(name.c_str(), "step-%lld.png", &n) == 1) step = n;
    if (step > resume_step) {
      std::error_code ignored;
      fs::remove(e.path(), ignored);
    }
  }
  const fs::path metrics = dir_ / "metrics.jsonl";
  if (fs::exists(metrics)) {
    std::ifstream in(metrics);
    std::string kept;
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("step") || j["step"].get<int64_t>() > resume_step) continue;
      if (j.contains("loss_d"))
        rows_.push_back(MetricsRow{j["step"], j.value("epoch", int64_t{0}), j["loss_d"], j["loss_g"],
                                   j.value("d_real", 0.0), j.value("d_fake", 0.0), j.value("img_per_s", 0.0),
                                   j.value("elapsed_s", 0.0)});
      if (j.value("kind", "") == "eval") {
        EvalRow e;
        e.step = j["step"];
        e.epoch_fraction = j.value("epoch", 0.0);
        e.fd_clf = j.value("fd_clf", 0.0);
        if (j.contains("class_consistency") && j["class_consistency"].is_number())
          e.class_consistency = j["class_consistency"].get<double>();
        e.d_real = j.value("d_real", 0.0);
        e.d_fake = j.value("d_fake", 0.0);
        e.n = j.value("n", int64_t{0});
        e.seconds = j.value("eval_s", 0.0);
        e.generator = j.value("generator", "");
        evals_.push_back(e);
      }
      kept += line + "\n";
    }
    in.close();
    std::ofstream out(metrics, std::ios::trunc);
    out << kept;
  }
}

void RunOutputs::log(const MetricsRow& r) {
  rows_.push_back(r);
  nlohmann::ordered_json j;
  j["step"] = r.step;
  j["epoch"] = r.epoch;
  j["loss_d"] = r.loss_d;
  j["loss_g"] = r.loss_g;
  j["d_real"] = r.d_real;
  j["d_fake"] = r.d_fake;
  j["img_per_s"] = r.img_per_s;
  j["elapsed_s"] = r.elapsed_s;
  append_metrics(j.dump());
}

void RunOutputs::append_metrics(const std::string& line) {
  std::ofstream out(dir_ / "metrics.jsonl", std::ios::app);
  out << line << '\n';
}

void RunOutputs::log_eval(const EvalRow& e, const std::vector<std::string>& class_names) {
  evals_.push_back(e);
  nlohmann::ordered_json j;
  j["kind"] = "eval";
  j["step"] = e.step;
  j["epoch"] = e.epoch_fraction;
  j["fd_clf"] = e.fd_clf;
  j["class_consistency"] = e.class_consistency ? nlohmann::ordered_json(*e.class_consistency) : nullptr;
  if (!e.per_class.empty()) {
    nlohmann::ordered_json per_class = nlohmann::ordered_json::object();
    for (std::size_t k = 0; k < e.per_class.size(); ++k)
      per_class[k < class_names.size() ? class_names[k] : std::to_string(k)] = e.per_class[k];
    j["class_consistency_per_class"] = per_class;
  }
  j["d_real"] = e.d_real;
  j["d_fake"] = e.d_fake;
  j["n"] = e.n;
  j["generator"] = e.generator;
  j["eval_s"] = e.seconds;
  append_metrics(j.dump());
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

void RunOutputs::write_samples(const std::string& name, const Image& grid) {
  write_png(dir_ / "samples" / name, grid);
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
  char stats[160] = "";
  if (last != nullptr)
    std::snprintf(stats, sizeof(stats), "loss_d %.3f loss_g %.3f D(x) %.2f D(G(z)) %.2f %.0f img/s", last->loss_d,
                  last->loss_g, last->d_real, last->d_fake, last->img_per_s);
  if (terminal_) {
    const int width = 30;
    const int filled = static_cast<int>(width * step / std::max<int64_t>(1, total_steps_));
    std::fprintf(stderr, "\r[%.*s%*s] %lld/%lld epoch %lld %s", filled, "##############################",
                 width - filled, "", static_cast<long long>(step), static_cast<long long>(total_steps_),
                 static_cast<long long>(epoch), stats);
  } else if (logged && last != nullptr) {
    std::fprintf(stderr, "step %lld/%lld epoch %lld %s\n", static_cast<long long>(step),
                 static_cast<long long>(total_steps_), static_cast<long long>(epoch), stats);
  }
  std::fflush(stderr);
}

void RunOutputs::finish_progress() {
  if (terminal_) std::fprintf(stderr, "\n");
}

}  // namespace shardgan::train
