#!/usr/bin/env bash
# Trains on this machine with NPROC MPI ranks: one rank per GPU when there are GPUs, CPU ranks otherwise.
# Usage: launch/train-local.sh NPROC|auto CONFIG [shardgan-train arguments: --run-dir R --set k=v --resume auto ...]
#   launch/train-local.sh 2 configs/fashion_mnist.toml --run-dir runs/fm
#   launch/train-local.sh auto configs/cifar_catdog.toml --resume auto          # one rank per GPU (1 on CPU)
#
# GPUs: counted from CUDA_VISIBLE_DEVICES when it is set (empty or -1: none), else from `nvidia-smi -L`;
#   SHARDGAN_GPUS=N overrides the count. With GPUs, NPROC may not exceed them: every rank drives its own GPU
#   (local rank mod GPUs) and NCCL refuses two ranks on one GPU, so NPROC > GPUs is an error, not a warning.
#   NPROC < GPUs uses the first NPROC. CPU ranks are used when there is no GPU or when runtime.device = "cpu"
#   (in CONFIG or as --set runtime.device=cpu); when no GPU was counted but runtime.device is "auto" (e.g.
#   SHARDGAN_GPUS=0 on a GPU machine, or GPUs without nvidia-smi), --set runtime.device=cpu is added after your
#   arguments, so that the ranks do not pick up GPUs by themselves (NPROC may then exceed the GPUs).
#   runtime.device is read from the trainer's dry run, run once as a single process (no mpirun) before the launch:
#   `shardgan-train --config CONFIG [your arguments] --set data.verify=false --set data.cache=stream --dry-run --json`
#   (nothing hashed or loaded; python3 reads its JSON); a config or data error stops the script there, with the
#   trainer's message and exit code.
# Threads: OMP_NUM_THREADS = cores / NPROC (at least 1) unless already set; the trainer itself uses
#   runtime.threads, or cores on the node / ranks on the node when that is 0 (the default) — the same number.
#   Ranks are started with --bind-to none so those threads may use every core, and more ranks than cores adds
#   --oversubscribe (with a warning: ranks then share cores): the mpirun policy of launch/mpi-flags.sh.
# Signals (launch/lib.sh, run_forwarding_signals): SIGTERM, SIGUSR1 or SIGUSR2 to this script reach every rank as
#   SIGUSR1: they checkpoint after the current step and the script exits 75 (continue with --resume auto). Exit code
#   = mpirun's (0, 1, 70 watchdog, 75); 2 = bad input (one line saying what); the dry run's code when it fails.
#   SIGINT/SIGHUP abort the job (SIGTERM to mpirun).
# Environment:
#   SHARDGAN_TRAIN                       the trainer; else SHARDGAN_BIN/shardgan-train, else
#                                        SHARDGAN_BUILD_DIR/src/shardgan-train; else PREFIX/bin/shardgan-train when
#                                        this script is installed (PREFIX/share/shardgan/launch/), else
#                                        build/src/shardgan-train in this repository, else shardgan-train on PATH
#                                        (launch/lib.sh, find_tool)
#   SHARDGAN_MPIRUN                      mpirun to use (default: mpirun)
#   SHARDGAN_MPIRUN_ARGS                 extra mpirun arguments (a --bind-to/--map-by there replaces --bind-to none)
#   SHARDGAN_GPUS                        number of GPUs to assume (0 forces CPU ranks)
#   SHARDGAN_PASS_ENV                    more variable names for mpirun -x (NCCL_*, SHARDGAN_*, OMP_*, OPENBLAS_*
#                                        are always passed)
# The mpirun command is printed (on stderr) before it runs.
set -euo pipefail
prog="train-local.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=launch/lib.sh
source "$root/launch/lib.sh"

(($# >= 2)) || die "usage: $prog NPROC|auto CONFIG [shardgan-train arguments]"
nproc_arg=$1 config=$2
shift 2
[[ $nproc_arg == auto || $nproc_arg =~ ^[1-9][0-9]*$ ]] ||
  die "NPROC must be a positive integer or 'auto', got '$nproc_arg'"
[[ -f $config && -r $config ]] || die "config not found: $config"
config=$(abs_path "$config")
train=$(find_trainer)
mpirun=$(find_mpirun)

# runtime.device as the trainer resolves the configuration (CONFIG, then the --set arguments in order; before it
# is matched to a device): from the trainer's own dry run, as one process (no mpirun), with data.verify=false so
# that no shard is re-hashed. It prints one JSON object on stdout ({"config": {"runtime.device": ...}, "plan": ...});
# its error (one line on stderr, e.g. a bad key or no data) ends this script with the trainer's exit code.
command -v python3 >/dev/null 2>&1 || die "python3 not found (launch/bootstrap.sh installs it)"
dry_rc=0
dry_json=$("$train" --config "$config" "$@" --set data.verify=false --set data.cache=stream --dry-run --json) || dry_rc=$?
((dry_rc == 0)) || exit "$dry_rc"
device=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["runtime.device"])' \
  <<<"$dry_json" 2>/dev/null) ||
  die "the trainer's dry run (--dry-run --json) printed no config.runtime.device:" \
    "$(head -c 200 <<<"$dry_json" | tr '\n' ' ')"
[[ $device == @(auto|cpu|cuda) ]] ||
  die "the trainer's dry run gave runtime.device = '$device' (auto, cpu or cuda expected)"

count_gpus() {
  if [[ -n ${SHARDGAN_GPUS:-} ]]; then
    [[ $SHARDGAN_GPUS =~ ^[0-9]+$ ]] || die "SHARDGAN_GPUS must be a number, got '$SHARDGAN_GPUS'"
    echo "$SHARDGAN_GPUS"
  elif [[ -v CUDA_VISIBLE_DEVICES ]]; then
    # CUDA stops at the first invalid entry ("-1" hides every GPU); count entries up to it.
    local n=0 d
    IFS=, read -r -a ds <<<"$CUDA_VISIBLE_DEVICES"
    for d in "${ds[@]}"; do [[ -z $d || $d == -* || $d == NoDevFiles ]] && break; n=$((n + 1)); done
    echo "$n"
  elif command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true
  else
    echo 0
  fi
}
gpus=0
[[ $device == cpu ]] || gpus=$(count_gpus)
cpu_args=()
cores=$(nproc)

if ((gpus > 0)); then
  [[ $nproc_arg == auto ]] && nproc_arg=$gpus
  ((nproc_arg <= gpus)) || die "$nproc_arg ranks but $gpus GPU(s): one rank per GPU (NCCL cannot share a GPU" \
    "between ranks); use NPROC <= $gpus, or --set runtime.device=cpu for CPU ranks"
  what="$nproc_arg rank(s), one per GPU ($gpus GPU(s) visible)"
else
  [[ $device == cuda ]] &&
    die "runtime.device = cuda but no GPU found (CUDA_VISIBLE_DEVICES, nvidia-smi -L); set SHARDGAN_GPUS=N if any"
  [[ $nproc_arg == auto ]] && nproc_arg=1
  what="$nproc_arg CPU rank(s)"
  # runtime.device = auto would let each rank use a GPU that LibTorch sees although none was counted here.
  [[ $device == cpu ]] || cpu_args=(--set runtime.device=cpu)
fi
np=$nproc_arg
threads=$((cores / np))
((threads >= 1)) || threads=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$threads}
echo "$prog: $what, $cores core(s), OMP_NUM_THREADS=$OMP_NUM_THREADS" >&2

oversubscribe=()
if ((np > cores)); then
  oversubscribe=(--oversubscribe)
  echo "$prog: warning: $np ranks on $cores core(s): ranks share cores (slower than fewer ranks)" >&2
fi
base_mpi_flags "${oversubscribe[@]}"
pass_env
run_forwarding_signals "$mpirun" -np "$np" "${mpi_flags[@]}" "${extra_mpi_args[@]}" \
  "$train" --config "$config" "$@" "${cpu_args[@]}"
