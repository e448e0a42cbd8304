#include "train/run_guard.hpp"

#include <cstdio>
#include <exception>

#include "compat/error_message.hpp"

namespace shardgan::train {

int run_or_abort(const comm::MpiSession& session, const char* tool, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    if (session.size() > 1) {
      std::fprintf(stderr, "%s: error: rank %d: %s\n", tool, session.rank(), compat::error_message(e).c_str());
      std::fflush(stderr);
      comm::MpiSession::abort(1);  // no rank is left waiting in a collective
    }
    std::fprintf(stderr, "%s: error: %s\n", tool, compat::error_message(e).c_str());
    return 1;
  }
}

}  // namespace shardgan::train
