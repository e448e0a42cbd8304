#include "util/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.hpp"

namespace shardgan {
namespace fs = std::filesystem;

FileKind file_kind(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    struct stat link {};
    return ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode) ? FileKind::kDanglingLink : FileKind::kMissing;
  }
  if (S_ISREG(st.st_mode)) return FileKind::kRegular;
  if (S_ISDIR(st.st_mode)) return FileKind::kDirectory;
  if (S_ISFIFO(st.st_mode)) return FileKind::kFifo;
  if (S_ISCHR(st.st_mode)) return FileKind::kCharDevice;
  if (S_ISBLK(st.st_mode)) return FileKind::kBlockDevice;
  if (S_ISSOCK(st.st_mode)) return FileKind::kSocket;
  return FileKind::kOther;
}

const char* describe(FileKind kind) {
  switch (kind) {
    case FileKind::kMissing:
      return "is missing";
    case FileKind::kDanglingLink:
      return "is a dangling symbolic link";
    case FileKind::kRegular:
      return "is a regular file";
    case FileKind::kDirectory:
      return "is a directory";
    case FileKind::kFifo:
      return "is a FIFO";
    case FileKind::kCharDevice:
      return "is a character device";
    case FileKind::kBlockDevice:
      return "is a block device";
    case FileKind::kSocket:
      return "is a socket";
    case FileKind::kOther:
      break;
  }
  return "is not a regular file or directory";
}

void require_regular_file(const fs::path& path, std::string_view what) {
  const FileKind kind = file_kind(path);
  if (kind == FileKind::kRegular) return;
  if (kind == FileKind::kMissing) fail(what, " ", path.string(), ": is missing");
  fail(what, " ", path.string(), ": ", describe(kind), " (a regular file is needed)");
}

void require_directory(const fs::path& path, std::string_view what) {
  const FileKind kind = file_kind(path);
  if (kind == FileKind::kDirectory) return;
  if (kind == FileKind::kMissing) fail(what, " ", path.string(), ": is missing");
  fail(what, " ", path.string(), ": ", describe(kind), " (a directory is needed)");
}

namespace {

/// Opens `path` for reading without blocking (O_NONBLOCK: a FIFO or a device that appeared after a check is refused
/// by the fstat below, not waited on); Error unless it is a regular file.
int open_regular(const fs::path& path, std::string_view what) {
  require_regular_file(path, what);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) fail(what, " ", path.string(), ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(what, " ", path.string(), ": is not a regular file (it changed while being opened)");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

}  // namespace

std::string read_bounded(const fs::path& path, std::size_t max_bytes, std::string_view what) {
  const int fd = open_regular(path, what);
  std::string out;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      fail(what, " ", path.string(), ": read failed (", std::strerror(err), ")");
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      ::close(fd);
      fail(what, " ", path.string(), ": is over the ", byte_size(max_bytes), " limit of a ", what);
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

LineReader::LineReader(const fs::path& path, std::size_t max_line, std::string_view what)
    : path_(path), what_(what), max_line_(max_line) {
  const int fd = open_regular(path, what);
  file_ = ::fdopen(fd, "rb");
  if (file_ == nullptr) {
    ::close(fd);
    fail(what, " ", path.string(), ": cannot open (", std::strerror(errno), ")");
  }
}

LineReader::~LineReader() {
  if (file_ != nullptr) std::fclose(file_);
}

bool LineReader::next(std::string& line, bool* overlong) {
  line.clear();
  if (overlong != nullptr) *overlong = false;
  line_offset_ = offset_;
  bool any = false, too_long = false;
  for (int c; (c = getc_unlocked(file_)) != EOF;) {  // one reader per FILE: no lock per byte
    any = true;
    ++offset_;
    if (c == '\n') break;
    if (too_long) continue;
    if (line.size() == max_line_) {
      if (overlong == nullptr)
        fail(what_, " ", path_.string(), ": line ", line_number_ + 1, " is over the ", byte_size(max_line_),
             " limit of a line");
      too_long = true;
      line.clear();
      continue;
    }
    line.push_back(static_cast<char>(c));
  }
  if (std::ferror(file_)) fail(what_, " ", path_.string(), ": read failed (", std::strerror(errno), ")");
  if (!any) return false;
  ++line_number_;
  if (too_long) *overlong = true;
  return true;
}

std::string quoted(std::string_view text, std::size_t max) {
  const std::size_t shown = std::min(text.size(), max);
  std::string out(text.substr(0, shown));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (text.size() > shown) out += cat("...(", text.size() - shown, " more bytes)");
  return out;
}

std::string byte_size(uint64_t bytes) {
  if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0) return cat(bytes >> 20, " MiB");
  if (bytes >= (1ull << 10) && bytes % (1ull << 10) == 0) return cat(bytes >> 10, " KiB");
  return cat(bytes, " bytes");
}

}  // namespace shardgan
