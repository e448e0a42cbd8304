#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace shardgan::pack {

enum class Crop { kNone, kCenter };

/// Decodes JPEGs to RGB and resizes them to size×size with area interpolation. One decoder per thread.
/// When the image is much larger than the target, the JPEG is decoded at a reduced scale (1/2, 1/4 or 1/8) in the
/// DCT domain — the decoder then skips most of the inverse DCT work — choosing the smallest scale whose (cropped)
/// image is still at least `size` on each side; area resizing then finishes the job.
class JpegResizer {
 public:
  JpegResizer();
  ~JpegResizer();
  JpegResizer(const JpegResizer&) = delete;
  JpegResizer& operator=(const JpegResizer&) = delete;

  /// Decodes `jpeg` and writes size*size*3 RGB bytes (HWC) to `out`. Throws Error("corrupt JPEG: ...") for
  /// truncated or invalid data (libjpeg warnings count as corruption). `dct_scaling = false` forces a full decode.
  void decode(const std::vector<uint8_t>& jpeg, int size, Crop crop, uint8_t* out, bool dct_scaling = true);

  /// Images of more pixels than this are refused from their header, before anything is decoded or allocated
  /// (shardgan-pack --max-pixels; a JPEG header can declare 65535 x 65535).
  void set_max_pixels(int64_t max_pixels) { max_pixels_ = max_pixels; }
  static constexpr int64_t kDefaultMaxPixels = 100'000'000;

  /// Scale denominator the last decode used (1, 2, 4 or 8).
  int last_scale_denominator() const { return last_denominator_; }

 private:
  void* handle_ = nullptr;
  int64_t max_pixels_ = kDefaultMaxPixels;
  std::vector<uint8_t> buffer_;
  int last_denominator_ = 1;
};

}  // namespace shardgan::pack
