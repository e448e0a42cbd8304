#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace shardgan::pack {

/// Random-access reader of a .zip file: reads the central directory once, then any entry by index with pread, so
/// several threads can read entries of one archive at the same time. Supports stored and deflated entries and
/// ZIP64; verifies each entry's CRC-32. Entry names that would escape the archive's folder ("../x", "/x") are
/// refused when the archive is opened.
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
