#pragma once
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace shardgan::comm {

enum class DType { kFloat32, kFloat64, kBFloat16, kInt64, kUInt8 };
enum class ReduceOp { kSum, kAvg };

std::size_t dtype_size(DType type);
const char* dtype_name(DType type);

/// An all-reduce in flight. `wait` blocks until the result is in the buffer (averaged when kAvg); `test` lets the
/// backend make progress and says whether it is done. Destroying an unfinished request waits for it.
class Request {
 public:
  virtual ~Request() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

/// Collective operations over all ranks of a job. Every rank must call the same operations in the same order with
/// the same counts. Buffers live where the backend expects them (host memory for MPI, device memory for NCCL).
/// Calls are blocking: when they return, the result is in the buffer.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual const char* backend() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// In-place all-reduce of `count` elements. kAvg divides the sum by size().
  virtual void allreduce(void* data, std::size_t count, DType type, ReduceOp op) = 0;
  /// Starts an in-place all-reduce and returns at once. Requests must be started in the same order on every rank.
  virtual std::unique_ptr<Request> allreduce_async(void* data, std::size_t count, DType type, ReduceOp op) = 0;
  /// Copies `count` elements from `root`'s buffer into every rank's buffer.
  virtual void broadcast(void* data, std::size_t count, DType type, int root) = 0;
  /// Gathers `count` elements from every rank into `recv` (size() * count elements, rank order).
  virtual void allgather(const void* send, void* recv, std::size_t count, DType type) = 0;
  virtual void barrier() = 0;
  /// Ends the whole job with `code`; never returns.
  [[noreturn]] virtual void abort(int code) = 0;
};

/// The MPI backend on `comm` (host buffers). Always built.
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm);

/// The NCCL backend (device buffers on CUDA device `device`), bootstrapped over `comm`: rank 0 creates the NCCL
/// unique id and broadcasts it with MPI. Throws Error when this build has no NCCL.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device);

/// Whether this build compiled the NCCL backend.
bool nccl_compiled();

/// CUDA devices visible to this process (0 when the build has no CUDA, or there is no driver or device).
int cuda_device_count();

}  // namespace shardgan::comm
