#include "model/image_tensor.hpp"

#include <torch/torch.h>

namespace shardgan::model {

torch::Tensor to_model_images(const torch::Tensor& uint8_nhwc, torch::Device device) {
  return uint8_nhwc.to(device)
      .permute({0, 3, 1, 2})
      .contiguous()  // NCHW, as the models expect (the permuted view has NHWC strides)
      .to(torch::kFloat32)
      .mul_(1.0f / 127.5f)
      .sub_(1.0f);
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
