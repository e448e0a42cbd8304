// The parts of a training step, in process: the plan's resolution, the step executors (eager and graphed through the
// CPU graph emulation, injected), dropout's explicit generator, the dry run's JSON, and fp16's skip counting.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "basics.hpp"
#include "data/loader.hpp"
#include "parallel/cuda_graph.hpp"
#include "parallel/grad_sync.hpp"
#include "train/loss_meter.hpp"
#include "train/model_state.hpp"
#include "train/plan.hpp"
#include "train/step.hpp"
#include "train/step_executor.hpp"
#include "util/error.hpp"

namespace shardgan::train {
namespace {

/// One rank alone: every collective is the identity. (The real communicators need MPI; the step does not.)
class SoloCommunicator final : public comm::Communicator {
 public:
  const char* backend() const override { return "solo"; }
  bool device_memory() const override { return false; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce(void*, std::size_t, comm::DType, comm::ReduceOp) override {}
  std::unique_ptr<comm::Request> allreduce_async(void*, std::size_t, comm::DType, comm::ReduceOp) override {
    return std::make_unique<comm::CompletedRequest>();
  }
  void broadcast(void*, std::size_t, comm::DType, int) override {}
  void allgather(const void* send, void* recv, std::size_t count, comm::DType type) override {
    std::memcpy(recv, send, count * comm::dtype_size(type));
  }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

class Step : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new testing::TempDir();
    testing::write_gradient_set(data_->path() / "set", 32, 16);
  }
  static void TearDownTestSuite() { delete data_; }

  static config::Config tiny() {
    config::Config c;
    c.data.path = (data_->path() / "set").string();
    c.data.hflip = true;
    c.model.z_dim = 8;
    c.model.g_width = 4;
    c.model.d_width = 8;
    c.model.dropout = 0.3;  // 16 px: D has a dropout layer
    c.model.conditional = true;
    c.train.batch_size = 4;
    c.train.r1_gamma = 1;  // two kinds of step: with R1 on even steps
    c.train.r1_every = 2;
    c.runtime.threads = 1;
    return c;
  }
  static RankInfo one_rank() {
    RankInfo r;
    r.host = "test";
    return r;
  }

  /// `steps` steps of a fresh run of `cfg`, through the graphed executor (CPU emulation) or the eager one: the state
  /// afterwards and the last step's losses.
  static std::pair<parallel::NamedTensors, std::vector<double>> train(config::Config cfg, bool graphed, int steps) {
    cfg.runtime.cuda_graphs = graphed;
    const Placement placement = resolve_placement(cfg, one_rank(), /*emulated_graphs=*/graphed);
    torch::manual_seed(static_cast<uint64_t>(cfg.train.seed));  // as the trainer seeds the models' initialisation
    Plan plan(cfg, one_rank(), placement);
    SoloCommunicator comm;
    parallel::GradSync sync_g(comm, plan.gan.generator->parameters(), 25, true);
    parallel::GradSync sync_d(comm, plan.gan.discriminator->parameters(), 25, true);
    AdaptiveAugment ada(cfg.augment, plan.sampler.global_batch(), placement.device);
    GanStep step(plan, plan.gan, comm, sync_g, sync_d, ada);
    const auto executor = make_step_executor(plan, plan.gan, [](int) { return parallel::make_emulated_graph(); });
    data::Loader loader(plan.dataset, plan.sampler, 0, steps, /*depth=*/2, /*threads=*/1);
    StepLosses losses;
    for (int s = 0; s < steps; ++s) {
      data::Batch batch = loader.next();
      losses = executor->run(step, step_inputs(plan, batch, s));
      plan.gan.update_ema(s + 1);
    }
    parallel::NamedTensors state;
    for (const auto& [name, t] : state_tensors(plan.gan)) state.emplace_back(name, t.clone());
    if (steps == 0) return {state, {}};
    return {state, {losses.d.item<double>(), losses.g.item<double>()}};
  }

  static inline testing::TempDir* data_ = nullptr;
};

// The graphed executor (3 warm-up steps of each kind, a capture, replays) computes exactly what the eager one does:
// the same weights, buffers and losses after 10 steps with dropout, flips, labels and lazy R1.
TEST_F(Step, GraphedExecutorIsTheEagerStepBitForBit) {
  const auto [eager, eager_losses] = train(tiny(), /*graphed=*/false, 10);
  const auto [graphed, graphed_losses] = train(tiny(), /*graphed=*/true, 10);
  ASSERT_EQ(eager.size(), graphed.size());
  for (std::size_t i = 0; i < eager.size(); ++i)
    EXPECT_TRUE(torch::equal(eager[i].second, graphed[i].second)) << eager[i].first;
  EXPECT_EQ(eager_losses, graphed_losses);
  // And training moved the models: the comparison is not of two untouched initialisations.
  const auto [start, unused] = train(tiny(), false, 0);
  EXPECT_FALSE(torch::equal(start.front().second, eager.front().second));
}

TEST_F(Step, TheStepDrawsNothingFromLibTorchsGlobalGenerator) {
  torch::manual_seed(7);
  const torch::Tensor expected = torch::rand({4});
  config::Config cfg = tiny();
  const Placement placement = resolve_placement(cfg, one_rank(), false);
  Plan plan(cfg, one_rank(), placement);  // the models' initialisation draws from it (seeded by the trainer)
  SoloCommunicator comm;
  parallel::GradSync sync_g(comm, plan.gan.generator->parameters(), 25, true);
  parallel::GradSync sync_d(comm, plan.gan.discriminator->parameters(), 25, true);
  AdaptiveAugment ada(cfg.augment, plan.sampler.global_batch(), placement.device);
  GanStep step(plan, plan.gan, comm, sync_g, sync_d, ada);
  const auto executor = make_step_executor(plan, plan.gan, {});
  data::Loader loader(plan.dataset, plan.sampler, 0, 3, 2, 1);
  torch::manual_seed(7);
  for (int s = 0; s < 3; ++s) {
    data::Batch batch = loader.next();
    executor->run(step, step_inputs(plan, batch, s));
  }
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected));
}

TEST_F(Step, DropoutMasksComeFromTheDiscriminatorsSeed) {
  config::Config cfg = tiny();
  torch::manual_seed(0);
  Gan gan(cfg, DataSpec{{16, 16, 1}, {"a", "b"}}, torch::kCPU);
  auto& D = gan.discriminator;
  D->train();
  const torch::Tensor x = torch::randn({4, 1, 16, 16}), y = torch::tensor({0, 1, 0, 1}, torch::kInt64);
  torch::NoGradGuard no_grad;
  D->seed_dropout(11);
  const torch::Tensor a = D->forward(x, y);
  torch::manual_seed(12345);  // the global generator plays no part
  D->seed_dropout(11);
  const torch::Tensor b = D->forward(x, y);
  D->seed_dropout(12);
  const torch::Tensor c = D->forward(x, y);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

TEST_F(Step, PlacementRefusesWhatCannotRunHere) {
  config::Config cfg = tiny();
  cfg.runtime.cuda_graphs = true;
  EXPECT_THROW(resolve_placement(cfg, one_rank(), /*emulated_graphs=*/false), Error);
  EXPECT_TRUE(resolve_placement(cfg, one_rank(), /*emulated_graphs=*/true).emulated_graphs);
  cfg.runtime.cuda_graphs = false;
  cfg.comm.backend = config::Backend::kNccl;
  EXPECT_THROW(resolve_placement(cfg, one_rank(), false), Error);
  cfg.comm.backend = config::Backend::kAuto;
  cfg.runtime.device = config::Device::kCuda;
  EXPECT_THROW(resolve_placement(cfg, one_rank(), false), Error);
  cfg.runtime.device = config::Device::kAuto;
  cfg.runtime.threads = 0;
  RankInfo four_cores = one_rank();
  four_cores.cores = 4;
  four_cores.local_size = 2;
  const Placement p = resolve_placement(cfg, four_cores, false);
  EXPECT_EQ(p.threads, 2);  // cores on the node / ranks on the node
  EXPECT_EQ(p.backend, config::Backend::kMpi);
  EXPECT_TRUE(p.device.is_cpu());
}

// The dry run's plan as JSON (what launch/train-local.sh reads), and planning changes no process-wide setting.
TEST_F(Step, PlanJsonHoldsTheConfigAndThePlanAndPlanningChangesNothing) {
  config::Config cfg = tiny();
  cfg.train.deterministic = true;
  cfg.runtime.threads = 1;
  const int threads = torch::get_num_threads();
  const bool deterministic = at::globalContext().deterministicAlgorithms();
  const Plan plan(cfg, one_rank(), resolve_placement(cfg, one_rank(), false));
  const auto json = nlohmann::json::parse(plan_json(plan, "runs/x"));
  EXPECT_EQ(json["config"]["runtime.device"], "auto");
  EXPECT_EQ(json["config"]["train.batch_size"], 4);
  EXPECT_EQ(json["config"]["model.dropout"], 0.3);
  EXPECT_EQ(json["plan"]["device"], "cpu");
  EXPECT_EQ(json["plan"]["images"], 32);
  EXPECT_EQ(json["plan"]["steps_per_epoch"], 8);
  EXPECT_EQ(json["plan"]["total_steps"], plan.total_steps);
  EXPECT_EQ(json["plan"]["run_dir"], "runs/x");
  EXPECT_NE(plan_text(plan, "runs/x").find("steps        8 per epoch"), std::string::npos);
  EXPECT_EQ(torch::get_num_threads(), threads);
  EXPECT_EQ(at::globalContext().deterministicAlgorithms(), deterministic);
}

TEST(LossMeter, MeansOverTheStepsSinceTheLastTake) {
  LossMeter meter;
  const auto losses = [](double d, double g, double real, double fake) {
    StepLosses l;
    l.grad_norm_d = torch::tensor(d * 10, torch::kFloat32);
    l.grad_norm_g = torch::tensor(g * 10, torch::kFloat32);
    l.d = torch::tensor(d, torch::kFloat32);
    l.g = torch::tensor(g, torch::kFloat32);
    l.d_real = torch::tensor(real, torch::kFloat32);
    l.d_fake = torch::tensor(fake, torch::kFloat32);
    return l;
  };
  meter.add(losses(1, 2, 0.5, 0.25));
  meter.add(losses(3, 4, 0.75, 0.75));
  EXPECT_EQ(meter.count(), 2);
  const torch::Tensor mean = meter.take_mean();
  EXPECT_EQ(mean.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::equal(mean, torch::tensor({2.0, 3.0, 0.625, 0.5, 20.0, 30.0}, torch::kFloat64)));
  EXPECT_EQ(meter.count(), 0);
  meter.add(losses(5, 6, 1, 0));
  EXPECT_TRUE(torch::equal(meter.take_mean(), torch::tensor({5.0, 6.0, 1.0, 0.0, 50.0, 60.0}, torch::kFloat64)));
}

}  // namespace
}  // namespace shardgan::train
