# Shared by the training benchmarks (sourced): a packed 10,000-image CIFAR-format set and the seeds' configuration.

# seed_toml DATA OUT: the seeds' unconditional DCGAN on the packed set DATA, batch 64, dropout 0.3, 1 thread, 60 steps
# logged every 20 (img/s of the last interval excludes the warm-up), written to OUT.
seed_toml() {
  cat >"$2" <<TOML
[data]
path = "$1"
[model]
conditional = false
dropout = 0.3
[train]
batch_size = 64
epochs = 10
max_steps = 60
log_every = 20
[runtime]
threads = 1
[output]
checkpoint_every_steps = 100000
TOML
}

# seed_setup BUILD WORK: WORK/data (a 10,000-image CIFAR-format set, packed once) and WORK/seed.toml (seed_toml).
seed_setup() {
  local build=$1 work=$2
  mkdir -p "$work"
  if [[ ! -f $work/data/manifest.json ]]; then
    "$build/tests/shardgan-fixtures" cifar10 --out "$work/cifar" --records 2000
    "$build/src/shardgan-pack" cifar10 --input "$work/cifar/cifar-10-batches-bin" \
      --classes 0,1,2,3,4,5,6,7,8,9 --out "$work/data" --force >/dev/null
  fi
  seed_toml "$work/data" "$work/seed.toml"
}

# mpi_launcher: the array `mpi`, mpirun as the benchmarks start it: the one mpirun policy (launch/mpi-flags.sh:
# --bind-to none, --allow-run-as-root as root), without --oversubscribe (a benchmark with more ranks than cores would
# measure ranks sharing cores: mpirun refuses it instead).
# shellcheck source=launch/mpi-flags.sh
source "$(dirname "${BASH_SOURCE[0]}")/../launch/mpi-flags.sh"
mpi_launcher() {
  shardgan_mpi_flags
  # shellcheck disable=SC2034  # used by the scripts that source this file
  mpi=(mpirun "${mpi_policy_flags[@]}")
}

# last_img_per_s RUN_DIR: img/s of the last metrics.jsonl row.
last_img_per_s() { tail -1 "$1/metrics.jsonl" | sed 's/.*"img_per_s":\([0-9.]*\).*/\1/'; }

# quality_tools HERE BUILD: the quality benchmarks' setup — the machine's packages, the three tools built (skipped
# with SHARDGAN_NO_BUILD=1: BUILD/src's binaries as they are, e.g. copies), and the MPI launcher in the array `mpi`.
quality_tools() {
  local here=$1 build=$2
  "$here/launch/bootstrap.sh"
  if [[ ${SHARDGAN_NO_BUILD:-0} != 1 ]]; then
    cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" --target shardgan-pack shardgan-train shardgan-eval >/dev/null
  fi
  mpi_launcher
}
