#include "util/png.hpp"

#include <png.h>

#include <string>

#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace shardgan {

namespace {

/// libpng's output function: appends to the std::string given as its io pointer. No exception may cross libpng's C
/// frames, so running out of memory becomes png_error (a longjmp to encode_png's handler).
void append_to_string(png_structp png, png_bytep data, png_size_t size) {
  bool appended = true;
  try {
    static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), size);
  } catch (...) {
    appended = false;
  }
  if (!appended) png_error(png, "out of memory");
}

void no_flush(png_structp) {}

/// `image` as PNG bytes (libpng), in memory: the file is then written with checked writes, so that a full disk is
/// named as such. `name` is the file they are for, for messages.
std::string encode_png(const std::string& name, const Image& image) {
  std::string bytes;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png == nullptr ? nullptr : png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    fail(name, ": PNG encoding failed (out of memory)");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fail(name, ": PNG encoding failed");
  }
  png_set_write_fn(png, &bytes, append_to_string, no_flush);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8,
               image.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < image.height; ++y)
    png_write_row(png, image.pixels.data() + static_cast<std::size_t>(y) * image.width * image.channels);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return bytes;
}

}  // namespace

std::string write_png(const std::filesystem::path& file, const Image& image) {
  std::string bytes = encode_png(file.string(), image);
  write_file_atomically(file, [&](const std::filesystem::path& tmp) { write_file_checked(tmp, bytes, file); });
  return bytes;
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
