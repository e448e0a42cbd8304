#pragma once
#include <cstddef>
#include <string>

namespace shardgan {

/// Whether `text`'s arrays and objects nest at most `max_depth` deep (brackets inside strings do not count). JSON
/// parsers build nested values recursively and copy and free them recursively: a file of a million '[' would
/// overflow the stack. shardgan's own JSON files nest 3 deep; the readers refuse deeper ones before parsing.
inline bool json_depth_within(const std::string& text, int max_depth = 32) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

}  // namespace shardgan
