#pragma once
// Every input is checked for what it is before it is read, and every read has a stated maximum: a FIFO, a device or
// an endless file gives one clear line instead of a hang or a process that grows until something kills it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace shardgan {

/// What a path is, following symbolic links (a link to a device is a device).
enum class FileKind { kMissing, kDanglingLink, kRegular, kDirectory, kFifo, kCharDevice, kBlockDevice, kSocket, kOther };
FileKind file_kind(const std::filesystem::path& path);
/// "is missing", "is a dangling symbolic link", "is a directory", "is a FIFO", "is a character device", ...
const char* describe(FileKind kind);

/// Error "<what> <path>: is a FIFO (a regular file is needed)" unless `path` is a regular file.
void require_regular_file(const std::filesystem::path& path, std::string_view what);
/// Error "<what> <path>: is a FIFO (a directory is needed)" unless `path` is a directory.
void require_directory(const std::filesystem::path& path, std::string_view what);

/// The stated maxima of what shardgan reads whole or line by line.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;       ///< a run configuration (TOML)
inline constexpr std::size_t kMaxManifestBytes = 64 << 20;    ///< a data set's manifest.json
inline constexpr std::size_t kMaxStateBytes = 16 << 20;      ///< a checkpoint's state.json (class names: up to 65,536)
inline constexpr std::size_t kMaxMetricsLineBytes = 1 << 20;  ///< one line of metrics.jsonl
inline constexpr std::size_t kMaxQuoted = 200;                ///< characters of an input quoted in a message

/// Reads the regular file `path` whole; Error naming it when it is not a regular file, cannot be read, or is larger
/// than `max_bytes` ("... is over the 1 MiB limit of a run configuration"). Opens without blocking (a FIFO that
/// appeared after the check is refused, not waited on) and never holds more than max_bytes + 1 bytes.
std::string read_bounded(const std::filesystem::path& path, std::size_t max_bytes, std::string_view what);

/// Reads lines ('\n'-terminated; the last may lack it) of at most `max_line` bytes each, in bounded memory.
class LineReader {
 public:
  LineReader(const std::filesystem::path& path, std::size_t max_line, std::string_view what);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  /// The next line without its '\n'; false at the end. A line longer than max_line is Error naming the file and
  /// the line number, unless `overlong` is given: then it is skipped (read in pieces) and *overlong set to true.
  bool next(std::string& line, bool* overlong = nullptr);
  /// Byte offset of the start of the line `next` returned last.
  uint64_t line_offset() const { return line_offset_; }
  int64_t line_number() const { return line_number_; }

 private:
  std::FILE* file_ = nullptr;
  std::filesystem::path path_;
  std::string what_;
  std::size_t max_line_;
  uint64_t offset_ = 0, line_offset_ = 0;
  int64_t line_number_ = 0;
};

/// `text` for a message: at most `max` characters, the rest replaced by "...(N more bytes)", control characters
/// (newlines, NULs) shown as '?', so that an error line stays one short line whatever the input holds.
std::string quoted(std::string_view text, std::size_t max = kMaxQuoted);
/// The same for a std::string and a C string: without these, an unqualified quoted(str) or quoted(str, n) finds
/// std::quoted by argument-dependent lookup and prefers it (quoted(str, 64) would be std::quoted with '@' as the
/// delimiter, the whole text streamed).
inline std::string quoted(const std::string& text, std::size_t max = kMaxQuoted) {
  return quoted(std::string_view(text), max);
}
inline std::string quoted(const char* text, std::size_t max = kMaxQuoted) {
  return quoted(std::string_view(text), max);
}

/// "1 MiB", "64 MiB", "512 KiB", "300 bytes".
std::string byte_size(uint64_t bytes);

}  // namespace shardgan
