#include "report/plot.hpp"

#include "report/font.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace shardgan::report {
namespace {

void set(Image& img, int x, int y, const uint8_t* c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  std::copy_n(c, 3, img.at(x, y));
}

void line(Image& img, int x0, int y0, int x1, int y1, const uint8_t* c) {
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  while (true) {
    set(img, x0, y0, c);
    set(img, x0, y0 + 1, c);  // 2 px thick
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

std::string number(double v) {
  char s[32];
  std::snprintf(s, sizeof(s), "%.3g", v);
  return s;
}

}  // namespace

Image plot_series(const std::vector<Series>& series, const std::string& x_label, int width, int height) {
  Image img(width, height, 3, 255);
  const int left = 60, right = width - 15, top = 25, bottom = height - 35;
  double x_min = INFINITY, x_max = -INFINITY, y_min = INFINITY, y_max = -INFINITY;
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x_min = std::min(x_min, s.x[i]), x_max = std::max(x_max, s.x[i]);
      y_min = std::min(y_min, s.y[i]), y_max = std::max(y_max, s.y[i]);
    }
  if (!std::isfinite(x_min)) x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  if (x_max == x_min) x_max = x_min + 1;
  if (y_max == y_min) y_max = y_min + 1;
  const double pad = 0.05 * (y_max - y_min);
  y_min -= pad, y_max += pad;
  auto px = [&](double x) { return left + static_cast<int>((x - x_min) / (x_max - x_min) * (right - left)); };
  auto py = [&](double y) { return bottom - static_cast<int>((y - y_min) / (y_max - y_min) * (bottom - top)); };

  const uint8_t grid[3] = {225, 225, 225}, axis[3] = {60, 60, 60};
  for (int k = 0; k <= 5; ++k) {
    const double yv = y_min + k * (y_max - y_min) / 5, xv = x_min + k * (x_max - x_min) / 5;
    for (int x = left; x <= right; ++x) set(img, x, py(yv), grid);
    for (int y = top; y <= bottom; ++y) set(img, px(xv), y, grid);
    const std::string ys = number(yv), xs = number(xv);
    draw_text(img, left - 6 - 6 * static_cast<int>(ys.size()), py(yv) - 3, ys, axis);
    draw_text(img, px(xv) - 3 * static_cast<int>(xs.size()), bottom + 6, xs, axis);
  }
  for (int x = left; x <= right; ++x) set(img, x, bottom, axis);
  for (int y = top; y <= bottom; ++y) set(img, left, y, axis);
  draw_text(img, (left + right) / 2 - 3 * static_cast<int>(x_label.size()), bottom + 20, x_label, axis);

  int legend_x = left + 10;
  for (const auto& s : series) {
    for (std::size_t i = 1; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i - 1]) && std::isfinite(s.y[i]))
        line(img, px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), s.color);
    for (int k = 0; k < 16; ++k) set(img, legend_x + k, 10, s.color), set(img, legend_x + k, 11, s.color);
    draw_text(img, legend_x + 20, 7, s.name, s.color);
    legend_x += 30 + 6 * static_cast<int>(s.name.size()) + 20;
  }
  return img;
}

}  // namespace shardgan::report
