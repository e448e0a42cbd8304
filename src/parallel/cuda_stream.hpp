#pragma once
#include "comm/communicator.hpp"

namespace shardgan::parallel {

/// LibTorch's current CUDA stream on `device`, looked up at each call (it changes under CUDA graph capture and stream
/// guards): what the NCCL communicator orders its work against. Empty (the legacy default stream) when LibTorch was
/// built without CUDA.
comm::StreamSource current_cuda_stream(int device);

}  // namespace shardgan::parallel
