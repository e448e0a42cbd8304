// The zip reader (HAM10000 image archives): central directory, ZIP64 fields, entries read and inflated.
#include "fuzz_support.hpp"
#include "zip_archive.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace shardgan;
  const auto file = fuzz::fresh_scratch() / "images.zip";
  fuzz::write_file(file, data, size);
  fuzz::only_errors([&] {
    pack::ZipArchive zip(file);
    for (std::size_t i = 0; i < zip.entries().size() && i < 64; ++i) fuzz::only_errors([&] { zip.read(i); });
  });
  return 0;
}
