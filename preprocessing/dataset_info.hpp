#pragma once
#include <filesystem>
#include <ostream>

namespace shardgan::pack {

/// Prints the human summary of a packed data set (`shardgan-pack info`): count, shape, classes with counts,
/// shards, size on disk, skipped inputs.
void print_dataset_info(const std::filesystem::path& dir, std::ostream& out);

/// `shardgan-pack verify`: prints each problem (or "OK ...") and returns true when the data set is valid.
bool verify_dataset(const std::filesystem::path& dir, std::ostream& out, std::ostream& err);

}  // namespace shardgan::pack
