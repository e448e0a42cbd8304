#!/usr/bin/env bash
# Data sets larger than memory (data.cache = stream). Makes two synthetic packed sets — 200,000 images at 32 px
# (600 MB) and 40,000 at 128 px (1.9 GB) — then measures:
#  1. the loader alone (bench/loader_bench.cpp: Loader + sampler of one rank, nothing else), streaming with 1 and 4
#     loader threads vs the memory cache, from the page cache, and from disk after dropping the page cache (where the
#     kernel allows it) with 1, 4 and 8 threads;
#  2. training of the seeds' model (batch 64, 1 thread) on the 32 px set with the memory cache vs streaming, on 1 and
#     2 ranks, alternating ROUNDS times, with each rank's peak RSS.
#   bench/loader_bench.sh [BUILD_DIR] [WORK_DIR] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-$(mktemp -d /tmp/shardgan-loader-bench-XXXXXX)}
rounds=${3:-2}
"$here/launch/bootstrap.sh" --bench  # /usr/bin/time (package time) for the peak RSS
source "$here/bench/common.sh"
if [[ ${SHARDGAN_NO_BUILD:-0} != 1 ]]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDGAN_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" --target loader_bench shardgan-train >/dev/null
fi
lb=$build/bench/loader_bench
mkdir -p "$work"
[[ -f $work/s32/manifest.json ]] || "$lb" make "$work/s32" --images 200000 --size 32 --shard-size 10000
[[ -f $work/s128/manifest.json ]] || "$lb" make "$work/s128" --images 40000 --size 128 --shard-size 5000
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); sets: $(du -sh "$work/s32" | cut -f1) (32 px)," \
  "$(du -sh "$work/s128" | cut -f1) (128 px)"

echo "== loader alone, page cache warm (each read once first)"
cat "$work"/s32/*.h5 "$work"/s128/*.h5 >/dev/null
for set in s32 s128; do
  for threads in 1 4; do
    "$lb" read "$work/$set" --cache stream --steps 600 --threads "$threads"
    "$lb" read "$work/$set" --cache stream --steps 600 --threads "$threads" --world 4 --rank 3 --batch 16
  done
  [[ $set == s32 ]] && "$lb" read "$work/$set" --cache memory --steps 600
done
echo "== loader alone, from disk (page cache dropped before each run)"
for set in s32 s128; do
  for threads in 1 4 8; do
    if sync && echo 1 >/proc/sys/vm/drop_caches 2>/dev/null; then
      "$lb" read "$work/$set" --cache stream --steps 300 --threads "$threads" --depth 8
    else
      echo "cannot drop the page cache here (needs root outside a read-only /proc/sys): skipped"
    fi
  done
done
cat "$work"/s32/*.h5 >/dev/null

echo "== training the seeds' model on the 32 px set: memory vs stream"
seed_toml "$work/s32" "$work/train.toml"
mpi_launcher
train() {  # ranks cache → "img/s peakRSS_MiB"
  rm -rf "$work/run"
  local rss=$work/rss
  rm -f "$rss".*
  "${mpi[@]}" -np "$1" sh -c 'exec /usr/bin/time -o "$0.$OMPI_COMM_WORLD_RANK" -f %M "$@"' "$rss" \
    "$build/src/shardgan-train" --config "$work/train.toml" --set data.cache="$2" --set data.verify=false \
    --set train.max_steps=80 --set train.log_every=40 --run-dir "$work/run" 2>/dev/null >/dev/null
  echo "$(last_img_per_s "$work/run") $(cat "$rss".* | sort -n | tail -1 | awk '{printf "%.0f", $1 / 1024}')"
}
for ranks in 1 2; do
  for ((i = 1; i <= rounds; i++)); do
    read -r mem mem_rss < <(train "$ranks" memory)
    read -r str str_rss < <(train "$ranks" stream)
    echo "ranks $ranks round $i: memory $mem img/s (peak RSS $mem_rss MiB), stream $str img/s (peak RSS $str_rss" \
      "MiB), stream/memory $(awk -v a="$str" -v b="$mem" 'BEGIN{printf "%.3f", a/b}')"
  done
done
