// A shard file as an attacker who also controls manifest.json would write it: the bytes become shard-00000.h5,
// a manifest naming it with its true checksum is written beside it, and the trainer's reader opens the set (every
// check of data.verify) and reads a batch. What stands between HDF5's own parser and hostile bytes elsewhere is the
// checksum; here the harness passes it on purpose.
#include <vector>

#include "data/manifest.hpp"
#include "data/shard_dataset.hpp"
#include "fuzz_support.hpp"
#include "util/checksum.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace shardgan;
  const auto& dir = fuzz::fresh_scratch();
  fuzz::write_file(dir / "shard-00000.h5", data, size);
  fuzz::only_errors([&] {
    data::ShardReader probe(dir / "shard-00000.h5");  // the manifest claims what the file says, as an attacker would
    data::Manifest m;
    m.source = "fuzz";
    m.shape = probe.shape();
    m.total_count = probe.count();
    m.class_names = probe.class_names();
    m.class_counts.assign(m.class_names.size(), 0);
    for (int64_t label : probe.labels())
      if (label >= 0 && static_cast<std::size_t>(label) < m.class_counts.size()) ++m.class_counts[label];
    data::ShardInfo shard;
    shard.file = "shard-00000.h5";
    shard.count = probe.count();
    shard.bytes = static_cast<uint64_t>(size);
    shard.checksum = file_checksum(dir / "shard-00000.h5");
    m.shards.push_back(shard);
    m.save(dir);
    data::ShardDataset::Options options;
    options.cache = data::Cache::kStream;
    data::ShardDataset set(dir, options);
    const int64_t n = std::min<int64_t>(set.size(), 4);
    std::vector<int64_t> indices;
    for (int64_t i = 0; i < n; ++i) indices.push_back(i);
    std::vector<uint8_t> out(static_cast<std::size_t>(n) * set.shape().bytes());
    set.read(indices, out.data());
    set.ids();
  });
  return 0;
}
