#pragma once
#include <exception>
#include <string>

namespace shardgan {

/// `text` as one line for "tool: error: ..." lines: trailing newlines and blanks dropped, newlines inside folded into
/// spaces (a bad-input error is one line).
inline std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text)
    if (c == '\n') c = ' ';
  return text;
}

/// The one-line message of an exception: its what(), folded by one_line. No LibTorch here (util is below it): a
/// tool that may catch a LibTorch error uses compat::error_message (compat/error_message.hpp), which drops the C++
/// backtrace c10::Error carries in what().
inline std::string error_message(const std::exception& e) {
  return one_line(e.what());
}

}  // namespace shardgan
