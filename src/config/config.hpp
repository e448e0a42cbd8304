#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace shardgan::config {

// The settings that are words in TOML, as enums: parsed once when the config is loaded (an unknown word is an Error
// naming the key and the choices), compared as values everywhere else. `name` gives the TOML spelling.
enum class Cache { kAuto, kMemory, kStream };               ///< data.cache
enum class Sampling { kUniform, kClassBalanced };           ///< data.sampling
enum class BatchNorm { kLocal, kSync, kNone };              ///< model.batchnorm
enum class Loss { kBce, kHinge };                           ///< model.loss
enum class SpectralNorm { kNone, kD, kGD };                 ///< model.spectral_norm: on no network, D, or G and D
enum class Arch { kDcgan, kResNet };                        ///< model.arch
enum class Device { kAuto, kCpu, kCuda };                   ///< runtime.device
enum class Precision { kFp32, kBf16, kFp16 };               ///< runtime.precision
enum class Backend { kAuto, kNccl, kMpi };                  ///< comm.backend
enum class Compression { kNone, kBf16, kFp16, kPowerSgd };  ///< comm.compression
const char* name(Cache value);
const char* name(Sampling value);
const char* name(BatchNorm value);
const char* name(Loss value);
const char* name(SpectralNorm value);
const char* name(Arch value);
const char* name(Device value);
const char* name(Precision value);
const char* name(Backend value);
const char* name(Compression value);

/// Everything a training run is configured by (docs/configuration.md documents each key).
struct Config {
  struct Data {
    std::string path;
    Cache cache = Cache::kAuto;
    Sampling sampling = Sampling::kUniform;
    bool hflip = false;
    bool verify = true;
    int64_t read_threads = 0;  ///< loader threads per rank; 0: 1 with the memory cache, 4 when streaming
  } data;
  struct Model {
    Arch arch = Arch::kDcgan;
    int64_t z_dim = 100;
    int64_t g_width = 32;
    int64_t d_width = 64;
    double dropout = 0.3;
    bool conditional = false;
    int64_t embed_dim = 50;
    BatchNorm batchnorm = BatchNorm::kLocal;
    Loss loss = Loss::kBce;
    SpectralNorm spectral_norm = SpectralNorm::kNone;
    double g_ema = 0.999;  ///< decay of the generator's weight average (0: no EMA generator)
  } model;
  struct Augment {
    std::string policy;        ///< DiffAugment operations, comma-separated: color, translation, cutout ("": none)
    double ada_target = 0;     ///< > 0: adaptive probability p steered so that E[sign(D(real))] ≈ this (ADA)
    int64_t ada_interval = 4;  ///< steps between adjustments of p
    double ada_kimg = 500;     ///< thousands of images over which p can move from 0 to 1
    // Parsed from `policy` when the config is loaded:
    bool color = false, translation = false, cutout = false;
    bool enabled() const { return color || translation || cutout; }
  } augment;
  struct Optim {
    double lr_g = 2e-4;
    double lr_d = 2e-4;
    double beta1 = 0.5;
    double beta2 = 0.999;
  } optim;
  struct Train {
    int64_t batch_size = 64;   ///< per rank
    int64_t global_batch = 0;  ///< > 0: over all ranks (batch_size = global_batch / ranks, which must divide it)
    int64_t epochs = 150;
    int64_t max_steps = 0;  ///< 0: no limit
    int64_t seed = 0;
    bool deterministic = false;
    int64_t log_every = 50;
    double r1_gamma = 0;    ///< > 0: R1 penalty γ/2·E‖∇D(x)‖² on (augmented) reals
    int64_t r1_every = 16;  ///< lazy R1: every this many steps, scaled by it
  } train;
  struct Output {
    int64_t sample_every_epochs = 10;
    int64_t sample_every_steps = 0;  ///< 0: only at epoch ends
    int64_t sample_count = 64;
    int64_t checkpoint_every_steps = 1000;
    int64_t keep_checkpoints = 3;
    bool tensorboard = true;  ///< rank 0 writes TensorBoard event files into the run folder
  } output;
  struct Eval {
    std::string classifier;    ///< a classifier from `shardgan-eval train-classifier` ("": no metrics in training)
    int64_t every_epochs = 1;  ///< FD-clf and class consistency every this many epochs (and before the first step)
    int64_t n = 5000;          ///< generated and real images per evaluation (sharded over the ranks)
  } eval;
  struct Runtime {
    Device device = Device::kAuto;
    int64_t threads = 0;  ///< 0: cores on the node / ranks on the node
    Precision precision = Precision::kFp32;
    bool channels_last = false;              ///< NHWC memory layout for the models' 4-D tensors and the images
    double loss_scale = 65536;               ///< fp16: the dynamic loss scale's starting value
    int64_t loss_scale_growth_every = 2000;  ///< fp16: steps without inf/NaN before the scale doubles
    bool cuda_graphs = false;                ///< capture the whole D+G step in a CUDA graph and replay it (CUDA only)
  } runtime;
  struct Comm {
    Backend backend = Backend::kAuto;
    int64_t check_every = 1000;  ///< steps between cross-rank parameter checks (also before every checkpoint)
    double timeout_s = 600;      ///< a collective running longer ends the job
    double bucket_mb = 25;       ///< gradient bucket size cap
    bool overlap = true;         ///< start bucket all-reduces during backward
    Compression compression = Compression::kNone;  ///< what the gradient all-reduce sends (parallel/grad_sync.hpp)
    int64_t powersgd_rank = 4;                     ///< PowerSGD's rank r
    int64_t powersgd_start_step = 100;             ///< steps all-reduced uncompressed before PowerSGD starts
  } comm;

  /// The resolved configuration as TOML (every key, defaults included).
  std::string to_toml() const;
  /// Every key ("section.key") with its value, in the order of to_toml (words such as runtime.device as strings).
  using Value = std::variant<std::string, bool, int64_t, double>;
  std::vector<std::pair<std::string, Value>> entries() const;
  /// Hash of the keys that change the models' shapes (model.*): a checkpoint only loads into the same.
  std::string model_hash() const;
  /// Hash of the whole resolved configuration.
  std::string hash() const;
};

/// Loads `file` (TOML) and applies `overrides` ("section.key=value", value in TOML syntax or a bare string).
/// Unknown sections or keys, wrong types and invalid values are Errors naming the key (and the closest valid key).
Config load(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});
/// Same, from TOML text (`source` names it in messages).
Config parse(const std::string& text, const std::string& source, const std::vector<std::string>& overrides = {});

}  // namespace shardgan::config
