// CIFAR-10 input: the first byte chooses the form — the .tar.gz (libarchive + our member handling) or a
// cifar-10-batches-bin folder whose data_batch_1.bin holds the bytes (the record parser); then packs it.
#include "cifar10.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace shardgan;
  if (size == 0) return 0;
  const auto& dir = fuzz::fresh_scratch();
  pack::Cifar10Options options;
  options.classes = {"cat", "dog"};
  options.split = "all";
  options.output.out = dir / "out";
  options.output.shard_size = 7;
  if (data[0] & 1) {
    options.input = dir / "cifar-10-binary.tar.gz";
    fuzz::write_file(options.input, data + 1, size - 1);
  } else {
    options.input = dir / "cifar-10-batches-bin";
    std::filesystem::create_directories(options.input);
    fuzz::write_file(options.input / "data_batch_1.bin", data + 1, size - 1);
    for (const char* name :
         {"data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"})
      fuzz::write_file(options.input / name, data + 1, 0);
  }
  fuzz::only_errors([&] { pack::pack_cifar10(options); });
  return 0;
}
