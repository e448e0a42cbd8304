#include "report/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace shardgan::report {
namespace {

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double v, const char* format = "%.4g") {
  char text[64];
  std::snprintf(text, sizeof(text), format, v);
  return text;
}

struct Curve {
  std::string name, color;
  std::vector<double> x, y;
};

/// "Nice" tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart).
std::vector<double> ticks(double lo, double hi, int target = 5) {
  const double span = hi - lo;
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * magnitude) {
      step = m * magnitude;
      break;
    }
  std::vector<double> out;
  const double first = std::ceil(lo / step);
  for (int i = 0; i <= 4 * target; ++i) {  // bounded: a step below the values' precision cannot loop forever
    const double t = (first + i) * step;
    if (t > hi + step * 1e-9) break;
    out.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  }
  return out;
}

/// A line chart as inline SVG. Each curve is a <polyline class="curve" data-name="…">, so tests can find it.
std::string chart(const std::string& title, const std::string& x_label, const std::vector<Curve>& curves) {
  const double width = 560, height = 260, left = 56, right = 12, top = 28, bottom = 40;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& c : curves)
    for (std::size_t i = 0; i < c.x.size(); ++i) {
      if (!std::isfinite(c.y[i])) continue;
      x0 = std::min(x0, c.x[i]), x1 = std::max(x1, c.x[i]);
      y0 = std::min(y0, c.y[i]), y1 = std::max(y1, c.y[i]);
    }
  std::string svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" +
                    num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) + "\">";
  svg += "<text x=\"" + num(left) + "\" y=\"18\" class=\"title\">" + escape(title) + "</text>";
  if (!std::isfinite(x0)) return svg + "<text x=\"" + num(left) + "\" y=\"120\">no data yet</text></svg>";
  // A flat range (relative to the values: img/s near 1e4 that agree to rounding) gets a unit-wide window.
  const auto flat = [](double a, double b) { return b - a <= 1e-9 * std::max({1.0, std::abs(a), std::abs(b)}); };
  if (flat(x0, x1)) x0 -= 0.5, x1 += 0.5;
  if (flat(y0, y1)) y0 -= 0.5 * std::max(1.0, std::abs(y0)), y1 += 0.5 * std::max(1.0, std::abs(y1));
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  const double pw = width - left - right, ph = height - top - bottom;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + (1 - (y - y0) / (y1 - y0)) * ph; };
  svg += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(pw) + "\" height=\"" + num(ph) +
         "\" class=\"frame\"/>";
  for (double t : ticks(y0, y1))
    svg += "<line x1=\"" + num(left) + "\" x2=\"" + num(left + pw) + "\" y1=\"" + num(py(t)) + "\" y2=\"" + num(py(t)) +
           "\" class=\"grid\"/><text x=\"" + num(left - 4) + "\" y=\"" + num(py(t) + 4) + "\" class=\"ytick\">" +
           num(t, "%.6g") + "</text>";
  for (double t : ticks(x0, x1))
    svg +=
        "<text x=\"" + num(px(t)) + "\" y=\"" + num(top + ph + 14) + "\" class=\"xtick\">" + num(t, "%.6g") + "</text>";
  svg += "<text x=\"" + num(left + pw / 2) + "\" y=\"" + num(height - 6) + "\" class=\"xtick\">" + escape(x_label) +
         "</text>";
  double legend_x = left + pw;
  for (auto it = curves.rbegin(); it != curves.rend(); ++it) {
    legend_x -= 14 + 7.0 * static_cast<double>(it->name.size()) + 10;
    svg += "<rect x=\"" + num(legend_x) + "\" y=\"9\" width=\"10\" height=\"10\" fill=\"" + it->color +
           "\"/><text x=\"" + num(legend_x + 14) + "\" y=\"18\">" + escape(it->name) + "</text>";
  }
  for (const auto& c : curves) {
    std::string points;
    for (std::size_t i = 0; i < c.x.size(); ++i)
      if (std::isfinite(c.y[i])) points += num(px(c.x[i]), "%.1f") + "," + num(py(c.y[i]), "%.1f") + " ";
    svg += "<polyline class=\"curve\" data-name=\"" + escape(c.name) + "\" fill=\"none\" stroke=\"" + c.color +
           "\" stroke-width=\"2\" points=\"" + points + "\"/>";
    if (c.x.size() <= 40)  // few points (per-epoch metrics): mark them
      for (std::size_t i = 0; i < c.x.size(); ++i)
        if (std::isfinite(c.y[i]))
          svg += "<circle cx=\"" + num(px(c.x[i]), "%.1f") + "\" cy=\"" + num(py(c.y[i]), "%.1f") +
                 "\" r=\"3\" fill=\"" + c.color + "\"/>";
  }
  return svg + "</svg>";
}

constexpr const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse} td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #eee}
.charts{display:flex;flex-wrap:wrap;gap:12px} .chart{border:1px solid #ddd;background:#fff}
.chart text{font-size:11px;fill:#333} .chart .title{font-size:13px;font-weight:600}
.chart .ytick{text-anchor:end} .chart .xtick{text-anchor:middle} .frame{fill:none;stroke:#999}
.grid{stroke:#eee} .samples{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0}
figure img{image-rendering:pixelated;border:1px solid #ddd;width:320px} figcaption{font-size:12px;color:#555}
pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px} .muted{color:#666}
)";

/// The summary table: steps, ranks, and, from the last rows, throughput, elapsed time, losses and metrics.
std::string summary_section(const ReportInfo& info, const std::vector<MetricsRow>& rows,
                            const std::vector<EvalRow>& evals) {
  std::string h = "<h2>Summary</h2><table>";
  const MetricsRow* last = rows.empty() ? nullptr : &rows.back();
  auto row = [&](const std::string& k, const std::string& v) { h += "<tr><th>" + k + "</th><td>" + v + "</td></tr>"; };
  row("steps",
      last ? num(static_cast<double>(last->step), "%.0f") + " of " + num(static_cast<double>(info.total_steps), "%.0f")
           : "0");
  row("ranks", num(info.world_size, "%.0f") + " (" + escape(info.device) + "), global batch " +
                   num(static_cast<double>(info.global_batch), "%.0f"));
  if (last) {
    double sum = 0;
    int n = 0;
    for (const auto& r : rows)
      if (r.img_per_s > 0) sum += r.img_per_s, ++n;
    row("throughput", "last " + num(last->img_per_s, "%.0f") + " img/s, mean " + num(n ? sum / n : 0, "%.0f") +
                          " img/s (all ranks together)");
    row("elapsed", num(last->elapsed_s, "%.0f") + " s in this session of the run");
    row("last losses", "loss_d " + num(last->loss_d) + ", loss_g " + num(last->loss_g) + ", D(x) " +
                           num(last->d_real, "%.3f") + ", D(G(z)) " + num(last->d_fake, "%.3f"));
  }
  if (!evals.empty()) {
    const EvalRow& e = evals.back();
    std::string metric = "FD-clf " + num(e.fd_clf) + " (first " + num(evals.front().fd_clf) + ")";
    if (e.class_consistency) metric += ", class consistency " + num(*e.class_consistency * 100, "%.1f") + " %";
    metric += ", precision " + num(e.precision, "%.3f") + ", recall " + num(e.recall, "%.3f");
    row("metrics at step " + num(static_cast<double>(e.step), "%.0f"),
        metric + ", " + num(static_cast<double>(e.n), "%.0f") + " images, " + escape(e.generator) + " generator");
  }
  h += "</table>\n";
  return h;
}

/// The charts: losses, D's probabilities and throughput by step, ADA's p when the rows have it, and the metrics by
/// epoch when there are evaluations.
std::string curves_section(const std::vector<MetricsRow>& rows, const std::vector<EvalRow>& evals) {
  Curve loss_d{"loss_d", "#d62728", {}, {}}, loss_g{"loss_g", "#1f77b4", {}, {}};
  Curve d_real{"D(x)", "#2ca02c", {}, {}}, d_fake{"D(G(z))", "#ff7f0e", {}, {}};
  Curve speed{"img/s", "#9467bd", {}, {}}, augment_p{"p", "#e377c2", {}, {}};
  for (const auto& r : rows) {
    const auto s = static_cast<double>(r.step);
    loss_d.x.push_back(s), loss_d.y.push_back(r.loss_d);
    loss_g.x.push_back(s), loss_g.y.push_back(r.loss_g);
    d_real.x.push_back(s), d_real.y.push_back(r.d_real);
    d_fake.x.push_back(s), d_fake.y.push_back(r.d_fake);
    if (r.img_per_s > 0) speed.x.push_back(s), speed.y.push_back(r.img_per_s);
    if (r.augment_p) augment_p.x.push_back(s), augment_p.y.push_back(*r.augment_p);
  }
  Curve fd{"FD-clf", "#8c564b", {}, {}}, consistency{"class consistency", "#17becf", {}, {}};
  for (const auto& e : evals) {
    fd.x.push_back(e.epoch_fraction), fd.y.push_back(e.fd_clf);
    if (e.class_consistency) consistency.x.push_back(e.epoch_fraction), consistency.y.push_back(*e.class_consistency);
  }

  std::string h = "<h2>Curves</h2><div class=\"charts\">";
  h += chart("Losses", "step", {loss_d, loss_g});
  h += chart("Discriminator's mean probability", "step", {d_real, d_fake});
  h += chart("Throughput (img/s, all ranks)", "step", {speed});
  if (!augment_p.x.empty()) h += chart("Adaptive augmentation probability p (ADA)", "step", {augment_p});
  if (!evals.empty()) {
    h += chart("FD-clf (lower is better)", "epoch", {fd});
    if (!consistency.x.empty()) h += chart("Class consistency (higher is better)", "epoch", {consistency});
  }
  h += "</div>\n";
  return h;
}

/// What the metrics mean, and a table of every evaluation ("" when there is none).
std::string metrics_section(const std::vector<EvalRow>& evals) {
  if (evals.empty()) return "";
  std::string h =
      "<p class=\"muted\">FD-clf: Fréchet distance between real and generated images in the feature space of the "
      "run's own classifier (shardgan-eval train-classifier); not comparable with Inception FID. Class "
      "consistency: how often that classifier assigns a generated image to the class it was generated for. "
      "Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020): k-NN manifolds "
      "(k = 3) in the same feature space; fidelity (precision, density) and diversity (recall, coverage).</p>";
  h += "<table><tr><th>step</th><th>epoch</th><th>FD-clf</th><th>class consistency</th><th>precision</th>"
       "<th>recall</th><th>density</th><th>coverage</th><th>D(real)</th><th>D(fake)</th></tr>";
  for (const auto& e : evals)
    h += "<tr><td>" + num(static_cast<double>(e.step), "%.0f") + "</td><td>" + num(e.epoch_fraction, "%.2f") +
         "</td><td>" + num(e.fd_clf) + "</td><td>" +
         (e.class_consistency ? num(*e.class_consistency * 100, "%.1f") + " %" : std::string("–")) + "</td><td>" +
         num(e.precision, "%.3f") + "</td><td>" + num(e.recall, "%.3f") + "</td><td>" + num(e.density, "%.3f") +
         "</td><td>" + num(e.coverage, "%.3f") + "</td><td>" + num(e.d_real, "%.3f") + "</td><td>" +
         num(e.d_fake, "%.3f") + "</td></tr>";
  h += "</table>\n";
  return h;
}

/// The sample grids, newest first, as data: URIs, and which class each row shows when the run has classes.
std::string samples_section(const ReportInfo& info, const std::vector<ReportImage>& images) {
  std::string h = "<h2>Samples (fixed noise" + std::string(info.class_names.empty() ? "" : ", one row per class") +
                  ")</h2><div class=\"samples\">";
  for (auto it = images.rbegin(); it != images.rend(); ++it)  // newest first
    h += "<figure><img alt=\"" + escape(it->caption) + "\" src=\"data:image/png;base64," + base64(it->png) +
         "\"><figcaption>" + escape(it->caption) + "</figcaption></figure>";
  if (images.empty()) h += "<p>no samples yet</p>";
  h += "</div>\n";
  if (!info.class_names.empty()) {
    std::string names;
    for (std::size_t i = 0; i < info.class_names.size(); ++i)
      names += (i ? ", " : "") + num(static_cast<double>(i), "%.0f") + " " + escape(info.class_names[i]);
    h += "<p class=\"muted\">Rows: " + names + "</p>\n";
  }
  return h;
}

}  // namespace

std::string base64(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    for (int s : {18, 12, 6, 0}) out += alphabet[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string render_report(const ReportInfo& info, const std::vector<MetricsRow>& rows,
                          const std::vector<EvalRow>& evals, const std::vector<ReportImage>& images) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>shardgan report: " + escape(info.title) +
      "</title><style>" + kStyle + "</style></head><body>\n";
  h += "<h1>shardgan run report: " + escape(info.title) + "</h1>\n";
  h += "<p class=\"muted\">Written by shardgan-train at every sample time; self-contained (opens offline).</p>\n";
  h += summary_section(info, rows, evals);
  h += curves_section(rows, evals);
  h += metrics_section(evals);
  h += samples_section(info, images);
  h += "<h2>Configuration (resolved)</h2><pre>" + escape(info.config_toml) + "</pre>\n</body></html>\n";
  return h;
}

}  // namespace shardgan::report
