// The training loop: it ties the parts together. A run is
//   Plan (plan.hpp: what, where, how long; resolved and checked once)  →  ResumePoint (resume.hpp)
//   → connect: communicators, the agreement checks, rank 0's state broadcast (model_state.hpp)
//   → per step: stop vote → loader → step_inputs → StepExecutor (eager or graphed) running GanStep
//     → EMA, ADA's p → LossMeter → fence → Cadence (what is due) → outputs (log, evaluate, sample, check, checkpoint)
// A new loss goes into loss.hpp, a new cadence into cadence.hpp, a new output into after_step below.
#include "train/trainer.hpp"

#include <malloc.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <type_traits>
#include <variant>

#include "comm/communicator.hpp"
#include "comm/watchdog.hpp"
#include "data/loader.hpp"
#include "eval/evaluator.hpp"
#include "parallel/consistency.hpp"
#include "parallel/cuda_graph.hpp"
#include "parallel/cuda_stream.hpp"
#include "parallel/grad_sync.hpp"
#include "parallel/tensor_comm.hpp"
#include "report/grid.hpp"
#include "report/run_outputs.hpp"
#include "train/augment.hpp"
#include "train/cadence.hpp"
#include "train/checkpoint.hpp"
#include "train/grad_compression.hpp"
#include "train/loss_meter.hpp"
#include "train/model_state.hpp"
#include "train/resume.hpp"
#include "train/run_guard.hpp"
#include "train/step.hpp"
#include "train/step_executor.hpp"
#include "train/stop_signal.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/random.hpp"
#include "util/run_lock.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using torch::Tensor;

namespace {

/// The plan of this rank, the process prepared for it (not for a dry run, which changes nothing).
Plan make_plan(const TrainOptions& options, const comm::MpiSession& session, bool apply) {
  if (apply) prepare_process(options.config, session.rank() == 0);
  const RankInfo rank = RankInfo::of(session);
  const Placement placement = resolve_placement(options.config, rank, static_cast<bool>(options.make_graph));
  if (apply) apply_placement(options.config, placement);
  return Plan(options.config, rank, placement);
}

/// Rank 0's lock on the run folder (created if missing: the one write before the lock); none on the other ranks.
std::optional<RunLock> lock_run_folder(const fs::path& run_dir, bool root) {
  if (!root) return std::nullopt;
  fs::create_directories(run_dir);
  return std::optional<RunLock>(std::in_place, run_dir);
}

class Trainer {
 public:
  /// Plans the run and reads its starting point; nothing is communicated or written yet.
  Trainer(const TrainOptions& options, comm::MpiSession& session);
  /// Connects the ranks, opens the outputs and trains to the end; the exit code (0, or kExitStoppedBySignal).
  int run();

 private:
  void connect();
  void open_outputs();
  std::vector<std::pair<std::string, report::HParamValue>> hparams() const;
  std::vector<std::string> metric_tags() const;
  void open_evaluator();
  bool agree_to_stop();
  void after_step(int64_t done, bool stop);
  void log(int64_t done);
  void evaluate(int64_t done);
  void sample(int64_t done, const Due& due);
  void checkpoint(int64_t done);
  NamedSyncs named_syncs() { return {{"generator", &*sync_g_}, {"discriminator", &*sync_d_}}; }
  int finish(int64_t done, bool stopped);

  const TrainOptions& options_;
  const config::Config& cfg_;
  const int rank_, world_;
  const bool root_;
  comm::Watchdog watchdog_;  ///< first: it also times the start-up (the data check, reading a checkpoint)
  std::optional<comm::Watchdog::Scope> startup_;
  Plan plan_;
  /// Rank 0: the run folder's one writer, from before anything in it is read or written until the Trainer goes.
  std::optional<RunLock> lock_;
  Gan& gan_;
  AdaptiveAugment ada_;  ///< augment.ada_target > 0: the probability of each augmentation (else always applied)
  ResumePoint start_;
  const Cadence cadence_;
  std::unique_ptr<comm::Communicator> comm_;
  std::optional<parallel::GradSync> sync_g_, sync_d_;
  std::vector<Tensor> g_float_buffers_;          ///< G's BatchNorm statistics: averaged over the ranks before use
  std::unique_ptr<report::RunOutputs> outputs_;  ///< rank 0
  report::ReportInfo report_;
  std::unique_ptr<eval::Evaluator> evaluator_;
  std::optional<GanStep> step_;
  std::unique_ptr<StepExecutor> executor_;
  Tensor fixed_z_, fixed_labels_;  ///< the sample grids' noise: 8 per class (conditional) or output.sample_count
  LossMeter meter_;
  std::unique_ptr<comm::Request> fence_;  ///< the previous step's device work (CUDA; complete at once on CPU)
  std::optional<report::MetricsRow> last_row_;
  Clock::time_point started_, last_log_;
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
      plan_(make_plan(options, session, /*apply=*/true)),
      lock_(lock_run_folder(options.run_dir, root_)),
      gan_(plan_.gan),
      ada_(cfg_.augment, plan_.sampler.global_batch(), plan_.placement.device),
      start_(choose_resume_point(options.resume, options.run_dir, plan_, root_)),
      cadence_(cfg_, plan_.steps_per_epoch, plan_.total_steps, !cfg_.eval.classifier.empty()) {
  restore(start_, plan_, gan_, ada_, root_);
  startup_.reset();
}

int Trainer::run() {
  connect();
  if (root_) open_outputs();  // after every rank has read its checkpoint: may move a newer history aside
  open_evaluator();
  const int64_t classes = gan_.num_classes();
  auto sample_gen = at::make_generator<at::CPUGeneratorImpl>(
      rng::stream_seed(static_cast<uint64_t>(cfg_.train.seed), rng::Stream::kSampleGrid));
  const int64_t sample_n = classes > 0 ? 8 * classes : cfg_.output.sample_count;
  fixed_z_ = torch::randn({sample_n, cfg_.model.z_dim}, sample_gen).to(plan_.placement.device);
  if (classes > 0) fixed_labels_ = torch::arange(classes).repeat_interleave(8).to(plan_.placement.device);
  if (evaluator_ && start_.step == 0) evaluate(0);  // the untrained generator: the baseline of every curve

  data::Loader loader(plan_.dataset, plan_.sampler, start_.step, plan_.total_steps, /*depth=*/3, plan_.read_threads());
  gan_.generator->train();
  gan_.discriminator->train();
  // After resume: the checkpoint's Adam state is what the update rules update.
  step_.emplace(plan_, gan_, *comm_, *sync_g_, *sync_d_, ada_);
  executor_ = make_step_executor(plan_, gan_, options_.make_graph);
  started_ = last_log_ = Clock::now();
  last_log_step_ = start_.step;
  enter_training_loop();
  for (int64_t step = start_.step; step < plan_.total_steps; ++step) {
    watchdog_.set_step(step);
    const bool stop = agree_to_stop();
    data::Batch batch = loader.next();
    const StepLosses losses = executor_->run(*step_, step_inputs(plan_, batch, step));
    gan_.update_ema(step + 1);
    ada_.after_step(step + 1, *comm_);
    meter_.add(losses);
    // The host waits for the previous step's device work under the watchdog: a CUDA rank queues at most one step
    // ahead, and a hung collective is noticed here rather than in some later copy to the host.
    if (fence_) fence_->wait();
    fence_ = comm_->fence();
    after_step(step + 1, stop);
    if (stop) return finish(step + 1, /*stopped=*/true);
  }
  return finish(plan_.total_steps, /*stopped=*/false);
}

/// One model on every rank, every collective under the watchdog: the ranks agree on configuration, data and
/// starting point, then rank 0's state (every tensor of the registry) is broadcast.
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
                              start_.checkpoint ? start_.checkpoint->string() : std::string("none"));
  auto& G = gan_.generator;
  if (cfg_.model.batchnorm == config::BatchNorm::kSync) G->set_batchnorm_communicator(comm_.get());
  const auto make_syncs = [&] {
    sync_g_.emplace(*comm_, G->parameters(), cfg_.comm.bucket_mb, cfg_.comm.overlap, /*single_rank_too=*/false,
                    grad_compression(cfg_, 0));
    sync_d_.emplace(*comm_, gan_.discriminator->parameters(), cfg_.comm.bucket_mb, cfg_.comm.overlap,
                    /*single_rank_too=*/false, grad_compression(cfg_, 1));
  };
  if (plan_.placement.graphs && plan_.placement.device.is_cuda()) {
    // The gradient accumulators GradSync keeps record the stream they are made on: the graphs' (see on_graph_stream).
    parallel::on_graph_stream(plan_.placement.device.index(), make_syncs);
  } else {
    make_syncs();
  }
  if (world_ > 1)
    for (const auto& [name, tensor] : state_tensors(gan_)) parallel::broadcast(*comm_, tensor, 0);
  if (start_.checkpoint)
    restore_compression(*start_.checkpoint, named_syncs(), rank_, world_, cfg_.comm.powersgd_rank, root_);
  for (const auto& b : G->buffers())
    if (b.is_floating_point()) g_float_buffers_.push_back(b);
}

void Trainer::open_outputs() {
  fs::create_directories(options_.run_dir);
  // A history after the resumed step (corrupt checkpoints --resume auto skipped, or a newer branch an explicit
  // --resume replaces) is moved aside, never deleted: checkpoints here, metrics rows and grids by RunOutputs.
  if (!options_.resume.empty())  // also when --resume auto found nothing valid and starts at step 0
    for (const auto& moved : reject_checkpoints_after(options_.run_dir, start_.step))
      std::fprintf(stderr, "shardgan-train: moved %s aside (newer than the resumed step)\n", moved.c_str());
  write_text_atomically(options_.run_dir / "config.toml", plan_.config_toml);
  outputs_ =
      std::make_unique<report::RunOutputs>(options_.run_dir, start_.step, plan_.total_steps, plan_.steps_per_epoch);
  report_.title = options_.run_dir.filename().string();
  report_.config_toml = plan_.config_toml;
  report_.world_size = world_;
  report_.device = plan_.placement.device.str();
  report_.global_batch = plan_.sampler.global_batch();
  report_.total_steps = plan_.total_steps;
  if (cfg_.model.conditional) report_.class_names = plan_.spec.class_names;
  if (cfg_.output.tensorboard) outputs_->open_tensorboard(plan_.config_toml, hparams(), metric_tags());
}

/// The HParams view's hyperparameters: the keys that shape the model and its training, and the run's size.
std::vector<std::pair<std::string, report::HParamValue>> Trainer::hparams() const {
  std::vector<std::pair<std::string, report::HParamValue>> out;
  for (const auto& [key, value] : cfg_.entries()) {
    const std::string section = key.substr(0, key.find('.'));
    if (section != "model" && section != "optim" && section != "train" && section != "augment" &&
        key != "runtime.precision")
      continue;
    std::visit(
        [&, k = key](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::string> || std::is_same_v<V, bool>) {
            out.emplace_back(k, v);
          } else {
            out.emplace_back(k, static_cast<double>(v));
          }
        },
        value);
  }
  out.emplace_back("ranks", static_cast<double>(world_));
  out.emplace_back("global_batch", static_cast<double>(plan_.sampler.global_batch()));
  return out;
}

/// The HParams view's metrics: the last losses, and the last evaluation's numbers when training evaluates.
std::vector<std::string> Trainer::metric_tags() const {
  std::vector<std::string> tags{"train/loss_d", "train/loss_g"};
  if (!cfg_.eval.classifier.empty()) {
    tags.emplace_back("eval/fd_clf");
    if (cfg_.model.conditional) tags.emplace_back("eval/class_consistency");
  }
  return tags;
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

/// A stop signal on any rank stops every rank after this step, with a checkpoint.
bool Trainer::agree_to_stop() {
  const int64_t vote = stop_requested() != 0 ? 1 : 0;
  return (world_ > 1 ? comm_->allreduce(vote, comm::ReduceOp::kSum) : vote) > 0;
}

void Trainer::after_step(int64_t done, bool stop) {
  const Due due = cadence_.after(done, stop);
  if (due.any()) step_->wait_for_device();
  if (due.log) log(done);
  if (root_) outputs_->progress(done, cadence_.epoch_of(done), last_row_ ? &*last_row_ : nullptr, due.log);
  // Local BatchNorm: each rank's running statistics come from its own batches; average them before they are used.
  if (due.reads_buffers()) parallel::average_tensors(*comm_, g_float_buffers_);
  if (due.check) parallel::check_consistency(*comm_, state_tensors(gan_, StateView::kAgreed), done);
  if (due.eval) {
    const auto eval_start = Clock::now();
    evaluate(done);
    last_log_ += Clock::now() - eval_start;  // img/s counts training time only
  }
  if (due.sample) sample(done, due);
  if (due.checkpoint) checkpoint(done);
}

/// A metrics.jsonl row (means over the ranks and the steps since the last one) and the progress line.
void Trainer::log(int64_t done) {
  const int64_t skipped = gan_.loss_scaler.take_skips();
  const Tensor mean = meter_.take_mean();
  if (world_ > 1) parallel::allreduce(*comm_, mean, comm::ReduceOp::kAvg);
  const auto now = Clock::now();
  if (root_) {
    const auto m = mean.accessor<double, 1>();
    report::MetricsRow row;
    row.step = done;
    row.epoch = cadence_.epoch_of(done);
    row.loss_d = m[0];
    row.loss_g = m[1];
    row.d_real = m[2];
    row.d_fake = m[3];
    row.grad_norm_d = m[4];
    row.grad_norm_g = m[5];
    row.lr_g = cfg_.optim.lr_g;
    row.lr_d = cfg_.optim.lr_d;
    row.img_per_s = static_cast<double>((done - last_log_step_) * plan_.sampler.global_batch()) /
                    std::max(1e-9, std::chrono::duration<double>(now - last_log_).count());
    row.elapsed_s = std::chrono::duration<double>(now - started_).count();
    if (gan_.loss_scaler.enabled()) {
      row.loss_scale = gan_.loss_scaler.value();
      row.skipped_updates = skipped;
    }
    if (ada_.enabled()) row.augment_p = ada_.value();
    if (world_ > 1)
      row.allreduce_bytes = static_cast<double>(sync_g_->bytes_per_sync(done - 1) + sync_d_->bytes_per_sync(done - 1));
    outputs_->log(row);
    last_row_ = row;
  }
  last_log_ = now;
  last_log_step_ = done;
}

void Trainer::evaluate(int64_t done) {
  const eval::EvalResult r =
      evaluator_->evaluate(gan_.sampling_generator(), *gan_.discriminator, gan_.num_classes() > 0);
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
void Trainer::sample(int64_t done, const Due& due) {
  if (!root_) return;
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
  outputs_->write_samples(name, report::make_grid(images, 8), done);
  outputs_->write_loss_plot();
  outputs_->write_report(report_);
}

void Trainer::checkpoint(int64_t done) {
  std::optional<AugmentState> augment;
  if (ada_.enabled()) {  // collective: the ranks' signs since p's last adjustment are summed
    const auto [p, sign_sum] = ada_.state(*comm_);
    augment = AugmentState{p, sign_sum};
  }
  step_->before_checkpoint();
  std::vector<std::pair<std::string, std::string>> extra;
  if (std::string bytes = compression_checkpoint(*comm_, named_syncs(), cfg_.comm.powersgd_rank); !bytes.empty())
    extra.emplace_back(kCompressionFile, std::move(bytes));
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
  save_checkpoint(options_.run_dir, gan_, state, plan_.config_toml, cfg_.output.keep_checkpoints, extra);
  outputs_->flush_tensorboard();
}

int Trainer::finish(int64_t done, bool stopped) {
  if (root_) {
    outputs_->finish_progress();
    outputs_->end_tensorboard(/*finished=*/!stopped);
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
  // The trainer outlives the guard: on an error with other ranks alive the job ends (MPI_Abort) before anything
  // that holds a communicator is torn down — NCCL's destroy, or a device free, could wait for them forever.
  std::optional<Trainer> trainer;
  return run_or_abort(session, "shardgan-train", [&] {
    if (options.dry_run) {
      const Plan plan = make_plan(options, session, /*apply=*/false);
      if (session.rank() == 0) {
        const std::string text = options.json ? plan_json(plan, options.run_dir) : plan_text(plan, options.run_dir);
        std::fwrite(text.data(), 1, text.size(), stdout);
      }
      return 0;
    }
    trainer.emplace(options, session);
    return trainer->run();
  });
}

}  // namespace shardgan::train
