// The training loop. A run is a Plan (what is trained, where, for how long: all decided before anything is
// communicated or written; the dry run prints it) and a Trainer (the communicators, outputs and metrics around it,
// and the step). One step is:
//
//   agree_to_stop → inputs → d_step → g_step → ema_update → ADA's p → meter → after_step (log, samples,
//   parameter checks, evaluation, checkpoint: each when due)
//
// A new loss goes into train/loss.hpp, a new cadence into Due, a new output into after_step.
#include "train/trainer.hpp"

#include <malloc.h>
#include <sys/sysinfo.h>
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>

#include "comm/communicator.hpp"
#include "comm/watchdog.hpp"
#include "data/distributed_sampler.hpp"
#include "data/loader.hpp"
#include "data/shard_dataset.hpp"
#include "eval/evaluator.hpp"
#include "model/image_tensor.hpp"
#include "parallel/consistency.hpp"
#include "parallel/cuda_graph.hpp"
#include "parallel/cuda_stream.hpp"
#include "parallel/grad_sync.hpp"
#include "parallel/tensor_comm.hpp"
#include "report/grid.hpp"
#include "report/run_outputs.hpp"
#include "train/augment.hpp"
#include "train/capturable_adam.hpp"
#include "train/checkpoint.hpp"
#include "train/gan.hpp"
#include "train/loss.hpp"
#include "train/stop_signal.hpp"
#include "compat/torch_compat.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/error_message.hpp"
#include "util/random.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using torch::Tensor;

namespace {

int64_t node_threads(int local_size) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max<int64_t>(1, cores / static_cast<unsigned>(std::max(1, local_size)));
}

/// Where this rank computes and how it communicates: runtime.* and comm.* with `auto` resolved.
struct Placement {
  torch::Device device = torch::kCPU;
  int64_t threads = 1;
  config::Backend backend = config::Backend::kMpi;  ///< kMpi or kNccl, never kAuto
  bool autocast = false;                            ///< bf16 or fp16: the forward passes under autocast
  torch::ScalarType autocast_dtype = torch::kFloat32;
  bool emulate_graphs = false;  ///< runtime.cuda_graphs on the CPU, for tests (SHARDGAN_EMULATE_CUDA_GRAPHS=1)
};

/// Where runtime.cuda_graphs can run: a CUDA device, gradients averaged on the device (NCCL) when there is more than
/// one rank. The settings a capture cannot hold are refused by the configuration's checks (config.cpp).
void check_graphs_placement(const Placement& p, int world) {
  if (!p.device.is_cuda() && !p.emulate_graphs)
    fail("runtime.cuda_graphs = true needs a CUDA device (this rank computes on ", p.device.str(), ")");
  if (p.device.is_cuda() && world > 1 && p.backend != config::Backend::kNccl)
    fail("runtime.cuda_graphs = true with comm.backend = \"mpi\" on ", world,
         " ranks: the gradients go through host memory, which a CUDA graph cannot; use \"nccl\" (or \"auto\")");
}

/// Resolves runtime.* and comm.* and applies what is process-wide (LibTorch's threads, deterministic algorithms).
Placement set_up_runtime(const config::Config& cfg, const comm::MpiSession& session) {
  // Deterministic cuBLAS needs its workspace fixed before CUDA starts: torch::cuda::is_available() below is the
  // process's first CUDA call (it initialises the driver to count the devices).
  const char* workspace = std::getenv("CUBLAS_WORKSPACE_CONFIG");
  if (const auto value = compat::deterministic_cublas_workspace(
          cfg.train.deterministic, cfg.runtime.device != config::Device::kCpu, workspace)) {
    if (workspace != nullptr && session.rank() == 0)
      std::fprintf(stderr, "shardgan-train: CUBLAS_WORKSPACE_CONFIG=%s would fail train.deterministic; using %s\n",
                   workspace, value->c_str());
    setenv("CUBLAS_WORKSPACE_CONFIG", value->c_str(), /*overwrite=*/1);
  }
  const bool cuda_available = torch::cuda::is_available();
  if (cfg.runtime.device == config::Device::kCuda && !cuda_available)
    fail("runtime.device = \"cuda\" but no CUDA device is visible");
  const bool use_cuda =
      cfg.runtime.device == config::Device::kCuda || (cfg.runtime.device == config::Device::kAuto && cuda_available);
  if (cfg.runtime.precision == config::Precision::kFp16 && !use_cuda && !compat::kCpuFp16Autocast)
    fail("runtime.precision = \"fp16\" on the CPU needs LibTorch 2.4 or newer (this is ", TORCH_VERSION,
         "); use \"bf16\" or \"fp32\", or a GPU");
  Placement p;
  if (use_cuda)
    p.device = torch::Device(torch::kCUDA, static_cast<int>(session.local_rank() % torch::cuda::device_count()));
  p.threads = cfg.runtime.threads > 0 ? cfg.runtime.threads : node_threads(session.local_size());
  p.autocast = cfg.runtime.precision != config::Precision::kFp32;
  p.autocast_dtype = cfg.runtime.precision == config::Precision::kFp16 ? torch::kFloat16 : torch::kBFloat16;
  p.backend = cfg.comm.backend != config::Backend::kAuto ? cfg.comm.backend
              : use_cuda                                 ? config::Backend::kNccl
                                                         : config::Backend::kMpi;
  if (p.backend == config::Backend::kNccl && !use_cuda) fail("comm.backend = \"nccl\" needs runtime.device = \"cuda\"");
  if (cfg.runtime.cuda_graphs) {
    const char* emulate = std::getenv("SHARDGAN_EMULATE_CUDA_GRAPHS");
    p.emulate_graphs = !use_cuda && emulate != nullptr && std::string(emulate) == "1";
    check_graphs_placement(p, session.size());
  }
  torch::set_num_threads(static_cast<int>(p.threads));
  if (cfg.train.deterministic) {
    at::globalContext().setDeterministicAlgorithms(true, false);
    // TF32 (on by default for cuDNN convolutions) rounds products to 10 mantissa bits: off for reproducible runs.
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  return p;
}

/// The ranks of a node share the checksum work: local rank l re-hashes shards l, l + n, ... (n ranks on the node), so
/// each node reads every shard once for it, not once per rank — whether the nodes share a file system or each has a
/// copy of its own. A bad shard is reported by the rank that hashed it, and its error ends the job.
data::ShardDataset open_dataset(const config::Config& cfg, int local_rank, int ranks_on_node) {
  struct sysinfo info {};
  sysinfo(&info);
  data::ShardDataset::Options options;
  options.verify = cfg.data.verify;
  options.verify_part = static_cast<std::size_t>(std::max(0, local_rank));
  options.verify_parts = static_cast<std::size_t>(std::max(1, ranks_on_node));
  options.cache = cfg.data.cache;
  options.memory_budget =
      static_cast<uint64_t>(info.freeram) * info.mem_unit / 4 / static_cast<uint64_t>(std::max(1, ranks_on_node));
  return data::ShardDataset(cfg.data.path, options);
}

/// data.read_threads, or its automatic value: one thread copies from memory fast enough; streaming keeps 4 reads in
/// flight, which a cold disk or a parallel file system needs (bench/loader_bench.sh).
int read_threads(const config::Config& cfg, const data::ShardDataset& dataset) {
  if (cfg.data.read_threads > 0) return static_cast<int>(cfg.data.read_threads);
  return dataset.in_memory() ? 1 : 4;
}

/// Images per rank and step: train.batch_size, or train.global_batch split over the ranks.
int64_t per_rank_batch(const config::Config& cfg, int world) {
  if (cfg.train.global_batch == 0) return cfg.train.batch_size;
  if (cfg.train.global_batch % world != 0)
    fail("train.global_batch = ", cfg.train.global_batch, " cannot be split over ", world,
         " rank(s); use a multiple of ", world);
  return cfg.train.global_batch / world;
}

/// The models, initialised from train.seed (LibTorch's global generator: the same weights on every rank).
Gan seeded_gan(const config::Config& cfg, const DataSpec& spec, torch::Device device) {
  torch::manual_seed(static_cast<uint64_t>(cfg.train.seed));
  return Gan(cfg, spec, device);
}

/// What a run is, decided before anything is communicated or written. Every rank builds it; every rank checks the
/// data (a bad shard stops every rank with the same message).
struct Plan {
  Plan(const config::Config& config, const comm::MpiSession& session)
      : cfg(config),
        placement(set_up_runtime(cfg, session)),
        dataset(open_dataset(cfg, session.local_rank(), session.local_size())),
        spec{dataset.shape(), dataset.manifest().class_names},
        batch(per_rank_batch(cfg, session.size())),
        sampler(dataset.size(), batch, session.size(), session.rank(), static_cast<uint64_t>(cfg.train.seed)),
        steps_per_epoch(sampler.steps_per_epoch()),
        total_steps(cfg.train.max_steps > 0 ? std::min(cfg.train.epochs * steps_per_epoch, cfg.train.max_steps)
                                            : cfg.train.epochs * steps_per_epoch),
        gan(seeded_gan(cfg, spec, placement.device)),
        config_toml(cfg.to_toml()) {
    if (cfg.data.sampling == config::Sampling::kClassBalanced)
      sampler.balance_classes(dataset.labels(), static_cast<int64_t>(spec.class_names.size()));
  }

  /// The dry run's report (rank 0).
  void print(const comm::MpiSession& session, const fs::path& run_dir) const;

  const config::Config& cfg;
  Placement placement;
  data::ShardDataset dataset;
  DataSpec spec;
  int64_t batch;  ///< per rank
  data::DistributedSampler sampler;
  int64_t steps_per_epoch;
  int64_t total_steps;
  Gan gan;
  std::string config_toml;
};

void Plan::print(const comm::MpiSession& session, const fs::path& run_dir) const {
  const auto ll = [](int64_t v) { return static_cast<long long>(v); };
  std::printf("shardgan-train plan (dry run: nothing trained)\n");
  std::printf("  world size   %d rank(s), %d on this node (%s)\n", session.size(), session.local_size(),
              session.host().c_str());
  std::printf("  device       %s, %lld thread(s) per rank, precision %s, gradients over %s%s\n",
              placement.device.str().c_str(), ll(placement.threads), config::name(cfg.runtime.precision),
              config::name(placement.backend),
              !cfg.runtime.cuda_graphs   ? ""
              : placement.emulate_graphs ? ", CUDA graphs (emulated on the CPU)"
                                         : ", CUDA graphs");
  std::printf("  data         %s: %lld images %dx%dx%d, %zu classes, %s cache (%d loader thread(s)), checksums %s\n",
              cfg.data.path.c_str(), ll(dataset.size()), spec.shape.height, spec.shape.width, spec.shape.channels,
              spec.class_names.size(), dataset.in_memory() ? "memory" : "stream", read_threads(cfg, dataset),
              cfg.data.verify ? "verified" : "skipped");
  std::printf("  batch        %lld per rank, %lld global, %s sampling\n", ll(batch), ll(sampler.global_batch()),
              config::name(cfg.data.sampling));
  std::printf("  steps        %lld per epoch x %lld epochs = %lld%s\n", ll(steps_per_epoch), ll(cfg.train.epochs),
              ll(total_steps), cfg.train.max_steps > 0 ? " (train.max_steps)" : "");
  const std::string ema = gan.generator_ema ? cat("decay ", cfg.model.g_ema) : "off";
  std::printf(
      "  models       %s: G %lld parameters, D %lld parameters (conditional %s, batchnorm %s, loss %s, EMA G %s, "
      "spectral norm %s)\n",
      config::name(cfg.model.arch), ll(parameter_count(*gan.generator)), ll(parameter_count(*gan.discriminator)),
      cfg.model.conditional ? "yes" : "no", config::name(cfg.model.batchnorm), config::name(cfg.model.loss),
      ema.c_str(), config::name(cfg.model.spectral_norm));
  if (cfg.augment.enabled() || cfg.train.r1_gamma > 0)
    std::printf("  small data   augment \"%s\"%s, R1 %s\n", cfg.augment.policy.c_str(),
                cfg.augment.ada_target > 0 ? cat(" with ADA (target ", cfg.augment.ada_target, ")").c_str() : "",
                cfg.train.r1_gamma > 0
                    ? cat("gamma ", cfg.train.r1_gamma, " every ", cfg.train.r1_every, " steps").c_str()
                    : "off");
  const std::string metrics = cfg.eval.classifier.empty()
                                  ? "off (eval.classifier not set)"
                                  : cat("FD-clf, class consistency, D scores on ", cfg.eval.n, " images every ",
                                        cfg.eval.every_epochs, " epoch(s) (classifier ", cfg.eval.classifier, ")");
  std::printf("  metrics      %s\n", metrics.c_str());
  std::printf("  run dir      %s\n", run_dir.c_str());
}

/// The random draws of one step for the whole global batch, from a generator seeded by (seed, step): z, fake labels
/// and flip decisions. Each rank then takes its rows, so the draws do not depend on the world size.
struct StepNoise {
  Tensor z, fake_labels, flips;
};

StepNoise draw_noise(uint64_t seed, int64_t step, int64_t global_batch, int64_t z_dim, int64_t classes) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(
      rng::stream_seed(seed, rng::Stream::kStepNoise, static_cast<uint64_t>(step)));
  StepNoise n;
  n.z = torch::randn({global_batch, z_dim}, gen, torch::kFloat32);
  n.fake_labels = torch::randint(std::max<int64_t>(classes, 1), {global_batch}, gen, torch::kInt64);
  n.flips = torch::rand({global_batch}, gen, torch::kFloat32) < 0.5;
  return n;
}

/// This rank's part of one step: the batch as loaded (uint8 NHWC: converted inside the step, so a CUDA graph's
/// static copy of it is the smallest) and the step's draws. Labels and flips are undefined when unused.
struct StepInputs {
  int64_t step = 0;
  Tensor images, flips, real_labels, z, fake_labels;
  AugmentDraw augment_real, augment_fake_d, augment_fake_g;  ///< augment.policy set: this rank's rows of the draws

  /// Every tensor of the step (what goes to the device; what a CUDA graph reads).
  std::vector<Tensor*> tensors() {
    std::vector<Tensor*> all{&images, &flips, &real_labels, &z, &fake_labels};
    for (AugmentDraw* d : {&augment_real, &augment_fake_d, &augment_fake_g})
      for (Tensor* t : {&d->color, &d->shift, &d->cutout, &d->gate}) all.push_back(t);
    return all;
  }
};

/// What one step reports: the losses and the seed's D(x), D(G(z)) (mean sigmoid of D's logits).
struct StepLosses {
  Tensor d, g, d_real, d_fake;
  int skipped = 0;  ///< updates skipped by fp16 loss scaling (inf/NaN gradients)
};

/// Means of the logged quantities since the last log line, summed on the device (no device-to-host copy per step).
class LossMeter {
 public:
  void add(const StepLosses& l) {
    const Tensor values = torch::stack({l.d.detach(), l.g.detach(), l.d_real, l.d_fake}).to(torch::kFloat64);
    sum_ = sum_.defined() ? sum_ + values : values;
    ++n_;
  }
  /// [loss_d, loss_g, d_real, d_fake] averaged over the steps since the last call, on the CPU; starts over.
  Tensor take_mean() {
    Tensor mean = (sum_ / static_cast<double>(n_)).to(torch::kCPU).contiguous();
    sum_ = Tensor();
    n_ = 0;
    return mean;
  }

 private:
  Tensor sum_;
  int64_t n_ = 0;
};

/// What is due after a step (output.*, eval.*, comm.* cadences; the last step and a stop force some).
struct Due {
  bool epoch_end = false, log = false, sample = false, check = false, eval = false, checkpoint = false;
};

class Trainer {
 public:
  Trainer(const TrainOptions& options, comm::MpiSession& session);
  /// Trains from the start (or resumed) step to the end; the exit code (0, or kExitStoppedBySignal).
  int run();

 private:
  // Setup, in the order the constructor runs it.
  void resume();
  void connect();
  void open_outputs();
  void open_evaluator();
  // The step.
  bool agree_to_stop();
  StepInputs inputs(data::Batch& batch, int64_t step);
  StepInputs on_device(StepInputs in) const;
  Tensor real_images(const StepInputs& in) const;
  Tensor seen_by_d(const Tensor& images, const AugmentDraw& draw) const;
  StepLosses eager_step(const StepInputs& in);
  StepLosses graphed_step(StepInputs in);
  Tensor d_step(const StepInputs& in, StepLosses& losses);
  Tensor r1_penalty(const Tensor& real, const Tensor& real_logits) const;
  void g_step(const StepInputs& in, const Tensor& fake, StepLosses& losses);
  bool update(torch::nn::Module& module, parallel::GradSync& sync, torch::optim::Optimizer& optimizer,
              CapturableAdam* capturable, const Tensor& loss);
  bool gradients_finite(torch::nn::Module& module);
  Tensor agreed_skip_on_device(torch::nn::Module& module);
  void wait_for_device();
  void ema_update(int64_t done) { gan_.update_ema(done); }
  // After the step.
  Due due_after(int64_t done, bool stop) const;
  void after_step(int64_t done, bool stop);
  void maybe_log(int64_t done, const Due& due);
  void maybe_evaluate(int64_t done, const Due& due);
  void maybe_sample(int64_t done, const Due& due);
  void maybe_checkpoint(int64_t done, const Due& due);
  void evaluate(int64_t done);
  int finish(int64_t done, bool stopped);

  const TrainOptions& options_;
  const config::Config& cfg_;
  const int rank_, world_;
  const bool root_;
  comm::Watchdog watchdog_;  ///< first: it also times the start-up (the data check, reading a checkpoint)
  std::optional<comm::Watchdog::Scope> startup_;
  Plan plan_;
  Gan& gan_;
  const int64_t classes_;
  const std::unique_ptr<GanLoss> loss_;
  AdaptiveAugment ada_;  ///< augment.ada_target > 0: the probability of each augmentation (else always applied)
  int64_t start_step_ = 0;
  std::optional<fs::path> checkpoint_;
  std::unique_ptr<comm::Communicator> comm_;
  std::optional<parallel::GradSync> sync_g_, sync_d_;
  std::vector<Tensor> g_float_buffers_;          ///< G's BatchNorm statistics: averaged over the ranks before use
  std::unique_ptr<report::RunOutputs> outputs_;  ///< rank 0
  report::ReportInfo report_;
  std::unique_ptr<eval::Evaluator> evaluator_;
  Tensor fixed_z_, fixed_labels_;  ///< the sample grids' noise: 8 per class (conditional) or output.sample_count
  LossMeter meter_;
  int64_t skipped_updates_ = 0;           ///< fp16: updates skipped for inf/NaN gradients since the last log row
  std::unique_ptr<comm::Request> fence_;  ///< the previous step's device work (CUDA; complete at once on CPU)
  // runtime.cuda_graphs: the step's work in a graph, on static inputs and outputs, with Adam on the device. Two
  // kinds of step (lazy R1 on one step in train.r1_every), so two graphs.
  struct GraphedStep {
    std::unique_ptr<parallel::StepGraph> graph;
    int64_t runs = 0;   ///< the first kGraphWarmupSteps eagerly, then captured once and replayed
    StepLosses losses;  ///< the graph's outputs
  };
  std::array<GraphedStep, 2> graphs_;  ///< [0]: plain steps, [1]: steps with R1
  std::optional<CapturableAdam> adam_g_, adam_d_;  ///< CUDA or runtime.cuda_graphs: Adam's update (see run())
  StepInputs static_in_;  ///< the graphs' inputs, shared by both
  std::optional<report::MetricsRow> last_row_;
  Clock::time_point start_, last_log_;
  int64_t last_log_step_ = 0;
};

Trainer::Trainer(const TrainOptions& options, comm::MpiSession& session)
    : options_(options),
      cfg_(options.config),
      rank_(session.rank()),
      world_(session.size()),
      root_(rank_ == 0),
      watchdog_(rank_, cfg_.comm.timeout_s),
      // A file that makes a reader spin (HDF5's global-heap reader loops on some corrupt heaps) ends the rank with
      // exit 70 after comm.timeout_s, naming this phase, instead of hanging the job.
      startup_(std::in_place, watchdog_,
               "opening the data set and the checkpoint (a shard or checkpoint that is read forever?)"),
      plan_(cfg_, session),
      gan_(plan_.gan),
      classes_(gan_.num_classes()),
      loss_(make_loss(cfg_.model.loss)),
      ada_(cfg_.augment, plan_.sampler.global_batch(), plan_.placement.device) {
  resume();
  startup_.reset();
  connect();
  if (root_) open_outputs();  // after every rank has read its checkpoint: may move a newer history aside
  open_evaluator();
  const int64_t sample_n = classes_ > 0 ? 8 * classes_ : cfg_.output.sample_count;
  auto sample_gen = at::make_generator<at::CPUGeneratorImpl>(
      rng::stream_seed(static_cast<uint64_t>(cfg_.train.seed), rng::Stream::kSampleGrid));
  fixed_z_ = torch::randn({sample_n, cfg_.model.z_dim}, sample_gen).to(plan_.placement.device);
  if (classes_ > 0) fixed_labels_ = torch::arange(classes_).repeat_interleave(8).to(plan_.placement.device);
}

/// Every rank reads the same checkpoint (shared file system): --resume auto takes the newest valid one.
void Trainer::resume() {
  if (options_.resume == "auto") {
    std::vector<std::string> skipped;
    checkpoint_ = find_latest_checkpoint(options_.run_dir, &skipped);
    if (root_)
      for (const auto& s : skipped)
        std::fprintf(stderr, "shardgan-train: skipping invalid checkpoint: %s\n", s.c_str());
  } else if (!options_.resume.empty()) {
    checkpoint_ = resolve_checkpoint(options_.resume);
  } else if (find_latest_checkpoint(options_.run_dir)) {
    fail(options_.run_dir.string(),
         ": holds checkpoints from an earlier run; use --resume auto to continue it or another --run-dir");
  }
  if (!checkpoint_) return;
  const CheckpointState state = read_checkpoint_state(*checkpoint_);
  if (state.spec.shape != plan_.spec.shape || state.spec.class_names != plan_.spec.class_names)
    fail(checkpoint_->string(), ": checkpoint was trained on data of another shape or other classes");
  // Elastic resume: another world size continues the same data order when the global batch is the same.
  const int64_t global = plan_.sampler.global_batch();
  if (state.global_batch > 0 && state.global_batch != global)
    fail(checkpoint_->string(), ": written with a global batch of ", state.global_batch, " (", state.world_size,
         " rank(s)); this run has ", global, " (", world_, " x ", plan_.batch,
         "). Resume with the same global batch (train.global_batch = ", state.global_batch,
         ") so that training continues where it stopped in the data order");
  if (root_ && state.world_size != world_)
    std::fprintf(stderr, "shardgan-train: resuming a %d-rank run on %d rank(s), global batch %lld as before\n",
                 state.world_size, world_, static_cast<long long>(global));
  load_checkpoint(*checkpoint_, gan_, cfg_.model_hash(), /*optimizers=*/true);
  if (state.loss_scale && gan_.loss_scaler.enabled())
    gan_.loss_scaler.restore(state.loss_scale->scale, state.loss_scale->good_steps);
  if (state.augment) ada_.restore(state.augment->p, state.augment->sign_sum, root_);
  start_step_ = state.step;
  if (root_)
    std::fprintf(stderr, "shardgan-train: resuming from %s (step %lld)\n", checkpoint_->c_str(),
                 static_cast<long long>(start_step_));
}

/// One model on every rank, every collective under the watchdog: the ranks agree on configuration, data and
/// starting point, then rank 0's parameters and buffers are broadcast.
void Trainer::connect() {
  if (plan_.placement.backend == config::Backend::kNccl) {
    const int device = plan_.placement.device.index();
    comm::Watchdog::Scope scope(watchdog_, "creating the NCCL communicator (unique id broadcast, ncclCommInitRank)");
    comm_ = comm::watched(comm::make_nccl_communicator(MPI_COMM_WORLD, device, parallel::current_cuda_stream(device)),
                          watchdog_);
  } else {
    comm_ = comm::watched(comm::make_mpi_communicator(MPI_COMM_WORLD), watchdog_);
  }
  parallel::require_agreement(*comm_, "the resolved configuration", plan_.config_toml);
  std::string data_identity = std::to_string(plan_.dataset.size());
  for (const auto& shard : plan_.dataset.manifest().shards) data_identity += shard.checksum;
  parallel::require_agreement(*comm_, "the data set (manifest checksums)", data_identity);
  parallel::require_agreement(*comm_, "the starting checkpoint",
                              checkpoint_ ? checkpoint_->string() : std::string("none"));
  auto& G = gan_.generator;
  auto& D = gan_.discriminator;
  if (cfg_.model.batchnorm == config::BatchNorm::kSync) G->set_batchnorm_communicator(comm_.get());
  const auto make_syncs = [&] {
    sync_g_.emplace(*comm_, G->parameters(), cfg_.comm.bucket_mb, cfg_.comm.overlap);
    sync_d_.emplace(*comm_, D->parameters(), cfg_.comm.bucket_mb, cfg_.comm.overlap);
  };
  if (cfg_.runtime.cuda_graphs && plan_.placement.device.is_cuda()) {
    // The gradient accumulators GradSync keeps record the stream they are made on: the graphs' (see on_graph_stream).
    parallel::on_graph_stream(plan_.placement.device.index(), make_syncs);
  } else {
    make_syncs();
  }
  std::vector<Tensor> g_state = G->parameters(), d_state = D->parameters();
  for (auto& b : G->buffers()) g_state.push_back(b);
  if (gan_.generator_ema) {
    for (auto& p : gan_.generator_ema->parameters()) g_state.push_back(p);
    for (auto& b : gan_.generator_ema->buffers()) g_state.push_back(b);
  }
  for (auto& b : D->buffers()) d_state.push_back(b);
  sync_g_->broadcast(g_state);
  sync_d_->broadcast(d_state);
  for (const auto& b : G->buffers())
    if (b.is_floating_point()) g_float_buffers_.push_back(b);
}

void Trainer::open_outputs() {
  fs::create_directories(options_.run_dir);
  // A history after the resumed step (corrupt checkpoints --resume auto skipped, or a newer branch an explicit
  // --resume replaces) is moved aside, never deleted: checkpoints here, metrics rows and grids by RunOutputs.
  if (!options_.resume.empty())  // also when --resume auto found nothing valid and starts at step 0
    for (const auto& moved : reject_checkpoints_after(options_.run_dir, start_step_))
      std::fprintf(stderr, "shardgan-train: moved %s aside (newer than the resumed step)\n", moved.c_str());
  write_text_atomically(options_.run_dir / "config.toml", plan_.config_toml);
  outputs_ =
      std::make_unique<report::RunOutputs>(options_.run_dir, start_step_, plan_.total_steps, plan_.steps_per_epoch);
  report_.title = options_.run_dir.filename().string();
  report_.config_toml = plan_.config_toml;
  report_.world_size = world_;
  report_.device = plan_.placement.device.str();
  report_.global_batch = plan_.sampler.global_batch();
  report_.total_steps = plan_.total_steps;
  if (cfg_.model.conditional) report_.class_names = plan_.spec.class_names;
}

/// eval.classifier: the real side is reduced once here, then every evaluation is sharded over the ranks.
void Trainer::open_evaluator() {
  if (cfg_.eval.classifier.empty()) return;
  eval::ClassifierInfo info;
  eval::Classifier classifier = eval::load_classifier(cfg_.eval.classifier, &info, plan_.placement.device);
  eval::require_compatible(cfg_.eval.classifier, info, plan_.spec.shape, plan_.spec.class_names);
  evaluator_ =
      std::make_unique<eval::Evaluator>(classifier, plan_.dataset, cfg_.eval.n, static_cast<uint64_t>(cfg_.train.seed),
                                        cfg_.model.z_dim, comm_.get(), plan_.placement.device);
}

int Trainer::run() {
  if (evaluator_ && start_step_ == 0) evaluate(0);  // the untrained generator: the baseline of every curve
  data::Loader loader(plan_.dataset, plan_.sampler, start_step_, plan_.total_steps, /*depth=*/3,
                      read_threads(cfg_, plan_.dataset));
  gan_.generator->train();
  gan_.discriminator->train();
  if (cfg_.runtime.cuda_graphs) {
    for (auto& g : graphs_)
      g.graph = plan_.placement.emulate_graphs ? parallel::make_emulated_graph()
                                               : parallel::make_cuda_graph(plan_.placement.device.index());
    if (gan_.loss_scaler.enabled()) gan_.loss_scaler.to_device(plan_.placement.device);
  }
  // Adam's update as device work (CapturableAdam): what a graph captures, and on CUDA LibTorch's fused kernel, one
  // launch per model, in eager steps too. After resume: the checkpoint's Adam state is what it updates.
  if (cfg_.runtime.cuda_graphs || plan_.placement.device.is_cuda()) {
    adam_g_.emplace(*gan_.optim_g);
    adam_d_.emplace(*gan_.optim_d);
  }
  start_ = last_log_ = Clock::now();
  last_log_step_ = start_step_;
  enter_training_loop();
  for (int64_t step = start_step_; step < plan_.total_steps; ++step) {
    watchdog_.set_step(step);
    const bool stop = agree_to_stop();
    data::Batch batch = loader.next();
    const StepInputs in = inputs(batch, step);
    const StepLosses losses = cfg_.runtime.cuda_graphs ? graphed_step(in) : eager_step(on_device(in));
    gan_.loss_scaler.update(losses.skipped > 0);
    ema_update(step + 1);
    ada_.after_step(step + 1, *comm_);
    meter_.add(losses);
    skipped_updates_ += losses.skipped;
    // The host waits for the previous step's device work under the watchdog: a CUDA rank queues at most one step
    // ahead, and a hung collective is noticed here rather than in some later copy to the host.
    if (fence_) fence_->wait();
    fence_ = comm_->fence();
    after_step(step + 1, stop);
    if (stop) return finish(step + 1, /*stopped=*/true);
  }
  return finish(plan_.total_steps, /*stopped=*/false);
}

/// A stop signal on any rank stops every rank after this step, with a checkpoint.
bool Trainer::agree_to_stop() {
  const int64_t vote = stop_requested() != 0 ? 1 : 0;
  return (world_ > 1 ? comm_->allreduce(vote, comm::ReduceOp::kSum) : vote) > 0;
}

StepInputs Trainer::inputs(data::Batch& batch, int64_t step) {
  const int64_t b = plan_.batch;
  const auto& shape = plan_.spec.shape;
  const torch::Device device = plan_.placement.device;
  const StepNoise noise = draw_noise(static_cast<uint64_t>(cfg_.train.seed), step, plan_.sampler.global_batch(),
                                     cfg_.model.z_dim, classes_);
  // Dropout and any other draw of LibTorch's global generator on this rank at this step.
  torch::manual_seed(rng::rank_step_seed(static_cast<uint64_t>(cfg_.train.seed), step, rank_));
  StepInputs in;
  in.step = step;
  in.images = torch::from_blob(batch.images.data(), {b, shape.height, shape.width, shape.channels}, torch::kUInt8);
  if (cfg_.data.hflip) in.flips = noise.flips.narrow(0, rank_ * b, b).view({b, 1, 1, 1});
  in.z = noise.z.narrow(0, rank_ * b, b);
  if (classes_ > 0) {
    in.real_labels = torch::from_blob(batch.labels.data(), {b}, torch::kInt64);
    in.fake_labels = noise.fake_labels.narrow(0, rank_ * b, b);
  }
  if (cfg_.augment.enabled()) {
    const auto draw = [&](AugmentRole role) {
      return draw_augment(static_cast<uint64_t>(cfg_.train.seed), step, role, plan_.sampler.global_batch(),
                          shape.height, shape.width)
          .rows(rank_ * b, b, torch::kCPU);
    };
    in.augment_real = draw(AugmentRole::kRealD);
    in.augment_fake_d = draw(AugmentRole::kFakeD);
    in.augment_fake_g = draw(AugmentRole::kFakeG);
  }
  // For a GPU every input goes through pinned memory, so that its copy to the device is asynchronous: from pageable
  // memory LibTorch's copy waits for the stream, and the host could not queue the next step while the device runs
  // this one. (LibTorch's caching host allocator keeps a pinned block until its copy is done.)
  if (device.is_cuda())
    for (Tensor* t : in.tensors())
      if (t->defined()) *t = parallel::pinned_host_like(*t).copy_(*t);
  return in;
}

/// `in` on this rank's device, for an eager step (a CUDA graph copies it into its static inputs instead).
StepInputs Trainer::on_device(StepInputs in) const {
  for (Tensor* t : in.tensors())
    if (t->defined()) *t = t->to(plan_.placement.device, t->scalar_type(), /*non_blocking=*/true);
  return in;
}

/// The batch as the models take it: [-1, 1], NCHW (or channels-last), flipped where the step's draws say.
Tensor Trainer::real_images(const StepInputs& in) const {
  const Tensor real = model::to_model_images(in.images, plan_.placement.device, cfg_.runtime.channels_last);
  return in.flips.defined() ? torch::where(in.flips, real.flip({3}), real) : real;
}

StepLosses Trainer::eager_step(const StepInputs& in) {
  StepLosses losses;
  const Tensor fake = d_step(in, losses);
  g_step(in, fake, losses);
  return losses;
}

/// The same step through a CUDA graph: the (host) inputs are copied into the tensors the graphs read; of each kind of
/// step (with or without R1) the first kGraphWarmupSteps run eagerly on the graph's stream, the next is captured, and
/// every later one replays it. Dropout draws from LibTorch's CUDA generator, seeded for the step as in eager mode
/// (inputs()): a replay reads the seed at launch, so the masks are those of an eager step. ADA's p and sign sum are
/// device tensors the graph reads and adds to in place; the host adjusts p between replays (ada_.after_step).
StepLosses Trainer::graphed_step(StepInputs in) {
  constexpr int64_t kGraphWarmupSteps = 3;
  const bool first = !static_in_.images.defined();
  static_in_.step = in.step;
  const auto statics = static_in_.tensors(), news = in.tensors();
  for (std::size_t i = 0; i < statics.size(); ++i) {
    if (!news[i]->defined()) continue;
    if (first) {
      *statics[i] = news[i]->to(plan_.placement.device, news[i]->scalar_type(), /*non_blocking=*/true, /*copy=*/true);
    } else {
      statics[i]->copy_(*news[i], /*non_blocking=*/true);
    }
  }
  const bool r1 = cfg_.train.r1_gamma > 0 && in.step % cfg_.train.r1_every == 0;  // as d_step decides
  GraphedStep& g = graphs_[r1 ? 1 : 0];
  const auto body = [this, &g] {
    StepLosses losses;
    const Tensor fake = d_step(static_in_, losses);
    g_step(static_in_, fake, losses);
    if (gan_.loss_scaler.on_device()) gan_.loss_scaler.end_step_on_device();
    g.losses = losses;
  };
  if (g.runs < kGraphWarmupSteps) {
    g.graph->warm_up(body);
  } else {
    if (g.runs == kGraphWarmupSteps) g.graph->capture(body);
    g.graph->replay();
  }
  ++g.runs;
  return g.losses;
}

/// `images` as D sees them in this step: augmented by augment.policy with `draw` (with ADA's p), or unchanged.
Tensor Trainer::seen_by_d(const Tensor& images, const AugmentDraw& draw) const {
  return cfg_.augment.enabled() ? augment(images, cfg_.augment, draw, ada_.p()) : images;
}

/// D on real vs (detached) generated images, each augmented, plus R1 when due; returns the generated batch for
/// g_step.
Tensor Trainer::d_step(const StepInputs& in, StepLosses& losses) {
  auto& G = gan_.generator;
  auto& D = gan_.discriminator;
  const int64_t b = in.images.size(0);
  const bool r1 = cfg_.train.r1_gamma > 0 && in.step % cfg_.train.r1_every == 0;
  Tensor fake, objective;
  {
    compat::AutocastGuard autocast(plan_.placement.autocast, plan_.placement.device.type(), plan_.placement.autocast_dtype);
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
  losses.skipped += update(*D, *sync_d_, *gan_.optim_d, adam_d_ ? &*adam_d_ : nullptr, objective) ? 0 : 1;
  return fake;
}

/// Lazy R1 (Mescheder et al. 2018; StyleGAN2): γ/2 · E‖∇ₓD(x)‖² on the images D saw as real, times train.r1_every
/// because it runs on one step in r1_every. The mean over this rank's images: averaging gradients over the ranks makes
/// it the global batch's mean.
Tensor Trainer::r1_penalty(const Tensor& real, const Tensor& real_logits) const {
  const Tensor grad = torch::autograd::grad({real_logits.sum()}, {real}, /*grad_outputs=*/{}, /*retain_graph=*/true,
                                            /*create_graph=*/true)[0];
  const double weight = cfg_.train.r1_gamma / 2 * static_cast<double>(cfg_.train.r1_every);
  return grad.to(torch::kFloat32).square().flatten(1).sum(1).mean() * weight;
}

/// G through D, whose parameters need no gradients here.
void Trainer::g_step(const StepInputs& in, const Tensor& fake, StepLosses& losses) {
  auto& D = gan_.discriminator;
  for (auto& p : D->parameters()) p.set_requires_grad(false);
  {
    compat::AutocastGuard autocast(plan_.placement.autocast, plan_.placement.device.type(), plan_.placement.autocast_dtype);
    losses.g = loss_->generator(D->forward(seen_by_d(fake, in.augment_fake_g), in.fake_labels).to(torch::kFloat32));
  }
  const bool stepped = update(*gan_.generator, *sync_g_, *gan_.optim_g, adam_g_ ? &*adam_g_ : nullptr, losses.g);
  for (auto& p : D->parameters()) p.set_requires_grad(true);
  losses.skipped += stepped ? 0 : 1;
}

/// One optimiser step of `module` on `loss`, with gradients averaged over the ranks; false when fp16 loss scaling
/// found an inf or NaN and every rank skipped it. The order is the contract of GradSync: hooks armed before
/// backward, buckets waited for before the step.
bool Trainer::update(torch::nn::Module& module, parallel::GradSync& sync, torch::optim::Optimizer& optimizer,
                     CapturableAdam* capturable, const Tensor& loss) {
  compat::clear_gradients(module);
  sync.prepare();
  gan_.loss_scaler.scale(loss).backward();
  sync.finish();
  if (gan_.loss_scaler.on_device()) {  // runtime.cuda_graphs with fp16: the check and the update are in the graph
    capturable->step(agreed_skip_on_device(module));
    return true;  // a skip is counted on the device (LossScaler::note_update)
  }
  if (!gradients_finite(module)) return false;
  if (capturable != nullptr) {  // CUDA or runtime.cuda_graphs (see run())
    capturable->step();
  } else {
    optimizer.step();
  }
  return true;
}

/// The loss scaler's check of the averaged gradients, agreed by all ranks (any rank's inf skips the update on all).
bool Trainer::gradients_finite(torch::nn::Module& module) {
  if (!gan_.loss_scaler.enabled()) return true;
  const Tensor found = gan_.loss_scaler.unscale_and_check(module.parameters());
  wait_for_device();
  const int64_t bad = found.item<bool>() ? 1 : 0;
  return (world_ > 1 ? comm_->allreduce(bad, comm::ReduceOp::kSum) : bad) == 0;
}

/// The same check as device work (runtime.cuda_graphs): this rank's verdict as a float flag, summed over the ranks by
/// an all-reduce queued on the stream (no host wait), then 0 or 1 on every rank.
Tensor Trainer::agreed_skip_on_device(torch::nn::Module& module) {
  Tensor flag = gan_.loss_scaler.unscale_and_check(module.parameters()).to(torch::kFloat32);
  if (world_ > 1) {
    auto request = comm_->allreduce_async(flag.data_ptr(), 1, comm::DType::kFloat32, comm::ReduceOp::kSum);
    request->wait();
  }
  const Tensor skip = (flag > 0).to(torch::kFloat32);
  gan_.loss_scaler.note_update(skip);
  return skip;
}

/// Every host read of this step's device values (fp16's verdict, log means, checkpoints) waits here first, under
/// the watchdog: a hung peer's collective is then a timeout, not a copy that never returns. Free on the CPU.
void Trainer::wait_for_device() {
  comm_->fence()->wait();
}

Due Trainer::due_after(int64_t done, bool stop) const {
  const int64_t epoch = (done - 1) / plan_.steps_per_epoch;  // the epoch the step belonged to
  const bool last = done == plan_.total_steps;
  Due d;
  d.epoch_end = done % plan_.steps_per_epoch == 0;
  d.log = done % cfg_.train.log_every == 0 || last;
  d.sample = (d.epoch_end && (epoch + 1) % cfg_.output.sample_every_epochs == 0) ||
             (cfg_.output.sample_every_steps > 0 && done % cfg_.output.sample_every_steps == 0) || last;
  d.checkpoint = done % cfg_.output.checkpoint_every_steps == 0 || last || stop;
  d.check = d.checkpoint || done % cfg_.comm.check_every == 0;
  d.eval = evaluator_ && ((d.epoch_end && (epoch + 1) % cfg_.eval.every_epochs == 0) || last);
  return d;
}

void Trainer::after_step(int64_t done, bool stop) {
  const Due due = due_after(done, stop);
  if (due.log || due.sample || due.check || due.eval || due.checkpoint) wait_for_device();
  maybe_log(done, due);
  // Local BatchNorm: each rank's running statistics come from its own batches; average them before they are used.
  if (due.sample || due.check || due.eval) parallel::average_tensors(*comm_, g_float_buffers_);
  if (due.check) parallel::check_consistency(*comm_, gan_.named_tensors(), done);
  maybe_evaluate(done, due);
  maybe_sample(done, due);
  maybe_checkpoint(done, due);
}

/// A metrics.jsonl row (means over the ranks and the steps since the last one) and the progress line.
void Trainer::maybe_log(int64_t done, const Due& due) {
  const int64_t epoch = (done - 1) / plan_.steps_per_epoch;
  if (due.log) {
    if (gan_.loss_scaler.on_device()) skipped_updates_ += gan_.loss_scaler.take_skips();
    const Tensor mean = meter_.take_mean();
    if (world_ > 1) parallel::allreduce(*comm_, mean, comm::ReduceOp::kAvg);
    const auto now = Clock::now();
    if (root_) {
      const auto m = mean.accessor<double, 1>();
      report::MetricsRow row;
      row.step = done;
      row.epoch = epoch;
      row.loss_d = m[0];
      row.loss_g = m[1];
      row.d_real = m[2];
      row.d_fake = m[3];
      row.img_per_s = static_cast<double>((done - last_log_step_) * plan_.sampler.global_batch()) /
                      std::max(1e-9, std::chrono::duration<double>(now - last_log_).count());
      row.elapsed_s = std::chrono::duration<double>(now - start_).count();
      if (gan_.loss_scaler.enabled()) {
        row.loss_scale = gan_.loss_scaler.value();
        row.skipped_updates = skipped_updates_;
      }
      if (ada_.enabled()) row.augment_p = ada_.value();
      outputs_->log(row);
      last_row_ = row;
    }
    last_log_ = now;
    last_log_step_ = done;
    skipped_updates_ = 0;
  }
  if (root_) outputs_->progress(done, epoch, last_row_ ? &*last_row_ : nullptr, due.log);
}

void Trainer::maybe_evaluate(int64_t done, const Due& due) {
  if (!due.eval) return;
  const auto eval_start = Clock::now();
  evaluate(done);
  last_log_ += Clock::now() - eval_start;  // img/s counts training time only
}

void Trainer::evaluate(int64_t done) {
  const eval::EvalResult r = evaluator_->evaluate(gan_.sampling_generator(), *gan_.discriminator, classes_ > 0);
  gan_.generator->train();
  if (!root_) return;
  outputs_->log_eval(report::eval_row(r, done, static_cast<double>(done) / static_cast<double>(plan_.steps_per_epoch),
                                      gan_.generator_ema ? "ema" : "g"),
                     plan_.spec.class_names);
  std::fprintf(stderr, "eval at step %lld: FD-clf %.4g%s, D(real) %.3f, D(fake) %.3f (%lld images, %.1f s)\n",
               static_cast<long long>(done), r.fd_clf,
               r.class_consistency ? cat(", class consistency ", *r.class_consistency * 100, " %").c_str() : "",
               r.d_real, r.d_fake, static_cast<long long>(r.n), r.seconds);
}

/// samples/epoch-NNNN.png at epoch ends, samples/step-NNNNNN.png between them; the loss plot and report with them.
void Trainer::maybe_sample(int64_t done, const Due& due) {
  if (!root_ || !due.sample) return;
  Tensor images;
  {
    torch::NoGradGuard no_grad;
    images = gan_.sampling_generator().forward(fixed_z_, fixed_labels_);
  }
  gan_.generator->train();
  char name[32];
  if (due.epoch_end) {
    std::snprintf(name, sizeof(name), "epoch-%04lld.png", static_cast<long long>(done / plan_.steps_per_epoch));
  } else {
    std::snprintf(name, sizeof(name), "step-%06lld.png", static_cast<long long>(done));
  }
  outputs_->write_samples(name, report::make_grid(images, 8));
  outputs_->write_loss_plot();
  outputs_->write_report(report_);
}

void Trainer::maybe_checkpoint(int64_t done, const Due& due) {
  if (!due.checkpoint) return;
  std::optional<AugmentState> augment;
  if (ada_.enabled()) {  // collective: the ranks' signs since p's last adjustment are summed
    const auto [p, sign_sum] = ada_.state(*comm_);
    augment = AugmentState{p, sign_sum};
  }
  for (auto* adam : {adam_g_ ? &*adam_g_ : nullptr, adam_d_ ? &*adam_d_ : nullptr})
    if (adam != nullptr) adam->store_host_step();  // CapturableAdam: its step count, as LibTorch saves it
  if (!root_) return;
  CheckpointState state;
  state.augment = augment;
  state.step = done;
  state.epoch = done / plan_.steps_per_epoch;
  state.world_size = world_;
  state.global_batch = plan_.sampler.global_batch();
  state.samples_seen = done * state.global_batch;
  state.model_hash = cfg_.model_hash();
  state.spec = plan_.spec;
  if (gan_.loss_scaler.enabled())
    state.loss_scale = LossScaleState{gan_.loss_scaler.value(), gan_.loss_scaler.good_steps()};
  save_checkpoint(options_.run_dir, gan_, state, plan_.config_toml, cfg_.output.keep_checkpoints);
}

int Trainer::finish(int64_t done, bool stopped) {
  if (root_) {
    outputs_->finish_progress();
    if (stopped) {
      std::fprintf(stderr,
                   "shardgan-train: stopped by a signal after step %lld; checkpoint written; exit code %d (resume "
                   "with --resume auto)\n",
                   static_cast<long long>(done), kExitStoppedBySignal);
    } else {
      std::fprintf(stderr, "shardgan-train: done, %lld steps; run folder %s\n", static_cast<long long>(done),
                   options_.run_dir.c_str());
    }
  }
  comm_->barrier();
  return stopped ? kExitStoppedBySignal : 0;
}

}  // namespace

void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // tensors up to 1 GiB come from the heap, not from fresh mmaps
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // and freed heap memory is kept for the next step
}

int train(const TrainOptions& options, comm::MpiSession& session) {
  if (options.dry_run) {
    const Plan plan(options.config, session);
    if (session.rank() == 0) plan.print(session, options.run_dir);
    return 0;
  }
  Trainer trainer(options, session);
  try {
    return trainer.run();
  } catch (const std::exception& e) {
    // With other ranks alive, tearing the trainer down (NCCL's destroy, a device free) can wait for them forever:
    // say what went wrong and end the job first.
    if (session.size() > 1) {
      std::fprintf(stderr, "shardgan-train: error: rank %d: %s\n", session.rank(), error_message(e).c_str());
      std::fflush(stderr);
      comm::MpiSession::abort(1);
    }
    throw;
  }
}

}  // namespace shardgan::train
