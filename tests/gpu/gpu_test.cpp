// The CUDA checks (bench/gpu/run.sh runs them on the GPU machine; everywhere else they are skipped, saying why).
// Under mpirun with 1 rank (NCCL, which refuses two ranks on one GPU) and 2 ranks (the MPI backend staging CUDA
// tensors through pinned host memory, both ranks on the same GPU). The ChildProcesses tests run everywhere: the
// shardgan-train runs here are processes of their own, started from a rank of this mpirun job.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "basics.hpp"
#include "comm/communicator.hpp"
#include "config/config.hpp"
#include "data/manifest.hpp"
#include "data/shard_format.hpp"
#include "mpi_test.hpp"
#include "parallel/cuda_graph.hpp"
#include "parallel/cuda_stream.hpp"
#include "parallel/grad_sync.hpp"
#include "parallel/tensor_comm.hpp"
#include "report/rows.hpp"
#include "run_files.hpp"
#include "train/capturable_adam.hpp"
#include "train/checkpoint.hpp"
#include "train/gan.hpp"
#include "train/model_state.hpp"

namespace shardgan {
namespace {
namespace fs = std::filesystem;
using torch::Tensor;

#define REQUIRE_GPU()                                                                         \
  do {                                                                                        \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (or no CUDA LibTorch)"; \
  } while (0)

const torch::Device kGpu(torch::kCUDA, 0);

config::Config tiny_config(const std::vector<std::string>& overrides = {}) {
  return config::parse(
      "[data]\npath = \"x\"\n[model]\nz_dim = 8\ng_width = 4\nd_width = 8\nconditional = true\ndropout = 0\n", "gpu",
      overrides);
}
const train::DataSpec kSpec{{16, 16, 3}, {"horizontal", "vertical"}};

/// Exact comparisons between devices need IEEE float32 arithmetic on the GPU too.
void no_tf32() {
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
}

double relative_difference(const Tensor& a, const Tensor& b) {
  const Tensor x = a.detach().to(torch::kCPU, torch::kFloat64), y = b.detach().to(torch::kCPU, torch::kFloat64);
  return (x - y).abs().max().item<double>() / std::max(1e-12, x.abs().max().item<double>());
}

TEST(Cuda, ModelsForwardAndBackwardMatchTheCpu) {
  REQUIRE_GPU();
  no_tf32();
  torch::manual_seed(1);
  train::Gan cpu(tiny_config(), kSpec, torch::kCPU);
  torch::manual_seed(1);
  train::Gan gpu(tiny_config(), kSpec, kGpu);
  const Tensor z = torch::randn({6, 8}), labels = torch::tensor({0, 1, 0, 1, 1, 0});
  const Tensor real = torch::rand({6, 3, 16, 16}) * 2 - 1;
  auto step = [&](train::Gan& gan, torch::Device device) {
    const Tensor fake = gan.generator->forward(z.to(device), labels.to(device));
    const Tensor logits = gan.discriminator->forward(torch::cat({real.to(device), fake}), labels.repeat(2).to(device));
    logits.square().mean().backward();
    return std::make_pair(fake, logits);
  };
  const auto [fake_cpu, logits_cpu] = step(cpu, torch::kCPU);
  const auto [fake_gpu, logits_gpu] = step(gpu, kGpu);
  EXPECT_TRUE(fake_gpu.is_cuda());
  EXPECT_LT(relative_difference(fake_cpu, fake_gpu), 1e-4);
  EXPECT_LT(relative_difference(logits_cpu, logits_gpu), 1e-4);
  const auto gc = cpu.generator->named_parameters(), gg = gpu.generator->named_parameters();
  for (std::size_t i = 0; i < gc.size(); ++i)
    EXPECT_LT(relative_difference(gc[i].value().grad(), gg[i].value().grad()), 1e-3) << gc[i].key();
}

TEST(Cuda, CheckpointsMoveBetweenCudaAndCpu) {
  REQUIRE_GPU();
  if (testing::mpi_session().rank() != 0) GTEST_SKIP() << "one rank is enough";
  testing::TempDir tmp;
  const config::Config cfg = tiny_config();
  torch::manual_seed(2);
  train::Gan gpu(cfg, kSpec, kGpu);
  train::CheckpointState state;
  state.step = 3;
  state.model_hash = cfg.model_hash();
  state.spec = kSpec;
  const fs::path dir = train::save_checkpoint(tmp.path(), gpu, state, cfg.to_toml(), 2);
  torch::manual_seed(3);
  train::Gan cpu(cfg, kSpec, torch::kCPU);
  train::load_checkpoint(dir, cpu, cfg.model_hash(), /*optimizers=*/true);
  const auto a = train::state_tensors(gpu), b = train::state_tensors(cpu);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(b[i].second.device().is_cpu()) << b[i].first;
    EXPECT_TRUE(torch::equal(a[i].second.cpu(), b[i].second)) << a[i].first;
  }
  // And back: a CPU checkpoint onto the GPU.
  state.step = 4;
  const fs::path back = train::save_checkpoint(tmp.path(), cpu, state, cfg.to_toml(), 2);
  torch::manual_seed(4);
  train::Gan gpu2(cfg, kSpec, kGpu);
  train::load_checkpoint(back, gpu2, cfg.model_hash(), /*optimizers=*/true);
  const auto c = train::state_tensors(gpu2);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(c[i].second.is_cuda()) << c[i].first;
    EXPECT_TRUE(torch::equal(a[i].second, c[i].second)) << a[i].first;
  }
}

/// NCCL needs a GPU per rank; the MPI backend takes CUDA tensors from any number of ranks on one GPU (staged).
std::unique_ptr<comm::Communicator> communicator(bool nccl) {
  return nccl ? comm::make_nccl_communicator(MPI_COMM_WORLD, 0, parallel::current_cuda_stream(0))
              : comm::make_mpi_communicator(MPI_COMM_WORLD);
}
bool nccl_possible() {
  return testing::mpi_session().size() <= static_cast<int>(torch::cuda::device_count()) &&
         testing::mpi_session().size() == 1;
}

TEST(Nccl, CollectivesOnDeviceAndHostBuffers) {
  REQUIRE_GPU();
  if (!nccl_possible()) GTEST_SKIP() << "NCCL runs one rank per GPU";
  auto comm = communicator(true);
  const int p = comm->size(), r = comm->rank();
  ASSERT_TRUE(comm->device_memory());
  // Device tensors, float32 and bfloat16, sum and average.
  Tensor t = torch::arange(1000, torch::TensorOptions(kGpu).dtype(torch::kFloat32)) * (r + 1);
  parallel::allreduce(*comm, t, comm::ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(t.cpu(), torch::arange(1000, torch::kFloat32) * (p * (p + 1) / 2)));
  Tensor h = torch::full({7}, static_cast<float>(r + 1), torch::TensorOptions(kGpu).dtype(torch::kBFloat16));
  parallel::allreduce(*comm, h, comm::ReduceOp::kAvg);
  EXPECT_NEAR(h[0].item<float>(), (p + 1) / 2.0, 1e-2);
  // Host buffers go through the scratch buffer.
  std::vector<double> host{1.0 * r, 2.0};
  comm->allreduce(host, comm::ReduceOp::kSum);
  EXPECT_EQ(host[1], 2.0 * p);
  EXPECT_EQ(comm->allreduce(int64_t{1}, comm::ReduceOp::kSum), p);
  // Asynchronous all-reduce, ordered on LibTorch's stream, and the fence the host waits on.
  Tensor g = torch::ones({1 << 20}, kGpu) * (r + 1);
  auto request = comm->allreduce_async(g.data_ptr(), static_cast<std::size_t>(g.numel()), comm::DType::kFloat32,
                                       comm::ReduceOp::kAvg);
  request->wait();
  Tensor after = g * 2;  // queued on the compute stream after the all-reduce
  auto fence = comm->fence();
  fence->wait();
  EXPECT_TRUE(fence->test());
  EXPECT_NEAR(after[12345].item<float>(), 2.0 * (p + 1) / 2.0, 1e-5);
  Tensor b = torch::full({5}, static_cast<float>(r), kGpu);
  parallel::broadcast(*comm, b, 0);
  EXPECT_EQ(b.sum().item<float>(), 0.0f);
  const auto all = comm->allgather(std::vector<int64_t>{r, 7});
  EXPECT_EQ(all.size(), static_cast<std::size_t>(2 * p));
  comm->barrier();
}

/// GradSync on CUDA gradients: buckets, hooks and the backend (NCCL with one rank per GPU; MPI with every rank on one
/// GPU, staged through pinned memory) must give every rank the average of the ranks' gradients.
void grad_sync_averages(bool nccl) {
  auto comm = communicator(nccl);
  const int p = comm->size(), r = comm->rank();
  torch::manual_seed(5);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3)), torch::nn::ReLU(),
                            torch::nn::Flatten(), torch::nn::Linear(8 * 14 * 14, 4));
  net->to(kGpu);
  auto params = net->parameters();
  parallel::GradSync sync(*comm, params, /*bucket_mb=*/0.01, /*overlap=*/true, /*single_rank_too=*/true);
  ASSERT_GT(sync.num_buckets(), 1u);
  torch::manual_seed(100 + r);
  const Tensor x = torch::randn({4, 3, 16, 16}).to(kGpu);
  // The expected average: each rank's own gradient, averaged through the host.
  std::vector<Tensor> expected;
  {
    auto loss = net->forward(x).square().mean();
    loss.backward();
    for (auto& q : params) {
      Tensor g = q.grad().cpu().clone();
      parallel::allreduce(*comm, g, comm::ReduceOp::kAvg);  // host tensor: fine for either backend
      expected.push_back(g);
      q.mutable_grad() = Tensor();
    }
  }
  for (int round = 0; round < 2; ++round) {
    sync.prepare();
    net->forward(x).square().mean().backward();
    sync.finish();
    for (std::size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(params[i].grad().is_cuda());
      EXPECT_LT(relative_difference(expected[i], params[i].grad()), 1e-5) << "parameter " << i << ", round " << round;
    }
  }
  (void)p;
}

TEST(GradSyncCuda, OverNccl) {
  REQUIRE_GPU();
  if (!nccl_possible()) GTEST_SKIP() << "NCCL runs one rank per GPU";
  grad_sync_averages(true);
}

// runtime.cuda_graphs with more than one rank puts GradSync's bucket all-reduces (NCCL, on its own stream, joined to
// the capture stream by events) inside the graph. One GPU allows one NCCL rank: GradSync runs its buckets anyway
// (single_rank_too), so the capture, the hooks during a captured backward and the replays are what is checked. Each
// replay on new inputs must give the gradients an eager backward gives.
TEST(CudaGraphs, GradSyncOverNcclIsCapturedAndReplayed) {
  REQUIRE_GPU();
  if (!nccl_possible()) GTEST_SKIP() << "NCCL runs one rank per GPU";
  auto comm = communicator(true);
  torch::manual_seed(5);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3)), torch::nn::ReLU(),
                            torch::nn::Flatten(), torch::nn::Linear(8 * 14 * 14, 4));
  auto reference = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(net->clone());
  net->to(kGpu);
  reference->to(kGpu);
  auto params = net->parameters();
  // Made on the graph stream: the gradient accumulators it keeps record their stream (see on_graph_stream).
  std::optional<parallel::GradSync> made;
  parallel::on_graph_stream(
      0, [&] { made.emplace(*comm, params, /*bucket_mb=*/0.01, /*overlap=*/true, /*single_rank_too=*/true); });
  parallel::GradSync& sync = *made;
  ASSERT_GT(sync.num_buckets(), 1u);
  Tensor x = torch::randn({4, 3, 16, 16}).to(kGpu);  // the graph's static input
  const auto body = [&] {
    sync.prepare();
    net->forward(x).square().mean().backward();
    sync.finish();
  };
  auto graph = parallel::make_cuda_graph(0);
  graph->warm_up(body);
  graph->warm_up(body);
  graph->capture(body);
  for (int round = 0; round < 3; ++round) {
    const Tensor fresh = torch::randn({4, 3, 16, 16}).to(kGpu);
    x.copy_(fresh);
    graph->replay();
    for (auto& q : reference->parameters()) q.mutable_grad() = Tensor();
    reference->forward(fresh).square().mean().backward();
    const auto expected = reference->parameters();
    for (std::size_t i = 0; i < params.size(); ++i)
      EXPECT_LT(relative_difference(expected[i].grad(), params[i].grad()), 1e-5)
          << "parameter " << i << ", replay " << round;
  }
  comm->barrier();
}

TEST(GradSyncCuda, OverMpiStagedThroughPinnedMemory) {
  REQUIRE_GPU();
  grad_sync_averages(false);
}

// A process started from a rank of an mpirun job inherits the launch's variables unless they are removed: Open MPI
// 4.1.4's MPI_Init in it then takes itself for that rank and aborts (reproduced at 1 and 2 ranks: DISABLED_ test
// below). testing::run removes them; install locations and the user's own MCA parameters stay.
TEST(ChildProcesses, TheirEnvironmentHasNoMpiLaunchVariables) {
  const std::vector<std::string> launch = {
      "OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=2", "OMPI_COMM_WORLD_LOCAL_RANK=1", "OMPI_UNIVERSE_SIZE=2",
      "OMPI_FILE_LOCATION=/tmp/ompi.x/pid.1/0/1", "OMPI_ARGV=", "OMPI_MCA_ess=^singleton",
      "OMPI_MCA_ess_base_jobid=1480589313", "OMPI_MCA_ess_base_vpid=1", "OMPI_MCA_orte_hnp_uri=1480589312.0;tcp://x:1",
      "OMPI_MCA_orte_launch=1", "OMPI_MCA_pmix=^s1,s2,cray,isolated", "OMPI_MCA_initial_wdir=/work",
      "OMPI_MCA_mpi_oversubscribe=0", "OMPI_MCA_shmem_RUNTIME_QUERY_hint=mmap", "PMIX_RANK=1", "PMIX_NAMESPACE=7",
      "PMIX_SERVER_URI41=1480589312.0;tcp4://127.0.0.1:47691", "PMIX_SERVER_TMPDIR=/tmp/ompi.x", "PMIX_ID=7.1",
      "PRTE_MCA_prte_launch=1", "PMI_RANK=1", "PMI_FD=5", "PMI_SIZE=2"};
  const std::vector<std::string> kept = {
      "PATH=/opt/ompi/bin:/usr/bin", "LD_LIBRARY_PATH=/opt/ompi/lib", "OPAL_PREFIX=/opt/ompi",
      "PMIX_INSTALL_PREFIX=/opt/ompi", "OMPI_MCA_plm_rsh_agent=false", "OMPI_MCA_btl_tcp_if_include=eth0",
      "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "CUDA_VISIBLE_DEVICES=0", "PMIXED=1",
      "NCCL_DEBUG=WARN", "SLURM_PROCID=1", "EMPTY="};
  std::vector<std::string> all;
  for (std::size_t i = 0; i < std::max(launch.size(), kept.size()); ++i) {  // interleaved: the order is kept
    if (i < launch.size()) all.push_back(launch[i]);
    if (i < kept.size()) all.push_back(kept[i]);
  }
  EXPECT_EQ(testing::outside_mpi_job(all), kept);
  for (const auto& entry : launch) EXPECT_TRUE(testing::is_mpi_launch_variable(entry.substr(0, entry.find('='))));
  // Under mpirun (as ctest runs this binary) this rank has launch variables, and its children none.
  std::size_t here = 0;
  for (const auto& entry : testing::current_environment())
    here += testing::is_mpi_launch_variable(entry.substr(0, entry.find('='))) ? 1 : 0;
  if (here == 0) std::printf("note: no MPI launch variables here (not started by mpirun?)\n");
  const auto child = testing::run("env");
  ASSERT_EQ(child.exit_code, 0) << child.err;
  std::istringstream lines(child.out);
  for (std::string line; std::getline(lines, line);)
    EXPECT_FALSE(testing::is_mpi_launch_variable(line.substr(0, line.find('=')))) << line;
  for (const char* name : {"OPAL_PREFIX", "PMIX_INSTALL_PREFIX", "PATH"}) {
    const char* value = std::getenv(name);
    if (value != nullptr) {
      EXPECT_NE(child.out.find(std::string(name) + "=" + value + "\n"), std::string::npos) << name;
    }
  }
}

// The defect itself: from a rank of this job, a child that calls MPI_Init (a singleton: rank 0 of 1) starts.
TEST(ChildProcesses, StartAnMpiJobOfTheirOwn) {
  const auto r = testing::run(SHARDGAN_MPI_PROBE_BIN);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "rank 0 of 1\n") << r.err;
}

// What the cleaning prevents (Open MPI 4.1.4, 1 and 2 ranks: the child's MPI_Init aborts, exit 1; at 2 ranks mpirun
// then hangs after the tests, waiting for the aborted child). Not run by default: it shows the MPI's behaviour, not
// shardgan's. By hand: timeout 120 mpirun -np 1 build/tests/gpu_test --gtest_filter='ChildProcesses.DISABLED_*'
// --gtest_also_run_disabled_tests
TEST(ChildProcesses, DISABLED_WithTheLaunchVariablesTheirMpiInitFails) {
  const int status = std::system((std::string("timeout 60 ") + SHARDGAN_MPI_PROBE_BIN + " >/dev/null 2>&1").c_str());
  EXPECT_NE(status, 0);
}

/// shardgan-train runs on a small gradient data set with one configuration, each in a run folder of its own, each
/// its own process (MPI singleton init, no mpirun). `train(name, extra)` returns the run's metrics rows;
/// `environment` ("NAME=value ...") is set for the run.
class TrainRuns {
 public:
  explicit TrainRuns(const std::string& toml) {
    testing::write_gradient_set(tmp_ / "data", 64, 16, 3, 32);
    testing::write_text(tmp_ / "c.toml", toml);
  }
  std::vector<report::MetricsRow> operator()(const std::string& name, const std::string& extra,
                                             const std::string& environment = "") const {
    const auto r = testing::run(environment + " " + SHARDGAN_TRAIN_BIN + " --set data.path=" +
                                (tmp_ / "data").string() + " --config " + (tmp_ / "c.toml").string() + " --run-dir " +
                                (tmp_ / name).string() + " " + extra);
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    last_err_ = r.err;
    return testing::metric_rows(tmp_ / name);
  }
  /// The last run's stderr.
  const std::string& last_err() const { return last_err_; }

 private:
  testing::TempDir tmp_;
  mutable std::string last_err_;
};

// shardgan-train on the GPU against the CPU: the same data, noise and initial weights; dropout 0 and TF32 off
// (train.deterministic) leave float summation order as the only difference, so after 6 steps the logged losses agree
// within 1e-3 (measured differences are reported). Then bf16, fp16 (loss scaling) and channels-last run finite.
TEST(CudaTraining, FirstStepsMatchTheCpuRun) {
  REQUIRE_GPU();
  if (testing::mpi_session().rank() != 0) GTEST_SKIP() << "one rank is enough";
  const TrainRuns train(
      "[data]\npath = \"x\"\n[model]\nz_dim = 16\ng_width = 8\nd_width = 16\nconditional = true\n"
      "dropout = 0\n[train]\nbatch_size = 16\nmax_steps = 6\nlog_every = 2\ndeterministic = true\n"
      "[runtime]\nthreads = 1\n");
  const auto cpu = train("cpu", "--set runtime.device=cpu");
  const auto gpu = train("gpu", "--set runtime.device=cuda");
  ASSERT_EQ(cpu.size(), 3u);
  ASSERT_EQ(gpu.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    std::printf("step %lld: loss_d cpu %.7f gpu %.7f, loss_g cpu %.7f gpu %.7f\n", static_cast<long long>(cpu[i].step),
                cpu[i].loss_d, gpu[i].loss_d, cpu[i].loss_g, gpu[i].loss_g);
    EXPECT_NEAR(cpu[i].loss_d, gpu[i].loss_d, 1e-3);
    EXPECT_NEAR(cpu[i].loss_g, gpu[i].loss_g, 1e-3);
  }
  for (const std::string precision : {"bf16", "fp16"}) {
    const auto rows = train(precision, "--set runtime.device=cuda --set runtime.precision=" + precision);
    ASSERT_EQ(rows.size(), 3u) << precision;
    for (const auto& row : rows) EXPECT_TRUE(std::isfinite(row.loss_d) && std::isfinite(row.loss_g)) << precision;
    if (precision == "fp16") {
      EXPECT_TRUE(rows.back().loss_scale.has_value());
    }
  }
  const auto nhwc = train("nhwc", "--set runtime.device=cuda --set runtime.channels_last=true");
  ASSERT_EQ(nhwc.size(), 3u);
  EXPECT_NEAR(nhwc[2].loss_d, gpu[2].loss_d, 1e-3);
}

// runtime.cuda_graphs against eager mode on the GPU: 3 warm-up steps, a capture, replays. The same kernels on the
// same numbers (Adam is LibTorch's fused kernel in both), so the losses agree closely; with dropout too, since a replay's masks come from the step's seed as in eager mode; and with augmentation,
// ADA and lazy R1. bf16 and channels-last graphs run finite, fp16's loss scale moves as in eager mode, and a graph
// run resumes from an eager checkpoint.
TEST(CudaTraining, CudaGraphsTrainTheEagerModel) {
  REQUIRE_GPU();
  if (testing::mpi_session().rank() != 0) GTEST_SKIP() << "one rank is enough";
  const TrainRuns train(
      "[data]\npath = \"x\"\nhflip = true\n[model]\nz_dim = 16\ng_width = 8\nd_width = 16\n"
      "conditional = true\ndropout = 0.3\n[train]\nbatch_size = 16\nmax_steps = 8\nlog_every = 2\n"
      "deterministic = true\n[runtime]\ndevice = \"cuda\"\n");
  const auto eager = train("eager", "");
  const auto graphs = train("graphs", "--set runtime.cuda_graphs=true");
  ASSERT_EQ(eager.size(), 4u);
  ASSERT_EQ(graphs.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    std::printf("step %lld: loss_d eager %.7f graphs %.7f, loss_g eager %.7f graphs %.7f\n",
                static_cast<long long>(eager[i].step), eager[i].loss_d, graphs[i].loss_d, eager[i].loss_g,
                graphs[i].loss_g);
    EXPECT_NEAR(eager[i].loss_d, graphs[i].loss_d, 1e-4);
    EXPECT_NEAR(eager[i].loss_g, graphs[i].loss_g, 1e-4);
  }
  for (const auto& [name, extra] : std::vector<std::pair<std::string, std::string>>{
           {"graphs-bf16", "--set runtime.precision=bf16"}, {"graphs-nhwc", "--set runtime.channels_last=true"}}) {
    const auto rows = train(name, "--set runtime.cuda_graphs=true " + extra);
    ASSERT_EQ(rows.size(), 4u) << extra;
    for (const auto& row : rows) EXPECT_TRUE(std::isfinite(row.loss_d) && std::isfinite(row.loss_g)) << extra;
  }
  // Augmentation with ADA and lazy R1 (a second graph for the R1 steps) against eager mode.
  const std::string small_data =
      "--set augment.policy=color,translation,cutout --set augment.ada_target=0.6 "
      "--set augment.ada_interval=2 --set augment.ada_kimg=0.1 --set train.r1_gamma=1 "
      "--set train.r1_every=2 --set train.max_steps=12";
  const auto eager_aug = train("eager-aug", small_data);
  const auto graphs_aug = train("graphs-aug", small_data + " --set runtime.cuda_graphs=true");
  ASSERT_EQ(eager_aug.size(), 6u);
  ASSERT_EQ(graphs_aug.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    std::printf("augment+R1 step %lld: loss_d eager %.7f graphs %.7f\n", static_cast<long long>(eager_aug[i].step),
                eager_aug[i].loss_d, graphs_aug[i].loss_d);
    EXPECT_NEAR(eager_aug[i].loss_d, graphs_aug[i].loss_d, 1e-4);
  }
  // An eager run's checkpoint (step 4) continued with graphs to step 8: the eager run's numbers again.
  train("resumed", "--set train.max_steps=4");
  const auto resumed = train("resumed", "--resume auto --set runtime.cuda_graphs=true");
  ASSERT_FALSE(resumed.empty());
  EXPECT_NEAR(resumed.back().loss_d, eager.back().loss_d, 1e-4);
  // fp16 with the loss scale on the device: a scale of 2^40 overflows at first, updates are skipped and the scale
  // halves, inside the graph, as in eager mode.
  const std::string fp16 = "--set runtime.precision=fp16 --set runtime.loss_scale=1099511627776";
  const auto fp16_eager = train("fp16-eager", fp16);
  const auto fp16_graphs = train("fp16-graphs", fp16 + " --set runtime.cuda_graphs=true");
  ASSERT_EQ(fp16_eager.size(), 4u);
  ASSERT_EQ(fp16_graphs.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(fp16_graphs[i].loss_scale && fp16_graphs[i].skipped_updates);
    std::printf("fp16 step %lld: scale eager %g graphs %g, skipped eager %lld graphs %lld\n",
                static_cast<long long>(fp16_eager[i].step), *fp16_eager[i].loss_scale, *fp16_graphs[i].loss_scale,
                static_cast<long long>(*fp16_eager[i].skipped_updates),
                static_cast<long long>(*fp16_graphs[i].skipped_updates));
    EXPECT_TRUE(std::isfinite(fp16_graphs[i].loss_d) && std::isfinite(fp16_graphs[i].loss_g));
    EXPECT_EQ(*fp16_eager[i].loss_scale, *fp16_graphs[i].loss_scale);
  }
  EXPECT_GT(*fp16_graphs[0].skipped_updates, 0);
}

// Eager CUDA steps use CapturableAdam's fused kernel and one _foreach_lerp_ for the EMA: both against their
// per-parameter forms (torch::optim::Adam, lerp_) on the same CUDA numbers, with channels-last weights (the fused
// kernel wants moments and gradients in the parameter's layout).
TEST(Cuda, FusedAdamAndForeachEmaMatchThePerParameterForms) {
  REQUIRE_GPU();
  no_tf32();
  auto cfg = tiny_config({"runtime.channels_last=true", "model.g_ema=0.999"});
  torch::manual_seed(6);
  train::Gan fused(cfg, kSpec, kGpu);
  torch::manual_seed(6);
  train::Gan reference(cfg, kSpec, kGpu);
  train::CapturableAdam adam(*fused.optim_g);
  for (int64_t t = 0; t < 4; ++t) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(300 + static_cast<uint64_t>(t));
    const auto pf = fused.generator->parameters(), pr = reference.generator->parameters();
    for (std::size_t i = 0; i < pf.size(); ++i) {
      const Tensor g = torch::randn(pf[i].sizes(), gen).to(kGpu);
      pf[i].mutable_grad() = torch::empty_like(pf[i], at::MemoryFormat::Preserve).copy_(g);
      pr[i].mutable_grad() = torch::empty_like(pr[i], at::MemoryFormat::Preserve).copy_(g);
    }
    adam.step();
    reference.optim_g->step();
    fused.update_ema(t);
    {
      torch::NoGradGuard no_grad;
      const double beta = std::min(0.999, (1.0 + t) / (10.0 + t));
      const auto ema = reference.generator_ema->parameters();
      for (std::size_t i = 0; i < ema.size(); ++i) ema[i].lerp_(pr[i], 1.0 - beta);
    }
  }
  EXPECT_EQ(adam.device_step(), 4);
  const auto a = train::state_tensors(fused), b = train::state_tensors(reference);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_LT(relative_difference(b[i].second, a[i].second), 1e-5) << a[i].first;
  adam.store_host_step();  // what a checkpoint saves: LibTorch's count
  for (const auto& entry : fused.optim_g->state())
    EXPECT_EQ(static_cast<const torch::optim::AdamParamState&>(*entry.second).step(), 4);
}

// train.deterministic on CUDA needs CUBLAS_WORKSPACE_CONFIG = ":4096:8" or ":16:8" for cuBLAS GEMMs: shardgan-train
// sets it before CUDA starts when it is missing (the runs above) or invalid (here, with a note), and an eager CUDA
// run (fused Adam) resumed from its checkpoint continues as the uninterrupted run: Adam's step count reached the
// checkpoint.
TEST(CudaTraining, DeterministicRunsFixTheCublasWorkspaceAndResumeTheirAdam) {
  REQUIRE_GPU();
  if (testing::mpi_session().rank() != 0) GTEST_SKIP() << "one rank is enough";
  const TrainRuns train(
      "[data]\npath = \"x\"\n[model]\nz_dim = 16\ng_width = 8\nd_width = 16\nconditional = true\n"
      "dropout = 0\n[train]\nbatch_size = 16\nmax_steps = 8\nlog_every = 2\ndeterministic = true\n"
      "[runtime]\ndevice = \"cuda\"\n");
  const auto whole = train("whole", "", "CUBLAS_WORKSPACE_CONFIG=:1:1");
  EXPECT_NE(train.last_err().find("CUBLAS_WORKSPACE_CONFIG=:1:1 would fail train.deterministic; using :4096:8"),
            std::string::npos)
      << train.last_err();
  train("resumed", "--set train.max_steps=4", "CUBLAS_WORKSPACE_CONFIG=:16:8");
  EXPECT_EQ(train.last_err().find("CUBLAS_WORKSPACE_CONFIG"), std::string::npos) << train.last_err();  // kept
  const auto resumed = train("resumed", "--resume auto");
  ASSERT_EQ(whole.size(), 4u);
  ASSERT_FALSE(resumed.empty());
  std::printf("step 8: loss_d whole %.9f resumed %.9f\n", whole.back().loss_d, resumed.back().loss_d);
  EXPECT_NEAR(resumed.back().loss_d, whole.back().loss_d, 1e-5);
  EXPECT_NEAR(resumed.back().loss_g, whole.back().loss_g, 1e-5);
}

}  // namespace
}  // namespace shardgan
