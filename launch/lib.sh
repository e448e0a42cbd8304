# shellcheck shell=bash disable=SC2154,SC2317
# Shared helpers for launch/train-local.sh, launch/train-hosts.sh, launch/quickstart.sh and cluster/slurm/*.sbatch
# (sourced, not run).
#   SHARDGAN_TRAIN        the trainer binary (SHARDGAN_PACK, SHARDGAN_SAMPLE, SHARDGAN_EVAL: the other tools);
#                         default: found by find_tool below (SHARDGAN_BIN, SHARDGAN_BUILD_DIR, an installed prefix,
#                         build/ in the repository, PATH)
#   SHARDGAN_BIN          a folder holding the tools
#   SHARDGAN_BUILD_DIR    a CMake build folder (the tools are in its src/)
#   SHARDGAN_MPIRUN       mpirun to use (default: mpirun on PATH)
#   SHARDGAN_MPIRUN_ARGS  extra mpirun arguments, split on blanks (e.g. "--mca btl self,tcp --display-map");
#                         a --bind-to or --map-by here replaces the scripts' default --bind-to none
# Needs: $prog (the calling script's name) and $root (the repository, or PREFIX/share/shardgan of an installed copy)
# set before sourcing.

# shellcheck source=launch/mpi-flags.sh
source "$root/launch/mpi-flags.sh"

die() { echo "$prog: $*" >&2; exit 2; }

# Absolute path of an existing file (remote ranks may start in another directory).
abs_path() { [[ $1 == /* ]] && printf '%s\n' "$1" || printf '%s\n' "$PWD/$1"; }

# An installed copy (`cmake --install build --prefix PREFIX`): these scripts sit in PREFIX/share/shardgan/launch/,
# and the install wrote launch/installed.sh there, which sets shardgan_installed_bindir to the tools' folder
# relative to $root (../../bin). A checkout has no such file. The prefix may have been moved since: nothing in it
# is an absolute path.
shardgan_installed_bindir=""
if [[ -f $root/launch/installed.sh ]]; then
  # shellcheck source=/dev/null  # written by cmake --install (cmake/ShardganInstall.cmake)
  source "$root/launch/installed.sh"
fi

# find_tool NAME [DIR...]: the absolute path of the shardgan tool NAME (shardgan-train, shardgan-pack,
# shardgan-sample, shardgan-eval), the first of
#   1. $SHARDGAN_TRAIN (SHARDGAN_PACK, SHARDGAN_SAMPLE, SHARDGAN_EVAL: the tool's own variable), the file itself;
#   2. $SHARDGAN_BIN/NAME, then $SHARDGAN_BUILD_DIR/src/NAME (when those are set);
#   3. the installed copy these scripts belong to: PREFIX/bin/NAME (see launch/installed.sh above);
#   4. in a repository checkout (not installed): its build, $root/build/src/NAME;
#   5. NAME on PATH;
#   6. DIR/NAME for each DIR given after NAME (train.sbatch: the submit folder's build/src).
# A variable of 1 or 2 that names no executable file is an error (exit 2, one line), not a reason to look further.
find_tool() {
  local name=$1 var bin="" from="" dir="" looked=()
  shift
  var=SHARDGAN_${name#shardgan-}
  var=${var^^}
  if [[ -n ${!var:-} ]]; then bin=${!var} from=$var
  elif [[ -n ${SHARDGAN_BIN:-} ]]; then bin=$SHARDGAN_BIN/$name from=SHARDGAN_BIN
  elif [[ -n ${SHARDGAN_BUILD_DIR:-} ]]; then bin=$SHARDGAN_BUILD_DIR/src/$name from=SHARDGAN_BUILD_DIR
  fi
  if [[ -n $from ]]; then
    [[ -x $bin && ! -d $bin ]] || die "$name not found or not executable: $bin (from $from)"
    abs_path "$bin"
    return 0
  fi
  if [[ -n $shardgan_installed_bindir ]]; then
    dir=$(cd "$root/$shardgan_installed_bindir" 2>/dev/null && pwd) || dir=$root/$shardgan_installed_bindir
    looked+=("$dir")
    if [[ -x $dir/$name && ! -d $dir/$name ]]; then
      printf '%s\n' "$dir/$name"
      return 0
    fi
  else
    bin=$root/build/src/$name
    looked+=("$root/build/src")
    if [[ -x $bin && ! -d $bin ]]; then
      abs_path "$bin"
      return 0
    fi
  fi
  if bin=$(command -v "$name" 2>/dev/null) && [[ $bin == */* ]]; then
    abs_path "$bin"
    return 0
  fi
  for dir in "$@"; do
    looked+=("$dir")
    if [[ -x $dir/$name && ! -d $dir/$name ]]; then
      abs_path "$dir/$name"
      return 0
    fi
  done
  die "$name not found in ${looked[*]} nor on PATH: build it (cmake --build build), install it (cmake --install" \
    "build --prefix PREFIX), or set $var, SHARDGAN_BIN or SHARDGAN_BUILD_DIR"
}

find_trainer() { find_tool shardgan-train; }

find_mpirun() {
  local bin=${SHARDGAN_MPIRUN:-mpirun}
  command -v "$bin" >/dev/null 2>&1 ||
    die "mpirun not found: $bin (apt-get install openmpi-bin, or set SHARDGAN_MPIRUN)"
  printf '%s\n' "$bin"
}

# mpirun flags every launch gets, by the one mpirun policy (launch/mpi-flags.sh: --bind-to none unless
# SHARDGAN_MPIRUN_ARGS binds, --oversubscribe when asked, --allow-run-as-root as root); fills the global arrays
# mpi_flags (the policy's) and extra_mpi_args (SHARDGAN_MPIRUN_ARGS, split on blanks).
#   base_mpi_flags [--oversubscribe]
mpi_flags=()
extra_mpi_args=()
base_mpi_flags() {
  read -r -a extra_mpi_args <<<"${SHARDGAN_MPIRUN_ARGS:-}"
  shardgan_mpi_flags "$@" -- "${extra_mpi_args[@]}" || exit 2
  mpi_flags+=("${mpi_policy_flags[@]}")
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
    grep -vxE 'SHARDGAN_(TRAIN|PACK|SAMPLE|EVAL|BIN|BUILD_DIR|ROOT|SHARE|MPIRUN|MPIRUN_ARGS|NP|GPUS|PASS_ENV)' || true)
  for name in "${extra[@]}"; do
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "SHARDGAN_PASS_ENV: not a variable name: $name"
    [[ -v $name ]] || die "SHARDGAN_PASS_ENV names $name, which is not set"
    mpi_flags+=(-x "$name")
  done
}

# The one signal-forwarding launch (train-local.sh, train-hosts.sh: mpirun; cluster/slurm/train.sbatch: srun).
# Runs the command in the background and waits for it, printing it first (on stderr, shell-quoted: "+ cmd ...").
#  SIGTERM/SIGUSR1/SIGUSR2 to this script become SIGUSR1 to the command (mpirun, srun), which forwards it to every
#   rank on every node: the trainer checkpoints after the current step and exits 75. (SIGTERM to the launcher itself
#   would reach the ranks too, but mpirun then SIGKILLs them after odls_base_sigkill_timeout = 1 s and srun at once,
#   before a real checkpoint is written; the trainer does not handle SIGUSR2.)
#  SIGINT (Ctrl-C) and SIGHUP to this script abort the job: they reach the command as SIGTERM, which mpirun and srun
#   both take as "end the job now" (a single SIGINT would only make srun print the tasks' state).
#  Each signal is reported on stderr ("$prog: got SIGUSR1; ..."). One that arrives before the command has started is
#  passed on right after it starts; one that arrives after it ended is reported and ignored (the traps stay until
#  the caller removes them, so that a late signal cannot end the caller before it has acted on the exit code).
# Returns the command's exit status: 0 done, 75 checkpointed after a signal, 70 watchdog, 1 other errors. The
# launchers end with it (under set -e a non-zero status ends the script with that code); train.sbatch goes on
# (requeue after 75) and removes the traps itself before it asks Slurm to requeue (and so end) it.
run_forwarding_signals() {
  printf '+' >&2
  printf ' %q' "$@" >&2
  printf '\n' >&2
  local rc=0 sig
  _sg_interrupted=0 _sg_child="" _sg_done=0 _sg_pending=() _sg_name=${1##*/}
  # Traps first, so that a signal during the start cannot kill this script and orphan the command.
  _sg_forward() {  # RECEIVED SENT
    if ((_sg_done)); then
      echo "$prog: got SIG$1 after $_sg_name ended; ignored" >&2 || true
      return 0
    fi
    _sg_interrupted=1
    if [[ $2 == USR1 ]]; then
      echo "$prog: got SIG$1; asking the ranks to checkpoint and stop (SIGUSR1 to $_sg_name)" >&2 || true
    else
      echo "$prog: got SIG$1; ending the job (SIG$2 to $_sg_name)" >&2 || true
    fi
    if [[ -n $_sg_child ]]; then kill "-$2" "$_sg_child" 2>/dev/null || true; else _sg_pending+=("$2"); fi
  }
  trap '_sg_forward TERM USR1' TERM
  trap '_sg_forward USR1 USR1' USR1
  trap '_sg_forward USR2 USR1' USR2
  trap '_sg_forward INT TERM' INT
  trap '_sg_forward HUP TERM' HUP
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
  _sg_done=1 _sg_child=""
  return "$rc"
}
