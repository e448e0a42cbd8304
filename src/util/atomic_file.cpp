#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "util/error.hpp"

namespace shardgan {
namespace fs = std::filesystem;

void sync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path.string(), ": cannot open to flush it to disk (", std::strerror(errno), ")");
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  // Some file systems (FUSE and object-store mounts) cannot fsync a folder; the data itself was flushed already.
  if (rc != 0 && (error == EINVAL || error == EBADF || error == ENOTSUP) && fs::is_directory(path)) return;
  if (rc != 0) fail(path.string(), ": flushing to disk failed (", std::strerror(error), ")");
}

void sync_tree(const fs::path& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file() || entry.is_directory()) sync_path(entry.path());
  sync_path(dir);
}

void write_file_atomically(const fs::path& file, const std::function<void(const fs::path& tmp)>& write) {
  const fs::path tmp = file.string() + ".tmp";
  std::error_code ignored;
  try {
    write(tmp);
    sync_path(tmp);
  } catch (...) {
    fs::remove(tmp, ignored);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) {
    fs::remove(tmp, ignored);
    fail(file.string(), ": cannot replace (", ec.message(), ")");
  }
  sync_path(file.has_parent_path() ? file.parent_path() : fs::path("."));
}

void write_text_atomically(const fs::path& file, const std::string& text) {
  write_file_atomically(file, [&](const fs::path& tmp) { write_file_checked(tmp, text, file); });
}

namespace {

constexpr std::size_t kBufferBytes = 64 << 10;  ///< CheckedFile::write's buffer
constexpr std::size_t kCopyBytes = 1 << 20;     ///< CheckedFile::copy_range's buffer

bool is_regular(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

CheckedFile::CheckedFile(const fs::path& path, Mode mode, const fs::path& name)
    : path_(path), name_(name.empty() ? path : name), mode_(mode) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | (mode == Mode::kCreate ? O_TRUNC : 0);
  do {
    fd_ = ::open(path_.c_str(), flags, 0666);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) fail_with("write failed", errno);
  // Appends go to an offset of their own rather than through O_APPEND, which would not let copy_range leave holes.
  struct stat st {};
  if (mode == Mode::kAppend && ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode))
    start_ = pos_ = static_cast<uint64_t>(st.st_size);
}

CheckedFile::~CheckedFile() {
  if (fd_ < 0) return;
  // Not finished: undone. Only a regular file is removed or cut (a test may point a name at /dev/full).
  const bool regular = is_regular(fd_);
  if (regular && mode_ == Mode::kAppend) {
    [[maybe_unused]] const int ignored = ::ftruncate(fd_, static_cast<off_t>(start_));  // best effort
  }
  ::close(fd_);
  if (regular && mode_ == Mode::kCreate) ::unlink(path_.c_str());
}

void CheckedFile::fail_with(const char* what, int error) const {
  fail(name_.string(), ": ", what, " (", std::strerror(error), ")");
}

void CheckedFile::write_at(const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd_, data, size, static_cast<off_t>(pos_));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_with("write failed", errno);
    data += n;
    size -= static_cast<std::size_t>(n);
    pos_ += static_cast<uint64_t>(n);
  }
}

void CheckedFile::flush() {
  if (buffer_.empty()) return;
  write_at(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void CheckedFile::write(std::string_view bytes) {
  if (buffer_.size() + bytes.size() > kBufferBytes) flush();
  if (bytes.size() >= kBufferBytes) {
    write_at(bytes.data(), bytes.size());
  } else {
    buffer_.append(bytes);
  }
}

void CheckedFile::copy_range(int fd, const fs::path& source, uint64_t begin, uint64_t end) {
  flush();
  const auto read_failed = [&](int error) { fail(source.string(), ": read failed (", std::strerror(error), ")"); };
  std::unique_ptr<char[]> chunk;
  for (uint64_t at = begin; at < end;) {
    // Where the next data starts: ENXIO when only a hole is left; EINVAL where holes are unknown (all data).
    off_t data = ::lseek(fd, static_cast<off_t>(at), SEEK_DATA);
    if (data < 0 && errno == ENXIO) data = static_cast<off_t>(end);
    if (data < 0 && errno == EINVAL) data = static_cast<off_t>(at);
    if (data < 0) read_failed(errno);
    const uint64_t data_begin = std::min<uint64_t>(static_cast<uint64_t>(data), end);
    pos_ += data_begin - at;  // the hole, skipped here too (finish() extends the file over a trailing one)
    at = data_begin;
    if (at >= end) break;
    const off_t hole = ::lseek(fd, static_cast<off_t>(at), SEEK_HOLE);
    const uint64_t data_end = hole < 0 ? end : std::min<uint64_t>(static_cast<uint64_t>(hole), end);
    if (!chunk) chunk.reset(new char[kCopyBytes]);
    while (at < data_end) {
      const ssize_t n = ::pread(fd, chunk.get(), std::min<uint64_t>(kCopyBytes, data_end - at), static_cast<off_t>(at));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) read_failed(errno);
      if (n == 0) fail(source.string(), ": read failed (the file became shorter while it was copied)");
      write_at(chunk.get(), static_cast<std::size_t>(n));
      at += static_cast<uint64_t>(n);
    }
  }
}

void CheckedFile::finish(bool sync) {
  flush();
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < pos_ &&
      ::ftruncate(fd_, static_cast<off_t>(pos_)) != 0)
    fail_with("write failed", errno);
  if (sync && ::fsync(fd_) != 0) fail_with("flushing to disk failed", errno);
  const bool regular = S_ISREG(st.st_mode);
  const int rc = ::close(fd_);
  const int error = errno;
  fd_ = -1;
  // A failing close reports a write that failed late (NFS, quotas): undone through the name, as the fd is gone.
  if (rc != 0 && error != EINTR) {
    if (regular && mode_ == Mode::kCreate) ::unlink(path_.c_str());
    if (regular && mode_ == Mode::kAppend) {
      [[maybe_unused]] const int ignored = ::truncate(path_.c_str(), static_cast<off_t>(start_));  // best effort
    }
    fail_with("write failed", error);
  }
}

void write_file_checked(const fs::path& path, std::string_view bytes, const fs::path& name) {
  CheckedFile file(path, CheckedFile::Mode::kCreate, name);
  file.write(bytes);
  file.finish(/*sync=*/true);
}

}  // namespace shardgan
