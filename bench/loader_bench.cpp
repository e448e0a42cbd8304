// The data loader alone, as the trainer drives it: one rank of a world of W takes its batches from a packed data set
// (memory cache or streamed from the shards) through the prefetching Loader, and nothing else runs. Prints one JSON
// line: images/s, MB/s delivered, bytes read from files (/proc/self/io), peak RSS.
//
//   loader_bench make DIR --images N --size S [--channels C] [--shard-size K]   a synthetic packed set (random pixels)
//   loader_bench read DIR [--cache stream|memory] [--batch B] [--world W] [--rank R] [--steps S] [--depth D]
//                         [--threads T]
//
// bench/loader_bench.sh runs it on sets larger than its memory budget and reads the page cache in and out.
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

#include "data/distributed_sampler.hpp"
#include "data/loader.hpp"
#include "data/shard_dataset.hpp"
#include "pack_output.hpp"
#include "util/error.hpp"

namespace {

using namespace shardgan;

uint64_t proc_io(const std::string& key) {
  std::ifstream in("/proc/self/io");
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v)
    if (k == key + ":") return v;
  return 0;
}

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

int make(const std::string& dir, int64_t images, int size, int channels, int64_t shard_size) {
  pack::OutputOptions options;
  options.out = dir;
  options.force = true;
  options.shard_size = shard_size;
  options.command_line = {"loader_bench", "make"};
  data::ShardSchema schema;
  schema.source = "cifar10";
  schema.shape = data::ImageShape{size, size, channels};
  schema.class_names = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  pack::PackOutput out(options, schema);
  std::mt19937_64 rng(7);
  std::vector<uint8_t> pixels(schema.shape.bytes());
  for (int64_t i = 0; i < images; ++i) {
    for (std::size_t j = 0; j < pixels.size(); j += 8) {
      const uint64_t r = rng();
      std::memcpy(pixels.data() + j, &r, std::min<std::size_t>(8, pixels.size() - j));
    }
    out.append(pixels.data(), i % 10, "img" + std::to_string(i));
  }
  out.finish("synthetic images");
  return 0;
}

int read(const std::string& dir, const std::string& cache, int64_t batch, int world, int rank, int64_t steps, int depth,
         int threads) {
  data::ShardDataset::Options options;
  options.verify = false;
  options.cache = cache == "memory" ? data::Cache::kMemory : data::Cache::kStream;
  const auto t_open = std::chrono::steady_clock::now();
  data::ShardDataset dataset(dir, options);
  const double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_open).count();
  data::DistributedSampler sampler(dataset.size(), batch, world, rank, 1);
  const uint64_t read_before = proc_io("rchar");
  const auto t0 = std::chrono::steady_clock::now();
  int64_t delivered = 0;
  {
    data::Loader loader(dataset, sampler, 0, steps, depth, threads);
    for (int64_t s = 0; s < steps; ++s) delivered += static_cast<int64_t>(loader.next().labels.size());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double bytes = static_cast<double>(delivered) * static_cast<double>(dataset.shape().bytes());
  std::printf(
      "{\"cache\": \"%s\", \"threads\": %d, \"images\": %lld, \"side\": %d, \"batch\": %lld, \"world\": %d, \"steps\": "
      "%lld, "
      "\"open_s\": %.3f, \"img_per_s\": %.0f, \"mb_per_s\": %.1f, \"file_bytes_per_image\": %.0f, "
      "\"peak_rss_mib\": %.1f}\n",
      cache.c_str(), threads, static_cast<long long>(dataset.size()), dataset.shape().height,
      static_cast<long long>(batch), world, static_cast<long long>(steps), open_s,
      static_cast<double>(delivered) / seconds, bytes / seconds / 1e6,
      static_cast<double>(proc_io("rchar") - read_before) / static_cast<double>(delivered),
      static_cast<double>(peak_rss_kib()) / 1024.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"loader_bench: the data loader alone (make a synthetic packed set, or read one as a rank would)"};
  app.require_subcommand(1);
  std::string dir, cache = "stream";
  int64_t images = 10000, shard_size = 10000, batch = 64, steps = 500;
  int size = 32, channels = 3, world = 1, rank = 0, depth = 3, threads = 1;
  auto* make_cmd = app.add_subcommand("make", "a synthetic packed set (random pixels)");
  make_cmd->add_option("dir", dir)->required();
  make_cmd->add_option("--images", images);
  make_cmd->add_option("--size", size);
  make_cmd->add_option("--channels", channels);
  make_cmd->add_option("--shard-size", shard_size);
  auto* read_cmd = app.add_subcommand("read", "one rank's batches through the prefetching Loader");
  read_cmd->add_option("dir", dir)->required();
  read_cmd->add_option("--cache", cache)->check(CLI::IsMember({"stream", "memory"}));
  read_cmd->add_option("--batch", batch);
  read_cmd->add_option("--world", world);
  read_cmd->add_option("--rank", rank);
  read_cmd->add_option("--steps", steps);
  read_cmd->add_option("--depth", depth);
  read_cmd->add_option("--threads", threads);
  CLI11_PARSE(app, argc, argv);
  if (*make_cmd) return make(dir, images, size, channels, shard_size);
  return read(dir, cache, batch, world, rank, steps, depth, threads);
} catch (const std::exception& e) {
  std::cerr << "loader_bench: " << e.what() << "\n";
  return 1;
}
