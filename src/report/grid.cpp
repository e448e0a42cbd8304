#include "report/grid.hpp"

#include <algorithm>

#include "model/image_tensor.hpp"

namespace shardgan::report {

Image make_grid(const torch::Tensor& images, int64_t columns) {
  const torch::Tensor cpu = model::to_uint8_images(images);
  const int64_t n = cpu.size(0), h = cpu.size(1), w = cpu.size(2), c = cpu.size(3);
  const int64_t cols = std::max<int64_t>(1, std::min(columns, n));
  const int64_t rows = (n + cols - 1) / cols;
  const int gap = 2;
  Image grid(static_cast<int>(cols * (w + gap) + gap), static_cast<int>(rows * (h + gap) + gap), static_cast<int>(c),
             255);
  const uint8_t* src = cpu.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t x0 = gap + (i % cols) * (w + gap), y0 = gap + (i / cols) * (h + gap);
    for (int64_t y = 0; y < h; ++y)
      std::copy_n(src + ((i * h + y) * w) * c, w * c, grid.at(static_cast<int>(x0), static_cast<int>(y0 + y)));
  }
  return grid;
}

}  // namespace shardgan::report
