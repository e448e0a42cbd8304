#pragma once
#include <functional>

#include "comm/mpi_session.hpp"

namespace shardgan::train {

/// The one error guard of the tools that run under mpirun: runs `body` and returns its exit code; when it throws,
/// prints one "<tool>: error: ..." line (naming the rank when there are several) and, with other ranks alive, ends the
/// whole job at once (MPI_Abort) — before anything that `body`'s caller owns is torn down, since tearing down NCCL or
/// a device can wait for the other ranks forever. Alone, it returns 1. Objects that hold communicators must outlive
/// the guard (Trainer: see train()).
int run_or_abort(const comm::MpiSession& session, const char* tool, const std::function<int()>& body);

}  // namespace shardgan::train
