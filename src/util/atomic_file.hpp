#pragma once
#include <filesystem>
#include <functional>
#include <string>

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

/// write_file_atomically with `text` as the content.
void write_text_atomically(const std::filesystem::path& file, const std::string& text);

}  // namespace shardgan
