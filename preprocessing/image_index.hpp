#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "zip_archive.hpp"

namespace shardgan::pack {

/// Where one image lives: a file in a folder, or an entry of a zip archive.
struct ImageLocation {
  int zip = -1;                ///< index into ImageIndex's archives, or -1 for a plain file
  std::size_t entry = 0;       ///< entry index inside that archive
  std::filesystem::path file;  ///< the plain file (zip == -1)
};

/// All images under the `--images` paths (folders, searched recursively, and .zip files read in place), keyed by
/// file stem ("ISIC_0024306"). When an id appears more than once (some HAM10000 copies ship the images twice, in
/// upper- and lower-case folders) the first one, in argument order then path order, is used. Each path is checked
/// for what it is first: a folder or a regular .zip file, anything else an Error saying what it is. Inside a folder,
/// an entry named like an image that is not a regular file (a FIFO, a device, a folder, a dangling link) is indexed
/// when no regular file has its id, so that reading it says what it is instead of "not found".
class ImageIndex {
 public:
  /// `extensions`: lower-case, with the dot (".jpg").
  ImageIndex(const std::vector<std::filesystem::path>& paths, const std::vector<std::string>& extensions);

  const ImageLocation* find(const std::string& id) const;
  /// The image's bytes; thread-safe. A plain file must be a regular file of at most kMaxEntryBytes.
  std::vector<uint8_t> read(const ImageLocation& location) const;
  /// "part_1.zip:ISIC_0024306.jpg" or the file path, for messages (an entry name quoted: at most 200 characters).
  std::string describe(const ImageLocation& location) const;
  std::size_t size() const { return by_id_.size(); }
  std::size_t duplicates() const { return duplicates_; }

 private:
  void add(const std::string& id, ImageLocation location);

  std::vector<std::unique_ptr<ZipArchive>> archives_;
  std::unordered_map<std::string, ImageLocation> by_id_;
  std::size_t duplicates_ = 0;
};

/// Reads a whole image file: Error, without the path (the caller names the image), when it is not a regular file
/// ("is a FIFO (a regular file is needed)"), is larger than `max_bytes`, or cannot be read. Never blocks on a FIFO.
std::vector<uint8_t> read_image_file(const std::filesystem::path& file, uint64_t max_bytes = kMaxEntryBytes);

}  // namespace shardgan::pack
