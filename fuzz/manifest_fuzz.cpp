// manifest.json of a packed data set.
#include "data/manifest.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace shardgan;
  const auto& dir = fuzz::fresh_scratch();
  fuzz::write_file(dir / "manifest.json", data, size);
  fuzz::only_errors([&] { data::Manifest::load(dir); });
  return 0;
}
