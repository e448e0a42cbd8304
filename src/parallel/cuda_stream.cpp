// Compiled when LibTorch has CUDA (CMake: TORCH_CUDA_LIBRARIES); cuda_stream_none.cpp stands in otherwise.
#include "parallel/cuda_stream.hpp"

#include <c10/cuda/CUDAStream.h>

namespace shardgan::parallel {

comm::StreamSource current_cuda_stream(int device) {
  return
      [device]() -> void* { return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream(); };
}

}  // namespace shardgan::parallel
