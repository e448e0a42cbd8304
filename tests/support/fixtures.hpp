#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

/// Test data in the exact formats of the real data sets (../docs/data-format.md, facts in the brief): CIFAR-10
/// binary batches and their .tar.gz, HAM10000 metadata tables and JPEGs in folders or zips; and (basics.hpp) temp
/// folders, files and running the shardgan executables.
#include "basics.hpp"

namespace shardgan::testing {

/// `records` CIFAR-10 records (label byte + 3072 planar RGB bytes); label of record i is labels[i % size], pixels
/// a deterministic function of (seed, i).
std::vector<uint8_t> cifar_batch(int records, const std::vector<uint8_t>& labels, uint32_t seed);
/// Writes a cifar-10-batches-bin folder (data_batch_1..5.bin, test_batch.bin, batches.meta.txt) with
/// `records_per_batch` records each, labels cycling 0..9.
void write_cifar_folder(const std::filesystem::path& folder, int records_per_batch);
/// Archive member: name and bytes.
using Member = std::pair<std::string, std::vector<uint8_t>>;
/// Writes a .tar.gz with the members, in the order given.
void write_tar_gz(const std::filesystem::path& file, const std::vector<Member>& members);
/// Writes a .zip (deflated unless `store`), members in order; names are written as given (even "../x").
void write_zip(const std::filesystem::path& file, const std::vector<Member>& members, bool store = false);
/// All files of a cifar-10-batches-bin folder as members named "cifar-10-batches-bin/<file>".
std::vector<Member> cifar_members(const std::filesystem::path& folder);

/// A synthetic dermoscopy-like RGB image (skin-toned gradient, an irregular dark lesion, hairs, sensor noise),
/// width×height, deterministic in `seed`: the statistics that matter to a JPEG decoder and a resizer.
std::vector<uint8_t> lesion_rgb(int width, int height, uint32_t seed);
/// JPEG bytes (4:2:0, `quality`) of an RGB image.
std::vector<uint8_t> encode_jpeg(const std::vector<uint8_t>& rgb, int width, int height, int quality = 90);

/// A HAM10000-shaped data set: metadata table + JPEGs.
struct HamFixture {
  std::filesystem::path metadata;
  std::vector<std::string> image_ids;
  std::vector<std::string> dx;
};
struct HamFixtureOptions {
  int count = 20;
  int width = 600;
  int height = 450;
  bool tab_separated = false;
  bool dataset_column = false;  ///< the Dataverse original's 8th column
  bool zip = false;             ///< images in HAM10000_images_part_1.zip instead of a folder
  int quality = 90;
};
/// Writes `dir/HAM10000_metadata.csv|.tab` and `dir/HAM10000_images_part_1/` (or the .zip).
HamFixture write_ham_fixture(const std::filesystem::path& dir, const HamFixtureOptions& options);
/// Metadata text for rows (lesion_id, image_id, dx, dx_type, age, sex, localization).
std::string ham_metadata_text(const std::vector<std::vector<std::string>>& rows, char delimiter = ',');

}  // namespace shardgan::testing
