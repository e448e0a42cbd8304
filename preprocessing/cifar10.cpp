#include "cifar10.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <span>

#include "util/checksum.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::pack {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kImageBytes = 3072;
constexpr std::size_t kRecordBytes = 1 + kImageBytes;
constexpr int64_t kRecordsPerBatch = 10000;  ///< in each batch file of the real data set (the progress's total)
constexpr const char* kFolder = "cifar-10-batches-bin";

std::vector<std::string> split_files(const std::string& split) {
  const std::vector<std::string> train = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                          "data_batch_4.bin", "data_batch_5.bin"};
  if (split == "train") return train;
  if (split == "test") return {"test_batch.bin"};
  if (split == "all") {
    auto all = train;
    all.push_back("test_batch.bin");
    return all;
  }
  fail("--split: '", split, "' is not one of train, test, all");
}

/// Turns the records of one batch file into shard rows, in file order.
class RecordPacker {
 public:
  RecordPacker(PackOutput& output, const std::vector<int>& classes) : output_(output), encoded_(10, -1) {
    for (std::size_t i = 0; i < classes.size(); ++i) encoded_[static_cast<std::size_t>(classes[i])] = int(i);
  }

  /// Checks the size is whole records and every label byte is 0-9, keeps the selected records (CHW→HWC).
  std::vector<uint8_t> select(const std::string& where, std::span<const uint8_t> bytes,
                              std::vector<std::pair<int64_t, int>>& picked) const {
    if (bytes.size() % kRecordBytes != 0)
      fail(where, ": ", bytes.size(), " bytes is not a whole number of ", kRecordBytes,
           "-byte records (truncated file?)");
    const std::size_t n = bytes.size() / kRecordBytes;
    std::vector<uint8_t> images;
    for (std::size_t r = 0; r < n; ++r) {
      const uint8_t* record = bytes.data() + r * kRecordBytes;
      if (record[0] > 9) fail(where, ": record ", r, ": label byte ", int(record[0]), " is not a CIFAR-10 class (0-9)");
      if (encoded_[record[0]] < 0) continue;
      picked.emplace_back(static_cast<int64_t>(r), record[0]);
      const std::size_t base = images.size();
      images.resize(base + kImageBytes);
      const uint8_t* planes = record + 1;  // 1024 R, 1024 G, 1024 B
      uint8_t* hwc = images.data() + base;
      for (std::size_t p = 0; p < 1024; ++p) {
        hwc[3 * p + 0] = planes[p];
        hwc[3 * p + 1] = planes[1024 + p];
        hwc[3 * p + 2] = planes[2048 + p];
      }
    }
    return images;
  }

  void write(const std::string& file, std::span<const uint8_t> bytes) {
    std::vector<std::pair<int64_t, int>> picked;
    const auto images = select(file, bytes, picked);
    for (std::size_t i = 0; i < picked.size(); ++i) {
      const auto [record, source_label] = picked[i];
      output_.append(images.data() + i * kImageBytes, encoded_[static_cast<std::size_t>(source_label)],
                     file + "#" + std::to_string(record), {int64_t{source_label}});
    }
    output_.inputs_done(static_cast<int64_t>(bytes.size() / kRecordBytes));
    throw_if_interrupted();
  }

 private:
  PackOutput& output_;
  std::vector<int> encoded_;
};

struct ArchiveReader {
  std::FILE* file = nullptr;
  Md5 md5;
  std::vector<uint8_t> buffer = std::vector<uint8_t>(1 << 20);

  static la_ssize_t read(struct archive*, void* self, const void** out) {
    auto* r = static_cast<ArchiveReader*>(self);
    const std::size_t n = std::fread(r->buffer.data(), 1, r->buffer.size(), r->file);
    r->md5.update(r->buffer.data(), n);
    *out = r->buffer.data();
    return static_cast<la_ssize_t>(n);
  }
  /// Hashes whatever libarchive did not read, so the md5 covers the whole file.
  std::string finish_md5() {
    std::size_t n = 0;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), file)) > 0) md5.update(buffer.data(), n);
    return md5.finish();
  }
};

/// "<size> bytes is over the 64 MiB limit of a CIFAR-10 batch file (...)" when `size` is, else empty.
std::string batch_size_problem(int64_t size) {
  if (size >= 0 && static_cast<uint64_t>(size) <= kMaxCifar10BatchBytes) {
    if (size % static_cast<int64_t>(kRecordBytes) == 0) return "";
    return cat(size, " bytes is not a whole number of ", kRecordBytes, "-byte records (truncated file?)");
  }
  return cat(size, " bytes is over the ", byte_size(kMaxCifar10BatchBytes),
             " limit of a CIFAR-10 batch file (the published ones are 30730000 bytes, 10000 records)");
}

/// Opens the regular file `path` for reading without blocking on it (a FIFO put in its place after the check is
/// refused, not waited on).
std::FILE* open_regular(const fs::path& path, std::string_view what) {
  require_regular_file(path, what);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) fail(path.string(), ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(what, " ", path.string(), ": is not a regular file (it changed while being opened)");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  std::FILE* file = ::fdopen(fd, "rb");
  if (file == nullptr) {
    ::close(fd);
    fail(path.string(), ": cannot open (", std::strerror(errno), ")");
  }
  return file;
}

void pack_from_archive(const Cifar10Options& options, const std::vector<std::string>& files, RecordPacker& packer,
                       PackOutput& output) {
  const std::string where = options.input.string();
  ArchiveReader reader;
  reader.file = open_regular(options.input, "CIFAR-10 archive");
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  struct Closer {
    struct archive* a;
    std::FILE* f;
    ~Closer() {
      archive_read_free(a);
      std::fclose(f);
    }
  } closer{a, reader.file};
  if (archive_read_open(a, &reader, nullptr, &ArchiveReader::read, nullptr) != ARCHIVE_OK)
    fail(where, ": not a readable archive (", archive_error_string(a), ")");

  // Members may come in any order: each is packed when its turn comes in `files` order, so the output order does not
  // depend on the archive's; one arriving early is held in memory until then (at most all six batch files, each
  // within kMaxCifar10BatchBytes).
  std::map<std::string, std::vector<uint8_t>> waiting;
  std::size_t next = 0;
  bool saw_folder = false;
  struct archive_entry* entry = nullptr;
  int status = ARCHIVE_OK;
  while ((status = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
    const std::string name = archive_entry_pathname(entry);
    const auto slash = name.find(std::string(kFolder) + "/");
    if (slash != std::string::npos) saw_folder = true;
    if (slash == std::string::npos || archive_entry_filetype(entry) != AE_IFREG) continue;
    const std::string base = name.substr(slash + std::string(kFolder).size() + 1);
    if (std::find(files.begin(), files.end(), base) == files.end()) continue;
    const auto size = archive_entry_size(entry);
    if (const std::string problem = batch_size_problem(size); !problem.empty())
      fail(where, ":", shardgan::quoted(name), ": ", problem);
    if (waiting.count(base) > 0 || std::find(files.begin(), files.begin() + next, base) != files.begin() + next)
      fail(where, ":", shardgan::quoted(name), ": a second ", base, " in the archive (which one is meant?)");
    std::vector<uint8_t> bytes(static_cast<std::size_t>(size));
    const la_ssize_t got = archive_read_data(a, bytes.data(), bytes.size());
    if (got != size) fail(where, ":", shardgan::quoted(name), ": read failed (", archive_error_string(a), ")");
    waiting[base] = std::move(bytes);
    while (next < files.size() && waiting.count(files[next])) {
      packer.write(files[next], waiting[files[next]]);
      waiting.erase(files[next]);
      ++next;
    }
  }
  if (status != ARCHIVE_EOF) fail(where, ": archive is corrupt (", archive_error_string(a), ")");
  if (!saw_folder) fail(where, ": no ", kFolder, "/ folder inside (is this the binary version of CIFAR-10?)");
  if (next < files.size()) fail(where, ": ", kFolder, "/", files[next], " is missing from the archive");

  const std::string md5 = reader.finish_md5();
  const bool official = md5 == kCifar10ArchiveMd5;
  std::fprintf(stderr, "shardgan-pack: %s md5 %s (%s)\n", options.input.filename().c_str(), md5.c_str(),
               official ? "matches the published cifar-10-binary.tar.gz"
                        : "does NOT match the published cifar-10-binary.tar.gz");
  output.note("archive_md5", md5);
  output.note("archive_md5_matches_published", official ? "true" : "false");
}

/// The batch files of `files` in the folder `input` (or in its cifar-10-batches-bin), each checked before anything
/// is read or written: a regular file of whole records within kMaxCifar10BatchBytes.
std::vector<fs::path> batch_files(const fs::path& input, const std::vector<std::string>& files) {
  fs::path folder = input;
  if (file_kind(folder / files.front()) == FileKind::kMissing && file_kind(folder / kFolder) == FileKind::kDirectory)
    folder /= kFolder;
  std::vector<fs::path> paths;
  for (const auto& name : files) {
    const fs::path file = folder / name;
    const FileKind kind = file_kind(file);
    if (kind == FileKind::kMissing) fail(file.string(), ": is missing (expected the ", kFolder, " folder)");
    if (kind != FileKind::kRegular)
      fail(file.string(), ": ", shardgan::describe(kind), " (a CIFAR-10 batch file, a regular file, is needed)");
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (ec) fail(file.string(), ": cannot read its size (", ec.message(), ")");
    if (const std::string problem = batch_size_problem(static_cast<int64_t>(size)); !problem.empty())
      fail(file.string(), ": ", problem);
    paths.push_back(file);
  }
  return paths;
}

void pack_from_folder(const std::vector<fs::path>& paths, const std::vector<std::string>& files, RecordPacker& packer) {
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const std::string bytes = read_bounded(paths[i], kMaxCifar10BatchBytes, "CIFAR-10 batch file");
    if (const std::string problem = batch_size_problem(static_cast<int64_t>(bytes.size())); !problem.empty())
      fail(paths[i].string(), ": ", problem, " (it changed while being read)");
    packer.write(files[i], std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }
}

}  // namespace

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

std::vector<int> resolve_cifar10_classes(const std::vector<std::string>& classes) {
  const auto& names = cifar10_class_names();
  std::vector<int> labels;
  for (const auto& c : classes) {
    int label = -1;
    const auto it = std::find(names.begin(), names.end(), c);
    if (it != names.end()) {
      label = static_cast<int>(it - names.begin());
    } else if (c.size() == 1 && c[0] >= '0' && c[0] <= '9') {
      label = c[0] - '0';
    } else {
      fail("--classes: '", c,
           "' is not a CIFAR-10 class (airplane, automobile, bird, cat, deer, dog, frog, horse, "
           "ship, truck, or 0-9)");
    }
    if (std::find(labels.begin(), labels.end(), label) != labels.end()) fail("--classes: '", c, "' is given twice");
    labels.push_back(label);
  }
  if (labels.empty()) fail("--classes: no class given");
  std::sort(labels.begin(), labels.end());
  return labels;
}

data::Manifest pack_cifar10(const Cifar10Options& options) {
  const auto files = split_files(options.split);
  const auto classes = resolve_cifar10_classes(options.classes);
  // What the input is, and (a folder) every batch file, is checked before the output's staging folder exists.
  const FileKind kind = file_kind(options.input);
  if (kind == FileKind::kMissing) fail("--input ", options.input.string(), ": is missing");
  if (kind != FileKind::kRegular && kind != FileKind::kDirectory)
    fail("--input ", options.input.string(), ": ", shardgan::describe(kind), " (cifar-10-binary.tar.gz or the ",
         kFolder, " folder is needed)");
  const bool archive = kind == FileKind::kRegular;
  const std::vector<fs::path> paths = archive ? std::vector<fs::path>{} : batch_files(options.input, files);

  data::ShardSchema schema;
  schema.source = "cifar10";
  schema.shape = data::ImageShape{32, 32, 3};
  for (int c : classes) schema.class_names.push_back(cifar10_class_names()[static_cast<std::size_t>(c)]);
  schema.columns = {{"/source_labels", data::ColumnType::kInt64}};

  PackOutput output(options.output, schema);
  output.note("split", options.split);
  output.expect_inputs(static_cast<int64_t>(files.size()) * kRecordsPerBatch);
  RecordPacker packer(output, classes);
  if (archive) {
    pack_from_archive(options, files, packer, output);
  } else {
    pack_from_folder(paths, files, packer);
  }
  std::string selection;
  for (const auto& n : schema.class_names) selection += (selection.empty() ? "" : ",") + n;
  return output.finish(options.input.string() + " (classes " + selection + ", split " + options.split + ")");
}

}  // namespace shardgan::pack
