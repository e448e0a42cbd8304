#pragma once
// TensorBoard's event files at the level of bytes: TFRecord framing (length, masked CRC32C of the length, data, masked
// CRC32C of the data; little-endian), a reader that stops at the first record that is not whole, and a writer whose
// writes happen on a thread of its own. What the records hold is report/tensorboard.hpp.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace shardgan::report {

/// CRC-32C (Castagnoli) of `bytes` (Intel ISA-L's crc32_iscsi).
uint32_t crc32c(std::string_view bytes);
/// The CRC as a TFRecord stores it: rotated right by 15 bits plus 0xa282ead8.
uint32_t masked_crc32c(std::string_view bytes);
/// `data` framed as one TFRecord.
std::string frame_record(std::string_view data);

/// The largest record shardgan reads back (a sample grid's PNG is a few MiB at most).
inline constexpr uint64_t kMaxEventRecordBytes = 64u << 20;

/// Reads the records of a TFRecord file in order, in bounded memory. A record that is not whole — cut short by a
/// crash, a CRC that does not match, a length over kMaxEventRecordBytes — ends the reading: what comes after it
/// cannot be framed. `clean()` tells whether the file ended at a record boundary.
class RecordReader {
 public:
  explicit RecordReader(const std::filesystem::path& file);
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;
  /// The next whole record's data; false at the end or at the first record that is not whole.
  bool next(std::string& data);
  bool clean() const { return clean_; }

 private:
  std::FILE* file_ = nullptr;
  bool clean_ = true, done_ = false;
};

/// Appends framed records to a new file from a thread of its own: the caller only queues them. A failed write (a
/// full disk) cuts the file back to its last whole record (removes it when it has none), and the next call on the
/// caller's side throws Error naming the file. At most kMaxQueuedBytes wait in memory; beyond that `write` waits for the disk.
class EventFileWriter {
 public:
  /// Creates `file` (it must not exist).
  explicit EventFileWriter(std::filesystem::path file);
  /// Writes what is queued and closes the file; errors here are not reported (`flush` first to see them).
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  /// Queues one record (its data; framed here).
  void write(std::string_view data);
  /// Waits until every queued record is written, and fsyncs the file when `sync`; Error on a failed write.
  void flush(bool sync);
  const std::filesystem::path& file() const { return file_; }

  static constexpr std::size_t kMaxQueuedBytes = 64u << 20;

 private:
  void run();
  /// Writes one framed record (the writing thread, unlocked); 0 or the errno of the failed write.
  int append(const std::string& record);
  void throw_if_failed();  // with mutex_ held

  std::filesystem::path file_;
  int fd_ = -1;
  uint64_t size_ = 0;  ///< bytes of whole records on disk (the writing thread's)
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  int64_t requested_syncs_ = 0, done_syncs_ = 0;
  bool busy_ = false, stopping_ = false;
  std::string error_;  ///< the first failure, reported once and then kept (the writer is done)
  std::thread thread_;
};

}  // namespace shardgan::report
