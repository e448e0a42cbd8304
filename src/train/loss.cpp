#include "train/loss.hpp"

#include <torch/torch.h>

namespace shardgan::train {
namespace {
using torch::Tensor;

Tensor bce_with_logits(const Tensor& logits, float target) {
  return torch::binary_cross_entropy_with_logits(logits, torch::full_like(logits, target));
}

class BceLoss final : public GanLoss {
 public:
  Tensor discriminator(const Tensor& real_logits, const Tensor& fake_logits) const override {
    return bce_with_logits(real_logits, 1.0f) + bce_with_logits(fake_logits, 0.0f);
  }
  Tensor generator(const Tensor& fake_logits) const override { return bce_with_logits(fake_logits, 1.0f); }
};

class HingeLoss final : public GanLoss {
 public:
  Tensor discriminator(const Tensor& real_logits, const Tensor& fake_logits) const override {
    return torch::relu(1 - real_logits).mean() + torch::relu(1 + fake_logits).mean();
  }
  Tensor generator(const Tensor& fake_logits) const override { return -fake_logits.mean(); }
};

}  // namespace

std::unique_ptr<GanLoss> make_loss(config::Loss loss) {
  switch (loss) {
    case config::Loss::kBce: return std::make_unique<BceLoss>();
    case config::Loss::kHinge: return std::make_unique<HingeLoss>();
  }
  return nullptr;  // not reached: every Loss has a case
}

}  // namespace shardgan::train
