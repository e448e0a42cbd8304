#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "comm/communicator.hpp"
#include "comm/mpi_session.hpp"
#include "mpi_test.hpp"
#include "util/error.hpp"

namespace shardgan::comm {
namespace {

std::unique_ptr<Communicator> world() {
  return make_mpi_communicator(MPI_COMM_WORLD);
}

uint16_t to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<uint16_t>(bits >> 16);  // exact for the small integers used here
}
float from_bf16(uint16_t v) {
  const uint32_t bits = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

class AllreduceSizes : public ::testing::TestWithParam<std::size_t> {};

TEST_P(AllreduceSizes, Float32SumAndAverageMatchTheClosedForm) {
  auto comm = world();
  const std::size_t n = GetParam();
  const int r = comm->rank(), p = comm->size();
  std::vector<float> sum(n), avg(n);
  for (std::size_t i = 0; i < n; ++i) sum[i] = avg[i] = static_cast<float>((r + 1) * (i % 97));
  comm->allreduce(sum.data(), n, DType::kFloat32, ReduceOp::kSum);
  comm->allreduce(avg.data(), n, DType::kFloat32, ReduceOp::kAvg);
  const float ranks_sum = p * (p + 1) / 2.0f;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_FLOAT_EQ(sum[i], ranks_sum * (i % 97)) << "element " << i;
    ASSERT_FLOAT_EQ(avg[i], ranks_sum * (i % 97) / p) << "element " << i;
  }
}

// 0, 1, odd, and larger than a 25 MB gradient bucket.
INSTANTIATE_TEST_SUITE_P(Sizes, AllreduceSizes, ::testing::Values(0, 1, 7, 1001, (25u << 20) / 4 + 3));

TEST(Communicator, BFloat16SumRoundsThroughFloat) {
  auto comm = world();
  std::vector<uint16_t> v(513);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = to_bf16(static_cast<float>(i % 16 + comm->rank()));
  comm->allreduce(v.data(), v.size(), DType::kBFloat16, ReduceOp::kSum);
  const int p = comm->size();
  for (std::size_t i = 0; i < v.size(); ++i)
    ASSERT_EQ(from_bf16(v[i]), static_cast<float>(p * (i % 16) + p * (p - 1) / 2)) << "element " << i;
}

TEST(Communicator, AsyncAllreducesInFlightTogetherMatchTheBlockingOnes) {
  auto comm = world();
  const int p = comm->size();
  std::vector<std::vector<float>> buffers;
  for (std::size_t n : {0, 1, 7, 100003}) buffers.emplace_back(n, static_cast<float>(comm->rank() + 1));
  std::vector<uint16_t> bf16(33, to_bf16(static_cast<float>(comm->rank())));
  std::vector<std::unique_ptr<Request>> requests;
  for (auto& b : buffers)
    requests.push_back(comm->allreduce_async(b.data(), b.size(), DType::kFloat32, ReduceOp::kAvg));
  requests.push_back(comm->allreduce_async(bf16.data(), bf16.size(), DType::kBFloat16, ReduceOp::kSum));
  for (auto& r : requests) r->test();
  for (auto& r : requests) r->wait();
  for (const auto& b : buffers)
    for (float x : b) ASSERT_FLOAT_EQ(x, (p + 1) / 2.0f);
  for (uint16_t x : bf16) ASSERT_EQ(from_bf16(x), static_cast<float>(p * (p - 1) / 2));
}

TEST(Communicator, BroadcastCopiesRootsBuffer) {
  auto comm = world();
  std::vector<double> v(17, comm->rank() == 0 ? 3.25 : -1.0);
  comm->broadcast(v.data(), v.size(), DType::kFloat64, 0);
  for (double x : v) EXPECT_EQ(x, 3.25);
}

TEST(Communicator, AllgatherOrdersByRank) {
  auto comm = world();
  const int64_t mine[2] = {comm->rank(), 10 * comm->rank()};
  std::vector<int64_t> all(2 * static_cast<std::size_t>(comm->size()));
  comm->allgather(mine, all.data(), 2, DType::kInt64);
  for (int r = 0; r < comm->size(); ++r) {
    EXPECT_EQ(all[2 * r], r);
    EXPECT_EQ(all[2 * r + 1], 10 * r);
  }
}

TEST(MpiSession, RanksAndNodeLocalRanksOfThisSession) {
  const comm::MpiSession& session = testing::mpi_session();
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  ASSERT_GE(size, 2) << "run under mpirun -np N with N >= 2";
  EXPECT_EQ(session.rank(), rank);
  EXPECT_EQ(session.size(), size);
  // All ranks of a CTest MPI run share one node: local rank == world rank, local size == world size.
  EXPECT_EQ(session.local_rank(), rank);
  EXPECT_EQ(session.local_size(), size);
  EXPECT_FALSE(session.host().empty());
  // Every rank reports the same host.
  char host[256] = {};
  session.host().copy(host, sizeof(host) - 1);
  char root_host[256] = {};
  std::copy(host, host + sizeof(host), root_host);
  MPI_Bcast(root_host, sizeof(root_host), MPI_CHAR, 0, MPI_COMM_WORLD);
  EXPECT_STREQ(host, root_host);
}

TEST(Communicator, NcclWithoutAGpuFailsWithAClearError) {
  // CI compiles the NCCL backend (CUDA + NCCL are in /usr/local/cuda) but has no GPU: creating it must throw an
  // Error naming the CUDA call, on every rank, before any collective, rather than crash or hang.
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present: the NCCL path is exercised by the trainer";
  try {
    make_nccl_communicator(MPI_COMM_WORLD, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_TRUE(message.find("cudaSetDevice") != std::string::npos ||
                message.find("no NCCL backend") != std::string::npos)
        << message;
  }
}

}  // namespace
}  // namespace shardgan::comm
