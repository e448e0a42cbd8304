#include "util/atomic_file.hpp"

#include <fstream>

#include "util/error.hpp"

namespace shardgan {
namespace fs = std::filesystem;

void write_file_atomically(const fs::path& file, const std::function<void(const fs::path& tmp)>& write) {
  const fs::path tmp = file.string() + ".tmp";
  std::error_code ignored;
  try {
    write(tmp);
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
