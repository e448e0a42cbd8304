// shardgan-eval: offline quality metrics without downloadable Inception weights.
//   train-classifier: a small CNN on the packed shards, whose penultimate layer is the feature space of FD-clf
//   score: FD-clf, class consistency and discriminator scores of a checkpoint against the packed data
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "data/shard_dataset.hpp"
#include "eval/classifier.hpp"
#include "eval/evaluator.hpp"
#include "shardgan/config.hpp"
#include "train/checkpoint.hpp"
#include "train/gan.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/error_message.hpp"

namespace {

using namespace shardgan;
namespace fs = std::filesystem;

void set_threads(int64_t threads) {
  torch::set_num_threads(
      static_cast<int>(threads > 0 ? threads : std::max<int64_t>(1, std::thread::hardware_concurrency())));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shardgan-eval " SHARDGAN_VERSION
               ": quality metrics for shardgan runs (FD-clf in a classifier's feature space, class consistency, "
               "discriminator scores). docs/metrics.md"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SHARDGAN_VERSION);

  std::string data_dir, out_file;
  int64_t threads = 0;
  eval::TrainClassifierOptions train_options;
  auto* train_cmd = app.add_subcommand("train-classifier", "train the metrics' classifier on packed shards");
  train_cmd->add_option("--data", data_dir, "packed data set (shardgan-pack output)")->required();
  train_cmd->add_option("--out", out_file, "classifier file to write (e.g. clf.pt)")->required();
  train_cmd->add_option("--epochs", train_options.epochs, "training epochs")->capture_default_str();
  train_cmd->add_option("--batch-size", train_options.batch_size, "batch size")->capture_default_str();
  train_cmd->add_option("--lr", train_options.lr, "Adam learning rate")->capture_default_str();
  train_cmd->add_option("--width", train_options.width, "base channel width (w, 2w, 4w)")->capture_default_str();
  train_cmd->add_option("--seed", train_options.seed, "seed")->capture_default_str();
  train_cmd
      ->add_option("--holdout", train_options.holdout_fraction,
                   "held-out fraction when the data has no test split (ids test#...)")
      ->capture_default_str();
  train_cmd->add_option("--threads", threads, "intra-op threads (0: all cores)")->capture_default_str();

  std::string checkpoint_arg, classifier_file, json_out;
  int64_t n = 10000, seed = 0;
  bool no_ema = false;
  auto* score_cmd = app.add_subcommand("score", "FD-clf, class consistency and D scores of a checkpoint");
  score_cmd->add_option("--checkpoint", checkpoint_arg, "checkpoint folder, or a run folder (its newest)")->required();
  score_cmd->add_option("--classifier", classifier_file, "file from train-classifier")->required();
  score_cmd->add_option("--data", data_dir, "packed real data (the training data)")->required();
  score_cmd->add_option("--n", n, "generated and real images compared")->capture_default_str();
  score_cmd->add_option("--seed", seed, "seed of the real subset and the noise")->capture_default_str();
  score_cmd->add_flag("--no-ema", no_ema, "score G itself, not its EMA generator");
  score_cmd->add_option("--out", json_out, "also write the JSON to this file");
  score_cmd->add_option("--threads", threads, "intra-op threads (0: all cores)")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    set_threads(threads);
    if (train_cmd->parsed()) {
      if (train_options.epochs <= 0 || train_options.batch_size <= 0 || train_options.width <= 0)
        fail("--epochs, --batch-size and --width must be positive");
      if (train_options.holdout_fraction <= 0 || train_options.holdout_fraction >= 1)
        fail("--holdout must be in (0, 1)");
      const data::ShardDataset dataset(data_dir, {});
      eval::ClassifierInfo info;
      eval::Classifier model = eval::train_classifier(dataset, train_options, &info);
      eval::save_classifier(out_file, model, info);
      nlohmann::ordered_json j;
      j["classifier"] = out_file;
      j["holdout_accuracy"] = info.holdout_accuracy;
      j["holdout_images"] = info.holdout_count;
      j["classes"] = info.class_names;
      j["feature_dim"] = model->feature_dim();
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    // score
    if (n < 2) fail("--n must be at least 2 (a covariance needs two samples)");
    const fs::path dir = train::resolve_checkpoint(checkpoint_arg);
    const train::CheckpointState state = train::read_checkpoint_state(dir);
    const config::Config cfg = config::load(dir / "config.toml");
    train::Gan gan(cfg, state.spec, torch::kCPU);
    train::load_checkpoint(dir, gan, cfg.model_hash(), /*optimizers=*/false);
    const data::ShardDataset dataset(data_dir, {});
    if (dataset.shape() != state.spec.shape || dataset.manifest().class_names != state.spec.class_names)
      fail(data_dir, ": not the data the checkpoint was trained on (other image shape or classes)");
    eval::ClassifierInfo info;
    eval::Classifier classifier = eval::load_classifier(classifier_file, &info, torch::kCPU);
    eval::require_compatible(classifier_file, info, dataset.shape(), dataset.manifest().class_names);
    eval::Evaluator evaluator(classifier, dataset, n, static_cast<uint64_t>(seed), cfg.model.z_dim, nullptr,
                              torch::kCPU);
    const bool ema = gan.generator_ema && !no_ema;
    const eval::EvalResult r =
        evaluator.evaluate(gan.sampling_generator(!no_ema), *gan.discriminator, gan.num_classes() > 0);
    nlohmann::ordered_json j;
    j["checkpoint"] = dir.string();
    j["step"] = state.step;
    j["generator"] = ema ? "ema" : "g";
    j["n"] = r.n;
    j["fd_clf"] = r.fd_clf;
    j["class_consistency"] = r.class_consistency ? nlohmann::ordered_json(*r.class_consistency) : nullptr;
    if (!r.per_class.empty()) {
      nlohmann::ordered_json per_class = nlohmann::ordered_json::object();
      for (std::size_t k = 0; k < r.per_class.size(); ++k) per_class[state.spec.class_names[k]] = r.per_class[k];
      j["class_consistency_per_class"] = per_class;
    }
    j["d_real"] = r.d_real;
    j["d_fake"] = r.d_fake;
    j["classifier"] = classifier_file;
    j["classifier_holdout_accuracy"] = info.holdout_accuracy;
    j["eval_s"] = r.seconds;
    std::printf("%s\n", j.dump(2).c_str());
    if (!json_out.empty()) write_text_atomically(json_out, j.dump(2) + "\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardgan-eval: error: %s\n", error_message(e).c_str());
    return 1;
  }
  return 0;
}
