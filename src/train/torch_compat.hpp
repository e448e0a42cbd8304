#pragma once
// The one place where the LibTorch versions we build against differ for us: 1.13 (Debian 12, CPU), 2.6 (Debian 13,
// CPU and CUDA: the CI legs) and 2.x wheels up to 2.11 (the GPU machine's). The autocast API became device-generic
// in 2.4 (set_autocast_enabled(device, on), set_autocast_dtype(device, dtype)); 1.13 … 2.3 have one call per device
// kind. CPU autocast to float16 exists from 2.4 on as well (checked on 2.6: conv, transposed conv and linear run in
// half precision); before it, fp16 needs CUDA.
#include <ATen/autocast_mode.h>
#include <torch/nn/module.h>
#include <torch/version.h>

#define SHARDGAN_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace shardgan::train {

/// Whether this LibTorch can autocast CPU operations to float16 (runtime.precision = "fp16" on CPU).
inline constexpr bool kCpuFp16Autocast = SHARDGAN_TORCH_AT_LEAST(2, 4);

/// Turns autocast on for `device` with `dtype` while alive (bf16 on CPU or CUDA; fp16 on CUDA).
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, c10::DeviceType device, at::ScalarType dtype) : enabled_(enabled), device_(device) {
    if (!enabled_) return;
#if SHARDGAN_TORCH_AT_LEAST(2, 4)
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
#if SHARDGAN_TORCH_AT_LEAST(2, 4)
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

/// Whether CPU operations are being autocast to bfloat16 right now.
inline bool cpu_autocast_to_bf16() {
#if SHARDGAN_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(c10::DeviceType::CPU) &&
         at::autocast::get_autocast_dtype(c10::DeviceType::CPU) == at::kBFloat16;
#else
  return at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
#endif
}

/// Clears `module`'s gradients as zero_grad(set_to_none = true) would, the same in LibTorch 1.13 and 2.x, and safe
/// when .grad is a view of a GradSync bucket (1.13's zero_grad would detach_ it in place, which views refuse).
inline void clear_gradients(torch::nn::Module& module) {
  for (auto& p : module.parameters()) p.mutable_grad() = at::Tensor();
}

}  // namespace shardgan::train
