#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace shardgan {

/// An 8-bit image in memory, row-major, interleaved channels (1 = grey, 3 = RGB).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;
  Image() = default;
  Image(int w, int h, int c, uint8_t fill = 0)
      : width(w), height(h), channels(c), pixels(static_cast<std::size_t>(w) * h * c, fill) {}
  uint8_t* at(int x, int y) { return pixels.data() + (static_cast<std::size_t>(y) * width + x) * channels; }
};

/// Writes `image` as PNG (libpng), atomically: to a temporary name beside `file`, then renamed. Returns the PNG bytes
/// written (for TensorBoard's image events: encoded once).
std::string write_png(const std::filesystem::path& file, const Image& image);
/// Reads a PNG written by write_png (for tests and tools).
Image read_png(const std::filesystem::path& file);

}  // namespace shardgan
