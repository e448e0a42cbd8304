// Test basics without the data sets' codecs: temp folders, files, running commands, small shard sets.
#include "basics.hpp"

#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "util/error.hpp"

namespace shardgan::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = (fs::path(base ? base : "/tmp") / "shardgan-test-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

void write_bytes(const fs::path& file, const std::vector<uint8_t>& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

void write_text(const fs::path& file, const std::string& text) {
  write_bytes(file, std::vector<uint8_t>(text.begin(), text.end()));
}

std::string text_of(const fs::path& file) {
  const auto bytes = read_bytes(file);
  return std::string(bytes.begin(), bytes.end());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<uint8_t> read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> RunResult::err_lines() const {
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

RunResult run(const std::string& command) {
  TempDir capture;
  const std::string full = command + " >" + (capture / "out").string() + " 2>" + (capture / "err").string();
  // std::system would hand the child this process's environment as it is; /bin/sh -c with the cleaned one instead.
  const std::vector<std::string> environment = outside_mpi_job(current_environment());
  std::vector<char*> envp;
  for (const auto& entry : environment) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  std::string sh = "sh", dash_c = "-c", script = full;
  std::array<char*, 4> argv{sh.data(), dash_c.data(), script.data(), nullptr};
  pid_t pid = -1;
  if (const int e = posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv.data(), envp.data()); e != 0)
    throw std::runtime_error("cannot start /bin/sh: " + std::string(std::strerror(e)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error("waitpid: " + std::string(std::strerror(errno)));
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  const auto out = read_bytes(capture / "out");
  const auto err = read_bytes(capture / "err");
  r.out.assign(out.begin(), out.end());
  r.err.assign(err.begin(), err.end());
  return r;
}

bool is_mpi_launch_variable(std::string_view name) {
  const auto starts = [&](std::string_view prefix) { return name.substr(0, prefix.size()) == prefix; };
  if (name == "PMIX_INSTALL_PREFIX") return false;  // where PMIx is installed (Open MPI unpacked outside /)
  if (starts("PMIX_") || starts("PRTE_") || starts("PMI_")) return true;
  if (starts("OMPI_ALLOW_RUN_AS_ROOT")) return false;  // the user's consent, read by mpirun
  if (starts("OMPI_MCA_")) {
    // MCA parameters are the user's settings (environment, mpirun --mca), except those mpirun adds for the launch
    // (observed with Open MPI 4.1.4): the ess and pmix selections (ess=^singleton forbids a singleton), ORTE's
    // daemon URIs, job id, rank, session folders, and the launch's working folder and oversubscription.
    const std::string_view parameter = name.substr(std::string_view("OMPI_MCA_").size());
    for (const std::string_view launch : {"ess", "orte_", "pmix", "initial_wdir", "mpi_oversubscribe",
                                          "shmem_RUNTIME_QUERY_hint"})
      if (parameter.substr(0, launch.size()) == launch) return true;
    return false;
  }
  return starts("OMPI_");  // OMPI_COMM_WORLD_*, OMPI_UNIVERSE_SIZE, OMPI_FILE_LOCATION, OMPI_ARGV, ...
}

std::vector<std::string> outside_mpi_job(const std::vector<std::string>& environment) {
  std::vector<std::string> kept;
  for (const auto& entry : environment)
    if (!is_mpi_launch_variable(std::string_view(entry).substr(0, entry.find('=')))) kept.push_back(entry);
  return kept;
}

std::vector<std::string> current_environment() {
  std::vector<std::string> entries;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) entries.emplace_back(*e);
  return entries;
}

data::ShardSchema small_schema() {
  data::ShardSchema s;
  s.source = "test";
  s.shape = data::ImageShape{4, 5, 3};
  s.class_names = {"a", "b", "c"};
  s.columns = {{"/source_labels", data::ColumnType::kInt64},
               {"/meta/age", data::ColumnType::kFloat32},
               {"/meta/sex", data::ColumnType::kString}};
  return s;
}

std::vector<uint8_t> pixels_of(int i, const data::ImageShape& shape) {
  std::vector<uint8_t> p(shape.bytes());
  for (std::size_t k = 0; k < p.size(); ++k) p[k] = static_cast<uint8_t>(i * 31 + k);
  return p;
}

/// Packs `n` images into `dir` (shards of `shard_size`) and writes the manifest.
data::Manifest write_set(const fs::path& dir, int n, int64_t shard_size) {
  fs::create_directories(dir);
  const data::ShardSchema schema = small_schema();
  data::ShardWriter writer(dir, schema, shard_size);
  for (int i = 0; i < n; ++i) {
    const float age = i % 4 == 3 ? std::nanf("") : 5.0f * i;
    writer.append(pixels_of(i, schema.shape).data(), i % 3, "img#" + std::to_string(i),
                  {int64_t{i % 3 + 7}, age, std::string(i % 2 ? "female" : "male")});
  }
  data::Manifest m = data::finish_dataset(writer, schema, "test");
  m.save(dir);
  return m;
}

data::Manifest write_gradient_set(const fs::path& dir, int n, int size, int channels, int64_t shard_size) {
  fs::create_directories(dir);
  data::ShardSchema schema{"test", {size, size, channels}, {"horizontal", "vertical"}, {}};
  data::ShardWriter writer(dir, schema, shard_size);
  std::vector<uint8_t> img(static_cast<std::size_t>(size) * size * channels);
  for (int i = 0; i < n; ++i) {
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x)
        for (int c = 0; c < channels; ++c)
          img[(y * size + x) * channels + c] = static_cast<uint8_t>((i % 2 ? y : x) * 255 / (size - 1));
    writer.append(img.data(), i % 2, "img#" + std::to_string(i), {});
  }
  data::Manifest m = data::finish_dataset(writer, schema, "test");
  m.save(dir);
  return m;
}

}  // namespace shardgan::testing
