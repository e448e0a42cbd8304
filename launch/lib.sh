# shellcheck shell=bash disable=SC2154,SC2317
# Shared helpers for launch/train-local.sh and launch/train-hosts.sh (sourced, not run).
#   SHARDGAN_TRAIN        the trainer binary (default: $SHARDGAN_BUILD_DIR/src/shardgan-train)
#   SHARDGAN_BUILD_DIR    build folder (default: build/ in the repository)
#   SHARDGAN_MPIRUN       mpirun to use (default: mpirun on PATH)
#   SHARDGAN_MPIRUN_ARGS  extra mpirun arguments, split on blanks (e.g. "--mca btl self,tcp --display-map");
#                         a --bind-to or --map-by here replaces the scripts' default --bind-to none
# Needs: $prog (the calling script's name) and $root (the repository) set before sourcing.

die() { echo "$prog: $*" >&2; exit 2; }

# Absolute path of an existing file (remote ranks may start in another directory).
abs_path() { [[ $1 == /* ]] && printf '%s\n' "$1" || printf '%s\n' "$PWD/$1"; }

find_trainer() {
  local bin=${SHARDGAN_TRAIN:-${SHARDGAN_BUILD_DIR:-$root/build}/src/shardgan-train}
  [[ -x $bin && ! -d $bin ]] ||
    die "trainer not found or not executable: $bin (build it, or set SHARDGAN_TRAIN / SHARDGAN_BUILD_DIR)"
  abs_path "$bin"
}

find_mpirun() {
  local bin=${SHARDGAN_MPIRUN:-mpirun}
  command -v "$bin" >/dev/null 2>&1 ||
    die "mpirun not found: $bin (apt-get install openmpi-bin, or set SHARDGAN_MPIRUN)"
  printf '%s\n' "$bin"
}

# mpirun flags every launch gets; fills the global array mpi_flags.
#  --bind-to none: each rank runs several intra-op threads (runtime.threads, or cores on the node / ranks on the
#   node), and Open MPI's default for 2 or fewer ranks (bind to core) would squeeze all of a rank's threads onto one
#   core; --map-by socket:PE=k would bind k cores per rank, but only pays off on multi-socket nodes and fails when
#   ranks x k exceed the cores, so it is left to SHARDGAN_MPIRUN_ARGS (which then replaces --bind-to none).
#  --allow-run-as-root: only as root (containers, CI).
mpi_flags=()
extra_mpi_args=()
base_mpi_flags() {
  read -r -a extra_mpi_args <<<"${SHARDGAN_MPIRUN_ARGS:-}"
  local a custom_binding=0
  for a in "${extra_mpi_args[@]}"; do
    [[ $a == --bind-to* || $a == --map-by* || $a == -bind-to* || $a == -map-by* ]] && custom_binding=1
  done
  ((custom_binding)) || mpi_flags+=(--bind-to none)
  [[ $(id -u) -eq 0 ]] && mpi_flags+=(--allow-run-as-root)
  return 0
}

# Adds "-x NAME" for every environment variable the ranks need on every node: NCCL_* (NCCL_SOCKET_IFNAME,
# NCCL_IB_DISABLE, NCCL_DEBUG ...), SHARDGAN_* (but the launchers' own settings), OMP_*, OPENBLAS_*, and the names
# listed in SHARDGAN_PASS_ENV.
# Remote ranks do not inherit the launching shell's environment (they start from the remote login's).
pass_env() {
  local name extra=()
  read -r -a extra <<<"${SHARDGAN_PASS_ENV:-}"
  while IFS= read -r name; do
    [[ -n $name ]] && mpi_flags+=(-x "$name")
  done < <(compgen -e | grep -E '^(NCCL_|SHARDGAN_|OMP_|OPENBLAS_)' |
    grep -vxE 'SHARDGAN_(TRAIN|BUILD_DIR|MPIRUN|MPIRUN_ARGS|NP|GPUS|PASS_ENV)' || true)
  for name in "${extra[@]}"; do
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "SHARDGAN_PASS_ENV: not a variable name: $name"
    [[ -v $name ]] || die "SHARDGAN_PASS_ENV names $name, which is not set"
    mpi_flags+=(-x "$name")
  done
}

# Runs the command in the background and waits for it, printing it first (on stderr, shell-quoted).
#  SIGTERM/SIGUSR1/SIGUSR2 to this script become SIGUSR1 to mpirun, which forwards it to every rank on every node:
#   the trainer checkpoints after the current step and exits 75. (SIGTERM to mpirun itself would reach the ranks
#   too, but mpirun then SIGKILLs them after odls_base_sigkill_timeout = 1 s, before a real checkpoint is written,
#   and exits 1; the trainer does not handle SIGUSR2.)  SIGINT (Ctrl-C) and SIGHUP abort the job as mpirun does.
# Exits with mpirun's exit code: 0 done, 75 checkpointed after a signal, 70 watchdog, 1 other errors.
run_forwarding_signals() {
  printf '+' >&2
  printf ' %q' "$@" >&2
  printf '\n' >&2
  local rc=0 sig
  _sg_interrupted=0 _sg_child="" _sg_pending=()
  # Traps first, so that a signal during the start cannot kill this script and orphan mpirun; one that arrives
  # before mpirun exists is passed on right after it starts.
  _sg_forward() {
    _sg_interrupted=1
    if [[ -n $_sg_child ]]; then kill "-$1" "$_sg_child" 2>/dev/null || true; else _sg_pending+=("$1"); fi
  }
  trap '_sg_forward USR1' TERM USR1 USR2
  trap '_sg_forward INT' INT
  trap '_sg_forward HUP' HUP
  "$@" &
  _sg_child=$!
  for sig in "${_sg_pending[@]}"; do kill "-$sig" "$_sg_child" 2>/dev/null || true; done
  while :; do
    rc=0
    wait "$_sg_child" || rc=$?
    # wait returns early (status > 128) when a trapped signal arrives; bash remembers the child's real status, so
    # waiting again is safe even after it has exited.
    if ((_sg_interrupted)); then _sg_interrupted=0; continue; fi
    break
  done
  trap - TERM USR1 USR2 INT HUP
  exit "$rc"
}
