#pragma once
// Shared by the libFuzzer harnesses: a scratch folder per process, and the one rule every harness checks — a parser
// fed any bytes either succeeds or throws shardgan::Error (one clear line). Anything else escapes the harness and
// libFuzzer reports it: a crash, a sanitizer finding, another exception, a hang (-timeout) or a huge allocation
// (-malloc_limit_mb).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "util/error.hpp"

namespace shardgan::fuzz {

/// A folder of this process's own, emptied before each input.
inline const std::filesystem::path& fresh_scratch() {
  static const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("shardgan-fuzz-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_file(const std::filesystem::path& file, const uint8_t* data, std::size_t size) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

/// Runs `parse`; a shardgan::Error is the expected answer to bad bytes, anything else propagates.
template <class F>
void only_errors(F&& parse) {
  try {
    parse();
  } catch (const Error&) {
  }
}

}  // namespace shardgan::fuzz
