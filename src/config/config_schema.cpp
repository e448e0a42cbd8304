#include "config/config_schema.hpp"

#include <toml++/toml.h>
#include <cstdio>
#include <sstream>

namespace shardgan::config {
namespace {

using detail::Choice;
using detail::Field;

template <typename E>
struct Spelling {
  E value;
  const char* word;
};
constexpr Spelling<Cache> kCache[] = {{Cache::kAuto, "auto"}, {Cache::kMemory, "memory"}, {Cache::kStream, "stream"}};
constexpr Spelling<Sampling> kSampling[] = {{Sampling::kUniform, "uniform"},
                                            {Sampling::kClassBalanced, "class_balanced"}};
constexpr Spelling<BatchNorm> kBatchNorm[] = {
    {BatchNorm::kLocal, "local"}, {BatchNorm::kSync, "sync"}, {BatchNorm::kNone, "none"}};
constexpr Spelling<Loss> kLoss[] = {{Loss::kBce, "bce"}, {Loss::kHinge, "hinge"}};
constexpr Spelling<Arch> kArch[] = {{Arch::kDcgan, "dcgan"}, {Arch::kResNet, "resnet"}};
constexpr Spelling<SpectralNorm> kSpectralNorm[] = {
    {SpectralNorm::kNone, "none"}, {SpectralNorm::kD, "d"}, {SpectralNorm::kGD, "gd"}};
constexpr Spelling<Device> kDevice[] = {{Device::kAuto, "auto"}, {Device::kCpu, "cpu"}, {Device::kCuda, "cuda"}};
constexpr Spelling<Precision> kPrecision[] = {
    {Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}, {Precision::kFp16, "fp16"}};
constexpr Spelling<Backend> kBackend[] = {{Backend::kAuto, "auto"}, {Backend::kNccl, "nccl"}, {Backend::kMpi, "mpi"}};
constexpr Spelling<Compression> kCompression[] = {{Compression::kNone, "none"},
                                                  {Compression::kBf16, "bf16"},
                                                  {Compression::kFp16, "fp16"},
                                                  {Compression::kPowerSgd, "powersgd"}};

template <typename E, std::size_t N>
const char* word_of(const Spelling<E> (&table)[N], E value) {
  for (const auto& s : table)
    if (s.value == value) return s.word;
  return "?";
}

template <typename E, std::size_t N>
Choice choice(E& field, const Spelling<E> (&table)[N]) {
  Choice c;
  for (const auto& s : table) c.words.emplace_back(s.word);
  c.get = [&field, &table] { return std::string(word_of(table, field)); };
  c.set = [&field, &table](std::size_t i) { field = table[i].value; };
  return c;
}

std::string hex64(uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(v));
  return text;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

std::string format_value(const Field& f) {
  return std::visit(
      [](const auto& p) -> std::string {
        using T = std::remove_pointer_t<std::decay_t<decltype(p)>>;
        std::ostringstream out;
        if constexpr (std::is_same_v<T, Choice>) {
          out << toml::value<std::string>(p.get());
        } else if constexpr (std::is_same_v<T, std::string>) {
          out << toml::value<std::string>(*p);
        } else if constexpr (std::is_same_v<T, bool>) {
          out << (*p ? "true" : "false");
        } else if constexpr (std::is_same_v<T, double>) {
          out << toml::value<double>(*p);
        } else {
          out << *p;
        }
        return out.str();
      },
      f);
}

}  // namespace

namespace detail {

std::vector<Key> schema(Config& c) {
  return {
      {"data.path", &c.data.path},
      {"data.cache", choice(c.data.cache, kCache)},
      {"data.sampling", choice(c.data.sampling, kSampling)},
      {"data.hflip", &c.data.hflip},
      {"data.verify", &c.data.verify},
      {"data.read_threads", &c.data.read_threads},
      {"model.arch", choice(c.model.arch, kArch)},
      {"model.z_dim", &c.model.z_dim},
      {"model.g_width", &c.model.g_width},
      {"model.d_width", &c.model.d_width},
      {"model.dropout", &c.model.dropout},
      {"model.conditional", &c.model.conditional},
      {"model.embed_dim", &c.model.embed_dim},
      {"model.batchnorm", choice(c.model.batchnorm, kBatchNorm)},
      {"model.loss", choice(c.model.loss, kLoss)},
      {"model.g_ema", &c.model.g_ema},
      {"model.spectral_norm", choice(c.model.spectral_norm, kSpectralNorm)},
      {"augment.policy", &c.augment.policy},
      {"augment.ada_target", &c.augment.ada_target},
      {"augment.ada_interval", &c.augment.ada_interval},
      {"augment.ada_kimg", &c.augment.ada_kimg},
      {"optim.lr_g", &c.optim.lr_g},
      {"optim.lr_d", &c.optim.lr_d},
      {"optim.beta1", &c.optim.beta1},
      {"optim.beta2", &c.optim.beta2},
      {"train.batch_size", &c.train.batch_size},
      {"train.global_batch", &c.train.global_batch},
      {"train.epochs", &c.train.epochs},
      {"train.max_steps", &c.train.max_steps},
      {"train.seed", &c.train.seed},
      {"train.deterministic", &c.train.deterministic},
      {"train.log_every", &c.train.log_every},
      {"train.r1_gamma", &c.train.r1_gamma},
      {"train.r1_every", &c.train.r1_every},
      {"output.sample_every_epochs", &c.output.sample_every_epochs},
      {"output.sample_every_steps", &c.output.sample_every_steps},
      {"output.sample_count", &c.output.sample_count},
      {"output.checkpoint_every_steps", &c.output.checkpoint_every_steps},
      {"output.keep_checkpoints", &c.output.keep_checkpoints},
      {"output.tensorboard", &c.output.tensorboard},
      {"eval.classifier", &c.eval.classifier},
      {"eval.every_epochs", &c.eval.every_epochs},
      {"eval.n", &c.eval.n},
      {"runtime.device", choice(c.runtime.device, kDevice)},
      {"runtime.threads", &c.runtime.threads},
      {"runtime.precision", choice(c.runtime.precision, kPrecision)},
      {"runtime.channels_last", &c.runtime.channels_last},
      {"runtime.loss_scale", &c.runtime.loss_scale},
      {"runtime.loss_scale_growth_every", &c.runtime.loss_scale_growth_every},
      {"runtime.cuda_graphs", &c.runtime.cuda_graphs},
      {"comm.backend", choice(c.comm.backend, kBackend)},
      {"comm.check_every", &c.comm.check_every},
      {"comm.timeout_s", &c.comm.timeout_s},
      {"comm.bucket_mb", &c.comm.bucket_mb},
      {"comm.overlap", &c.comm.overlap},
      {"comm.compression", choice(c.comm.compression, kCompression)},
      {"comm.powersgd_rank", &c.comm.powersgd_rank},
      {"comm.powersgd_start_step", &c.comm.powersgd_start_step},
  };
}

}  // namespace detail

const char* name(Cache value) {
  return word_of(kCache, value);
}
const char* name(Sampling value) {
  return word_of(kSampling, value);
}
const char* name(BatchNorm value) {
  return word_of(kBatchNorm, value);
}
const char* name(Loss value) {
  return word_of(kLoss, value);
}
const char* name(Arch value) {
  return word_of(kArch, value);
}
const char* name(SpectralNorm value) {
  return word_of(kSpectralNorm, value);
}
const char* name(Device value) {
  return word_of(kDevice, value);
}
const char* name(Precision value) {
  return word_of(kPrecision, value);
}
const char* name(Backend value) {
  return word_of(kBackend, value);
}
const char* name(Compression value) {
  return word_of(kCompression, value);
}

std::string Config::to_toml() const {
  Config copy = *this;
  std::ostringstream out;
  std::string section;
  for (const auto& k : detail::schema(copy)) {
    const std::string s = k.name.substr(0, k.name.find('.'));
    if (s != section) {
      out << (section.empty() ? "" : "\n") << "[" << s << "]\n";
      section = s;
    }
    out << k.name.substr(k.name.find('.') + 1) << " = " << format_value(k.field) << '\n';
  }
  return out.str();
}

std::vector<std::pair<std::string, Config::Value>> Config::entries() const {
  Config copy = *this;
  std::vector<std::pair<std::string, Value>> out;
  for (const auto& k : detail::schema(copy))
    out.emplace_back(k.name, std::visit(
                                 [](const auto& p) -> Value {
                                   using T = std::remove_pointer_t<std::decay_t<decltype(p)>>;
                                   if constexpr (std::is_same_v<T, Choice>) {
                                     return std::string(p.get());
                                   } else {
                                     return *p;
                                   }
                                 },
                                 k.field));
  return out;
}

std::string Config::model_hash() const {
  Config copy = *this;
  std::string text;
  for (const auto& k : detail::schema(copy))
    if (k.name == "model.batchnorm")
      text +=
          k.name + "=" + (model.batchnorm == BatchNorm::kNone ? "none" : "batchnorm") + ";";  // local/sync: same layers
    else if (k.name.rfind("model.", 0) == 0 && k.name != "model.dropout" && k.name != "model.loss" &&
             k.name != "model.g_ema")
      text += k.name + "=" + format_value(k.field) + ";";
  return hex64(fnv1a(text));
}

std::string Config::hash() const {
  return hex64(fnv1a(to_toml()));
}

}  // namespace shardgan::config
