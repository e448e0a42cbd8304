#!/usr/bin/env bash
# Overlap where it matters: 2 simulated nodes × 1 rank (cluster/sim-nodes, TCP between them) with each node's link
# shaped by tc (SIM_NODES_RATE: tbf), the seeds' model at batch 64 per rank, 1 thread per rank. For each link rate:
#   - the serial all-reduce of the model's gradient bytes on that link (grad_sync_bench: raw MPI_Allreduce), and
#   - the trainer's step time with comm.overlap on/off and 1 / 25 MiB buckets (img/s of the last logged interval),
# against the compute-only step: the same training on one rank alone (no communication at all).
#   bench/network_bench.sh [BUILD_DIR] [WORK_DIR] [RATES (default "none 1gbit 10gbit"; none = unshaped)] [STEPS (60)]
# Needs root (network namespaces) and the kernel's sch_tbf. Prints a table; logs in WORK_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-$(mktemp -d /tmp/shardgan-network-bench-XXXXXX)}
rates=${3:-none 1gbit 10gbit}
steps=${4:-60}
"$here/launch/bootstrap.sh"
source "$here/bench/common.sh"
if [[ ${SHARDGAN_NO_BUILD:-0} != 1 ]]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDGAN_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" --target grad_sync_bench shardgan-train shardgan-pack shardgan-fixtures >/dev/null
fi
seed_setup "$build" "$work"
sed -i "s/^max_steps = .*/max_steps = $steps/; s/^log_every = .*/log_every = $((steps / 2))/" "$work/seed.toml"
sim=$here/cluster/sim-nodes
state=$work/sim
trap '"$sim/down.sh" "$state" >/dev/null 2>&1 || true' EXIT
mpi_launcher

step_ms() {  # RUN_DIR WORLD → ms per step (global batch 64·WORLD over the last logged interval's img/s)
  awk -v r="$(last_img_per_s "$1")" -v w="$2" 'BEGIN { printf "%.1f", 64 * w / r * 1000 }'
}
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $steps steps per run, the last $((steps / 2)) timed"
rm -rf "$work/run-alone"
"${mpi[@]}" -np 1 "$build/src/shardgan-train" --config "$work/seed.toml" --run-dir "$work/run-alone" \
  >"$work/alone.log" 2>&1
compute=$(step_ms "$work/run-alone" 1)
echo "compute-only step (1 rank alone, no communication): $compute ms"
printf '%-8s %-10s %-8s %12s %14s %12s %22s\n' link buckets overlap "step ms" "over compute" "serial AR" "excess / serial AR"
for rate in $rates; do
  "$sim/down.sh" "$state" >/dev/null 2>&1 || true
  shaped=$rate
  [[ $rate == none ]] && shaped=  # unshaped veth: memory speed, the nodes' TCP stacks still in the way
  SIM_NODES_OWNER=$$ SIM_NODES_SLOTS=1 SIM_NODES_RATE=$shaped "$sim/up.sh" 2 "$state" >"$work/up-$rate.log"
  read -ra margs <"$state/mpirun-args"
  on_nodes() { "$sim/exec.sh" "$state" node1 "${mpi[@]}" "${margs[@]}" --hostfile "$state/hostfile" -np 2 "$@"; }
  on_nodes "$build/bench/grad_sync_bench" 5 >"$work/grad_sync-$rate.log" 2>&1
  serial=$(sed -n 's/.*bucket 25 MiB.*raw MPI_Allreduce \([0-9.]*\) ms.*/\1/p' "$work/grad_sync-$rate.log")
  for bucket in 1 25; do
    for overlap in true false; do
      run=$work/run-$rate-$bucket-$overlap
      rm -rf "$run"
      on_nodes "$build/src/shardgan-train" --config "$work/seed.toml" --run-dir "$run" \
        --set comm.bucket_mb="$bucket" --set comm.overlap="$overlap" >"$run.log" 2>&1
      ms=$(step_ms "$run" 2)
      printf '%-8s %-10s %-8s %12s %14s %12s %22s\n' "$rate" "$bucket MiB" "$overlap" "$ms" \
        "$(awk -v a="$ms" -v c="$compute" 'BEGIN { printf "%+.1f ms", a - c }')" "$serial ms" \
        "$(awk -v a="$ms" -v c="$compute" -v s="$serial" 'BEGIN { printf "%.2f", (a - c) / s }')"
    done
  done
  "$sim/down.sh" "$state" >/dev/null
done
