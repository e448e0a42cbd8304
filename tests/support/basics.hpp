#pragma once
/// Test basics that need nothing beyond shardgan's data layer (no OpenCV, libarchive or libjpeg-turbo, so that the
/// GPU checks build where those are missing): temp folders, files, running commands, small packed shard sets.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "data/manifest.hpp"
#include "data/shard_format.hpp"

namespace shardgan::testing {

/// A fresh folder under $TMPDIR (or /tmp), removed with everything inside when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_bytes(const std::filesystem::path& file, const std::vector<uint8_t>& bytes);
void write_text(const std::filesystem::path& file, const std::string& text);
std::vector<uint8_t> read_bytes(const std::filesystem::path& file);
/// The file's bytes as a string.
std::string text_of(const std::filesystem::path& file);
/// The message of the shardgan::Error that `f` throws ("" when it throws none; other exceptions pass through).
std::string error_of(const std::function<void()>& f);

/// Result of running a command line.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  /// stderr's non-empty lines.
  std::vector<std::string> err_lines() const;
};
/// Runs `command` through /bin/sh, capturing stdout and stderr, in this process's environment without the MPI launch
/// variables (`outside_mpi_job`): a command is never part of the test's own MPI job, even when the test runs under
/// mpirun (a child that inherited them would call MPI_Init as a rank of that job, and abort).
RunResult run(const std::string& command);

/// Whether `name` is one of the variables an MPI launcher gives its processes to tell them their job and rank:
/// Open MPI's OMPI_* (OMPI_COMM_WORLD_RANK, OMPI_FILE_LOCATION, ...) and the MCA parameters mpirun sets for the
/// launch (OMPI_MCA_ess*, OMPI_MCA_orte_*, OMPI_MCA_pmix*, ...), PMIx's PMIX_* (the server's address, namespace,
/// rank), PRRTE's PRTE_* (Open MPI 5), and PMI-1/2's PMI_* (srun --mpi=pmi2, MPICH). Not launch state, kept:
/// install locations (OPAL_PREFIX and the other OPAL_*, PMIX_INSTALL_PREFIX: Open MPI unpacked outside /), the
/// user's own MCA parameters (e.g. OMPI_MCA_plm_rsh_agent, which a singleton MPI_Init needs on a machine without
/// ssh) and OMPI_ALLOW_RUN_AS_ROOT*.
bool is_mpi_launch_variable(std::string_view name);
/// `environment` ("NAME=value" entries, as in environ) without the MPI launch variables: what a process started
/// from inside an MPI job needs so that its own MPI_Init starts a job of its own (a singleton) instead of claiming
/// this rank's place in the job (Open MPI 4.1 then aborts in MPI_Init).
std::vector<std::string> outside_mpi_job(const std::vector<std::string>& environment);
/// This process's environment ("NAME=value" entries).
std::vector<std::string> current_environment();

/// A small packed set in the shard layout: 4x5x3 images, classes a, b, c, label i % 3, id "img#i", pixels
/// pixels_of(i), extra columns /source_labels, /meta/age (NaN every fourth), /meta/sex.
data::ShardSchema small_schema();
std::vector<uint8_t> pixels_of(int i, const data::ImageShape& shape);
/// Packs `n` such images into `dir` (shards of `shard_size`) and writes the manifest.
data::Manifest write_set(const std::filesystem::path& dir, int n, int64_t shard_size);

/// `n` square images of size×size×channels in two classes, "horizontal" (even i: a left-to-right gradient) and
/// "vertical" (odd i: top to bottom), packed into `dir` as shardgan-pack does (shards of `shard_size`): something a
/// tiny GAN can learn.
data::Manifest write_gradient_set(const std::filesystem::path& dir, int n, int size, int channels = 1,
                                  int64_t shard_size = 40);

}  // namespace shardgan::testing
