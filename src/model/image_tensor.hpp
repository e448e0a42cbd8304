#pragma once
// The two image representations and the one conversion each way: uint8 NHWC (as shards store them, and as PNG and
// HDF5 outputs want them) and float32 NCHW in [-1, 1] (what the models take and make: x / 127.5 − 1).
#include <torch/nn/module.h>
#include <torch/types.h>

namespace shardgan::model {

/// uint8 [N, H, W, C] → float32 [N, C, H, W] in [-1, 1] on `device` (copied there as uint8: 4× less traffic, and
/// asynchronously when `uint8_nhwc` is in pinned memory). `channels_last`: the result in channels-last layout, which
/// is the NHWC bytes as they are (no transposing copy).
torch::Tensor to_model_images(const torch::Tensor& uint8_nhwc, torch::Device device = torch::kCPU,
                              bool channels_last = false);

/// Puts every 4-D parameter and buffer of `module` into channels-last layout (runtime.channels_last), before an
/// optimiser is made for it.
void to_channels_last(torch::nn::Module& module);

/// Images [N, C, H, W] in [-1, 1] (any float type, any device) → uint8 [N, H, W, C] on the CPU, rounded and clamped.
torch::Tensor to_uint8_images(const torch::Tensor& model_images);

}  // namespace shardgan::model
