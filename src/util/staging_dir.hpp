#pragma once
#include <filesystem>
#include <functional>
#include <vector>

namespace shardgan {

/// A temporary folder beside `target` (".NAME.tmp-XXXXXX" in the same parent, so the final rename is atomic).
/// `commit` renames it to `target`; if it is never committed, the destructor removes it with everything inside (and
/// never throws), so a failed write — a full disk included — leaves no half-written output behind.
class StagingDir {
 public:
  explicit StagingDir(std::filesystem::path target);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& target() const { return target_; }
  /// Flushes everything staged to disk, then moves the staged folder to `target` and flushes the parent folder: after
  /// a crash the target is the old folder or the complete new one. An existing target is an error unless `replace`,
  /// in which case it is moved aside first and removed only after the new folder is in place on disk.
  void commit(bool replace);

 private:
  std::filesystem::path target_;
  std::filesystem::path path_;
  bool committed_ = false;
};

/// What an output folder may replace. A `target` that does not exist is fine. One that exists is an Error
/// ("<target>: exists (use --force to replace it)") unless `force`, and even then it is replaced only when it is a
/// folder (not a file or a link) that is empty or holds a previous output of the same tool (`is_previous_output`,
/// e.g. a readable manifest.json), and when it is neither the current folder nor one of its ancestors, nor one of
/// `inputs` nor an ancestor of one. Otherwise an Error says what would have been removed.
struct ReplaceRule {
  std::vector<std::filesystem::path> inputs;
  std::function<bool(const std::filesystem::path&)> is_previous_output;
  const char* output_kind = "output";  ///< named in the error: "a packed data set"
};
void check_replaceable(const std::filesystem::path& target, bool force, const ReplaceRule& rule);

}  // namespace shardgan
