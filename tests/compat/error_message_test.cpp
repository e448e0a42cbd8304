// compat::error_message: a LibTorch error's message without its C++ backtrace, on one line; any other exception as
// util's error_message gives it.
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "compat/error_message.hpp"
#include "util/error.hpp"

namespace shardgan {
namespace {

TEST(CompatErrorMessage, LibTorchErrorWithoutBacktraceOnOneLine) {
  try {
    TORCH_CHECK(false, "shapes differ:\n[2, 3] vs [3, 2]");
    FAIL() << "TORCH_CHECK did not throw";
  } catch (const std::exception& e) {
    const std::string message = compat::error_message(e);
    EXPECT_NE(message.find("shapes differ: [2, 3] vs [3, 2]"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.find("Exception raised from"), std::string::npos) << message;  // the backtrace's first line
  }
}

TEST(CompatErrorMessage, OtherExceptionsAsUtilGivesThem) {
  const Error error("data.toml: bad key\n  line 3\n");
  EXPECT_EQ(compat::error_message(error), error_message(error));
  EXPECT_EQ(compat::error_message(std::runtime_error("plain")), "plain");
}

}  // namespace
}  // namespace shardgan
