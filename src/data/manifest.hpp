#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "data/shard_format.hpp"

namespace shardgan::data {

/// An input the packer left out (`--on-error skip`), and why.
struct SkippedInput {
  std::string id;
  std::string file;
  std::string reason;
};

/// manifest.json: what a packed data set holds and how to check it (docs/data-format.md).
struct Manifest {
  int format_version = kFormatVersion;
  std::string source;
  std::string tool_version;
  std::vector<std::string> command_line;
  ImageShape shape;
  std::vector<std::string> class_names;
  std::vector<int64_t> class_counts;
  int64_t total_count = 0;
  std::vector<ShardInfo> shards;
  std::vector<SkippedInput> skipped;
  /// Source-specific facts, e.g. {"archive_md5", "..."}, {"split", "train"}.
  std::vector<std::pair<std::string, std::string>> source_info;

  /// Reads DIR/manifest.json; every missing key or wrong type is an Error naming the file and key.
  static Manifest load(const std::filesystem::path& dir);
  /// Writes DIR/manifest.json (pretty-printed, keys in a fixed order).
  void save(const std::filesystem::path& dir) const;
};

/// Finishes `writer` (see ShardWriter::finish) and returns the manifest describing what it wrote.
Manifest finish_dataset(ShardWriter& writer, const ShardSchema& schema, std::string tool_version);

}  // namespace shardgan::data
