// HAM10000's metadata table (CSV or tab-separated): the generic table parser and the HAM10000 column rules.
#include "csv_table.hpp"
#include "fuzz_support.hpp"
#include "ham10000.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace shardgan;
  fuzz::only_errors([&] { pack::parse_csv(std::string(reinterpret_cast<const char*>(data), size), "fuzz.csv"); });
  const auto file = fuzz::fresh_scratch() / "HAM10000_metadata.csv";
  fuzz::write_file(file, data, size);
  fuzz::only_errors([&] { pack::read_ham_metadata(file); });
  return 0;
}
