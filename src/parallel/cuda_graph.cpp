// Compiled when LibTorch has CUDA (CMake: TORCH_CUDA_LIBRARIES); cuda_graph_none.cpp stands in otherwise.
#include "parallel/cuda_graph.hpp"

#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "util/error.hpp"

namespace shardgan::parallel {
namespace {

class CudaGraph final : public StepGraph {
 public:
  explicit CudaGraph(int device)
      : device_(static_cast<c10::DeviceIndex>(device)),
        // A capture needs a stream other than the legacy default one; warm-up and capture share it, so that what
        // the warm-up initialises per stream (cuBLAS's workspace) is there when the capture runs.
        stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_)) {}

  void warm_up(const std::function<void()>& body) override { on_own_stream(body); }

  void capture(const std::function<void()>& body) override {
    if (captured_) fail("StepGraph::capture: already captured");
    on_own_stream([&] {
      graph_.capture_begin();
      try {
        body();
      } catch (...) {
        // End the capture so that the error (not a broken stream) is what the user sees.
        try {
          graph_.capture_end();
        } catch (...) {
        }
        throw;
      }
      graph_.capture_end();
    });
    captured_ = true;
  }

  void replay() override {
    if (!captured_) fail("StepGraph::replay before capture");
    c10::cuda::CUDAGuard guard(device_);
    graph_.replay();
  }

 private:
  /// `body` on the graph's stream, after the work on the current stream and before what is queued there next.
  void on_own_stream(const std::function<void()>& body) {
    c10::cuda::CUDAGuard guard(device_);
    const c10::cuda::CUDAStream ambient = c10::cuda::getCurrentCUDAStream(device_);
    at::cuda::CUDAEvent before, after;
    before.record(ambient);
    before.block(stream_);
    {
      c10::cuda::CUDAStreamGuard on_stream(stream_);
      body();
    }
    after.record(stream_);
    after.block(ambient);
  }

  c10::DeviceIndex device_;
  c10::cuda::CUDAStream stream_;
  at::cuda::CUDAGraph graph_;
  bool captured_ = false;
};

}  // namespace

std::unique_ptr<StepGraph> make_cuda_graph(int device) {
  return std::make_unique<CudaGraph>(device);
}

}  // namespace shardgan::parallel
