#include "config/config.hpp"

#include <gtest/gtest.h>

#include "util/error.hpp"

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
  EXPECT_EQ(c.model.loss, "bce");
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
  EXPECT_EQ(error_of(kMinimal + "[data]\nhflip = 1\n").find("run.toml"), 0u);
  EXPECT_EQ(error_of(kMinimal + "[model]\nloss = \"wgan\"\n"),
            "run.toml: key 'model.loss' is \"wgan\"; expected one of bce, hinge");
  EXPECT_EQ(error_of(kMinimal + "[train]\nbatch_size = 0\n"),
            "run.toml: key 'train.batch_size' must be positive, got 0");
  EXPECT_EQ(error_of("[train]\nepochs = 3\n"),
            "run.toml: key 'data.path' is required (a folder written by shardgan-pack)");
  EXPECT_NE(error_of("[train\nepochs = 3\n").find("run.toml:1: TOML syntax error"), std::string::npos);
}

TEST(Config, OverridesFromTheCommandLine) {
  const Config c =
      parse(kMinimal, "run.toml",
            {"train.epochs=7", "model.loss=hinge", "data.path=other", "model.conditional=true", "optim.lr_d=3e-4"});
  EXPECT_EQ(c.train.epochs, 7);
  EXPECT_EQ(c.model.loss, "hinge");
  EXPECT_EQ(c.data.path, "other");
  EXPECT_TRUE(c.model.conditional);
  EXPECT_DOUBLE_EQ(c.optim.lr_d, 3e-4);
  EXPECT_EQ(error_of(kMinimal, {"train.epoch=3"}), "--set: unknown key 'train.epoch' (did you mean 'train.epochs'?)");
  EXPECT_EQ(error_of(kMinimal, {"train.epochs=many"}), "--set: key 'train.epochs' must be an integer");
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

}  // namespace
}  // namespace shardgan::config
