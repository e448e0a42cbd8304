// Inputs are checked for what they are before they are read, and every read is bounded.
#include "util/input_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "basics.hpp"
#include "util/error.hpp"

namespace shardgan {
namespace {
namespace fs = std::filesystem;

using shardgan::testing::error_of;

TEST(InputFile, SpecialFilesAreNamedForWhatTheyAre) {
  testing::TempDir tmp;
  ASSERT_EQ(::mkfifo((tmp / "fifo").c_str(), 0600), 0);
  fs::create_directory(tmp / "dir");
  fs::create_symlink(tmp / "nowhere", tmp / "dangling");
  fs::create_symlink("/dev/zero", tmp / "zero-link");
  const auto read = [](const fs::path& p) { return [p] { read_bounded(p, 1 << 20, "config"); }; };
  // A FIFO is refused at once (never opened for a blocking read), /dev/zero is refused before a byte is read.
  EXPECT_NE(error_of(read(tmp / "fifo")).find("fifo: is a FIFO (a regular file is needed)"), std::string::npos);
  EXPECT_NE(error_of(read(tmp / "dir")).find("dir: is a directory"), std::string::npos);
  EXPECT_NE(error_of(read(tmp / "dangling")).find("is a dangling symbolic link"), std::string::npos);
  EXPECT_NE(error_of(read(tmp / "zero-link")).find("is a character device"), std::string::npos);
  EXPECT_NE(error_of(read("/dev/zero")).find("config /dev/zero: is a character device"), std::string::npos);
  EXPECT_NE(error_of(read(tmp / "absent")).find("absent: is missing"), std::string::npos);
  EXPECT_NE(error_of([&] { require_directory(tmp / "fifo", "data set"); }).find("is a FIFO (a directory is needed)"),
            std::string::npos);
  EXPECT_NO_THROW(require_directory(tmp / "dir", "data set"));
}

TEST(InputFile, ReadsAreBoundedByTheStatedMaximum) {
  testing::TempDir tmp;
  testing::write_text(tmp / "small", "abc");
  EXPECT_EQ(read_bounded(tmp / "small", 3, "config"), "abc");
  EXPECT_NE(error_of([&] { read_bounded(tmp / "small", 2, "config"); }).find("is over the 2 bytes limit of a config"),
            std::string::npos);
  // A sparse 1 GiB file (a power cut's NUL tail, or a typo'd path to an image) is refused after 1 MiB + a block.
  {
    std::ofstream big(tmp / "big");
    big.seekp((1ll << 30) - 1);
    big.put('\0');
  }
  EXPECT_NE(error_of([&] { read_bounded(tmp / "big", kMaxConfigBytes, "run configuration"); })
                .find("is over the 1 MiB limit of a run configuration"),
            std::string::npos);
}

TEST(InputFile, LinesAreBoundedAndAnOverlongOneIsAnErrorOrSkipped) {
  testing::TempDir tmp;
  testing::write_text(tmp / "lines", "one\n" + std::string(100, 'x') + "\nthree");
  {
    LineReader r(tmp / "lines", 10, "metrics file");
    std::string line;
    ASSERT_TRUE(r.next(line));
    EXPECT_EQ(line, "one");
    EXPECT_NE(error_of([&] { r.next(line); }).find("line 2 is over the 10 bytes limit"), std::string::npos);
  }
  LineReader r(tmp / "lines", 10, "metrics file");
  std::string line;
  bool overlong = false;
  ASSERT_TRUE(r.next(line, &overlong));
  EXPECT_FALSE(overlong);
  ASSERT_TRUE(r.next(line, &overlong));
  EXPECT_TRUE(overlong);
  EXPECT_EQ(r.line_offset(), 4u);
  ASSERT_TRUE(r.next(line, &overlong));
  EXPECT_EQ(line, "three");
  EXPECT_EQ(r.line_offset(), 105u);
  EXPECT_FALSE(r.next(line));
}

TEST(InputFile, QuotedInputIsShortAndOneLine) {
  EXPECT_EQ(quoted("abc"), "abc");
  EXPECT_EQ(quoted(std::string_view("a\nb\0c", 5), 10), "a?b?c");
  EXPECT_EQ(quoted(std::string(1000, 'k'), 5), "kkkkk...(995 more bytes)");
  EXPECT_EQ(byte_size(1 << 20), "1 MiB");
  EXPECT_EQ(byte_size(64 << 10), "64 KiB");
  EXPECT_EQ(byte_size(300), "300 bytes");
}

}  // namespace
}  // namespace shardgan
