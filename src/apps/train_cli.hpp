#pragma once
#include "train/plan.hpp"

namespace shardgan::apps {

/// shardgan-train's command line and run: what main does. `make_graph` is what runtime.cuda_graphs captures into
/// (empty: CUDA graphs); the test build's twin of shardgan-train passes the CPU emulation.
int train_cli(int argc, char** argv, const train::GraphFactory& make_graph);

}  // namespace shardgan::apps
