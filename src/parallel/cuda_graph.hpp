#pragma once
#include <functional>
#include <memory>

namespace shardgan::parallel {

/// A recorded piece of device work, replayed with one launch: the kernels, their arguments and their memory are those
/// of the capture, so everything the work reads or writes must stay at the same addresses between replays (static
/// inputs copied in, outputs read from the same tensors), and nothing in it may decide on the host.
class StepGraph {
 public:
  virtual ~StepGraph() = default;
  /// Runs `body` eagerly where it will be captured (the warm-up a capture needs first: lazy initialisations, the
  /// cuBLAS workspace of the capture stream, NCCL's connections), ordered after the work queued so far on LibTorch's
  /// current stream and before what is queued there later.
  virtual void warm_up(const std::function<void()>& body) = 0;
  /// Records `body` once (nothing runs: replay runs it).
  virtual void capture(const std::function<void()>& body) = 0;
  /// Runs the recorded work on LibTorch's current stream.
  virtual void replay() = 0;
};

/// A CUDA graph on CUDA device `device` (at::cuda::CUDAGraph, warmed up and captured on the device's graph stream,
/// with LibTorch's graph-safe random numbers: dropout in a replay draws from the generator's seed and offset at that
/// replay). Fails when LibTorch was built without CUDA.
std::unique_ptr<StepGraph> make_cuda_graph(int device);

/// Runs `body` with LibTorch's current stream set to the stream every graph on `device` is warmed up and captured on
/// (one per device). What remembers the stream it was made on must be made there to be captured: autograd's gradient
/// accumulators record it, and GradSync keeps them (with its hooks) — made on the default stream, a captured
/// backward would order the accumulation, and GradSync's all-reduces, against the legacy stream, which a capture
/// forbids. (PyTorch asks the same of DistributedDataParallel under CUDA graphs.) Fails when LibTorch was built without
/// CUDA.
void on_graph_stream(int device, const std::function<void()>& body);

/// The same interface without a GPU, for tests of the code around a graph on the CPU: `capture` keeps `body` and
/// every `replay` runs it again. It checks the wiring (static inputs, outputs, optimiser state), not capturability.
std::unique_ptr<StepGraph> make_emulated_graph();

}  // namespace shardgan::parallel
