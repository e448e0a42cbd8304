#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "pack_output.hpp"

namespace shardgan::pack {

const std::vector<std::string>& fashion_mnist_class_names();

struct FashionMnistOptions {
  std::filesystem::path input = "/usr/share/datasets/fashion-mnist";
  int size = 32;
  std::string split = "train";  ///< train | test | all
  OutputOptions output;
};

/// Packs Fashion-MNIST's IDX files (gzipped or not) into grayscale shards (C = 1). Images are 28×28: sizes 28..32
/// are zero-padded around the centre (pixels unchanged; 32 is the DCGAN convention), other sizes are resized
/// (area interpolation when shrinking, bilinear when enlarging). Ids: "train#17", "test#17". The input must be a
/// folder and its IDX files regular files (a FIFO, a device, a dangling link is an Error saying so), checked before
/// anything is read or written; the files are read an image at a time, headers checked (magic numbers, counts that
/// agree, images of at most 4096x4096).
data::Manifest pack_fashion_mnist(const FashionMnistOptions& options);

}  // namespace shardgan::pack
