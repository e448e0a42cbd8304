#include "zip_archive.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::pack {
namespace {

constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;

uint16_t u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t u32(const uint8_t* p) {
  return u16(p) | (static_cast<uint32_t>(u16(p + 2)) << 16);
}
uint64_t u64(const uint8_t* p) {
  return u32(p) | (static_cast<uint64_t>(u32(p + 4)) << 32);
}

/// Whether [offset, offset + size) lies inside a file of `file_size` bytes, without overflowing.
bool inside(uint64_t offset, uint64_t size, uint64_t file_size) {
  return size <= file_size && offset <= file_size - size;
}

/// Deflate cannot expand more than 1032:1, which bounds an entry's size by the bytes present too.
constexpr uint64_t kMaxDeflateRatio = 1032;

}  // namespace

bool safe_member_name(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.front() == '\\') return false;
  if (name.size() > 1 && name[1] == ':') return false;  // "C:\..."
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find_first_of("/\\", start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0 && end - start == 2) return false;
    start = end + 1;
  }
  return true;
}

ZipArchive::ZipArchive(const std::filesystem::path& file) : path_(file) {
  const std::string where = file.string();
  require_regular_file(file, "zip archive");
  // Without blocking: a FIFO put in its place after the check is refused by the fstat below, not waited on.
  fd_ = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) fail(where, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    fail("zip archive ", where, ": is not a regular file (it changed while being opened)");
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  try {
    read_central_directory();
  } catch (...) {  // a constructor that throws runs no destructor: close the file here
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

void ZipArchive::read_central_directory() {
  const std::string where = path_.string();
  const off_t end = ::lseek(fd_, 0, SEEK_END);
  if (end < 0) fail(where, ": cannot seek");
  file_size_ = static_cast<uint64_t>(end);

  // The end-of-central-directory record is in the last 22 + 65535 bytes (it may be followed by a comment).
  const uint64_t tail_size = std::min<uint64_t>(file_size_, 22 + 65535);
  std::vector<uint8_t> tail(tail_size);
  read_at(file_size_ - tail_size, tail.data(), tail.size());
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_size) - 22; i >= 0; --i) {
    if (u32(&tail[i]) == kEndOfCentralDir) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail(where, ": not a zip file (no end-of-central-directory record)");
  const uint8_t* e = &tail[eocd];
  uint64_t count = u16(e + 10);
  uint64_t cd_size = u32(e + 12);
  uint64_t cd_offset = u32(e + 16);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    if (eocd < 20 || u32(&tail[eocd - 20]) != kZip64EndLocator) fail(where, ": ZIP64 locator missing");
    uint8_t z[56];
    const uint64_t z_offset = u64(&tail[eocd - 20 + 8]);
    if (!inside(z_offset, sizeof(z), file_size_)) fail(where, ": ZIP64 end record lies outside the file");
    read_at(z_offset, z, sizeof(z));
    if (u32(z) != kZip64End) fail(where, ": ZIP64 end record corrupt");
    count = u64(z + 32);
    cd_size = u64(z + 40);
    cd_offset = u64(z + 48);
  }
  if (!inside(cd_offset, cd_size, file_size_))
    fail(where, ": central directory lies outside the file (truncated zip?)");
  if (cd_size > kMaxCentralDirectoryBytes)
    fail(where, ": central directory of ", cd_size, " bytes is over the ", byte_size(kMaxCentralDirectoryBytes),
         " limit of a zip's central directory");

  std::vector<uint8_t> cd(cd_size);
  read_at(cd_offset, cd.data(), cd.size());
  std::size_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (pos + 46 > cd.size() || u32(&cd[pos]) != kCentralHeader)
      fail(where, ": central directory entry ", i, " is corrupt");
    const uint8_t* h = &cd[pos];
    Entry entry;
    const uint16_t flags = u16(h + 8);
    entry.method = u16(h + 10);
    entry.crc32 = u32(h + 16);
    entry.compressed_size = u32(h + 20);
    entry.size = u32(h + 24);
    const uint16_t name_length = u16(h + 28);
    const uint16_t extra_length = u16(h + 30);
    const uint16_t comment_length = u16(h + 32);
    entry.local_header_offset = u32(h + 42);
    if (pos + 46 + name_length + extra_length + comment_length > cd.size())
      fail(where, ": central directory entry ", i, " is corrupt");
    entry.name.assign(reinterpret_cast<const char*>(h + 46), name_length);
    // ZIP64 extra field: the 64-bit values of whichever fields are saturated, in this order.
    const uint8_t* extra = h + 46 + name_length;
    for (std::size_t x = 0; x + 4 <= extra_length;) {
      const uint16_t id = u16(extra + x);
      const uint16_t size = u16(extra + x + 2);
      if (x + 4 + size > extra_length) fail(where, ": central directory entry ", i, " has a corrupt extra field");
      if (id == 0x0001) {
        const uint8_t* v = extra + x + 4;
        const uint8_t* field_end = v + size;
        auto next64 = [&](uint64_t& field) {
          if (v + 8 > field_end) fail(where, ": central directory entry ", i, " has a short ZIP64 field");
          field = u64(v);
          v += 8;
        };
        if (entry.size == 0xFFFFFFFF) next64(entry.size);
        if (entry.compressed_size == 0xFFFFFFFF) next64(entry.compressed_size);
        if (entry.local_header_offset == 0xFFFFFFFF) next64(entry.local_header_offset);
      }
      x += 4 + size;
    }
    pos += 46 + name_length + extra_length + comment_length;
    if (!safe_member_name(entry.name))
      fail(where, ": entry '", shardgan::quoted(entry.name), "' escapes the archive's folder; refusing this archive");
    if (flags & 1) fail(where, ": entry '", shardgan::quoted(entry.name), "' is encrypted");
    if (!entry.name.empty() && entry.name.back() == '/') continue;  // a folder
    entries_.push_back(std::move(entry));
  }
}

ZipArchive::~ZipArchive() {
  if (fd_ >= 0) ::close(fd_);
}

void ZipArchive::read_at(uint64_t offset, void* out, std::size_t size) const {
  auto* p = static_cast<uint8_t*>(out);
  while (size > 0) {
    const ssize_t n = ::pread(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(path_.string(), ": unexpected end of file at byte ", offset, " (truncated zip?)");
    p += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<std::size_t>(n);
  }
}

std::vector<uint8_t> ZipArchive::read(std::size_t index) const {
  const Entry& entry = entries_.at(index);
  const std::string where = path_.string() + ":" + shardgan::quoted(entry.name);
  uint8_t local[30];
  if (!inside(entry.local_header_offset, sizeof(local), file_size_))
    fail(where, ": local header lies outside the file");
  read_at(entry.local_header_offset, local, sizeof(local));
  if (u32(local) != kLocalHeader) fail(where, ": local header is corrupt");
  // No overflow: the local header offset is inside the file, the rest is at most 30 + 2 * 65535.
  const uint64_t data_offset = entry.local_header_offset + 30 + u16(local + 26) + u16(local + 28);
  if (!inside(data_offset, entry.compressed_size, file_size_)) fail(where, ": entry data lies outside the file");
  if (entry.size > kMaxEntryBytes)
    fail(where, ": entry declares ", entry.size, " bytes, more than the ", byte_size(kMaxEntryBytes),
         " limit of an image");
  if (entry.method == 8 && entry.size > entry.compressed_size * kMaxDeflateRatio + 1024)
    fail(where, ": entry declares ", entry.size, " bytes from ", entry.compressed_size,
         " compressed ones, more than deflate can produce (corrupt entry)");
  if (entry.method == 0 && entry.size != entry.compressed_size) fail(where, ": stored entry's sizes differ");
  std::vector<uint8_t> packed(entry.compressed_size);
  read_at(data_offset, packed.data(), packed.size());

  std::vector<uint8_t> out;
  if (entry.size == 0) {
    // nothing to inflate
  } else if (entry.method == 0) {
    out = std::move(packed);
  } else if (entry.method == 8) {
    out.resize(entry.size);
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) fail(where, ": cannot initialise inflate");
    z.next_in = packed.data();
    z.avail_in = static_cast<uInt>(packed.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    const int status = inflate(&z, Z_FINISH);
    const uLong produced = z.total_out;
    inflateEnd(&z);
    if (status != Z_STREAM_END || produced != entry.size) fail(where, ": deflate data is corrupt");
  } else {
    fail(where, ": compression method ", entry.method, " is not supported (only stored and deflate)");
  }
  if (out.size() != entry.size) fail(where, ": size differs from the central directory");
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), out.data(), static_cast<uInt>(out.size()));
  if (crc != entry.crc32) fail(where, ": CRC-32 mismatch (corrupt entry)");
  return out;
}

}  // namespace shardgan::pack
