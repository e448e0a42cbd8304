#include "parallel/grad_sync.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "comm/communicator.hpp"
#include "parallel/consistency.hpp"
#include "util/error.hpp"

namespace shardgan::parallel {
namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

struct Case {
  double bucket_mb;
  bool overlap;
};

class GradSyncBuckets : public ::testing::TestWithParam<Case> {};

// Rank r's gradient of every element is (r + 1) * c: after finish() every rank holds the average, (N + 1) / 2 * c,
// for parameters of size 1, odd sizes, one larger than a bucket, and one that gets no gradient (zeros).
TEST_P(GradSyncBuckets, EveryRankEndsWithTheAverageGradient) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  const int n = comm->size(), r = comm->rank();
  std::vector<torch::Tensor> params = {torch::zeros({1}), torch::zeros({7, 3}), torch::zeros({300000}),
                                       torch::zeros({5}), torch::zeros({2, 2})};
  for (auto& p : params) p.set_requires_grad(true);
  GradSync sync(*comm, params, GetParam().bucket_mb, GetParam().overlap);
  for (int round = 0; round < 3; ++round) {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    sync.prepare();
    torch::Tensor loss = torch::zeros({});
    for (std::size_t k = 0; k < params.size(); ++k)
      if (k != 3) loss = loss + params[k].sum() * static_cast<float>((r + 1) * (k + 1 + round));
    loss.backward();
    sync.finish();
    for (std::size_t k = 0; k < params.size(); ++k) {
      const float expected = k == 3 ? 0.0f : (n + 1) / 2.0f * static_cast<float>(k + 1 + round);
      ASSERT_TRUE(params[k].grad().defined()) << k;
      EXPECT_TRUE(torch::allclose(params[k].grad(), torch::full_like(params[k], expected)))
          << "parameter " << k << " round " << round << ": " << params[k].grad().flatten()[0].item<float>();
    }
  }
  if (GetParam().bucket_mb < 1) {
    EXPECT_GE(sync.num_buckets(), 3u);  // the 300000 floats (1.1 MiB) fill a bucket of their own
  }
  // Zero-copy: autograd accumulated every gradient straight into bucket memory, and .grad stays there.
  EXPECT_EQ(sync.copies(), 0);
  const void* where = params[2].grad().data_ptr();
  sync.prepare();
  EXPECT_EQ(params[2].grad().data_ptr(), where);
  EXPECT_EQ(params[2].grad().abs().sum().item<float>(), 0);  // zeroed for the next backward
  (params[2].sum() * 2).backward();
  sync.finish();
  EXPECT_EQ(params[2].grad().data_ptr(), where);
  EXPECT_TRUE(torch::allclose(params[2].grad(), torch::full_like(params[2], 2.0f)));
  EXPECT_EQ(sync.copies(), 0);
}

// A .grad that autograd replaces instead of adding into (here: set to another tensor after prepare) is copied into
// the bucket and pointed back at it: the average is still right.
TEST(GradSync, AReplacedGradIsCopiedIntoItsBucket) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  const int n = comm->size(), r = comm->rank();
  torch::Tensor w = torch::zeros({6}, torch::requires_grad());
  GradSync sync(*comm, {w}, 25.0, true, /*single_rank_too=*/true);
  sync.prepare();
  w.mutable_grad() = torch::Tensor();  // autograd will store the incoming gradient as a new tensor
  (w.sum() * static_cast<float>(r + 1)).backward();
  sync.finish();
  EXPECT_EQ(sync.copies(), 1);
  EXPECT_TRUE(torch::allclose(w.grad(), torch::full_like(w, (n + 1) / 2.0f)));
}

INSTANTIATE_TEST_SUITE_P(Sizes, GradSyncBuckets,
                         ::testing::Values(Case{25.0, true}, Case{0.5, true}, Case{0.5, false}, Case{0.0001, true}));

TEST(GradSync, BroadcastMakesRankZerosValuesEverybodys) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  torch::Tensor w = torch::full({4, 4}, static_cast<float>(world_rank()), torch::requires_grad());
  torch::Tensor steps = torch::full({1}, static_cast<int64_t>(10 + world_rank()), torch::kInt64);
  GradSync sync(*comm, {w});
  sync.broadcast({w, steps});
  EXPECT_TRUE(torch::equal(w.detach(), torch::zeros({4, 4})));
  EXPECT_EQ(steps.item<int64_t>(), 10);
}

TEST(Consistency, DivergedParametersAreNamedEqualOnesPass) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  NamedTensors same = {{"generator/a", torch::ones({3})}};
  EXPECT_NO_THROW(check_consistency(*comm, same, 7));
  NamedTensors differ = {{"generator/a", torch::ones({3})},
                         {"discriminator/b", torch::full({2}, static_cast<float>(world_rank()))}};
  try {
    check_consistency(*comm, differ, 7);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("diverged across ranks at step 7: discriminator/b on rank 1"),
              std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(require_agreement(*comm, "the configuration", "same"));
  EXPECT_THROW(require_agreement(*comm, "the configuration", world_rank() == 0 ? "a" : "b"), Error);
}

TEST(Consistency, AverageTensorsAveragesRunningStatistics) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  torch::Tensor mean = torch::full({3}, static_cast<float>(world_rank()));
  torch::Tensor count = torch::full({1}, static_cast<int64_t>(world_rank()), torch::kInt64);
  average_tensors(*comm, {mean, count});
  EXPECT_TRUE(torch::allclose(mean, torch::full({3}, (comm->size() - 1) / 2.0f)));
  EXPECT_EQ(count.item<int64_t>(), world_rank());  // integers (num_batches_tracked) are left alone
}

}  // namespace
}  // namespace shardgan::parallel
