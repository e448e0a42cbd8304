#include "zip_archive.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
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

/// A zip written byte by byte, so that its fields can lie: one stored entry `name` with `data`, whose central
/// directory record claims `size`/`compressed`/`offset` (0xFFFFFFFF: the value is in a ZIP64 extra field holding
/// `zip64`), and an end record pointing at the central directory (or, with `eocd64`, a ZIP64 end record that claims
/// `cd_offset64`/`cd_size64`).
struct RawZip {
  std::string name = "a.jpg";
  std::vector<uint8_t> data = payload(100, 3);
  uint32_t size = 100, compressed = 100, offset = 0;
  uint16_t method = 0;
  std::vector<uint64_t> zip64;
  bool eocd64 = false;
  uint64_t cd_offset64 = 0, cd_size64 = 0;

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> z;
    auto u16 = [&](uint32_t v) { z.push_back(uint8_t(v)), z.push_back(uint8_t(v >> 8)); };
    auto u32 = [&](uint32_t v) { u16(v & 0xFFFF), u16(v >> 16); };
    auto u64 = [&](uint64_t v) { u32(uint32_t(v)), u32(uint32_t(v >> 32)); };
    const uint32_t crc = 0;
    u32(0x04034b50), u16(20), u16(0), u16(method), u32(0), u32(crc), u32(compressed), u32(size);
    u16(uint16_t(name.size())), u16(0);
    z.insert(z.end(), name.begin(), name.end());
    z.insert(z.end(), data.begin(), data.end());
    const uint32_t cd = uint32_t(z.size());
    u32(0x02014b50), u16(20), u16(20), u16(0), u16(method), u32(0), u32(crc), u32(compressed), u32(size);
    u16(uint16_t(name.size())), u16(zip64.empty() ? 0 : uint16_t(4 + 8 * zip64.size())), u16(0), u16(0), u16(0);
    u32(0), u32(offset);
    z.insert(z.end(), name.begin(), name.end());
    if (!zip64.empty()) {
      u16(1), u16(uint16_t(8 * zip64.size()));
      for (uint64_t v : zip64) u64(v);
    }
    const uint32_t cd_size = uint32_t(z.size()) - cd;
    if (eocd64) {
      const uint64_t record = z.size();
      u32(0x06064b50), u64(44), u16(45), u16(45), u32(0), u32(0), u64(1), u64(1), u64(cd_size64), u64(cd_offset64);
      u32(0x07064b50), u32(0), u64(record), u32(1);
      u32(0x06054b50), u16(0), u16(0), u16(0xFFFF), u16(0xFFFF), u32(0xFFFFFFFF), u32(0xFFFFFFFF), u16(0);
    } else {
      u32(0x06054b50), u16(0), u16(0), u16(1), u16(1), u32(cd_size), u32(cd), u16(0);
    }
    return z;
  }
};

/// Opening and reading `zip` fails with an Error naming the file and containing `needle` (never a crash, a hang or
/// a huge allocation).
void expect_refused(const RawZip& zip, const std::string& needle) {
  TempDir tmp;
  testing::write_bytes(tmp / "z.zip", zip.bytes());
  try {
    ZipArchive archive(tmp / "z.zip");
    for (std::size_t i = 0; i < archive.entries().size(); ++i) archive.read(i);
    FAIL() << "accepted; expected: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what() << "\nexpected: " << needle;
    EXPECT_NE(std::string(e.what()).find("z.zip"), std::string::npos) << e.what();
  }
}

TEST(ZipArchive, HandWrittenZipReadsBack) {
  TempDir tmp;
  RawZip ok;
  testing::write_bytes(tmp / "z.zip", ok.bytes());
  ZipArchive archive(tmp / "z.zip");
  ASSERT_EQ(archive.entries().size(), 1u);
  EXPECT_THROW(archive.read(0), Error);  // the hand-written CRC is 0: caught, so the data itself was read
}

TEST(ZipArchive, SizesAndOffsetsThatLieAreRefusedBeforeAnythingIsAllocated) {
  RawZip huge;  // ZIP64: 4 GiB declared for 100 bytes present
  huge.size = 0xFFFFFFFF;
  huge.zip64 = {uint64_t{4} << 30};
  expect_refused(huge, "declares 4294967296 bytes, more than the 64 MiB limit of an image");
  RawZip bomb;  // deflate cannot turn 100 bytes into 50 MB (within the size limit)
  bomb.method = 8;
  bomb.size = 50'000'000;
  expect_refused(bomb, "more than deflate can produce");
  RawZip wrap;  // ZIP64 central directory offset + size wraps around 2^64
  wrap.eocd64 = true;
  wrap.cd_offset64 = ~uint64_t{0} - 10;
  wrap.cd_size64 = 100;
  expect_refused(wrap, "central directory lies outside the file");
  RawZip beyond;  // local header offset past the end
  beyond.offset = 0xFFFFFFFF;
  beyond.zip64 = {uint64_t{1} << 40};
  expect_refused(beyond, "local header lies outside the file");
  RawZip short_extra;  // a saturated size whose ZIP64 value is missing
  short_extra.size = 0xFFFFFFFF;
  short_extra.compressed = 0xFFFFFFFF;
  short_extra.zip64 = {100};
  expect_refused(short_extra, "short ZIP64 field");
  RawZip stored_mismatch;
  stored_mismatch.size = 50;
  expect_refused(stored_mismatch, "stored entry's sizes differ");
}

// A zip that fails in the constructor must not keep its file open (found by fuzz/zip_fuzz.cpp: "too many open files").
TEST(ZipArchive, ARefusedArchiveClosesItsFile) {
  auto open_files = [] {
    return std::distance(std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator());
  };
  RawZip wrap;
  wrap.eocd64 = true;
  wrap.cd_offset64 = ~uint64_t{0} - 10;
  wrap.cd_size64 = 100;
  TempDir tmp;
  testing::write_bytes(tmp / "z.zip", wrap.bytes());
  const auto before = open_files();
  for (int i = 0; i < 50; ++i) EXPECT_THROW(ZipArchive(tmp / "z.zip"), Error);
  EXPECT_EQ(open_files(), before);
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

// The archive is checked for what it is before it is opened: a FIFO is refused, never waited on; a device never read.
TEST(ZipArchive, OnlyARegularFileIsOpened) {
  TempDir tmp;
  ASSERT_EQ(::mkfifo((tmp / "fifo.zip").c_str(), 0600), 0);
  auto error = [](const std::filesystem::path& file) -> std::string {
    try {
      ZipArchive zip(file);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error(tmp / "fifo.zip"),
            "zip archive " + (tmp / "fifo.zip").string() + ": is a FIFO (a regular file is needed)");
  EXPECT_EQ(error("/dev/zero"), "zip archive /dev/zero: is a character device (a regular file is needed)");
  std::filesystem::create_directory(tmp / "dir.zip");
  EXPECT_EQ(error(tmp / "dir.zip"),
            "zip archive " + (tmp / "dir.zip").string() + ": is a directory (a regular file is needed)");
}

// The central directory is read whole: one declared larger than its limit is refused before it is read (a sparse
// file of 80 MiB whose end record declares it all central directory).
TEST(ZipArchive, CentralDirectoryOverItsLimitIsRefused) {
  TempDir tmp;
  const uint64_t size = uint64_t{80} << 20;
  std::vector<uint8_t> eocd = {0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0};
  const uint64_t cd_size = size - 22;
  for (int i = 0; i < 4; ++i) eocd.push_back(static_cast<uint8_t>(cd_size >> (8 * i)));
  for (int i = 0; i < 6; ++i) eocd.push_back(0);  // offset 0, no comment
  testing::write_bytes(tmp / "z.zip", {});
  std::filesystem::resize_file(tmp / "z.zip", size - eocd.size());
  {
    std::ofstream out(tmp / "z.zip", std::ios::binary | std::ios::app);
    out.write(reinterpret_cast<const char*>(eocd.data()), static_cast<std::streamsize>(eocd.size()));
  }
  ASSERT_EQ(std::filesystem::file_size(tmp / "z.zip"), size);
  try {
    ZipArchive zip(tmp / "z.zip");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (tmp / "z.zip").string() + ": central directory of " + std::to_string(cd_size) +
                                         " bytes is over the 64 MiB limit of a zip's central directory");
  }
}

TEST(ZipArchive, LongEntryNamesAreQuotedInMessages) {
  TempDir tmp;
  const std::string name = "../" + std::string(60000, 'e') + ".jpg";
  testing::write_zip(tmp / "evil.zip", {{name, payload(10, 2)}});
  try {
    ZipArchive zip(tmp / "evil.zip");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (tmp / "evil.zip").string() + ": entry '../" + std::string(197, 'e') +
                                         "...(59807 more bytes)' escapes the archive's folder; refusing this archive");
  }
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
