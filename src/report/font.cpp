#include "report/font.hpp"

#include <algorithm>
#include <array>
#include <map>

namespace shardgan::report {
namespace {

/// A 5×7 bitmap font for the characters plots need (digits, number signs, the letters of axis and series names).
const std::map<char, std::array<const char*, 7>>& font() {
  static const std::map<char, std::array<const char*, 7>> glyphs = {
      {'0', {" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "}},
      {'1', {"  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "}},
      {'2', {" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"}},
      {'3', {"#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "}},
      {'4', {"   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "}},
      {'5', {"#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "}},
      {'6', {"  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "}},
      {'7', {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "}},
      {'8', {" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "}},
      {'9', {" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "}},
      {'.', {"     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "}},
      {'-', {"     ", "     ", "     ", "#####", "     ", "     ", "     "}},
      {'+', {"     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "}},
      {'_', {"     ", "     ", "     ", "     ", "     ", "     ", "#####"}},
      {'c', {"     ", "     ", " ### ", "#    ", "#    ", "#   #", " ### "}},
      {'d', {"    #", "    #", " ## #", "#  ##", "#   #", "#   #", " ####"}},
      {'e', {"     ", "     ", " ### ", "#   #", "#####", "#    ", " ### "}},
      {'g', {"     ", " ####", "#   #", "#   #", " ####", "    #", " ### "}},
      {'h', {"#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#   #"}},
      {'l', {" ##  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "}},
      {'o', {"     ", "     ", " ### ", "#   #", "#   #", "#   #", " ### "}},
      {'p', {"     ", "     ", "#### ", "#   #", "#### ", "#    ", "#    "}},
      {'s', {"     ", "     ", " ####", "#    ", " ### ", "    #", "#### "}},
      {'t', {"  #  ", "  #  ", "#####", "  #  ", "  #  ", "  #  ", "   ##"}},
  };
  return glyphs;
}

void set_pixel(Image& img, int x, int y, const uint8_t* c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  std::copy_n(c, 3, img.at(x, y));
}

}  // namespace

void draw_text(Image& img, int x, int y, const std::string& s, const uint8_t* c) {
  for (char ch : s) {
    const auto it = font().find(ch);
    if (it != font().end())
      for (int r = 0; r < 7; ++r)
        for (int k = 0; k < 5; ++k)
          if (it->second[static_cast<std::size_t>(r)][k] == '#') set_pixel(img, x + k, y + r, c);
    x += 6;
  }
}

}  // namespace shardgan::report
