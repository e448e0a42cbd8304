#include "util/staging_dir.hpp"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

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
  fs::permissions(path_, static_cast<fs::perms>(0777 & ~mask), fs::perm_options::replace);
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

void StagingDir::commit(bool replace) {
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
  if (!aside.empty()) fs::remove_all(aside, ec);
}

void refuse_existing(const fs::path& target, bool force) {
  if (!force && fs::exists(fs::symlink_status(target)))
    fail(absolute_target(target).string(), ": exists (use --force to replace it)");
}

}  // namespace shardgan
