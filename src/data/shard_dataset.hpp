#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/manifest.hpp"
#include "data/shard_format.hpp"

namespace shardgan::data {

/// Where a ShardDataset serves images from: kMemory loads the whole set once, kStream reads the rows asked for
/// from the shards, kAuto is kMemory when the set fits Options::memory_budget. (The trainer maps config's data.cache
/// onto it: data/ does not depend on config/, so the packer links no TOML parser.)
enum class Cache { kAuto, kMemory, kStream };

/// A packed data set opened for training. Opening checks it: manifest readable, every shard's checksum (unless
/// `verify` is false), shapes, class names, counts and labels agreeing across shards — any mismatch is an Error
/// naming the shard. Images are then served by global index, from memory (the whole set loaded once) or streamed
/// from the shards (only the rows asked for are read).
class ShardDataset {
 public:
  struct Options {
    bool verify = true;
    /// With verify: this process re-hashes only shards i with i mod verify_parts == verify_part (see CheckOptions).
    std::size_t verify_part = 0;
    std::size_t verify_parts = 1;
    Cache cache = Cache::kAuto;
    /// For cache = auto: bytes this process may use for a memory cache.
    uint64_t memory_budget = 4ull << 30;
  };

  ShardDataset(const std::filesystem::path& dir, const Options& options);

  const Manifest& manifest() const { return manifest_; }
  int64_t size() const { return manifest_.total_count; }
  const ImageShape& shape() const { return manifest_.shape; }
  const std::vector<int64_t>& labels() const { return labels_; }
  bool in_memory() const { return !memory_.empty(); }
  /// The /ids of every image, in global index order (read from the shards on each call).
  std::vector<std::string> ids() const;

  /// Copies the images with the given global indices, in that order, to `out` (indices.size() × shape().bytes()).
  void read(const std::vector<int64_t>& indices, uint8_t* out) const;

 private:
  Manifest manifest_;
  std::vector<ShardReader> shards_;
  std::vector<int64_t> offsets_;  ///< first global index of each shard
  std::vector<int64_t> labels_;
  std::vector<uint8_t> memory_;
};

}  // namespace shardgan::data
