#!/usr/bin/env bash
# The gradient all-reduce where it matters: 2 simulated nodes × 1 rank (cluster/sim-nodes, TCP between them) with each
# node's link shaped by tc (SIM_NODES_RATE: tbf), the seeds' model at batch 64 per rank, 1 thread per rank. For each
# link rate:
#   - the serial all-reduce of the model's float32 gradient bytes on that link (grad_sync_bench: raw MPI_Allreduce),
#   - the trainer's step time and all-reduce bytes per step for each comm.compression mode (and bucket size and
#     overlap), the modes alternated round by round so that drift of the shared machine falls on all of them alike,
# against the compute-only step: the same training on one rank alone (no communication at all).
#   bench/network_bench.sh [BUILD_DIR] [WORK_DIR] [RATES (default "1gbit 10gbit"; none = unshaped)] [STEPS (60)]
# Environment: MODES (default "none bf16 fp16 powersgd"), BUCKETS (MiB, default "1"), OVERLAPS (default "true"),
# ROUNDS (default 2), POWERSGD_RANK (default 4). PowerSGD compresses from step STEPS/4, before the timed half.
# The sweep of issue 14 (buckets × overlap, uncompressed): MODES=none BUCKETS="1 25" OVERLAPS="true false" ROUNDS=1.
# Needs root (network namespaces) and the kernel's sch_tbf. Prints a table; logs in WORK_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-$(mktemp -d /tmp/shardgan-network-bench-XXXXXX)}
rates=${3:-1gbit 10gbit}
steps=${4:-60}
modes=${MODES:-none bf16 fp16 powersgd}
buckets=${BUCKETS:-1}
overlaps=${OVERLAPS:-true}
rounds=${ROUNDS:-2}
powersgd_rank=${POWERSGD_RANK:-4}
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
bytes_per_step() {  # RUN_DIR → the last row's all-reduce bytes per step and rank, in KiB
  tail -1 "$1/metrics.jsonl" | sed -n 's/.*"allreduce_bytes":\([0-9.e+]*\).*/\1/p' | awk '{ printf "%.0f", $1 / 1024 }'
}
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $steps steps per run, the last $((steps / 2)) timed"
rm -rf "$work/run-alone"
"${mpi[@]}" -np 1 "$build/src/shardgan-train" --config "$work/seed.toml" --run-dir "$work/run-alone" \
  >"$work/alone.log" 2>&1
compute=$(step_ms "$work/run-alone" 1)
echo "compute-only step (1 rank alone, no communication): $compute ms"
printf '%-8s %-9s %-8s %-8s %-24s %10s %14s %12s %10s %10s\n' link mode buckets overlap "step ms (each round)" \
  "mean ms" "over compute" "serial AR" "excess/AR" "KiB/step"
for rate in $rates; do
  "$sim/down.sh" "$state" >/dev/null 2>&1 || true
  shaped=$rate
  [[ $rate == none ]] && shaped=  # unshaped veth: memory speed, the nodes' TCP stacks still in the way
  SIM_NODES_OWNER=$$ SIM_NODES_SLOTS=1 SIM_NODES_RATE=$shaped "$sim/up.sh" 2 "$state" >"$work/up-$rate.log"
  read -ra margs <"$state/mpirun-args"
  on_nodes() { "$sim/exec.sh" "$state" node1 "${mpi[@]}" "${margs[@]}" --hostfile "$state/hostfile" -np 2 "$@"; }
  on_nodes "$build/bench/grad_sync_bench" 5 >"$work/grad_sync-$rate.log" 2>&1
  serial=$(sed -n 's/.*bucket 25 MiB.*raw MPI_Allreduce \([0-9.]*\) ms.*/\1/p' "$work/grad_sync-$rate.log")
  declare -A times=()
  for round in $(seq "$rounds"); do
    for mode in $modes; do
      for bucket in $buckets; do
        for overlap in $overlaps; do
          run=$work/run-$rate-$mode-$bucket-$overlap-$round
          rm -rf "$run"
          on_nodes "$build/src/shardgan-train" --config "$work/seed.toml" --run-dir "$run" \
            --set comm.bucket_mb="$bucket" --set comm.overlap="$overlap" --set comm.compression="$mode" \
            --set comm.powersgd_rank="$powersgd_rank" --set comm.powersgd_start_step=$((steps / 4)) >"$run.log" 2>&1
          times[$mode-$bucket-$overlap]+="$(step_ms "$run" 2) "
        done
      done
    done
  done
  for mode in $modes; do
    for bucket in $buckets; do
      for overlap in $overlaps; do
        each=${times[$mode-$bucket-$overlap]}
        ms=$(tr ' ' '\n' <<<"$each" | awk 'NF { s += $1; n++ } END { printf "%.1f", s / n }')
        printf '%-8s %-9s %-8s %-8s %-24s %10s %14s %12s %10s %10s\n' "$rate" "$mode" "$bucket MiB" "$overlap" \
          "$each" "$ms" "$(awk -v a="$ms" -v c="$compute" 'BEGIN { printf "%+.1f ms", a - c }')" "$serial ms" \
          "$(awk -v a="$ms" -v c="$compute" -v s="$serial" 'BEGIN { printf "%.2f", (a - c) / s }')" \
          "$(bytes_per_step "$work/run-$rate-$mode-$bucket-$overlap-1")"
      done
    done
  done
  unset times
  "$sim/down.sh" "$state" >/dev/null
done
