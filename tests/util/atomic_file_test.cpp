// Checked writes on a full disk: /dev/full (every write fails with ENOSPC) and RLIMIT_FSIZE (a write past the limit
// is cut short, the next one fails with EFBIG) stand in for a full file system, for any user and on any file system.
#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "basics.hpp"
#include "util/error.hpp"

namespace shardgan {
namespace {
namespace fs = std::filesystem;

using shardgan::testing::error_of;

using shardgan::testing::text_of;

/// Files this process writes end at `bytes` while it lives (SIGXFSZ ignored, so the write fails with EFBIG).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{bytes, saved_.rlim_max};
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_{};
  sighandler_t old_handler_;
};

TEST(CheckedWrite, AFullDiskIsOneLineNamingTheFileAndTheReason) {
  testing::TempDir tmp;
  fs::create_symlink("/dev/full", tmp / "full.pt");
  const std::string bytes(200000, 'x');
  EXPECT_EQ(error_of([&] { write_file_checked(tmp / "full.pt", bytes, tmp / "shown.pt"); }),
            (tmp / "shown.pt").string() + ": write failed (No space left on device)");
  EXPECT_TRUE(fs::exists("/dev/full"));  // only a regular file is removed after a failure
  EXPECT_EQ(error_of([&] { write_file_checked(tmp / "full.pt", "small"); }),
            (tmp / "full.pt").string() + ": write failed (No space left on device)");
  write_file_checked(tmp / "ok.pt", bytes);
  EXPECT_EQ(text_of(tmp / "ok.pt"), bytes);
}

TEST(CheckedWrite, AWriteCutShortLeavesNoPartialFile) {
  testing::TempDir tmp;
  const std::string bytes(300000, 'y');
  std::string message;
  {
    FileSizeLimit limit(100000);  // the first write stops at 100000 bytes, the next one fails
    message = error_of([&] { write_file_checked(tmp / "big.pt", bytes); });
  }
  EXPECT_EQ(message, (tmp / "big.pt").string() + ": write failed (File too large)");
  EXPECT_FALSE(fs::exists(tmp / "big.pt"));
}

TEST(CheckedWrite, AFailedAppendIsCutBackLeavingNoPartialLine) {
  testing::TempDir tmp;
  testing::write_text(tmp / "metrics.jsonl", "{\"step\":1}\n");
  {
    CheckedFile ok(tmp / "metrics.jsonl", CheckedFile::Mode::kAppend);
    ok.write("{\"step\":2}\n");
    ok.finish(/*sync=*/false);
  }
  const std::string before = text_of(tmp / "metrics.jsonl");
  EXPECT_EQ(before, "{\"step\":1}\n{\"step\":2}\n");
  std::string message;
  {
    FileSizeLimit limit(before.size() + 10);
    message = error_of([&] {
      CheckedFile out(tmp / "metrics.jsonl", CheckedFile::Mode::kAppend);
      out.write("{\"step\":3,\"loss_d\":1.5,\"loss_g\":0.5}\n");
      out.finish(/*sync=*/false);
    });
  }
  EXPECT_EQ(message, (tmp / "metrics.jsonl").string() + ": write failed (File too large)");
  EXPECT_EQ(text_of(tmp / "metrics.jsonl"), before);
}

TEST(CheckedWrite, AnAtomicReplacementThatFailsKeepsTheOldFileAndNoTemporary) {
  testing::TempDir tmp;
  write_text_atomically(tmp / "report.html", "old");
  fs::create_symlink("/dev/full", tmp / "report.html.tmp");  // where the temporary file goes: a full disk
  EXPECT_EQ(error_of([&] { write_text_atomically(tmp / "report.html", "new"); }),
            (tmp / "report.html").string() + ": write failed (No space left on device)");
  EXPECT_EQ(text_of(tmp / "report.html"), "old");
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp / "report.html.tmp")));
  EXPECT_TRUE(fs::exists("/dev/full"));
}

// A gigabyte-scale hole (what a power cut leaves at the end of an appended file) is copied in no time and takes no
// space; the data around it is copied byte for byte.
TEST(CheckedWrite, CopyRangeKeepsHolesAsHoles) {
  testing::TempDir tmp;
  const fs::path source = tmp / "sparse";
  testing::write_text(source, "head\n");
  constexpr off_t kHole = off_t{1} << 30;
  {
    const int fd = ::open(source.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "tail\n", 5, kHole), 5);
    ::close(fd);
  }
  const int fd = ::open(source.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  {
    CheckedFile out(tmp / "copy", CheckedFile::Mode::kCreate);
    out.write(">");
    out.copy_range(fd, source, 1, static_cast<uint64_t>(kHole) + 5);  // from "ead\n" to the end
    out.finish(/*sync=*/true);
  }
  {
    CheckedFile out(tmp / "trailing", CheckedFile::Mode::kCreate);
    out.copy_range(fd, source, 5, static_cast<uint64_t>(kHole));  // only a hole: the file is extended over it
    out.finish(/*sync=*/false);
  }
  ::close(fd);
  struct stat st {};
  ASSERT_EQ(::stat((tmp / "copy").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, kHole + 5);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);
  const int copy = ::open((tmp / "copy").c_str(), O_RDONLY);
  char head[5] = {}, tail[5] = {}, middle[3] = {1, 1, 1};
  EXPECT_EQ(::pread(copy, head, 5, 0), 5);
  EXPECT_EQ(::pread(copy, tail, 5, kHole), 5);
  EXPECT_EQ(::pread(copy, middle, 3, kHole / 2), 3);
  ::close(copy);
  EXPECT_EQ(std::string(head, 5), ">ead\n");
  EXPECT_EQ(std::string(tail, 5), "tail\n");
  EXPECT_EQ(std::string(middle, 3), std::string(3, '\0'));
  ASSERT_EQ(::stat((tmp / "trailing").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, kHole - 5);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);
}

}  // namespace
}  // namespace shardgan
