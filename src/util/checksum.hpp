#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace shardgan {

/// Prefix of the checksums shardgan writes: XXH3 128-bit, hex, over the whole file.
inline constexpr const char* kChecksumAlgorithm = "xxh3-128";

/// Checksum of a whole file as "xxh3-128:<32 hex digits>" (streams the file; ~10 GB/s, disk-bound).
std::string file_checksum(const std::filesystem::path& file);

/// Streaming MD5 (for comparing downloads against published digests). Hex digest on `finish`.
class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(const void* data, std::size_t size);
  std::string finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace shardgan
