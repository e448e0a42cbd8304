#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/manifest.hpp"
#include "data/shard_format.hpp"
#include "util/staging_dir.hpp"

namespace shardgan::pack {

/// Settings every packing subcommand shares.
struct OutputOptions {
  std::filesystem::path out;
  bool force = false;
  std::vector<std::filesystem::path> inputs;  ///< never replaced by --force, nor a folder holding one
  int64_t shard_size = 10000;
  int64_t max_images = 0;  ///< > 0: keep a stratified subset of this many images (see stratified_subset)
  std::vector<std::string> command_line;
};

/// Which of the records a subset of `max_images` keeps, stratified by class: each class gets its share of
/// `max_images` (largest remainders; ties to the lower class), and within a class the records whose ids hash lowest.
/// Deterministic, and independent of the records' order. Everything when there are at most `max_images`.
std::vector<bool> stratified_subset(const std::vector<int64_t>& labels, const std::vector<std::string>& ids,
                                    int64_t max_images, std::size_t classes);

/// The output side of every packer: refuses an existing folder (unless --force), writes shards into a staging folder
/// beside it, records skipped inputs, and on `finish` writes manifest.json and moves the folder into place. If
/// `finish` is never reached (an error, an interrupt) the staging folder is removed: no half-written output. With
/// max_images, every image is first staged in a subfolder and `finish` copies the stratified subset into the shards
/// (the manifest records max_images and how many images it was chosen from).
class PackOutput {
 public:
  PackOutput(const OutputOptions& options, data::ShardSchema schema);
  ~PackOutput();
  PackOutput(const PackOutput&) = delete;
  PackOutput& operator=(const PackOutput&) = delete;

  void append(const uint8_t* pixels, int64_t label, std::string_view id,
              const std::vector<data::ColumnValue>& columns = {});
  /// Records an input left out (also printed on stderr: the first kSkipsShown of them, then one line saying more
  /// were left out; manifest.json lists every one).
  void skip(data::SkippedInput skipped);
  static constexpr std::size_t kSkipsShown = 20;
  /// Progress on stderr: `n` more inputs are coming (records, rows: whatever the packer reads one by one).
  void expect_inputs(int64_t n) { total_inputs_ += n; }
  /// `n` more inputs read (packed, skipped or not selected). Shows the progress with an ETA when due: on a terminal
  /// one line, updated at most 5 times a second; otherwise a line every 3 s. Nothing during the first 2 s.
  void inputs_done(int64_t n);
  /// Facts about the input for the manifest's source_info.
  void note(std::string key, std::string value) { source_info_.emplace_back(std::move(key), std::move(value)); }

  /// Finishes: an output without images is an error naming `what_was_selected`.
  data::Manifest finish(const std::string& what_was_selected);

 private:
  /// max_images: the staged images' stratified subset into a new writer in the staging folder itself.
  void select_subset();
  /// Writes manifest.json into the staging folder (Error naming it and the system's reason when it cannot).
  void save_manifest(const data::Manifest& m);

  OutputOptions options_;
  data::ShardSchema schema_;
  StagingDir staging_;
  std::unique_ptr<data::ShardWriter> writer_;
  std::vector<data::SkippedInput> skipped_;
  std::vector<std::pair<std::string, std::string>> source_info_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point shown_ = start_;  ///< the last progress line
  int64_t total_inputs_ = 0, done_inputs_ = 0;
  bool progress_shown_ = false;
};

/// Set by SIGINT/SIGTERM during packing; `throw_if_interrupted` turns it into an Error so the staging folder is
/// cleaned up by unwinding.
void install_interrupt_handlers();
/// "30.8 MiB"
std::string format_bytes(uint64_t bytes);
void throw_if_interrupted();

}  // namespace shardgan::pack
