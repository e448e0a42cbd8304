// Compiled when LibTorch has no CUDA.
#include "parallel/cuda_graph.hpp"

#include "util/error.hpp"

namespace shardgan::parallel {

std::unique_ptr<StepGraph> make_cuda_graph(int) {
  fail("runtime.cuda_graphs: this build's LibTorch has no CUDA");
}

void on_graph_stream(int, const std::function<void()>&) {
  fail("runtime.cuda_graphs: this build's LibTorch has no CUDA");
}

}  // namespace shardgan::parallel
