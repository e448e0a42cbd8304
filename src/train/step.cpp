#include "train/step.hpp"

#include <torch/torch.h>

#include "compat/torch_compat.hpp"
#include "model/image_tensor.hpp"
#include "parallel/cuda_stream.hpp"
#include "parallel/tensor_comm.hpp"
#include "util/random.hpp"

namespace shardgan::train {
using torch::Tensor;

std::vector<Tensor*> StepInputs::tensors() {
  std::vector<Tensor*> all{&images, &flips, &real_labels, &z, &fake_labels};
  for (AugmentDraw* d : {&augment_real, &augment_fake_d, &augment_fake_g})
    for (Tensor* t : {&d->color, &d->shift, &d->cutout, &d->gate}) all.push_back(t);
  return all;
}

StepInputs step_inputs(const Plan& plan, data::Batch& batch, int64_t step) {
  const auto& cfg = plan.cfg;
  const int64_t b = plan.batch, global = plan.sampler.global_batch(), first = plan.rank.rank * b;
  const int64_t classes = plan.gan.num_classes();
  const auto& shape = plan.spec.shape;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(
      rng::stream_seed(static_cast<uint64_t>(cfg.train.seed), rng::Stream::kStepNoise, static_cast<uint64_t>(step)));
  const Tensor z = torch::randn({global, cfg.model.z_dim}, gen, torch::kFloat32);
  const Tensor fake_labels = torch::randint(std::max<int64_t>(classes, 1), {global}, gen, torch::kInt64);
  const Tensor flips = torch::rand({global}, gen, torch::kFloat32) < 0.5;
  StepInputs in;
  in.step = step;
  in.images = torch::from_blob(batch.images.data(), {b, shape.height, shape.width, shape.channels}, torch::kUInt8);
  if (cfg.data.hflip) in.flips = flips.narrow(0, first, b).view({b, 1, 1, 1});
  in.z = z.narrow(0, first, b);
  if (classes > 0) {
    in.real_labels = torch::from_blob(batch.labels.data(), {b}, torch::kInt64);
    in.fake_labels = fake_labels.narrow(0, first, b);
  }
  if (cfg.augment.enabled()) {
    const auto draw = [&](AugmentRole role) {
      return draw_augment(static_cast<uint64_t>(cfg.train.seed), step, role, global, shape.height, shape.width)
          .rows(first, b, torch::kCPU);
    };
    in.augment_real = draw(AugmentRole::kRealD);
    in.augment_fake_d = draw(AugmentRole::kFakeD);
    in.augment_fake_g = draw(AugmentRole::kFakeG);
  }
  // For a GPU every input goes through pinned memory, so that its copy to the device is asynchronous: from pageable
  // memory LibTorch's copy waits for the stream, and the host could not queue the next step while the device runs
  // this one. (LibTorch's caching host allocator keeps a pinned block until its copy is done.)
  if (plan.placement.device.is_cuda())
    for (Tensor* t : in.tensors())
      if (t->defined()) *t = parallel::pinned_host_like(*t).copy_(*t);
  return in;
}

namespace {

class LibTorchAdam final : public UpdateRule {
 public:
  explicit LibTorchAdam(torch::optim::Adam& optimizer) : optimizer_(optimizer) {}
  void apply(const Tensor& /*skip: never set on the CPU without graphs*/) override { optimizer_.step(); }

 private:
  torch::optim::Adam& optimizer_;
};

class DeviceAdam final : public UpdateRule {
 public:
  explicit DeviceAdam(torch::optim::Adam& optimizer) : adam_(optimizer) {}
  void apply(const Tensor& skip) override { adam_.step(skip); }
  void before_checkpoint() override { adam_.store_host_step(); }  // its step count, as LibTorch saves it

 private:
  CapturableAdam adam_;
};

}  // namespace

std::unique_ptr<UpdateRule> make_update_rule(const Placement& placement, torch::optim::Adam& optimizer) {
  if (placement.graphs || placement.device.is_cuda()) return std::make_unique<DeviceAdam>(optimizer);
  return std::make_unique<LibTorchAdam>(optimizer);
}

GanStep::GanStep(const Plan& plan, Gan& gan, comm::Communicator& comm, parallel::GradSync& sync_g,
                 parallel::GradSync& sync_d, AdaptiveAugment& ada)
    : cfg_(plan.cfg),
      placement_(plan.placement),
      rank_(plan.rank.rank),
      world_(plan.rank.world),
      classes_(gan.num_classes()),
      gan_(gan),
      comm_(comm),
      sync_g_(sync_g),
      sync_d_(sync_d),
      ada_(ada),
      loss_(make_loss(plan.cfg.model.loss)),
      rule_g_(make_update_rule(plan.placement, *gan.optim_g)),
      rule_d_(make_update_rule(plan.placement, *gan.optim_d)) {}

bool GanStep::r1_due(int64_t step) const {
  return cfg_.train.r1_gamma > 0 && step % cfg_.train.r1_every == 0;
}

void GanStep::begin(int64_t step) {
  gan_.discriminator->seed_dropout(rng::rank_step_seed(static_cast<uint64_t>(cfg_.train.seed), step, rank_));
}

StepLosses GanStep::operator()(const StepInputs& in) {
  StepLosses losses;
  const Tensor fake = d_step(in, losses);
  g_step(in, fake, losses);
  if (gan_.loss_scaler.on_device()) {
    gan_.loss_scaler.end_step_on_device();
  } else {
    gan_.loss_scaler.update(losses.skipped);
  }
  return losses;
}

/// The batch as the models take it: [-1, 1], NCHW (or channels-last), flipped where the step's draws say.
Tensor GanStep::real_images(const StepInputs& in) const {
  const Tensor real = model::to_model_images(in.images, placement_.device, cfg_.runtime.channels_last);
  return in.flips.defined() ? torch::where(in.flips, real.flip({3}), real) : real;
}

/// `images` as D sees them in this step: augmented by augment.policy with `draw` (with ADA's p), or unchanged.
Tensor GanStep::seen_by_d(const Tensor& images, const AugmentDraw& draw) const {
  return cfg_.augment.enabled() ? augment(images, cfg_.augment, draw, ada_.p()) : images;
}

/// D on real vs (detached) generated images, each augmented, plus R1 when due; returns the generated batch for
/// g_step.
Tensor GanStep::d_step(const StepInputs& in, StepLosses& losses) {
  auto& G = gan_.generator;
  auto& D = gan_.discriminator;
  const int64_t b = in.images.size(0);
  const bool r1 = r1_due(in.step);
  Tensor fake, objective;
  {
    compat::AutocastGuard autocast(placement_.autocast, placement_.device.type(), placement_.autocast_dtype);
    fake = G->forward(in.z, in.fake_labels);
    Tensor real = seen_by_d(real_images(in), in.augment_real);
    if (r1) real = real.detach().requires_grad_(true);
    // One D pass over real and fake together (D has no batch statistics, so this equals two passes, faster).
    const Tensor labels = classes_ > 0 ? torch::cat({in.real_labels, in.fake_labels}) : Tensor();
    const Tensor both =
        D->forward(torch::cat({real, seen_by_d(fake.detach(), in.augment_fake_d)}), labels).to(torch::kFloat32);
    const Tensor real_logits = both.narrow(0, 0, b), fake_logits = both.narrow(0, b, b);
    ada_.observe(real_logits);
    losses.d = loss_->discriminator(real_logits, fake_logits);
    losses.d_real = torch::sigmoid(real_logits.detach()).mean();
    losses.d_fake = torch::sigmoid(fake_logits.detach()).mean();
    objective = r1 ? losses.d + r1_penalty(real, real_logits) : losses.d;
  }
  losses.skipped += update(*D, sync_d_, *rule_d_, objective, in.step, losses.grad_norm_d) ? 0 : 1;
  return fake;
}

/// Lazy R1 (Mescheder et al. 2018; StyleGAN2): γ/2 · E‖∇ₓD(x)‖² on the images D saw as real, times train.r1_every
/// because it runs on one step in r1_every. The mean over this rank's images: averaging gradients over the ranks makes
/// it the global batch's mean.
Tensor GanStep::r1_penalty(const Tensor& real, const Tensor& real_logits) const {
  const Tensor grad = torch::autograd::grad({real_logits.sum()}, {real}, /*grad_outputs=*/{}, /*retain_graph=*/true,
                                            /*create_graph=*/true)[0];
  const double weight = cfg_.train.r1_gamma / 2 * static_cast<double>(cfg_.train.r1_every);
  return grad.to(torch::kFloat32).square().flatten(1).sum(1).mean() * weight;
}

/// G through D, whose parameters need no gradients here.
void GanStep::g_step(const StepInputs& in, const Tensor& fake, StepLosses& losses) {
  auto& D = gan_.discriminator;
  for (auto& p : D->parameters()) p.set_requires_grad(false);
  {
    compat::AutocastGuard autocast(placement_.autocast, placement_.device.type(), placement_.autocast_dtype);
    losses.g = loss_->generator(D->forward(seen_by_d(fake, in.augment_fake_g), in.fake_labels).to(torch::kFloat32));
  }
  const bool stepped = update(*gan_.generator, sync_g_, *rule_g_, losses.g, in.step, losses.grad_norm_g);
  for (auto& p : D->parameters()) p.set_requires_grad(true);
  losses.skipped += stepped ? 0 : 1;
}

/// One optimiser step of `module` on `loss`, with gradients averaged over the ranks; false when fp16 loss scaling
/// found an inf or NaN and every rank skipped it. The order is the contract of GradSync: hooks armed before
/// backward, buckets waited for before the step.
bool GanStep::update(torch::nn::Module& module, parallel::GradSync& sync, UpdateRule& rule, const Tensor& loss,
                     int64_t step, Tensor& grad_norm) {
  compat::clear_gradients(module);
  sync.prepare(step);
  gan_.loss_scaler.scale(loss).backward();
  sync.finish();
  if (gan_.loss_scaler.on_device()) {  // runtime.cuda_graphs with fp16: the check and the update are device work
    const Tensor skip = agreed_skip_on_device(module);
    grad_norm = gradient_norm(module);
    rule.apply(skip);
    return true;  // a skip is counted on the device (LossScaler::note_update)
  }
  const bool finite = gradients_finite(module);  // unscales them first
  grad_norm = gradient_norm(module);
  if (!finite) return false;
  rule.apply();
  return true;
}

/// The L2 norm of `module`'s gradients as device work (a CUDA graph holds it): one fused norm per tensor, then their
/// norm; a non-finite one (an update fp16 loss scaling skips) is 0, so that the logged mean stays a number.
Tensor GanStep::gradient_norm(torch::nn::Module& module) {
  std::vector<Tensor> grads;
  for (const auto& p : module.parameters())
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({}, torch::TensorOptions(placement_.device).dtype(torch::kFloat32));
  const Tensor norm = torch::stack(at::_foreach_norm(grads)).to(torch::kFloat32).norm();
  return torch::where(torch::isfinite(norm), norm, torch::zeros_like(norm));
}

/// The loss scaler's check of the averaged gradients, agreed by all ranks (any rank's inf skips the update on all).
bool GanStep::gradients_finite(torch::nn::Module& module) {
  if (!gan_.loss_scaler.enabled()) return true;
  const Tensor found = gan_.loss_scaler.unscale_and_check(module.parameters());
  wait_for_device();
  const int64_t bad = found.item<bool>() ? 1 : 0;
  return (world_ > 1 ? comm_.allreduce(bad, comm::ReduceOp::kSum) : bad) == 0;
}

/// The same check as device work (runtime.cuda_graphs): this rank's verdict as a float flag, summed over the ranks by
/// an all-reduce queued on the stream (no host wait), then 0 or 1 on every rank.
Tensor GanStep::agreed_skip_on_device(torch::nn::Module& module) {
  Tensor flag = gan_.loss_scaler.unscale_and_check(module.parameters()).to(torch::kFloat32);
  if (world_ > 1) {
    auto request = comm_.allreduce_async(flag.data_ptr(), 1, comm::DType::kFloat32, comm::ReduceOp::kSum);
    request->wait();
  }
  const Tensor skip = (flag > 0).to(torch::kFloat32);
  gan_.loss_scaler.note_update(skip);
  return skip;
}

void GanStep::wait_for_device() {
  comm_.fence()->wait();
}

void GanStep::before_checkpoint() {
  rule_g_->before_checkpoint();
  rule_d_->before_checkpoint();
}

}  // namespace shardgan::train
