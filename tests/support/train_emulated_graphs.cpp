// shardgan-train's twin for tests: the same command line and run, with runtime.cuda_graphs captured into the CPU
// emulation of a graph (parallel::make_emulated_graph) instead of a CUDA graph, so that the graph path (static inputs,
// warm-up, capture, replay, Adam and loss scaling as device work) runs on a machine without a GPU. The switch is
// injected here, not read from the environment by the product.
#include "apps/train_cli.hpp"
#include "parallel/cuda_graph.hpp"

int main(int argc, char** argv) {
  return shardgan::apps::train_cli(argc, argv, [](int /*device*/) { return shardgan::parallel::make_emulated_graph(); });
}
