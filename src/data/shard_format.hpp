#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "data/h5.hpp"

/// The shard format (docs/data-format.md): one implementation shared by shardgan-pack (writer) and the trainer,
/// `verify` and `info` (reader), so that writer and reader cannot disagree.
namespace shardgan::data {

inline constexpr int kFormatVersion = 1;
inline constexpr const char* kFormatName = "shardgan-shards";
inline constexpr const char* kManifestName = "manifest.json";

/// "shard-00003.h5"
std::string shard_file_name(int index);

/// The largest image side a shard may declare (a bound checked before anything is allocated for its images).
inline constexpr unsigned long long kMaxImageSide = 16384;

struct ImageShape {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::size_t bytes() const { return static_cast<std::size_t>(height) * width * channels; }
  bool operator==(const ImageShape& o) const {
    return height == o.height && width == o.width && channels == o.channels;
  }
  bool operator!=(const ImageShape& o) const { return !(*this == o); }
};

/// What models are built for: the data's image shape and classes (stored in checkpoints so that sampling needs no
/// data).
struct DataSpec {
  ImageShape shape;
  std::vector<std::string> class_names;
};

/// A per-image column besides /images, /labels and /ids: `/source_labels` (int64), `/meta/age` (float32), ...
enum class ColumnType { kInt64, kFloat32, kString };
struct ColumnSpec {
  std::string path;
  ColumnType type;
};
using ColumnValue = std::variant<int64_t, float, std::string>;

/// What every shard of one packed data set shares.
struct ShardSchema {
  std::string source;  ///< "cifar10", "ham10000", "fashion-mnist"
  ImageShape shape;
  std::vector<std::string> class_names;  ///< index = encoded label
  std::vector<ColumnSpec> columns;       ///< extra per-image columns, in the order `append` receives them
};

/// One written shard, as the manifest lists it.
struct ShardInfo {
  std::string file;
  int64_t count = 0;
  uint64_t bytes = 0;
  std::string checksum;
};

/// Writes shard-NNNNN.h5 files into a folder, `shard_size` images each, streaming: images go to disk in chunk-sized
/// blocks, only the small per-image columns of the open shard are held in memory. Same appends → same bytes.
class ShardWriter {
 public:
  ShardWriter(std::filesystem::path dir, ShardSchema schema, int64_t shard_size);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  /// Appends one image (H*W*C bytes, HWC order), its encoded label, its id and one value per schema column.
  void append(const uint8_t* pixels, int64_t label, std::string_view id, const std::vector<ColumnValue>& columns);
  /// Closes the last shard, stamps `num_shards` into every shard and returns them with sizes and checksums.
  std::vector<ShardInfo> finish();
  int64_t count() const { return total_; }
  const std::vector<int64_t>& class_counts() const { return class_counts_; }

 private:
  class OpenShard;
  void close_shard();

  std::filesystem::path dir_;
  ShardSchema schema_;
  int64_t shard_size_;
  int64_t total_ = 0;
  int shards_closed_ = 0;
  std::vector<int64_t> class_counts_;
  std::unique_ptr<OpenShard> open_;
  std::vector<std::string> files_;
  std::vector<int64_t> shard_counts_;
};

/// Read access to one shard file. Opens read-only; many readers of one file are fine.
class ShardReader {
 public:
  explicit ShardReader(const std::filesystem::path& file);

  const std::filesystem::path& path() const { return path_; }
  int64_t count() const { return count_; }
  const ImageShape& shape() const { return shape_; }
  std::string source() const;
  int64_t format_version() const;
  int64_t shard_index() const;
  int64_t num_shards() const;
  std::vector<std::string> class_names() const;

  /// Copies images [begin, begin + n) into `out` (n * shape().bytes() bytes). Thread-safe when direct() (several
  /// loader threads may read one shard at once); through HDF5 otherwise.
  void read_images(int64_t begin, int64_t n, uint8_t* out) const;
  /// Whether rows are read with pread(2) at offsets taken from /images' chunk index at open: true for what
  /// shardgan-pack writes (unfiltered chunks of whole images, or contiguous storage), all within the file. Other
  /// layouts (compressed chunks, say, written by another tool) are read through HDF5, which serialises its calls.
  bool direct() const { return !chunk_offsets_.empty(); }
  std::vector<int64_t> labels() const;
  std::vector<std::string> ids() const;
  bool has(const std::string& path) const;
  std::vector<int64_t> int64_column(const std::string& path) const;
  std::vector<float> float_column(const std::string& path) const;
  std::vector<std::string> string_column(const std::string& path) const;

 private:
  std::filesystem::path path_;
  std::string context_;
  h5::Handle file_;
  h5::Handle images_;
  int64_t count_ = 0;
  uintmax_t bytes_at_open_ = 0;
  ImageShape shape_;
  /// Direct reads: the file (its own descriptor, shared by copies), rows per chunk and each chunk's file offset.
  std::shared_ptr<const int> fd_;
  int64_t chunk_rows_ = 0;
  std::vector<uint64_t> chunk_offsets_;
  void map_chunks();
};

}  // namespace shardgan::data
