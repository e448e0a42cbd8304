// Compiled when LibTorch has CUDA (CMake: TORCH_CUDA_LIBRARIES); cuda_graph_none.cpp stands in otherwise.
#include "parallel/cuda_graph.hpp"

#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <map>
#include <mutex>

#include "util/error.hpp"

namespace shardgan::parallel {
namespace {

/// The device's graph stream: a capture needs a stream other than the legacy default one. Every graph's warm-up and
/// capture use it, so that what is initialised per stream (cuBLAS's workspace) and what records its stream
/// (autograd's gradient accumulators, see on_graph_stream) are on the stream of the capture.
c10::cuda::CUDAStream graph_stream(c10::DeviceIndex device) {
  static std::mutex mutex;
  static std::map<c10::DeviceIndex, c10::cuda::CUDAStream> streams;
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = streams.find(device);
  if (it == streams.end())
    it = streams.emplace(device, c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device)).first;
  return it->second;
}

class CudaGraph final : public StepGraph {
 public:
  explicit CudaGraph(int device) : device_(device) {}

  void warm_up(const std::function<void()>& body) override { on_graph_stream(device_, body); }

  void capture(const std::function<void()>& body) override {
    if (captured_) fail("StepGraph::capture: already captured");
    on_graph_stream(device_, [&] {
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
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
    graph_.replay();
  }

 private:
  int device_;
  at::cuda::CUDAGraph graph_;
  bool captured_ = false;
};

}  // namespace

std::unique_ptr<StepGraph> make_cuda_graph(int device) {
  return std::make_unique<CudaGraph>(device);
}

/// `body` on the graph stream, after the work queued on the current stream and before what is queued there next.
void on_graph_stream(int device, const std::function<void()>& body) {
  const auto index = static_cast<c10::DeviceIndex>(device);
  c10::cuda::CUDAGuard guard(index);
  const c10::cuda::CUDAStream ambient = c10::cuda::getCurrentCUDAStream(index), stream = graph_stream(index);
  at::cuda::CUDAEvent before, after;
  before.record(ambient);
  before.block(stream);
  {
    c10::cuda::CUDAStreamGuard on_stream(stream);
    body();
  }
  after.record(stream);
  after.block(ambient);
}

}  // namespace shardgan::parallel
