#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "util/png.hpp"

namespace shardgan::report {

struct Series {
  std::string name;
  uint8_t color[3];  // RGB
  std::vector<double> x;
  std::vector<double> y;
};

/// Renders line series on shared axes into an RGB image (white background), drawn with OpenCV (core + imgproc):
/// anti-aliased curves, a framed plot area with a light grid at "nice" ticks (1, 2 or 5 × 10^k) and their values,
/// `x_label` under the x axis, and a legend above the plot area with each series' colour, name and last finite
/// value. Points whose x or y is NaN, ±inf or beyond ±1e300 are skipped (the curve breaks there; a point left alone
/// is drawn as a dot); with no point at all the axes span [0, 1] and say "no data yet". Text in OpenCV's Hershey
/// font. Throws std::invalid_argument unless width and height are positive. Used for losses.png (write_png).
Image plot_series(const std::vector<Series>& series, const std::string& x_label, int width = 800, int height = 400);

}  // namespace shardgan::report
