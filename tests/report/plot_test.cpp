#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "basics.hpp"
#include "report/plot.hpp"
#include "util/png.hpp"

namespace shardgan {
namespace {

using report::plot_series;
using report::Series;

constexpr uint8_t kRed[3] = {214, 39, 40}, kBlue[3] = {31, 119, 180};

Series series(const char* name, const uint8_t* colour, std::vector<double> x, std::vector<double> y) {
  return Series{name, {colour[0], colour[1], colour[2]}, std::move(x), std::move(y)};
}

const uint8_t* pixel(const Image& img, int x, int y) {
  return img.pixels.data() + (static_cast<std::size_t>(y) * img.width + x) * img.channels;
}

bool is(const uint8_t* p, const uint8_t* c) {
  return p[0] == c[0] && p[1] == c[1] && p[2] == c[2];
}

/// Pixels exactly of colour `c` whose column is in [x0, x1).
std::vector<std::pair<int, int>> pixels_of(const Image& img, const uint8_t* c, int x0 = 0, int x1 = 1 << 30) {
  std::vector<std::pair<int, int>> at;
  for (int y = 0; y < img.height; ++y)
    for (int x = std::max(0, x0); x < std::min(img.width, x1); ++x)
      if (is(pixel(img, x, y), c)) at.emplace_back(x, y);
  return at;
}

/// Pixels strictly between white and `c` (an anti-aliased edge on the white background): every channel at the
/// same fraction t of the way from 255 to c, 0.15 < t < 0.85.
int blends_of(const Image& img, const uint8_t* c) {
  int n = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = pixel(img, x, y);
      const double t = (255.0 - p[1]) / (255.0 - c[1]);  // green: the channel farthest from white in both colours
      if (t <= 0.15 || t >= 0.85) continue;
      bool on_the_line = true;
      for (int k = 0; k < 3; ++k) on_the_line &= std::abs(p[k] - (255.0 - t * (255.0 - c[k]))) <= 3.0;
      n += on_the_line;
    }
  return n;
}

double mean_row(const std::vector<std::pair<int, int>>& at) {
  double sum = 0;
  for (const auto& [x, y] : at) sum += y;
  return at.empty() ? NAN : sum / static_cast<double>(at.size());
}

int dark_pixels(const Image& img) {
  int n = 0;
  for (std::size_t i = 0; i < img.pixels.size(); i += 3)
    n += img.pixels[i] < 100 && img.pixels[i + 1] < 100 && img.pixels[i + 2] < 100;
  return n;
}

TEST(Plot, CurvesInTheirColoursRiseAndFallAntiAliasedAndTheImageRoundTripsThroughPng) {
  std::vector<double> steps, up, down;
  for (int i = 0; i <= 20; ++i) steps.push_back(100.0 * i), up.push_back(0.05 * i), down.push_back(1 - 0.05 * i);
  const Image img = plot_series({series("d", kRed, steps, up), series("g", kBlue, steps, down)}, "step");
  ASSERT_EQ(img.width, 800);
  ASSERT_EQ(img.height, 400);
  ASSERT_EQ(img.channels, 3);

  testing::TempDir tmp;
  write_png(tmp / "losses.png", img);
  const Image back = read_png(tmp / "losses.png");
  EXPECT_EQ(back.width, 800);
  EXPECT_EQ(back.height, 400);
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(back.pixels, img.pixels);
  EXPECT_TRUE(is(pixel(back, 0, 0), std::array<uint8_t, 3>{255, 255, 255}.data()));  // white background

  // Each curve spans the plot in its exact colour (RGB, not BGR), with anti-aliased edges blending into white.
  EXPECT_GT(pixels_of(back, kRed).size(), 600u);
  EXPECT_GT(pixels_of(back, kBlue).size(), 600u);
  EXPECT_GT(blends_of(back, kRed), 100);
  EXPECT_GT(blends_of(back, kBlue), 100);
  // The right half holds no legend (it is left-aligned and short here): there, the rising curve is in the upper
  // half of the image and the falling one in the lower half.
  const auto red_right = pixels_of(back, kRed, 400), blue_right = pixels_of(back, kBlue, 400);
  ASSERT_GT(red_right.size(), 200u);
  ASSERT_GT(blue_right.size(), 200u);
  EXPECT_LT(mean_row(red_right), 200);
  EXPECT_GT(mean_row(blue_right), 200);
  // The rising curve's right end is its highest point: the last column with red is near its top rows.
  int last_x = 0, last_x_row = 0, top_row = 400;
  for (const auto& [x, y] : red_right) {
    if (x > last_x) last_x = x, last_x_row = y;
    top_row = std::min(top_row, y);
  }
  EXPECT_GT(last_x, 700);
  EXPECT_LE(last_x_row - top_row, 3);
}

TEST(Plot, LabelsAndLegendTextAreDrawnWhereTheyBelong) {
  std::vector<double> steps{0, 10, 20, 30}, loss{0.9, 0.7, 0.8, 0.6};
  // Only x_label differs: it is drawn under the plot, and the legend repeats it ("0.6 at step 30"); the plot area
  // and the y axis' labels in between are the same pixels.
  const Image a = plot_series({series("loss_d", kRed, steps, loss)}, "step");
  const Image b = plot_series({series("loss_d", kRed, steps, loss)}, "epoch");
  int top = 0, middle = 0, bottom = 0;
  for (int y = 0; y < a.height; ++y)
    for (int x = 0; x < a.width; ++x)
      if (!is(pixel(a, x, y), pixel(b, x, y))) (y < 40 ? top : y >= a.height - 40 ? bottom : middle) += 1;
  EXPECT_GT(top, 20);
  EXPECT_GT(bottom, 20);
  EXPECT_EQ(middle, 0);
  // A longer name: more dark text pixels in the legend.
  const Image c = plot_series({series("loss_discriminator", kRed, steps, loss)}, "step");
  EXPECT_GT(dark_pixels(c), dark_pixels(a) + 20);
  // Tick values and frame: plenty of dark pixels even with nothing to plot.
  EXPECT_GT(dark_pixels(plot_series({}, "step")), 200);
}

TEST(Plot, EmptyAndOnePointHistoriesStillMakeAValidImage) {
  testing::TempDir tmp;
  const Image none = plot_series({series("loss_d", kRed, {}, {}), series("loss_g", kBlue, {}, {})}, "step");
  write_png(tmp / "empty.png", none);
  const Image none_back = read_png(tmp / "empty.png");
  EXPECT_EQ(none_back.width, 800);
  EXPECT_EQ(none_back.height, 400);
  EXPECT_GT(dark_pixels(none_back), 500);  // frame, ticks, "no data yet"
  const Image no_series = plot_series({}, "step", 320, 200);
  EXPECT_EQ(no_series.width, 320);
  EXPECT_EQ(no_series.height, 200);
  EXPECT_EQ(no_series.pixels.size(), 320u * 200 * 3);

  // One logged row: each series is a dot, more of its colour than its legend sample alone.
  const Image one = plot_series({series("loss_d", kRed, {10}, {0.69}), series("loss_g", kBlue, {10}, {1.2})}, "step");
  write_png(tmp / "one.png", one);
  const Image one_back = read_png(tmp / "one.png");
  EXPECT_EQ(one_back.pixels, one.pixels);
  EXPECT_GT(pixels_of(one_back, kRed).size(), pixels_of(none_back, kRed).size() + 10);
  EXPECT_GT(pixels_of(one_back, kBlue).size(), pixels_of(none_back, kBlue).size() + 10);
  // The dot of the larger value is above the other one.
  EXPECT_LT(mean_row(pixels_of(one_back, kBlue, 300)), mean_row(pixels_of(one_back, kRed, 300)));

  // A constant series: a flat line, not a division by zero.
  const Image flat = plot_series({series("c", kRed, {0, 1, 2, 3}, {5, 5, 5, 5})}, "step");
  const auto red = pixels_of(flat, kRed, 400);
  ASSERT_GT(red.size(), 100u);
  int lo = 400, hi = 0;
  for (const auto& [x, y] : red) lo = std::min(lo, y), hi = std::max(hi, y);
  EXPECT_LE(hi - lo, 3);
  EXPECT_THROW(plot_series({}, "step", 0, 400), std::invalid_argument);
}

TEST(Plot, NonFiniteAndHugeValuesAreSkippedWithoutSquashingTheScale) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  std::vector<double> steps, loss;
  for (int i = 0; i <= 40; ++i) steps.push_back(i), loss.push_back(0.025 * i);
  for (int i : {3, 11, 12, 25, 33}) loss[i] = nan;
  loss[17] = inf, loss[20] = -inf, loss[30] = 1e308;
  steps[36] = nan;
  const std::vector<Series> all{series("loss_d", kRed, steps, loss),
                                series("loss_g", kBlue, {1, 2, 3}, {nan, inf, -inf}),  // nothing usable
                                series("short_y", kBlue, {1, 2, 3, 4}, {0.5})};        // x and y of unequal length
  Image img;
  ASSERT_NO_THROW(img = plot_series(all, "step"));
  // If a non-finite or 1e308 value took part in the y range, the curve would be squashed flat (or vanish): it still
  // climbs through a good part of the plot's height.
  const auto red = pixels_of(img, kRed, 400);
  ASSERT_GT(red.size(), 200u);
  int lo = 400, hi = 0;
  for (const auto& [x, y] : red) lo = std::min(lo, y), hi = std::max(hi, y);
  EXPECT_GT(hi - lo, 80);
  // Tiny images: no crash, the requested size.
  for (const auto& [w, h] : {std::pair{1, 1}, std::pair{40, 30}, std::pair{120, 60}}) {
    const Image small = plot_series(all, "step", w, h);
    EXPECT_EQ(small.width, w);
    EXPECT_EQ(small.height, h);
  }
}

}  // namespace
}  // namespace shardgan
