// metrics.jsonl on resume and on a full disk: bounded memory whatever the file holds, rejected lines moved aside
// byte for byte (holes kept as holes), and a failed write that changes nothing.
#include "report/run_outputs.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixtures.hpp"
#include "util/error.hpp"
#include "basics.hpp"

namespace shardgan {
namespace {
namespace fs = std::filesystem;

using shardgan::testing::text_of;

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string row(int64_t step) {
  report::MetricsRow r;
  r.step = step;
  r.loss_d = 1.25;
  return report::to_json(r).dump();
}

void append(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::app | std::ios::binary);
  out << bytes;
}

/// This process's resident memory now, and its peak since the last reset_peak_rss (kB, /proc/self/status).
int64_t status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::string(key).size()));
  return -1;
}
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.close();
  return static_cast<bool>(out);
}

using shardgan::testing::error_of;

// A line over kMaxMetricsLineBytes is rejected without being parsed (even one that would read as a row) and moved
// aside byte for byte; the rows around it are kept.
TEST(RunOutputsMetrics, AnOverlongLineIsMovedAsideUnparsed) {
  testing::TempDir tmp;
  const fs::path metrics = tmp / "metrics.jsonl";
  const std::string overlong = "{\"step\":60,\"pad\":\"" + std::string(3 << 20, 'x') + "\"}";
  testing::write_text(metrics, row(50) + "\n" + overlong + "\n" + row(80) + "\n" + row(120) + "\n");
  report::RunOutputs outputs(tmp.path(), 100, 1000, 50);
  EXPECT_EQ(text_of(metrics), row(50) + "\n" + row(80) + "\n");
  EXPECT_EQ(text_of(tmp / "metrics.rejected.jsonl"), overlong + "\n" + row(120) + "\n");
  EXPECT_FALSE(fs::exists(tmp / "metrics.jsonl.tmp"));
}

// What a power cut leaves: the file's size updated but not its data, a tail of NULs that is a hole. Resuming reads
// it in bounded memory (the old reader held the whole "line" twice: 512 MiB here) and moves it aside as a hole.
TEST(RunOutputsMetrics, ASparseTailOfNulsIsMovedAsideInBoundedMemoryAndStaysSparse) {
  testing::TempDir tmp;
  const fs::path metrics = tmp / "metrics.jsonl";
  const std::string rows = row(50) + "\n" + row(100) + "\n";
  testing::write_text(metrics, rows);
  constexpr off_t kTail = off_t{256} << 20;
  fs::resize_file(metrics, rows.size() + kTail);
  ASSERT_TRUE(reset_peak_rss());
  const int64_t before_kb = status_kb("VmRSS:");
  { report::RunOutputs outputs(tmp.path(), 100, 1000, 50); }
  const int64_t grown_kb = status_kb("VmHWM:") - before_kb;
  EXPECT_LT(grown_kb, 32 << 10) << "peak memory grew by " << grown_kb << " kB";
  EXPECT_EQ(text_of(metrics), rows);
  struct stat st {};
  ASSERT_EQ(::stat((tmp / "metrics.rejected.jsonl").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, kTail + 1);  // the NULs, and a '\n' that ends them (the next rejected line stays apart)
  EXPECT_LT(st.st_blocks * 512, 1 << 20);
}

// A line a crash cut short (no '\n') is ended when it is moved aside, so that rejected lines never run together.
TEST(RunOutputsMetrics, ACrashCutLastLineIsEndedWhenMovedAside) {
  testing::TempDir tmp;
  const fs::path metrics = tmp / "metrics.jsonl";
  testing::write_text(metrics, row(50) + "\n{\"step\":6");
  { report::RunOutputs outputs(tmp.path(), 100, 1000, 50); }
  append(metrics, "{\"step\":7");
  { report::RunOutputs outputs(tmp.path(), 100, 1000, 50); }
  EXPECT_EQ(text_of(metrics), row(50) + "\n");
  EXPECT_EQ(lines_of(tmp / "metrics.rejected.jsonl"), (std::vector<std::string>{"{\"step\":6", "{\"step\":7"}));
}

// A full disk while the rejected lines are moved aside: one error naming the file, metrics.jsonl as it was, no
// temporary file.
TEST(RunOutputsMetrics, AFullDiskDuringTheResumeRewriteChangesNothing) {
  testing::TempDir tmp;
  const fs::path metrics = tmp / "metrics.jsonl";
  const std::string before = row(50) + "\n" + row(150) + "\n";
  testing::write_text(metrics, before);
  fs::create_symlink("/dev/full", tmp / "metrics.rejected.jsonl");
  EXPECT_EQ(error_of([&] { report::RunOutputs outputs(tmp.path(), 100, 1000, 50); }),
            (tmp / "metrics.rejected.jsonl").string() + ": write failed (No space left on device)");
  EXPECT_EQ(text_of(metrics), before);
  EXPECT_FALSE(fs::exists(tmp / "metrics.jsonl.tmp"));
}

// A full disk at a metrics row: an error naming metrics.jsonl and the reason; a row cut short is cut back.
TEST(RunOutputsMetrics, AFullDiskFailsARowAndLeavesNoPartialLine) {
  testing::TempDir tmp;
  report::RunOutputs outputs(tmp.path(), 0, 1000, 50);
  report::MetricsRow r;
  r.step = 5;
  outputs.log(r);
  const fs::path metrics = tmp / "metrics.jsonl";
  const std::string before = text_of(metrics);
  ASSERT_EQ(lines_of(metrics).size(), 1u);
  r.step = 10;
  std::string message;
  {  // the next write may go 10 bytes further: the row is cut short, then fails (EFBIG)
    rlimit saved{};
    ::getrlimit(RLIMIT_FSIZE, &saved);
    const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{before.size() + 10, saved.rlim_max};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    message = error_of([&] { outputs.log(r); });
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, old_handler);
  }
  EXPECT_EQ(message, metrics.string() + ": write failed (File too large)");
  EXPECT_EQ(text_of(metrics), before);
  fs::rename(metrics, tmp / "kept.jsonl");
  fs::create_symlink("/dev/full", metrics);
  EXPECT_EQ(error_of([&] { outputs.log(r); }), metrics.string() + ": write failed (No space left on device)");
}

}  // namespace
}  // namespace shardgan
