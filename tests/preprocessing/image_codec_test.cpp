#include "image_codec.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "fixtures.hpp"
#include "util/error.hpp"

namespace shardgan::pack {
namespace {

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += std::abs(int(a[i]) - int(b[i]));
  return sum / a.size();
}

struct Case {
  int width, height, size;
  Crop crop;
  int expected_denominator;
};

class DctScaling : public ::testing::TestWithParam<Case> {};

// The accuracy bar: DCT-domain reduced decode + area resize stays within 2 grey levels (mean absolute
// difference) of full decode + area resize, on dermoscopy-like images of HAM10000's size.
TEST_P(DctScaling, StaysWithinTwoGreyLevelsOfFullDecode) {
  const Case c = GetParam();
  JpegResizer decoder;
  double worst = 0;
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    const auto jpeg = testing::encode_jpeg(testing::lesion_rgb(c.width, c.height, seed), c.width, c.height);
    std::vector<uint8_t> fast(std::size_t(c.size) * c.size * 3), full(fast.size());
    decoder.decode(jpeg, c.size, c.crop, fast.data(), true);
    EXPECT_EQ(decoder.last_scale_denominator(), c.expected_denominator);
    decoder.decode(jpeg, c.size, c.crop, full.data(), false);
    EXPECT_EQ(decoder.last_scale_denominator(), 1);
    worst = std::max(worst, mean_abs_diff(fast, full));
  }
  EXPECT_LE(worst, 2.0);
  RecordProperty("worst_mean_abs_diff", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(Ham10000Sizes, DctScaling,
                         ::testing::Values(Case{600, 450, 32, Crop::kNone, 8}, Case{600, 450, 32, Crop::kCenter, 8},
                                           Case{600, 450, 64, Crop::kNone, 4}, Case{600, 450, 128, Crop::kCenter, 2},
                                           Case{600, 450, 256, Crop::kNone, 1}));

TEST(JpegResizer, CenterCropKeepsTheMiddleSquare) {
  // Left third red, middle blue, right third green: a centre crop of a 3:1 image is all blue.
  const int w = 96, h = 32;
  std::vector<uint8_t> rgb(std::size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgb[(std::size_t(y) * w + x) * 3];
      p[0] = x < 32 ? 255 : 0;
      p[1] = x >= 64 ? 255 : 0;
      p[2] = x >= 32 && x < 64 ? 255 : 0;
    }
  JpegResizer decoder;
  std::vector<uint8_t> out(8 * 8 * 3);
  decoder.decode(testing::encode_jpeg(rgb, w, h, 100), 8, Crop::kCenter, out.data());
  const uint8_t* centre = &out[(4 * 8 + 4) * 3];
  EXPECT_LT(centre[0], 20);
  EXPECT_LT(centre[1], 20);
  EXPECT_GT(centre[2], 235);
}

// A header may declare up to 65535 x 65535 pixels: the limit is checked from it, before decoding allocates anything.
TEST(JpegResizer, ImagesLargerThanMaxPixelsAreRefusedFromTheirHeader) {
  std::vector<uint8_t> jpeg = testing::encode_jpeg(testing::lesion_rgb(64, 48, 1), 64, 48);
  JpegResizer decoder;
  std::vector<uint8_t> out(16 * 16 * 3);
  decoder.set_max_pixels(64 * 48);
  EXPECT_NO_THROW(decoder.decode(jpeg, 16, Crop::kNone, out.data()));
  decoder.set_max_pixels(64 * 48 - 1);
  try {
    decoder.decode(jpeg, 16, Crop::kNone, out.data());
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("64x48 = 3072 pixels, more than --max-pixels 3071"), std::string::npos)
        << e.what();
  }
  // The SOF0 header rewritten to claim 60000 x 60000 (3.6 gigapixels): refused by the default limit at once.
  for (std::size_t i = 0; i + 9 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
      jpeg[i + 5] = jpeg[i + 7] = 60000 >> 8;
      jpeg[i + 6] = jpeg[i + 8] = 60000 & 0xFF;
      break;
    }
  }
  decoder.set_max_pixels(JpegResizer::kDefaultMaxPixels);
  try {
    decoder.decode(jpeg, 16, Crop::kNone, out.data());
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("60000x60000 = 3600000000 pixels"), std::string::npos) << e.what();
  }
}

TEST(JpegResizer, TruncatedAndGarbageDataAreCorrupt) {
  auto jpeg = testing::encode_jpeg(testing::lesion_rgb(600, 450, 1), 600, 450);
  JpegResizer decoder;
  std::vector<uint8_t> out(32 * 32 * 3);
  std::vector<uint8_t> truncated(jpeg.begin(), jpeg.begin() + jpeg.size() / 2);
  try {
    decoder.decode(truncated, 32, Crop::kNone, out.data());
    FAIL() << "a truncated JPEG was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("corrupt JPEG: ", 0), 0u) << e.what();
  }
  EXPECT_THROW(decoder.decode({'n', 'o', 't', ' ', 'j', 'p', 'g'}, 32, Crop::kNone, out.data()), Error);
  EXPECT_THROW(decoder.decode({}, 32, Crop::kNone, out.data()), Error);
  // The decoder is still usable after errors.
  decoder.decode(jpeg, 32, Crop::kNone, out.data());
}

}  // namespace
}  // namespace shardgan::pack
