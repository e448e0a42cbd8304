#include "model/image_tensor.hpp"

#include <torch/torch.h>

namespace shardgan::model {

torch::Tensor to_model_images(const torch::Tensor& uint8_nhwc, torch::Device device, bool channels_last) {
  // The permuted view is NCHW with NHWC strides: channels-last already, or made NCHW-contiguous.
  const torch::Tensor nchw = uint8_nhwc.to(device, torch::kUInt8, /*non_blocking=*/true).permute({0, 3, 1, 2});
  return nchw.contiguous(channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous)
      .to(torch::kFloat32)
      .mul_(1.0f / 127.5f)
      .sub_(1.0f);
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& t : module.parameters())
    if (t.dim() == 4) t.set_data(t.contiguous(at::MemoryFormat::ChannelsLast));
  for (auto& t : module.buffers())
    if (t.dim() == 4) t.set_data(t.contiguous(at::MemoryFormat::ChannelsLast));
}

torch::Tensor to_uint8_images(const torch::Tensor& model_images) {
  return ((model_images.detach().to(torch::kCPU, torch::kFloat32) + 1) * 127.5)
      .round()
      .clamp(0, 255)
      .to(torch::kUInt8)
      .permute({0, 2, 3, 1})
      .contiguous();
}

}  // namespace shardgan::model
