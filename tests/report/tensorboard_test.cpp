// TensorBoard's event files at the byte level (CRC-32C, TFRecord framing, the reader that stops at the first record
// that is not whole, the writer's failed write) and the resume rule (a new file with the older events up to the
// resumed step, the older files gone). tests/integration/tensorboard.sh reads real runs with TensorBoard itself.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "basics.hpp"
#include "report/event_file.hpp"
#include "report/tensorboard.hpp"
#include "report/tensorboard.pb.h"
#include "util/error.hpp"

namespace shardgan::report {
namespace {
namespace fs = std::filesystem;
using testing::error_of;
using testing::TempDir;
using testing::text_of;
using testing::write_text;

std::vector<std::string> records_of(const fs::path& file, bool* clean = nullptr) {
  RecordReader reader(file);
  std::vector<std::string> out;
  for (std::string data; reader.next(data);) out.push_back(data);
  if (clean != nullptr) *clean = reader.clean();
  return out;
}

std::vector<tensorboard::Event> events_of(const fs::path& file) {
  std::vector<tensorboard::Event> out;
  for (const auto& r : records_of(file)) {
    out.emplace_back();
    EXPECT_TRUE(out.back().ParseFromString(r));
  }
  return out;
}

TEST(EventFile, Crc32cOfKnownInputs) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xe3069283u);  // the CRC-32C check value (RFC 3720's polynomial)
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8a9136aau);  // RFC 3720 B.4: 32 bytes of zeros
  const uint32_t c = crc32c("123456789");
  EXPECT_EQ(masked_crc32c("123456789"), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST(EventFile, RecordFraming) {
  const std::string framed = frame_record("abc");
  ASSERT_EQ(framed.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(framed.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));  // the length, little-endian
  EXPECT_EQ(framed.substr(12, 3), "abc");
  const auto le32 = [&](std::size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(framed[at + i])) << (8 * i);
    return v;
  };
  EXPECT_EQ(le32(8), masked_crc32c(framed.substr(0, 8)));
  EXPECT_EQ(le32(15), masked_crc32c("abc"));
}

TEST(EventFile, WrittenOffTheCallersThreadAndReadBack) {
  TempDir tmp;
  const fs::path file = tmp / "events";
  {
    EventFileWriter writer(file);
    for (int i = 0; i < 100; ++i) writer.write("record " + std::to_string(i));
    writer.flush(/*sync=*/false);
    EXPECT_EQ(records_of(file).size(), 100u);  // flushed: all written while the writer is open
    writer.write(std::string(1 << 20, 'x'));
    writer.flush(/*sync=*/true);
  }
  bool clean = false;
  const auto records = records_of(file, &clean);
  ASSERT_EQ(records.size(), 101u);
  EXPECT_TRUE(clean);
  EXPECT_EQ(records[42], "record 42");
  EXPECT_EQ(records[100], std::string(1 << 20, 'x'));
  EXPECT_EQ(error_of([&] { EventFileWriter again(file); }).rfind(file.string() + ": cannot create (File exists)", 0), 0u);
}

// A killed run leaves a record cut short; a flipped bit, a length no record has: reading stops before them.
TEST(EventFile, ReadingStopsAtTheFirstRecordThatIsNotWhole) {
  TempDir tmp;
  const std::string whole = frame_record("one") + frame_record("two");
  const auto read_with = [&](const std::string& tail, bool* clean) {
    write_text(tmp / "f", whole + tail);
    return records_of(tmp / "f", clean);
  };
  bool clean = false;
  const std::string three = frame_record("three");
  for (std::size_t cut = 1; cut < three.size(); ++cut) {
    EXPECT_EQ(read_with(three.substr(0, cut), &clean), (std::vector<std::string>{"one", "two"})) << cut;
    EXPECT_FALSE(clean);
  }
  std::string flipped = three;
  flipped[13] ^= 1;  // in the data
  EXPECT_EQ(read_with(flipped + frame_record("four"), &clean).size(), 2u);
  EXPECT_FALSE(clean);
  std::string huge = frame_record("x");
  huge[6] = 1;  // a length of 2^48 + 1, with its CRC fixed up: over the limit, not allocated
  const uint32_t crc = masked_crc32c(huge.substr(0, 8));
  for (int i = 0; i < 4; ++i) huge[8 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  EXPECT_EQ(read_with(huge, &clean).size(), 2u);
  EXPECT_FALSE(clean);
  EXPECT_EQ(read_with("", &clean).size(), 2u);
  EXPECT_TRUE(clean);
  ASSERT_EQ(::mkfifo((tmp / "fifo").c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { RecordReader r(tmp / "fifo"); }).find("not a regular file"), std::string::npos);
}

// A full disk (here a file size limit): the next call on the caller's side is one Error naming the file, and the file
// keeps its whole records only.
TEST(EventFile, AFailedWriteIsCutBackAndReported) {
  TempDir tmp;
  const fs::path file = tmp / "events";
  EventFileWriter writer(file);
  writer.write("kept");
  writer.flush(/*sync=*/false);
  rlimit saved{};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  const rlimit limit{fs::file_size(file) + 100, saved.rlim_max};
  ::setrlimit(RLIMIT_FSIZE, &limit);
  writer.write(std::string(1000, 'y'));
  const std::string message = error_of([&] { writer.flush(/*sync=*/false); });
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(message, file.string() + ": write failed (File too large)");
  EXPECT_EQ(error_of([&] { writer.write("more"); }), message);
  bool clean = false;
  EXPECT_EQ(records_of(file, &clean), std::vector<std::string>{"kept"});
  EXPECT_TRUE(clean);
}

// A resume: one new file holding the older events up to the resumed step (not the session's text and hparams, which
// the new session writes again), after the version and a START at the resumed step; the older files are gone.
TEST(TensorBoardLog, AResumeSupersedesTheOlderFiles) {
  TempDir tmp;
  fs::path first;
  {
    TensorBoardLog log(tmp.path(), 0);
    first = log.file();
    log.text(0, "config", "    a = 1\n");
    log.hparams({{"optim.lr_g", 2e-4}, {"model.arch", std::string("dcgan")}, {"model.conditional", true}},
                {"train/loss_d"});
    for (int step = 10; step <= 40; step += 10) log.scalars(step, {{"train/loss_d", step / 10.0}});
    log.image(20, "samples", "png bytes", 2, 1, 3);
    log.flush(/*sync=*/true);
  }
  EXPECT_EQ(event_files(tmp.path()), std::vector<fs::path>{first});
  const auto events = events_of(first);
  ASSERT_EQ(events.size(), 8u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_FALSE(events[1].has_session_log());  // a fresh start has no START

  TensorBoardLog resumed(tmp.path(), 20);
  resumed.flush(/*sync=*/true);
  EXPECT_EQ(event_files(tmp.path()), std::vector<fs::path>{resumed.file()});
  EXPECT_GT(resumed.file().filename().string(), first.filename().string());  // TensorBoard reads files by name
  const auto after = events_of(resumed.file());
  ASSERT_EQ(after.size(), 5u);
  EXPECT_EQ(after[0].file_version(), "brain.Event:2");
  EXPECT_EQ(after[1].session_log().status(), tensorboard::SessionLog::START);
  EXPECT_EQ(after[1].step(), 20);
  std::vector<int64_t> steps;
  for (std::size_t i = 2; i < after.size(); ++i) steps.push_back(after[i].step());
  EXPECT_EQ(steps, (std::vector<int64_t>{10, 20, 20}));  // loss_d at 10 and 20, the image at 20
  EXPECT_EQ(after[4].summary().value(0).image().encoded_image_string(), "png bytes");
}

}  // namespace
}  // namespace shardgan::report
