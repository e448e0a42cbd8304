#pragma once
#include <string>
#include <vector>

#include "util/png.hpp"

namespace shardgan::report {

struct Series {
  std::string name;
  uint8_t color[3];
  std::vector<double> x;
  std::vector<double> y;
};

/// Renders line series on shared axes into an RGB image: light grid (5 divisions), axis values and series names in
/// a small built-in bitmap font. Used for losses.png.
Image plot_series(const std::vector<Series>& series, const std::string& x_label, int width = 800, int height = 400);

}  // namespace shardgan::report
