#pragma once
#include <filesystem>
#include <string>

namespace shardgan {

/// One writer per run folder: an exclusive flock(2) on RUN_DIR/run.lock, held for the object's life. The kernel drops
/// the lock when the holder dies, however it dies, so a crashed or killed run never blocks the next one. The file
/// records who holds it — "shardgan-train pid 123 on host h (Slurm job 45) since 2026-12-05T01:02:03Z" — so that a
/// refused run can say whom it waits for. flock locks belong to an open file description: a second RunLock on the
/// same folder conflicts even in the same process.
class RunLock {
 public:
  static constexpr const char* kFileName = "run.lock";

  /// Takes the lock of `run_dir` (which must exist) for `tool`. Creating the lock file is the only change it makes
  /// before the lock is held. Error, one line naming `run_dir`, when another process holds it ("<run dir>: in use by
  /// shardgan-train pid 123 on host h (Slurm job 45) since ...; ...") or when the file system has no locks (flock
  /// fails with ENOLCK, EOPNOTSUPP or ENOSYS: Lustre mounted without -o flock, NFS with -o nolock): the run is
  /// refused then too, since nothing would keep a second writer out.
  explicit RunLock(const std::filesystem::path& run_dir, const std::string& tool = "shardgan-train");
  /// Removes the lock file, then releases the lock; never throws.
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::filesystem::path& file() const { return file_; }
  /// What the file records: "shardgan-train pid 123 on host h (Slurm job 45) since 2026-12-05T01:02:03Z".
  const std::string& holder() const { return holder_; }

 private:
  std::filesystem::path file_;
  std::string holder_;
  int fd_ = -1;
};

}  // namespace shardgan
