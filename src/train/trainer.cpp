#include "train/trainer.hpp"

#include <malloc.h>
#include <sys/sysinfo.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "comm/communicator.hpp"
#include "comm/watchdog.hpp"
#include "data/distributed_sampler.hpp"
#include "data/loader.hpp"
#include "data/shard_dataset.hpp"
#include "eval/evaluator.hpp"
#include "parallel/consistency.hpp"
#include "parallel/grad_sync.hpp"
#include "train/checkpoint.hpp"
#include "train/gan.hpp"
#include "train/run_outputs.hpp"
#include "train/stop_signal.hpp"
#include "train/torch_compat.hpp"
#include "util/error.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;
using torch::Tensor;

namespace {

/// The random draws of one step for the whole global batch, from a generator seeded by (seed, step): z, fake labels
/// and flip decisions. Each rank then takes its rows, so the draws do not depend on the world size.
struct StepNoise {
  Tensor z, fake_labels, flips;
};

StepNoise draw_noise(uint64_t seed, int64_t step, int64_t global_batch, int64_t z_dim, int64_t classes) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(data::mix_seed(seed, static_cast<uint64_t>(step), 0x4e4f495345));
  StepNoise n;
  n.z = torch::randn({global_batch, z_dim}, gen, torch::kFloat32);
  n.fake_labels = torch::randint(std::max<int64_t>(classes, 1), {global_batch}, gen, torch::kInt64);
  n.flips = torch::rand({global_batch}, gen, torch::kFloat32) < 0.5;
  return n;
}

Tensor bce_with_logits(const Tensor& logits, float target) {
  return torch::binary_cross_entropy_with_logits(logits, torch::full_like(logits, target));
}

struct Losses {
  Tensor d, g, d_real, d_fake;  // d_real / d_fake: mean sigmoid of the logits (the seed's D(x), D(G(z)))
};

/// One optimiser step of `module` on `loss`, with gradients averaged over the ranks. The order is the contract of
/// GradSync: hooks armed before backward, buckets waited for before the step. Gradients are cleared as
/// zero_grad(set_to_none = true) would, the same in LibTorch 1.13 and 2.x and safe when .grad is a view of a bucket
/// (1.13's zero_grad would detach_ it in place, which views refuse).
void update(torch::nn::Module& module, parallel::GradSync& sync, torch::optim::Optimizer& optimizer,
            const Tensor& loss) {
  for (auto& p : module.parameters()) p.mutable_grad() = Tensor();
  sync.prepare();
  loss.backward();
  sync.finish();
  optimizer.step();
}

int64_t node_threads(int local_size) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max<int64_t>(1, cores / static_cast<unsigned>(std::max(1, local_size)));
}

}  // namespace

void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // tensors up to 1 GiB come from the heap, not from fresh mmaps
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // and freed heap memory is kept for the next step
}

int train(const TrainOptions& options, comm::MpiSession& session) {
  const config::Config& cfg = options.config;
  const int rank = session.rank(), world = session.size();
  const bool root = rank == 0;

  // Device, threads, precision.
  const bool cuda_available = torch::cuda::is_available();
  if (cfg.runtime.device == "cuda" && !cuda_available) fail("runtime.device = \"cuda\" but no CUDA device is visible");
  const bool use_cuda = cfg.runtime.device == "cuda" || (cfg.runtime.device == "auto" && cuda_available);
  const torch::Device device =
      use_cuda ? torch::Device(torch::kCUDA, static_cast<int>(session.local_rank() % torch::cuda::device_count()))
               : torch::Device(torch::kCPU);
  if (cfg.runtime.precision == "fp16")
    fail("runtime.precision = \"fp16\" needs loss scaling, which is not implemented yet; use \"bf16\" or \"fp32\"");
  const bool bf16 = cfg.runtime.precision == "bf16";
  const int64_t threads = cfg.runtime.threads > 0 ? cfg.runtime.threads : node_threads(session.local_size());
  torch::set_num_threads(static_cast<int>(threads));
  if (cfg.train.deterministic) at::globalContext().setDeterministicAlgorithms(true, false);
  const std::string backend = cfg.comm.backend == "auto" ? (use_cuda ? "nccl" : "mpi") : cfg.comm.backend;
  if (backend == "nccl" && !use_cuda) fail("comm.backend = \"nccl\" needs runtime.device = \"cuda\"");

  // Data: every rank checks it (a bad shard stops every rank with the same message).
  struct sysinfo info {};
  sysinfo(&info);
  data::ShardDataset::Options data_options;
  data_options.verify = cfg.data.verify;
  data_options.cache = cfg.data.cache;
  data_options.memory_budget = static_cast<uint64_t>(info.freeram) * info.mem_unit / 4 /
                               static_cast<uint64_t>(std::max(1, session.local_size()));
  const data::ShardDataset dataset(cfg.data.path, data_options);
  const DataSpec spec{dataset.shape(), dataset.manifest().class_names};
  data::DistributedSampler sampler(dataset.size(), cfg.train.batch_size, world, rank,
                                   static_cast<uint64_t>(cfg.train.seed));
  const int64_t steps_per_epoch = sampler.steps_per_epoch();
  int64_t total_steps = cfg.train.epochs * steps_per_epoch;
  if (cfg.train.max_steps > 0) total_steps = std::min(total_steps, cfg.train.max_steps);

  torch::manual_seed(static_cast<uint64_t>(cfg.train.seed));
  Gan gan(cfg, spec, device);
  const std::string config_toml = cfg.to_toml();

  if (options.dry_run) {
    if (root) {
      std::printf(
          "shardgan-train plan (dry run: nothing trained)\n"
          "  world size   %d rank(s), %d on this node (%s)\n"
          "  device       %s, %lld thread(s) per rank, precision %s, gradients over %s\n"
          "  data         %s: %lld images %dx%dx%d, %zu classes, %s cache, checksums %s\n"
          "  batch        %lld per rank, %lld global\n"
          "  steps        %lld per epoch x %lld epochs = %lld%s\n"
          "  models       G %lld parameters, D %lld parameters (conditional %s, batchnorm %s, loss %s, EMA G %s)\n"
          "  metrics      %s\n"
          "  run dir      %s\n",
          world, session.local_size(), session.host().c_str(), device.str().c_str(), static_cast<long long>(threads),
          cfg.runtime.precision.c_str(), backend.c_str(), cfg.data.path.c_str(), static_cast<long long>(dataset.size()),
          spec.shape.height, spec.shape.width, spec.shape.channels, spec.class_names.size(),
          dataset.in_memory() ? "memory" : "stream", cfg.data.verify ? "verified" : "skipped",
          static_cast<long long>(cfg.train.batch_size), static_cast<long long>(sampler.global_batch()),
          static_cast<long long>(steps_per_epoch), static_cast<long long>(cfg.train.epochs),
          static_cast<long long>(total_steps), cfg.train.max_steps > 0 ? " (train.max_steps)" : "",
          static_cast<long long>(parameter_count(*gan.generator)),
          static_cast<long long>(parameter_count(*gan.discriminator)), cfg.model.conditional ? "yes" : "no",
          cfg.model.batchnorm.c_str(), cfg.model.loss.c_str(),
          gan.generator_ema ? cat("decay ", cfg.model.g_ema).c_str() : "off",
          cfg.eval.classifier.empty() ? "off (eval.classifier not set)"
                                      : cat("FD-clf, class consistency, D scores on ", cfg.eval.n, " images every ",
                                            cfg.eval.every_epochs, " epoch(s) (classifier ", cfg.eval.classifier, ")")
                                            .c_str(),
          options.run_dir.c_str());
    }
    return 0;
  }

  // Resume: every rank reads the same checkpoint (shared file system); rank 0 decides which.
  int64_t start_step = 0;
  std::optional<fs::path> checkpoint;
  if (options.resume == "auto") {
    std::vector<std::string> skipped;
    checkpoint = find_latest_checkpoint(options.run_dir, &skipped);
    if (root)
      for (const auto& s : skipped)
        std::fprintf(stderr, "shardgan-train: skipping invalid checkpoint: %s\n", s.c_str());
  } else if (!options.resume.empty()) {
    checkpoint = resolve_checkpoint(options.resume);
  } else if (find_latest_checkpoint(options.run_dir)) {
    fail(options.run_dir.string(),
         ": holds checkpoints from an earlier run; use --resume auto to continue it or "
         "another --run-dir");
  }
  if (checkpoint) {
    const CheckpointState state = read_checkpoint_state(*checkpoint);
    if (state.spec.shape != spec.shape || state.spec.class_names != spec.class_names)
      fail(checkpoint->string(), ": checkpoint was trained on data of another shape or other classes");
    load_checkpoint(*checkpoint, gan, cfg.model_hash(), /*optimizers=*/true);
    start_step = state.step;
    if (root)
      std::fprintf(stderr, "shardgan-train: resuming from %s (step %lld)\n", checkpoint->c_str(),
                   static_cast<long long>(start_step));
  }

  // Communication: one model on every rank, every collective under the watchdog.
  comm::Watchdog watchdog(rank, cfg.comm.timeout_s);
  std::unique_ptr<comm::Communicator> communicator =
      comm::watched(backend == "nccl" ? comm::make_nccl_communicator(MPI_COMM_WORLD, device.index())
                                      : comm::make_mpi_communicator(MPI_COMM_WORLD),
                    watchdog);
  parallel::require_agreement(*communicator, "the resolved configuration", config_toml);
  std::string data_identity = std::to_string(dataset.size());
  for (const auto& shard : dataset.manifest().shards) data_identity += shard.checksum;
  parallel::require_agreement(*communicator, "the data set (manifest checksums)", data_identity);
  parallel::require_agreement(*communicator, "the starting checkpoint",
                              checkpoint ? checkpoint->string() : std::string("none"));
  if (cfg.model.batchnorm == "sync") gan.generator->set_batchnorm_communicator(communicator.get());
  parallel::GradSync sync_g(*communicator, gan.generator->parameters(), cfg.comm.bucket_mb, cfg.comm.overlap);
  parallel::GradSync sync_d(*communicator, gan.discriminator->parameters(), cfg.comm.bucket_mb, cfg.comm.overlap);
  {
    auto tensors = gan.generator->parameters();
    for (auto& b : gan.generator->buffers()) tensors.push_back(b);
    if (gan.generator_ema) {
      for (auto& p : gan.generator_ema->parameters()) tensors.push_back(p);
      for (auto& b : gan.generator_ema->buffers()) tensors.push_back(b);
    }
    sync_g.broadcast(tensors);
    tensors = gan.discriminator->parameters();
    for (auto& b : gan.discriminator->buffers()) tensors.push_back(b);
    sync_d.broadcast(tensors);
  }

  std::unique_ptr<RunOutputs> outputs;
  ReportInfo report;
  if (root) {
    fs::create_directories(options.run_dir);
    std::ofstream(options.run_dir / "config.toml") << config_toml;
    outputs = std::make_unique<RunOutputs>(options.run_dir, start_step, total_steps, steps_per_epoch);
    report = ReportInfo{options.run_dir.filename().string(),
                        config_toml,
                        world,
                        device.str(),
                        sampler.global_batch(),
                        total_steps,
                        cfg.model.conditional ? spec.class_names : std::vector<std::string>{}};
  }

  // Metrics (eval.classifier): the real side is reduced once, then every evaluation is sharded over the ranks.
  std::unique_ptr<eval::Evaluator> evaluator;
  if (!cfg.eval.classifier.empty()) {
    eval::ClassifierInfo clf_info;
    eval::Classifier classifier = eval::load_classifier(cfg.eval.classifier, &clf_info, device);
    eval::require_compatible(cfg.eval.classifier, clf_info, spec.shape, spec.class_names);
    evaluator =
        std::make_unique<eval::Evaluator>(classifier, dataset, cfg.eval.n, static_cast<uint64_t>(cfg.train.seed),
                                          cfg.model.z_dim, communicator.get(), device);
  }
  const auto run_eval = [&](int64_t done) {
    const bool ema = static_cast<bool>(gan.generator_ema);
    model::GeneratorImpl& sampler_g = gan.sampling_generator();
    const eval::EvalResult r = evaluator->evaluate(sampler_g, *gan.discriminator, gan.num_classes() > 0);
    gan.generator->train();
    if (!root) return;
    outputs->log_eval(EvalRow{done, static_cast<double>(done) / static_cast<double>(steps_per_epoch), r.fd_clf,
                              r.class_consistency, r.per_class, r.d_real, r.d_fake, r.n, r.seconds, ema ? "ema" : "g"},
                      spec.class_names);
    std::fprintf(stderr, "eval at step %lld: FD-clf %.4g%s, D(real) %.3f, D(fake) %.3f (%lld images, %.1f s)\n",
                 static_cast<long long>(done), r.fd_clf,
                 r.class_consistency ? cat(", class consistency ", *r.class_consistency * 100, " %").c_str() : "",
                 r.d_real, r.d_fake, static_cast<long long>(r.n), r.seconds);
  };
  if (evaluator && start_step == 0) run_eval(0);  // the untrained generator: the baseline of every curve

  // Fixed noise for the sample grids: 8 per class (conditional) or output.sample_count.
  const int64_t classes = gan.num_classes();
  const int64_t sample_n = classes > 0 ? 8 * classes : cfg.output.sample_count;
  auto sample_gen = at::make_generator<at::CPUGeneratorImpl>(
      data::mix_seed(static_cast<uint64_t>(cfg.train.seed), 0x53414d504c45ull));
  const Tensor fixed_z = torch::randn({sample_n, cfg.model.z_dim}, sample_gen).to(device);
  const Tensor fixed_labels = classes > 0 ? torch::arange(classes).repeat_interleave(8).to(device) : Tensor();

  const int64_t b = cfg.train.batch_size;
  const float sample_scale = 1.0f / 127.5f;
  data::Loader loader(dataset, sampler, start_step, total_steps);
  auto& G = gan.generator;
  auto& D = gan.discriminator;
  G->train();
  D->train();

  const auto t0 = std::chrono::steady_clock::now();
  auto last_log = t0;
  int64_t last_log_step = start_step;
  const MetricsRow* last_row = nullptr;
  MetricsRow row;
  Tensor acc = torch::zeros({4}, torch::kFloat64);
  int64_t acc_n = 0;

  const auto named_state = [&] {
    parallel::NamedTensors named;
    for (const auto& p : G->named_parameters()) named.emplace_back("generator/" + p.key(), p.value());
    for (const auto& buffer : G->named_buffers()) named.emplace_back("generator/" + buffer.key(), buffer.value());
    for (const auto& p : D->named_parameters()) named.emplace_back("discriminator/" + p.key(), p.value());
    if (gan.generator_ema)
      for (const auto& p : gan.generator_ema->named_parameters())
        named.emplace_back("generator_ema/" + p.key(), p.value());
    return named;
  };
  std::vector<Tensor> g_float_buffers;
  for (const auto& buffer : G->buffers())
    if (buffer.is_floating_point()) g_float_buffers.push_back(buffer);

  for (int64_t step = start_step; step < total_steps; ++step) {
    const int64_t epoch = step / steps_per_epoch;
    watchdog.set_step(step);
    // A stop signal on any rank stops every rank after this step, with a checkpoint.
    int64_t stop_votes = stop_requested() != 0 ? 1 : 0;
    if (world > 1) communicator->allreduce(&stop_votes, 1, comm::DType::kInt64, comm::ReduceOp::kSum);
    const bool stop_now = stop_votes > 0;
    data::Batch batch = loader.next();
    const StepNoise noise =
        draw_noise(static_cast<uint64_t>(cfg.train.seed), step, sampler.global_batch(), cfg.model.z_dim, classes);
    // Dropout and any other global-generator draw of this rank and step.
    torch::manual_seed(data::mix_seed(static_cast<uint64_t>(cfg.train.seed), static_cast<uint64_t>(step),
                                      static_cast<uint64_t>(rank) + 1));

    Tensor real = torch::from_blob(batch.images.data(), {b, spec.shape.height, spec.shape.width, spec.shape.channels},
                                   torch::kUInt8)
                      .to(device)
                      .permute({0, 3, 1, 2})
                      .contiguous()  // NCHW, as the models expect (the permuted view has NHWC strides)
                      .to(torch::kFloat32)
                      .mul_(sample_scale)
                      .sub_(1.0f);
    const Tensor real_labels = torch::from_blob(batch.labels.data(), {b}, torch::kInt64).to(device);
    if (cfg.data.hflip) {
      const Tensor flip = noise.flips.narrow(0, rank * b, b).to(device).view({b, 1, 1, 1});
      real = torch::where(flip, real.flip({3}), real);
    }
    const Tensor z = noise.z.narrow(0, rank * b, b).to(device);
    const Tensor fake_labels = classes > 0 ? noise.fake_labels.narrow(0, rank * b, b).to(device) : Tensor();
    const Tensor y_real = classes > 0 ? real_labels : Tensor();

    Losses l;
    // D step: real vs (detached) fake.
    Tensor fake;
    {
      AutocastGuard autocast(bf16, device.type(), torch::kBFloat16);
      fake = G->forward(z, fake_labels);
      // One D pass over real and fake together (D has no batch statistics, so this equals two passes, faster).
      const Tensor both =
          D->forward(torch::cat({real, fake.detach()}), classes > 0 ? torch::cat({y_real, fake_labels}) : Tensor());
      const Tensor logits_real = both.narrow(0, 0, b);
      const Tensor logits_fake = both.narrow(0, b, b);
      if (cfg.model.loss == "hinge") {
        l.d = torch::relu(1 - logits_real.to(torch::kFloat32)).mean() +
              torch::relu(1 + logits_fake.to(torch::kFloat32)).mean();
      } else {
        l.d = bce_with_logits(logits_real.to(torch::kFloat32), 1.0f) +
              bce_with_logits(logits_fake.to(torch::kFloat32), 0.0f);
      }
      l.d_real = torch::sigmoid(logits_real.detach().to(torch::kFloat32)).mean();
      l.d_fake = torch::sigmoid(logits_fake.detach().to(torch::kFloat32)).mean();
    }
    update(*D, sync_d, *gan.optim_d, l.d);

    // G step: D's parameters need no gradients here.
    for (auto& p : D->parameters()) p.set_requires_grad(false);
    {
      AutocastGuard autocast(bf16, device.type(), torch::kBFloat16);
      const Tensor logits = D->forward(fake, fake_labels).to(torch::kFloat32);
      l.g = cfg.model.loss == "hinge" ? -logits.mean() : bce_with_logits(logits, 1.0f);
    }
    update(*G, sync_g, *gan.optim_g, l.g);
    gan.update_ema(step + 1);
    for (auto& p : D->parameters()) p.set_requires_grad(true);

    acc += torch::stack({l.d.detach(), l.g.detach(), l.d_real, l.d_fake}).to(torch::kCPU, torch::kFloat64);
    ++acc_n;
    const int64_t done = step + 1;
    const bool epoch_end = done % steps_per_epoch == 0;
    const bool last = done == total_steps;

    const bool log_now = done % cfg.train.log_every == 0 || last;
    if (log_now) {
      Tensor mean = (acc / static_cast<double>(acc_n)).contiguous();
      if (world > 1) communicator->allreduce(mean.data_ptr(), 4, comm::DType::kFloat64, comm::ReduceOp::kAvg);
      const auto now = std::chrono::steady_clock::now();
      if (root) {
        const auto m = mean.accessor<double, 1>();
        row = MetricsRow{done,
                         epoch,
                         m[0],
                         m[1],
                         m[2],
                         m[3],
                         (done - last_log_step) * sampler.global_batch() /
                             std::max(1e-9, std::chrono::duration<double>(now - last_log).count()),
                         std::chrono::duration<double>(now - t0).count()};
        outputs->log(row);
        last_row = &row;
      }
      last_log = now;
      last_log_step = done;
      acc.zero_();
      acc_n = 0;
    }
    if (root) outputs->progress(done, epoch, last_row, log_now);

    const bool epoch_sample = epoch_end && (epoch + 1) % cfg.output.sample_every_epochs == 0;
    const bool step_sample = cfg.output.sample_every_steps > 0 && done % cfg.output.sample_every_steps == 0;
    const bool sample_now = epoch_sample || step_sample || last;
    const bool checkpoint_now = done % cfg.output.checkpoint_every_steps == 0 || last || stop_now;
    // Local BatchNorm: each rank's running statistics come from its own batches; average them before they are used.
    const bool check_now = checkpoint_now || done % cfg.comm.check_every == 0;
    const bool eval_now = evaluator && ((epoch_end && (epoch + 1) % cfg.eval.every_epochs == 0) || last);
    if (sample_now || check_now || eval_now) parallel::average_tensors(*communicator, g_float_buffers);
    if (check_now) parallel::check_consistency(*communicator, named_state(), done);
    if (eval_now) {
      const auto eval_start = std::chrono::steady_clock::now();
      run_eval(done);
      last_log += std::chrono::steady_clock::now() - eval_start;  // img/s counts training time only
    }
    if (root && sample_now) {
      torch::NoGradGuard no_grad;
      const Tensor images = gan.sampling_generator().forward(fixed_z, fixed_labels);
      G->train();
      char name[32];
      if (epoch_end) {
        std::snprintf(name, sizeof(name), "epoch-%04lld.png", static_cast<long long>(epoch + 1));
      } else {
        std::snprintf(name, sizeof(name), "step-%06lld.png", static_cast<long long>(done));
      }
      outputs->write_samples(name, make_grid(images, 8));
      outputs->write_loss_plot();
      outputs->write_report(report);
    }
    if (root && checkpoint_now) {
      CheckpointState state;
      state.step = done;
      state.epoch = done / steps_per_epoch;
      state.world_size = world;
      state.config_hash = cfg.hash();
      state.model_hash = cfg.model_hash();
      state.spec = spec;
      save_checkpoint(options.run_dir, gan, state, config_toml, cfg.output.keep_checkpoints);
    }
    if (stop_now) {
      if (root) {
        outputs->finish_progress();
        std::fprintf(stderr,
                     "shardgan-train: stopped by a signal after step %lld; checkpoint written; exit code %d (resume "
                     "with --resume auto)\n",
                     static_cast<long long>(done), kExitStoppedBySignal);
      }
      communicator->barrier();
      return kExitStoppedBySignal;
    }
  }
  if (root) {
    outputs->finish_progress();
    std::fprintf(stderr, "shardgan-train: done, %lld steps; run folder %s\n", static_cast<long long>(total_steps),
                 options.run_dir.c_str());
  }
  communicator->barrier();
  return 0;
}

}  // namespace shardgan::train
