#include "data/manifest.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/input_file.hpp"
#include "util/json_depth.hpp"

namespace shardgan::data {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

template <class T>
T get(const ordered_json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) fail(where, ": key '", key, "' is missing");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(where, ": key '", key, "' has the wrong type (", j.at(key).type_name(), ")");
  }
}

/// DIR/manifest.json as a JSON object; Error naming the folder or the file (`where`) when it is missing, unreadable,
/// nested too deep, not JSON, or not an object.
ordered_json read_object(const fs::path& dir, const std::string& where) {
  // What each is before anything is opened: a FIFO as manifest.json would block, /dev/zero would never end.
  if (file_kind(dir) == FileKind::kMissing) fail(dir.string(), ": not a packed data set folder (missing)");
  require_directory(dir, "data folder");
  const std::string text = read_bounded(dir / kManifestName, kMaxManifestBytes, "manifest");
  if (!json_depth_within(text)) fail(where, ": nests deeper than any manifest");
  ordered_json j;
  try {
    j = ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // syntax, and numbers out of range: e.what() quotes the input
    fail(where, ": not valid JSON (", shardgan::quoted(e.what()), ")");
  }
  if (!j.is_object()) fail(where, ": expected a JSON object");
  return j;
}

}  // namespace

void Manifest::save(const fs::path& dir) const {
  ordered_json j;
  j["format"] = kFormatName;
  j["format_version"] = format_version;
  j["source"] = source;
  j["tool"] = "shardgan-pack";
  j["tool_version"] = tool_version;
  j["command_line"] = command_line;
  j["image_shape"] = {shape.height, shape.width, shape.channels};
  j["class_names"] = class_names;
  j["class_counts"] = class_counts;
  j["total_count"] = total_count;
  j["shards"] = ordered_json::array();
  for (const auto& s : shards)
    j["shards"].push_back({{"file", s.file}, {"count", s.count}, {"bytes", s.bytes}, {"checksum", s.checksum}});
  j["skipped"] = ordered_json::array();
  for (const auto& s : skipped) j["skipped"].push_back({{"id", s.id}, {"file", s.file}, {"reason", s.reason}});
  j["source_info"] = ordered_json::object();
  for (const auto& [key, value] : source_info) j["source_info"][key] = value;

  const fs::path path = dir / kManifestName;
  std::ofstream out(path);
  out << j.dump(2) << '\n';
  out.close();
  if (!out) fail(path.string(), ": cannot write");
}

Manifest Manifest::load(const fs::path& dir) {
  const std::string where = (dir / kManifestName).string();
  ordered_json j = read_object(dir, where);
  if (get<std::string>(j, "format", where) != kFormatName) fail(where, ": key 'format' is not \"", kFormatName, "\"");
  Manifest m;
  m.format_version = static_cast<int>(std::clamp<int64_t>(get<int64_t>(j, "format_version", where), -1, 1 << 20));
  if (m.format_version != kFormatVersion)
    fail(where, ": format_version ", m.format_version, " is not supported (this build reads ", kFormatVersion, ")");
  m.source = get<std::string>(j, "source", where);
  m.tool_version = get<std::string>(j, "tool_version", where);
  m.command_line = get<std::vector<std::string>>(j, "command_line", where);
  const auto shape = get<std::vector<int64_t>>(j, "image_shape", where);
  if (shape.size() != 3) fail(where, ": key 'image_shape' must be [height, width, channels]");
  const auto side = static_cast<int64_t>(kMaxImageSide);
  if (shape[0] < 1 || shape[1] < 1 || shape[0] > side || shape[1] > side || (shape[2] != 1 && shape[2] != 3))
    fail(where, ": key 'image_shape' [", shape[0], ", ", shape[1], ", ", shape[2], "] is not an image shape");
  m.shape = ImageShape{static_cast<int>(shape[0]), static_cast<int>(shape[1]), static_cast<int>(shape[2])};
  m.class_names = get<std::vector<std::string>>(j, "class_names", where);
  m.class_counts = get<std::vector<int64_t>>(j, "class_counts", where);
  m.total_count = get<int64_t>(j, "total_count", where);
  const auto shards = get<ordered_json>(j, "shards", where);
  if (!shards.is_array()) fail(where, ": key 'shards' must be a list");
  int64_t counted = 0;
  for (const auto& s : shards) {
    const std::string w = where + ": shards[" + std::to_string(m.shards.size()) + "]";
    m.shards.push_back(ShardInfo{get<std::string>(s, "file", w), get<int64_t>(s, "count", w),
                                 get<uint64_t>(s, "bytes", w), get<std::string>(s, "checksum", w)});
    // Only the names the packer writes: a manifest cannot make a reader open a file outside its folder.
    if (m.shards.back().file != shard_file_name(static_cast<int>(m.shards.size() - 1)))
      fail(w, ": file '", shardgan::quoted(m.shards.back().file), "' is not ",
           shard_file_name(static_cast<int>(m.shards.size() - 1)));
    if (m.shards.back().count < 0 || m.shards.back().count > (int64_t{1} << 40))
      fail(w, ": count ", m.shards.back().count, " is out of range");
    counted += m.shards.back().count;
  }
  if (m.total_count != counted)
    fail(where, ": total_count ", m.total_count, " is not the sum of the shards' counts (", counted, ")");
  if (m.class_counts.size() != m.class_names.size())
    fail(where, ": ", m.class_counts.size(), " class_counts for ", m.class_names.size(), " class_names");
  if (j.contains("skipped")) {
    for (const auto& s : j["skipped"])
      m.skipped.push_back(SkippedInput{get<std::string>(s, "id", where), get<std::string>(s, "file", where),
                                       get<std::string>(s, "reason", where)});
  }
  if (j.contains("source_info")) {
    for (const auto& [key, value] : j["source_info"].items())
      m.source_info.emplace_back(key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  return m;
}

Manifest finish_dataset(ShardWriter& writer, const ShardSchema& schema, std::string tool_version) {
  Manifest m;
  m.source = schema.source;
  m.tool_version = std::move(tool_version);
  m.shape = schema.shape;
  m.class_names = schema.class_names;
  m.class_counts = writer.class_counts();
  m.total_count = writer.count();
  m.shards = writer.finish();
  return m;
}

}  // namespace shardgan::data
