#include "zip_archive.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "fixtures.hpp"
#include "util/error.hpp"

namespace shardgan::pack {
namespace {
using shardgan::testing::TempDir;

std::vector<uint8_t> payload(std::size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 5));
  return v;
}

TEST(ZipArchive, ReadsStoredAndDeflatedEntries) {
  TempDir tmp;
  const std::vector<testing::Member> members = {
      {"dir/a.jpg", payload(100000, 1)}, {"b.jpg", payload(3, 2)}, {"empty.txt", {}}};
  for (bool store : {false, true}) {
    const auto file = tmp / (store ? "stored.zip" : "deflated.zip");
    testing::write_zip(file, members, store);
    ZipArchive zip(file);
    ASSERT_EQ(zip.entries().size(), 3u);
    for (std::size_t i = 0; i < members.size(); ++i) {
      EXPECT_EQ(zip.entries()[i].name, members[i].first);
      EXPECT_EQ(zip.read(i), members[i].second) << members[i].first << (store ? " stored" : " deflated");
    }
    if (!store) {
      EXPECT_EQ(zip.entries()[0].method, 8);
    }
  }
}

TEST(ZipArchive, ConcurrentReadsOfOneArchive) {
  TempDir tmp;
  std::vector<testing::Member> members;
  for (int i = 0; i < 64; ++i) members.push_back({"e" + std::to_string(i), payload(5000 + i, uint8_t(i))});
  testing::write_zip(tmp / "z.zip", members);
  ZipArchive zip(tmp / "z.zip");
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < members.size(); ++i) ok[t] += zip.read(i) == members[i].second;
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[t], 64);
}

TEST(ZipArchive, EntryEscapingItsFolderIsRefused) {
  TempDir tmp;
  testing::write_zip(tmp / "evil.zip", {{"ok.jpg", payload(10, 1)}, {"imgs/../../evil.jpg", payload(10, 2)}});
  try {
    ZipArchive zip(tmp / "evil.zip");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (tmp / "evil.zip").string() +
                                         ": entry 'imgs/../../evil.jpg' escapes the archive's folder; refusing "
                                         "this archive");
  }
}

TEST(ZipArchive, CorruptedEntryFailsItsCrc) {
  TempDir tmp;
  const auto data = payload(1000, 3);
  testing::write_zip(tmp / "z.zip", {{"a.bin", data}}, /*store=*/true);
  auto bytes = testing::read_bytes(tmp / "z.zip");
  // Stored data starts after the 30-byte local header and the name; flip a byte in the middle of it.
  bytes[30 + 5 + 500] ^= 0x55;
  testing::write_bytes(tmp / "z.zip", bytes);
  ZipArchive zip(tmp / "z.zip");
  EXPECT_THROW(zip.read(0), Error);
}

TEST(ZipArchive, NotAZipFile) {
  TempDir tmp;
  testing::write_text(tmp / "x.zip", "this is not a zip archive");
  EXPECT_THROW(ZipArchive(tmp / "x.zip"), Error);
}

TEST(ZipArchive, SafeMemberNames) {
  EXPECT_TRUE(safe_member_name("a.jpg"));
  EXPECT_TRUE(safe_member_name("HAM10000_images_part_1/ISIC_0024306.jpg"));
  EXPECT_TRUE(safe_member_name("a..b.jpg"));
  EXPECT_FALSE(safe_member_name("../a.jpg"));
  EXPECT_FALSE(safe_member_name("x/../../a.jpg"));
  EXPECT_FALSE(safe_member_name("x\\..\\a.jpg"));
  EXPECT_FALSE(safe_member_name("/etc/passwd"));
  EXPECT_FALSE(safe_member_name("C:\\a.jpg"));
  EXPECT_FALSE(safe_member_name(".."));
}

}  // namespace
}  // namespace shardgan::pack
