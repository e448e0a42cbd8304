// shardgan-sample: samples, per-class samples, discriminator scores and weight export from a checkpoint.
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>

#include "compat/error_message.hpp"
#include "data/h5.hpp"
#include "data/shard_format.hpp"
#include "model/image_tensor.hpp"
#include "report/grid.hpp"
#include "shardgan/config.hpp"
#include "train/checkpoint.hpp"
#include "train/gan.hpp"
#include "train/model_state.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/staging_dir.hpp"

namespace {

using namespace shardgan;
namespace fs = std::filesystem;

int64_t resolve_class(const std::string& text, const std::vector<std::string>& names) {
  const auto it = std::find(names.begin(), names.end(), text);
  if (it != names.end()) return it - names.begin();
  try {
    std::size_t used = 0;
    const int64_t index = std::stoll(text, &used);
    if (used == text.size() && index >= 0 && index < static_cast<int64_t>(names.size())) return index;
  } catch (const std::exception&) {
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  fail("--class: '", text, "' is neither a class name (", list, ") nor an index 0..", names.size() - 1);
}

/// Samples as one shard-layout HDF5 file (uint8 NHWC /images, /labels, /ids), written atomically.
void write_samples_h5(const fs::path& file, const torch::Tensor& images, const torch::Tensor& labels,
                      const train::DataSpec& spec) {
  const torch::Tensor u8 = model::to_uint8_images(images);
  write_file_atomically(file, [&](const fs::path& tmp) {
    StagingDir staging(file);  // the shard writer's folder, removed when done
    data::ShardSchema schema;
    schema.source = "shardgan-sample";
    schema.shape = spec.shape;
    schema.class_names = spec.class_names;
    data::ShardWriter writer(staging.path(), schema, u8.size(0));
    const auto bytes = spec.shape.bytes();
    for (int64_t i = 0; i < u8.size(0); ++i)
      writer.append(u8.data_ptr<uint8_t>() + i * bytes, labels[i].item<int64_t>(), "sample#" + std::to_string(i), {});
    writer.finish();
    fs::rename(staging.path() / data::shard_file_name(0), tmp);
  });
}

/// `t` as a float32 dataset `name` in `group` (`file` names the output in messages).
void write_float_dataset(hid_t group, const fs::path& file, const std::string& name, const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  std::vector<hsize_t> dims(c.sizes().begin(), c.sizes().end());
  h5::Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                                : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  h5::Handle d(h5::check(H5Dcreate2(group, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                         file.string(), "creating " + name));
  h5::check(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data_ptr<float>()), file.string(),
            "writing " + name);
}

/// Every parameter and buffer as a float32 dataset named "generator/<module path>", "discriminator/<...>" and
/// "generator_ema/<...>" (when the model has one).
void export_weights(const fs::path& file, train::Gan& gan) {
  h5::silence_errors();
  write_file_atomically(file, [&](const fs::path& tmp) {
    h5::Handle f(h5::check(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), file.string(), "creating"));
    for (const auto& [prefix, module] : train::state_modules(gan)) {
      h5::Handle g(h5::check(H5Gcreate2(f, prefix.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), file.string(),
                             "creating group"));
      for (const auto& p : module->named_parameters()) write_float_dataset(g, file, p.key(), p.value());
      for (const auto& b : module->named_buffers()) write_float_dataset(g, file, b.key(), b.value());
    }
  });
}

/// The command line.
struct Options {
  std::string checkpoint_arg, class_arg, out_png, out_h5, export_file;
  int64_t n = 64, seed = 0;
  bool score = false, no_ema = false;
};

void add_options(CLI::App& app, Options& o) {
  app.add_option("--checkpoint", o.checkpoint_arg, "checkpoint folder, or a run folder (its newest checkpoint)")
      ->required();
  app.add_option("--n", o.n, "number of samples")->capture_default_str();
  app.add_option("--class", o.class_arg, "class name or index (conditional models); default: all classes in turn");
  app.add_option("--seed", o.seed, "noise seed")->capture_default_str();
  app.add_option("--out", o.out_png, "write a PNG grid");
  app.add_option("--out-h5", o.out_h5, "write the samples as uint8 NHWC in the shard layout, with labels");
  app.add_flag("--score", o.score, "print the discriminator's mean probability on the samples");
  app.add_flag("--no-ema", o.no_ema, "sample from G itself, not from its EMA generator (model.g_ema)");
  app.add_option("--export-weights", o.export_file, "write every parameter and buffer as float32 HDF5 datasets");
}

/// Restores the checkpoint, generates `o.n` samples and writes, scores and exports what `o` asks for.
void run(const Options& o) {
  if (o.out_png.empty() && o.out_h5.empty() && !o.score && o.export_file.empty())
    fail("nothing to do: give --out, --out-h5, --score and/or --export-weights");
  if (o.n <= 0) fail("--n must be positive");
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  train::RestoredModels restored = train::restore_models(o.checkpoint_arg);
  const train::CheckpointState& state = restored.state;
  const config::Config& cfg = restored.config;
  train::Gan& gan = restored.gan;
  model::GeneratorImpl& generator = gan.sampling_generator(!o.no_ema);
  gan.discriminator->eval();
  torch::NoGradGuard no_grad;

  const int64_t classes = gan.num_classes();
  if (!o.class_arg.empty() && classes == 0) fail("--class: this model is not conditional");
  torch::Tensor labels = torch::zeros({o.n}, torch::kInt64);
  if (classes > 0)
    labels = o.class_arg.empty()
                 ? torch::arange(o.n) % classes
                 : torch::full({o.n}, resolve_class(o.class_arg, state.spec.class_names), torch::kInt64);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(o.seed));
  const torch::Tensor z = torch::randn({o.n, cfg.model.z_dim}, gen);
  const torch::Tensor y = classes > 0 ? labels : torch::Tensor();
  const torch::Tensor images = generator.forward(z, y);

  if (!o.out_png.empty()) {
    // Conditional, all classes: one column per class so each row cycles through them.
    const int64_t columns = classes > 0 && o.class_arg.empty() ? classes : 8;
    write_png(o.out_png, report::make_grid(images, columns));
    std::printf("wrote %lld samples to %s\n", static_cast<long long>(o.n), o.out_png.c_str());
  }
  if (!o.out_h5.empty()) {
    write_samples_h5(o.out_h5, images, labels, state.spec);
    std::printf("wrote %lld samples to %s\n", static_cast<long long>(o.n), o.out_h5.c_str());
  }
  if (o.score) {
    const double p = torch::sigmoid(gan.discriminator->forward(images, y)).mean().item<double>();
    std::printf("discriminator mean probability on %lld samples: %.4f\n", static_cast<long long>(o.n), p);
  }
  if (!o.export_file.empty()) {
    export_weights(o.export_file, gan);
    std::printf("exported weights to %s\n", o.export_file.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shardgan-sample " SHARDGAN_VERSION
               ": samples, per-class samples, discriminator scores and weight "
               "export from a shardgan-train checkpoint"};
  Options options;
  add_options(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardgan-sample: error: %s\n", shardgan::compat::error_message(e).c_str());
    return 1;
  }
  return 0;
}
