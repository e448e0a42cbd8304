#pragma once
// The one-line message of an exception for the tools that link LibTorch: util/error_message.hpp's, except that a
// LibTorch error (c10::Error) gives its message without the C++ backtrace that its what() carries.
#include <c10/util/Exception.h>

#include <exception>
#include <string>

#include "util/error_message.hpp"

namespace shardgan::compat {

/// For "tool: error: ..." lines: c10::Error without its backtrace, any other exception's what(); newlines folded
/// into spaces (shardgan::one_line). Call it qualified, compat::error_message(e): shardgan::error_message (util) is
/// the plain one.
inline std::string error_message(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  return one_line(torch_error != nullptr ? torch_error->what_without_backtrace() : e.what());
}

}  // namespace shardgan::compat
