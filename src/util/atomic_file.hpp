#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace shardgan {

/// The one way shardgan replaces a file: `write` fills a temporary file beside `file` (same folder, so the rename
/// is atomic), which is fsync'ed and then renamed over `file`, and the folder is fsync'ed: after a crash or a power
/// cut `file` holds the old or the new content, never a part. If `write` throws or the rename fails, the temporary
/// file is removed and the Error names `file`.
void write_file_atomically(const std::filesystem::path& file,
                           const std::function<void(const std::filesystem::path& tmp)>& write);

/// Flushes `path` (a file or a folder: its entries) to stable storage; Error naming it on failure.
void sync_path(const std::filesystem::path& path);
/// sync_path for every file and folder below `dir`, and `dir` itself.
void sync_tree(const std::filesystem::path& dir);

/// write_file_atomically with `text` as the content (written with write_file_checked).
void write_text_atomically(const std::filesystem::path& file, const std::string& text);

/// A file written with POSIX calls whose every result is checked: a full disk (ENOSPC, EDQUOT), an I/O error or a
/// failing close is an Error "<name>: write failed (No space left on device)" naming the file, never an ignored
/// stream state or an exception in a destructor. What is not finished is undone when the object goes: a created
/// file is removed, an appended one cut back to its size at open, so a failure leaves no partial file or line.
class CheckedFile {
 public:
  enum class Mode {
    kCreate,  ///< a new or temporary file (an existing one is truncated)
    kAppend,  ///< appends to the file (created if missing); the caller is its one writer (e.g. under RunLock)
  };
  /// Opens `path`; `name` is the file named in errors (default `path`: a temporary file may be named as its target).
  CheckedFile(const std::filesystem::path& path, Mode mode, const std::filesystem::path& name = {});
  ~CheckedFile();
  CheckedFile(const CheckedFile&) = delete;
  CheckedFile& operator=(const CheckedFile&) = delete;

  /// Appends `bytes` (buffered up to 64 KiB).
  void write(std::string_view bytes);
  /// Appends bytes [begin, end) of the open regular file `fd` (`source` names it in errors), through a bounded
  /// buffer; ranges of `fd` that are holes (lseek SEEK_DATA/SEEK_HOLE) are skipped, not read, and stay holes here:
  /// a sparse gigabyte of NULs is copied in no time and takes no space.
  void copy_range(int fd, const std::filesystem::path& source, uint64_t begin, uint64_t end);
  /// Writes what is buffered, extends the file over a trailing hole, fsyncs it (when `sync`) and closes it, each
  /// checked; after that the content stays.
  void finish(bool sync);

 private:
  void flush();
  void write_at(const char* data, std::size_t size);
  [[noreturn]] void fail_with(const char* what, int error) const;

  std::filesystem::path path_, name_;
  Mode mode_;
  int fd_ = -1;
  uint64_t start_ = 0, pos_ = 0;  ///< the size at open; where the next byte goes (`buffer_` not yet written)
  std::string buffer_;
};

/// Writes `bytes` to `path` (created or truncated) with checked POSIX calls — open, write (EINTR and short writes
/// handled), fsync, close — and on failure removes the partial file and throws Error "<name>: write failed (No space
/// left on device)"; `name` defaults to `path`.
void write_file_checked(const std::filesystem::path& path, std::string_view bytes,
                        const std::filesystem::path& name = {});

}  // namespace shardgan
