#!/usr/bin/env bash
# shellcheck disable=SC2034  # mpi_policy_flags is the sourced function's result
# The one mpirun policy: the flags every mpirun shardgan starts gets. Used by the launchers (launch/lib.sh:
# train-local.sh, train-hosts.sh), the benchmarks (bench/common.sh) and the MPI tests (cmake/ShardganTesting.cmake
# runs this script at configure time and reads its lines).
#   launch/mpi-flags.sh [--oversubscribe] [-- MPIRUN_ARGS...]       prints the flags, one a line
#   source launch/mpi-flags.sh
#   shardgan_mpi_flags [--oversubscribe] [-- MPIRUN_ARGS...]        the same into the array mpi_policy_flags
# MPIRUN_ARGS: the arguments the caller adds to mpirun itself (e.g. SHARDGAN_MPIRUN_ARGS); they are looked at, not
# repeated in the output.
# The policy:
#  --bind-to none       unless MPIRUN_ARGS has a --bind-to or --map-by (-bind-to/-map-by too): each rank runs
#                       several intra-op threads (runtime.threads, or cores on the node / ranks on the node), and
#                       Open MPI's default for 2 or fewer ranks (bind to core) would squeeze all of a rank's threads
#                       onto one core. --map-by socket:PE=k would bind k cores per rank, but only pays off on
#                       multi-socket nodes and fails when ranks x k exceed the cores (Open MPI 5 also refuses it next
#                       to --bind-to none), so it is the caller's choice, which then replaces --bind-to none.
#  --oversubscribe      only when asked: more ranks than cores (train-local.sh asks then, with a warning; the MPI
#                       tests always ask, their 3-rank runs share 2 cores).
#  --allow-run-as-root  when running as root (containers, CI): Open MPI refuses root otherwise (unless
#                       OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 are set; the flag is harmless
#                       then).
# And in the environment of the caller (sourced): HWLOC_COMPONENTS=-gl unless already set. Open MPI's hwloc looks for
# GPUs through its GL component by opening X displays, and display :6 is TCP port 6006 on localhost — TensorBoard's
# default port — which never answers like an X server: mpirun would wait there forever on a node that serves
# TensorBoard. shardgan needs no GL topology (every shardgan tool sets the same before MPI_Init: comm/mpi_session.cpp).
# The same spellings work with Open MPI 4.1 (Debian 12's mpirun) and 5.0 (Debian 13's, prterun underneath), which
# both accept --oversubscribe, --bind-to none and --allow-run-as-root.
# Exit codes (run as a script): 0; 2 bad usage (one line saying what).

shardgan_mpi_flags() {
  local oversubscribe=0 a custom_binding=0
  mpi_policy_flags=()
  export HWLOC_COMPONENTS=${HWLOC_COMPONENTS:--gl}
  while (($# > 0)); do
    case $1 in
      --oversubscribe) oversubscribe=1; shift ;;
      --) shift; break ;;
      *) echo "mpi-flags.sh: unknown option '$1' (usage: [--oversubscribe] [-- MPIRUN_ARGS...])" >&2; return 2 ;;
    esac
  done
  for a in "$@"; do
    [[ $a == --bind-to* || $a == --map-by* || $a == -bind-to* || $a == -map-by* ]] && custom_binding=1
  done
  ((custom_binding)) || mpi_policy_flags+=(--bind-to none)
  ((oversubscribe)) && mpi_policy_flags+=(--oversubscribe)
  [[ $(id -u) -eq 0 ]] && mpi_policy_flags+=(--allow-run-as-root)
  return 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  shardgan_mpi_flags "$@" || exit
  ((${#mpi_policy_flags[@]} == 0)) || printf '%s\n' "${mpi_policy_flags[@]}"
fi
