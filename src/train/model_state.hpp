#pragma once
// The one list of what a GAN's state is, named (like PyTorch's state_dict): the models G, D and the EMA generator with
// their parameters and buffers, and the two optimisers. The start-up broadcast, the cross-rank check, checkpoints,
// weight export and the tests all take it from here, so they cannot disagree about what the state is.
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <string>
#include <vector>

#include "parallel/consistency.hpp"
#include "train/gan.hpp"

namespace shardgan::train {

struct NamedModule {
  std::string name;  ///< "generator", "discriminator", "generator_ema" (a checkpoint's file is name + ".pt")
  torch::nn::Module* module;
};
struct NamedOptimizer {
  std::string name;  ///< "optim_g", "optim_d"
  torch::optim::Optimizer* optimizer;
};

/// Which part of the state.
enum class StateView {
  kAll,     ///< every parameter and buffer: broadcast at start, checkpoints, export, tests
  kAgreed,  ///< what the ranks must hold bit for bit during training: everything but the EMA generator's BatchNorm
            ///< statistics, which are re-estimated from its weights when it samples (rank 0 alone draws the grids)
};

/// The models, in checkpoint order: G, D, then the EMA generator when there is one.
std::vector<NamedModule> state_modules(const Gan& gan);
/// The optimisers: G's, then D's.
std::vector<NamedOptimizer> state_optimizers(const Gan& gan);
/// The tensors of `view`, named "<module>/<parameter or buffer>" (parameters first, then buffers, per module).
parallel::NamedTensors state_tensors(const Gan& gan, StateView view = StateView::kAll);

}  // namespace shardgan::train
