// comm.compression in GradSync on every rank count of the MPI test runs (1 rank with single_rank_too: the same code
// path, one participant): the half-width modes' rounding and range, float16's conversion against LibTorch's, and
// PowerSGD's exactness on low-rank gradients, its error feedback, its warm start, its state and its bytes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <tuple>

#include "comm/communicator.hpp"
#include "parallel/consistency.hpp"
#include "parallel/grad_sync.hpp"
#include "parallel/tensor_comm.hpp"

namespace shardgan::parallel {
namespace {

using Mode = GradCompression::Mode;

/// Rank `rank`'s gradient for a parameter of `shape` at `step`: reproducible on every rank, different per rank.
torch::Tensor gradient_of(int rank, int64_t step, std::size_t parameter, torch::IntArrayRef shape) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000003 * (rank + 1) + 7919 * step + parameter);
  return torch::randn(shape, gen, torch::kFloat32);
}

/// One backward that gives each parameter `grads[k]` (through a linear loss) with `sync` doing its work.
void backward_with(GradSync& sync, const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& grads,
                   int64_t step) {
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  sync.prepare(step);
  torch::Tensor loss = torch::zeros({});
  for (std::size_t k = 0; k < params.size(); ++k) loss = loss + (params[k] * grads[k]).sum();
  loss.backward();
  sync.finish();
}

/// The mean over the ranks of each rank's gradient, computed here without communication.
torch::Tensor mean_gradient(int world, int64_t step, std::size_t parameter, torch::IntArrayRef shape) {
  torch::Tensor sum = torch::zeros(shape, torch::kFloat64);
  for (int r = 0; r < world; ++r) sum += gradient_of(r, step, parameter, shape).to(torch::kFloat64);
  return sum / world;
}

// bf16 and fp16: each element within its bound of the exact average. g/N is rounded once into the wire type and the
// N values are summed with one rounding per addition, so |error| <= N·(u·mean|g| + a) (u = 2^-8 for bf16, 2^-11 for
// fp16; the sum's magnitude is bounded by the sum of magnitudes; a: half the spacing of the subnormals, 2^-25 for
// fp16 below 2^-14, negligible for bf16). Half the bytes of float32 go out.
TEST(GradCompression, HalfWidthModesAverageWithinTheirRounding) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  const int n = comm->size(), r = comm->rank();
  for (const auto& [mode, u, a] :
       {std::tuple{Mode::kBf16, 1.0 / 256, 0.0}, std::tuple{Mode::kFp16, 1.0 / 2048, 0x1p-25}}) {
    std::vector<torch::Tensor> params = {torch::zeros({3}), torch::zeros({40, 30}), torch::zeros({70000})};
    for (auto& p : params) p.set_requires_grad(true);
    GradCompression compression;
    compression.mode = mode;
    GradSync sync(*comm, params, /*bucket_mb=*/0.1, /*overlap=*/true, /*single_rank_too=*/true, compression);
    std::vector<torch::Tensor> grads;
    for (std::size_t k = 0; k < params.size(); ++k) grads.push_back(gradient_of(r, 0, k, params[k].sizes()));
    backward_with(sync, params, grads, 0);
    bool any_rounded = false;
    for (std::size_t k = 0; k < params.size(); ++k) {
      const torch::Tensor exact = mean_gradient(n, 0, k, params[k].sizes());
      torch::Tensor magnitude = torch::zeros(params[k].sizes(), torch::kFloat64);
      for (int q = 0; q < n; ++q) magnitude += gradient_of(q, 0, k, params[k].sizes()).abs().to(torch::kFloat64);
      const torch::Tensor bound = magnitude / n * (n * u) + n * a + 1e-30;
      const torch::Tensor error = (params[k].grad().to(torch::kFloat64) - exact).abs();
      EXPECT_TRUE((error <= bound).all().item<bool>())
          << "mode " << static_cast<int>(mode) << " parameter " << k << ": worst error/bound "
          << (error / bound).max().item<double>();
      any_rounded = any_rounded || error.max().item<double>() > 0;
    }
    EXPECT_TRUE(any_rounded) << "the half-width path was not taken";
    EXPECT_EQ(sync.bytes_sent(), (3 + 40 * 30 + 70000) * 2);
    EXPECT_EQ(sync.copies(), 0);
  }
}

// float16 cannot overflow in the sum where the float32 average would not: every rank's 60000 (over N ranks summed
// as float16 that would be inf from 2 ranks on) averages to 60000, because each rank sends 60000 / N. A gradient
// beyond float16's range saturates at 65504 (no inf for the optimiser), unless `saturate` is off (fp16's loss
// scaling: there the inf must reach the scaler).
TEST(GradCompression, Fp16DividesBeforeTheSumAndSaturatesWhatFloat16CannotHold) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  const float n = static_cast<float>(comm->size());
  for (const bool saturate : {true, false}) {
    torch::Tensor w = torch::zeros({8}, torch::requires_grad());
    GradCompression compression;
    compression.mode = Mode::kFp16;
    compression.saturate = saturate;
    GradSync sync(*comm, {w}, 25.0, true, true, compression);
    backward_with(sync, {w}, {torch::full({8}, 60000.0f)}, 0);
    EXPECT_TRUE(torch::isfinite(w.grad()).all().item<bool>());
    EXPECT_NEAR(w.grad()[0].item<float>(), 60000.0f, 60000.0 * n / 2048.0);
    backward_with(sync, {w}, {torch::full({8}, 1e5f * n)}, 1);
    if (saturate) {
      EXPECT_EQ(w.grad()[0].item<float>(), 65504.0f);
    } else {
      EXPECT_TRUE(std::isinf(w.grad()[0].item<float>()));
    }
  }
}

// The MPI backend's float16 conversions against LibTorch's (c10::Half): normal values, subnormals, the largest
// finite value, values that round to infinity, signed zeros, infinities and NaN, summed over the ranks with one
// rounding per addition.
TEST(GradCompression, Float16SumsMatchLibTorchsConversions) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  const int n = comm->size();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> values = {0.0f,    -0.0f,    1.0f,     -2.5f,    1e-3f, 3.14159f, 6e-8f, 3e-8f,    1e-6f,  -5e-7f,
                               6.1e-5f, 65504.0f, 65519.0f, 65520.0f, 1e5f,  inf,      -inf,  0.33333f, 1023.7f};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const torch::Tensor random = torch::randn({4096}, gen) * torch::pow(10.0, torch::randint(-9, 5, {4096}, gen));
  torch::Tensor x = torch::cat({torch::tensor(values), random});
  torch::Tensor t = x.to(torch::kHalf);  // LibTorch's float → half
  torch::Tensor expected = t.clone();
  for (int k = 1; k < n; ++k) expected = (expected.to(torch::kFloat32) + t.to(torch::kFloat32)).to(torch::kHalf);
  allreduce(*comm, t, comm::ReduceOp::kSum);
  const torch::Tensor got = t.to(torch::kFloat32), want = expected.to(torch::kFloat32);
  EXPECT_TRUE(torch::equal(torch::isnan(got), torch::isnan(want)));
  const torch::Tensor finite = torch::logical_not(torch::isnan(want));
  EXPECT_TRUE(torch::equal(got.masked_select(finite), want.masked_select(finite)));
  EXPECT_TRUE(torch::equal(torch::signbit(got), torch::signbit(want)));  // -0 stays -0
  // NaN: each rank's NaN stays NaN.
  torch::Tensor nan = torch::full({3}, std::nanf(""), torch::kHalf);
  allreduce(*comm, nan, comm::ReduceOp::kSum);
  EXPECT_TRUE(torch::isnan(nan).all().item<bool>());
}

TEST(GradCompression, GramSchmidtMakesOrthonormalColumns) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  torch::Tensor p = torch::randn({50, 4}, gen);
  orthogonalize_columns(p);
  EXPECT_TRUE(torch::allclose(p.t().mm(p), torch::eye(4), 1e-5, 1e-5)) << p.t().mm(p);
  torch::Tensor zero = torch::zeros({10, 2});
  orthogonalize_columns(zero);
  EXPECT_TRUE(torch::equal(zero, torch::zeros({10, 2})));  // not NaN
}

/// A small model's parameters: a bias, a 64 × 48 matrix (compressed at rank 4: 448 of 3072 elements), a 4-D conv
/// weight 16 × 8 × 3 × 3 (viewed as 16 × 72: 352 of 1152), and a 3 × 2 matrix too small to compress.
std::vector<torch::Tensor> powersgd_parameters() {
  std::vector<torch::Tensor> params = {torch::zeros({48}), torch::zeros({64, 48}), torch::zeros({16, 8, 3, 3}),
                                       torch::zeros({3, 2})};
  for (auto& p : params) p.set_requires_grad(true);
  return params;
}

// Gradients of rank at most r (here rank 1 on every rank, different per rank, so the average has rank <= N <= 3 < 4)
// come back exactly (to float rounding) from the first compressed step on; vectors and small matrices are exact
// averages; before start_step everything goes uncompressed, after it fewer bytes; every rank ends with the same
// gradients.
TEST(GradCompression, PowerSgdIsExactOnLowRankGradientsAndSendsFewerBytes) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  const int n = comm->size(), r = comm->rank();
  auto params = powersgd_parameters();
  GradCompression compression;
  compression.mode = Mode::kPowerSgd;
  compression.rank = 4;
  compression.start_step = 2;
  compression.seed = 11;
  GradSync sync(*comm, params, 25.0, true, true, compression);
  EXPECT_EQ(sync.compressed_matrices(), 2u);
  const auto low_rank_gradient = [&](int rank, std::size_t k) {
    const auto shape = params[k].sizes();
    if (params[k].dim() < 2 || k == 3) return gradient_of(rank, 0, k, shape);
    const int64_t rows = shape[0], cols = params[k].numel() / rows;
    return torch::outer(gradient_of(rank, 1, k, {rows}), gradient_of(rank, 2, k, {cols})).view(shape);
  };
  std::vector<int64_t> bytes;
  for (int64_t step = 0; step < 4; ++step) {
    const int64_t before = sync.bytes_sent();
    std::vector<torch::Tensor> grads;
    for (std::size_t k = 0; k < params.size(); ++k) grads.push_back(low_rank_gradient(r, k));
    backward_with(sync, params, grads, step);
    bytes.push_back(sync.bytes_sent() - before);
    EXPECT_EQ(sync.bytes_per_sync(step), bytes.back());
    for (std::size_t k = 0; k < params.size(); ++k) {
      torch::Tensor exact = torch::zeros(params[k].sizes(), torch::kFloat64);
      for (int q = 0; q < n; ++q) exact += low_rank_gradient(q, k).to(torch::kFloat64);
      exact /= n;
      const double scale = exact.abs().max().item<double>();
      const double error = (params[k].grad().to(torch::kFloat64) - exact).abs().max().item<double>();
      EXPECT_LE(error, 1e-5 * scale) << "step " << step << " parameter " << k;
    }
    // Every rank holds the same averaged gradients, bit for bit (the compressed ones too).
    NamedTensors named;
    for (std::size_t k = 0; k < params.size(); ++k) named.emplace_back(std::to_string(k), params[k].grad());
    EXPECT_NO_THROW(check_consistency(*comm, named, step));
  }
  const int64_t uncompressed = (48 + 64 * 48 + 16 * 72 + 6) * 4;
  const int64_t compressed = (48 + 6 + (64 + 48) * 4 + (16 + 72) * 4) * 4;
  EXPECT_EQ(bytes, (std::vector<int64_t>{uncompressed, uncompressed, compressed, compressed}));
  EXPECT_EQ(sync.copies(), 0);
}

// Error feedback: with the same full-rank gradient G every step, one rank-4 approximation of a 64 × 48 Gaussian
// matrix misses most of it, but the residual is carried into the next step, so the sum of the applied gradients over
// T steps is T·G minus the last residual: its relative error falls like 1/T. The state (Q and the residual) is the
// live tensors, and resetting it makes the next step repeat the first compressed step.
TEST(GradCompression, PowerSgdErrorFeedbackMakesTheSumOfUpdatesConverge) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  const int n = comm->size();
  auto params = powersgd_parameters();
  GradCompression compression;
  compression.mode = Mode::kPowerSgd;
  compression.seed = 12;
  GradSync sync(*comm, params, 25.0, true, true, compression);
  std::vector<torch::Tensor> grads;
  for (std::size_t k = 0; k < params.size(); ++k) grads.push_back(gradient_of(0, 5, k, params[k].sizes()));
  torch::Tensor applied = torch::zeros({64, 48}), first;
  const int steps = 200;
  for (int step = 0; step < steps; ++step) {
    backward_with(sync, params, grads, step);
    applied += params[1].grad();
    if (step == 0) first = params[1].grad().clone();
  }
  const double one = ((first - grads[1]).norm() / grads[1].norm()).item<double>();
  const double summed = ((applied - steps * grads[1]).norm() / (steps * grads[1]).norm()).item<double>();
  EXPECT_GT(one, 0.3) << "a rank-4 approximation of a Gaussian 64 × 48 matrix should miss much of it";
  EXPECT_LT(summed, 0.1 * one) << "error feedback should carry the residual into later steps";
  std::printf("PowerSGD rank 4, 64 x 48 Gaussian: one step's relative error %.3f, %d steps' sum %.4f\n", one, steps,
              summed);
  // The residual is the state: T·G − Σ applied (float rounding aside), the same on every rank here (same gradient).
  std::map<std::string, torch::Tensor> state;
  for (const auto& [name, tensor] : sync.compression_state()) state[name] = tensor;
  ASSERT_EQ(state.size(), 4u);
  ASSERT_EQ(state.count("q/1") + state.count("error/1") + state.count("q/2") + state.count("error/2"), 4u);
  EXPECT_TRUE(torch::allclose(state["error/1"], steps * grads[1] - applied, 1e-3, 1e-3 * steps));
  // Reset: the next step is the first compressed step again.
  sync.reset_compression_state();
  backward_with(sync, params, grads, 0);
  EXPECT_TRUE(torch::equal(params[1].grad(), first)) << n << " ranks";
}

}  // namespace
}  // namespace shardgan::parallel
