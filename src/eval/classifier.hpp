#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/shard_format.hpp"

namespace shardgan::data {
class ShardDataset;
}

namespace shardgan::eval {

/// What a classifier was built and trained for; stored beside its weights.
struct ClassifierInfo {
  data::ImageShape shape;
  std::vector<std::string> class_names;
  int64_t width = 32;
  double holdout_accuracy = 0;  ///< accuracy on the held-out images at the end of training
  int64_t holdout_count = 0;
};

/// A small CNN for the metrics (no downloadable Inception weights on a cluster without internet):
/// [conv3x3 → BN → ReLU → maxpool] with w, 2w, 4w channels → adaptive average pool to 4×4 → linear (128) → ReLU
/// = features (the penultimate layer) → dropout → linear → class logits. ~10 M multiply-adds per 32×32 image.
/// Inputs are images in [-1, 1], NCHW, like the generator's outputs.
class ClassifierImpl : public torch::nn::Module {
 public:
  explicit ClassifierImpl(const ClassifierInfo& info);
  torch::Tensor features(const torch::Tensor& images);
  torch::Tensor logits(const torch::Tensor& features);
  torch::Tensor forward(const torch::Tensor& images) { return logits(features(images)); }
  static constexpr int64_t kFeatures = 128;
  int64_t feature_dim() const { return kFeatures; }

 private:
  torch::nn::Sequential body_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(Classifier);

/// Writes the classifier and its info into one LibTorch archive (atomically: a temporary file renamed).
void save_classifier(const std::filesystem::path& file, Classifier& classifier, const ClassifierInfo& info);

/// Reads a file written by save_classifier onto `device`; Error naming the file when it is not one.
Classifier load_classifier(const std::filesystem::path& file, ClassifierInfo* info, torch::Device device);

/// Fails (naming `file`) unless the classifier was trained for images of `shape` and exactly these classes.
void require_compatible(const std::filesystem::path& file, const ClassifierInfo& info, const data::ImageShape& shape,
                        const std::vector<std::string>& class_names);

struct TrainClassifierOptions {
  int64_t epochs = 4;
  int64_t batch_size = 128;
  double lr = 1e-3;
  int64_t width = 32;
  uint64_t seed = 0;
  double holdout_fraction = 0.1;  ///< used when the data set has no test split (ids "test#…")
  bool verbose = true;
};

/// Trains a classifier on a packed data set. Held out for the accuracy: the test split when the ids say so
/// (packed with --split all: Fashion-MNIST "test#…", CIFAR-10 "test_batch.bin#…"), else a fixed random
/// `holdout_fraction`.
Classifier train_classifier(const data::ShardDataset& dataset, const TrainClassifierOptions& options,
                            ClassifierInfo* info);

/// Images with the given indices as float NCHW in [-1, 1] (the training's conversion of uint8 pixels).
torch::Tensor load_images(const data::ShardDataset& dataset, const std::vector<int64_t>& indices);

}  // namespace shardgan::eval
