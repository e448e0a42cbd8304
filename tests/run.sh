#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and runs the whole test suite:
# installs the Debian packages (launch/bootstrap.sh), configures (Release), builds, runs ctest
# (unit, MPI, integration). CI runs exactly this (.ci/run).
#   SHARDGAN_BUILD_DIR  build folder (default: build/ in the checkout)
#   extra arguments go to ctest, e.g.  ./tests/run.sh -L mpi
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SHARDGAN_BUILD_DIR:-$root/build}
jobs=$(nproc)

"$root/launch/bootstrap.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDGAN_BUILD_TESTS=ON >/dev/null
cmake --build "$build" --parallel "$jobs"
cd "$build"
ctest --output-on-failure --parallel "$jobs" --timeout 600 "$@"
