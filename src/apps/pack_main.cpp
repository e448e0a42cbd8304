// shardgan-pack: packs CIFAR-10, HAM10000 and Fashion-MNIST into checksummed HDF5 shards; verifies and describes them.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cifar10.hpp"
#include "dataset_info.hpp"
#include "fashion_mnist.hpp"
#include "ham10000.hpp"
#include "shardgan/config.hpp"
#include "util/error.hpp"
#include "util/error_message.hpp"
#include "util/input_file.hpp"

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

/// Every subcommand's options and the subcommands themselves (the one given tests true). CLI11 fills the options in
/// through references: a Commands must not move once its subcommands are added.
struct Commands {
  OutputOptions output;
  Cifar10Options cifar;
  Ham10000Options ham;
  std::string crop = "none", on_error = "fail";  ///< ham10000's, as words
  FashionMnistOptions fashion;
  std::filesystem::path dir;  ///< verify's and info's
  CLI::App* cifar_cmd = nullptr;
  CLI::App* ham_cmd = nullptr;
  CLI::App* fashion_cmd = nullptr;
  CLI::App* verify_cmd = nullptr;
  CLI::App* info_cmd = nullptr;
};

/// cifar10: its options, then the output's.
void add_cifar10(CLI::App& app, Commands& c) {
  c.cifar.classes = {"cat", "dog"};
  c.cifar_cmd = app.add_subcommand("cifar10", "CIFAR-10 (binary version) from the .tar.gz or its folder");
  c.cifar_cmd->add_option("--input", c.cifar.input, "cifar-10-binary.tar.gz, or the cifar-10-batches-bin folder")
      ->required();
  c.cifar_cmd->add_option("--classes", c.cifar.classes, "class names or indices 0-9, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  c.cifar_cmd->add_option("--split", c.cifar.split, "train | test | all")->capture_default_str();
  add_output_options(c.cifar_cmd, c.output, true);
}

/// ham10000: its options (--crop and --on-error as words), then the output's.
void add_ham10000(CLI::App& app, Commands& c) {
  c.ham_cmd = app.add_subcommand("ham10000", "HAM10000 skin-lesion images + metadata");
  c.ham_cmd->add_option("--metadata", c.ham.metadata, "HAM10000_metadata.csv or .tab")->required();
  c.ham_cmd->add_option("--images", c.ham.images, "image folder or .zip (repeatable)")->required();
  c.ham_cmd->add_option("--size", c.ham.size, "output side in pixels")->capture_default_str();
  c.ham_cmd->add_option("--crop", c.crop, "none | center (crop to a square first)")
      ->check(CLI::IsMember({"none", "center"}))
      ->capture_default_str();
  c.ham_cmd->add_option("--on-error", c.on_error, "fail | skip (missing or corrupt images)")
      ->check(CLI::IsMember({"fail", "skip"}))
      ->capture_default_str();
  c.ham_cmd->add_option("--threads", c.ham.threads, "decoding threads")->capture_default_str();
  c.ham_cmd->add_option("--max-pixels", c.ham.max_pixels, "refuse (or with --on-error skip, skip) larger images")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  add_output_options(c.ham_cmd, c.output, true);
}

/// fashion-mnist: its options, then the output's.
void add_fashion_mnist(CLI::App& app, Commands& c) {
  c.fashion_cmd = app.add_subcommand("fashion-mnist", "Fashion-MNIST IDX files");
  c.fashion_cmd->add_option("--input", c.fashion.input, "folder with the *-idx*-ubyte.gz files")->capture_default_str();
  c.fashion_cmd->add_option("--size", c.fashion.size, "output side (28-32: zero-padded; else resized)")
      ->capture_default_str();
  c.fashion_cmd->add_option("--split", c.fashion.split, "train | test | all")->capture_default_str();
  add_output_options(c.fashion_cmd, c.output, true);
}

/// verify and info, on a packed data set.
void add_dataset_commands(CLI::App& app, Commands& c) {
  c.verify_cmd = app.add_subcommand("verify", "re-check checksums, shapes and label ranges; exit 0 only if all hold");
  c.verify_cmd->add_option("DIR", c.dir, "packed data set folder")->required();
  c.info_cmd = app.add_subcommand("info", "human summary of a packed data set");
  c.info_cmd->add_option("DIR", c.dir, "packed data set folder")->required();
}

/// Runs the subcommand given; the exit status (verify: 1 when a check fails).
int run(Commands& c) {
  if (*c.cifar_cmd) {
    c.cifar.output = c.output;
    c.cifar.output.inputs = {c.cifar.input};
    pack_cifar10(c.cifar);
  } else if (*c.ham_cmd) {
    c.ham.output = c.output;
    c.ham.output.inputs = c.ham.images;
    c.ham.output.inputs.push_back(c.ham.metadata);
    c.ham.crop = c.crop == "center" ? Crop::kCenter : Crop::kNone;
    c.ham.on_error = c.on_error == "skip" ? OnError::kSkip : OnError::kFail;
    pack_ham10000(c.ham);
  } else if (*c.fashion_cmd) {
    c.fashion.output = c.output;
    c.fashion.output.inputs = {c.fashion.input};
    pack_fashion_mnist(c.fashion);
  } else if (*c.verify_cmd) {
    return verify_dataset(c.dir, std::cout, std::cerr) ? 0 : 1;
  } else if (*c.info_cmd) {
    print_dataset_info(c.dir, std::cout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  shardgan::h5::prepare_library();  // first: no HDF5 exit handler (see there)
  CLI::App app{"shardgan-pack " SHARDGAN_VERSION
               ": packs image data sets into checksummed HDF5 shards (see docs/data-format.md)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SHARDGAN_VERSION);

  Commands commands;
  for (int i = 0; i < argc; ++i) commands.output.command_line.emplace_back(argv[i]);
  add_cifar10(app, commands);
  add_ham10000(app, commands);
  add_fashion_mnist(app, commands);
  add_dataset_commands(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    install_interrupt_handlers();
    return run(commands);
  } catch (const std::exception& e) {
    // One line, at most kMaxErrorChars whatever a message holds (the inputs it quotes are cut at 200 characters
    // each already; this bounds the rest).
    constexpr std::size_t kMaxErrorChars = 4096;
    std::cerr << "shardgan-pack: error: " << shardgan::quoted(error_message(e), kMaxErrorChars) << '\n';
    return 1;
  }
}
