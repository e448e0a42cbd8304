#pragma once
#include <filesystem>
#include <string>

namespace shardgan {

/// Writes `text` to FILE.tmp and renames it over `file`: readers see the old or the new content, never a part.
/// Error naming the file when the write fails (disk full, no permission); the temporary file is removed then.
void write_text_atomically(const std::filesystem::path& file, const std::string& text);

}  // namespace shardgan
