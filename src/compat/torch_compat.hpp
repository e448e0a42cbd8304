#pragma once
// The one place where the LibTorch versions we build against differ for us: 1.13 (Debian 12, CPU), 2.6 (Debian 13,
// CPU) and the PyTorch wheels (2.11, the GPU machine's, and the newest pinned in tests/legs/wheel.sh). It sits below
// model/ and train/ (both use it) and includes nothing of shardgan's. The autocast API became device-generic
// in 2.4 (set_autocast_enabled(device, on), set_autocast_dtype(device, dtype)); 1.13 … 2.3 have one call per device
// kind. CPU autocast to float16 exists from 2.4 on as well (checked on 2.6: conv, transposed conv and linear run in
// half precision); before it, fp16 needs CUDA.
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/nn/module.h>
#include <torch/version.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#define SHARDGAN_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace shardgan::compat {

/// What autograd hands out for a parameter's gradient accumulator (to add hooks to and to keep it alive):
/// std::shared_ptr<Node> up to 2.11, c10::intrusive_ptr<Node> in 2.15 (Node became an intrusive_ptr_target).
using GradAccumulatorPtr =
    decltype(torch::autograd::impl::grad_accumulator(std::declval<const torch::autograd::Variable&>()));

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

/// What LibTorch demands of the environment rather than of the code: with deterministic algorithms on, a cuBLAS GEMM
/// on CUDA (10.2 and later) raises an error unless CUBLAS_WORKSPACE_CONFIG is exactly ":4096:8" or ":16:8" (LibTorch
/// 1.13 to 2.x alike), and cuBLAS reads it when the first handle is made. Returns the value to set before CUDA starts,
/// or nothing when the variable is to stay as it is: a valid value of the user's is kept, an absent or other one
/// becomes ":4096:8" (LibTorch's suggestion; ":16:8" saves memory at some speed). `current`: the variable's value
/// (nullptr: unset).
inline std::optional<std::string> deterministic_cublas_workspace(bool deterministic, bool may_use_cuda,
                                                                 const char* current) {
  if (!deterministic || !may_use_cuda) return std::nullopt;
  if (current != nullptr && (std::string_view(current) == ":4096:8" || std::string_view(current) == ":16:8"))
    return std::nullopt;
  return std::string(":4096:8");
}

}  // namespace shardgan::compat
