#pragma once
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.hpp"

namespace shardgan::parallel {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// Refuses to go on unless every rank has the same `value` (e.g. the hash of the resolved config or of the data
/// manifest): Error on every rank naming `what` and the ranks that differ from rank 0.
void require_agreement(comm::Communicator& comm, const std::string& what, const std::string& value);

/// Compares a 64-bit hash of every tensor across ranks. Error on every rank naming the step and the first tensor that
/// differs, so a silently diverged model stops the job instead of training on.
void check_consistency(comm::Communicator& comm, const NamedTensors& tensors, int64_t step);

/// Averages floating-point tensors over the ranks in place (BatchNorm running statistics under local BatchNorm:
/// each rank's come from its own batches; they are averaged before checkpoints and samples).
void average_tensors(comm::Communicator& comm, const std::vector<torch::Tensor>& tensors);

}  // namespace shardgan::parallel
