// A checkpoint folder's state.json, parsed and checked against the folder (its files present, regular, checksummed).
#include "fuzz_support.hpp"
#include "train/checkpoint_state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace shardgan;
  const auto run = fuzz::fresh_scratch() / "run";
  const auto dir = run / "checkpoints" / "step-000010";
  std::filesystem::create_directories(dir);
  fuzz::write_file(dir / "state.json", data, size);
  for (const char* name : {"generator.pt", "discriminator.pt", "optim_g.pt", "optim_d.pt", "config.toml"})
    fuzz::write_file(dir / name, reinterpret_cast<const uint8_t*>(name), 4);
  fuzz::only_errors([&] { train::read_checkpoint_state(dir); });
  fuzz::only_errors([&] { train::find_latest_checkpoint(run); });
  return 0;
}
