#include "util/staging_dir.hpp"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace shardgan {
namespace fs = std::filesystem;

namespace {

fs::path absolute_target(const fs::path& target) {
  fs::path t = fs::absolute(target).lexically_normal();
  if (!t.has_filename()) t = t.parent_path();  // "out/" → "out"
  return t;
}

}  // namespace

StagingDir::StagingDir(fs::path target) : target_(absolute_target(target)) {
  const fs::path parent = target_.parent_path();
  if (!fs::is_directory(parent)) fail(target_.string(), ": parent folder ", parent.string(), " does not exist");
  std::string templ = (parent / ("." + target_.filename().string() + ".tmp-XXXXXX")).string();
  if (mkdtemp(templ.data()) == nullptr)
    fail(target_.string(), ": cannot create a temporary folder beside it (", std::strerror(errno), ")");
  path_ = templ;
  // mkdtemp makes the folder 0700; the committed output should have the usual permissions (umask applied).
  const mode_t mask = umask(0);
  umask(mask);
  if (::chmod(path_.c_str(), 0777 & ~mask) != 0) {
    const int error = errno;
    ::rmdir(path_.c_str());  // no destructor runs for a constructor that throws
    fail(target_.string(), ": cannot set the permissions of a temporary folder (", std::strerror(error), ")");
  }
}

StagingDir::~StagingDir() {
  if (committed_) return;
  try {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  } catch (...) {  // std::bad_alloc: a destructor never throws; a kill leaves such a folder too, and readers ignore it
  }
}

void StagingDir::commit(bool replace) {
  sync_tree(path_);
  std::error_code ec;
  fs::path aside;
  if (fs::exists(fs::symlink_status(target_))) {
    if (!replace) fail(target_.string(), ": exists (use --force to replace it)");
    aside = path_.string() + ".old";
    fs::rename(target_, aside, ec);
    if (ec) fail(target_.string(), ": cannot move the existing folder aside (", ec.message(), ")");
  }
  fs::rename(path_, target_, ec);
  if (ec) {
    std::error_code restore;
    if (!aside.empty()) fs::rename(aside, target_, restore);
    fail(target_.string(), ": cannot move the finished output into place (", ec.message(), ")",
         restore ? " and the previous folder stays at " + aside.string() : "");
  }
  committed_ = true;
  try {
    sync_path(target_.parent_path());
  } catch (...) {
    if (!aside.empty()) fs::remove_all(aside, ec);  // the new folder is in place: leave no staging name behind
    throw;
  }
  if (!aside.empty()) fs::remove_all(aside, ec);
}

namespace {

/// `a` is `b` or a folder above it (both resolved: links, "..", relative paths).
bool same_or_ancestor(const fs::path& a, const fs::path& b) {
  const fs::path ra = fs::weakly_canonical(a), rb = fs::weakly_canonical(b);
  auto ia = ra.begin(), ib = rb.begin();
  for (; ia != ra.end() && !ia->empty(); ++ia, ++ib)
    if (ib == rb.end() || *ia != *ib) return false;
  return true;
}

}  // namespace

void check_replaceable(const fs::path& target, bool force, const ReplaceRule& rule) {
  const fs::path t = absolute_target(target);
  const fs::file_status status = fs::symlink_status(t);
  if (!fs::exists(status)) return;
  if (!force) fail(t.string(), ": exists (use --force to replace it)");
  auto refuse = [&](const std::string& why) {
    fail(t.string(), ": --force refused: ", why, "; replacing it would remove ", t.string(), " and everything in it");
  };
  if (same_or_ancestor(t, fs::current_path())) refuse("it is the current folder or one above it");
  for (const auto& input : rule.inputs)
    if (!input.empty() && same_or_ancestor(t, input)) refuse("it is or holds an input (" + input.string() + ")");
  if (fs::is_symlink(status)) refuse("it is a symbolic link, not an output folder");
  if (!fs::is_directory(status)) refuse("it is a file, not an output folder");
  const bool empty = fs::is_empty(t);
  if (!empty && !(rule.is_previous_output && rule.is_previous_output(t)))
    refuse(std::string("it is not empty and does not hold ") + rule.output_kind);
}

}  // namespace shardgan
