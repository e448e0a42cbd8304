#include "image_codec.hpp"

#include <turbojpeg.h>

#include <algorithm>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "util/error.hpp"

namespace shardgan::pack {

namespace {

/// For each of `size` output pixels, the (source index, weight) pairs of an area average over the interval
/// [origin + k·extent/size, origin + (k+1)·extent/size) of a source axis with `limit` pixels.
std::vector<std::vector<std::pair<int, double>>> area_weights(double origin, double extent, int size, int limit) {
  std::vector<std::vector<std::pair<int, double>>> weights(static_cast<std::size_t>(size));
  const double step = extent / size;
  for (int k = 0; k < size; ++k) {
    const double a = origin + k * step, b = a + step;
    for (int p = static_cast<int>(a); p < b && p < limit; ++p) {
      const double overlap = std::min<double>(b, p + 1) - std::max<double>(a, p);
      if (overlap > 1e-12) weights[static_cast<std::size_t>(k)].emplace_back(p, overlap / step);
    }
  }
  return weights;
}

}  // namespace

JpegResizer::JpegResizer() : handle_(tjInitDecompress()) {
  if (handle_ == nullptr) fail("cannot create a JPEG decoder: ", tjGetErrorStr2(nullptr));
}

JpegResizer::~JpegResizer() {
  tjDestroy(handle_);
}

void JpegResizer::decode(const std::vector<uint8_t>& jpeg, int size, Crop crop, uint8_t* out, bool dct_scaling) {
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (jpeg.empty()) fail("corrupt JPEG: empty file");
  if (tjDecompressHeader3(handle_, jpeg.data(), jpeg.size(), &width, &height, &subsampling, &colorspace) != 0)
    fail("corrupt JPEG: ", tjGetErrorStr2(handle_));
  if (width < 1 || height < 1) fail("corrupt JPEG: ", width, "x", height, " pixels");
  if (static_cast<int64_t>(width) * height > max_pixels_)
    fail("image is ", width, "x", height, " = ", static_cast<int64_t>(width) * height,
         " pixels, more than --max-pixels ", max_pixels_);
  const int side = crop == Crop::kCenter ? std::min(width, height) : 0;
  const int need_w = crop == Crop::kCenter ? side : width;
  const int need_h = crop == Crop::kCenter ? side : height;

  last_denominator_ = 1;
  if (dct_scaling) {
    for (int denominator : {8, 4, 2}) {
      if (need_w / denominator >= size && need_h / denominator >= size) {
        last_denominator_ = denominator;
        break;
      }
    }
  }
  const tjscalingfactor factor{1, last_denominator_};
  const int scaled_w = TJSCALED(width, factor);
  const int scaled_h = TJSCALED(height, factor);
  buffer_.resize(static_cast<std::size_t>(scaled_w) * scaled_h * 3);
  // Any libjpeg warning (e.g. "Premature end of JPEG file") makes tjDecompress2 return -1: a truncated image is
  // refused rather than packed with grey fill.
  if (tjDecompress2(handle_, jpeg.data(), jpeg.size(), buffer_.data(), scaled_w, 0, scaled_h, TJPF_RGB, 0) != 0)
    fail("corrupt JPEG: ", tjGetErrorStr2(handle_));

  cv::Mat decoded(scaled_h, scaled_w, CV_8UC3, buffer_.data());
  const int x0 = (width - need_w) / 2, y0 = (height - need_h) / 2;
  if (last_denominator_ == 1) {
    cv::Mat target(size, size, CV_8UC3, out);
    cv::resize(decoded(cv::Rect(x0, y0, need_w, need_h)), target, target.size(), 0, 0, cv::INTER_AREA);
    return;
  }
  // A pixel of the 1/d image is the mean of a d×d block of the original. Averaging those block means over each
  // output pixel's exact footprint (in original coordinates, fractional at the edges) reproduces the full-resolution
  // area resize, also when the crop or the image size is not a multiple of d.
  const double d = last_denominator_;
  const auto xw = area_weights(x0 / d, need_w / d, size, scaled_w);
  const auto yw = area_weights(y0 / d, need_h / d, size, scaled_h);
  for (int j = 0; j < size; ++j) {
    for (int i = 0; i < size; ++i) {
      double acc[3] = {0, 0, 0};
      for (const auto& [row, wy] : yw[static_cast<std::size_t>(j)]) {
        const uint8_t* line = buffer_.data() + static_cast<std::size_t>(row) * scaled_w * 3;
        for (const auto& [col, wx] : xw[static_cast<std::size_t>(i)]) {
          const double w = wx * wy;
          for (int c = 0; c < 3; ++c) acc[c] += w * line[3 * col + c];
        }
      }
      uint8_t* px = out + (static_cast<std::size_t>(j) * size + i) * 3;
      for (int c = 0; c < 3; ++c) px[c] = static_cast<uint8_t>(std::clamp(acc[c] + 0.5, 0.0, 255.0));
    }
  }
}

}  // namespace shardgan::pack
