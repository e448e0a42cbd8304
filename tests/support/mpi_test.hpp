#pragma once
#include "comm/mpi_session.hpp"

namespace shardgan::testing {

/// The MpiSession the MPI tests' main opened (tests/support/mpi_main.cpp).
comm::MpiSession& mpi_session();

}  // namespace shardgan::testing
