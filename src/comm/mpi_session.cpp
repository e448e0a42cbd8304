#include "comm/mpi_session.hpp"

#include <cstdlib>

#include "util/error.hpp"

namespace shardgan::comm {

void mpi_check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  int rank = -1;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  fail(what, " failed on rank ", rank, ": ", std::string(text, static_cast<std::size_t>(length)));
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  // hwloc (Open MPI's topology library) asks its GL component for GPUs by opening X displays, :N as TCP port
  // 6000 + N on localhost; TensorBoard's default port, 6006, is display :6, and that connection never answers, so
  // MPI_Init (and a singleton's orted) would wait forever on a node that serves TensorBoard. shardgan needs no GL
  // topology: the component is off unless the user set HWLOC_COMPONENTS (launch/lib.sh does the same for mpirun).
  setenv("HWLOC_COMPONENTS", "-gl", /*overwrite=*/0);
  // MULTIPLE: each communicator's all-reduce thread calls MPI while the training thread may too.
  mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
  // Errors come back as codes and are turned into exceptions instead of aborting inside MPI.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  MPI_Comm node = MPI_COMM_NULL;
  mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_size(node, &local_size_);
  MPI_Comm_free(&node);
  char name[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  MPI_Get_processor_name(name, &length);
  host_.assign(name, static_cast<std::size_t>(length));
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort(int code) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace shardgan::comm
