#include "data/shard_dataset.hpp"

#include <algorithm>
#include <mutex>
#include <numeric>

#include "data/dataset_check.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::data {
namespace {
/// Reads through HDF5 (shards not read directly) from several loader threads take turns: the library is one global
/// state (Debian builds it thread-safe, i.e. with its own global lock; other builds are not safe at all).
std::mutex hdf5_reads;
}  // namespace

ShardDataset::ShardDataset(const std::filesystem::path& dir, const Options& options) {
  if (file_kind(dir) == FileKind::kMissing)
    fail(dir.string(), ": data folder does not exist (pack it first with shardgan-pack)");
  require_directory(dir, "data folder");  // a FIFO, a file, a dangling link: named for what it is
  CheckOptions check;
  check.checksums = options.verify;
  check.checksum_part = options.verify_part;
  check.checksum_parts = options.verify_parts;
  const auto problems = check_dataset(dir, check);
  if (!problems.empty())
    fail(dir.string(), ": ", problems.front(),
         problems.size() > 1 ? cat(" (and ", problems.size() - 1, " more problem(s); run shardgan-pack verify)") : "");
  manifest_ = Manifest::load(dir);
  int64_t offset = 0;
  for (const auto& info : manifest_.shards) {
    shards_.emplace_back(dir / info.file);
    offsets_.push_back(offset);
    offset += shards_.back().count();
    const auto l = shards_.back().labels();
    labels_.insert(labels_.end(), l.begin(), l.end());
  }
  const uint64_t bytes = static_cast<uint64_t>(size()) * shape().bytes();
  const bool memory =
      options.cache == Cache::kMemory || (options.cache == Cache::kAuto && bytes <= options.memory_budget);
  if (memory) {
    memory_.resize(bytes);
    for (std::size_t s = 0; s < shards_.size(); ++s)
      shards_[s].read_images(0, shards_[s].count(), memory_.data() + offsets_[s] * shape().bytes());
  }
}

std::vector<std::string> ShardDataset::ids() const {
  std::vector<std::string> all;
  for (const auto& shard : shards_) {
    auto ids = shard.ids();
    all.insert(all.end(), std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end()));
  }
  return all;
}

void ShardDataset::read(const std::vector<int64_t>& indices, uint8_t* out) const {
  const std::size_t image = shape().bytes();
  if (in_memory()) {
    for (std::size_t i = 0; i < indices.size(); ++i)
      std::copy_n(memory_.data() + indices[i] * image, image, out + i * image);
    return;
  }
  // Streaming: read in index order (runs of consecutive rows in one read), scatter to the requested order.
  std::vector<std::size_t> order(indices.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return indices[a] < indices[b]; });
  std::vector<uint8_t> run;
  for (std::size_t k = 0; k < order.size();) {
    const int64_t first = indices[order[k]];
    if (first < 0 || first >= size()) fail("image index ", first, " outside the data set (", size(), " images)");
    const auto shard =
        static_cast<std::size_t>(std::upper_bound(offsets_.begin(), offsets_.end(), first) - offsets_.begin() - 1);
    const int64_t shard_end = offsets_[shard] + shards_[shard].count();
    std::size_t end = k + 1;
    while (end < order.size() && indices[order[end]] == indices[order[end - 1]] + 1 && indices[order[end]] < shard_end)
      ++end;
    const auto n = static_cast<int64_t>(end - k);
    run.resize(static_cast<std::size_t>(n) * image);
    if (shards_[shard].direct()) {
      shards_[shard].read_images(first - offsets_[shard], n, run.data());
    } else {
      std::lock_guard<std::mutex> lock(hdf5_reads);
      shards_[shard].read_images(first - offsets_[shard], n, run.data());
    }
    for (std::size_t j = k; j < end; ++j) std::copy_n(run.data() + (j - k) * image, image, out + order[j] * image);
    k = end;
  }
}

}  // namespace shardgan::data
