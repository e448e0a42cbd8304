#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "data/manifest.hpp"

namespace shardgan::data {

/// How thoroughly `check_dataset` looks.
struct CheckOptions {
  bool checksums = true;  ///< re-hash every shard and compare with the manifest
  bool contents = true;   ///< open every shard: shapes, attributes, label range, per-class counts
  /// Share the hashing: only shards i with i mod checksum_parts == checksum_part are re-hashed (the ranks of one node
  /// each take a part, so every node hashes every shard once; size and contents are still checked for all).
  std::size_t checksum_part = 0;
  std::size_t checksum_parts = 1;
};

/// Checks a packed data set against its manifest. Returns one line per problem, each naming the shard and what
/// disagrees; an empty list means the data set is valid. A manifest that cannot be read is one problem.
std::vector<std::string> check_dataset(const std::filesystem::path& dir, const CheckOptions& options = {});

}  // namespace shardgan::data
