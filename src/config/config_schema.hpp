#pragma once
// Private to shardgan_config (config.cpp, config_schema.cpp): the table of keys that both loading and writing walk.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace shardgan::config::detail {

/// The longest key ("section.key") there is, with room to grow: a longer name is refused as such, before any
/// closest-key suggestion (an edit distance over every key) is computed for it.
inline constexpr std::size_t kMaxKeyChars = 64;
/// The longest string value (data.path, eval.classifier, augment.policy): PATH_MAX, the longest path the system opens.
inline constexpr std::size_t kMaxStringValueChars = 4096;

/// A key whose TOML value is one of a few words, stored as an enum.
struct Choice {
  std::vector<std::string> words;
  std::function<std::string()> get;
  std::function<void(std::size_t)> set;  ///< index into `words`
};

using Field = std::variant<std::string*, bool*, int64_t*, double*, Choice>;
struct Key {
  std::string name;  ///< "section.key"
  Field field;
};

/// The schema: every key with where it lives in Config. Built over a Config so `load` fills it in place.
std::vector<Key> schema(Config& c);

}  // namespace shardgan::config::detail
