#include "train/model_state.hpp"

namespace shardgan::train {

// The registry hands out the modules themselves (as a state_dict hands out tensors that share storage): a const Gan
// is one whose members are not replaced, not one whose weights are frozen.
std::vector<NamedModule> state_modules(const Gan& gan) {
  const auto entry = [](const char* name, const torch::nn::Module* module) {
    return NamedModule{name, const_cast<torch::nn::Module*>(module)};
  };
  std::vector<NamedModule> modules{entry("generator", gan.generator.get()),
                                   entry("discriminator", gan.discriminator.get())};
  if (gan.generator_ema) modules.push_back(entry("generator_ema", gan.generator_ema.get()));
  return modules;
}

std::vector<NamedOptimizer> state_optimizers(const Gan& gan) {
  return {NamedOptimizer{"optim_g", gan.optim_g.get()}, NamedOptimizer{"optim_d", gan.optim_d.get()}};
}

parallel::NamedTensors state_tensors(const Gan& gan, StateView view) {
  parallel::NamedTensors named;
  for (const auto& [name, module] : state_modules(gan)) {
    for (const auto& p : module->named_parameters()) named.emplace_back(name + "/" + p.key(), p.value());
    if (view == StateView::kAgreed && name == "generator_ema") continue;
    for (const auto& b : module->named_buffers()) named.emplace_back(name + "/" + b.key(), b.value());
  }
  return named;
}

}  // namespace shardgan::train
