#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "comm/communicator.hpp"
#include "comm/mpi_session.hpp"
#include "util/error.hpp"

namespace shardgan::comm {
namespace {

float bf16_to_float(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);                                                      // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

/// IEEE binary16, rounded to nearest even (subnormals, infinities and NaN included).
uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (x >= 0x477ff000u) return sign | 0x7c00u;  // from 65520 (halfway above 65504, the largest) up: infinity
  if (x < 0x38800000u) {                        // below 2^-14: a subnormal half (or zero), in units of 2^-24
    float magnitude;
    std::memcpy(&magnitude, &x, sizeof(magnitude));
    return sign | static_cast<uint16_t>(std::nearbyint(magnitude * 16777216.0f));  // exact scaling, then even rounding
  }
  x += 0xfffu + ((x >> 13) & 1u);  // round the 13 dropped mantissa bits to nearest even
  x -= 112u << 23;                 // exponent bias 127 → 15
  return sign | static_cast<uint16_t>(x >> 13);
}

float half_to_float(uint16_t h) {
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return (h & 0x8000u) ? -magnitude : magnitude;
  }
  const uint32_t bits = (static_cast<uint32_t>(h & 0x8000u) << 16) |
                        (exponent == 31 ? 0x7f800000u : (exponent + 112u) << 23) | (mantissa << 13);
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

void half_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = float_to_half(half_to_float(a[i]) + half_to_float(b[i]));
}

void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = float_to_bf16(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}

/// MPI has no bfloat16 or float16: a 2-byte type with a user-defined sum that adds in float and rounds back (so a
/// sum of N values is rounded N - 1 times, as NCCL's reductions of these types are).
class HalfWidthType {
 public:
  explicit HalfWidthType(MPI_User_function* sum) {
    MPI_Type_contiguous(2, MPI_BYTE, &type_);
    MPI_Type_commit(&type_);
    MPI_Op_create(sum, 1, &sum_);
  }
  HalfWidthType(const HalfWidthType&) = delete;
  HalfWidthType& operator=(const HalfWidthType&) = delete;
  ~HalfWidthType() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    MPI_Op_free(&sum_);
    MPI_Type_free(&type_);
  }
  MPI_Datatype type() const { return type_; }
  MPI_Op sum() const { return sum_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
  MPI_Op sum_ = MPI_OP_NULL;
};

/// An all-reduce handed to the communication thread. `done` is set by that thread.
struct AsyncTask {
  void* data = nullptr;
  std::size_t count = 0;
  DType type = DType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
};

class MpiRequest final : public Request {
 public:
  explicit MpiRequest(std::shared_ptr<AsyncTask> task) : task_(std::move(task)) {}
  ~MpiRequest() override {
    std::unique_lock<std::mutex> lock(task_->mutex);
    task_->cv.wait(lock, [&] { return task_->done; });  // the buffer must outlive the operation
  }
  bool test() override {
    std::lock_guard<std::mutex> lock(task_->mutex);
    return task_->done;
  }
  void wait() override {
    std::unique_lock<std::mutex> lock(task_->mutex);
    task_->cv.wait(lock, [&] { return task_->done; });
    if (task_->error) std::rethrow_exception(task_->error);
  }

 private:
  std::shared_ptr<AsyncTask> task_;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) {
    mpi_check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    if (level < MPI_THREAD_MULTIPLE)
      fail("the MPI library provides thread level ", level,
           ", shardgan needs MPI_THREAD_MULTIPLE for its "
           "communication thread");
    mpi_check(MPI_Comm_dup(comm, &async_comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(async_comm_, MPI_ERRORS_RETURN);
    worker_ = std::thread([this] { run_async(); });
  }
  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      stop_ = true;
    }
    queue_cv_.notify_all();
    worker_.join();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    MPI_Comm_free(&async_comm_);
    MPI_Comm_free(&comm_);
  }

  const char* backend() const override { return "mpi"; }
  bool device_memory() const override { return false; }  // Debian's Open MPI is not CUDA-aware
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce(void* data, std::size_t count, DType type, ReduceOp op) override {
    reduce(data, count, type, op, comm_);
  }

  /// Queued to this communicator's thread, which runs the blocking (and, for shared memory, much faster than
  /// MPI_Iallreduce) MPI_Allreduce on its own duplicate of the communicator, in the order queued.
  std::unique_ptr<Request> allreduce_async(void* data, std::size_t count, DType type, ReduceOp op) override {
    auto task = std::make_shared<AsyncTask>();
    task->data = data;
    task->count = count;
    task->type = type;
    task->op = op;
    {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      queue_.push_back(task);
    }
    queue_cv_.notify_all();
    return std::make_unique<MpiRequest>(std::move(task));
  }

  void broadcast(void* data, std::size_t count, DType type, int root) override {
    for (std::size_t offset = 0; offset < count; offset += kMaxCount) {
      const int n = static_cast<int>(std::min(kMaxCount, count - offset));
      mpi_check(MPI_Bcast(static_cast<char*>(data) + offset * dtype_size(type), n, mpi_type(type), root, comm_),
                "MPI_Bcast");
    }
  }

  void allgather(const void* send, void* recv, std::size_t count, DType type) override {
    if (count > kMaxCount) fail("allgather of ", count, " elements per rank is larger than supported");
    mpi_check(MPI_Allgather(send, static_cast<int>(count), mpi_type(type), recv, static_cast<int>(count),
                            mpi_type(type), comm_),
              "MPI_Allgather");
  }

  void barrier() override { mpi_check(MPI_Barrier(comm_), "MPI_Barrier"); }

  [[noreturn]] void abort(int code) override { MpiSession::abort(code); }

 private:
  static constexpr std::size_t kMaxCount = 1u << 30;  // MPI counts are int

  MPI_Datatype mpi_type(DType type) const {
    switch (type) {
      case DType::kFloat32: return MPI_FLOAT;
      case DType::kFloat64: return MPI_DOUBLE;
      case DType::kBFloat16: return bf16_.type();
      case DType::kFloat16: return fp16_.type();
      case DType::kInt64: return MPI_INT64_T;
      case DType::kUInt8: return MPI_UINT8_T;
    }
    return MPI_BYTE;
  }

  void divide(void* data, std::size_t count, DType type) const {
    switch (type) {
      case DType::kFloat32: {
        auto* p = static_cast<float*>(data);
        for (std::size_t i = 0; i < count; ++i) p[i] /= static_cast<float>(size_);
        break;
      }
      case DType::kFloat64: {
        auto* p = static_cast<double*>(data);
        for (std::size_t i = 0; i < count; ++i) p[i] /= size_;
        break;
      }
      case DType::kBFloat16: {
        auto* p = static_cast<uint16_t*>(data);
        for (std::size_t i = 0; i < count; ++i) p[i] = float_to_bf16(bf16_to_float(p[i]) / size_);
        break;
      }
      case DType::kFloat16: {
        auto* p = static_cast<uint16_t*>(data);
        for (std::size_t i = 0; i < count; ++i) p[i] = float_to_half(half_to_float(p[i]) / size_);
        break;
      }
      case DType::kInt64:
      case DType::kUInt8: fail("average of integer data is not defined; use sum");
    }
  }

  void run_async() {
    while (true) {
      std::shared_ptr<AsyncTask> task;
      {
        std::unique_lock<std::mutex> lock(queue_mutex_);
        queue_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      try {
        reduce(task->data, task->count, task->type, task->op, async_comm_);
      } catch (...) {
        task->error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(task->mutex);
        task->done = true;
      }
      task->cv.notify_all();
    }
  }

  void reduce(void* data, std::size_t count, DType type, ReduceOp op, MPI_Comm comm) {
    if (count == 0) return;
    const MPI_Op mpi_op = type == DType::kBFloat16 ? bf16_.sum() : type == DType::kFloat16 ? fp16_.sum() : MPI_SUM;
    for (std::size_t offset = 0; offset < count; offset += kMaxCount) {
      const int n = static_cast<int>(std::min(kMaxCount, count - offset));
      void* chunk = static_cast<char*>(data) + offset * dtype_size(type);
      mpi_check(MPI_Allreduce(MPI_IN_PLACE, chunk, n, mpi_type(type), mpi_op, comm), "MPI_Allreduce");
    }
    if (op == ReduceOp::kAvg && size_ > 1) divide(data, count, type);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm async_comm_ = MPI_COMM_NULL;
  std::thread worker_;
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<std::shared_ptr<AsyncTask>> queue_;
  bool stop_ = false;
  int rank_ = 0;
  int size_ = 1;
  HalfWidthType bf16_{&bf16_sum};
  HalfWidthType fp16_{&half_sum};
};

}  // namespace

std::size_t dtype_size(DType type) {
  switch (type) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kBFloat16:
    case DType::kFloat16: return 2;
    case DType::kInt64: return 8;
    case DType::kUInt8: return 1;
  }
  return 1;
}

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm) {
  return std::make_unique<MpiCommunicator>(comm);
}

}  // namespace shardgan::comm
