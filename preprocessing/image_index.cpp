#include "image_index.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::pack {
namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool has_extension(const std::string& name, const std::vector<std::string>& extensions) {
  const std::string ext = lower(fs::path(name).extension().string());
  return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
}

}  // namespace

std::vector<uint8_t> read_image_file(const fs::path& file, uint64_t max_bytes) {
  const FileKind kind = file_kind(file);
  if (kind == FileKind::kMissing) fail("is missing");
  if (kind != FileKind::kRegular) fail(shardgan::describe(kind), " (a regular file is needed)");
  // Without blocking: a FIFO put in its place after the check is refused by the fstat below, not waited on.
  const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) fail("cannot open (", std::strerror(errno), ")");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) fail("is not a regular file (it changed while being opened)");
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    fail(st.st_size, " bytes is over the ", byte_size(max_bytes), " limit of an image file");
  std::vector<uint8_t> data(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("read failed (", std::strerror(errno), ")");
    if (n == 0) break;  // it shrank meanwhile: what is there is decoded (and found truncated)
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  return data;
}

ImageIndex::ImageIndex(const std::vector<fs::path>& paths, const std::vector<std::string>& extensions) {
  for (const fs::path& path : paths) {
    const FileKind kind = file_kind(path);
    if (kind == FileKind::kDirectory) {
      std::vector<fs::path> files, special;
      std::error_code ec;
      for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (!has_extension(it->path().filename().string(), extensions)) continue;
        std::error_code type_ec;
        if (it->is_regular_file(type_ec)) {
          files.push_back(it->path());
        } else {
          special.push_back(it->path());  // a FIFO, a device, a folder, a dangling link: said when it is read
        }
      }
      if (ec) fail("--images ", path.string(), ": cannot list (", ec.message(), ")");
      std::sort(files.begin(), files.end());
      std::sort(special.begin(), special.end());
      for (auto& file : files) {
        ImageLocation location;
        location.file = file;
        add(file.stem().string(), std::move(location));
      }
      for (auto& file : special) {
        if (by_id_.count(file.stem().string()) > 0) continue;  // a regular file has this id: that one is used
        ImageLocation location;
        location.file = file;
        add(file.stem().string(), std::move(location));
      }
    } else if (kind == FileKind::kRegular && lower(path.extension().string()) == ".zip") {
      archives_.push_back(std::make_unique<ZipArchive>(path));
      const auto& entries = archives_.back()->entries();
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (!has_extension(entries[i].name, extensions)) continue;
        ImageLocation location;
        location.zip = static_cast<int>(archives_.size() - 1);
        location.entry = i;
        add(fs::path(entries[i].name).stem().string(), std::move(location));
      }
    } else if (kind == FileKind::kRegular) {
      fail("--images ", path.string(), ": is a regular file but not a .zip (a folder or a .zip file is needed)");
    } else if (kind == FileKind::kMissing) {
      fail("--images ", path.string(), ": is missing");
    } else {
      fail("--images ", path.string(), ": ", shardgan::describe(kind), " (a folder or a .zip file is needed)");
    }
  }
}

void ImageIndex::add(const std::string& id, ImageLocation location) {
  if (!by_id_.emplace(id, std::move(location)).second) ++duplicates_;
}

const ImageLocation* ImageIndex::find(const std::string& id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

std::vector<uint8_t> ImageIndex::read(const ImageLocation& location) const {
  if (location.zip < 0) return read_image_file(location.file);
  return archives_[static_cast<std::size_t>(location.zip)]->read(location.entry);
}

std::string ImageIndex::describe(const ImageLocation& location) const {
  if (location.zip < 0) return location.file.string();
  const auto& archive = *archives_[static_cast<std::size_t>(location.zip)];
  return archive.path().string() + ":" + shardgan::quoted(archive.entries()[location.entry].name);
}

}  // namespace shardgan::pack
