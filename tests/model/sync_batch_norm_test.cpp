// SyncBatchNorm under mpirun: N ranks × b images normalise, and back-propagate, exactly like one BatchNorm over the
// N·b images. The reference is float64 autograd of the textbook formula on the whole batch.
#include "model/sync_batch_norm.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "comm/communicator.hpp"
#include "parallel/tensor_comm.hpp"

namespace shardgan::model {
namespace {
using torch::Tensor;

struct Result {
  Tensor y, dx, dweight, dbias, running_mean, running_var;
};

/// BatchNorm by its definition (biased variance in the normalisation, unbiased in the running variance).
Result reference(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, const Tensor& dy, double eps) {
  std::vector<int64_t> dims = {0}, shape(static_cast<std::size_t>(x_in.dim()), 1);
  for (int64_t d = 2; d < x_in.dim(); ++d) dims.push_back(d);
  shape[1] = x_in.size(1);
  const Tensor x = x_in.to(torch::kFloat64).requires_grad_(true);
  const Tensor w = weight_in.to(torch::kFloat64).requires_grad_(true);
  const Tensor b = bias_in.to(torch::kFloat64).requires_grad_(true);
  const Tensor mean = x.mean(dims, /*keepdim=*/true);
  const Tensor var = (x - mean).pow(2).mean(dims, true);
  const Tensor y = (x - mean) / (var + eps).sqrt() * w.view(shape) + b.view(shape);
  (y * dy.to(torch::kFloat64)).sum().backward();
  const double n = static_cast<double>(x.numel() / x.size(1));
  return {y.detach(),
          x.grad(),
          w.grad(),
          b.grad(),
          0.1 * mean.detach().flatten(),
          0.9 + 0.1 * var.detach().flatten() * n / (n - 1)};
}

void expect_close(const Tensor& actual, const Tensor& expected, const char* what) {
  EXPECT_TRUE(torch::allclose(actual.to(torch::kFloat64), expected, 1e-4, 1e-5))
      << what << ": max difference " << (actual.to(torch::kFloat64) - expected).abs().max().item<double>();
}

/// One training forward/backward of SyncBatchNorm on this rank's rows of a global batch, against the reference on
/// the whole batch. `comm` may be a one-rank communicator (then every rank holds the whole batch).
void check(comm::Communicator& comm, std::vector<int64_t> global_shape) {
  const int64_t per_rank = global_shape[0] / comm.size();
  const int64_t channels = global_shape[1];
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);  // the same global batch on every rank
  const Tensor x = torch::randn(global_shape, gen) * 3 + 1;
  const Tensor dy = torch::randn(global_shape, gen);
  const Tensor weight = torch::rand({channels}, gen) + 0.5, bias = torch::randn({channels}, gen);
  const Result ref = reference(x, weight, bias, dy, 1e-5);

  SyncBatchNorm bn(SyncBatchNormOptions(channels).eps(1e-5).momentum(0.1));
  bn->set_communicator(&comm);
  {
    torch::NoGradGuard no_grad;
    bn->weight.copy_(weight);
    bn->bias.copy_(bias);
  }
  bn->train();
  const Tensor mine = x.narrow(0, comm.rank() * per_rank, per_rank).clone().requires_grad_(true);
  const Tensor y = bn->forward(mine);
  (y * dy.narrow(0, comm.rank() * per_rank, per_rank)).sum().backward();
  expect_close(y, ref.y.narrow(0, comm.rank() * per_rank, per_rank), "output");
  expect_close(mine.grad(), ref.dx.narrow(0, comm.rank() * per_rank, per_rank), "input gradient");
  // Parameter gradients stay per rank (GradSync averages them with every other gradient): their sum is the whole's.
  Tensor dweight = bn->weight.grad().clone(), dbias = bn->bias.grad().clone();
  parallel::allreduce(comm, dweight, comm::ReduceOp::kSum);
  parallel::allreduce(comm, dbias, comm::ReduceOp::kSum);
  expect_close(dweight, ref.dweight, "weight gradient");
  expect_close(dbias, ref.dbias, "bias gradient");
  expect_close(bn->running_mean, ref.running_mean, "running mean");
  expect_close(bn->running_var, ref.running_var, "running variance");
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);
}

TEST(SyncBatchNorm, NRanksTimesBEqualOneBatchNormOverNTimesB) {
  const auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  ASSERT_GE(comm->size(), 2) << "run under mpirun -np N with N >= 2";
  check(*comm, {3 * comm->size(), 4, 5, 3});  // [N, C, H, W]
  check(*comm, {2 * comm->size(), 6});        // [N, C]
}

TEST(SyncBatchNorm, OneRankIsPlainBatchNorm) {
  const auto self = comm::make_mpi_communicator(MPI_COMM_SELF);
  check(*self, {7, 4, 3, 3});
  check(*self, {5, 6});
}

}  // namespace
}  // namespace shardgan::model
