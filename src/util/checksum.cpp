#include "util/checksum.hpp"

#include <openssl/evp.h>
#include <xxhash.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include "util/error.hpp"

namespace shardgan {
namespace {

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return out;
}

}  // namespace

std::string file_checksum(const std::filesystem::path& file) {
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (f == nullptr) fail(file.string(), ": cannot open for checksum");
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  std::vector<char> buffer(1 << 20);
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) XXH3_128bits_update(state, buffer.data(), n);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  const XXH128_hash_t hash = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  if (read_error) fail(file.string(), ": read error while computing checksum");
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, hash);
  return std::string(kChecksumAlgorithm) + ":" + to_hex(canonical.digest, sizeof(canonical.digest));
}

struct Md5::State {
  EVP_MD_CTX* ctx = nullptr;
};

Md5::Md5() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  if (state_->ctx == nullptr || EVP_DigestInit_ex(state_->ctx, EVP_md5(), nullptr) != 1) fail("MD5: cannot initialise");
}

Md5::~Md5() {
  EVP_MD_CTX_free(state_->ctx);
}

void Md5::update(const void* data, std::size_t size) {
  EVP_DigestUpdate(state_->ctx, data, size);
}

std::string Md5::finish() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(state_->ctx, digest, &length);
  return to_hex(digest, length);
}

}  // namespace shardgan
