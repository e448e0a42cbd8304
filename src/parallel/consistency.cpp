#include "parallel/consistency.hpp"

#include <torch/torch.h>
#include <xxhash.h>

#include "parallel/tensor_comm.hpp"
#include "util/error.hpp"

namespace shardgan::parallel {
namespace {

int64_t hash_of(const std::string& s) {
  return static_cast<int64_t>(XXH3_64bits(s.data(), s.size()));
}

int64_t hash_of(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
  return static_cast<int64_t>(XXH3_64bits(c.data_ptr(), static_cast<std::size_t>(c.nbytes())));
}

}  // namespace

void require_agreement(comm::Communicator& comm, const std::string& what, const std::string& value) {
  if (comm.size() == 1) return;
  const auto all = comm.allgather(std::vector<int64_t>{hash_of(value)});
  std::string differ;
  for (int r = 1; r < comm.size(); ++r)
    if (all[static_cast<std::size_t>(r)] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (!differ.empty())
    fail("ranks disagree on ", what, ": rank(s) ", differ,
         " differ from rank 0; every rank must run the same "
         "configuration on the same data (check the paths each node sees)");
}

void check_consistency(comm::Communicator& comm, const NamedTensors& tensors, int64_t step) {
  if (comm.size() == 1) return;
  std::vector<int64_t> mine;
  mine.reserve(tensors.size());
  for (const auto& [name, t] : tensors) mine.push_back(hash_of(t));
  const auto all = comm.allgather(mine);
  for (std::size_t i = 0; i < tensors.size(); ++i)
    for (int r = 1; r < comm.size(); ++r)
      if (all[static_cast<std::size_t>(r) * mine.size() + i] != all[i])
        fail("parameters diverged across ranks at step ", step, ": ", tensors[i].first, " on rank ", r,
             " differs from rank 0");
}

void average_tensors(comm::Communicator& comm, const std::vector<torch::Tensor>& tensors) {
  if (comm.size() == 1) return;
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    if (!t.is_floating_point()) continue;
    const torch::Tensor c = t.to(torch::kFloat32);  // float64 and bf16 buffers averaged like float32 ones
    allreduce(comm, c, comm::ReduceOp::kAvg);
    if (!c.is_same(t)) t.copy_(c);
  }
}

}  // namespace shardgan::parallel
