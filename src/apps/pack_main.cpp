// shardgan-pack: packs CIFAR-10, HAM10000 and Fashion-MNIST into checksummed HDF5 shards; verifies and describes them.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cifar10.hpp"
#include "dataset_info.hpp"
#include "fashion_mnist.hpp"
#include "ham10000.hpp"
#include "shardgan/config.hpp"
#include "util/error.hpp"

namespace {

using namespace shardgan;
using namespace shardgan::pack;

void add_output_options(CLI::App* cmd, OutputOptions& o, bool shard_size) {
  cmd->add_option("--out", o.out, "output folder (created; must not exist unless --force)")->required();
  cmd->add_flag("--force", o.force, "replace an existing output folder");
  if (shard_size) cmd->add_option("--shard-size", o.shard_size, "images per shard file")->capture_default_str();
  cmd->add_option("--max-images", o.max_images,
                  "keep a deterministic subset of this many images, stratified by class (0: all)")
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shardgan-pack " SHARDGAN_VERSION
               ": packs image data sets into checksummed HDF5 shards (see docs/data-format.md)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SHARDGAN_VERSION);

  OutputOptions output;
  for (int i = 0; i < argc; ++i) output.command_line.emplace_back(argv[i]);

  Cifar10Options cifar;
  cifar.classes = {"cat", "dog"};
  auto* cifar_cmd = app.add_subcommand("cifar10", "CIFAR-10 (binary version) from the .tar.gz or its folder");
  cifar_cmd->add_option("--input", cifar.input, "cifar-10-binary.tar.gz, or the cifar-10-batches-bin folder")
      ->required();
  cifar_cmd->add_option("--classes", cifar.classes, "class names or indices 0-9, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  cifar_cmd->add_option("--split", cifar.split, "train | test | all")->capture_default_str();
  add_output_options(cifar_cmd, output, true);

  Ham10000Options ham;
  std::string crop = "none", on_error = "fail";
  auto* ham_cmd = app.add_subcommand("ham10000", "HAM10000 skin-lesion images + metadata");
  ham_cmd->add_option("--metadata", ham.metadata, "HAM10000_metadata.csv or .tab")->required();
  ham_cmd->add_option("--images", ham.images, "image folder or .zip (repeatable)")->required();
  ham_cmd->add_option("--size", ham.size, "output side in pixels")->capture_default_str();
  ham_cmd->add_option("--crop", crop, "none | center (crop to a square first)")
      ->check(CLI::IsMember({"none", "center"}))
      ->capture_default_str();
  ham_cmd->add_option("--on-error", on_error, "fail | skip (missing or corrupt images)")
      ->check(CLI::IsMember({"fail", "skip"}))
      ->capture_default_str();
  ham_cmd->add_option("--threads", ham.threads, "decoding threads")->capture_default_str();
  ham_cmd->add_option("--max-pixels", ham.max_pixels, "refuse (or with --on-error skip, skip) larger images")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  add_output_options(ham_cmd, output, true);

  FashionMnistOptions fashion;
  auto* fashion_cmd = app.add_subcommand("fashion-mnist", "Fashion-MNIST IDX files");
  fashion_cmd->add_option("--input", fashion.input, "folder with the *-idx*-ubyte.gz files")->capture_default_str();
  fashion_cmd->add_option("--size", fashion.size, "output side (28-32: zero-padded; else resized)")
      ->capture_default_str();
  fashion_cmd->add_option("--split", fashion.split, "train | test | all")->capture_default_str();
  add_output_options(fashion_cmd, output, true);

  std::filesystem::path dir;
  auto* verify_cmd =
      app.add_subcommand("verify", "re-check checksums, shapes and label ranges; exit 0 only if all hold");
  verify_cmd->add_option("DIR", dir, "packed data set folder")->required();
  auto* info_cmd = app.add_subcommand("info", "human summary of a packed data set");
  info_cmd->add_option("DIR", dir, "packed data set folder")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    install_interrupt_handlers();
    if (*cifar_cmd) {
      cifar.output = output;
      cifar.output.inputs = {cifar.input};
      pack_cifar10(cifar);
    } else if (*ham_cmd) {
      ham.output = output;
      ham.output.inputs = ham.images;
      ham.output.inputs.push_back(ham.metadata);
      ham.crop = crop == "center" ? Crop::kCenter : Crop::kNone;
      ham.on_error = on_error == "skip" ? OnError::kSkip : OnError::kFail;
      pack_ham10000(ham);
    } else if (*fashion_cmd) {
      fashion.output = output;
      fashion.output.inputs = {fashion.input};
      pack_fashion_mnist(fashion);
    } else if (*verify_cmd) {
      return verify_dataset(dir, std::cout, std::cerr) ? 0 : 1;
    } else if (*info_cmd) {
      print_dataset_info(dir, std::cout);
    }
  } catch (const std::exception& e) {
    std::cerr << "shardgan-pack: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
