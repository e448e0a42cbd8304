#include "train/augment.hpp"

#include <torch/torch.h>

#include "parallel/tensor_comm.hpp"
#include "util/random.hpp"

namespace shardgan::train {
using torch::Tensor;

namespace {

/// DiffAugment's sizes: translation up to 1/8 of a side, a cut-out square of half the side (rounded).
int64_t max_shift(int64_t side) {
  return static_cast<int64_t>(static_cast<double>(side) * 0.125 + 0.5);
}
int64_t cutout_size(int64_t side) {
  return static_cast<int64_t>(static_cast<double>(side) * 0.5 + 0.5);
}

/// Whether operation `op` applies to each sample: [B] bool on the gates' device.
Tensor applies(const AugmentDraw& d, int op, const Tensor& p) {
  const Tensor g = d.gate.select(1, op);
  return p.defined() ? g.lt(p) : torch::ones_like(g, torch::kBool);
}

/// Per sample, `changed` where operation `op` applies and `x` unchanged (bit for bit) where it does not.
Tensor where_applies(const AugmentDraw& d, int op, const Tensor& p, const Tensor& changed, const Tensor& x) {
  if (!p.defined()) return changed;
  return torch::where(applies(d, op, p).view({-1, 1, 1, 1}), changed, x);
}

Tensor color(const Tensor& x, const AugmentDraw& d, const Tensor& p) {
  const Tensor u = d.color.to(x.scalar_type()).unsqueeze(2).unsqueeze(3);  // [B, 3, 1, 1]
  const auto amount = [&](int k) { return u.narrow(1, k, 1); };
  Tensor y = where_applies(d, 0, p, x + (amount(0) - 0.5), x);  // brightness ± 0.5
  const Tensor channel_mean = y.mean(1, /*keepdim=*/true);
  y = where_applies(d, 1, p, (y - channel_mean) * (amount(1) * 2) + channel_mean, y);  // saturation × [0, 2]
  const Tensor image_mean = y.mean({1, 2, 3}, /*keepdim=*/true);
  return where_applies(d, 2, p, (y - image_mean) * (amount(2) + 0.5) + image_mean, y);  // contrast × [0.5, 1.5]
}

/// out[b, :, i, j] = x[b, :, i + dy_b, j + dx_b], zero outside the image: a gather from the zero-padded batch.
Tensor translation(const Tensor& x, const AugmentDraw& d, const Tensor& p) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  const auto index = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  const Tensor shift = d.shift * applies(d, 3, p).to(torch::kInt64).view({-1, 1});
  const Tensor rows = (torch::arange(h, index).view({1, h}) + shift.select(1, 0).view({b, 1}) + 1).clamp(0, h + 1);
  const Tensor cols = (torch::arange(w, index).view({1, w}) + shift.select(1, 1).view({b, 1}) + 1).clamp(0, w + 1);
  const Tensor padded = torch::constant_pad_nd(x, {1, 1, 1, 1}, 0).permute({0, 2, 3, 1});  // [B, H+2, W+2, C]
  const Tensor batch = torch::arange(b, index).view({b, 1, 1});
  return padded.index({batch, rows.view({b, h, 1}), cols.view({b, 1, w})}).permute({0, 3, 1, 2});
}

/// Zeroes one square of half the side around each sample's centre (clipped at the borders).
Tensor cutout(const Tensor& x, const AugmentDraw& d, const Tensor& p) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  const auto index = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  const auto inside = [&](int64_t side, int axis) {
    const int64_t size = cutout_size(side);
    const Tensor first = d.cutout.select(1, axis).view({b, 1}) - size / 2;
    const Tensor pos = torch::arange(side, index).view({1, side});
    return pos.ge(first).logical_and(pos.lt(first + size));  // [B, side]
  };
  const Tensor hole = inside(h, 0).view({b, h, 1}).logical_and(inside(w, 1).view({b, 1, w}));
  const Tensor cut = hole.logical_and(applies(d, 4, p).view({b, 1, 1}));
  return x * cut.logical_not().unsqueeze(1).to(x.scalar_type());
}

}  // namespace

AugmentDraw AugmentDraw::rows(int64_t begin, int64_t count, torch::Device device) const {
  return AugmentDraw{color.narrow(0, begin, count).to(device), shift.narrow(0, begin, count).to(device),
                     cutout.narrow(0, begin, count).to(device), gate.narrow(0, begin, count).to(device)};
}

AugmentDraw draw_augment(uint64_t seed, int64_t step, AugmentRole role, int64_t global_batch, int64_t height,
                         int64_t width) {
  const uint64_t index = static_cast<uint64_t>(step) * 4 + static_cast<uint64_t>(role);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(rng::stream_seed(seed, rng::Stream::kAugment, index));
  const auto sides = [&](const auto& low, const auto& high) {
    return torch::stack({torch::randint(low(height), high(height), {global_batch}, gen, torch::kInt64),
                         torch::randint(low(width), high(width), {global_batch}, gen, torch::kInt64)},
                        1);
  };
  AugmentDraw d;
  d.color = torch::rand({global_batch, 3}, gen, torch::kFloat32);
  d.shift = sides([](int64_t s) { return -max_shift(s); }, [](int64_t s) { return max_shift(s) + 1; });
  // DiffAugment's centre range: [0, side + 1 − size % 2).
  d.cutout = sides([](int64_t) { return int64_t{0}; }, [](int64_t s) { return s + 1 - cutout_size(s) % 2; });
  d.gate = torch::rand({global_batch, 5}, gen, torch::kFloat32);
  return d;
}

Tensor augment(const Tensor& images, const config::Config::Augment& policy, const AugmentDraw& draw, const Tensor& p) {
  Tensor x = images;
  if (policy.color) x = color(x, draw, p);
  if (policy.translation) x = translation(x, draw, p);
  if (policy.cutout) x = cutout(x, draw, p);
  return x.contiguous(images.suggest_memory_format());
}

AdaptiveAugment::AdaptiveAugment(const config::Config::Augment& cfg, int64_t global_batch, torch::Device device)
    : target_(cfg.ada_target), interval_(cfg.ada_interval), global_batch_(global_batch) {
  if (cfg.ada_target <= 0) return;
  step_size_ = static_cast<double>(global_batch * interval_) / (cfg.ada_kimg * 1000);
  const auto options = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  p_ = torch::zeros({}, options);
  sum_ = torch::zeros({}, options);
}

void AdaptiveAugment::observe(const Tensor& real_logits) {
  if (enabled()) sum_.add_(real_logits.detach().sign().sum().to(torch::kFloat64));
}

void AdaptiveAugment::after_step(int64_t done, comm::Communicator& comm) {
  if (!enabled() || done % interval_ != 0) return;
  if (comm.size() > 1) parallel::allreduce(comm, sum_, comm::ReduceOp::kSum);
  const Tensor r = sum_ / static_cast<double>(global_batch_ * interval_);
  p_.add_((r - target_).sign() * step_size_).clamp_(0, 1);
  sum_.zero_();
}

std::pair<double, double> AdaptiveAugment::state(comm::Communicator& comm) {
  if (comm.size() > 1) parallel::allreduce(comm, sum_, comm::ReduceOp::kSum);
  const double sum = sum_.item<double>();
  if (comm.rank() != 0) sum_.zero_();
  return {p_.item<double>(), sum};
}

void AdaptiveAugment::restore(double p, double sum, bool root) {
  if (!enabled()) return;
  p_.fill_(p);
  sum_.fill_(root ? sum : 0.0);
}

}  // namespace shardgan::train
