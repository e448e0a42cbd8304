#include "util/png.hpp"

#include <png.h>

#include <cstdio>

#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace shardgan {

namespace {

/// Encodes `image` into `path` (libpng); `name` is the file the caller asked for, for messages.
void encode_png(const std::filesystem::path& path, const std::string& name, const Image& image) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) fail(name, ": cannot write");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    fail(name, ": PNG encoding failed");
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8,
               image.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < image.height; ++y)
    png_write_row(png, image.pixels.data() + static_cast<std::size_t>(y) * image.width * image.channels);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  if (std::fclose(f) != 0) fail(name, ": write error");
}

}  // namespace

void write_png(const std::filesystem::path& file, const Image& image) {
  write_file_atomically(file, [&](const std::filesystem::path& tmp) { encode_png(tmp, file.string(), image); });
}

Image read_png(const std::filesystem::path& file) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, file.c_str())) fail(file.string(), ": not a readable PNG");
  const bool grey = (png.format & PNG_FORMAT_FLAG_COLOR) == 0;
  png.format = grey ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  Image image(static_cast<int>(png.width), static_cast<int>(png.height), grey ? 1 : 3);
  if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr))
    fail(file.string(), ": PNG decode failed");
  return image;
}

}  // namespace shardgan
