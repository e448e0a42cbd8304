// A process that starts MPI and says which job it joined ("rank R of N"), for the tests of what a child started from
// inside an MPI job inherits (tests/gpu/gpu_test.cpp): without mpirun it is a singleton, rank 0 of 1.
#include <mpi.h>

#include <cstdio>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = -1, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::printf("rank %d of %d\n", rank, size);
  MPI_Finalize();
  return 0;
}
