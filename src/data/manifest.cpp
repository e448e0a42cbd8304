#include "data/manifest.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "util/error.hpp"

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
  const fs::path path = dir / kManifestName;
  const std::string where = path.string();
  if (!fs::is_directory(dir)) fail(dir.string(), ": not a packed data set folder (missing)");
  std::ifstream in(path);
  if (!in) fail(where, ": missing or unreadable");
  ordered_json j;
  try {
    j = ordered_json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail(where, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(where, ": expected a JSON object");
  if (get<std::string>(j, "format", where) != kFormatName) fail(where, ": key 'format' is not \"", kFormatName, "\"");
  Manifest m;
  m.format_version = get<int>(j, "format_version", where);
  if (m.format_version != kFormatVersion)
    fail(where, ": format_version ", m.format_version, " is not supported (this build reads ", kFormatVersion, ")");
  m.source = get<std::string>(j, "source", where);
  m.tool_version = get<std::string>(j, "tool_version", where);
  m.command_line = get<std::vector<std::string>>(j, "command_line", where);
  const auto shape = get<std::vector<int>>(j, "image_shape", where);
  if (shape.size() != 3) fail(where, ": key 'image_shape' must be [height, width, channels]");
  m.shape = ImageShape{shape[0], shape[1], shape[2]};
  m.class_names = get<std::vector<std::string>>(j, "class_names", where);
  m.class_counts = get<std::vector<int64_t>>(j, "class_counts", where);
  m.total_count = get<int64_t>(j, "total_count", where);
  for (const auto& s : get<ordered_json>(j, "shards", where)) {
    const std::string w = where + ": shards[" + std::to_string(m.shards.size()) + "]";
    m.shards.push_back(ShardInfo{get<std::string>(s, "file", w), get<int64_t>(s, "count", w),
                                 get<uint64_t>(s, "bytes", w), get<std::string>(s, "checksum", w)});
  }
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
