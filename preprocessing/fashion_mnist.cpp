#include "fashion_mnist.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::pack {
namespace fs = std::filesystem;

namespace {

constexpr uint32_t kImagesMagic = 0x00000803;
constexpr uint32_t kLabelsMagic = 0x00000801;

/// One IDX file, read through zlib (which also reads files that are not compressed) in pieces: an image and a label
/// at a time, whatever the header declares. It must be a regular file (a FIFO or a device is refused, not read).
class IdxFile {
 public:
  explicit IdxFile(const fs::path& path) : where_(path.string()) {
    require_regular_file(path, "IDX file");
    // Without blocking: a FIFO put in its place after the check is refused by the fstat below, not waited on.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) fail(where_, ": cannot open (", std::strerror(errno), ")");
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      fail("IDX file ", where_, ": is not a regular file (it changed while being opened)");
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    file_ = gzdopen(fd, "rb");
    if (file_ == nullptr) {
      ::close(fd);
      fail(where_, ": cannot open");
    }
  }
  ~IdxFile() { gzclose(file_); }
  IdxFile(const IdxFile&) = delete;
  IdxFile& operator=(const IdxFile&) = delete;

  uint32_t read_u32(const char* what) {
    uint8_t b[4];
    read(b, 4, what);
    return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3];
  }
  void read(void* out, std::size_t n, const char* what) {
    const int got = gzread(file_, out, static_cast<unsigned>(n));
    if (got != static_cast<int>(n)) {
      int code = 0;
      const char* message = gzerror(file_, &code);
      fail(where_, ": ", what, ": file ends early", code < 0 ? std::string(" (") + message + ")" : "", " (truncated?)");
    }
  }
  const std::string& where() const { return where_; }

 private:
  std::string where_;
  gzFile file_ = nullptr;
};

/// The .gz or the plain IDX file; whichever exists in any form (a dangling link too: opening it says what it is).
fs::path find_idx(const fs::path& dir, const std::string& stem) {
  for (const char* suffix : {".gz", ""}) {
    const fs::path p = dir / (stem + suffix);
    if (file_kind(p) != FileKind::kMissing) return p;
  }
  fail((dir / (stem + ".gz")).string(), ": does not exist (Debian package dataset-fashion-mnist installs it)");
}

/// A split's two files, found and checked for what they are (regular files) before anything is read or written.
struct SplitFiles {
  fs::path images, labels;
};
SplitFiles split_files(const fs::path& dir, const std::string& prefix) {
  SplitFiles f{find_idx(dir, prefix + "-images-idx3-ubyte"), find_idx(dir, prefix + "-labels-idx1-ubyte")};
  require_regular_file(f.images, "IDX file");
  require_regular_file(f.labels, "IDX file");
  return f;
}

/// The image count in an IDX image file's header (0 when it is not one: pack_split names the problem), for the
/// progress's total before any split is packed.
int64_t image_count(const fs::path& images) {
  IdxFile f(images);
  if (f.read_u32("header") != kImagesMagic) return 0;
  return f.read_u32("header");
}

void pack_split(const SplitFiles& files, const std::string& id_prefix, int size, PackOutput& output) {
  IdxFile images(files.images);
  IdxFile labels(files.labels);
  if (images.read_u32("header") != kImagesMagic) fail(images.where(), ": not an IDX image file (magic number)");
  if (labels.read_u32("header") != kLabelsMagic) fail(labels.where(), ": not an IDX label file (magic number)");
  const uint32_t n = images.read_u32("header");
  const uint32_t rows = images.read_u32("header");
  const uint32_t cols = images.read_u32("header");
  const uint32_t n_labels = labels.read_u32("header");
  if (n != n_labels) fail(labels.where(), ": holds ", n_labels, " labels for ", n, " images");
  if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096)
    fail(images.where(), ": image size ", rows, "x", cols, " is not plausible");

  const bool pad = static_cast<int>(rows) <= size && static_cast<int>(cols) <= size && size <= 32;
  std::vector<uint8_t> raw(std::size_t(rows) * cols);
  std::vector<uint8_t> out(std::size_t(size) * size, 0);
  for (uint32_t i = 0; i < n; ++i) {
    images.read(raw.data(), raw.size(), "image data");
    uint8_t label = 0;
    labels.read(&label, 1, "label data");
    if (label > 9) fail(labels.where(), ": record ", i, ": label ", int(label), " is not a Fashion-MNIST class (0-9)");
    cv::Mat src(int(rows), int(cols), CV_8UC1, raw.data());
    cv::Mat dst(size, size, CV_8UC1, out.data());
    if (pad) {
      const int top = (size - int(rows)) / 2, left = (size - int(cols)) / 2;
      src.copyTo(dst(cv::Rect(left, top, int(cols), int(rows))));
    } else {
      cv::resize(src, dst, dst.size(), 0, 0, size < int(rows) ? cv::INTER_AREA : cv::INTER_LINEAR);
    }
    output.append(out.data(), label, id_prefix + "#" + std::to_string(i));
    output.inputs_done(1);
    if (i % 4096 == 0) throw_if_interrupted();
  }
}

}  // namespace

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

data::Manifest pack_fashion_mnist(const FashionMnistOptions& options) {
  if (options.size < 4 || options.size > 1024) fail("--size: ", options.size, " is outside 4..1024");
  if (options.split != "train" && options.split != "test" && options.split != "all")
    fail("--split: '", options.split, "' is not one of train, test, all");
  require_directory(options.input, "--input");
  std::vector<std::pair<SplitFiles, std::string>> splits;
  if (options.split != "test") splits.emplace_back(split_files(options.input, "train"), "train");
  if (options.split != "train") splits.emplace_back(split_files(options.input, "t10k"), "test");
  data::ShardSchema schema;
  schema.source = "fashion-mnist";
  schema.shape = data::ImageShape{options.size, options.size, 1};
  schema.class_names = fashion_mnist_class_names();
  PackOutput output(options.output, schema);
  output.note("split", options.split);
  output.note("resize", options.size >= 28 && options.size <= 32 ? "zero-padded" : "resized");
  for (const auto& [files, id_prefix] : splits) output.expect_inputs(image_count(files.images));
  for (const auto& [files, id_prefix] : splits) pack_split(files, id_prefix, options.size, output);
  return output.finish(options.input.string() + " (split " + options.split + ")");
}

}  // namespace shardgan::pack
