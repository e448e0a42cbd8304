// shardgan-fixtures: writes test and benchmark inputs in the real data sets' formats.
//   shardgan-fixtures cifar10  --out DIR --records N [--tar]     cifar-10-batches-bin/ (+ cifar-10-binary.tar.gz)
//   shardgan-fixtures ham10000 --out DIR --count N [--zip] [--tab] [--width W --height H]
#include <CLI/CLI.hpp>
#include <iostream>

#include "fixtures.hpp"

int main(int argc, char** argv) {
  namespace t = shardgan::testing;
  CLI::App app{"shardgan-fixtures: test inputs in the CIFAR-10 and HAM10000 formats"};
  app.require_subcommand(1);
  std::string out;
  int records = 100;
  bool tar = false;
  auto* cifar = app.add_subcommand("cifar10", "CIFAR-10 binary batches");
  cifar->add_option("--out", out)->required();
  cifar->add_option("--records", records, "records per batch file");
  cifar->add_flag("--tar", tar, "also write cifar-10-binary.tar.gz");
  t::HamFixtureOptions ham_options;
  auto* ham = app.add_subcommand("ham10000", "HAM10000 metadata + JPEGs");
  ham->add_option("--out", out)->required();
  ham->add_option("--count", ham_options.count);
  ham->add_option("--width", ham_options.width);
  ham->add_option("--height", ham_options.height);
  ham->add_option("--quality", ham_options.quality);
  ham->add_flag("--zip", ham_options.zip);
  ham->add_flag("--tab", ham_options.tab_separated);
  ham->add_flag("--dataset-column", ham_options.dataset_column);
  CLI11_PARSE(app, argc, argv);

  if (*cifar) {
    const auto folder = std::filesystem::path(out) / "cifar-10-batches-bin";
    t::write_cifar_folder(folder, records);
    if (tar) t::write_tar_gz(std::filesystem::path(out) / "cifar-10-binary.tar.gz", t::cifar_members(folder));
  } else {
    const auto fixture = t::write_ham_fixture(out, ham_options);
    std::cout << fixture.metadata.string() << '\n';
  }
  return 0;
}
