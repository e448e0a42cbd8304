#!/usr/bin/env bash
# Data-parallel throughput (issue: data-parallel training): `mpirun -np 2 shardgan-train` total img/s against the
# PyTorch DDP peer (../shared/peers/dcgan_ddp.py 2), weak-scaling efficiency (2 ranks / (2 x 1 rank)), gradient
# overlap on/off, and the GradSync microbenchmark (bench/grad_sync_bench.cpp). 1 thread per rank, batch 64 per
# rank, the seeds' model, fp32. Alternates the tools ROUNDS times.
#   bench/scaling_bench.sh [BUILD_DIR] [WORK_DIR] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-$(mktemp -d /tmp/shardgan-scaling-XXXXXX)}
rounds=${3:-3}
peers=$here/../shared/peers
"$here/launch/bootstrap.sh" --bench
cmake -S "$here" -B "$build" -DSHARDGAN_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target shardgan-train shardgan-pack shardgan-fixtures grad_sync_bench >/dev/null
source "$here/bench/common.sh"
mpi_launcher
seed_setup "$build" "$work"
ours() {  # RANKS [--set ...] → total img/s over steps 41-60
  local ranks=$1
  shift
  rm -rf "$work/run"
  "${mpi[@]}" -np "$ranks" "$build/src/shardgan-train" --config "$work/seed.toml" --run-dir "$work/run" "$@" 2>/dev/null
  last_img_per_s "$work/run"
}
peer() { (cd "$work" && /usr/bin/python3 "$peers/dcgan_ddp.py" "$1" 40 64 | sed 's/.*img\/s total=//'); }
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
for ((i = 1; i <= rounds; i++)); do
  p1=$(peer 1)
  p2=$(peer 2)
  o1=$(ours 1)
  o2=$(ours 2)
  o2_no=$(ours 2 --set comm.overlap=false)
  o2_small=$(ours 2 --set comm.bucket_mb=1)
  printf "round %d: peer 1 rank %.1f, 2 ranks %.1f (eff %.2f) | shardgan 1 rank %.1f, 2 ranks %.1f (eff %.2f), " \
    "$i" "$p1" "$p2" "$(awk -v a="$p2" -v b="$p1" 'BEGIN{print a/(2*b)}')" "$o1" "$o2" \
    "$(awk -v a="$o2" -v b="$o1" 'BEGIN{print a/(2*b)}')"
  printf "overlap off %.1f, 1 MiB buckets %.1f | 2-rank ratio shardgan/peer %.2f\n" "$o2_no" "$o2_small" \
    "$(awk -v a="$o2" -v b="$p2" 'BEGIN{print a/b}')"
done
echo "GradSync microbenchmark (2 ranks):"
"${mpi[@]}" -np 2 "$build/bench/grad_sync_bench" 30
