#include "pack_output.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "data/manifest.hpp"
#include "shardgan/config.hpp"
#include "util/error.hpp"

namespace shardgan::pack {
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

PackOutput::PackOutput(const OutputOptions& options, data::ShardSchema schema)
    : options_(options),
      schema_(schema),
      staging_((check_replaceable(options.out, options.force, replace_rule(options)), options.out)),
      writer_(staging_.path(), std::move(schema), options.shard_size) {}

void PackOutput::skip(data::SkippedInput skipped) {
  std::cerr << "shardgan-pack: skipped " << skipped.id << " (" << skipped.file << "): " << skipped.reason << '\n';
  skipped_.push_back(std::move(skipped));
}

data::Manifest PackOutput::finish(const std::string& what_was_selected) {
  throw_if_interrupted();
  if (writer_.count() == 0) fail(what_was_selected, ": the selection holds no images; nothing to pack");
  data::Manifest m = data::finish_dataset(writer_, schema_, SHARDGAN_VERSION);
  m.command_line = options_.command_line;
  m.skipped = skipped_;
  m.source_info = source_info_;
  m.save(staging_.path());
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
