// What a binary linked with LibTorch calls when it calls the C++ library: the system's libstdc++, not a copy that a
// LibTorch exports (the torch 2.11 wheel's libtorch.so exports 83 std::filesystem functions whose remove_all with an
// error_code jumps to a null pointer; cmake/ShardganDependencies.cmake puts libstdc++ first in the load order).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "basics.hpp"

namespace shardgan {
namespace {
namespace fs = std::filesystem;

TEST(LinkOrder, StdFilesystemIsTheSystemsLibstdcxx) {
  using RemoveAll = std::uintmax_t (*)(const fs::path&, std::error_code&);
  const RemoveAll remove_all = &fs::remove_all;
  Dl_info info{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(remove_all), &info), 0);
  ASSERT_NE(info.dli_fname, nullptr);
  EXPECT_NE(std::string(info.dli_fname).find("libstdc++"), std::string::npos) << info.dli_fname;

  testing::TempDir tmp;
  fs::create_directories(tmp / "a" / "b");
  std::ofstream(tmp / "a" / "b" / "file") << "x";
  std::error_code ec;
  EXPECT_EQ(fs::remove_all(tmp / "a", ec), 3u);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(fs::exists(tmp / "a"));
}

}  // namespace
}  // namespace shardgan
