#pragma once
#include <cstdint>
#include <string>

#include "util/png.hpp"

namespace shardgan::report {

/// Draws `s` into `img` (RGB) with its top-left corner at (x, y), in colour `c`, in a built-in 5×7 bitmap font
/// (6 px per character). Characters outside the font (digits, number signs and the letters plots need) are blank;
/// pixels outside the image are skipped.
void draw_text(Image& img, int x, int y, const std::string& s, const uint8_t* c);

}  // namespace shardgan::report
