#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace shardgan::pack {

/// An entry's uncompressed bytes at most, and an image file's (image_index.hpp): a HAM10000 JPEG is ~0.3 MB, a
/// full-resolution dermoscopy JPEG (24 megapixels) ~10 MB. It bounds what one image, or a size an entry declares,
/// can make a decoding thread allocate.
inline constexpr uint64_t kMaxEntryBytes = uint64_t{64} << 20;
/// The central directory at most, read whole when an archive is opened: ~60 bytes an entry, so ~1,000,000 entries
/// (HAM10000's two zips hold ~5,000 each, 0.4 MB).
inline constexpr uint64_t kMaxCentralDirectoryBytes = uint64_t{64} << 20;

/// Random-access reader of a .zip file: reads the central directory once, then any entry by index with pread, so
/// several threads can read entries of one archive at the same time. Supports stored and deflated entries and
/// ZIP64; verifies each entry's CRC-32. Entry names that would escape the archive's folder ("../x", "/x") are
/// refused when the archive is opened. The file must be a regular file (a FIFO or a device is refused, never waited
/// on). Entry names are quoted in messages (at most 200 characters of each).
class ZipArchive {
 public:
  struct Entry {
    std::string name;
    uint64_t local_header_offset = 0;
    uint64_t compressed_size = 0;
    uint64_t size = 0;
    uint32_t crc32 = 0;
    uint16_t method = 0;
  };

  explicit ZipArchive(const std::filesystem::path& file);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<Entry>& entries() const { return entries_; }
  /// The uncompressed bytes of entries()[index]; thread-safe.
  std::vector<uint8_t> read(std::size_t index) const;

 private:
  void read_central_directory();
  void read_at(uint64_t offset, void* out, std::size_t size) const;

  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<Entry> entries_;
};

/// True when an archive member name stays inside its folder (relative, no ".." component).
bool safe_member_name(const std::string& name);

}  // namespace shardgan::pack
