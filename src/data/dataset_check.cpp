#include "data/dataset_check.hpp"

#include <algorithm>
#include <numeric>

#include "util/checksum.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::data {
namespace fs = std::filesystem;

namespace {

void check_shard(const fs::path& dir, const Manifest& m, std::size_t index, const CheckOptions& options,
                 std::vector<int64_t>& class_counts, std::vector<std::string>& problems) {
  const ShardInfo& info = m.shards[index];
  const fs::path path = dir / info.file;
  const std::string name = shardgan::quoted(info.file);
  if (info.file != shard_file_name(static_cast<int>(index)))
    problems.push_back(cat(name, ": listed as shard ", index, ", expected the name ", shard_file_name(int(index))));
  // What it is before anything reads it: "is missing" only when nothing is there; a folder, a device (a link to
  // /dev/null), a FIFO (which would block the checksum) or a dangling link is named as such.
  if (const FileKind kind = file_kind(path); kind != FileKind::kRegular) {
    problems.push_back(
        cat(name, ": ", describe(kind), kind == FileKind::kMissing ? "" : " (a regular file is needed)"));
    return;
  }
  const auto bytes = fs::file_size(path);
  if (bytes != info.bytes) {
    problems.push_back(cat(name, ": size is ", bytes, " bytes, manifest says ", info.bytes));
    return;
  }
  if (options.checksums && index % std::max<std::size_t>(1, options.checksum_parts) == options.checksum_part) {
    const std::string sum = file_checksum(path);
    if (sum != info.checksum) {
      problems.push_back(cat(name, ": checksum ", sum, " does not match the manifest's ", info.checksum));
      return;
    }
  }
  if (!options.contents) return;
  try {
    ShardReader shard(path);
    if (shard.count() != info.count)
      problems.push_back(cat(name, ": holds ", shard.count(), " images, manifest says ", info.count));
    if (shard.shape() != m.shape)
      problems.push_back(cat(name, ": image shape ", shard.shape().height, "x", shard.shape().width, "x",
                             shard.shape().channels, " differs from the manifest's ", m.shape.height, "x",
                             m.shape.width, "x", m.shape.channels));
    if (shard.class_names() != m.class_names) problems.push_back(cat(name, ": class_names differ from the manifest"));
    if (shard.source() != m.source) problems.push_back(cat(name, ": source differs from the manifest"));
    if (shard.format_version() != m.format_version) problems.push_back(cat(name, ": format_version differs"));
    if (shard.shard_index() != static_cast<int64_t>(index))
      problems.push_back(cat(name, ": shard_index is ", shard.shard_index(), ", expected ", index));
    if (shard.num_shards() != static_cast<int64_t>(m.shards.size()))
      problems.push_back(cat(name, ": num_shards is ", shard.num_shards(), ", expected ", m.shards.size()));
    const auto labels = shard.labels();
    if (static_cast<int64_t>(labels.size()) != shard.count())
      problems.push_back(cat(name, ": /labels has ", labels.size(), " entries for ", shard.count(), " images"));
    for (std::size_t row = 0; row < labels.size(); ++row) {
      const int64_t label = labels[row];
      if (label < 0 || label >= static_cast<int64_t>(m.class_names.size())) {
        problems.push_back(cat(name, ": row ", row, ": label ", label, " outside 0..", m.class_names.size() - 1));
        break;
      }
      ++class_counts[static_cast<std::size_t>(label)];
    }
    const auto ids = shard.ids();
    if (static_cast<int64_t>(ids.size()) != shard.count())
      problems.push_back(cat(name, ": /ids has ", ids.size(), " entries for ", shard.count(), " images"));
  } catch (const Error& e) {
    problems.push_back(e.what());
  }
}

}  // namespace

std::vector<std::string> check_dataset(const fs::path& dir, const CheckOptions& options) {
  std::vector<std::string> problems;
  Manifest m;
  try {
    m = Manifest::load(dir);
  } catch (const Error& e) {
    return {e.what()};
  }
  if (m.class_counts.size() != m.class_names.size())
    problems.push_back(
        cat(kManifestName, ": ", m.class_counts.size(), " class counts for ", m.class_names.size(), " class names"));
  const int64_t listed = std::accumulate(m.shards.begin(), m.shards.end(), int64_t{0},
                                         [](int64_t acc, const ShardInfo& s) { return acc + s.count; });
  if (listed != m.total_count)
    problems.push_back(cat(kManifestName, ": shards hold ", listed, " images, total_count says ", m.total_count));
  std::vector<int64_t> class_counts(m.class_names.size(), 0);
  for (std::size_t i = 0; i < m.shards.size(); ++i) check_shard(dir, m, i, options, class_counts, problems);
  if (options.contents && problems.empty() && class_counts != m.class_counts)
    problems.push_back(cat(kManifestName, ": class_counts do not match the labels stored in the shards"));
  return problems;
}

}  // namespace shardgan::data
