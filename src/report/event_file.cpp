#include "report/event_file.hpp"

#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/error.hpp"

namespace shardgan::report {
namespace fs = std::filesystem;

uint32_t crc32c(std::string_view bytes) {
  // ISA-L's crc32_iscsi takes and returns the CRC register without the final inversion.
  auto* data = reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data()));  // ISA-L does not write it
  uint32_t crc = 0xffffffffu;
  std::size_t left = bytes.size();
  while (left > 0) {  // its length is an int
    const std::size_t n = std::min<std::size_t>(left, 1u << 30);
    crc = crc32_iscsi(data, static_cast<int>(n), crc);
    data += n, left -= n;
  }
  return ~crc;
}

uint32_t masked_crc32c(std::string_view bytes) {
  const uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

namespace {

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t get_le(const unsigned char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return value;
}

}  // namespace

std::string frame_record(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_le(out, data.size(), 8);
  put_le(out, masked_crc32c(out), 4);
  out.append(data);
  put_le(out, masked_crc32c(data), 4);
  return out;
}

RecordReader::RecordReader(const fs::path& file) {
  // Without blocking: a FIFO put in the file's place is refused, not waited on.
  const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail(file.string(), ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(file.string(), ": not a regular file (an event file is needed)");
  }
  file_ = ::fdopen(fd, "rb");
  if (file_ == nullptr) {
    ::close(fd);
    fail(file.string(), ": cannot open (", std::strerror(errno), ")");
  }
}

RecordReader::~RecordReader() {
  if (file_ != nullptr) std::fclose(file_);
}

bool RecordReader::next(std::string& data) {
  if (done_) return false;
  done_ = true;  // until a whole record is read
  unsigned char header[12];
  const std::size_t got = std::fread(header, 1, sizeof(header), file_);
  if (got == 0 && std::feof(file_)) return false;  // the end, at a record boundary
  clean_ = false;
  if (got != sizeof(header)) return false;
  const uint64_t length = get_le(header, 8);
  if (static_cast<uint32_t>(get_le(header + 8, 4)) !=
      masked_crc32c(std::string_view(reinterpret_cast<const char*>(header), 8)))
    return false;
  if (length > kMaxEventRecordBytes) return false;
  data.resize(length);
  unsigned char footer[4];
  if (std::fread(data.data(), 1, length, file_) != length || std::fread(footer, 1, 4, file_) != 4) return false;
  if (static_cast<uint32_t>(get_le(footer, 4)) != masked_crc32c(data)) return false;
  clean_ = true;
  done_ = false;
  return true;
}

EventFileWriter::EventFileWriter(fs::path file) : file_(std::move(file)) {
  fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(file_.string(), ": cannot create (", std::strerror(errno), ")");
  thread_ = std::thread([this] { run(); });
}

EventFileWriter::~EventFileWriter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

void EventFileWriter::throw_if_failed() {
  if (!error_.empty()) throw Error(error_);
}

void EventFileWriter::write(std::string_view data) {
  std::string record = frame_record(data);
  std::unique_lock<std::mutex> lock(mutex_);
  throw_if_failed();
  changed_.wait(lock, [&] { return queued_bytes_ <= kMaxQueuedBytes || !error_.empty(); });
  throw_if_failed();
  queued_bytes_ += record.size();
  queue_.push_back(std::move(record));
  lock.unlock();
  changed_.notify_all();
}

void EventFileWriter::flush(bool sync) {
  std::unique_lock<std::mutex> lock(mutex_);
  const int64_t target = sync ? ++requested_syncs_ : 0;
  changed_.notify_all();
  changed_.wait(lock, [&] {
    return !error_.empty() || (queue_.empty() && !busy_ && done_syncs_ >= target);
  });
  throw_if_failed();
}

int EventFileWriter::append(const std::string& record) {
  std::size_t written = 0;
  while (written < record.size()) {
    const ssize_t n = ::write(fd_, record.data() + written, record.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      // A record is whole or not there: a failed one is cut back, so the file still reads to its last record; a
      // file without one is removed (no empty output left behind).
      if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0) ::lseek(fd_, static_cast<off_t>(size_), SEEK_SET);
      if (size_ == 0) ::unlink(file_.c_str());
      return error;
    }
    written += static_cast<std::size_t>(n);
  }
  size_ += record.size();
  return 0;
}

void EventFileWriter::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return !queue_.empty() || requested_syncs_ > done_syncs_ || stopping_; });
    if (!queue_.empty() && error_.empty()) {
      const std::string record = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      const int error = append(record);
      lock.lock();
      busy_ = false;
      queued_bytes_ -= record.size();
      if (error != 0) error_ = cat(file_.string(), ": write failed (", std::strerror(error), ")");
    } else if (!queue_.empty()) {  // after a failure nothing more is written
      queued_bytes_ = 0;
      queue_.clear();
    } else if (requested_syncs_ > done_syncs_) {
      const int64_t target = requested_syncs_;
      const bool failed = !error_.empty();
      busy_ = true;
      lock.unlock();
      const int error = !failed && ::fsync(fd_) != 0 ? errno : 0;
      lock.lock();
      busy_ = false;
      done_syncs_ = target;
      if (error != 0 && error_.empty()) error_ = cat(file_.string(), ": write failed (", std::strerror(error), ")");
    } else if (stopping_) {
      return;
    }
    changed_.notify_all();
  }
}

}  // namespace shardgan::report
