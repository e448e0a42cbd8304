#pragma once
#include <filesystem>
#include <functional>
#include <string>

namespace shardgan {

/// The one way shardgan replaces a file: `write` fills a temporary file beside `file` (same folder, so the rename
/// is atomic), which is then renamed over `file`. Readers see the old or the new content, never a part. If `write`
/// throws or the rename fails, the temporary file is removed and the Error names `file`.
void write_file_atomically(const std::filesystem::path& file,
                           const std::function<void(const std::filesystem::path& tmp)>& write);

/// write_file_atomically with `text` as the content.
void write_text_atomically(const std::filesystem::path& file, const std::string& text);

}  // namespace shardgan
