// JPEG header and the scaled decode + area resize of the packer (with and without the centre crop).
#include <vector>

#include "fuzz_support.hpp"
#include "image_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace shardgan;
  static pack::JpegResizer decoder;
  const std::vector<uint8_t> jpeg(data, data + size);
  std::vector<uint8_t> out(32 * 32 * 3);
  fuzz::only_errors([&] { decoder.decode(jpeg, 32, pack::Crop::kNone, out.data()); });
  fuzz::only_errors([&] { decoder.decode(jpeg, 8, pack::Crop::kCenter, out.data()); });
  return 0;
}
