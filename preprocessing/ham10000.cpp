#include "ham10000.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <opencv2/core.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "csv_table.hpp"
#include "image_index.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::pack {
namespace fs = std::filesystem;

namespace {

/// Rows decoded per round: the unit of parallel work and of memory held (compressed + decoded images).
constexpr std::size_t kBatchRows = 512;

const std::vector<std::string>& known_meta_columns() {
  static const std::vector<std::string> columns = {"lesion_id", "dx_type", "sex", "localization", "dataset"};
  return columns;
}

bool valid_dx(const std::string& dx) {
  if (dx.empty() || dx.size() > 32 || !(dx[0] >= 'a' && dx[0] <= 'z')) return false;
  return std::all_of(dx.begin(), dx.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
}

bool valid_image_id(const std::string& id) {
  return !id.empty() && std::none_of(id.begin(), id.end(),
                                     [](char c) { return c == '/' || c == '\\' || c == ' ' || c == '\t' || c == '"'; });
}

}  // namespace

HamMetadata read_ham_metadata(const fs::path& file) {
  const std::string where = file.string();
  CsvReader table(file, "metadata table");
  const int image_id = table.column("image_id");
  const int dx = table.column("dx");
  if (image_id < 0) fail(where, ": column 'image_id' is missing from the header");
  if (dx < 0) fail(where, ": column 'dx' is missing from the header");
  const int age = table.column("age");

  HamMetadata m;
  m.has_age = age >= 0;
  std::vector<int> meta_indices;
  for (const auto& name : known_meta_columns()) {
    const int c = table.column(name);
    if (c < 0) continue;
    m.meta_columns.push_back(name);
    meta_indices.push_back(c);
  }
  const auto& header = table.header();
  for (std::size_t c = 0; c < header.size(); ++c) {
    const auto& name = header[c];
    if (name != "image_id" && name != "dx" && name != "age" &&
        std::find(m.meta_columns.begin(), m.meta_columns.end(), name) == m.meta_columns.end())
      m.ignored_columns.push_back(name.empty() ? "(unnamed column " + std::to_string(c + 1) + ")" : name);
  }

  // Row by row: only the columns kept are held, and a bad row is refused as soon as it is read.
  std::unordered_map<std::string, int> seen;
  std::set<std::string> classes;
  for (CsvTable::Row r; table.next(r);) {
    if (m.rows.size() == kMaxHamRows)
      fail(where, ": line ", r.line, ": more than ", kMaxHamRows, " rows, the limit of a metadata table");
    HamRow row;
    row.line = r.line;
    row.image_id = std::move(r.fields[static_cast<std::size_t>(image_id)]);
    row.dx = std::move(r.fields[static_cast<std::size_t>(dx)]);
    if (!valid_image_id(row.image_id))
      fail(where, ": line ", r.line, ": image_id '", shardgan::quoted(row.image_id), "' is empty or not a file name");
    if (row.dx.empty()) fail(where, ": line ", r.line, ": dx is empty (image ", shardgan::quoted(row.image_id), ")");
    if (!valid_dx(row.dx))
      fail(where, ": line ", r.line, ": dx '", shardgan::quoted(row.dx),
           "' is not a diagnosis code (lower-case letters, digits, '_' or '-', like nv or mel)");
    const auto [it, fresh] = seen.emplace(row.image_id, r.line);
    if (!fresh)
      fail(where, ": line ", r.line, ": image_id ", shardgan::quoted(row.image_id), " repeats line ", it->second);
    row.age = std::nanf("");
    if (m.has_age) {
      const std::string& text = r.fields[static_cast<std::size_t>(age)];
      if (!text.empty()) {
        char* end = nullptr;
        row.age = std::strtof(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0' || !std::isfinite(row.age))
          fail(where, ": line ", r.line, ": age '", shardgan::quoted(text), "' is not a number");
      }
    }
    for (int c : meta_indices) row.meta.push_back(std::move(r.fields[static_cast<std::size_t>(c)]));
    classes.insert(row.dx);
    m.rows.push_back(std::move(row));
  }
  if (m.rows.empty()) fail(where, ": no rows after the header");
  m.class_names.assign(classes.begin(), classes.end());
  return m;
}

data::Manifest pack_ham10000(const Ham10000Options& options) {
  if (options.size < 4 || options.size > 1024) fail("--size: ", options.size, " is outside 4..1024");
  if (options.threads < 1) fail("--threads: must be at least 1");
  const HamMetadata metadata = read_ham_metadata(options.metadata);
  constexpr std::size_t kIgnoredShown = 10;  // a header of thousands of columns is not echoed column by column
  for (std::size_t i = 0; i < metadata.ignored_columns.size() && i < kIgnoredShown; ++i)
    std::cerr << "shardgan-pack: " << options.metadata.string() << ": ignoring column "
              << shardgan::quoted(metadata.ignored_columns[i]) << '\n';
  if (metadata.ignored_columns.size() > kIgnoredShown)
    std::cerr << "shardgan-pack: " << options.metadata.string() << ": ignoring "
              << metadata.ignored_columns.size() - kIgnoredShown << " more columns\n";
  const ImageIndex index(options.images, {".jpg", ".jpeg"});
  if (index.duplicates() > 0)
    std::cerr << "shardgan-pack: " << index.duplicates()
              << " image file(s) have an id seen before in --images; using the first of each\n";

  data::ShardSchema schema;
  schema.source = "ham10000";
  schema.shape = data::ImageShape{options.size, options.size, 3};
  schema.class_names = metadata.class_names;
  for (const auto& c : metadata.meta_columns) schema.columns.push_back({"/meta/" + c, data::ColumnType::kString});
  if (metadata.has_age) schema.columns.push_back({"/meta/age", data::ColumnType::kFloat32});

  PackOutput output(options.output, schema);
  output.note("metadata", options.metadata.filename().string());
  output.note("crop", options.crop == Crop::kCenter ? "center" : "none");
  output.note("resize", "area interpolation after DCT-domain downscaling");
  output.expect_inputs(static_cast<int64_t>(metadata.rows.size()));

  cv::setNumThreads(0);  // our threads do the parallel work
  std::vector<JpegResizer> decoders(static_cast<std::size_t>(options.threads));
  for (auto& d : decoders) d.set_max_pixels(options.max_pixels);
  const std::size_t image_bytes = schema.shape.bytes();
  const std::string csv = options.metadata.string();
  std::vector<uint8_t> pixels(kBatchRows * image_bytes);
  std::vector<std::string> errors(kBatchRows);
  std::vector<std::string> sources(kBatchRows);

  for (std::size_t first = 0; first < metadata.rows.size(); first += kBatchRows) {
    throw_if_interrupted();
    const std::size_t n = std::min(kBatchRows, metadata.rows.size() - first);
    std::atomic<std::size_t> next{0};
    auto work = [&](JpegResizer& decoder) {
      for (std::size_t i = next++; i < n; i = next++) {
        const HamRow& row = metadata.rows[first + i];
        errors[i].clear();
        const ImageLocation* location = index.find(row.image_id);
        if (location == nullptr) {
          sources[i] = csv + ":" + std::to_string(row.line);
          errors[i] = "image file " + shardgan::quoted(row.image_id) + ".jpg not found under --images";
          continue;
        }
        sources[i] = index.describe(*location);
        try {
          decoder.decode(index.read(*location), options.size, options.crop, pixels.data() + i * image_bytes);
        } catch (const std::exception& e) {  // any failure is this image's: it must not escape the thread
          errors[i] = e.what();
        } catch (...) {
          errors[i] = "unknown failure";
        }
      }
    };
    std::vector<std::thread> workers;
    for (std::size_t t = 1; t < decoders.size(); ++t) workers.emplace_back(work, std::ref(decoders[t]));
    work(decoders[0]);
    for (auto& w : workers) w.join();

    for (std::size_t i = 0; i < n; ++i) {
      const HamRow& row = metadata.rows[first + i];
      if (!errors[i].empty()) {
        if (options.on_error == OnError::kFail)
          fail(sources[i], ": image ", shardgan::quoted(row.image_id), " (metadata line ", row.line, "): ", errors[i],
               " (use --on-error skip to leave it out)");
        output.skip(data::SkippedInput{row.image_id, sources[i], errors[i]});
        continue;
      }
      std::vector<data::ColumnValue> columns(row.meta.begin(), row.meta.end());
      if (metadata.has_age) columns.emplace_back(row.age);
      const auto label =
          std::lower_bound(schema.class_names.begin(), schema.class_names.end(), row.dx) - schema.class_names.begin();
      output.append(pixels.data() + i * image_bytes, label, row.image_id, columns);
    }
    output.inputs_done(static_cast<int64_t>(n));
  }
  return output.finish(csv);
}

}  // namespace shardgan::pack
