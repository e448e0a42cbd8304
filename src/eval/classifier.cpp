#include "eval/classifier.hpp"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <numeric>

#include "data/shard_dataset.hpp"
#include "model/image_tensor.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"
#include "util/random.hpp"

namespace shardgan::eval {
namespace fs = std::filesystem;
using torch::Tensor;

namespace {

constexpr int64_t kFormatVersion = 1;
constexpr int64_t kFeatures = ClassifierImpl::kFeatures;

/// conv3x3 → BatchNorm → ReLU appended to `body`.
void conv_block(torch::nn::Sequential& body, int64_t in, int64_t out) {
  namespace nn = torch::nn;
  body->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
  body->push_back(nn::BatchNorm2d(out));
  body->push_back(nn::ReLU(nn::ReLUOptions().inplace(true)));
}

/// Accuracy of `model` on `indices` (eval mode, batches of 512).
double accuracy(Classifier& model, const data::ShardDataset& dataset, const std::vector<int64_t>& indices) {
  torch::NoGradGuard no_grad;
  model->eval();
  int64_t correct = 0;
  for (std::size_t i = 0; i < indices.size(); i += 512) {
    const std::vector<int64_t> batch(indices.begin() + static_cast<std::ptrdiff_t>(i),
                                     indices.begin() + static_cast<std::ptrdiff_t>(std::min(indices.size(), i + 512)));
    std::vector<int64_t> labels;
    for (int64_t index : batch) labels.push_back(dataset.labels()[static_cast<std::size_t>(index)]);
    const Tensor predicted = model->forward(load_images(dataset, batch)).argmax(1);
    correct += predicted.eq(torch::tensor(labels)).sum().item<int64_t>();
  }
  model->train();
  return indices.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(indices.size());
}

/// The images a classifier trains on and those held out for its accuracy.
struct Split {
  std::vector<int64_t> train, holdout;
};

/// The test split when the ids have both it and others, else a random `options.holdout_fraction` held out (the
/// order from `options.seed`'s holdout stream).
Split split_holdout(const data::ShardDataset& dataset, const TrainClassifierOptions& options) {
  const std::vector<std::string> ids = dataset.ids();
  std::vector<int64_t> train, holdout;
  // Test-split ids as shardgan-pack writes them: Fashion-MNIST "test#17", CIFAR-10 "test_batch.bin#17".
  const auto is_test = [](const std::string& id) {
    return id.rfind("test#", 0) == 0 || id.rfind("test_batch.bin#", 0) == 0;
  };
  for (std::size_t i = 0; i < ids.size(); ++i) (is_test(ids[i]) ? holdout : train).push_back(i);
  if (holdout.empty() || train.empty()) {
    train.clear(), holdout.clear();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(rng::stream_seed(options.seed, rng::Stream::kHoldout));
    const Tensor order = torch::randperm(dataset.size(), gen, torch::kInt64);
    const auto n_holdout = static_cast<int64_t>(static_cast<double>(dataset.size()) * options.holdout_fraction);
    for (int64_t i = 0; i < dataset.size(); ++i) (i < n_holdout ? holdout : train).push_back(order[i].item<int64_t>());
  }
  return {std::move(train), std::move(holdout)};
}

}  // namespace

ClassifierImpl::ClassifierImpl(const ClassifierInfo& info) {
  namespace nn = torch::nn;
  const int64_t w = info.width;
  nn::Sequential body;
  conv_block(body, info.shape.channels, w);
  body->push_back(nn::MaxPool2d(2));
  conv_block(body, w, 2 * w);
  body->push_back(nn::MaxPool2d(2));
  conv_block(body, 2 * w, 4 * w);
  body->push_back(nn::MaxPool2d(2));
  body->push_back(nn::AdaptiveAvgPool2d(4));  // 4x4 whatever the image size
  body->push_back(nn::Flatten());
  body->push_back(nn::Linear(4 * w * 16, kFeatures));
  body->push_back(nn::ReLU(nn::ReLUOptions().inplace(true)));
  body_ = register_module("body", body);
  dropout_ = register_module("dropout", nn::Dropout(0.3));
  head_ = register_module("head", nn::Linear(kFeatures, static_cast<int64_t>(info.class_names.size())));
}

Tensor ClassifierImpl::features(const Tensor& images) {
  return body_->forward(images);
}

Tensor ClassifierImpl::logits(const Tensor& features) {
  return head_->forward(dropout_->forward(features));
}

Tensor load_images(const data::ShardDataset& dataset, const std::vector<int64_t>& indices) {
  const auto& s = dataset.shape();
  Tensor pixels = torch::empty({static_cast<int64_t>(indices.size()), s.height, s.width, s.channels}, torch::kUInt8);
  dataset.read(indices, pixels.data_ptr<uint8_t>());
  return model::to_model_images(pixels);
}

void save_classifier(const fs::path& file, Classifier& classifier, const ClassifierInfo& info) {
  torch::serialize::OutputArchive archive;
  classifier->save(archive);
  archive.write("shardgan_meta",
                torch::tensor(std::vector<int64_t>{kFormatVersion, info.shape.height, info.shape.width,
                                                   info.shape.channels, info.width, info.holdout_count}));
  archive.write("shardgan_accuracy", torch::tensor({info.holdout_accuracy}, torch::kFloat64));
  std::string names;
  for (const auto& n : info.class_names) names += n + '\n';
  archive.write("shardgan_class_names",
                torch::from_blob(names.data(), {static_cast<int64_t>(names.size())}, torch::kUInt8).clone());
  write_file_atomically(file, [&](const fs::path& tmp) {
    try {
      archive.save_to(tmp.string());
    } catch (const c10::Error& e) {
      fail(file.string(), ": cannot write (", e.what_without_backtrace(), ")");
    }
  });
}

Classifier load_classifier(const fs::path& file, ClassifierInfo* info, torch::Device device) {
  if (file_kind(file) == FileKind::kMissing)
    fail(file.string(),
         ": classifier file does not exist (make one with shardgan-eval "
         "train-classifier)");
  require_regular_file(file, "classifier file");  // before torch::load opens it: a FIFO would block it
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file.string());
    Tensor meta, accuracy, names;
    if (!archive.try_read("shardgan_meta", meta) || !archive.try_read("shardgan_class_names", names) ||
        !archive.try_read("shardgan_accuracy", accuracy))
      fail(file.string(), ": not a shardgan classifier (no shardgan_meta)");
    if (meta[0].item<int64_t>() != kFormatVersion)
      fail(file.string(), ": classifier format ", meta[0].item<int64_t>(), ", this build reads ", kFormatVersion);
    ClassifierInfo i;
    i.shape = data::ImageShape{static_cast<int>(meta[1].item<int64_t>()), static_cast<int>(meta[2].item<int64_t>()),
                               static_cast<int>(meta[3].item<int64_t>())};
    i.width = meta[4].item<int64_t>();
    i.holdout_count = meta[5].item<int64_t>();
    i.holdout_accuracy = accuracy[0].item<double>();
    const std::string text(reinterpret_cast<const char*>(names.data_ptr<uint8_t>()),
                           static_cast<std::size_t>(names.numel()));
    for (std::size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
      i.class_names.push_back(text.substr(start, end - start));
    Classifier model(i);
    model->load(archive);
    model->to(device);
    model->eval();
    if (info != nullptr) *info = i;
    return model;
  } catch (const c10::Error& e) {
    fail(file.string(), ": cannot read classifier (", shardgan::quoted(e.what_without_backtrace(), 1000), ")");
  }
}

void require_compatible(const fs::path& file, const ClassifierInfo& info, const data::ImageShape& shape,
                        const std::vector<std::string>& class_names) {
  if (info.shape != shape)
    fail(file.string(), ": classifier was trained on ", info.shape.height, "x", info.shape.width, "x",
         info.shape.channels, " images, these are ", shape.height, "x", shape.width, "x", shape.channels);
  if (info.class_names != class_names)
    fail(file.string(), ": classifier was trained on other classes (", info.class_names.size(), " vs ",
         class_names.size(), ", or other names/order)");
}

Classifier train_classifier(const data::ShardDataset& dataset, const TrainClassifierOptions& options,
                            ClassifierInfo* info) {
  const auto& names = dataset.manifest().class_names;
  if (names.size() < 2) fail("a classifier needs at least 2 classes; this data set has ", names.size());
  const auto [train, holdout] = split_holdout(dataset, options);
  if (train.empty()) fail("no training images left after holding out ", holdout.size());

  ClassifierInfo i;
  i.shape = dataset.shape();
  i.class_names = names;
  i.width = options.width;
  torch::manual_seed(options.seed);
  Classifier model(i);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(options.lr));
  const int64_t steps_per_epoch = static_cast<int64_t>(train.size()) / options.batch_size;
  if (steps_per_epoch == 0) fail("only ", train.size(), " training images for a batch of ", options.batch_size);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    const Tensor order = torch::randperm(static_cast<int64_t>(train.size()), gen, torch::kInt64);
    const int64_t* o = order.data_ptr<int64_t>();
    double loss_sum = 0;
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      std::vector<int64_t> batch(static_cast<std::size_t>(options.batch_size));
      std::vector<int64_t> labels(batch.size());
      for (std::size_t k = 0; k < batch.size(); ++k) {
        batch[k] = train[static_cast<std::size_t>(o[step * options.batch_size + static_cast<int64_t>(k)])];
        labels[k] = dataset.labels()[static_cast<std::size_t>(batch[k])];
      }
      const Tensor loss = torch::cross_entropy_loss(model->forward(load_images(dataset, batch)), torch::tensor(labels));
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>();
    }
    const double acc = accuracy(model, dataset, holdout);
    if (options.verbose)
      std::fprintf(stderr, "epoch %lld/%lld: train loss %.4f, held-out accuracy %.4f (%zu images), %.0f s\n",
                   static_cast<long long>(epoch + 1), static_cast<long long>(options.epochs),
                   loss_sum / static_cast<double>(steps_per_epoch), acc, holdout.size(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    i.holdout_accuracy = acc;
  }
  i.holdout_count = static_cast<int64_t>(holdout.size());
  model->eval();
  if (info != nullptr) *info = i;
  return model;
}

}  // namespace shardgan::eval
