// shardgan-train and shardgan-sample end to end on a tiny packed data set: real processes, real files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "compat/torch_compat.hpp"
#include "config/config.hpp"
#include "data/manifest.hpp"
#include "data/shard_format.hpp"
#include "fixtures.hpp"
#include "report/rows.hpp"
#include "run_files.hpp"
#include "train/checkpoint.hpp"
#include "train/gan.hpp"
#include "train/model_state.hpp"
#include "util/checksum.hpp"
#include "util/png.hpp"

namespace shardgan {
namespace {
namespace fs = std::filesystem;
using testing::metric_rows;
using testing::RunResult;
using testing::TempDir;

std::string q(const fs::path& p) {
  return "'" + p.string() + "'";
}

class TrainCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new TempDir();
    testing::write_gradient_set(data_->path() / "tiny", 96, 16);
    testing::write_gradient_set(data_->path() / "odd-size", 32, 24);
  }
  static void TearDownTestSuite() { delete data_; }

  void SetUp() override {
    config_ = tmp_ / "tiny.toml";
    testing::write_text(config_, "[data]\npath = \"" + (data_->path() / "tiny").string() +
                                     "\"\n[model]\nz_dim = 8\ng_width = 4\nd_width = 8\nconditional = true\n"
                                     "[train]\nbatch_size = 8\nepochs = 3\nlog_every = 2\ndeterministic = true\n"
                                     "[output]\nsample_every_epochs = 1\ncheckpoint_every_steps = 4\n"
                                     "keep_checkpoints = 2\n[runtime]\nthreads = 1\n");
  }
  /// `env`: variable assignments for the command ("NAME=value ").
  /// `bin`: shardgan-train, or its test twin that injects the CPU graph emulation (kEmulatedGraphs).
  RunResult train(const std::string& args, const std::string& env = "", const char* bin = SHARDGAN_TRAIN_BIN) const {
    return testing::run(env + bin + " --config " + q(config_) + " " + args);
  }
  RunResult train_mpi(int ranks, const std::string& args, const std::string& env = "",
                      const char* bin = SHARDGAN_TRAIN_BIN) const {
    return testing::run(env + SHARDGAN_MPIEXEC + " -np " + std::to_string(ranks) + " " + bin + " --config " +
                        q(config_) + " " + args);
  }
  /// runtime.cuda_graphs without a GPU: the graph code path through the CPU emulation, which the test build's twin
  /// of shardgan-train (tests/support/train_emulated_graphs.cpp) injects; shardgan-train itself has no such switch.
  static inline const char* const kEmulatedGraphs = SHARDGAN_TRAIN_GRAPHS_BIN;
  RunResult train_graphs(const std::string& args) const {
    return train(args + " --set runtime.cuda_graphs=true", "", kEmulatedGraphs);
  }
  static RunResult sample(const std::string& args) {
    return testing::run(std::string(SHARDGAN_SAMPLE_BIN) + " " + args);
  }
  /// The error line of a failed run: exactly one "error:" line, naming what is wrong.
  static void expect_error(const RunResult& r, const std::string& needle) {
    EXPECT_EQ(error_lines(r, needle), 1) << r.err;
  }
  /// The same under mpirun: every rank that detects the error prints the same line (with its rank), then the job ends.
  static void expect_error_on_ranks(const RunResult& r, const std::string& needle) {
    EXPECT_GE(error_lines(r, needle), 1) << r.err;
  }
  /// A failed run's "error:" lines, each of which must name `needle`.
  static int error_lines(const RunResult& r, const std::string& needle) {
    EXPECT_NE(r.exit_code, 0);
    int errors = 0;
    for (const auto& line : r.err_lines()) {
      if (line.find("error:") == std::string::npos) continue;
      ++errors;
      EXPECT_NE(line.find(needle), std::string::npos) << line;
    }
    return errors;
  }

  static inline TempDir* data_ = nullptr;
  TempDir tmp_;
  fs::path config_;
};

/// All parameters and buffers of the checkpoint's models, by name.
std::vector<std::pair<std::string, torch::Tensor>> checkpoint_tensors(const fs::path& dir) {
  train::RestoredModels restored = train::restore_models(dir);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, t] : train::state_tensors(restored.gan)) out.emplace_back(name, t.clone());
  return out;
}

/// The step count of every parameter's state in the checkpoint's two Adam optimizers.
std::vector<int64_t> adam_steps(const fs::path& dir) {
  train::RestoredModels restored = train::restore_models(dir);
  train::load_checkpoint(dir, restored.gan, restored.config.model_hash(), /*optimizers=*/true);
  std::vector<int64_t> steps;
  for (const auto* optimizer : {restored.gan.optim_g.get(), restored.gan.optim_d.get()})
    for (const auto& entry : optimizer->state())
      steps.push_back(static_cast<const torch::optim::AdamParamState&>(*entry.second).step());
  EXPECT_FALSE(steps.empty());
  return steps;
}

TEST_F(TrainCli, DryRunPrintsThePlan) {
  const auto r = train("--dry-run --run-dir " + q(tmp_ / "run"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("96 images 16x16x1, 2 classes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("8 per rank, 8 global"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("12 per epoch x 3 epochs = 36"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp_ / "run"));
  // --json: the same plan as one JSON object on stdout (what launch/train-local.sh reads), the --set applied.
  const auto j = train("--dry-run --json --set runtime.device=cpu --run-dir " + q(tmp_ / "run"));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto plan = nlohmann::json::parse(j.out);
  EXPECT_EQ(plan["config"]["runtime.device"], "cpu");
  EXPECT_EQ(plan["config"]["data.path"], (data_->path() / "tiny").string());
  EXPECT_EQ(plan["plan"]["total_steps"], 36);
  EXPECT_EQ(plan["plan"]["class_names"].size(), 2u);
  EXPECT_FALSE(fs::exists(tmp_ / "run"));
  EXPECT_NE(train("--json").exit_code, 0);  // only with --dry-run
}

TEST_F(TrainCli, ShortRunWritesOutputsLossesMoveAndSamplesChange) {
  const auto r = train("--run-dir " + q(tmp_ / "run"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path run = tmp_ / "run";
  // metrics.jsonl: one row per log step (36 steps, every 2), losses finite and moving.
  std::ifstream metrics(run / "metrics.jsonl");
  std::vector<double> loss_d;
  for (std::string line; std::getline(metrics, line);) {
    const auto pos = line.find("\"loss_d\":");
    ASSERT_NE(pos, std::string::npos) << line;
    loss_d.push_back(std::stod(line.substr(pos + 9)));
    EXPECT_NE(line.find("\"img_per_s\":"), std::string::npos);
  }
  ASSERT_EQ(loss_d.size(), 18u);
  EXPECT_NE(*std::min_element(loss_d.begin(), loss_d.end()), *std::max_element(loss_d.begin(), loss_d.end()));
  // A grid per epoch, one row of 8 per class; they change as G learns.
  const Image e1 = read_png(run / "samples" / "epoch-0001.png");
  const Image e3 = read_png(run / "samples" / "epoch-0003.png");
  EXPECT_EQ(e1.width, 8 * 18 + 2);
  EXPECT_EQ(e1.height, 2 * 18 + 2);
  EXPECT_NE(e1.pixels, e3.pixels);
  EXPECT_TRUE(fs::exists(run / "losses.png"));
  EXPECT_TRUE(fs::exists(run / "config.toml"));
  // Checkpoints every 4 steps, the last 2 kept, `latest` names the newest.
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step-000036" / "state.json"));
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step-000032"));
  EXPECT_FALSE(fs::exists(run / "checkpoints" / "step-000028"));
  std::ifstream latest(run / "checkpoints" / "latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "step-000036");
  // A second run into the same folder must say how to continue.
  expect_error(train("--run-dir " + q(run)), "--resume auto");
}

/// Two checkpoints' tensors are the same, bit for bit.
void expect_identical(const std::vector<std::pair<std::string, torch::Tensor>>& a,
                      const std::vector<std::pair<std::string, torch::Tensor>>& b, const std::string& what = "") {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first << " differs " << what;
  }
}

/// Two checkpoints' tensors agree within `tolerance` relative to each tensor's largest magnitude (N ranks x b against
/// 1 rank x N*b: the same sums in another order).
void expect_close(const std::vector<std::pair<std::string, torch::Tensor>>& a,
                  const std::vector<std::pair<std::string, torch::Tensor>>& b, double tolerance = 1e-5) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double scale = std::max(a[i].second.abs().max().item<double>(), 1e-12);
    EXPECT_LE((a[i].second - b[i].second).abs().max().item<double>() / scale, tolerance) << a[i].first;
  }
}

TEST_F(TrainCli, ResumeGivesBitIdenticalParameters) {
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "straight") + " --set train.max_steps=12").exit_code, 0);
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "resumed") + " --set train.max_steps=6").exit_code, 0);
  const auto r = train("--run-dir " + q(tmp_ / "resumed") + " --set train.max_steps=12 --resume auto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming from"), std::string::npos);
  const auto a = checkpoint_tensors(tmp_ / "straight" / "checkpoints" / "step-000012");
  const auto b = checkpoint_tensors(tmp_ / "resumed" / "checkpoints" / "step-000012");
  expect_identical(a, b);
  // And the run did move away from its starting point.
  const auto first = checkpoint_tensors(tmp_ / "resumed" / "checkpoints" / "step-000008");
  EXPECT_FALSE(torch::equal(first[0].second, b[0].second));
}

TEST_F(TrainCli, StreamingAndMemoryCachesTrainTheSameModel) {
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "memory") + " --set train.max_steps=5 --set data.cache=memory").exit_code, 0);
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "stream") + " --set train.max_steps=5 --set data.cache=stream").exit_code, 0);
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "flip") + " --set train.max_steps=5 --set data.hflip=true").exit_code, 0);
  const auto a = checkpoint_tensors(tmp_ / "memory" / "checkpoints" / "step-000005");
  const auto b = checkpoint_tensors(tmp_ / "stream" / "checkpoints" / "step-000005");
  const auto c = checkpoint_tensors(tmp_ / "flip" / "checkpoints" / "step-000005");
  bool flips_changed_something = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    flips_changed_something |= !torch::equal(a[i].second, c[i].second);
  }
  EXPECT_TRUE(flips_changed_something);
}

TEST_F(TrainCli, ResumeSkipsHalfWrittenAndCorruptedCheckpoints) {
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "run") + " --set train.max_steps=8").exit_code, 0);
  const fs::path ckpts = tmp_ / "run" / "checkpoints";
  // A crash mid-write leaves a staging folder (ignored) or a folder without state.json.
  fs::create_directories(ckpts / ".step-000012.tmp-abcdef");
  fs::create_directories(ckpts / "step-000099");
  testing::write_text(ckpts / "step-000099" / "generator.pt", "partial");
  // The newest real checkpoint is corrupted.
  auto bytes = testing::read_bytes(ckpts / "step-000008" / "generator.pt");
  bytes[bytes.size() / 2] ^= 0xFF;
  testing::write_bytes(ckpts / "step-000008" / "generator.pt", bytes);
  const auto r = train("--run-dir " + q(tmp_ / "run") + " --set train.max_steps=10 --resume auto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("step-000099/state.json: missing"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step-000008/generator.pt: checksum mismatch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step-000004 (step 4)"), std::string::npos) << r.err;
  // The skipped ones were moved aside with their contents, not deleted.
  EXPECT_TRUE(fs::exists(ckpts / "rejected" / "step-000099" / "generator.pt"));
  EXPECT_TRUE(fs::exists(ckpts / "rejected" / "step-000008" / "generator.pt"));
  EXPECT_FALSE(fs::exists(ckpts / "step-000099"));
}

TEST_F(TrainCli, SampleWritesGridH5ScoreAndWeights) {
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "run") + " --set train.max_steps=4").exit_code, 0);
  const auto r = sample("--checkpoint " + q(tmp_ / "run") + " --n 10 --class vertical --out " + q(tmp_ / "g.png") +
                        " --out-h5 " + q(tmp_ / "s.h5") + " --score --export-weights " + q(tmp_ / "w.h5"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("discriminator mean probability on 10 samples: 0."), std::string::npos) << r.out;
  const Image grid = read_png(tmp_ / "g.png");
  EXPECT_EQ(grid.width, 8 * 18 + 2);
  EXPECT_EQ(grid.height, 2 * 18 + 2);
  EXPECT_EQ(grid.channels, 1);
  // The h5 file is a shard: same reader as the training data.
  data::ShardReader shard(tmp_ / "s.h5");
  EXPECT_EQ(shard.count(), 10);
  EXPECT_EQ(shard.shape(), (data::ImageShape{16, 16, 1}));
  EXPECT_EQ(shard.labels(), std::vector<int64_t>(10, 1));
  EXPECT_EQ(shard.class_names(), (std::vector<std::string>{"horizontal", "vertical"}));
  const auto py = testing::run("/usr/bin/python3 -c \"import h5py; f = h5py.File('" + (tmp_ / "w.h5").string() +
                               "'); print(f['generator/project.weight'].shape, f['discriminator/head.bias'].dtype)\"");
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(py.out, "(512, 58) float32\n");  // 4*4*8*g_width outputs x (z_dim 8 + embed_dim 50) inputs
  expect_error(sample("--checkpoint " + q(tmp_ / "run") + " --class diagonal --out " + q(tmp_ / "x.png")),
               "--class: 'diagonal' is neither a class name");
  expect_error(sample("--checkpoint " + q(tmp_ / "nowhere") + " --out " + q(tmp_ / "x.png")), "nowhere");
}

TEST_F(TrainCli, BadInputIsOneClearError) {
  const std::string run = " --run-dir " + q(tmp_ / "run");
  expect_error(train(run + " --set data.path=/nonexistent/data"), "/nonexistent/data: data folder does not exist");
  expect_error(train(run + " --set train.batch_szie=3"),
               "unknown key 'train.batch_szie' (did you mean 'train.batch_size'?)");
  expect_error(train(run + " --set data.path=" + (data_->path() / "odd-size").string()),
               "image size 24 cannot be built");
  expect_error(train(run + " --set train.batch_size=97"), "exceeds the data set's 96 images");
  // A shard failing its checksum.
  const fs::path copy = tmp_ / "copy";
  fs::copy(data_->path() / "tiny", copy);
  auto bytes = testing::read_bytes(copy / "shard-00001.h5");
  bytes[bytes.size() / 3] ^= 1;
  testing::write_bytes(copy / "shard-00001.h5", bytes);
  expect_error(train(run + " --set data.path=" + copy.string()), "shard-00001.h5: checksum");
  // A checkpoint from a different model configuration.
  ASSERT_EQ(train(run + " --set train.max_steps=2").exit_code, 0);
  expect_error(train(run + " --set model.z_dim=9 --resume auto"), "different model configuration");
  EXPECT_FALSE(fs::exists(tmp_ / "run" / "checkpoints" / "step-000003"));
}

/// The ranks of a node split the checksum work (local rank l hashes shards l, l + 2, ...): a corrupt shard is found
/// by exactly the rank that hashed it, whose one error line names the shard and ends the job.
TEST_F(TrainCli, RanksOfANodeShareTheChecksumWork) {
  for (const int shard : {1, 2}) {  // 3 shards (40, 40, 16 images): shard 1 is rank 1's, shard 2 rank 0's
    const fs::path copy = tmp_ / ("copy" + std::to_string(shard));
    fs::copy(data_->path() / "tiny", copy);
    const std::string file = "shard-0000" + std::to_string(shard) + ".h5";
    auto bytes = testing::read_bytes(copy / file);
    ASSERT_FALSE(bytes.empty()) << file;
    bytes[bytes.size() / 3] ^= 1;
    testing::write_bytes(copy / file, bytes);
    const auto r = train_mpi(2, "--run-dir " + q(tmp_ / "run") + " --set data.path=" + copy.string());
    EXPECT_EQ(error_lines(r, file + ": checksum"), 1) << r.err;  // hashed once, not once per rank
    EXPECT_NE(r.err.find("error: rank " + std::to_string(shard % 2) + ": "), std::string::npos) << r.err;
  }
}

TEST_F(TrainCli, TwoRanksUnderMpirunTrainOneModel) {
  const auto r = train_mpi(2, "--run-dir " + q(tmp_ / "run") + " --set train.max_steps=6 --set train.batch_size=4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(tmp_ / "run" / "checkpoints" / "step-000006" / "state.json"));
  const auto state = train::read_checkpoint_state(tmp_ / "run" / "checkpoints" / "step-000006");
  EXPECT_EQ(state.world_size, 2);
  EXPECT_EQ(state.step, 6);
  // The ranks trained (the models moved away from their shared initialisation) and rank 0 logged the mean rows.
  const auto rows = metric_rows(tmp_ / "run");
  ASSERT_EQ(rows.size(), 3u);  // steps 2, 4, 6
  for (const auto& row : rows) EXPECT_TRUE(std::isfinite(row.loss_d) && std::isfinite(row.loss_g));
  torch::manual_seed(0);
  const train::Gan initial(config::load(config_, {"train.batch_size=4"}), state.spec, torch::kCPU);
  const auto trained = train::state_tensors(train::restore_models(tmp_ / "run").gan);
  const auto init = train::state_tensors(initial);
  ASSERT_EQ(trained.size(), init.size());
  int moved = 0;
  for (std::size_t i = 0; i < init.size(); ++i) moved += !torch::equal(trained[i].second, init[i].second);
  EXPECT_GT(moved, static_cast<int>(init.size()) / 2);
}

TEST_F(TrainCli, Bf16AndHingeTrainWithTheirOwnNumbers) {
  const std::string common = " --set train.max_steps=6";
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "fp32") + common).exit_code, 0);
  const auto bf16_run = train("--run-dir " + q(tmp_ / "bf16") + common + " --set runtime.precision=bf16");
  ASSERT_EQ(bf16_run.exit_code, 0) << bf16_run.err;
  const auto hinge_run = train("--run-dir " + q(tmp_ / "hinge") + common + " --set model.loss=hinge");
  ASSERT_EQ(hinge_run.exit_code, 0) << hinge_run.err;
  const auto fp32 = metric_rows(tmp_ / "fp32"), bf16 = metric_rows(tmp_ / "bf16"), hinge = metric_rows(tmp_ / "hinge");
  ASSERT_EQ(fp32.size(), 3u);
  ASSERT_EQ(bf16.size(), 3u);
  ASSERT_EQ(hinge.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    // bf16 autocast: the same data and noise, rounded differently, so close but not equal losses.
    EXPECT_NE(bf16[i].loss_d, fp32[i].loss_d);
    EXPECT_NEAR(bf16[i].loss_d, fp32[i].loss_d, 0.1);
    EXPECT_NEAR(bf16[i].loss_g, fp32[i].loss_g, 0.1);
  }
  // Near the start D's logits are small: BCE's D loss is about 2 ln 2 and G's about ln 2; hinge's D loss about 2
  // and G's (−mean logit) about 0.
  EXPECT_NEAR(fp32[0].loss_d, 2 * std::log(2.0), 0.3);
  EXPECT_NEAR(fp32[0].loss_g, std::log(2.0), 0.3);
  EXPECT_NEAR(hinge[0].loss_d, 2.0, 0.4);
  EXPECT_NEAR(hinge[0].loss_g, 0.0, 0.4);
  EXPECT_NE(train::restore_models(tmp_ / "hinge").config.model.loss, config::Loss::kBce);
}

// The core correctness property of data parallelism: with dropout 0 and BatchNorm none or sync, N ranks x batch b
// train the same models as 1 rank x batch N*b (up to float summation order).
TEST_F(TrainCli, RanksTimesBatchEqualsOneRankWithTheGlobalBatch) {
  auto last_loss = [](const fs::path& dir) {
    std::ifstream in(dir / "metrics.jsonl");
    std::string line, last;
    while (std::getline(in, line)) last = line;
    return std::stod(last.substr(last.find("\"loss_g\":") + 9));
  };
  for (const std::string batchnorm : {"none", "sync"}) {
    const std::string common = " --set model.dropout=0 --set model.batchnorm=" + batchnorm +
                               " --set train.max_steps=20 --set output.checkpoint_every_steps=20";
    const fs::path single = tmp_ / ("w1-" + batchnorm);
    ASSERT_EQ(train("--run-dir " + q(single) + common + " --set train.batch_size=12").exit_code, 0);
    const auto one = checkpoint_tensors(single / "checkpoints" / "step-000020");
    for (int world : {2, 3}) {
      const fs::path run = tmp_ / ("w" + std::to_string(world) + "-" + batchnorm);
      // 3 ranks also with tiny buckets: many all-reduces overlapping backward must give the same result.
      const std::string buckets = world == 3 ? " --set comm.bucket_mb=0.01" : "";
      const auto r = train_mpi(
          world, "--run-dir " + q(run) + common + buckets + " --set train.batch_size=" + std::to_string(12 / world));
      ASSERT_EQ(r.exit_code, 0) << r.err;
      const auto many = checkpoint_tensors(run / "checkpoints" / "step-000020");
      ASSERT_EQ(one.size(), many.size());
      for (std::size_t i = 0; i < one.size(); ++i) {
        const double scale = std::max(one[i].second.abs().max().item<double>(), 1e-12);
        const double diff = (one[i].second - many[i].second).abs().max().item<double>();
        EXPECT_LE(diff / scale, 1e-5) << one[i].first << ", " << world << " ranks, batchnorm " << batchnorm;
      }
      EXPECT_NEAR(last_loss(single), last_loss(run), 1e-4) << world << " ranks, batchnorm " << batchnorm;
    }
  }
}

// The small-data tools together: DiffAugment with ADA (every draw from (seed, step, global sample index), p from the
// signs summed over the ranks), spectral normalisation of G and D (u, v buffers identical on every rank) and lazy R1
// (a per-rank mean, averaged with the gradients), class-balanced sampling (one sequence per epoch for every world
// size): N ranks x b still equal 1 rank x N*b; p and the signs since its last adjustment, and u, v, are in the
// checkpoint, so a resume in the middle of ADA's interval is bit-identical.
TEST_F(TrainCli, SmallDataToolsKeepRanksTimesBatchAndBitIdenticalResume) {
  const std::string common =
      " --set model.dropout=0 --set model.batchnorm=sync --set augment.policy=color,translation,cutout"
      " --set augment.ada_target=0.05 --set augment.ada_interval=2 --set augment.ada_kimg=0.1"
      " --set model.spectral_norm=gd --set train.r1_gamma=0.5 --set train.r1_every=3"
      " --set data.sampling=class_balanced --set output.checkpoint_every_steps=5 --set train.log_every=1";
  ASSERT_EQ(
      train("--run-dir " + q(tmp_ / "one") + common + " --set train.batch_size=12 --set train.max_steps=12").exit_code,
      0);
  const auto two =
      train_mpi(2, "--run-dir " + q(tmp_ / "two") + common + " --set train.batch_size=6 --set train.max_steps=12");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "resumed") + common + " --set train.batch_size=12 --set train.max_steps=5")
                .exit_code,
            0);
  // Step 5 is in the middle of ADA's interval: the checkpoint carries the signs of step 5 (all 12 reals).
  const auto mid = train::read_checkpoint_state(tmp_ / "resumed" / "checkpoints" / "step-000005");
  ASSERT_TRUE(mid.augment.has_value());
  EXPECT_NE(mid.augment->sign_sum, 0);
  EXPECT_LE(std::abs(mid.augment->sign_sum), 12);
  const auto resumed = train("--run-dir " + q(tmp_ / "resumed") + common +
                             " --set train.batch_size=12 --set train.max_steps=12 --resume auto");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "no-r1") + common +
                  " --set train.r1_gamma=0 --set train.batch_size=12 --set train.max_steps=12")
                .exit_code,
            0);
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "plain") +
                  " --set model.dropout=0 --set model.batchnorm=sync"
                  " --set train.batch_size=12 --set train.max_steps=12")
                .exit_code,
            0);

  const auto at_12 = [&](const char* run) { return checkpoint_tensors(tmp_ / run / "checkpoints" / "step-000012"); };
  const auto one = at_12("one"), many = at_12("two"), again = at_12("resumed"), plain = at_12("plain");
  const auto no_r1 = at_12("no-r1");
  ASSERT_EQ(one.size(), no_r1.size());
  const auto d_head = [](const auto& tensors) {  // D's head weight (only D has a head)
    return std::find_if(tensors.begin(), tensors.end(),
                        [](const auto& t) { return t.first == "discriminator/head.layer.weight"; });
  };
  ASSERT_NE(d_head(one), one.end());
  EXPECT_FALSE(torch::equal(d_head(one)->second, d_head(no_r1)->second));  // R1 changed D
  ASSERT_EQ(one.size(), many.size());
  ASSERT_EQ(one.size(), again.size());
  bool these_settings_changed_something = false;
  for (std::size_t i = 0; i < one.size(); ++i) {
    const double scale = std::max(one[i].second.abs().max().item<double>(), 1e-12);
    // Float rounding only (other summation orders over 12 steps with R1, spectral norm and ADA): 1.6e-5 at most with
    // the torch 2.15 wheel's kernels, below 1e-5 with Debian's 1.13.
    EXPECT_LE((one[i].second - many[i].second).abs().max().item<double>() / scale, 1e-4) << one[i].first;
    EXPECT_TRUE(torch::equal(one[i].second, again[i].second)) << one[i].first << " differs after the resume";
    if (i < plain.size() && one[i].first == plain[i].first)
      these_settings_changed_something |= !torch::equal(one[i].second, plain[i].second);
  }
  EXPECT_TRUE(these_settings_changed_something);
  // Spectral normalisation's vectors are in the checkpoint.
  const auto has = [&](const std::string& name) {
    return std::any_of(one.begin(), one.end(), [&](const auto& t) { return t.first == name; });
  };
  EXPECT_TRUE(has("discriminator/blocks.0.u") && has("discriminator/head.v") && has("generator/project.u"));

  // p moved, is logged, and is the same in the three runs' checkpoints.
  const auto state = [&](const char* run) {
    return train::read_checkpoint_state(tmp_ / run / "checkpoints" / "step-000012");
  };
  ASSERT_TRUE(state("one").augment.has_value());
  EXPECT_GT(state("one").augment->p, 0);
  EXPECT_NEAR(state("two").augment->p, state("one").augment->p, 1e-12);
  EXPECT_EQ(state("resumed").augment->p, state("one").augment->p);
  EXPECT_FALSE(state("plain").augment.has_value());
  const auto rows = metric_rows(tmp_ / "one");
  ASSERT_EQ(rows.size(), 12u);
  EXPECT_EQ(rows.front().augment_p.value_or(-1), 0);  // p starts at 0 and first moves after ada_interval steps
  EXPECT_EQ(rows.back().augment_p.value_or(-1), state("one").augment->p);
}

// model.arch = "resnet" (class-conditional BatchNorm synchronised over the ranks, projection D with spectral
// normalisation): N ranks x b equal 1 rank x N*b as for the DCGAN.
TEST_F(TrainCli, ResNetModelsTrainTheSameOnOneAndTwoRanks) {
  const std::string common =
      " --set model.arch=resnet --set model.g_width=4 --set model.d_width=4 --set model.batchnorm=sync"
      " --set model.spectral_norm=d --set model.loss=hinge --set train.max_steps=6"
      " --set output.checkpoint_every_steps=6";
  const auto dry = train("--dry-run --run-dir " + q(tmp_ / "dry") + common);
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("resnet: G "), std::string::npos) << dry.out;
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "one") + common + " --set train.batch_size=12").exit_code, 0);
  const auto two = train_mpi(2, "--run-dir " + q(tmp_ / "two") + common + " --set train.batch_size=6");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const auto one = checkpoint_tensors(tmp_ / "one" / "checkpoints" / "step-000006");
  const auto many = checkpoint_tensors(tmp_ / "two" / "checkpoints" / "step-000006");
  expect_close(one, many);
  EXPECT_NE(one.front().first.find("resnet."), std::string::npos) << one.front().first;
}

// Elastic resume: a run checkpointed on 2 ranks x 8 continues on 1 rank x 16 (the same global batch) exactly where
// it stopped in the data order, so it ends where 1 rank x 16 would have ended (dropout 0, BatchNorm sync: the
// conditions under which N ranks x b equal 1 rank x N*b). Another global batch is refused, naming the one to use.
TEST_F(TrainCli, ResumeOnAnotherWorldSizeContinuesTheSameDataOrder) {
  const std::string common =
      " --set model.dropout=0 --set model.batchnorm=sync --set output.checkpoint_every_steps=10 --set train.epochs=9";
  ASSERT_EQ(
      train("--run-dir " + q(tmp_ / "one") + common + " --set train.batch_size=16 --set train.max_steps=20").exit_code,
      0);
  const auto two = train_mpi(
      2, "--run-dir " + q(tmp_ / "elastic") + common + " --set train.global_batch=16 --set train.max_steps=10");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const auto resumed = train("--run-dir " + q(tmp_ / "elastic") + common +
                             " --set train.global_batch=16 --set train.max_steps=20 --resume auto");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resuming a 2-rank run on 1 rank(s), global batch 16"), std::string::npos) << resumed.err;
  const auto a = checkpoint_tensors(tmp_ / "one" / "checkpoints" / "step-000020");
  const auto b = checkpoint_tensors(tmp_ / "elastic" / "checkpoints" / "step-000020");
  expect_close(a, b);
  const auto state = train::read_checkpoint_state(tmp_ / "elastic" / "checkpoints" / "step-000020");
  EXPECT_EQ(state.world_size, 1);
  EXPECT_EQ(state.global_batch, 16);
  EXPECT_EQ(state.samples_seen, 20 * 16);
  // 3 ranks with a global batch of 24, or 1 rank keeping batch_size 8: refused before anything is written.
  expect_error_on_ranks(train_mpi(3, "--run-dir " + q(tmp_ / "elastic") + common +
                                         " --set train.global_batch=24 --set train.max_steps=30 --resume auto"),
                        "written with a global batch of 16");
  expect_error(train("--run-dir " + q(tmp_ / "elastic") + common + " --set train.max_steps=30 --resume auto"),
               "train.global_batch = 16");
  expect_error_on_ranks(train_mpi(3, "--run-dir " + q(tmp_ / "x") + " --set train.global_batch=16"),
                        "cannot be split over 3");
  EXPECT_FALSE(fs::exists(tmp_ / "elastic" / "checkpoints" / "step-000030"));
}

// comm.compression on 2 ranks. bf16 and PowerSGD (rank 2, compressing from step 3) train, send fewer bytes per step
// than float32 (metrics.jsonl's allreduce_bytes), and resume bit-identically: PowerSGD's Q and both ranks' error
// feedback are in the checkpoint (grad_compression.pt). N ranks x b is no longer 1 rank x N·b: the models differ from
// the uncompressed run's by the compression's error (printed, the number docs/design.md quotes). A PowerSGD
// checkpoint resumed on 3 ranks keeps Q and restarts the error feedback, and says so; under runtime.cuda_graphs
// PowerSGD is refused with the reason.
TEST_F(TrainCli, CompressedGradientsSendFewerBytesAndResumeBitIdentically) {
  const std::string common =
      " --set model.dropout=0 --set model.batchnorm=sync --set train.global_batch=24 --set train.epochs=9"
      " --set comm.powersgd_rank=2 --set comm.powersgd_start_step=3 --set train.max_steps=";
  std::map<std::string, double> bytes;
  std::map<std::string, std::vector<std::pair<std::string, torch::Tensor>>> models;
  for (const std::string mode : {"none", "bf16", "powersgd"}) {
    const std::string c = " --set comm.compression=" + mode + common;
    const fs::path straight = tmp_ / ("straight-" + mode), resumed = tmp_ / ("resumed-" + mode);
    auto r = train_mpi(2, "--run-dir " + q(straight) + c + "12");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = train_mpi(2, "--run-dir " + q(resumed) + c + "6");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = train_mpi(2, "--run-dir " + q(resumed) + c + "12 --resume auto");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    models[mode] = checkpoint_tensors(straight / "checkpoints" / "step-000012");
    expect_identical(models[mode], checkpoint_tensors(resumed / "checkpoints" / "step-000012"), mode);
    const auto rows = metric_rows(straight);
    ASSERT_FALSE(rows.empty());
    ASSERT_TRUE(rows.back().allreduce_bytes.has_value()) << mode;
    bytes[mode] = *rows.back().allreduce_bytes;
    EXPECT_EQ(fs::exists(straight / "checkpoints" / "step-000012" / "grad_compression.pt"), mode == "powersgd");
  }
  EXPECT_EQ(bytes["bf16"], bytes["none"] / 2);
  EXPECT_LT(bytes["powersgd"], bytes["none"]);
  for (const std::string mode : {"bf16", "powersgd"}) {
    double worst = 0;
    for (std::size_t i = 0; i < models["none"].size(); ++i) {
      const torch::Tensor& a = models["none"][i].second;
      const double scale = std::max(a.abs().max().item<double>(), 1e-12);
      worst = std::max(worst, (a - models[mode][i].second).abs().max().item<double>() / scale);
    }
    EXPECT_GT(worst, 0) << mode << " changed nothing";
    std::printf(
        "comm.compression = %s: %.0f bytes per step (none: %.0f); after 12 steps the largest difference "
        "from the uncompressed model is %.2e of a tensor's largest magnitude\n",
        mode.c_str(), bytes[mode], bytes["none"], worst);
  }
  // Elastic: 3 ranks keep the global batch of 24; PowerSGD's error feedback restarts.
  const auto elastic = train_mpi(3, "--run-dir " + q(tmp_ / "resumed-powersgd") + " --set comm.compression=powersgd" +
                                        common + "14 --resume auto");
  ASSERT_EQ(elastic.exit_code, 0) << elastic.err;
  EXPECT_NE(elastic.err.find("written on another number of ranks: PowerSGD keeps Q, its error feedback restarts"),
            std::string::npos)
      << elastic.err;
  expect_error(train_graphs("--run-dir " + q(tmp_ / "graphs") + " --set comm.compression=powersgd"),
               "runtime.cuda_graphs = true cannot capture comm.compression = \"powersgd\"");
}

TEST_F(TrainCli, RanksWithDifferentConfigurationsRefuseToStart) {
  // Rank 1 gets another learning rate. Every rank must stop before training, naming the difference. One command
  // for all ranks that picks its arguments by rank (Open MPI 5's mpiexec crashes on MPMD "A : B" launches).
  const std::string bin = std::string(SHARDGAN_TRAIN_BIN) + " --config " + q(config_) + " --run-dir " + q(tmp_ / "run");
  const std::string by_rank =
      "rank=${OMPI_COMM_WORLD_RANK:-$PMIX_RANK}; extra=; "
      "[ \"$rank\" = 1 ] && extra=\"--set optim.lr_g=0.1\"; exec " +
      bin + " $extra";
  const auto r = testing::run(std::string(SHARDGAN_MPIEXEC) + " -np 2 /bin/sh -c " + q(by_rank));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("ranks disagree on the resolved configuration: rank(s) 1 differ from rank 0"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "run" / "metrics.jsonl"));
}

// runtime.precision = fp16 with dynamic loss scaling. LibTorch 2.4+ autocasts CPU operations to float16, so the
// LibTorch 2.6 legs run it here; LibTorch 1.13 cannot, and says so. A starting scale of 2^40 overflows the fp16
// gradients at once: the first updates are skipped (on every rank alike) and the scale halves until they fit.
TEST_F(TrainCli, Fp16TrainsWithADynamicLossScaleOrIsRefusedWhereLibTorchCannot) {
  const std::string fp16 =
      " --set runtime.precision=fp16 --set runtime.loss_scale=1099511627776"
      " --set runtime.loss_scale_growth_every=4";
  if (!compat::kCpuFp16Autocast) {
    expect_error(train("--run-dir " + q(tmp_ / "run") + fp16), "fp16\" on the CPU needs LibTorch 2.4 or newer");
    return;
  }
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "straight") + fp16 + " --set train.max_steps=12").exit_code, 0);
  const auto rows = metric_rows(tmp_ / "straight");
  ASSERT_EQ(rows.size(), 6u);
  ASSERT_TRUE(rows[0].loss_scale && rows[0].skipped_updates);
  EXPECT_GT(*rows[0].skipped_updates, 0);           // 2^40 overflowed
  EXPECT_LT(*rows[0].loss_scale, 1099511627776.0);  // and was halved
  for (const auto& row : rows) EXPECT_TRUE(std::isfinite(row.loss_d) && std::isfinite(row.loss_g));
  const auto state = train::read_checkpoint_state(tmp_ / "straight" / "checkpoints" / "step-000012");
  ASSERT_TRUE(state.loss_scale);
  EXPECT_EQ(state.loss_scale->scale, *rows.back().loss_scale);
  // Resume carries the scale: bit-identical to the straight run.
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "resumed") + fp16 + " --set train.max_steps=6").exit_code, 0);
  const auto r = train("--run-dir " + q(tmp_ / "resumed") + fp16 + " --set train.max_steps=12 --resume auto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_identical(checkpoint_tensors(tmp_ / "straight" / "checkpoints" / "step-000012"),
                   checkpoint_tensors(tmp_ / "resumed" / "checkpoints" / "step-000012"));
  // Two ranks skip the same updates: the parameter check before each checkpoint would end the run otherwise.
  const auto two =
      train_mpi(2, "--run-dir " + q(tmp_ / "two") + fp16 + " --set train.max_steps=8 --set train.batch_size=4");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_GT(*metric_rows(tmp_ / "two")[0].skipped_updates, 0);
  // Under CUDA graphs (emulated here) the scale, the verdicts (all-reduced on the device), the skips and the scale's
  // update are device work: the same model, scales and skip counts, on one rank and on two.
  const auto one_graphed = train_graphs("--run-dir " + q(tmp_ / "graphs") + fp16 + " --set train.max_steps=12");
  ASSERT_EQ(one_graphed.exit_code, 0) << one_graphed.err;
  const auto two_graphed =
      train_mpi(2,
                "--run-dir " + q(tmp_ / "two-graphs") + fp16 +
                    " --set train.max_steps=8 --set train.batch_size=4 --set runtime.cuda_graphs=true",
                "", kEmulatedGraphs);
  ASSERT_EQ(two_graphed.exit_code, 0) << two_graphed.err;
  for (const auto& [eager, graphed, step] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"straight", "graphs", "step-000012"}, {"two", "two-graphs", "step-000008"}}) {
    expect_identical(checkpoint_tensors(tmp_ / eager / "checkpoints" / step),
                     checkpoint_tensors(tmp_ / graphed / "checkpoints" / step), graphed);
    const auto rows_x = metric_rows(tmp_ / eager), rows_y = metric_rows(tmp_ / graphed);
    ASSERT_EQ(rows_x.size(), rows_y.size());
    for (std::size_t i = 0; i < rows_x.size(); ++i) {
      EXPECT_EQ(rows_x[i].loss_scale, rows_y[i].loss_scale) << graphed << " row " << i;
      EXPECT_EQ(rows_x[i].skipped_updates, rows_y[i].skipped_updates) << graphed << " row " << i;
    }
    EXPECT_EQ(train::read_checkpoint_state(tmp_ / eager / "checkpoints" / step).loss_scale->good_steps,
              train::read_checkpoint_state(tmp_ / graphed / "checkpoints" / step).loss_scale->good_steps);
  }
}

// runtime.channels_last: the same arithmetic in another memory layout, so the same model up to summation order;
// and with 2 ranks the gradient buckets' views take the channels-last strides of the weights.
TEST_F(TrainCli, ChannelsLastTrainsTheSameModel) {
  const std::string common = " --set model.dropout=0 --set model.batchnorm=none --set train.max_steps=6";
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "nchw") + common).exit_code, 0);
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "nhwc") + common + " --set runtime.channels_last=true").exit_code, 0);
  const auto two = train_mpi(
      2, "--run-dir " + q(tmp_ / "nhwc2") + common + " --set runtime.channels_last=true --set train.batch_size=4");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const auto a = checkpoint_tensors(tmp_ / "nchw" / "checkpoints" / "step-000006");
  for (const char* other : {"nhwc", "nhwc2"}) {
    const auto b = checkpoint_tensors(tmp_ / other / "checkpoints" / "step-000006");
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double scale = std::max(a[i].second.abs().max().item<double>(), 1e-12);
      const double diff = (a[i].second - b[i].second).abs().max().item<double>();
      EXPECT_LE(diff / scale, 1e-4) << a[i].first << " (" << other << ")";
    }
  }
}

// runtime.cuda_graphs: without a GPU it is refused with one clear line. Emulated on the CPU (the step's work through
// the graph's static inputs and outputs and the capturable Adam, re-run at each "replay"), it trains the eager run's
// model bit for bit, its checkpoints resume in eager mode and back, and the step counts in Adam's state follow.
TEST_F(TrainCli, CudaGraphsAreRefusedWithoutAGpuAndTheirStepTrainsTheEagerModel) {
  const auto refused = train("--run-dir " + q(tmp_ / "refused") + " --set runtime.cuda_graphs=true");
  expect_error(refused, "runtime.cuda_graphs = true needs a CUDA device");
  const std::string common = " --set data.hflip=true --set train.max_steps=";
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "eager") + common + "10").exit_code, 0);
  const auto graphed = train_graphs("--run-dir " + q(tmp_ / "graphed") + common + "10 --dry-run");
  EXPECT_NE(graphed.out.find("CUDA graphs (emulated on the CPU)"), std::string::npos) << graphed.out;
  // Graphs for steps 0-4 (3 warm-up steps, a capture), eager for 5-8, graphs again for 9-10 (resumed twice).
  const std::string mixed = "--run-dir " + q(tmp_ / "mixed") + common;
  auto r = train_graphs(mixed + "5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = train(mixed + "8 --resume auto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = train_graphs(mixed + "10 --resume auto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_identical(checkpoint_tensors(tmp_ / "eager" / "checkpoints" / "step-000010"),
                   checkpoint_tensors(tmp_ / "mixed" / "checkpoints" / "step-000010"));
  // The logged means over the same steps are the same (the mixed run also logged its stop at step 5).
  std::map<int64_t, double> eager_loss;
  for (const auto& row : metric_rows(tmp_ / "eager")) eager_loss[row.step] = row.loss_d;
  int compared = 0;
  for (const auto& row : metric_rows(tmp_ / "mixed")) {
    if (row.step == 5 || row.step == 6) continue;  // windows that differ: 5-5 and 6-6 instead of 5-6
    EXPECT_EQ(row.loss_d, eager_loss.at(row.step)) << "step " << row.step;
    ++compared;
  }
  EXPECT_EQ(compared, 4);
  // Adam's step counts in the checkpoint are those of the eager run (10 for every parameter).
  for (const int64_t step : adam_steps(tmp_ / "mixed" / "checkpoints" / "step-000010")) EXPECT_EQ(step, 10);
  // With augmentation, ADA (p adjusted every 2 steps) and lazy R1 every 2 steps: two graphs (R1 steps 0, 2, 4 warm
  // up, 6 is captured, 8 and 10 replay; the others likewise), the eager model bit for bit.
  const std::string small_data =
      " --set augment.policy=color,translation,cutout --set augment.ada_target=0.6"
      " --set augment.ada_interval=2 --set augment.ada_kimg=0.1 --set train.r1_gamma=1"
      " --set train.r1_every=2 --set train.max_steps=12";
  ASSERT_EQ(train("--run-dir " + q(tmp_ / "eager-aug") + small_data).exit_code, 0);
  r = train_graphs("--run-dir " + q(tmp_ / "graphs-aug") + small_data);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_identical(checkpoint_tensors(tmp_ / "eager-aug" / "checkpoints" / "step-000012"),
                   checkpoint_tensors(tmp_ / "graphs-aug" / "checkpoints" / "step-000012"), "(augmentation, ADA, R1)");
  const auto p_eager = metric_rows(tmp_ / "eager-aug").back().augment_p,
             p_graphs = metric_rows(tmp_ / "graphs-aug").back().augment_p;
  ASSERT_TRUE(p_eager.has_value() && p_graphs.has_value());
  EXPECT_GT(*p_eager, 0.0);  // ADA moved p
  EXPECT_EQ(*p_eager, *p_graphs);
}

// SIGTERM while a rank waits in start-up (rank 1 starts 30 s late, so rank 0 sits in MPI_Init or the start-up
// agreement) ends that rank at once with exit code 75, and the launcher ends the job: no waiting for the other rank.
// A shard whose bytes match its manifest but make HDF5 1.10's global-heap reader loop (found by fuzz/shard_fuzz.cpp:
// the vlen class_names attribute of a corrupted heap) must not hang the job: the start-up is timed by the watchdog,
// which ends the rank with exit 70 after comm.timeout_s naming the phase. (A newer HDF5 may refuse the file at once
// instead: a clear error naming the shard passes too. What fails is a hang.)
TEST_F(TrainCli, AShardThatMakesHdf5SpinEndsTheRunInsteadOfHangingIt) {
  const fs::path dir = tmp_ / "spin";
  fs::create_directories(dir);
  fs::copy_file(fs::path(SHARDGAN_TEST_DATA) / "global-heap-loop.h5", dir / "shard-00000.h5");
  data::Manifest m;
  m.source = "test";
  m.shape = data::ShardReader(dir / "shard-00000.h5").shape();
  m.total_count = data::ShardReader(dir / "shard-00000.h5").count();
  m.class_names = {"a", "b"};
  m.class_counts = {m.total_count, 0};
  data::ShardInfo shard;
  shard.file = "shard-00000.h5";
  shard.count = m.total_count;
  shard.bytes = fs::file_size(dir / "shard-00000.h5");
  shard.checksum = file_checksum(dir / "shard-00000.h5");
  m.shards.push_back(shard);
  m.save(dir);
  const auto start = std::chrono::steady_clock::now();
  const auto r = train("--run-dir " + q(tmp_ / "run") + " --set data.path=" + q(dir) + " --set comm.timeout_s=3");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(seconds, 30);
  const bool timed_out = r.err.find("opening the data set and the checkpoint") != std::string::npos &&
                         r.err.find("did not complete within 3 s") != std::string::npos;
  const bool refused = r.err.find("shard-00000.h5") != std::string::npos;
  EXPECT_TRUE(timed_out || refused) << r.err;
}

TEST_F(TrainCli, ASignalBeforeTrainingStartsEndsTheRankAtOnce) {
  const fs::path run = tmp_ / "early-signal-run";
  const std::string bin = std::string(SHARDGAN_TRAIN_BIN) + " --config " + q(config_) + " --run-dir " + q(run);
  const std::string by_rank = "rank=${OMPI_COMM_WORLD_RANK:-$PMIX_RANK}; [ \"$rank\" = 1 ] && sleep 30; exec " + bin;
  const std::string script = std::string(SHARDGAN_MPIEXEC) + " -np 2 /bin/sh -c " + q(by_rank) +
                             " & job=$!; "
                             "for i in $(seq 100); do pid=$(pgrep -f '^" +
                             std::string(SHARDGAN_TRAIN_BIN) +
                             " --config .*early-signal-run');"
                             " [ -n \"$pid\" ] && break; sleep 0.1; done; sleep 1; start=$(date +%s); kill -TERM $pid;"
                             " wait $job; rc=$?; echo \"rc=$rc seconds=$(( $(date +%s) - start ))\"";
  testing::write_text(tmp_ / "early-signal.sh", script);
  const auto r = testing::run("/bin/bash " + q(tmp_ / "early-signal.sh"));
  EXPECT_NE(r.err.find("stopped by a signal before training started"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("rc=0 "), std::string::npos) << r.out;
  const auto at = r.out.find("seconds=");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_LT(std::stoi(r.out.substr(at + 8)), 15) << "the job waited for the late rank";
  EXPECT_FALSE(fs::exists(run / "checkpoints"));
}

TEST_F(TrainCli, AFailingConfigUnderMpirunEndsEveryRank) {
  const auto r = train_mpi(2, "--run-dir " + q(tmp_ / "run") + " --set train.batch_size=60");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("exceeds the data set's 96 images"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "run"));
}

}  // namespace
}  // namespace shardgan
