#pragma once
#include <algorithm>
#include <cstdio>
#include <string>

namespace shardgan {

/// Seconds as a clock reading for progress lines: "H:MM:SS", or "M:SS" under an hour.
inline std::string clock_time(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, seconds) + 0.5);
  char out[32];
  if (s >= 3600) {
    std::snprintf(out, sizeof(out), "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(out, sizeof(out), "%lld:%02lld", s / 60, s % 60);
  }
  return out;
}

}  // namespace shardgan
