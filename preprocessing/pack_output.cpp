#include "pack_output.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>

#include <unistd.h>

#include "data/manifest.hpp"
#include "shardgan/config.hpp"
#include "util/clock_time.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"
#include "util/random.hpp"

namespace shardgan::pack {
namespace fs = std::filesystem;

namespace {

std::atomic<int> g_signal{0};

void on_signal(int signal) {
  g_signal.store(signal);
}

/// --force replaces an empty folder or a packed data set (its manifest.json readable), nothing else.
ReplaceRule replace_rule(const OutputOptions& options) {
  ReplaceRule rule;
  rule.inputs = options.inputs;
  rule.output_kind = "a packed data set (manifest.json)";
  rule.is_previous_output = [](const std::filesystem::path& dir) {
    try {
      data::Manifest::load(dir);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
  return rule;
}

}  // namespace

std::string format_bytes(uint64_t bytes) {
  char text[32];
  if (bytes >= (1ull << 30)) {
    std::snprintf(text, sizeof(text), "%.2f GiB", bytes / double(1ull << 30));
  } else if (bytes >= (1ull << 20)) {
    std::snprintf(text, sizeof(text), "%.1f MiB", bytes / double(1ull << 20));
  } else {
    std::snprintf(text, sizeof(text), "%.1f KiB", bytes / 1024.0);
  }
  return text;
}

void install_interrupt_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

void throw_if_interrupted() {
  if (const int s = g_signal.load()) fail("interrupted by signal ", s, "; no output written");
}

std::vector<bool> stratified_subset(const std::vector<int64_t>& labels, const std::vector<std::string>& ids,
                                    int64_t max_images, std::size_t classes) {
  const std::size_t n = labels.size();
  if (max_images <= 0 || static_cast<std::size_t>(max_images) >= n) return std::vector<bool>(n, true);
  std::vector<std::vector<std::size_t>> members(classes);
  for (std::size_t i = 0; i < n; ++i) members.at(static_cast<std::size_t>(labels[i])).push_back(i);
  // Quotas: floor of each class's exact share, then one more for the largest fractional parts.
  std::vector<int64_t> quota(classes);
  std::vector<std::pair<double, std::size_t>> remainders;
  int64_t given = 0;
  for (std::size_t c = 0; c < classes; ++c) {
    const double exact =
        static_cast<double>(max_images) * static_cast<double>(members[c].size()) / static_cast<double>(n);
    quota[c] = static_cast<int64_t>(exact);
    given += quota[c];
    remainders.emplace_back(exact - static_cast<double>(quota[c]), c);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t k = 0; given < max_images && k < remainders.size(); ++k, ++given) ++quota[remainders[k].second];
  // Within a class: the lowest hashes of the ids (FNV-1a, then splitmix64 to spread similar ids).
  const auto hash = [](const std::string& id) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char ch : id) h = (h ^ ch) * 1099511628211ull;
    return rng::splitmix64(h);
  };
  std::vector<bool> keep(n, false);
  for (std::size_t c = 0; c < classes; ++c) {
    std::vector<std::pair<uint64_t, std::size_t>> ranked;
    for (std::size_t i : members[c]) ranked.emplace_back(hash(ids[i]), i);
    std::sort(ranked.begin(), ranked.end());
    for (int64_t k = 0; k < quota[c]; ++k) keep[ranked[static_cast<std::size_t>(k)].second] = true;
  }
  return keep;
}

PackOutput::PackOutput(const OutputOptions& options, data::ShardSchema schema)
    : options_(options),
      schema_(schema),
      staging_((check_replaceable(options.out, options.force, replace_rule(options)), options.out)) {
  if (options.max_images < 0) fail("--max-images: ", options.max_images, " is negative (0: every image)");
  const fs::path dir = options.max_images > 0 ? staging_.path() / "all" : staging_.path();
  fs::create_directories(dir);
  writer_ = std::make_unique<data::ShardWriter>(dir, std::move(schema), options.shard_size);
}

// A shard writer whose write or close failed (a full disk: HDF5's H5Fclose fails flushing its caches) is not
// destroyed: HDF5 1.10 keeps the identifier of a file whose close failed, and the writer's destructor closes it a
// second time, which crashes inside H5F__close (SIGSEGV before the error is printed, the staging folder left
// behind). It is left to the process's end instead; the staging folder is still removed (member order: staging_
// is destroyed after writer_).
PackOutput::~PackOutput() = default;

void PackOutput::append(const uint8_t* pixels, int64_t label, std::string_view id,
                        const std::vector<data::ColumnValue>& columns) {
  writer_->append(pixels, label, id, columns);
}

void PackOutput::inputs_done(int64_t n) {
  using namespace std::chrono;
  done_inputs_ += n;
  const auto now = steady_clock::now();
  static const bool terminal = isatty(STDERR_FILENO) != 0;
  if (now - start_ < seconds(2) || (progress_shown_ && now - shown_ < (terminal ? milliseconds(200) : seconds(3))))
    return;
  shown_ = now;
  progress_shown_ = true;
  const double elapsed = duration<double>(now - start_).count();
  const double rate = static_cast<double>(done_inputs_) / elapsed;
  const int64_t total = std::max(total_inputs_, done_inputs_);
  const std::string eta = rate > 0 ? clock_time(static_cast<double>(total - done_inputs_) / rate) : std::string("?");
  std::fprintf(stderr, "%sshardgan-pack: %lld/%lld inputs (%.1f %%), %.0f/s, elapsed %s, eta %s%s",
               terminal ? "\r" : "", static_cast<long long>(done_inputs_), static_cast<long long>(total),
               100.0 * static_cast<double>(done_inputs_) / static_cast<double>(std::max<int64_t>(total, 1)), rate,
               clock_time(elapsed).c_str(), eta.c_str(), terminal ? "\033[K" : "\n");
  std::fflush(stderr);
}

void PackOutput::select_subset() {
  const fs::path all_dir = staging_.path() / "all";
  const std::vector<data::ShardInfo> staged = writer_->finish();
  std::vector<int64_t> labels;
  std::vector<std::string> ids;
  for (const auto& shard : staged) {
    const data::ShardReader reader(all_dir / shard.file);
    for (int64_t label : reader.labels()) labels.push_back(label);
    for (auto& id : reader.ids()) ids.push_back(std::move(id));
  }
  const std::vector<bool> keep = stratified_subset(labels, ids, options_.max_images, schema_.class_names.size());
  note("max_images", std::to_string(options_.max_images));
  note("selected_from", std::to_string(labels.size()));
  note("selection", "stratified by class; within a class the lowest hashes of the ids");
  writer_ = std::make_unique<data::ShardWriter>(staging_.path(), schema_, options_.shard_size);
  std::size_t row = 0;
  std::vector<uint8_t> pixels;
  for (const auto& shard : staged) {
    const data::ShardReader reader(all_dir / shard.file);
    const std::size_t bytes = reader.shape().bytes();
    pixels.resize(bytes * static_cast<std::size_t>(reader.count()));
    reader.read_images(0, reader.count(), pixels.data());
    std::vector<std::vector<data::ColumnValue>> columns(static_cast<std::size_t>(reader.count()));
    for (const auto& column : schema_.columns) {
      const auto add = [&](const auto& values) {
        for (std::size_t i = 0; i < values.size(); ++i) columns[i].emplace_back(values[i]);
      };
      if (column.type == data::ColumnType::kInt64) add(reader.int64_column(column.path));
      if (column.type == data::ColumnType::kFloat32) add(reader.float_column(column.path));
      if (column.type == data::ColumnType::kString) add(reader.string_column(column.path));
    }
    for (int64_t i = 0; i < reader.count(); ++i, ++row)
      if (keep[row])
        append(pixels.data() + static_cast<std::size_t>(i) * bytes, labels[row], ids[row],
               columns[static_cast<std::size_t>(i)]);
    throw_if_interrupted();
  }
  fs::remove_all(all_dir);
}

void PackOutput::skip(data::SkippedInput skipped) {
  if (skipped_.size() < kSkipsShown) {
    std::cerr << "shardgan-pack: skipped " << shardgan::quoted(skipped.id) << " (" << shardgan::quoted(skipped.file)
              << "): " << shardgan::quoted(skipped.reason, 4 * kMaxQuoted) << '\n';
  } else if (skipped_.size() == kSkipsShown) {
    std::cerr << "shardgan-pack: skipping more inputs; only the first " << kSkipsShown
              << " are shown here (manifest.json lists every one)\n";
  }
  skipped_.push_back(std::move(skipped));
}

// Manifest::save says "<file>: cannot write" without the reason; the reason the system gave (errno, set by the write
// that failed: "No space left on device") is added here, until it says so itself.
void PackOutput::save_manifest(const data::Manifest& m) {
  errno = 0;
  try {
    m.save(staging_.path());
  } catch (const Error& e) {
    const int error = errno;
    const std::string message = e.what();
    if (error == 0 || message.find(std::strerror(error)) != std::string::npos) throw;
    fail(message, " (", std::strerror(error), ")");
  }
}

data::Manifest PackOutput::finish(const std::string& what_was_selected) {
  if (progress_shown_ && isatty(STDERR_FILENO) != 0) std::fprintf(stderr, "\n");  // ends the updating line
  throw_if_interrupted();
  if (writer_->count() == 0) fail(what_was_selected, ": the selection holds no images; nothing to pack");
  if (options_.max_images > 0) select_subset();
  data::Manifest m = data::finish_dataset(*writer_, schema_, SHARDGAN_VERSION);
  m.command_line = options_.command_line;
  m.skipped = skipped_;
  m.source_info = source_info_;
  save_manifest(m);
  check_replaceable(options_.out, options_.force, replace_rule(options_));  // again: it may have changed meanwhile
  staging_.commit(options_.force);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  uint64_t bytes = 0;
  for (const auto& s : m.shards) bytes += s.bytes;
  std::printf("packed %lld images (%dx%dx%d, %zu classes) into %zu shard(s), %s, in %.2f s (%.0f img/s) -> %s\n",
              static_cast<long long>(m.total_count), m.shape.height, m.shape.width, m.shape.channels,
              m.class_names.size(), m.shards.size(), format_bytes(bytes).c_str(), seconds, m.total_count / seconds,
              staging_.target().c_str());
  if (!m.skipped.empty()) std::printf("skipped %zu input(s); listed in manifest.json\n", m.skipped.size());
  return m;
}

}  // namespace shardgan::pack
