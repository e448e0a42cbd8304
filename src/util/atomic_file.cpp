#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

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
  write_file_atomically(file, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) fail(file.string(), ": write failed (disk full or no permission?)");
  });
}

}  // namespace shardgan
