// shardgan-eval: offline quality metrics without downloadable Inception weights.
//   train-classifier: a small CNN on the packed shards, whose penultimate layer is the feature space of FD-clf
//   score: FD-clf, class consistency and discriminator scores of a checkpoint against the packed data
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "compat/error_message.hpp"
#include "data/shard_dataset.hpp"
#include "eval/classifier.hpp"
#include "eval/evaluator.hpp"
#include "report/rows.hpp"
#include "shardgan/config.hpp"
#include "train/checkpoint.hpp"
#include "train/gan.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace {

using namespace shardgan;
namespace fs = std::filesystem;

void set_threads(int64_t threads) {
  torch::set_num_threads(
      static_cast<int>(threads > 0 ? threads : std::max<int64_t>(1, std::thread::hardware_concurrency())));
}

struct TrainClassifierArgs {
  std::string data_dir, out_file;
  eval::TrainClassifierOptions options;
};

struct ScoreArgs {
  std::string checkpoint, classifier, data_dir, json_out;
  int64_t n = 10000, seed = 0;
  bool no_ema = false;
};

void train_classifier_command(const TrainClassifierArgs& a) {
  const eval::TrainClassifierOptions& o = a.options;
  if (o.epochs <= 0 || o.batch_size <= 0 || o.width <= 0) fail("--epochs, --batch-size and --width must be positive");
  if (o.holdout_fraction <= 0 || o.holdout_fraction >= 1) fail("--holdout must be in (0, 1)");
  const data::ShardDataset dataset(a.data_dir, {});
  eval::ClassifierInfo info;
  eval::Classifier model = eval::train_classifier(dataset, o, &info);
  eval::save_classifier(a.out_file, model, info);
  nlohmann::ordered_json j;
  j["classifier"] = a.out_file;
  j["holdout_accuracy"] = info.holdout_accuracy;
  j["holdout_images"] = info.holdout_count;
  j["classes"] = info.class_names;
  j["feature_dim"] = model->feature_dim();
  std::printf("%s\n", j.dump(2).c_str());
}

void score_command(const ScoreArgs& a) {
  if (a.n < 2) fail("--n must be at least 2 (a covariance needs two samples)");
  train::RestoredModels restored = train::restore_models(a.checkpoint);
  const train::CheckpointState& state = restored.state;
  train::Gan& gan = restored.gan;
  const data::ShardDataset dataset(a.data_dir, {});
  if (dataset.shape() != state.spec.shape || dataset.manifest().class_names != state.spec.class_names)
    fail(a.data_dir, ": not the data the checkpoint was trained on (other image shape or classes)");
  eval::ClassifierInfo info;
  eval::Classifier classifier = eval::load_classifier(a.classifier, &info, torch::kCPU);
  eval::require_compatible(a.classifier, info, dataset.shape(), dataset.manifest().class_names);
  eval::Evaluator evaluator(classifier, dataset, a.n, static_cast<uint64_t>(a.seed), restored.config.model.z_dim,
                            nullptr, torch::kCPU);
  const bool ema = gan.generator_ema && !a.no_ema;
  const eval::EvalResult r =
      evaluator.evaluate(gan.sampling_generator(!a.no_ema), *gan.discriminator, gan.num_classes() > 0);
  // The row training logs to metrics.jsonl ("epoch": the checkpoint's), with what was scored.
  nlohmann::ordered_json j;
  j["checkpoint"] = restored.dir.string();
  j.update(report::to_json(report::eval_row(r, state.step, static_cast<double>(state.epoch), ema ? "ema" : "g"),
                           state.spec.class_names));
  j["classifier"] = a.classifier;
  j["classifier_holdout_accuracy"] = info.holdout_accuracy;
  std::printf("%s\n", j.dump(2).c_str());
  if (!a.json_out.empty()) write_text_atomically(a.json_out, j.dump(2) + "\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shardgan-eval " SHARDGAN_VERSION
               ": quality metrics for shardgan runs (FD-clf in a classifier's feature space, class consistency, "
               "discriminator scores). docs/metrics.md"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SHARDGAN_VERSION);

  int64_t threads = 0;
  TrainClassifierArgs tc;
  auto* train_cmd = app.add_subcommand("train-classifier", "train the metrics' classifier on packed shards");
  train_cmd->add_option("--data", tc.data_dir, "packed data set (shardgan-pack output)")->required();
  train_cmd->add_option("--out", tc.out_file, "classifier file to write (e.g. clf.pt)")->required();
  train_cmd->add_option("--epochs", tc.options.epochs, "training epochs")->capture_default_str();
  train_cmd->add_option("--batch-size", tc.options.batch_size, "batch size")->capture_default_str();
  train_cmd->add_option("--lr", tc.options.lr, "Adam learning rate")->capture_default_str();
  train_cmd->add_option("--width", tc.options.width, "base channel width (w, 2w, 4w)")->capture_default_str();
  train_cmd->add_option("--seed", tc.options.seed, "seed")->capture_default_str();
  train_cmd
      ->add_option("--holdout", tc.options.holdout_fraction,
                   "held-out fraction when the data has no test split (ids test#...)")
      ->capture_default_str();
  train_cmd->add_option("--threads", threads, "intra-op threads (0: all cores)")->capture_default_str();

  ScoreArgs sc;
  auto* score_cmd = app.add_subcommand("score", "FD-clf, class consistency and D scores of a checkpoint");
  score_cmd->add_option("--checkpoint", sc.checkpoint, "checkpoint folder, or a run folder (its newest)")->required();
  score_cmd->add_option("--classifier", sc.classifier, "file from train-classifier")->required();
  score_cmd->add_option("--data", sc.data_dir, "packed real data (the training data)")->required();
  score_cmd->add_option("--n", sc.n, "generated and real images compared")->capture_default_str();
  score_cmd->add_option("--seed", sc.seed, "seed of the real subset and the noise")->capture_default_str();
  score_cmd->add_flag("--no-ema", sc.no_ema, "score G itself, not its EMA generator");
  score_cmd->add_option("--out", sc.json_out, "also write the JSON to this file");
  score_cmd->add_option("--threads", threads, "intra-op threads (0: all cores)")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    set_threads(threads);
    if (train_cmd->parsed()) {
      train_classifier_command(tc);
    } else {
      score_command(sc);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardgan-eval: error: %s\n", shardgan::compat::error_message(e).c_str());
    return 1;
  }
  return 0;
}
