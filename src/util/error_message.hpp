#pragma once
#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace shardgan {

/// The one-line message of an exception for "tool: error: ..." lines: LibTorch errors without their C++ backtrace,
/// newlines folded into spaces (a bad-input error is one line).
inline std::string error_message(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  std::string text = torch_error != nullptr ? torch_error->what_without_backtrace() : e.what();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text)
    if (c == '\n') c = ' ';
  return text;
}

}  // namespace shardgan
