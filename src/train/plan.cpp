#include "train/plan.hpp"

#include <sys/sysinfo.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "compat/torch_compat.hpp"
#include "util/error.hpp"

namespace shardgan::train {
namespace fs = std::filesystem;

RankInfo RankInfo::of(const comm::MpiSession& session) {
  RankInfo r;
  r.rank = session.rank();
  r.world = session.size();
  r.local_rank = session.local_rank();
  r.local_size = session.local_size();
  r.host = session.host();
  r.cuda_available = torch::cuda::is_available();  // the process's first CUDA call: it starts the driver
  r.cuda_devices = r.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  r.cores = std::max(1u, std::thread::hardware_concurrency());
  return r;
}

Placement resolve_placement(const config::Config& cfg, const RankInfo& rank, bool emulated_graphs) {
  if (cfg.runtime.device == config::Device::kCuda && !rank.cuda_available)
    fail("runtime.device = \"cuda\" but no CUDA device is visible");
  const bool use_cuda =
      cfg.runtime.device == config::Device::kCuda || (cfg.runtime.device == config::Device::kAuto && rank.cuda_available);
  if (cfg.runtime.precision == config::Precision::kFp16 && !use_cuda && !compat::kCpuFp16Autocast)
    fail("runtime.precision = \"fp16\" on the CPU needs LibTorch 2.4 or newer (this is ", TORCH_VERSION,
         "); use \"bf16\" or \"fp32\", or a GPU");
  Placement p;
  if (use_cuda) p.device = torch::Device(torch::kCUDA, static_cast<int>(rank.local_rank % rank.cuda_devices));
  p.threads = cfg.runtime.threads > 0
                  ? cfg.runtime.threads
                  : std::max<int64_t>(1, rank.cores / static_cast<unsigned>(std::max(1, rank.local_size)));
  p.autocast = cfg.runtime.precision != config::Precision::kFp32;
  p.autocast_dtype = cfg.runtime.precision == config::Precision::kFp16 ? torch::kFloat16 : torch::kBFloat16;
  p.backend = cfg.comm.backend != config::Backend::kAuto ? cfg.comm.backend
              : use_cuda                                 ? config::Backend::kNccl
                                                         : config::Backend::kMpi;
  if (p.backend == config::Backend::kNccl && !use_cuda) fail("comm.backend = \"nccl\" needs runtime.device = \"cuda\"");
  // runtime.cuda_graphs: a CUDA device, gradients averaged on the device (NCCL) when there is more than one rank. The
  // settings a capture cannot hold are refused by the configuration's checks (config.cpp).
  p.graphs = cfg.runtime.cuda_graphs;
  p.emulated_graphs = p.graphs && !use_cuda && emulated_graphs;
  if (p.graphs && !use_cuda && !p.emulated_graphs)
    fail("runtime.cuda_graphs = true needs a CUDA device (this rank computes on ", p.device.str(), ")");
  if (p.graphs && use_cuda && rank.world > 1 && p.backend != config::Backend::kNccl)
    fail("runtime.cuda_graphs = true with comm.backend = \"mpi\" on ", rank.world,
         " ranks: the gradients go through host memory, which a CUDA graph cannot; use \"nccl\" (or \"auto\")");
  return p;
}

void prepare_process(const config::Config& cfg, bool root) {
  const char* workspace = std::getenv("CUBLAS_WORKSPACE_CONFIG");
  if (const auto value = compat::deterministic_cublas_workspace(
          cfg.train.deterministic, cfg.runtime.device != config::Device::kCpu, workspace)) {
    if (workspace != nullptr && root)
      std::fprintf(stderr, "shardgan-train: CUBLAS_WORKSPACE_CONFIG=%s would fail train.deterministic; using %s\n",
                   workspace, value->c_str());
    setenv("CUBLAS_WORKSPACE_CONFIG", value->c_str(), /*overwrite=*/1);
  }
}

void apply_placement(const config::Config& cfg, const Placement& placement) {
  torch::set_num_threads(static_cast<int>(placement.threads));
  if (cfg.train.deterministic) {
    at::globalContext().setDeterministicAlgorithms(true, false);
    // TF32 (on by default for cuDNN convolutions) rounds products to 10 mantissa bits: off for reproducible runs.
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
}

int64_t per_rank_batch(const config::Config& cfg, int world) {
  if (cfg.train.global_batch == 0) return cfg.train.batch_size;
  if (cfg.train.global_batch % world != 0)
    fail("train.global_batch = ", cfg.train.global_batch, " cannot be split over ", world,
         " rank(s); use a multiple of ", world);
  return cfg.train.global_batch / world;
}

namespace {

data::Cache data_cache(config::Cache cache) {
  switch (cache) {
    case config::Cache::kMemory:
      return data::Cache::kMemory;
    case config::Cache::kStream:
      return data::Cache::kStream;
    case config::Cache::kAuto:
      break;
  }
  return data::Cache::kAuto;
}

/// The ranks of a node share the checksum work: local rank l re-hashes shards l, l + n, ... (n ranks on the node), so
/// each node reads every shard once for it, not once per rank — whether the nodes share a file system or each has a
/// copy of its own. A bad shard is reported by the rank that hashed it, and its error ends the job.
data::ShardDataset open_dataset(const config::Config& cfg, const RankInfo& rank) {
  struct sysinfo info {};
  sysinfo(&info);
  data::ShardDataset::Options options;
  options.verify = cfg.data.verify;
  options.verify_part = static_cast<std::size_t>(std::max(0, rank.local_rank));
  options.verify_parts = static_cast<std::size_t>(std::max(1, rank.local_size));
  options.cache = data_cache(cfg.data.cache);
  options.memory_budget =
      static_cast<uint64_t>(info.freeram) * info.mem_unit / 4 / static_cast<uint64_t>(std::max(1, rank.local_size));
  return data::ShardDataset(cfg.data.path, options);
}

/// The models, initialised from train.seed (LibTorch's global generator, seeded once here: the same weights on every
/// rank; the step's draws come from generators of their own).
Gan seeded_gan(const config::Config& cfg, const DataSpec& spec, torch::Device device) {
  torch::manual_seed(static_cast<uint64_t>(cfg.train.seed));
  return Gan(cfg, spec, device);
}

int64_t total_steps(const config::Config& cfg, int64_t steps_per_epoch) {
  const int64_t all = cfg.train.epochs * steps_per_epoch;
  return cfg.train.max_steps > 0 ? std::min(all, cfg.train.max_steps) : all;
}

}  // namespace

Plan::Plan(const config::Config& config, const RankInfo& rank_info, const Placement& resolved)
    : cfg(config),
      rank(rank_info),
      placement(resolved),
      dataset(open_dataset(cfg, rank)),
      spec{dataset.shape(), dataset.manifest().class_names},
      batch(per_rank_batch(cfg, rank.world)),
      sampler(dataset.size(), batch, rank.world, rank.rank, static_cast<uint64_t>(cfg.train.seed)),
      steps_per_epoch(sampler.steps_per_epoch()),
      total_steps(train::total_steps(cfg, steps_per_epoch)),
      gan(seeded_gan(cfg, spec, placement.device)),
      config_toml(cfg.to_toml()) {
  if (cfg.data.sampling == config::Sampling::kClassBalanced)
    sampler.balance_classes(dataset.labels(), static_cast<int64_t>(spec.class_names.size()));
}

int Plan::read_threads() const {
  if (cfg.data.read_threads > 0) return static_cast<int>(cfg.data.read_threads);
  return dataset.in_memory() ? 1 : 4;
}

std::string plan_text(const Plan& plan, const fs::path& run_dir) {
  const auto& cfg = plan.cfg;
  const auto ll = [](int64_t v) { return static_cast<long long>(v); };
  std::string out = "shardgan-train plan (dry run: nothing trained)\n";
  out += cat("  world size   ", plan.rank.world, " rank(s), ", plan.rank.local_size, " on this node (", plan.rank.host,
             ")\n");
  out += cat("  device       ", plan.placement.device.str(), ", ", ll(plan.placement.threads),
             " thread(s) per rank, precision ", config::name(cfg.runtime.precision), ", gradients over ",
             config::name(plan.placement.backend),
             !plan.placement.graphs           ? ""
             : plan.placement.emulated_graphs ? ", CUDA graphs (emulated on the CPU)"
                                              : ", CUDA graphs",
             "\n");
  out += cat("  data         ", cfg.data.path, ": ", ll(plan.dataset.size()), " images ", plan.spec.shape.height, "x",
             plan.spec.shape.width, "x", plan.spec.shape.channels, ", ", plan.spec.class_names.size(), " classes, ",
             plan.dataset.in_memory() ? "memory" : "stream", " cache (", plan.read_threads(),
             " loader thread(s)), checksums ", cfg.data.verify ? "verified" : "skipped", "\n");
  out += cat("  batch        ", ll(plan.batch), " per rank, ", ll(plan.sampler.global_batch()), " global, ",
             config::name(cfg.data.sampling), " sampling\n");
  out += cat("  steps        ", ll(plan.steps_per_epoch), " per epoch x ", ll(cfg.train.epochs),
             " epochs = ", ll(plan.total_steps), cfg.train.max_steps > 0 ? " (train.max_steps)" : "", "\n");
  const std::string ema = plan.gan.generator_ema ? cat("decay ", cfg.model.g_ema) : "off";
  out += cat("  models       ", config::name(cfg.model.arch), ": G ", ll(parameter_count(*plan.gan.generator)),
             " parameters, D ", ll(parameter_count(*plan.gan.discriminator)), " parameters (conditional ",
             cfg.model.conditional ? "yes" : "no", ", batchnorm ", config::name(cfg.model.batchnorm), ", loss ",
             config::name(cfg.model.loss), ", EMA G ", ema, ", spectral norm ", config::name(cfg.model.spectral_norm),
             ")\n");
  if (cfg.augment.enabled() || cfg.train.r1_gamma > 0)
    out += cat("  small data   augment \"", cfg.augment.policy, "\"",
               cfg.augment.ada_target > 0 ? cat(" with ADA (target ", cfg.augment.ada_target, ")") : "", ", R1 ",
               cfg.train.r1_gamma > 0 ? cat("gamma ", cfg.train.r1_gamma, " every ", cfg.train.r1_every, " steps")
                                      : "off",
               "\n");
  out += cat("  metrics      ",
             cfg.eval.classifier.empty()
                 ? std::string("off (eval.classifier not set)")
                 : cat("FD-clf, class consistency, D scores on ", cfg.eval.n, " images every ", cfg.eval.every_epochs,
                       " epoch(s) (classifier ", cfg.eval.classifier, ")"),
             "\n");
  out += cat("  run dir      ", run_dir.string(), "\n");
  return out;
}

std::string plan_json(const Plan& plan, const fs::path& run_dir) {
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  for (const auto& [key, value] : plan.cfg.entries())
    std::visit([&config, &k = key](const auto& v) { config[k] = v; }, value);
  nlohmann::ordered_json p;
  p["world_size"] = plan.rank.world;
  p["ranks_on_node"] = plan.rank.local_size;
  p["host"] = plan.rank.host;
  p["device"] = plan.placement.device.str();
  p["threads"] = plan.placement.threads;
  p["precision"] = config::name(plan.cfg.runtime.precision);
  p["backend"] = config::name(plan.placement.backend);
  p["cuda_graphs"] = plan.placement.graphs ? (plan.placement.emulated_graphs ? "emulated" : "cuda") : "off";
  p["images"] = plan.dataset.size();
  p["image_shape"] = {plan.spec.shape.height, plan.spec.shape.width, plan.spec.shape.channels};
  p["class_names"] = plan.spec.class_names;
  p["cache"] = plan.dataset.in_memory() ? "memory" : "stream";
  p["read_threads"] = plan.read_threads();
  p["batch_per_rank"] = plan.batch;
  p["global_batch"] = plan.sampler.global_batch();
  p["steps_per_epoch"] = plan.steps_per_epoch;
  p["total_steps"] = plan.total_steps;
  p["g_parameters"] = parameter_count(*plan.gan.generator);
  p["d_parameters"] = parameter_count(*plan.gan.discriminator);
  p["run_dir"] = run_dir.string();
  nlohmann::ordered_json out;
  out["config"] = std::move(config);
  out["plan"] = std::move(p);
  return out.dump() + "\n";
}

}  // namespace shardgan::train
