#include "dataset_info.hpp"

#include <iomanip>

#include "data/dataset_check.hpp"
#include "data/manifest.hpp"
#include "pack_output.hpp"

namespace shardgan::pack {

void print_dataset_info(const std::filesystem::path& dir, std::ostream& out) {
  const data::Manifest m = data::Manifest::load(dir);
  uint64_t bytes = 0;
  for (const auto& s : m.shards) bytes += s.bytes;
  out << dir.string() << '\n'
      << "  source:   " << m.source << " (packed by shardgan-pack " << m.tool_version << ", format " << m.format_version
      << ")\n"
      << "  images:   " << m.total_count << " x " << m.shape.height << "x" << m.shape.width << "x" << m.shape.channels
      << " uint8 (" << (m.shape.channels == 1 ? "grayscale" : "RGB") << ")\n"
      << "  classes:  " << m.class_names.size() << '\n';
  for (std::size_t c = 0; c < m.class_names.size(); ++c) {
    const int64_t count = c < m.class_counts.size() ? m.class_counts[c] : 0;
    out << "    " << std::setw(3) << c << "  " << std::left << std::setw(16) << m.class_names[c] << std::right
        << std::setw(9) << count << "  (" << std::fixed << std::setprecision(1)
        << (m.total_count ? 100.0 * count / m.total_count : 0.0) << "%)\n";
  }
  out << "  shards:   " << m.shards.size() << ", " << format_bytes(bytes) << " on disk\n";
  for (const auto& s : m.shards)
    out << "    " << s.file << "  " << std::setw(9) << s.count << " images  " << format_bytes(s.bytes) << "  "
        << s.checksum << '\n';
  for (const auto& [key, value] : m.source_info) out << "  " << key << ": " << value << '\n';
  out << "  skipped:  " << m.skipped.size() << '\n';
  for (const auto& s : m.skipped) out << "    " << s.id << ": " << s.reason << '\n';
}

bool verify_dataset(const std::filesystem::path& dir, std::ostream& out, std::ostream& err) {
  const auto problems = data::check_dataset(dir);
  for (const auto& p : problems) err << "shardgan-pack: verify: " << p << '\n';
  if (!problems.empty()) {
    err << "shardgan-pack: verify: " << dir.string() << ": " << problems.size() << " problem(s)\n";
    return false;
  }
  const data::Manifest m = data::Manifest::load(dir);
  out << "OK " << dir.string() << ": " << m.total_count << " images in " << m.shards.size()
      << " shard(s); checksums, shapes, attributes and labels agree with manifest.json\n";
  return true;
}

}  // namespace shardgan::pack
