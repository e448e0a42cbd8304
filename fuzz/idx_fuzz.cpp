// Fashion-MNIST's IDX files: the input is split into an images file and a labels file (the first two bytes give
// the images file's length), written uncompressed, and packed.
#include "fashion_mnist.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace shardgan;
  if (size < 2) return 0;
  const std::size_t images = std::min<std::size_t>(size - 2, data[0] | (std::size_t(data[1]) << 8));
  const auto& dir = fuzz::fresh_scratch();
  fuzz::write_file(dir / "train-images-idx3-ubyte", data + 2, images);
  fuzz::write_file(dir / "train-labels-idx1-ubyte", data + 2 + images, size - 2 - images);
  pack::FashionMnistOptions options;
  options.input = dir;
  options.output.out = dir / "out";
  fuzz::only_errors([&] { pack::pack_fashion_mnist(options); });
  return 0;
}
