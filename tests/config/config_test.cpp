#include "config/config.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <functional>

#include "basics.hpp"
#include "config/config_schema.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::config {
namespace {

std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse(text, "run.toml", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const std::string kMinimal = "[data]\npath = \"data/x\"\n";

TEST(Config, DefaultsAndValues) {
  const Config c = parse(kMinimal + "[train]\nbatch_size = 32\n[optim]\nlr_g = 1\n", "run.toml");
  EXPECT_EQ(c.data.path, "data/x");
  EXPECT_EQ(c.train.batch_size, 32);
  EXPECT_EQ(c.optim.lr_g, 1.0);  // an integer is accepted for a float key
  EXPECT_EQ(c.model.z_dim, 100);
  EXPECT_EQ(c.model.loss, Loss::kBce);
  EXPECT_EQ(c.model.batchnorm, BatchNorm::kLocal);
  EXPECT_EQ(c.runtime.precision, Precision::kFp32);
}

TEST(Config, UnknownKeysNameTheKeyAndSuggestTheClosest) {
  EXPECT_EQ(error_of(kMinimal + "[train]\nbatch_sise = 3\n"),
            "run.toml: unknown key 'train.batch_sise' (did you mean 'train.batch_size'?)");
  EXPECT_EQ(error_of(kMinimal + "[optim]\nbatch_size = 3\n"),
            "run.toml: unknown key 'optim.batch_size' (did you mean 'train.batch_size'?)");
  EXPECT_EQ(error_of(kMinimal + "[traning]\nepochs = 3\n"),
            "run.toml: unknown key 'traning.epochs' (did you mean 'train.epochs'?)");
  EXPECT_EQ(error_of(kMinimal + "[model]\ncompletely_else = 1\n"), "run.toml: unknown key 'model.completely_else'");
}

TEST(Config, WrongTypesAndValues) {
  EXPECT_EQ(error_of(kMinimal + "[train]\nepochs = \"ten\"\n"), "run.toml: key 'train.epochs' must be an integer");
  // (one [data] table: a second one would be a TOML syntax error, not the type error under test)
  EXPECT_EQ(error_of("[data]\npath = \"x\"\nhflip = 1\n"), "run.toml: key 'data.hflip' must be true or false");
  EXPECT_EQ(error_of("[data]\npath = \"x\"\ncache = 1\n"), "run.toml: key 'data.cache' must be a string");
  EXPECT_EQ(error_of(kMinimal + "[model]\nloss = \"wgan\"\n"),
            "run.toml: key 'model.loss' is \"wgan\"; expected one of bce, hinge");
  EXPECT_EQ(error_of(kMinimal + "[comm]\ncompression = \"int8\"\n"),
            "run.toml: key 'comm.compression' is \"int8\"; expected one of none, bf16, fp16, powersgd");
  EXPECT_NE(error_of(kMinimal + "[comm]\ncompression = \"powersgd\"\n[runtime]\nprecision = \"fp16\"\n")
                .find("run.toml: comm.compression = \"powersgd\" with runtime.precision = \"fp16\""),
            std::string::npos);
  EXPECT_EQ(error_of(kMinimal + "[comm]\npowersgd_rank = 0\n"),
            "run.toml: key 'comm.powersgd_rank' must be positive, got 0");
  EXPECT_EQ(error_of(kMinimal + "[train]\nbatch_size = 0\n"),
            "run.toml: key 'train.batch_size' must be positive, got 0");
  EXPECT_EQ(error_of(kMinimal + "read_threads = 65\n"),
            "run.toml: key 'data.read_threads' must be 0 (automatic) to 64, got 65");
  EXPECT_EQ(error_of("[train]\nepochs = 3\n"),
            "run.toml: key 'data.path' is required (a folder written by shardgan-pack)");
  EXPECT_NE(error_of("[train\nepochs = 3\n").find("run.toml:1: TOML syntax error"), std::string::npos);
}

TEST(Config, NanAndInfinityAreRefusedForEveryFloatKeyWithTheKeyNamed) {
  const char* float_keys[] = {"model.dropout", "model.g_ema",    "optim.lr_g",     "optim.lr_d",        "optim.beta1",
                              "optim.beta2",   "comm.timeout_s", "comm.bucket_mb", "runtime.loss_scale"};
  for (const char* key : float_keys) {
    for (const char* value : {"nan", "inf", "-inf", "+nan"}) {
      const std::string e = error_of(kMinimal, {std::string(key) + "=" + value});
      EXPECT_NE(e.find(std::string("key '") + key + "' is "), std::string::npos) << key << "=" << value << ": " << e;
      EXPECT_NE(e.find("must be a finite number"), std::string::npos) << key << "=" << value << ": " << e;
    }
  }
  EXPECT_NE(error_of(kMinimal + "[optim]\nlr_g = nan\n").find("key 'optim.lr_g' is nan"), std::string::npos);
}

// toml++ 3.3 reaches undefined behaviour on a character beyond ASCII where TOML expects whitespace (found by
// fuzz/config_fuzz.cpp): such characters are refused outside strings and comments, with the line, before toml++.
TEST(Config, CharactersBeyondAsciiOnlyInStringsAndComments) {
  EXPECT_EQ(error_of(kMinimal + "[train]\n\xc3\xa9 epochs = 3\n"),
            "run.toml:4: a character beyond ASCII outside a string or comment");
  EXPECT_EQ(error_of(kMinimal + "[train] \xc2\xa0\n"),
            "run.toml:3: a character beyond ASCII outside a string or comment");
  EXPECT_EQ(error_of("# caf\xc3\xa9 \"quoted\" 'too'\n[data]\npath = \"donn\xc3\xa9"
                     "es/x\"\n"
                     "[eval]\nclassifier = 'cl\xc3\xa9.pt' # \xc3\xa9\n"),
            "");
  EXPECT_EQ(error_of("[data]\npath = \"\"\"a\n\xc3\xa9\\\"\"\"\"\"\n"), "");
  EXPECT_EQ(parse(kMinimal, "t", {"eval.classifier=caf\xc3\xa9.pt"}).eval.classifier, "caf\xc3\xa9.pt");
}

TEST(Config, AugmentPolicyIsParsedOnceAndBadWordsAreNamed) {
  const Config c = parse(kMinimal + "[augment]\npolicy = \"cutout, color\"\nada_target = 0.6\n", "run.toml");
  EXPECT_TRUE(c.augment.color && c.augment.cutout && !c.augment.translation);
  EXPECT_FALSE(parse(kMinimal, "run.toml").augment.enabled());
  EXPECT_EQ(error_of(kMinimal + "[augment]\npolicy = \"color,zoom\"\n"),
            "run.toml: key 'augment.policy' has an unknown operation \"zoom\"; expected a comma-separated list of "
            "color, translation, cutout");
  EXPECT_NE(error_of(kMinimal + "[augment]\npolicy = \"color,color\"\n").find("a repeated operation \"color\""),
            std::string::npos);
  EXPECT_EQ(error_of(kMinimal + "[augment]\nada_target = 0.6\n"),
            "run.toml: key 'augment.ada_target' needs operations to apply (augment.policy is empty)");
  EXPECT_NE(error_of(kMinimal + "[augment]\npolicy = \"color\"\nada_target = 1.5\n").find("[0, 1)"), std::string::npos);
}

TEST(Config, OverridesFromTheCommandLine) {
  const Config c =
      parse(kMinimal, "run.toml",
            {"train.epochs=7", "model.loss=hinge", "data.path=other", "model.conditional=true", "optim.lr_d=3e-4"});
  EXPECT_EQ(c.train.epochs, 7);
  EXPECT_EQ(c.model.loss, Loss::kHinge);
  EXPECT_EQ(c.data.path, "other");
  EXPECT_TRUE(c.model.conditional);
  EXPECT_DOUBLE_EQ(c.optim.lr_d, 3e-4);
  EXPECT_EQ(error_of(kMinimal, {"train.epoch=3"}), "--set: unknown key 'train.epoch' (did you mean 'train.epochs'?)");
  EXPECT_EQ(error_of(kMinimal, {"train.epochs=many"}), "--set: key 'train.epochs' must be an integer");
  EXPECT_EQ(error_of(kMinimal, {"runtime.precision=fp8"}),
            "--set: key 'runtime.precision' is \"fp8\"; expected one of fp32, bf16, fp16");
}

// runtime.cuda_graphs replays one recorded step: settings that decide on the host during a step, or change the
// step's work from one step to the next, are refused with the key that cannot be captured and what to do instead.
TEST(Config, CudaGraphsRefuseWhatACaptureCannotHold) {
  EXPECT_TRUE(parse(kMinimal, "run.toml", {"runtime.cuda_graphs=true", "runtime.precision=bf16"}).runtime.cuda_graphs);
  const auto refused = [](const std::string& setting, const std::string& needle) {
    const std::string e = error_of(kMinimal, {"runtime.cuda_graphs=true", setting});
    EXPECT_EQ(e.rfind("run.toml: runtime.cuda_graphs = true cannot capture " + needle, 0), 0u) << e;
  };
  refused("model.batchnorm=sync", "model.batchnorm = \"sync\"");
  EXPECT_EQ(error_of(kMinimal, {"model.batchnorm=sync"}), "");  // fine without graphs
  // Augmentation (with ADA), lazy R1 and fp16 loss scaling are captured.
  EXPECT_EQ(error_of(kMinimal, {"runtime.cuda_graphs=true", "augment.policy=translation", "augment.ada_target=0.6",
                                "train.r1_gamma=1", "runtime.precision=fp16"}),
            "");
}

TEST(Config, WordsBecomeEnumsAndPrintBackAsTheSameWords) {
  const Config c = parse(kMinimal, "run.toml",
                         {"data.cache=stream", "model.batchnorm=sync", "runtime.device=cpu", "runtime.precision=bf16",
                          "comm.backend=mpi", "model.loss=hinge", "comm.compression=powersgd"});
  EXPECT_EQ(c.data.cache, Cache::kStream);
  EXPECT_EQ(c.model.batchnorm, BatchNorm::kSync);
  EXPECT_EQ(c.runtime.device, Device::kCpu);
  EXPECT_EQ(c.runtime.precision, Precision::kBf16);
  EXPECT_EQ(c.comm.backend, Backend::kMpi);
  EXPECT_EQ(c.comm.compression, Compression::kPowerSgd);
  EXPECT_STREQ(name(c.model.loss), "hinge");
  const std::string toml = c.to_toml();
  for (const char* line : {"cache = 'stream'", "batchnorm = 'sync'", "device = 'cpu'", "precision = 'bf16'",
                           "backend = 'mpi'", "loss = 'hinge'", "compression = 'powersgd'"})
    EXPECT_NE(toml.find(line), std::string::npos) << line << " in\n" << toml;
  EXPECT_EQ(parse(toml, "resolved.toml").hash(), c.hash());
  // local and sync BatchNorm have the same layers: a checkpoint moves between them.
  EXPECT_EQ(c.model_hash(), parse(kMinimal, "run.toml", {"model.batchnorm=local"}).model_hash());
  EXPECT_NE(c.model_hash(), parse(kMinimal, "run.toml", {"model.batchnorm=none"}).model_hash());
}

TEST(Config, ResolvedTomlRoundTripsAndHashesSeparateModelFromTraining) {
  const Config a = parse(kMinimal + "[model]\nz_dim = 64\n[optim]\nlr_g = 1e-5\n", "run.toml");
  const Config b = parse(a.to_toml(), "resolved.toml");
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_EQ(b.model.z_dim, 64);
  EXPECT_DOUBLE_EQ(b.optim.lr_g, 1e-5);
  const Config c = parse(kMinimal + "[model]\nz_dim = 64\n[optim]\nlr_g = 3e-4\n", "run.toml");
  EXPECT_NE(a.hash(), c.hash());
  EXPECT_EQ(a.model_hash(), c.model_hash());  // learning rate does not change the models
  EXPECT_NE(a.model_hash(), parse(kMinimal, "run.toml").model_hash());
}

TEST(Config, EmaAndEvalKeysAreChecked) {
  EXPECT_THROW(parse(kMinimal + "[model]\ng_ema = 1.0\n", "t"), Error);
  EXPECT_THROW(parse("[data]\npath = \"x\"\n[eval]\nn = 0\n", "t"), Error);
  EXPECT_THROW(parse("[data]\npath = \"x\"\n[eval]\nevery_epoch = 1\n", "t"), Error);
  const auto c = parse("[data]\npath = \"x\"\n[eval]\nclassifier = \"c.pt\"\nn = 100\n", "t");
  EXPECT_EQ(c.eval.classifier, "c.pt");
  EXPECT_EQ(c.eval.n, 100);
  EXPECT_EQ(c.model.g_ema, 0.999);
  // The EMA decay does not change the models' shapes: checkpoints stay loadable.
  EXPECT_EQ(parse(kMinimal + "[model]\ng_ema = 0.9\n", "t").model_hash(),
            parse(kMinimal + "[model]\ng_ema = 0.99\n", "t").model_hash());
}

// The config file is checked for what it is before it is read, and read up to its limit only: a FIFO would block
// forever, /dev/zero would be read until the process is killed.
TEST(ConfigFile, SpecialFilesAndOversizedFilesAreRefusedAtOnce) {
  testing::TempDir tmp;
  const auto load_error = [](const std::filesystem::path& file) {
    try {
      load(file);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  ASSERT_EQ(::mkfifo((tmp / "fifo.toml").c_str(), 0600), 0);
  EXPECT_EQ(load_error(tmp / "fifo.toml"),
            "config file " + (tmp / "fifo.toml").string() + ": is a FIFO (a regular file is needed)");
  EXPECT_EQ(load_error("/dev/zero"), "config file /dev/zero: is a character device (a regular file is needed)");
  std::filesystem::create_directory(tmp / "dir.toml");
  EXPECT_NE(load_error(tmp / "dir.toml").find("dir.toml: is a directory (a regular file is needed)"),
            std::string::npos);
  std::filesystem::create_symlink(tmp / "nowhere.toml", tmp / "dangling.toml");
  EXPECT_NE(load_error(tmp / "dangling.toml").find("dangling.toml: is a dangling symbolic link"), std::string::npos);
  EXPECT_NE(load_error(tmp / "absent.toml").find("absent.toml: is missing"), std::string::npos);
  testing::write_text(tmp / "big.toml", kMinimal + std::string(kMaxConfigBytes, '#'));  // a valid TOML comment
  EXPECT_NE(load_error(tmp / "big.toml").find("big.toml: is over the 1 MiB limit of a config file"), std::string::npos);
  testing::write_text(tmp / "ok.toml", kMinimal + std::string(kMaxConfigBytes - kMinimal.size() - 1, '#') + "\n");
  EXPECT_EQ(load(tmp / "ok.toml").data.path, "data/x");  // exactly at the limit: read
}

// A key longer than any key is refused as such at once: no closest-key suggestion (an edit distance to every key,
// ~20 s of CPU for a 10 MB name) and no echo of the whole name (megabytes of stderr).
TEST(Config, OversizedKeysAreRefusedAtOnceAndQuotedShort) {
  const std::string huge(10'000'000, 'k');
  const auto quick_error = [](const std::function<std::string()>& f) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string e = f();
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0) << e.substr(0, 300);
    EXPECT_LT(e.size(), 300u) << e.substr(0, 300);
    EXPECT_EQ(e.find('\n'), std::string::npos);
    return e;
  };
  std::string e = quick_error([&] { return error_of(kMinimal, {huge + "=1"}); });
  EXPECT_EQ(e.rfind("--set: key '" + std::string(64, 'k') + "...(9999936 more bytes)' is longer than 64 characters", 0),
            0u)
      << e;
  e = quick_error([&] { return error_of(kMinimal + "[train]\n" + huge + " = 1\n"); });
  EXPECT_EQ(e.rfind("run.toml: key 'train.", 0), 0u) << e;
  EXPECT_NE(e.find("is longer than 64 characters"), std::string::npos) << e;
  e = quick_error([&] { return error_of(kMinimal + huge + " = 1\n"); });  // in [data], a key of its own
  EXPECT_NE(e.find("is longer than 64 characters"), std::string::npos) << e;
  e = quick_error([&] { return error_of(huge + " = 1\n" + kMinimal); });  // at the top, where a section belongs
  EXPECT_NE(e.find("is longer than 64 characters"), std::string::npos) << e;
  e = quick_error([&] { return error_of(kMinimal, {huge}); });  // no '=' at all
  EXPECT_NE(e.find(": expected section.key=value"), std::string::npos) << e;
  // A control character in a key name (a TOML quoted key, a --set argument) does not break the one line.
  EXPECT_EQ(error_of(kMinimal, {"train.a\nb=1"}), "--set: unknown key 'train.a?b'");
  EXPECT_EQ(error_of(kMinimal + "[train]\n\"a\\nb\" = 1\n"), "run.toml: unknown key 'train.a?b'");
  // A key as long as the limit is looked up (and suggested for) as usual.
  EXPECT_EQ(error_of(kMinimal, {"train." + std::string(58, 'x') + "=1"}),
            "--set: unknown key 'train." + std::string(58, 'x') + "'");
  // Every key there is fits the limit.
  Config c;
  for (const auto& key : detail::schema(c)) EXPECT_LE(key.name.size(), detail::kMaxKeyChars) << key.name;
}

// String values are at most 4096 characters (PATH_MAX); words that are no choice, and TOML syntax errors, are
// quoted short.
TEST(Config, OversizedValuesAreRefusedAndQuotedShort) {
  const std::string long_path(5000, 'p');
  EXPECT_EQ(error_of("[data]\npath = \"" + long_path + "\"\n"),
            "run.toml: key 'data.path' is 5000 characters long, longer than 4096 (the most a value may have)");
  EXPECT_EQ(error_of(kMinimal, {"eval.classifier=" + long_path}),
            "--set eval.classifier: the value is 5000 characters long, longer than 4096 (the most a value may have)");
  EXPECT_EQ(error_of(kMinimal, {"train.epochs=" + std::string(10'000'000, '9')}),
            "--set train.epochs: the value is 10000000 characters long, longer than 4096 (the most a value may have)");
  EXPECT_EQ(parse("[data]\npath = \"" + std::string(4096, 'p') + "\"\n", "t").data.path.size(), 4096u);
  std::string e = error_of(kMinimal + "[model]\nloss = \"" + std::string(1'000'000, 'w') + "\"\n");
  EXPECT_EQ(e, "run.toml: key 'model.loss' is \"" + std::string(200, 'w') +
                   "...(999800 more bytes)\"; expected one of bce, hinge");
  e = error_of(kMinimal, {"model.loss=" + std::string(4000, 'w')});
  EXPECT_NE(e.find("...(3800 more bytes)\"; expected one of bce, hinge"), std::string::npos) << e;
  e = error_of(kMinimal + "[augment]\npolicy = \"color," + std::string(4000, 'z') + "\"\n");
  EXPECT_NE(e.find("an unknown operation \"zzz"), std::string::npos) << e;
  EXPECT_LT(e.size(), 400u) << e;
  // toml++ names a redefined table in its message: quoted short too.
  const std::string table = "[" + std::string(100'000, 't') + "]\n";
  e = error_of(table + table);
  EXPECT_NE(e.find("TOML syntax error"), std::string::npos) << e.substr(0, 300);
  EXPECT_LT(e.size(), 400u) << e.substr(0, 300);
}

// Every ready configuration in configs/ loads (keys, types, ranges), so a renamed key cannot leave one behind.
TEST(Config, EveryReadyConfigurationLoads) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SHARDGAN_CONFIG_DIR)) {
    if (entry.path().extension() != ".toml") continue;
    EXPECT_NO_THROW(load(entry.path())) << entry.path();
    ++n;
  }
  EXPECT_GE(n, 7);
  const Config ham = load(std::filesystem::path(SHARDGAN_CONFIG_DIR) / "ham10000_64.toml");
  EXPECT_EQ(ham.model.arch, Arch::kResNet);
  EXPECT_EQ(ham.data.sampling, Sampling::kClassBalanced);
  EXPECT_TRUE(ham.augment.color && ham.augment.translation && ham.augment.cutout);
}

}  // namespace
}  // namespace shardgan::config
