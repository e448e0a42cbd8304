// Compiled instead of nccl_communicator.cpp when CMake finds no CUDA/NCCL.
#include "comm/communicator.hpp"
#include "util/error.hpp"

namespace shardgan::comm {

int cuda_device_count() {
  return 0;
}

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm, int, StreamSource) {
  fail(
      "this build of shardgan has no NCCL backend (CUDA or NCCL were not found at configure time); "
      "use comm.backend = \"mpi\"");
}

}  // namespace shardgan::comm
