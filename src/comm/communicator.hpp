#pragma once
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace shardgan::comm {

enum class DType { kFloat32, kFloat64, kBFloat16, kFloat16, kInt64, kUInt8 };
enum class ReduceOp { kSum, kAvg };

std::size_t dtype_size(DType type);

/// The DType of a C++ element type (float, double, int64_t, uint8_t). bfloat16 and float16 have no C++ type here:
/// tensors of them go through parallel/tensor_comm.hpp.
template <typename T>
constexpr DType dtype_of() {
  static_assert(
      std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int64_t> || std::is_same_v<T, uint8_t>,
      "no communicator DType for this element type");
  if constexpr (std::is_same_v<T, float>) return DType::kFloat32;
  if constexpr (std::is_same_v<T, double>) return DType::kFloat64;
  if constexpr (std::is_same_v<T, int64_t>) return DType::kInt64;
  return DType::kUInt8;
}

/// An all-reduce in flight. `wait` returns once the result is in the buffer for the buffer's consumers: on the host
/// (MPI), or ordered before later work on LibTorch's CUDA stream (NCCL). `test` lets the backend make progress and
/// says whether it is done. Destroying an unfinished request waits for it.
class Request {
 public:
  virtual ~Request() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

/// A request that is complete from the start (a fence on a host backend, an empty all-reduce).
class CompletedRequest final : public Request {
 public:
  bool test() override { return true; }
  void wait() override {}
};

/// Where a CUDA backend finds the stream LibTorch computes on (its current stream, which is not the legacy default
/// stream under CUDA graph capture or a user's stream guard): returns a cudaStream_t. Empty: the legacy default.
using StreamSource = std::function<void*()>;

/// Collective operations over all ranks of a job. Every rank must call the same operations in the same order with
/// the same counts. The synchronous calls return with the result in the buffer, readable by the host (both backends
/// wait for the device); `allreduce_async` returns at once. Host buffers work with every backend; CUDA device
/// buffers only where `device_memory()` says so (tensors: parallel/tensor_comm.hpp stages them when needed).
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual const char* backend() const = 0;
  /// Whether buffers may live in CUDA device memory (NCCL). False: host memory only (MPI).
  virtual bool device_memory() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// In-place all-reduce of `count` elements. kAvg divides the sum by size().
  virtual void allreduce(void* data, std::size_t count, DType type, ReduceOp op) = 0;
  /// Starts an in-place all-reduce and returns at once. Requests must be started in the same order on every rank.
  /// NCCL: device buffers only.
  virtual std::unique_ptr<Request> allreduce_async(void* data, std::size_t count, DType type, ReduceOp op) = 0;
  /// Copies `count` elements from `root`'s buffer into every rank's buffer.
  virtual void broadcast(void* data, std::size_t count, DType type, int root) = 0;
  /// Gathers `count` elements from every rank into `recv` (size() * count elements, rank order).
  virtual void allgather(const void* send, void* recv, std::size_t count, DType type) = 0;
  virtual void barrier() = 0;
  /// A request that completes when everything this rank has queued so far has completed: computation on its
  /// device and collectives in flight. Host backends (MPI): complete at once. The trainer polls the previous step's
  /// fence on the host under the watchdog, so a CUDA rank runs at most one step ahead of its device and a hung NCCL
  /// kernel is noticed within comm.timeout_s instead of blocking a later device-to-host copy forever.
  virtual std::unique_ptr<Request> fence() { return std::make_unique<CompletedRequest>(); }
  /// Called from another thread when a collective has hung (the watchdog, just before it ends the process): makes
  /// the backend give up what is in flight (NCCL: ncclCommAbort, so no kernel keeps the device). Default: nothing.
  virtual void abort_collectives() {}
  /// Ends the whole job with `code`; never returns.
  [[noreturn]] virtual void abort(int code) = 0;

  // Typed forms (host memory): the element type decides the DType.
  template <typename T>
  void allreduce(std::vector<T>& values, ReduceOp op) {
    allreduce(values.data(), values.size(), dtype_of<T>(), op);
  }
  /// One value over all ranks.
  template <typename T>
  T allreduce(T value, ReduceOp op) {
    allreduce(&value, 1, dtype_of<T>(), op);
    return value;
  }
  /// Every rank's `mine`, rank-major (all ranks must pass the same count).
  template <typename T>
  std::vector<T> allgather(const std::vector<T>& mine) {
    std::vector<T> all(mine.size() * static_cast<std::size_t>(size()));
    allgather(mine.data(), all.data(), mine.size(), dtype_of<T>());
    return all;
  }
};

/// The MPI backend on `comm` (host buffers). Always built.
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm);

/// The NCCL backend (device buffers on CUDA device `device`), bootstrapped over `comm`: rank 0 creates the NCCL
/// unique id and broadcasts it with MPI. Its collectives are ordered after, and its results before, the work on
/// the stream `compute_stream` returns at the time of each call. Built when CMake finds CUDA and NCCL
/// (SHARDGAN_HAVE_NCCL); otherwise this throws an Error that says so. Blocks until every rank has called it: create
/// it under the watchdog.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device, StreamSource compute_stream = {});

/// CUDA devices visible to this process (0 when the build has no CUDA, or there is no driver or device).
int cuda_device_count();

}  // namespace shardgan::comm
