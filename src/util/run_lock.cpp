#include "util/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string_view>

#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan {
namespace fs = std::filesystem;

namespace {

/// "shardgan-train pid 123 on host h (Slurm job 45) since 2026-12-05T01:02:03Z".
std::string describe_this_process(const std::string& tool) {
  char host[256] = "";
  if (::gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "?");
  std::string text = cat(tool, " pid ", ::getpid(), " on host ", host);
  // The one launcher variable read here: the job a stale lock can be checked against (squeue, sacct).
  if (const char* job = std::getenv("SLURM_JOB_ID"); job != nullptr && *job != '\0')
    text += cat(" (Slurm job ", shardgan::quoted(job, 40), ")");
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char since[32] = "";
  std::strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text + " since " + since;
}

/// The first line the holder recorded (read from its start, at most 1 KiB, safe to print); "" when none yet.
std::string recorded_holder(int fd) {
  char buffer[1024];
  ssize_t n = 0;
  do {
    n = ::pread(fd, buffer, sizeof(buffer), 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return "";
  std::string_view text(buffer, static_cast<std::size_t>(n));
  return shardgan::quoted(text.substr(0, text.find('\n')));
}

/// `fd` is the file `path` names now.
bool is_named_file(int fd, const fs::path& path) {
  struct stat open {
  }, named{};
  return ::fstat(fd, &open) == 0 && ::stat(path.c_str(), &named) == 0 && open.st_dev == named.st_dev &&
         open.st_ino == named.st_ino;
}

/// Writes the whole of `text` at offset 0 of `fd` (replacing what was there) and flushes it; errno on failure.
int record(int fd, const std::string& text) {
  if (::ftruncate(fd, 0) != 0) return errno;
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    done += static_cast<std::size_t>(n);
  }
  return ::fsync(fd) == 0 ? 0 : errno;
}

}  // namespace

RunLock::RunLock(const fs::path& run_dir, const std::string& tool) : file_(run_dir / kFileName) {
  const std::string dir = run_dir.string();
  // A holder removes the file before it lets go of the lock, so a lock won on a file that no longer has the name
  // (another process may already have created and locked a new one) is worthless: try again on the new file.
  for (int attempt = 0; fd_ < 0; ++attempt) {
    // Whether this call made the file: a refused lock then leaves nothing behind (a holder's file stays).
    bool created = true;
    const int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
    int fd = ::open(file_.c_str(), flags | O_CREAT | O_EXCL, 0644);
    if (fd < 0 && errno == EEXIST) {
      created = false;
      fd = ::open(file_.c_str(), flags);
      if (fd < 0 && errno == ENOENT && attempt < 100) continue;  // removed by a holder that just ended
    }
    if (fd < 0) fail(dir, ": cannot open the lock file ", file_.string(), " (", std::strerror(errno), ")");
    int rc = 0;
    do {
      rc = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    const int error = errno;
    if (rc != 0) {
      std::string holder = error == EWOULDBLOCK ? recorded_holder(fd) : "";
      // A holder that has just won the lock writes who it is right after: give it a moment (up to 1 s).
      for (int wait = 0; error == EWOULDBLOCK && holder.empty() && wait < 20; ++wait) {
        ::usleep(50'000);
        holder = recorded_holder(fd);
      }
      if (created && error != EWOULDBLOCK) ::unlink(file_.c_str());
      ::close(fd);
      if (error == EWOULDBLOCK)
        fail(dir, ": in use by ", holder.empty() ? "another process (which has not recorded who it is yet)" : holder,
             "; wait for it to end or use another run folder (lock file ", file_.string(), ")");
      if (error == ENOLCK || error == EOPNOTSUPP || error == ENOSYS)
        fail(dir, ": cannot lock ", file_.string(), " (", std::strerror(error),
             "): this file system does not support flock, so nothing would keep a second trainer out of the folder; "
             "use a run folder on a file system with locks (a local disk, NFS without -o nolock, Lustre mounted "
             "with -o flock)");
      fail(dir, ": cannot lock ", file_.string(), " (", std::strerror(error), ")");
    }
    if (is_named_file(fd, file_)) {
      fd_ = fd;
    } else {
      ::close(fd);
      if (attempt == 100) fail(dir, ": cannot lock ", file_.string(), " (it keeps being removed and created again)");
    }
  }
  holder_ = describe_this_process(tool);
  if (const int error = record(fd_, holder_ + "\n"); error != 0) {
    ::unlink(file_.c_str());
    ::close(fd_);
    fail(file_.string(), ": write failed (", std::strerror(error), ")");
  }
}

RunLock::~RunLock() {
  // Only the file this lock is on (a user may have removed it, and another run created a new one).
  if (is_named_file(fd_, file_)) ::unlink(file_.c_str());
  ::close(fd_);
}

}  // namespace shardgan
