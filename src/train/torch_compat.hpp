#pragma once
// The one place where LibTorch 1.13 (Debian, CPU) and LibTorch 2.x (the CUDA wheel on the GPU machine) differ for us.
#include <ATen/autocast_mode.h>
#include <torch/nn/module.h>
#include <torch/version.h>

namespace shardgan::train {

/// Turns autocast on for `device` with `dtype` while alive (bf16 on CPU or CUDA; fp16 on CUDA).
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, c10::DeviceType device, at::ScalarType dtype) : enabled_(enabled), device_(device) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR >= 2
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::set_autocast_dtype(device_, dtype);
#else
    if (device_ == c10::DeviceType::CPU) {
      at::autocast::set_cpu_enabled(true);
      at::autocast::set_autocast_cpu_dtype(dtype);
    } else {
      at::autocast::set_enabled(true);
      at::autocast::set_autocast_gpu_dtype(dtype);
    }
#endif
  }
  ~AutocastGuard() {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR >= 2
    at::autocast::set_autocast_enabled(device_, false);
#else
    if (device_ == c10::DeviceType::CPU) {
      at::autocast::set_cpu_enabled(false);
    } else {
      at::autocast::set_enabled(false);
    }
#endif
    at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  c10::DeviceType device_;
};

/// Clears `module`'s gradients as zero_grad(set_to_none = true) would, the same in LibTorch 1.13 and 2.x, and safe
/// when .grad is a view of a GradSync bucket (1.13's zero_grad would detach_ it in place, which views refuse).
inline void clear_gradients(torch::nn::Module& module) {
  for (auto& p : module.parameters()) p.mutable_grad() = at::Tensor();
}

}  // namespace shardgan::train
