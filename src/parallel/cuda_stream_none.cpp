// Compiled when LibTorch has no CUDA: there is no LibTorch stream to follow.
#include "parallel/cuda_stream.hpp"

namespace shardgan::parallel {

comm::StreamSource current_cuda_stream(int) {
  return {};
}

}  // namespace shardgan::parallel
