#include "report/plot.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace shardgan::report {
namespace {

// The canvas wraps the Image's RGB buffer, so a cv::Scalar is (R, G, B) here.
const cv::Scalar kGrid(232, 232, 232), kFrame(110, 110, 110), kText(40, 40, 40), kMuted(120, 120, 120);
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kTickScale = 0.4, kTextScale = 0.45;
constexpr int kShift = 4;         // curves' fractional bits: points at 1/16 px
constexpr double kLimit = 1e300;  // values beyond are skipped like NaN (spans of them would overflow)
constexpr int kTickLength = 4;

bool usable(double v) {
  return std::isfinite(v) && std::abs(v) <= kLimit;
}

struct Range {
  double lo = INFINITY, hi = -INFINITY;
  void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
  bool empty() const { return lo > hi; }
  double span() const { return hi - lo; }
};

/// A range of zero width (one value, a constant series), or narrower than a millionth of its values (more digits
/// than a tick label shows), becomes 10% of the values' magnitude (or 1 at 0) either side of its middle.
void widen_if_flat(Range& r) {
  const double magnitude = std::max(std::abs(r.lo), std::abs(r.hi));
  if (r.span() > 0 && r.span() >= magnitude * 1e-6) return;
  const double mid = r.lo / 2 + r.hi / 2, half = magnitude > 0 ? magnitude * 0.1 : 1.0;
  r.lo = mid - half, r.hi = mid + half;
}

struct Ticks {
  double step = 1;
  std::vector<double> at;
};

/// About `target` ticks at multiples of 1, 2 or 5 × 10^k within [lo, hi].
Ticks nice_ticks(const Range& r, int target) {
  const double raw = r.span() / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  Ticks t;
  t.step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  const double first = std::ceil(r.lo / t.step - 1e-9);
  for (int i = 0; i < 50; ++i) {
    const double v = (first + i) * t.step;
    if (v > r.hi + t.step * 1e-9) break;
    t.at.push_back(std::abs(v) < t.step * 1e-9 ? 0.0 : v);  // no "-0"
  }
  return t;
}

/// A tick's value with as many decimals as the step needs (0.25 steps: 2), or in %g form for huge or tiny steps.
std::string tick_label(double v, double step) {
  char s[48];
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  if (std::abs(v) >= 1e7 || decimals > 6)
    std::snprintf(s, sizeof(s), "%.4g", v);
  else
    std::snprintf(s, sizeof(s), "%.*f", decimals, v);
  return s;
}

/// A legend value: whole numbers (steps) in full, others with 4 significant digits.
std::string value_label(double v) {
  char s[48];
  if (v == std::trunc(v) && std::abs(v) < 1e15)
    std::snprintf(s, sizeof(s), "%.0f", v + 0.0);
  else
    std::snprintf(s, sizeof(s), "%.4g", v);
  return s;
}

cv::Size text_size(const std::string& s, double scale, int* baseline = nullptr) {
  int b = 0;
  const cv::Size size = cv::getTextSize(s, kFont, scale, 1, &b);
  if (baseline != nullptr) *baseline = b;
  return size;
}

/// Draws `s` with its left end at x and its vertical centre (of the capitals' height) at y_mid.
void text(cv::Mat& canvas, const std::string& s, int x, int y_mid, double scale, const cv::Scalar& colour) {
  cv::putText(canvas, s, cv::Point(x, y_mid + text_size(s, scale).height / 2), kFont, scale, colour, 1, cv::LINE_AA);
}

cv::Scalar rgb(const uint8_t* c) {
  return cv::Scalar(c[0], c[1], c[2]);
}

struct LegendEntry {
  const Series* series;
  std::string name, detail;
  int width;
};

constexpr int kPad = 10, kSample = 22;  // the image's edges to the text, a legend entry's colour sample

int fixed(double v) {
  return static_cast<int>(std::lround(v * (1 << kShift)));
}

/// Where everything goes: both axes' ranges and ticks, the plot area's edges, and the legend's rows above it.
struct Layout {
  Range xr, yr;
  bool no_data = false;
  Ticks xt, yt;
  int row_height = 0, tick_h = 0, label_h = 0;
  int left = 0, top = 0, bottom = 0, plot_w = 1, plot_h = 1;
  std::vector<std::vector<const LegendEntry*>> rows;

  double fx(double x) const { return left + (x - xr.lo) / xr.span() * plot_w; }
  double fy(double y) const { return bottom - (y - yr.lo) / yr.span() * plot_h; }
};

/// The ranges of the usable points ([0, 1] each with none), widened if flat, with margins of 2% of x and 6% of y.
void fit_ranges(Layout& l, const std::vector<Series>& series) {
  for (const auto& s : series)
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (usable(s.x[i]) && usable(s.y[i])) l.xr.add(s.x[i]), l.yr.add(s.y[i]);
  l.no_data = l.xr.empty();
  if (l.no_data) l.xr = {0, 1}, l.yr = {0, 1};
  widen_if_flat(l.xr);
  widen_if_flat(l.yr);
  if (!l.no_data) {  // margins: 2% of x, 6% of y, so that curves keep clear of the frame
    const double px = l.xr.span() * 0.02, py = l.yr.span() * 0.06;
    l.xr.lo -= px, l.xr.hi += px, l.yr.lo -= py, l.yr.hi += py;
  }
}

/// The legend's entries, one per series: colour sample, name, last finite value (or "(no data)"), and their width.
std::vector<LegendEntry> legend_entries(const std::vector<Series>& series, const std::string& x_label) {
  std::vector<LegendEntry> legend;
  for (const auto& s : series) {
    std::string detail = "(no data)";
    for (std::size_t i = std::min(s.x.size(), s.y.size()); i-- > 0;)
      if (usable(s.x[i]) && usable(s.y[i])) {
        detail = value_label(s.y[i]) + " at " + (x_label.empty() ? "x" : x_label) + " " + value_label(s.x[i]);
        break;
      }
    const int w = kSample + 6 + text_size(s.name, kTextScale).width + 8 + text_size(detail, kTickScale).width;
    legend.push_back({&s, s.name, detail, w});
  }
  return legend;
}

/// The layout of a width × height image of `series`, with `legend` (which the rows point into) above the plot area.
Layout layout(const std::vector<Series>& series, const std::vector<LegendEntry>& legend, const std::string& x_label,
              int width, int height) {
  Layout l;
  fit_ranges(l, series);
  l.row_height = text_size("Ag", kTextScale).height + 12;
  // Margins from the labels' sizes: the y ticks' widest label on the left, half the x ticks' widest on the right
  // (the last one is centred on the frame's edge at most), the x ticks and x_label below.
  l.tick_h = text_size("0", kTickScale).height, l.label_h = text_size("Ag", kTextScale).height;
  const int bottom_margin = kTickLength + 6 + l.tick_h + (x_label.empty() ? 6 : 10 + l.label_h + 8);
  l.yt = nice_ticks(l.yr, std::clamp((height - kPad - l.row_height - bottom_margin) / 55, 2, 8));
  int y_label_w = 0;
  for (double v : l.yt.at) y_label_w = std::max(y_label_w, text_size(tick_label(v, l.yt.step), kTickScale).width);
  l.left = kPad + y_label_w + 6 + kTickLength;
  const int x_target = std::clamp((width - l.left - kPad) / 110, 2, 10);
  l.xt = nice_ticks(l.xr, x_target);
  int x_label_w = 0;
  for (double v : l.xt.at) x_label_w = std::max(x_label_w, text_size(tick_label(v, l.xt.step), kTickScale).width);
  const int right = width - std::max(kPad + 4, x_label_w / 2 + 6);

  // Legend rows, now that the plot area's left edge is known: entries flow onto more rows if needed.
  l.rows.resize(1);
  for (int x = l.left; const auto& e : legend) {
    if (x + e.width > right && !l.rows.back().empty()) l.rows.emplace_back(), x = l.left;
    l.rows.back().push_back(&e);
    x += e.width + 24;
  }
  l.top = kPad + static_cast<int>(l.rows.size()) * l.row_height + 4;
  l.bottom = height - bottom_margin;
  l.plot_w = std::max(1, right - l.left), l.plot_h = std::max(1, l.bottom - l.top);
  return l;
}

/// The grid with the ticks and their values, `x_label` under the x axis, and "no data yet" when there is none.
void draw_axes(cv::Mat& canvas, const Layout& l, const std::string& x_label) {
  for (double v : l.yt.at) {
    const int y = static_cast<int>(std::lround(l.fy(v)));
    cv::line(canvas, {l.left, y}, {l.left + l.plot_w, y}, kGrid, 1, cv::LINE_8);
    cv::line(canvas, {l.left - kTickLength, y}, {l.left, y}, kFrame, 1, cv::LINE_8);
    const std::string s = tick_label(v, l.yt.step);
    text(canvas, s, l.left - kTickLength - 4 - text_size(s, kTickScale).width, y, kTickScale, kText);
  }
  int last_label_end = -1000000;
  for (double v : l.xt.at) {
    const int x = static_cast<int>(std::lround(l.fx(v)));
    cv::line(canvas, {x, l.top}, {x, l.bottom}, kGrid, 1, cv::LINE_8);
    cv::line(canvas, {x, l.bottom}, {x, l.bottom + kTickLength}, kFrame, 1, cv::LINE_8);
    const std::string s = tick_label(v, l.xt.step);
    const int w = text_size(s, kTickScale).width, x0 = x - w / 2;
    if (x0 < last_label_end + 8) continue;  // would touch the previous label
    text(canvas, s, x0, l.bottom + kTickLength + 6 + l.tick_h / 2, kTickScale, kText);
    last_label_end = x0 + w;
  }
  if (!x_label.empty()) {
    const int w = text_size(x_label, kTextScale).width;
    text(canvas, x_label, l.left + l.plot_w / 2 - w / 2, l.bottom + kTickLength + 6 + l.tick_h + 10 + l.label_h / 2,
         kTextScale, kText);
  }
  if (l.no_data) {
    const std::string s = "no data yet";
    text(canvas, s, l.left + l.plot_w / 2 - text_size(s, kTextScale).width / 2, l.top + l.plot_h / 2, kTextScale,
         kMuted);
  }
}

/// Curves: anti-aliased, each run of usable points one polyline, a point alone a dot. 2 px wide, 1 px where a series
/// has more points than the plot is wide (a noisy 2 px curve would be a solid band).
void draw_curves(cv::Mat& canvas, const std::vector<Series>& series, const Layout& l) {
  for (const auto& s : series) {
    const cv::Scalar colour = rgb(s.color);
    const int thickness = std::min(s.x.size(), s.y.size()) > static_cast<std::size_t>(l.plot_w) ? 1 : 2;
    std::vector<cv::Point> run;
    auto flush = [&] {
      if (run.size() == 1)
        cv::circle(canvas, run[0], 3 << kShift, colour, cv::FILLED, cv::LINE_AA, kShift);
      else if (run.size() > 1)
        cv::polylines(canvas, run, false, colour, thickness, cv::LINE_AA, kShift);
      run.clear();
    };
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (usable(s.x[i]) && usable(s.y[i]))
        run.emplace_back(fixed(l.fx(s.x[i])), fixed(l.fy(s.y[i])));
      else
        flush();
    }
    flush();
  }
}

/// The legend, above the plot area: each entry's colour sample, name and last finite value, row by row.
void draw_legend(cv::Mat& canvas, const Layout& l) {
  for (std::size_t r = 0; r < l.rows.size(); ++r) {
    const int y = kPad + static_cast<int>(r) * l.row_height + l.row_height / 2;
    int x = l.left;
    for (const LegendEntry* e : l.rows[r]) {
      cv::line(canvas, cv::Point(fixed(x), fixed(y)), cv::Point(fixed(x + kSample), fixed(y)), rgb(e->series->color), 2,
               cv::LINE_AA, kShift);
      int tx = x + kSample + 6;
      text(canvas, e->name, tx, y, kTextScale, kText);
      tx += text_size(e->name, kTextScale).width + 8;
      text(canvas, e->detail, tx, y, kTickScale, kMuted);
      x += e->width + 24;
    }
  }
}

}  // namespace

Image plot_series(const std::vector<Series>& series, const std::string& x_label, int width, int height) {
  if (width <= 0 || height <= 0) throw std::invalid_argument("plot_series: the image size must be positive");
  Image img(width, height, 3, 255);
  cv::Mat canvas(height, width, CV_8UC3, img.pixels.data());
  const std::vector<LegendEntry> legend = legend_entries(series, x_label);
  const Layout l = layout(series, legend, x_label, width, height);
  draw_axes(canvas, l, x_label);
  draw_curves(canvas, series, l);
  cv::rectangle(canvas, {l.left, l.top}, {l.left + l.plot_w, l.bottom}, kFrame, 1, cv::LINE_8);
  draw_legend(canvas, l);
  return img;
}

}  // namespace shardgan::report
