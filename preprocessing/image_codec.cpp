#include "image_codec.hpp"

#include <turbojpeg.h>

#include <algorithm>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "util/error.hpp"

namespace shardgan::pack {

JpegResizer::JpegResizer() : handle_(tjInitDecompress()) {
  if (handle_ == nullptr) fail("cannot create a JPEG decoder: ", tjGetErrorStr2(nullptr));
}

JpegResizer::~JpegResizer() { tjDestroy(handle_); }

void JpegResizer::decode(const std::vector<uint8_t>& jpeg, int size, Crop crop, uint8_t* out, bool dct_scaling) {
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (jpeg.empty()) fail("corrupt JPEG: empty file");
  if (tjDecompressHeader3(handle_, jpeg.data(), jpeg.size(), &width, &height, &subsampling, &colorspace) != 0)
    fail("corrupt JPEG: ", tjGetErrorStr2(handle_));
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

  cv::Mat image(scaled_h, scaled_w, CV_8UC3, buffer_.data());
  if (crop == Crop::kCenter) {
    const int s = std::min(scaled_w, scaled_h);
    image = image(cv::Rect((scaled_w - s) / 2, (scaled_h - s) / 2, s, s));
  }
  cv::Mat target(size, size, CV_8UC3, out);
  cv::resize(image, target, target.size(), 0, 0, cv::INTER_AREA);
}

}  // namespace shardgan::pack
