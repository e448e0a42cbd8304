// A TOML run configuration (and one --set override made of the input's first line).
#include "config/config.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace shardgan;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::only_errors([&] { config::parse(text, "fuzz.toml"); });
  fuzz::only_errors([&] { config::parse("[data]\npath = \"x\"\n", "fuzz.toml", {text.substr(0, text.find('\n'))}); });
  return 0;
}
