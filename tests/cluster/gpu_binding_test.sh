#!/usr/bin/env bash
# GPU binding of the launch paths, with fake GPUs (no GPU is needed or used): which GPU each rank would drive.
# A probe script stands in for shardgan-train (SHARDGAN_TRAIN); every rank it is started as writes down its rank,
# local rank, CUDA_VISIBLE_DEVICES, its arguments and its NCCL_*/SHARDGAN_* environment. From that the test works out
# what shardgan-train would do there (src/train/trainer.cpp, set_up_runtime): runtime.device from the arguments (last
# --set wins) or the config, the GPUs CUDA would show (the machine's, filtered by CUDA_VISIBLE_DEVICES: indices or
# UUIDs, up to the first invalid entry), CPU for "cpu" or "auto" without GPUs, else GPU (local rank mod visible
# GPUs), where the local rank is the rank's place among the ranks on its host (MPI's shared-memory split).
#   local   launch/train-local.sh under mpirun, with a fake `nvidia-smi -L` (2 or 4 "NVIDIA H100" lines) first on
#           PATH: `auto` = one rank per GPU, each on its own GPU; NPROC < GPUs uses the first NPROC; NPROC > GPUs is
#           refused (exit 2, one line, nothing started); CUDA_VISIBLE_DEVICES "1,3" / UUIDs / "2,-1,0" / "-1" / ""
#           count 2 / 2 / 1 / 0 / 0 and the ranks get the GPUs listed; SHARDGAN_GPUS overrides the count (0: CPU
#           ranks even on a GPU machine); runtime.device = cpu (config, --set, --set=) gives CPU ranks with GPUs
#           present; GPUs without nvidia-smi give CPU ranks; NCCL_*/SHARDGAN_* reach the ranks (mpirun -x);
#           OMP_NUM_THREADS = cores / ranks; runtime.device comes from one dry run of the trainer (the probe answers
#           --dry-run --json), run without mpirun, whose error and exit code are passed on.
#   slurm   cluster/slurm/train.sbatch on a real one-machine Slurm cluster (cluster/local-slurm/up.sh with
#           LOCAL_SLURM_GPUS=2: character devices made with mknod, declared as GRES gpu:2 in gres.conf), so that
#           Slurm itself sets CUDA_VISIBLE_DEVICES per task: --gpus-per-node=2 --ntasks-per-node=2 (every task sees
#           both, local ranks 0 and 1 take GPU 0 and GPU 1) and --gpus-per-task=1 --ntasks-per-node=2 (each task
#           sees only its own); NCCL_* and the trainer arguments (--config, --run-dir, --resume auto,
#           --set runtime.threads=1, the user's --set) reach every task.
# Usage: gpu_binding_test.sh SOURCE_DIR [local|slurm|all]   (default all)
# Exit codes: 0 pass; 77 skipped (slurm only: the local cluster cannot start on this machine, reason printed);
#   1 fail (with the tails of the logs); 2 bad arguments.
# Environment: SHARDGAN_MPIRUN (mpirun for the local part), SHARDGAN_TEST_KEEP=1 keeps the temp folder.
set -euo pipefail

if (($# < 1 || $# > 2)) || [[ ${2:-all} != @(local|slurm|all) ]]; then
  echo "usage: gpu_binding_test.sh SOURCE_DIR [local|slurm|all]" >&2
  exit 2
fi
if [[ ${2:-all} == all ]]; then  # each part where it runs: the Slurm part in a network namespace of its own
  "$0" "$1" local || exit
  exec "$0" "$1" slurm
fi
if [[ $2 == slurm ]]; then
  # shellcheck source=tests/support/private_net.sh
  source "$(dirname "$0")/../support/private_net.sh"
fi
src=$(realpath -m "$1") part=${2:-all}
local_sh=$src/launch/train-local.sh sbatch_file=$src/cluster/slurm/train.sbatch
up=$src/cluster/local-slurm/up.sh down=$src/cluster/local-slurm/down.sh reaper=$src/tests/cluster/slurm_test_reaper.sh
for f in "$local_sh" "$sbatch_file" "$up" "$down" "$reaper"; do
  [[ -f $f ]] || { echo "FAIL: missing $f (SOURCE_DIR wrong?)"; exit 2; }
done
# Only what this test sets may reach the launchers and the ranks.
unset CUDA_VISIBLE_DEVICES SHARDGAN_GPUS SHARDGAN_TRAIN SHARDGAN_BUILD_DIR SHARDGAN_BIN SHARDGAN_MPIRUN_ARGS \
  SHARDGAN_PASS_ENV SHARDGAN_NP OMP_NUM_THREADS SHARDGAN_THREADS SHARDGAN_SRUN_ARGS SHARDGAN_MPI RUN_DIR CONFIG
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SRUN|SALLOC|NCCL)_' || true)

tmp=$(mktemp -d /tmp/sg-gpubind-XXXXXX)
chmod 755 "$tmp"  # munged wants every folder above its socket world-executable
cluster=$tmp/c
cleanup() {
  if [[ ${SHARDGAN_TEST_KEEP:-0} == 1 ]]; then
    "$down" "$cluster" --keep >/dev/null 2>&1 || true
    echo "kept (SHARDGAN_TEST_KEEP=1): $tmp"
  else
    "$down" "$cluster" >/dev/null 2>&1 || true
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted"; exit 1' INT TERM
t0=$SECONDS
ok() { echo "ok ($((SECONDS - t0))s): $*"; }
last_log=""
fail() {
  echo "FAIL: $*"
  local f shown=" "
  for f in "$last_log" "$tmp"/*.out "$cluster"/log/slurmd.log; do
    [[ -n $f && -s $f ]] || continue
    [[ $shown == *" $f "* ]] && continue  # last_log may be one of the *.out
    shown+=" $f "
    echo "--- tail of $f"
    tail -n 20 "$f"
  done
  if [[ -d ${probe_dir:-} ]]; then
    for f in "$probe_dir"/rank-*; do [[ -f $f ]] && { echo "--- $f"; cat "$f"; }; done
  fi
  exit 1
}

# --- the machine's fake GPUs, the probe -----------------------------------------------------------------------
uuid() { printf 'GPU-5e1f0c2a-%04d-4b7d-9c1e-%012d' "$1" "$1"; }  # the UUID of fake GPU I
mkdir -p "$tmp/bin"
# nvidia-smi -L as on a machine with FAKE_GPUS H100s (0: the "No devices were found" of a machine without any).
cat >"$tmp/bin/nvidia-smi" <<EOF
#!/usr/bin/env bash
[[ \${1:-} == -L ]] || { echo "fake nvidia-smi: only -L" >&2; exit 2; }
n=\${FAKE_GPUS:-0}
((n > 0)) || { echo "No devices were found"; exit 6; }
for ((i = 0; i < n; i++)); do
  printf 'GPU %d: NVIDIA H100 80GB HBM3 (UUID: %s)\n' "\$i" "\$(printf 'GPU-5e1f0c2a-%04d-4b7d-9c1e-%012d' "\$i" "\$i")"
done
EOF
# Stands in for shardgan-train: one file per rank in SHARDGAN_PROBE_DIR (written whole, then renamed). Asked for
# train-local.sh's dry run (--dry-run --json, one process before the launch) it records its arguments in dry-run
# and answers as shardgan-train would: runtime.device from the config (device = "..." in the test's configs) and
# the --set arguments (last wins), or shardgan-train's error line and exit 1 for a value it refuses.
cat >"$tmp/bin/probe-train" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
if [[ " $* " == *" --dry-run "* ]]; then
  printf 'arg=%s\n' "$@" >>"$SHARDGAN_PROBE_DIR/dry-run"
  [[ -n ${OMPI_COMM_WORLD_RANK:-} ]] && echo "under_mpirun" >>"$SHARDGAN_PROBE_DIR/dry-run"
  device=auto prev=""
  for a in "$@"; do  # in order: --config first, then the --set arguments
    [[ $prev == --config ]] && device=$(sed -n 's/^device = "\([a-z]*\)".*/\1/p' "$a" | tail -1 | grep . || echo auto)
    [[ $prev == --set ]] && a="--set=$a"
    [[ $a =~ ^--set=runtime\.device=[\"\']?([a-z]*)[\"\']?$ ]] && device=${BASH_REMATCH[1]}
    prev=$a
  done
  [[ $device == @(auto|cpu|cuda) ]] ||
    { echo "shardgan-train: error: runtime.device: '$device' is not one of auto, cpu, cuda" >&2; exit 1; }
  printf '{"config":{"runtime.device":"%s","runtime.threads":1},"plan":{"world_size":1,"device":"cpu"}}\n' "$device"
  exit 0
fi
rank=${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-${SLURM_PROCID:-}}}
[[ -n $rank ]] || { echo "probe-train: no rank in the environment" >&2; exit 1; }
out=$SHARDGAN_PROBE_DIR/rank-$rank
{
  echo "rank=$rank"
  echo "launcher_local_rank=${OMPI_COMM_WORLD_LOCAL_RANK:-${SLURM_LOCALID:-}}"
  echo "host=$(hostname)"
  if [[ -v CUDA_VISIBLE_DEVICES ]]; then echo "cvd=$CUDA_VISIBLE_DEVICES"; else echo "cvd_unset"; fi
  echo "omp=${OMP_NUM_THREADS:-}"
  for a in "$@"; do printf 'arg=%s\n' "$a"; done
  env | grep -E '^(NCCL|SHARDGAN)_' | sort | sed 's/^/env=/' || true
} >"$out.part"
mv "$out.part" "$out"
echo "probe-train: rank $rank CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"
EOF
chmod +x "$tmp/bin/nvidia-smi" "$tmp/bin/probe-train"
export SHARDGAN_TRAIN=$tmp/bin/probe-train
probe_dir=$tmp/probe
export SHARDGAN_PROBE_DIR=$probe_dir

fresh_probe() { rm -rf "$probe_dir"; mkdir -p "$probe_dir"; }
field() { sed -n "s/^$2=//p" "$1" | head -1; }  # RANKFILE KEY
cvd_of() { if grep -qx cvd_unset "$1"; then echo unset; else field "$1" cvd; fi; }  # RANKFILE
rank_files() {  # the rank files, by rank
  find "$probe_dir" -maxdepth 1 -name 'rank-*' ! -name '*.part' -printf '%f\n' | sort -t- -k2 -n |
    sed "s|^|$probe_dir/|"
}
# local_rank_of RANKFILE: the rank's local rank as MPI's shared-memory split gives it: its place among the ranks on
# its host.
local_rank_of() {
  local f rank host n=0
  rank=$(field "$1" rank) host=$(field "$1" host)
  for f in $(rank_files); do
    [[ $(field "$f" host) == "$host" ]] && (($(field "$f" rank) < rank)) && n=$((n + 1))
  done
  echo "$n"
}

# device_of RANKFILE LOCAL_RANK MACHINE_GPUS CONFIG_DEVICE: what shardgan-train would use on that rank: "cpu",
# "gpu N" (N: the machine's GPU index), or "error ..." (runtime.device = cuda without a GPU). MACHINE_GPUS: how many
# GPUs the machine has; CONFIG_DEVICE: runtime.device in the config.
device_of() {
  local f=$1 local_rank=$2 machine=$3 device=$4 a prev="" e i n visible=() seen=" "
  while IFS= read -r a; do
    [[ $prev == --set ]] && a="--set=$a"
    [[ $a =~ ^--set=runtime\.device=[\"\']?([a-z]+)[\"\']?$ ]] && device=${BASH_REMATCH[1]}
    prev=$a
  done < <(sed -n 's/^arg=//p' "$f")
  if grep -qx cvd_unset "$f"; then
    for ((i = 0; i < machine; i++)); do visible+=("$i"); done
  else
    IFS=, read -r -a e <<<"$(field "$f" cvd)"
    for a in "${e[@]}"; do  # CUDA: indices or GPU UUIDs, up to the first invalid (or repeated) entry
      i=""
      if [[ $a =~ ^[0-9]+$ ]] && ((a < machine)); then i=$a; fi
      if [[ $a == GPU-* ]]; then
        for ((n = 0; n < machine; n++)); do [[ $(uuid "$n") == "$a" ]] && i=$n; done
      fi
      [[ -n $i && $seen != *" $i "* ]] || break
      visible+=("$i") seen+="$i "
    done
  fi
  n=${#visible[@]}
  case $device in
    cpu) echo cpu ;;
    auto) if ((n == 0)); then echo cpu; else echo "gpu ${visible[local_rank % n]}"; fi ;;
    cuda) if ((n == 0)); then echo "error no GPU"; else echo "gpu ${visible[local_rank % n]}"; fi ;;
    *) echo "error runtime.device=$device" ;;
  esac
}

# expect_ranks WHAT MACHINE_GPUS CONFIG_DEVICE DEVICE...: one rank file per DEVICE ("cpu" or "gpu N"), rank r on
# the r-th; GPUs never shared.
expect_ranks() {
  local what=$1 machine=$2 cdev=$3 f got r=0 lr used=" " files=()
  shift 3
  mapfile -t files < <(rank_files)
  ((${#files[@]} == $#)) || fail "$what: $# rank(s) expected, ${#files[@]} started"
  for f in "${files[@]}"; do
    [[ $(field "$f" rank) == "$r" ]] || fail "$what: rank $r missing (found $(basename "$f"))"
    lr=$(local_rank_of "$f")
    [[ $(field "$f" launcher_local_rank) == "$lr" ]] ||
      fail "$what: rank $r: the launcher says local rank $(field "$f" launcher_local_rank); its place on its host: $lr"
    got=$(device_of "$f" "$lr" "$machine" "$cdev")
    [[ $got == "$1" ]] || fail "$what: rank $r would use '$got', expected '$1' (CUDA_VISIBLE_DEVICES=$(cvd_of "$f"))"
    if [[ $got == gpu* ]]; then
      [[ $used != *" ${got#gpu } "* ]] || fail "$what: rank $r would share GPU ${got#gpu } with another rank"
      used+="${got#gpu } "
    fi
    shift
    r=$((r + 1))
  done
}

# The configuration the launchers get (the probe never reads it): runtime.device is "auto" (the default).
cfg=$tmp/tiny.toml
printf '[train]\nbatch_size = 16\n[runtime]\nthreads = 1\n' >"$cfg"

# --- local: launch/train-local.sh -----------------------------------------------------------------------------
test_local() {
  local mpirun=${SHARDGAN_MPIRUN:-mpirun} cores cpu_cfg=$tmp/cpu.toml
  command -v "$mpirun" >/dev/null || fail "mpirun not found: $mpirun"
  cores=$(nproc)
  # runtime.device = cpu in the config (a comment after the table header, as TOML allows)
  printf '[train]\nbatch_size = 16\n\n[runtime]  # where the ranks run\nthreads = 1\ndevice = "cpu"  # no GPUs\n' \
    >"$cpu_cfg"
  local rc
  # launch NAME FAKE_GPUS [VAR=VALUE...] -- ARGS...: train-local.sh ARGS with that many fake GPUs on the machine
  launch() {
    local name=$1 gpus=$2 envs=()
    shift 2
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    fresh_probe
    last_log=$tmp/local-$name.log
    rc=0
    env PATH="$tmp/bin:$PATH" FAKE_GPUS="$gpus" "${envs[@]}" timeout 60 "$local_sh" "$@" >"$last_log" 2>&1 || rc=$?
    ((rc != 124)) || fail "$name: train-local.sh did not finish within 60 s"
  }
  says() { grep -qF -- "$1" "$last_log" || fail "$2: no '$1' in its output"; }
  refused() {  # WHAT TEXT: exit 2, one line with TEXT, no rank started
    ((rc == 2)) || fail "$1: exit code $rc, expected 2 (refused)"
    says "$2" "$1"
    [[ -z $(rank_files) ]] || fail "$1: ranks were started although it was refused"
    grep -q '^+ ' "$last_log" && fail "$1: the mpirun command ran although it was refused"
    return 0
  }
  ran() { ((rc == 0)) || fail "$1: exit code $rc"; }

  # auto = one rank per GPU, each on its own; the arguments, NCCL_*/SHARDGAN_* and OMP_NUM_THREADS reach every rank.
  launch auto-2 2 NCCL_DEBUG=INFO NCCL_SOCKET_IFNAME=lo SHARDGAN_EXTRA="a b" -- \
    auto "$cfg" --run-dir "$tmp/run dir" --set train.max_steps=3
  ran "auto, 2 GPUs"
  says "2 rank(s), one per GPU (2 GPU(s) visible)" "auto, 2 GPUs"
  expect_ranks "auto, 2 GPUs" 2 auto "gpu 0" "gpu 1"
  local f want omp=$((cores / 2 > 0 ? cores / 2 : 1))
  for f in $(rank_files); do
    want=$(printf 'arg=%s\n' --config "$cfg" --run-dir "$tmp/run dir" --set train.max_steps=3)
    [[ $(grep '^arg=' "$f") == "$want" ]] ||
      fail "auto, 2 GPUs: $(basename "$f") got the arguments: $(grep '^arg=' "$f")"
    for want in env=NCCL_DEBUG=INFO env=NCCL_SOCKET_IFNAME=lo "env=SHARDGAN_EXTRA=a b" "omp=$omp"; do
      grep -qxF -- "$want" "$f" || fail "auto, 2 GPUs: $(basename "$f") lacks $want"
    done
  done
  for want in "-x NCCL_DEBUG" "-x NCCL_SOCKET_IFNAME" "-x SHARDGAN_EXTRA"; do
    grep '^+ ' "$last_log" | grep -qF -- "$want" || fail "auto, 2 GPUs: mpirun was not given $want"
  done
  # runtime.device came from one dry run of the trainer, as one process (not under mpirun), with the user's
  # arguments and data.verify=false, data.cache=stream after them (nothing hashed, nothing loaded).
  want=$(printf 'arg=%s\n' --config "$cfg" --run-dir "$tmp/run dir" --set train.max_steps=3 --set data.verify=false \
    --set data.cache=stream --dry-run --json)
  [[ -f $probe_dir/dry-run ]] || fail "auto, 2 GPUs: train-local.sh ran no dry run of the trainer"
  [[ $(<"$probe_dir/dry-run") == "$want" ]] ||
    fail "auto, 2 GPUs: the dry run (once, without mpirun) was not as expected: $(tr '\n' ' ' <"$probe_dir/dry-run")"
  ok "train-local.sh auto, 2 GPUs: 2 ranks on GPUs 0 and 1; arguments, NCCL_*, SHARDGAN_*, OMP_NUM_THREADS passed;" \
    "one dry run first (no mpirun, --set data.verify=false --dry-run --json)"

  launch auto-4 4 -- auto "$cfg"
  ran "auto, 4 GPUs"
  says "4 rank(s), one per GPU (4 GPU(s) visible)" "auto, 4 GPUs"
  expect_ranks "auto, 4 GPUs" 4 auto "gpu 0" "gpu 1" "gpu 2" "gpu 3"
  launch two-of-4 4 -- 2 "$cfg"
  ran "2 of 4 GPUs"
  expect_ranks "NPROC 2, 4 GPUs" 4 auto "gpu 0" "gpu 1"
  ok "train-local.sh auto, 4 GPUs: 4 ranks on GPUs 0-3; NPROC 2: the first 2 GPUs"

  launch too-many-2 2 -- 3 "$cfg"
  refused "NPROC 3, 2 GPUs" "train-local.sh: 3 ranks but 2 GPU(s): one rank per GPU"
  launch too-many-4 4 -- 5 "$cfg"
  refused "NPROC 5, 4 GPUs" "train-local.sh: 5 ranks but 4 GPU(s): one rank per GPU"
  ok "train-local.sh NPROC > GPUs: refused with exit 2 and '$(grep -m1 'ranks but' "$last_log")'"

  launch cvd-1-3 4 CUDA_VISIBLE_DEVICES=1,3 -- auto "$cfg"
  ran "CUDA_VISIBLE_DEVICES=1,3"
  says "2 rank(s), one per GPU (2 GPU(s) visible)" "CUDA_VISIBLE_DEVICES=1,3"
  expect_ranks "CUDA_VISIBLE_DEVICES=1,3" 4 auto "gpu 1" "gpu 3"
  launch cvd-1-3-np3 4 CUDA_VISIBLE_DEVICES=1,3 -- 3 "$cfg"
  refused "CUDA_VISIBLE_DEVICES=1,3, NPROC 3" "3 ranks but 2 GPU(s)"
  launch cvd-uuid 4 CUDA_VISIBLE_DEVICES="$(uuid 3),$(uuid 1)" -- auto "$cfg"
  ran "CUDA_VISIBLE_DEVICES=UUIDs of GPUs 3 and 1"
  expect_ranks "CUDA_VISIBLE_DEVICES=UUIDs of GPUs 3 and 1" 4 auto "gpu 3" "gpu 1"
  launch cvd-stop 4 CUDA_VISIBLE_DEVICES=2,-1,0 -- auto "$cfg"
  ran "CUDA_VISIBLE_DEVICES=2,-1,0"
  says "1 rank(s), one per GPU (1 GPU(s) visible)" "CUDA_VISIBLE_DEVICES=2,-1,0"
  expect_ranks "CUDA_VISIBLE_DEVICES=2,-1,0" 4 auto "gpu 2"
  ok "train-local.sh CUDA_VISIBLE_DEVICES: '1,3' -> GPUs 1 and 3 (NPROC 3 refused); UUIDs 3,1 -> GPUs 3 and 1;" \
    "'2,-1,0' -> GPU 2"

  local v
  for v in -1 ""; do
    launch "cvd-none$v" 4 CUDA_VISIBLE_DEVICES="$v" -- 2 "$cfg"
    ran "CUDA_VISIBLE_DEVICES='$v', NPROC 2"
    says "2 CPU rank(s)" "CUDA_VISIBLE_DEVICES='$v'"
    expect_ranks "CUDA_VISIBLE_DEVICES='$v', NPROC 2" 4 auto cpu cpu
    launch "cvd-none-auto$v" 4 CUDA_VISIBLE_DEVICES="$v" -- auto "$cfg"
    ran "CUDA_VISIBLE_DEVICES='$v', auto"
    expect_ranks "CUDA_VISIBLE_DEVICES='$v', auto" 4 auto cpu
  done
  ok "train-local.sh CUDA_VISIBLE_DEVICES '-1' and '': 0 GPUs, CPU ranks (auto: 1)"

  launch gpus-2-of-4 4 SHARDGAN_GPUS=2 -- auto "$cfg"
  ran "SHARDGAN_GPUS=2, 4 GPUs"
  says "2 rank(s), one per GPU (2 GPU(s) visible)" "SHARDGAN_GPUS=2"
  expect_ranks "SHARDGAN_GPUS=2, 4 GPUs" 4 auto "gpu 0" "gpu 1"
  launch gpus-2-np3 4 SHARDGAN_GPUS=2 -- 3 "$cfg"
  refused "SHARDGAN_GPUS=2, NPROC 3" "3 ranks but 2 GPU(s)"
  launch gpus-over-cvd 4 SHARDGAN_GPUS=1 CUDA_VISIBLE_DEVICES=1,3 -- auto "$cfg"
  ran "SHARDGAN_GPUS=1 over CUDA_VISIBLE_DEVICES=1,3"
  expect_ranks "SHARDGAN_GPUS=1 over CUDA_VISIBLE_DEVICES=1,3" 4 auto "gpu 1"
  launch gpus-0 2 SHARDGAN_GPUS=0 -- 3 "$cfg"
  ran "SHARDGAN_GPUS=0, 2 GPUs, NPROC 3"
  says "3 CPU rank(s)" "SHARDGAN_GPUS=0"
  expect_ranks "SHARDGAN_GPUS=0 on a machine with 2 GPUs, NPROC 3" 2 auto cpu cpu cpu
  # GPUs but no nvidia-smi (a container without it): counted 0, so CPU ranks; SHARDGAN_GPUS=2 makes them GPU ranks.
  local no_smi=$tmp/no-smi
  mkdir -p "$no_smi"
  ln -sf "$(command -v "$mpirun")" "$no_smi/$(basename "$mpirun")"
  if ! PATH=$no_smi:/usr/bin:/bin command -v nvidia-smi >/dev/null; then
    launch no-smi 2 PATH="$no_smi:/usr/bin:/bin" -- 3 "$cfg"
    ran "2 GPUs without nvidia-smi, NPROC 3"
    says "3 CPU rank(s)" "no nvidia-smi"
    expect_ranks "2 GPUs without nvidia-smi, NPROC 3" 2 auto cpu cpu cpu
    launch no-smi-gpus 2 PATH="$no_smi:/usr/bin:/bin" SHARDGAN_GPUS=2 -- auto "$cfg"
    ran "2 GPUs without nvidia-smi, SHARDGAN_GPUS=2"
    expect_ranks "2 GPUs without nvidia-smi, SHARDGAN_GPUS=2" 2 auto "gpu 0" "gpu 1"
  fi
  ok "train-local.sh SHARDGAN_GPUS: 2 of 4 -> GPUs 0,1 (NPROC 3 refused); 1 over CUDA_VISIBLE_DEVICES=1,3 -> GPU 1;" \
    "0 -> CPU ranks on a GPU machine; no nvidia-smi -> CPU ranks"

  launch set-cpu 2 -- 3 "$cfg" --set runtime.device=cpu
  ran "--set runtime.device=cpu, 2 GPUs, NPROC 3"
  says "3 CPU rank(s)" "--set runtime.device=cpu"
  expect_ranks "--set runtime.device=cpu, 2 GPUs, NPROC 3" 2 auto cpu cpu cpu
  launch set-eq-cpu 2 -- auto "$cfg" --set=runtime.device=cpu
  ran "--set=runtime.device=cpu, auto"
  expect_ranks "--set=runtime.device=cpu, 2 GPUs, auto" 2 auto cpu
  launch cfg-cpu 4 -- 5 "$cpu_cfg"
  ran "device = \"cpu\" in the config, 4 GPUs, NPROC 5"
  says "5 CPU rank(s)" "device = cpu in the config"
  expect_ranks "device = \"cpu\" in the config, 4 GPUs, NPROC 5" 4 cpu cpu cpu cpu cpu cpu
  launch cfg-cpu-set-auto 2 -- auto "$cpu_cfg" --set runtime.device=auto
  ran "config cpu, --set runtime.device=auto"
  expect_ranks "config cpu, --set runtime.device=auto, 2 GPUs" 2 cpu "gpu 0" "gpu 1"
  launch cuda-none 2 CUDA_VISIBLE_DEVICES=-1 -- 1 "$cfg" --set runtime.device=cuda
  refused "--set runtime.device=cuda, CUDA_VISIBLE_DEVICES=-1" "runtime.device = cuda but no GPU found"
  # The trainer's dry run refuses the value: its line and exit code, nothing started.
  launch dry-run-error 2 -- 2 "$cfg" --set runtime.device=gpu
  ((rc == 1)) || fail "--set runtime.device=gpu: exit code $rc, expected the dry run's 1"
  says "shardgan-train: error: runtime.device: 'gpu' is not one of" "--set runtime.device=gpu"
  [[ -z $(rank_files) ]] || fail "--set runtime.device=gpu: ranks were started although the dry run failed"
  grep -q '^+ ' "$last_log" && fail "--set runtime.device=gpu: the mpirun command ran although the dry run failed"
  ok "train-local.sh runtime.device=cpu (--set, --set=, config): CPU ranks with GPUs present, NPROC > GPUs allowed;" \
    "--set runtime.device=auto over the config's cpu -> GPU ranks; cuda without a GPU refused; the dry run's error" \
    "passed on (exit 1, nothing started)"
}

# --- slurm: cluster/slurm/train.sbatch on a local cluster with 2 fake GPUs as GRES -------------------------------
test_slurm() {
  # Killed outright (SIGKILL, a CTest timeout), this script runs no trap: the detached reaper then stops the
  # cluster, kills this test's leftover clients (marked by SHARDGAN_SLURM_TEST) and removes the folder.
  export SHARDGAN_SLURM_TEST=$tmp
  local keep_arg=() up_rc=0 mpi job log f what
  [[ ${SHARDGAN_TEST_KEEP:-0} == 1 ]] && keep_arg=(--keep)
  (env -u SHARDGAN_SLURM_TEST setsid "$reaper" $$ "$tmp" "$cluster" "$down" "${keep_arg[@]}" \
    </dev/null >/dev/null 2>&1 &)
  LOCAL_SLURM_GPUS=2 "$up" "$cluster" >"$tmp/up.env" 2>"$tmp/up.err" || up_rc=$?
  if ((up_rc == 3)); then
    cat "$tmp/up.err"
    echo "SKIP: a local Slurm cluster with fake GPUs cannot start on this machine (reason above)"
    exit 77
  fi
  ((up_rc == 0)) || { cat "$tmp/up.err"; fail "cluster/local-slurm/up.sh exited with $up_rc"; }
  # shellcheck disable=SC1091
  source "$tmp/up.env"
  [[ $(sinfo -h -N -o %G) == gpu:2* ]] || fail "the node does not offer gpu:2 (sinfo: $(sinfo -h -N -o '%N %G %T'))"
  # The probe needs no MPI; PMIx (the template's default) when Slurm has it.
  mpi=none
  srun --mpi=list 2>&1 | grep -q pmix && mpi=pmix
  ok "local Slurm cluster up ($(slurmd -V 2>/dev/null)): $(sinfo -h -o '%D node(s), %c CPUs, gres %G, %T')," \
    "srun --mpi=$mpi"
  cd "$tmp"

  # sbatch_probe NAME SBATCH_OPTIONS...: train.sbatch with the probe as the trainer, to the end (sbatch --wait).
  sbatch_probe() {
    local name=$1 rc=0
    shift
    fresh_probe
    RUN_DIR=$tmp/run-$name SHARDGAN_MPI=$mpi NCCL_DEBUG=INFO NCCL_IB_DISABLE=1 timeout 120 \
      sbatch --wait --job-name="sg-$name" --time=5 "$@" "$sbatch_file" tiny.toml --set train.max_steps=3 \
      >"$tmp/$name.sbatch" 2>&1 || rc=$?
    job=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' "$tmp/$name.sbatch" | head -1)
    log=$tmp/sg-$name-$job.out last_log=$tmp/sg-$name-$job.out
    ((rc == 0)) || fail "$name: sbatch --wait exited with $rc: $(tail -3 "$tmp/$name.sbatch")"
    grep -q "training step ended with exit code 0" "$log" || fail "$name: the probe step did not end with 0"
    grep -q "NCCL environment: NCCL_DEBUG=INFO NCCL_IB_DISABLE=1" "$log" || fail "$name: NCCL_* not listed in the log"
    for f in $(rank_files); do
      want=$(printf 'arg=%s\n' --config "$(realpath "$cfg")" --run-dir "$(realpath "$tmp/run-$name")" --resume auto \
        --set runtime.threads=1 --set train.max_steps=3)
      [[ $(grep '^arg=' "$f") == "$want" ]] || fail "$name: $(basename "$f") got the arguments: $(grep '^arg=' "$f")"
      for want in env=NCCL_DEBUG=INFO env=NCCL_IB_DISABLE=1 omp=1; do
        grep -qxF -- "$want" "$f" || fail "$name: $(basename "$f") lacks $want"
      done
    done
  }
  local want
  sbatch_probe per-node --gpus-per-node=2 --ntasks-per-node=2 --cpus-per-task=1
  grep -q "GPUs on node 2, CUDA_VISIBLE_DEVICES=0,1" "$log" ||
    fail "per-node: the batch script did not see 2 GPUs: $(grep -m1 'GPUs on node' "$log")"
  expect_ranks "--gpus-per-node=2 --ntasks-per-node=2" 2 auto "gpu 0" "gpu 1"
  for f in $(rank_files); do
    [[ $(cvd_of "$f") == 0,1 ]] ||
      fail "per-node: $(basename "$f") sees CUDA_VISIBLE_DEVICES=$(cvd_of "$f"), not 0,1"
  done
  ok "train.sbatch --gpus-per-node=2 --ntasks-per-node=2 (job $job): both tasks see CUDA_VISIBLE_DEVICES=0,1," \
    "local ranks 0 and 1 -> GPUs 0 and 1; arguments and NCCL_* reach both"

  sbatch_probe per-task --gpus-per-task=1 --ntasks-per-node=2 --cpus-per-task=1
  expect_ranks "--gpus-per-task=1 --ntasks-per-node=2" 2 auto "gpu 0" "gpu 1"
  what=""
  for f in $(rank_files); do
    [[ $(cvd_of "$f") =~ ^[0-9]+$ ]] ||
      fail "per-task: $(basename "$f") sees CUDA_VISIBLE_DEVICES=$(cvd_of "$f"), not one GPU"
    what+="${what:+, }rank $(field "$f" rank) CUDA_VISIBLE_DEVICES=$(cvd_of "$f")"
  done
  ok "train.sbatch --gpus-per-task=1 --ntasks-per-node=2 (job $job): each task sees only its own GPU ($what;" \
    "local rank mod 1 = 0): GPUs 0 and 1"
}

case $part in
  local) test_local ;;
  slurm) test_slurm ;;
  all) test_local; test_slurm ;;
esac
echo "PASS: GPU binding ($part) in $((SECONDS - t0))s"
