#pragma once
#include <filesystem>

namespace shardgan {

/// A temporary folder beside `target` (".NAME.tmp-XXXXXX" in the same parent, so the final rename is atomic).
/// `commit` renames it to `target`; if it is never committed, the destructor removes it with everything inside,
/// so a failed run leaves no half-written output behind.
class StagingDir {
 public:
  explicit StagingDir(std::filesystem::path target);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& target() const { return target_; }
  /// Moves the staged folder to `target`. An existing target is an error unless `replace`, in which case it is
  /// moved aside first and removed only after the new folder is in place.
  void commit(bool replace);

 private:
  std::filesystem::path target_;
  std::filesystem::path path_;
  bool committed_ = false;
};

/// Throws Error("<target>: exists (use --force to replace it)") when `target` exists and `force` is false.
void refuse_existing(const std::filesystem::path& target, bool force);

}  // namespace shardgan
