#include "data/shard_format.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/checksum.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::data {
namespace fs = std::filesystem;

namespace {

/// Images are chunked in blocks of about this many bytes: large enough for fast sequential reads, small enough that
/// a reader picking single rows does not read much more than it needs.
constexpr std::size_t kChunkBytes = 256 * 1024;

hsize_t chunk_rows_for(const ImageShape& shape, int64_t shard_size) {
  const auto rows =
      static_cast<int64_t>(std::max<std::size_t>(1, kChunkBytes / std::max<std::size_t>(1, shape.bytes())));
  return static_cast<hsize_t>(std::clamp<int64_t>(rows, 1, std::max<int64_t>(1, shard_size)));
}

using ColumnBuffer = std::variant<std::vector<int64_t>, std::vector<float>, std::vector<std::string>>;

ColumnBuffer empty_buffer(ColumnType type) {
  switch (type) {
    case ColumnType::kInt64: return std::vector<int64_t>{};
    case ColumnType::kFloat32: return std::vector<float>{};
    case ColumnType::kString: return std::vector<std::string>{};
  }
  return std::vector<int64_t>{};
}

/// Creates the groups on the way to `path` ("/meta/age" → "/meta").
void ensure_parent_groups(hid_t file, const std::string& path, const std::string& context) {
  for (std::size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    const std::string group = path.substr(0, pos);
    if (h5::exists(file, group)) continue;
    h5::Handle gcpl = h5::untimed_group_plist(context);
    h5::Handle g(
        h5::check(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT), context, "creating group " + group));
  }
}

}  // namespace

std::string shard_file_name(int index) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%05d.h5", index);
  return name;
}

/// The shard being written: its file, the extendible /images dataset and the buffered small columns.
class ShardWriter::OpenShard {
 public:
  OpenShard(const fs::path& file, const ShardSchema& schema, int index, int64_t shard_size)
      : context_(file.filename().string()), schema_(schema), index_(index) {
    file_ = h5::Handle(
        h5::check(H5Fcreate(file.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT), context_, "creating file"));
    const hsize_t h = schema.shape.height, w = schema.shape.width, c = schema.shape.channels;
    chunk_rows_ = chunk_rows_for(schema.shape, shard_size);
    const hsize_t dims[4] = {0, h, w, c};
    const hsize_t maxdims[4] = {H5S_UNLIMITED, h, w, c};
    const hsize_t chunk[4] = {chunk_rows_, h, w, c};
    h5::Handle space(H5Screate_simple(4, dims, maxdims));
    h5::Handle dcpl = h5::untimed_dataset_plist(context_);
    h5::check(H5Pset_chunk(dcpl, 4, chunk), context_, "setting /images chunks");
    images_ = h5::Handle(h5::check(H5Dcreate2(file_, "images", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                                   context_, "creating /images"));
    for (const auto& column : schema.columns) columns_.push_back(empty_buffer(column.type));
    block_.reserve(chunk_rows_ * schema.shape.bytes());
  }

  int64_t count() const { return static_cast<int64_t>(labels_.size()); }

  void append(const uint8_t* pixels, int64_t label, std::string_view id, const std::vector<ColumnValue>& values) {
    block_.insert(block_.end(), pixels, pixels + schema_.shape.bytes());
    labels_.push_back(label);
    ids_.emplace_back(id);
    for (std::size_t i = 0; i < values.size(); ++i) {
      std::visit(
          [&](auto& buffer) {
            using T = typename std::decay_t<decltype(buffer)>::value_type;
            buffer.push_back(std::get<T>(values[i]));
          },
          columns_[i]);
    }
    if (block_.size() >= chunk_rows_ * schema_.shape.bytes()) flush_block();
  }

  void close() {
    flush_block();
    const hsize_t n = labels_.size();
    h5::write_array(file_, "/labels", H5T_NATIVE_INT64, labels_.data(), n, context_);
    h5::write_strings(file_, "/ids", ids_, context_);
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      const std::string& path = schema_.columns[i].path;
      ensure_parent_groups(file_, path, context_);
      std::visit(
          [&](auto& buffer) {
            using T = typename std::decay_t<decltype(buffer)>::value_type;
            if constexpr (std::is_same_v<T, std::string>) {
              h5::write_strings(file_, path, buffer, context_);
            } else {
              h5::write_array(file_, path, std::is_same_v<T, float> ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64,
                              buffer.data(), n, context_);
            }
          },
          columns_[i]);
    }
    h5::Handle root(h5::check(H5Gopen2(file_, "/", H5P_DEFAULT), context_, "opening /"));
    h5::write_strings_attribute(root, "class_names", schema_.class_names, context_);
    h5::write_string_attribute(root, "source", schema_.source, context_);
    h5::write_int_attribute(root, "format_version", kFormatVersion, context_);
    h5::write_int_attribute(root, "shard_index", index_, context_);
    root.reset();
    images_.reset();
    h5::close_file(file_, context_);
  }

 private:
  void flush_block() {
    if (block_.empty()) return;
    const ImageShape& s = schema_.shape;
    const hsize_t rows = block_.size() / s.bytes();
    const hsize_t new_dims[4] = {written_ + rows, hsize_t(s.height), hsize_t(s.width), hsize_t(s.channels)};
    h5::check(H5Dset_extent(images_, new_dims), context_, "extending /images");
    h5::Handle file_space(H5Dget_space(images_));
    const hsize_t start[4] = {written_, 0, 0, 0};
    const hsize_t count[4] = {rows, hsize_t(s.height), hsize_t(s.width), hsize_t(s.channels)};
    h5::check(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr), context_,
              "selecting rows of /images");
    h5::Handle mem_space(H5Screate_simple(4, count, nullptr));
    h5::check(H5Dwrite(images_, H5T_NATIVE_UINT8, mem_space, file_space, H5P_DEFAULT, block_.data()), context_,
              "writing /images");
    written_ += rows;
    block_.clear();
  }

  std::string context_;
  const ShardSchema& schema_;
  int index_;
  h5::Handle file_;
  h5::Handle images_;
  hsize_t chunk_rows_ = 1;
  hsize_t written_ = 0;
  std::vector<uint8_t> block_;
  std::vector<int64_t> labels_;
  std::vector<std::string> ids_;
  std::vector<ColumnBuffer> columns_;
};

ShardWriter::ShardWriter(fs::path dir, ShardSchema schema, int64_t shard_size)
    : dir_(std::move(dir)), schema_(std::move(schema)), shard_size_(shard_size) {
  if (shard_size_ <= 0) fail("shard size must be positive, got ", shard_size_);
  if (schema_.shape.bytes() == 0) fail("image shape must be non-empty");
  if (schema_.class_names.empty()) fail("a data set needs at least one class");
  class_counts_.assign(schema_.class_names.size(), 0);
  h5::silence_errors();
}

ShardWriter::~ShardWriter() = default;

void ShardWriter::append(const uint8_t* pixels, int64_t label, std::string_view id,
                         const std::vector<ColumnValue>& columns) {
  if (label < 0 || label >= static_cast<int64_t>(schema_.class_names.size()))
    fail(id, ": label ", label, " is outside 0..", schema_.class_names.size() - 1);
  if (columns.size() != schema_.columns.size())
    fail(id, ": ", columns.size(), " column values for ", schema_.columns.size(), " columns");
  if (!open_) {
    const std::string name = shard_file_name(shards_closed_);
    open_ = std::make_unique<OpenShard>(dir_ / name, schema_, shards_closed_, shard_size_);
    files_.push_back(name);
  }
  open_->append(pixels, label, id, columns);
  ++class_counts_[static_cast<std::size_t>(label)];
  ++total_;
  if (open_->count() == shard_size_) close_shard();
}

void ShardWriter::close_shard() {
  if (!open_) return;
  open_->close();
  shard_counts_.push_back(open_->count());
  open_.reset();
  ++shards_closed_;
}

std::vector<ShardInfo> ShardWriter::finish() {
  close_shard();
  std::vector<ShardInfo> shards;
  for (std::size_t i = 0; i < files_.size(); ++i) {
    const fs::path path = dir_ / files_[i];
    {
      h5::Handle file(h5::check(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), files_[i], "reopening"));
      h5::write_int_attribute(file, "num_shards", static_cast<long long>(files_.size()), files_[i]);
      h5::close_file(file, files_[i]);
    }
    ShardInfo info;
    info.file = files_[i];
    info.count = shard_counts_[i];
    info.bytes = fs::file_size(path);
    info.checksum = file_checksum(path);
    shards.push_back(std::move(info));
  }
  return shards;
}

ShardReader::ShardReader(const fs::path& file) : path_(file), context_(file.filename().string()) {
  h5::silence_errors();
  require_regular_file(file, "shard");  // before HDF5 opens it: a FIFO would block, a folder is no "missing" file
  file_ = h5::Handle(h5::check(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), context_, "opening as HDF5"));
  const auto d = h5::dims(file_, "/images", context_);
  if (d.size() != 4) fail(context_, ": /images has ", d.size(), " dimensions, expected 4 (N, H, W, C)");
  if (d[3] != 1 && d[3] != 3) fail(context_, ": /images has ", d[3], " channels, expected 1 or 3");
  if (d[1] < 1 || d[2] < 1 || d[1] > kMaxImageSide || d[2] > kMaxImageSide)
    fail(context_, ": /images holds ", d[1], "x", d[2], " images; sides must be 1 to ", kMaxImageSide);
  // No chunk cache for /images: rows are read once per epoch in random order, so a cached 256 KiB chunk is almost
  // never read again, and with the cache HDF5 reads a whole chunk to serve one row (82x the bytes at 32 px,
  // measured by bench/loader_bench.sh). Without it, a partial read of an unfiltered chunk reads just those rows,
  // and whole-shard reads (the memory cache) go straight to the caller's buffer either way.
  h5::Handle access(H5Pcreate(H5P_DATASET_ACCESS));
  h5::check(H5Pset_chunk_cache(access, 0, 0, 1.0), context_, "turning the chunk cache of /images off");
  images_ = h5::open_dataset(file_, "/images", context_, access);
  h5::Handle type(H5Dget_type(images_));
  if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) != 1 || H5Tget_sign(type) != H5T_SGN_NONE)
    fail(context_, ": /images is not uint8");
  h5::require_backed(images_, static_cast<hssize_t>(d[0] * d[1] * d[2] * d[3]), 1, "/images", context_);
  count_ = static_cast<int64_t>(d[0]);
  bytes_at_open_ = fs::file_size(file);
  shape_ = ImageShape{static_cast<int>(d[1]), static_cast<int>(d[2]), static_cast<int>(d[3])};
  map_chunks();
}

void ShardReader::map_chunks() {
  // Anything unexpected leaves chunk_offsets_ empty: rows are then read through HDF5, which checks everything itself.
  const uint64_t image = shape_.bytes();
  const auto fits = [&](haddr_t addr, uint64_t bytes) {
    return addr != HADDR_UNDEF && addr <= bytes_at_open_ && bytes <= bytes_at_open_ - addr;
  };
  if (count_ == 0) return;
  h5::Handle dcpl(H5Dget_create_plist(images_));
  if (dcpl.get() < 0) return;
  std::vector<uint64_t> offsets;
  int64_t rows = 0;
  const H5D_layout_t layout = H5Pget_layout(dcpl);
  if (layout == H5D_CONTIGUOUS) {
    const haddr_t addr = H5Dget_offset(images_);
    if (H5Pget_external_count(dcpl) != 0 || !fits(addr, static_cast<uint64_t>(count_) * image)) return;
    rows = count_;
    offsets.push_back(addr);
  } else if (layout == H5D_CHUNKED) {
    hsize_t chunk[4] = {0, 0, 0, 0};
    if (H5Pget_nfilters(dcpl) != 0 || H5Pget_chunk(dcpl, 4, chunk) != 4) return;
    if (chunk[0] < 1 || chunk[1] != hsize_t(shape_.height) || chunk[2] != hsize_t(shape_.width) ||
        chunk[3] != hsize_t(shape_.channels))
      return;  // a chunk must hold whole images, so that a row is one run of bytes
    rows = static_cast<int64_t>(chunk[0]);
    const int64_t chunks = (count_ + rows - 1) / rows;
    h5::Handle space(H5Dget_space(images_));
    hsize_t allocated = 0;
    if (H5Dget_num_chunks(images_, space, &allocated) < 0 || allocated != hsize_t(chunks)) return;
    const uint64_t chunk_bytes = static_cast<uint64_t>(rows) * image;
    offsets.reserve(static_cast<std::size_t>(chunks));
    for (int64_t k = 0; k < chunks; ++k) {
      const hsize_t at[4] = {hsize_t(k * rows), 0, 0, 0};
      unsigned filter_mask = 0;
      haddr_t addr = HADDR_UNDEF;
      hsize_t size = 0;
      if (H5Dget_chunk_info_by_coord(images_, at, &filter_mask, &addr, &size) < 0 || filter_mask != 0 ||
          size != chunk_bytes || !fits(addr, chunk_bytes))
        return;
      offsets.push_back(addr);
    }
  } else {
    return;
  }
  // Without blocking, and only the regular file HDF5 opened: anything else (replaced since) is read through HDF5.
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return;
  }
  fd_ = std::shared_ptr<const int>(new int(fd), [](const int* p) {
    ::close(*p);
    delete p;
  });
  chunk_rows_ = rows;
  chunk_offsets_ = std::move(offsets);
}

std::string ShardReader::source() const {
  return h5::read_string_attribute(file_, "source", context_);
}
int64_t ShardReader::format_version() const {
  return h5::read_int_attribute(file_, "format_version", context_);
}
int64_t ShardReader::shard_index() const {
  return h5::read_int_attribute(file_, "shard_index", context_);
}
int64_t ShardReader::num_shards() const {
  return h5::read_int_attribute(file_, "num_shards", context_);
}
std::vector<std::string> ShardReader::class_names() const {
  return h5::read_strings_attribute(file_, "class_names", context_);
}

void ShardReader::read_images(int64_t begin, int64_t n, uint8_t* out) const {
  if (begin < 0 || n < 0 || begin + n > count_)
    fail(context_, ": rows [", begin, ", ", begin + n, ") are outside 0..", count_);
  if (n == 0) return;
  // Direct reads go through this reader's own descriptor: a file replaced since (rename) is still the one opened, and
  // a truncated one gives a short read, an error below. No stat per row (a metadata request on a parallel file
  // system).
  if (direct()) {
    const uint64_t image = shape_.bytes();
    for (int64_t row = begin; row < begin + n;) {
      const int64_t k = row / chunk_rows_;
      const int64_t run = std::min(begin + n, (k + 1) * chunk_rows_) - row;  // rows of this chunk asked for
      uint64_t left = static_cast<uint64_t>(run) * image;
      uint64_t at = chunk_offsets_[static_cast<std::size_t>(k)] + static_cast<uint64_t>(row - k * chunk_rows_) * image;
      uint8_t* to = out + static_cast<uint64_t>(row - begin) * image;
      while (left > 0) {
        const ssize_t got = ::pread(*fd_, to, left, static_cast<off_t>(at));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fail(context_, ": reading rows of /images: ", std::strerror(errno));
        if (got == 0) fail(context_, ": the file ends inside /images (truncated while it was open?)");
        left -= static_cast<uint64_t>(got);
        at += static_cast<uint64_t>(got);
        to += got;
      }
      row += run;
    }
    return;
  }
  // HDF5 reads raw data past the end of a file as zeros once its index is cached: a shard truncated or replaced
  // while it is open must be an error, not silently blank images.
  std::error_code ec;
  if (fs::file_size(path_, ec) != bytes_at_open_)
    fail(context_, ": the file changed while it was open (", ec ? ec.message() : "its size is different now", ")");
  h5::Handle file_space(H5Dget_space(images_));
  const hsize_t start[4] = {hsize_t(begin), 0, 0, 0};
  const hsize_t count[4] = {hsize_t(n), hsize_t(shape_.height), hsize_t(shape_.width), hsize_t(shape_.channels)};
  h5::check(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr), context_,
            "selecting rows of /images");
  h5::Handle mem_space(H5Screate_simple(4, count, nullptr));
  h5::check(H5Dread(images_, H5T_NATIVE_UINT8, mem_space, file_space, H5P_DEFAULT, out), context_, "reading /images");
}

std::vector<int64_t> ShardReader::labels() const {
  return int64_column("/labels");
}
std::vector<std::string> ShardReader::ids() const {
  return string_column("/ids");
}
bool ShardReader::has(const std::string& path) const {
  return h5::exists(file_, path);
}

std::vector<int64_t> ShardReader::int64_column(const std::string& path) const {
  return h5::read_array<int64_t>(file_, path, H5T_NATIVE_INT64, context_);
}
std::vector<float> ShardReader::float_column(const std::string& path) const {
  return h5::read_array<float>(file_, path, H5T_NATIVE_FLOAT, context_);
}
std::vector<std::string> ShardReader::string_column(const std::string& path) const {
  return h5::read_strings(file_, path, context_);
}

}  // namespace shardgan::data
