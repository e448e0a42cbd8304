#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pack_output.hpp"

namespace shardgan::pack {

/// The ten CIFAR-10 class names, index = CIFAR label.
const std::vector<std::string>& cifar10_class_names();
/// md5 of the published cifar-10-binary.tar.gz.
inline constexpr const char* kCifar10ArchiveMd5 = "c32a1d4ab5d03f1284b67883e8d87530";

/// A batch file's bytes at most, in a folder or in the archive: the published ones are 30,730,000 bytes (10,000
/// records). It bounds what one batch, and the batches an archive holds out of order (six at most), take in memory.
inline constexpr uint64_t kMaxCifar10BatchBytes = uint64_t{64} << 20;

struct Cifar10Options {
  std::filesystem::path input;       ///< cifar-10-binary.tar.gz, or the cifar-10-batches-bin folder
  std::vector<std::string> classes;  ///< names or indices; encoded labels follow CIFAR's order among them
  std::string split = "train";       ///< train | test | all
  OutputOptions output;
};

/// Resolves `--classes` (names or indices, in any order) to sorted CIFAR labels. Error naming an unknown entry.
std::vector<int> resolve_cifar10_classes(const std::vector<std::string>& classes);

/// Packs CIFAR-10 records into shards: /images [N,32,32,3], /labels (encoded), /ids ("data_batch_3.bin#1234"),
/// /source_labels (0-9). Reads a .tar.gz in one streaming pass, nothing extracted to disk. The input must be a
/// regular file (the archive) or a folder, its batch files regular files: anything else is an Error saying what it
/// is ("is a FIFO"), before anything is read or written.
data::Manifest pack_cifar10(const Cifar10Options& options);

}  // namespace shardgan::pack
