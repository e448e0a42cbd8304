// One writer per run folder: RunLock's refusals, its record of the holder, and its release.
#include "util/run_lock.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <thread>

#include "basics.hpp"
#include "util/error.hpp"

extern char** environ;

namespace shardgan {
namespace {
namespace fs = std::filesystem;

std::string refusal(const fs::path& dir) {
  try {
    RunLock lock(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

using shardgan::testing::text_of;

std::string host_name() {
  char host[256] = "";
  ::gethostname(host, sizeof(host) - 1);
  return host;
}

// flock locks belong to an open file description: a second open() + flock in the same process conflicts, just like
// a second trainer on the same folder.
TEST(RunLock, ASecondLockOnTheFolderIsRefusedNamingTheHolder) {
  testing::TempDir tmp;
  ::setenv("SLURM_JOB_ID", "4242", 1);
  std::optional<RunLock> first(std::in_place, tmp.path());
  ::unsetenv("SLURM_JOB_ID");
  EXPECT_EQ(first->file(), tmp / "run.lock");
  EXPECT_EQ(text_of(tmp / "run.lock"), first->holder() + "\n");
  const std::string message = refusal(tmp.path());
  const std::string holder = "shardgan-train pid " + std::to_string(::getpid()) + " on host " + host_name();
  EXPECT_EQ(message.rfind(tmp.path().string() + ": in use by " + holder + " (Slurm job 4242) since 20", 0), 0u)
      << message;
  EXPECT_NE(
      message.find("Z; wait for it to end or use another run folder (lock file " + (tmp / "run.lock").string() + ")"),
      std::string::npos)
      << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_EQ(text_of(tmp / "run.lock"), first->holder() + "\n");  // the refused attempt changed nothing
  // Released when the holder goes (and its file removed): the folder can be taken again.
  first.reset();
  EXPECT_FALSE(fs::exists(tmp / "run.lock"));
  RunLock again(tmp.path());
  EXPECT_EQ(again.holder().rfind(holder + " since 20", 0), 0u) << again.holder();  // no Slurm job: none named
}

// A lock file left by a run that died records a holder that is gone; the kernel released its lock with it.
TEST(RunLock, AFileLeftByADeadHolderDoesNotBlock) {
  testing::TempDir tmp;
  testing::write_text(tmp / "run.lock", "shardgan-train pid 1 on host gone since 2020-01-01T00:00:00Z\n");
  RunLock lock(tmp.path());
  EXPECT_EQ(text_of(tmp / "run.lock"), lock.holder() + "\n");
  EXPECT_NE(lock.holder().find("pid " + std::to_string(::getpid())), std::string::npos);
}

// Another process holds the lock (a shell holding flock on the file, then sleeping): refused with what it recorded;
// killed, its lock goes with it.
TEST(RunLock, AHolderInAnotherProcessBlocksUntilItDies) {
  testing::TempDir tmp;
  const std::string file = (tmp / "run.lock").string();
  testing::write_text(file, "");
  const char* script =
      "exec 9<>\"$0\" && flock 9 && echo \"shardgan-train pid $$ on host elsewhere since 2026-01-01T00:00:00Z\" >&9 "
      "&& exec sleep 60";
  const char* argv[] = {"/bin/sh", "-c", script, file.c_str(), nullptr};
  pid_t child = 0;
  ASSERT_EQ(::posix_spawn(&child, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  // Wait until it holds the lock and has said who it is.
  std::string message;
  for (int i = 0; i < 500 && message.find("elsewhere") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (text_of(file).find('\n') != std::string::npos) message = refusal(tmp.path());
  }
  EXPECT_NE(message.find(": in use by shardgan-train pid " + std::to_string(child) + " on host elsewhere since"),
            std::string::npos)
      << message;
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_NO_THROW(RunLock lock(tmp.path()));
}

// A lock file that is not a regular file of its own (a link planted in the folder) is not followed.
TEST(RunLock, ALinkInPlaceOfTheFileIsRefused) {
  testing::TempDir tmp;
  testing::write_text(tmp / "elsewhere", "keep\n");
  fs::create_symlink(tmp / "elsewhere", tmp / "run.lock");
  EXPECT_NE(refusal(tmp.path()).find("cannot open the lock file"), std::string::npos);
  EXPECT_EQ(text_of(tmp / "elsewhere"), "keep\n");
}

}  // namespace
}  // namespace shardgan
