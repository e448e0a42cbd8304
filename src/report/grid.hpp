#pragma once
#include <torch/types.h>

#include "util/png.hpp"

namespace shardgan::report {

/// Tiles images [N, C, H, W] in [-1, 1] into one grid image, `columns` per row, 2 px gaps on white.
Image make_grid(const torch::Tensor& images, int64_t columns);

}  // namespace shardgan::report
