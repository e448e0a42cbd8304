#pragma once
#include <mpi.h>

#include <string>

namespace shardgan::comm {

/// Throws shardgan::Error("<what> failed on rank R: <MPI's error string>") when `code` is not MPI_SUCCESS.
void mpi_check(int code, const char* what);

/// The MPI session of one process: MPI_Init_thread in the constructor, MPI_Finalize in the destructor. Owned by
/// `main`; every communicator built on it must be destroyed before it. A plain run (no mpirun) is a world of one.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Rank among the processes on this node (MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)), used to pick a GPU.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  /// This process's node name.
  const std::string& host() const { return host_; }

  /// Ends every rank of the job (MPI_Abort): used when one rank fails, so no other rank waits forever.
  [[noreturn]] static void abort(int code);

 private:
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  std::string host_;
};

}  // namespace shardgan::comm
