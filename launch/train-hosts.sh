#!/usr/bin/env bash
# Trains across several machines with `mpirun --hostfile`: as many ranks as the hostfile has slots, filling each
# host's slots before the next (ranks 0..k-1 on the first host). Run it on the first host of the hostfile.
# Usage: launch/train-hosts.sh HOSTFILE CONFIG [shardgan-train arguments: --run-dir R --set k=v --resume auto ...]
#   HOSTFILE   Open MPI hostfile, one host per line: "gpu01 slots=4" (slots = GPUs per node for GPU training,
#              1 for CPU nodes unless you want several CPU ranks per node; a host without slots gets Open MPI's
#              default). Comments (#) and blank lines are fine.
#   CONFIG     TOML run configuration; it, the data, the run folder and the trainer must be at the same path on
#              every host (a shared file system), as usual for MPI.
# Requirements on the hosts: passwordless ssh from the first host to the others (or another Open MPI launch agent:
# SHARDGAN_MPIRUN_ARGS="--mca plm_rsh_agent /path/agent"), and the same Open MPI version everywhere.
#
# Environment passed to every rank with mpirun -x (remote ranks do not inherit this shell's environment):
#   NCCL_*        e.g. NCCL_SOCKET_IFNAME=eth0 (the network NCCL's bootstrap and sockets use), NCCL_IB_DISABLE=1
#                 (no InfiniBand), NCCL_DEBUG=INFO (NCCL prints its rings/transport choice)
#   SHARDGAN_* (but the launchers' own settings below), OMP_*, OPENBLAS_*, and every name in SHARDGAN_PASS_ENV
#                 (blank-separated, e.g. "CUDA_HOME HDF5_USE_FILE_LOCKING")
# Other environment:
#   SHARDGAN_TRAIN                       the trainer; else SHARDGAN_BIN/shardgan-train, else
#                                        SHARDGAN_BUILD_DIR/src/shardgan-train; else PREFIX/bin/shardgan-train when
#                                        this script is installed (PREFIX/share/shardgan/launch/), else
#                                        build/src/shardgan-train in this repository, else shardgan-train on PATH
#                                        (launch/lib.sh, find_tool)
#   SHARDGAN_MPIRUN                      mpirun to use (default: mpirun)
#   SHARDGAN_MPIRUN_ARGS                 extra mpirun arguments, split on blanks, e.g. for TCP between the nodes
#                                        "--mca btl self,vader,tcp --mca btl_tcp_if_include 10.0.0.0/24
#                                        --mca oob_tcp_if_include 10.0.0.0/24"; a --bind-to/--map-by there
#                                        replaces the default --bind-to none
#   SHARDGAN_NP                          number of ranks (default: every slot of the hostfile)
# Threads: each rank uses runtime.threads, or (default 0) cores on its node / ranks on its node; OMP_NUM_THREADS
# is passed on only when you set it. Devices: each rank uses GPU (local rank mod GPUs on its node) when the node
# has GPUs (runtime.device = auto), so give each host as many slots as it has GPUs.
# Signals (launch/lib.sh, run_forwarding_signals): SIGTERM, SIGUSR1 or SIGUSR2 to this script reach every rank on
# every host as SIGUSR1: they checkpoint after the current step and the script exits 75 (continue with --resume
# auto). Exit code = mpirun's (0, 1, 70, 75); 2 = bad input (one line saying what). SIGINT/SIGHUP abort the job
# (SIGTERM to mpirun). mpirun flags: the policy of launch/mpi-flags.sh (--bind-to none unless SHARDGAN_MPIRUN_ARGS
# binds, --allow-run-as-root as root).
# The mpirun command is printed (on stderr) before it runs.
set -euo pipefail
prog="train-hosts.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=launch/lib.sh
source "$root/launch/lib.sh"

(($# >= 2)) || die "usage: $prog HOSTFILE CONFIG [shardgan-train arguments]"
hostfile=$1 config=$2
shift 2
[[ -f $hostfile && -r $hostfile ]] || die "hostfile not found: $hostfile"
[[ -f $config && -r $config ]] || die "config not found: $config"
hostfile=$(abs_path "$hostfile")
config=$(abs_path "$config")
train=$(find_trainer)
mpirun=$(find_mpirun)

# Hosts and slots, for the summary line and to catch an empty or malformed hostfile here rather than in mpirun.
hosts=0 slots=0 all_slots=1
while read -r host rest; do
  [[ -z $host || $host == \#* ]] && continue
  hosts=$((hosts + 1))
  if [[ $rest =~ (^|[[:space:]])slots=([0-9]+) ]]; then
    slots=$((slots + BASH_REMATCH[2]))
  elif [[ $rest =~ slots ]]; then
    die "$hostfile: bad slots for host $host: '$rest'"
  else
    all_slots=0
  fi
done < <(sed 's/#.*//' "$hostfile")
((hosts > 0)) || die "no hosts in $hostfile"

np_flags=()
if [[ -n ${SHARDGAN_NP:-} ]]; then
  [[ $SHARDGAN_NP =~ ^[1-9][0-9]*$ ]] || die "SHARDGAN_NP must be a positive integer, got '$SHARDGAN_NP'"
  np_flags=(-np "$SHARDGAN_NP")
  echo "$prog: $SHARDGAN_NP rank(s) on $hosts host(s) from $hostfile" >&2
elif ((all_slots)); then
  np_flags=(-np "$slots")
  echo "$prog: $slots rank(s) on $hosts host(s) from $hostfile" >&2
else
  echo "$prog: one rank per slot on $hosts host(s) from $hostfile (some hosts without slots=)" >&2
fi

# shellcheck disable=SC2119  # no --oversubscribe: the hostfile's slots decide
base_mpi_flags
pass_env
run_forwarding_signals "$mpirun" "${np_flags[@]}" --hostfile "$hostfile" "${mpi_flags[@]}" "${extra_mpi_args[@]}" \
  "$train" --config "$config" "$@"
