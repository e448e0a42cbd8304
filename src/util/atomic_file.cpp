#include "util/atomic_file.hpp"

#include <fstream>

#include "util/error.hpp"

namespace shardgan {

void write_text_atomically(const std::filesystem::path& file, const std::string& text) {
  const std::filesystem::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      fail(file.string(), ": write failed (disk full or no permission?)");
    }
  }
  std::filesystem::rename(tmp, file);
}

}  // namespace shardgan
