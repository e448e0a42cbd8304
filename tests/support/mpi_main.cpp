// The one gtest main of MPI tests: MPI is initialised once for the whole binary, only rank 0 prints results, and
// every rank's result counts (mpirun exits non-zero when any rank does).
#include <gtest/gtest.h>

#include "mpi_test.hpp"

namespace {
shardgan::comm::MpiSession* g_session = nullptr;
}

namespace shardgan::testing {
comm::MpiSession& mpi_session() {
  return *g_session;
}
}  // namespace shardgan::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  shardgan::comm::MpiSession session(&argc, &argv);
  g_session = &session;
  if (session.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (failed && session.rank() != 0) std::fprintf(stderr, "rank %d: tests failed\n", session.rank());
  return any_failed;
}
