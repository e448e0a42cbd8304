#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace shardgan {

/// The one exception type of shardgan. Its message is the whole user-facing line: which file, record or key, and
/// what is wrong with it. Executables catch it in `main`, print it once and exit non-zero.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Builds a message from streamable parts: `throw Error(cat("reading ", path, ": ", what))`.
template <class... Parts>
std::string cat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

/// Throws Error with the concatenated parts.
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(cat(std::forward<Parts>(parts)...));
}

}  // namespace shardgan
