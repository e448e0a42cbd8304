// Compiled only when CMake finds CUDA and NCCL (SHARDGAN_HAVE_NCCL); nccl_unavailable.cpp stands in otherwise.
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "comm/communicator.hpp"
#include "comm/mpi_session.hpp"
#include "util/error.hpp"

namespace shardgan::comm {
namespace {

void nccl_check(ncclResult_t result, const char* what, int rank) {
  if (result != ncclSuccess) fail(what, " failed on rank ", rank, ": ", ncclGetErrorString(result));
}

void cuda_check(cudaError_t result, const char* what, int rank) {
  if (result != cudaSuccess) fail(what, " failed on rank ", rank, ": ", cudaGetErrorString(result));
}

cudaStream_t stream_of(const StreamSource& source) {
  return source ? static_cast<cudaStream_t>(source()) : nullptr;
}

/// Whether `stream` is being captured into a CUDA graph (runtime.cuda_graphs): nothing may then query or wait on the
/// host for work queued on it, and the collectives queued become part of the graph.
bool capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  return cudaStreamIsCapturing(stream, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone;
}

ncclDataType_t nccl_type(DType type) {
  switch (type) {
    case DType::kFloat32: return ncclFloat32;
    case DType::kFloat64: return ncclFloat64;
    case DType::kBFloat16: return ncclBfloat16;
    case DType::kFloat16: return ncclFloat16;
    case DType::kInt64: return ncclInt64;
    case DType::kUInt8: return ncclUint8;
  }
  return ncclUint8;
}

/// An all-reduce queued on the communicator's stream. `wait` makes the compute stream wait for it without blocking
/// the host; the host waits for the device through fence().
class NcclRequest final : public Request {
 public:
  explicit NcclRequest(StreamSource compute_stream) : compute_stream_(std::move(compute_stream)) {
    cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
  }
  ~NcclRequest() override {
    wait();
    cudaEventDestroy(done);
  }
  bool test() override {
    if (!launched) return true;
    if (capturing(stream_of(compute_stream_))) return false;  // being recorded: it has not run, and cannot be asked
    return cudaEventQuery(done) == cudaSuccess;
  }
  void wait() override {
    if (launched) cudaStreamWaitEvent(stream_of(compute_stream_), done, 0);
    launched = false;
  }
  cudaEvent_t done = nullptr;
  bool launched = false;

 private:
  StreamSource compute_stream_;
};

/// Completes when the compute stream has reached the point where fence() was called (and with it every all-reduce
/// the compute stream was made to wait for).
class NcclFence final : public Request {
 public:
  explicit NcclFence(cudaStream_t stream) {
    cudaEventCreateWithFlags(&event_, cudaEventDisableTiming);
    cudaEventRecord(event_, stream);
  }
  ~NcclFence() override { cudaEventDestroy(event_); }
  bool test() override { return cudaEventQuery(event_) != cudaErrorNotReady; }
  void wait() override {
    const cudaError_t result = cudaEventSynchronize(event_);
    if (result != cudaSuccess) fail("the device failed while running the step: ", cudaGetErrorString(result));
  }

 private:
  cudaEvent_t event_ = nullptr;
};

/// NCCL on one CUDA device, with its own stream, ordered against LibTorch's current stream (compute_stream) with
/// events. Bootstrapped over MPI: rank 0's ncclGetUniqueId is broadcast with MPI_Bcast, then every rank calls
/// ncclCommInitRank. Destroyed (ncclCommDestroy) before MPI_Finalize because the MpiSession outlives it.
class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MPI_Comm mpi_comm, int device, StreamSource compute_stream)
      : device_(device), compute_stream_(std::move(compute_stream)) {
    MPI_Comm_rank(mpi_comm, &rank_);
    MPI_Comm_size(mpi_comm, &size_);
    cuda_check(cudaSetDevice(device_), "cudaSetDevice", rank_);
    ncclUniqueId id;
    if (rank_ == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId", rank_);
    mpi_check(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi_comm), "MPI_Bcast of the NCCL id");
    nccl_check(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank", rank_);
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate", rank_);
    cuda_check(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "cudaEventCreate", rank_);
  }

  ~NcclCommunicator() override {
    if (scratch_ != nullptr) cudaFree(scratch_);
    if (ready_ != nullptr) cudaEventDestroy(ready_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    if (comm_ != nullptr && !aborted_.exchange(true)) ncclCommDestroy(comm_);
  }

  const char* backend() const override { return "nccl"; }
  bool device_memory() const override { return true; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  /// Blocking collectives take device or host buffers (CPU tensors, a vote on the stack): host buffers go through a
  /// device scratch buffer, since NCCL reads and writes device memory only. Device buffers are used in place once the
  /// compute stream has produced them.
  void allreduce(void* data, std::size_t count, DType type, ReduceOp op) override {
    if (count == 0) return;
    const std::size_t bytes = count * dtype_size(type);
    void* buffer = stage_in(data, bytes);
    const ncclRedOp_t nccl_op = op == ReduceOp::kAvg ? ncclAvg : ncclSum;
    nccl_check(ncclAllReduce(buffer, buffer, count, nccl_type(type), nccl_op, comm_, stream_), "ncclAllReduce", rank_);
    stage_out(data, buffer, bytes);
    synchronize("ncclAllReduce");
  }

  /// Launched on the communicator's stream once the compute stream (where LibTorch computed the gradients) has
  /// reached this point; `wait` makes the compute stream wait for the result without blocking the host.
  /// Device buffers only (the gradient buckets live on the GPU).
  std::unique_ptr<Request> allreduce_async(void* data, std::size_t count, DType type, ReduceOp op) override {
    auto request = std::make_unique<NcclRequest>(compute_stream_);
    if (count == 0) return request;
    if (!capturing(stream_of(compute_stream_)) && !on_device(data))
      fail("NCCL allreduce_async needs a device buffer (rank ", rank_, ")");
    after_compute_stream();
    nccl_check(
        ncclAllReduce(data, data, count, nccl_type(type), op == ReduceOp::kAvg ? ncclAvg : ncclSum, comm_, stream_),
        "ncclAllReduce", rank_);
    cuda_check(cudaEventRecord(request->done, stream_), "cudaEventRecord", rank_);
    request->launched = true;
    return request;
  }

  void broadcast(void* data, std::size_t count, DType type, int root) override {
    if (count == 0) return;
    const std::size_t bytes = count * dtype_size(type);
    void* buffer = stage_in(data, bytes);
    nccl_check(ncclBroadcast(buffer, buffer, count, nccl_type(type), root, comm_, stream_), "ncclBroadcast", rank_);
    stage_out(data, buffer, bytes);
    synchronize("ncclBroadcast");
  }

  void allgather(const void* send, void* recv, std::size_t count, DType type) override {
    if (count == 0) return;
    const std::size_t send_bytes = count * dtype_size(type);
    const std::size_t recv_bytes = send_bytes * static_cast<std::size_t>(size_);
    const std::size_t recv_offset = (send_bytes + 255) / 256 * 256;
    const bool host_recv = !on_device(recv);
    if (host_recv) reserve(recv_offset + recv_bytes);
    const void* send_buffer = stage_in(const_cast<void*>(send), send_bytes);
    void* recv_buffer = host_recv ? static_cast<char*>(scratch_) + recv_offset : recv;
    nccl_check(ncclAllGather(send_buffer, recv_buffer, count, nccl_type(type), comm_, stream_), "ncclAllGather", rank_);
    if (host_recv)
      cuda_check(cudaMemcpyAsync(recv, recv_buffer, recv_bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync",
                 rank_);
    synchronize("ncclAllGather");
  }

  void barrier() override {
    // A one-element all-reduce on the device is the NCCL way to line ranks up.
    reserve(sizeof(float));
    nccl_check(ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce (barrier)",
               rank_);
    synchronize("ncclAllReduce (barrier)");
  }

  std::unique_ptr<Request> fence() override { return std::make_unique<NcclFence>(stream_of(compute_stream_)); }

  /// ncclCommAbort is the one NCCL call meant for another thread while collectives hang: it makes them return.
  void abort_collectives() override {
    if (comm_ != nullptr && !aborted_.exchange(true)) ncclCommAbort(comm_);
  }

  [[noreturn]] void abort(int code) override {
    abort_collectives();
    MpiSession::abort(code);
  }

 private:
  /// Whether `p` is device (or managed) memory; host memory, pinned or not, is not.
  bool on_device(const void* p) const {
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
      cudaGetLastError();  // clear the error of an unknown pointer: it is host memory
      return false;
    }
    return attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
  }

  /// The scratch buffer holds at least `bytes` (grown, never shrunk).
  void reserve(std::size_t bytes) {
    if (bytes <= scratch_bytes_) return;
    if (scratch_ != nullptr) cudaFree(scratch_);
    scratch_ = nullptr;
    scratch_bytes_ = 0;
    cuda_check(cudaMalloc(&scratch_, bytes), "cudaMalloc (NCCL scratch)", rank_);
    scratch_bytes_ = bytes;
  }

  /// The communicator's stream waits for the work LibTorch queued on the compute stream.
  void after_compute_stream() {
    cuda_check(cudaEventRecord(ready_, stream_of(compute_stream_)), "cudaEventRecord", rank_);
    cuda_check(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent", rank_);
  }

  /// A device buffer holding `data`: `data` itself (after the compute stream), or host data copied into the start
  /// of the scratch buffer.
  void* stage_in(void* data, std::size_t bytes) {
    if (on_device(data)) {
      after_compute_stream();
      return data;
    }
    reserve(bytes);
    void* buffer = scratch_;
    cuda_check(cudaMemcpyAsync(buffer, data, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync", rank_);
    return buffer;
  }

  void stage_out(void* data, const void* buffer, std::size_t bytes) {
    if (buffer != data)
      cuda_check(cudaMemcpyAsync(data, buffer, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync", rank_);
  }

  /// The host waits for the communicator's stream (blocking collectives are timed by the watchdog, whose timeout
  /// action aborts the communicator, which makes a hung NCCL kernel return).
  void synchronize(const char* what) {
    const cudaError_t synced = cudaStreamSynchronize(stream_);
    // Aborted by the watchdog, which ends the process in a moment: the communicator is gone, touch nothing.
    while (aborted_.load()) std::this_thread::sleep_for(std::chrono::seconds(1));
    cuda_check(synced, what, rank_);
    ncclResult_t async_error = ncclSuccess;
    nccl_check(ncclCommGetAsyncError(comm_, &async_error), "ncclCommGetAsyncError", rank_);
    nccl_check(async_error, what, rank_);
  }

  int device_ = 0;
  StreamSource compute_stream_;
  std::atomic<bool> aborted_{false};
  int rank_ = 0;
  int size_ = 1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  void* scratch_ = nullptr;
  std::size_t scratch_bytes_ = 0;
};

}  // namespace

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device, StreamSource compute_stream) {
  return std::make_unique<NcclCommunicator>(comm, device, std::move(compute_stream));
}

}  // namespace shardgan::comm
