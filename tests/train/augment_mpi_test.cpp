// ADA's controller of p under mpirun: the ranks' statistics are summed, so every rank holds the same p.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "comm/communicator.hpp"
#include "train/augment.hpp"

namespace shardgan::train {
namespace {

TEST(AdaptiveAugment, EveryRankMovesPTheSameWayFromTheSummedSigns) {
  auto comm = comm::make_mpi_communicator(MPI_COMM_WORLD);
  const int n = comm->size(), r = comm->rank();
  config::Config::Augment cfg;
  cfg.ada_target = 0.6;
  cfg.ada_interval = 2;
  cfg.ada_kimg = 0.1;  // p moves by 4n · 2 / 100 per adjustment
  const double step_size = 4.0 * n * 2 / 100;
  AdaptiveAugment ada(cfg, /*global_batch=*/4 * n, torch::kCPU);
  ASSERT_TRUE(ada.enabled());
  EXPECT_EQ(ada.value(), 0);
  // Rank 0 sees D sure of its reals, the others unsure: only the sum over all ranks says which way p moves.
  const auto observe = [&](float sure, float unsure) { ada.observe(torch::full({4}, r == 0 ? sure : unsure)); };
  observe(1, -1);
  ada.after_step(1, *comm);  // not an adjustment step
  EXPECT_EQ(ada.value(), 0);
  observe(1, -1);
  ada.after_step(2, *comm);  // r = (8 − 8(n − 1)) / 8n: above 0.6 only on one rank
  EXPECT_NEAR(ada.value(), n == 1 ? step_size : 0.0, 1e-12);
  for (int s = 3; s <= 6; ++s) {
    observe(1, 1);  // every rank sure: r = 1 > 0.6, p rises
    ada.after_step(s, *comm);
  }
  const double expected = (n == 1 ? 3 : 2) * step_size;
  EXPECT_NEAR(ada.value(), expected, 1e-12);
  // A checkpoint mid-interval: the sum over the ranks, then rank 0 alone holds it; restoring keeps the total.
  observe(1, 1);
  const auto [p, sum] = ada.state(*comm);
  EXPECT_NEAR(p, expected, 1e-12);
  EXPECT_EQ(sum, 4.0 * n);
  AdaptiveAugment resumed(cfg, 4 * n, torch::kCPU);
  resumed.restore(p, sum, r == 0);
  for (auto* a : {&ada, &resumed}) {
    a->observe(torch::full({4}, 1.0f));
    a->after_step(8, *comm);  // r = (4n + 4n) / 8n = 1 > 0.6: p rises (without the carried sum r = 0.5: it would fall)
  }
  EXPECT_NEAR(ada.value(), expected + step_size, 1e-12);
  EXPECT_EQ(ada.value(), resumed.value());
  // Clamped to [0, 1].
  AdaptiveAugment low(cfg, 4 * n, torch::kCPU);
  low.observe(torch::full({4}, -1.0f));
  low.after_step(2, *comm);
  EXPECT_EQ(low.value(), 0);
}

}  // namespace
}  // namespace shardgan::train
