#pragma once
/// Test basics that need nothing beyond shardgan's data layer (no OpenCV, libarchive or libjpeg-turbo, so that the
/// GPU checks build where those are missing): temp folders, files, running commands, small packed shard sets.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/manifest.hpp"
#include "data/shard_format.hpp"

namespace shardgan::testing {

/// A fresh folder under $TMPDIR (or /tmp), removed with everything inside when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_bytes(const std::filesystem::path& file, const std::vector<uint8_t>& bytes);
void write_text(const std::filesystem::path& file, const std::string& text);
std::vector<uint8_t> read_bytes(const std::filesystem::path& file);

/// Result of running a command line.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  /// stderr's non-empty lines.
  std::vector<std::string> err_lines() const;
};
/// Runs `command` through /bin/sh, capturing stdout and stderr.
RunResult run(const std::string& command);

/// A small packed set in the shard layout: 4x5x3 images, classes a, b, c, label i % 3, id "img#i", pixels
/// pixels_of(i), extra columns /source_labels, /meta/age (NaN every fourth), /meta/sex.
data::ShardSchema small_schema();
std::vector<uint8_t> pixels_of(int i, const data::ImageShape& shape);
/// Packs `n` such images into `dir` (shards of `shard_size`) and writes the manifest.
data::Manifest write_set(const std::filesystem::path& dir, int n, int64_t shard_size);

/// `n` square images of size×size×channels in two classes, "horizontal" (even i: a left-to-right gradient) and
/// "vertical" (odd i: top to bottom), packed into `dir` as shardgan-pack does (shards of `shard_size`): something a
/// tiny GAN can learn.
data::Manifest write_gradient_set(const std::filesystem::path& dir, int n, int size, int channels = 1,
                                  int64_t shard_size = 40);

}  // namespace shardgan::testing
