#include "image_index.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/error.hpp"

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

std::vector<uint8_t> read_file(const fs::path& file) {
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (f == nullptr) fail(file.string(), ": cannot open (", std::strerror(errno), ")");
  std::vector<uint8_t> data;
  uint8_t buffer[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) data.insert(data.end(), buffer, buffer + n);
  const bool error = std::ferror(f) != 0;
  std::fclose(f);
  if (error) fail(file.string(), ": read error");
  return data;
}

ImageIndex::ImageIndex(const std::vector<fs::path>& paths, const std::vector<std::string>& extensions) {
  for (const fs::path& path : paths) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (!fs::exists(status)) fail(path.string(), ": does not exist");
    if (fs::is_directory(status)) {
      std::vector<fs::path> files;
      for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file() && has_extension(it->path().filename().string(), extensions))
          files.push_back(it->path());
      }
      if (ec) fail(path.string(), ": cannot list (", ec.message(), ")");
      std::sort(files.begin(), files.end());
      for (auto& file : files) {
        ImageLocation location;
        location.file = file;
        add(file.stem().string(), std::move(location));
      }
    } else if (lower(path.extension().string()) == ".zip") {
      archives_.push_back(std::make_unique<ZipArchive>(path));
      const auto& entries = archives_.back()->entries();
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (!has_extension(entries[i].name, extensions)) continue;
        ImageLocation location;
        location.zip = static_cast<int>(archives_.size() - 1);
        location.entry = i;
        add(fs::path(entries[i].name).stem().string(), std::move(location));
      }
    } else {
      fail(path.string(), ": not a folder or a .zip file");
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
  if (location.zip < 0) return read_file(location.file);
  return archives_[static_cast<std::size_t>(location.zip)]->read(location.entry);
}

std::string ImageIndex::describe(const ImageLocation& location) const {
  if (location.zip < 0) return location.file.string();
  const auto& archive = *archives_[static_cast<std::size_t>(location.zip)];
  return archive.path().string() + ":" + archive.entries()[location.entry].name;
}

}  // namespace shardgan::pack
