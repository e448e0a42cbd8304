#!/usr/bin/env bash
# Fuzzes every parser of a file that may come from a shared folder (fuzz/*_fuzz.cpp, libFuzzer with AddressSanitizer
# and UndefinedBehaviorSanitizer): builds them with clang into build-fuzz/, makes a seed corpus for each from the
# fixtures (tests/support: the real formats), then runs each harness for SECONDS.
#   bench/fuzz.sh [SECONDS] [HARNESS...]     default 600 s each (the issue's target: 0 crashes, 0 hangs over 10 s,
#                                            0 allocations over 1 GiB in 10 minutes per harness)
#   SHARDGAN_BUILD_DIR   a normal build with tests/shardgan-fixtures and src/shardgan-pack (default build/)
#   SHARDGAN_FUZZ_WORK   where corpora and findings go (default build-fuzz/work; kept between runs, so corpora grow)
#   SHARDGAN_FUZZ_REPLAY harnesses that only replay their corpus (every input once) instead of mutating it: CI sets
#                        "shard", because HDF5 1.10's own global-heap reader can loop forever on mutated files (a
#                        dependency bug fuzzing found; see docs/design.md), which would make a timed CI run a lottery
# tests/run.sh runs it with 20 s per harness. Prints one line per harness and "fuzz: N passed, M failed"; a finding
# (crash-*, timeout-*, oom-* file) is kept in WORK/findings/HARNESS/ with the harness's log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
shift || true
harnesses=("$@")
((${#harnesses[@]} > 0)) || harnesses=(zip csv cifar10 idx jpeg shard manifest checkpoint_state config)
build=${SHARDGAN_BUILD_DIR:-$root/build}
fuzz_build=$root/build-fuzz
work=${SHARDGAN_FUZZ_WORK:-$fuzz_build/work}
[[ -x $build/tests/shardgan-fixtures && -x $build/src/shardgan-pack ]] ||
  { echo "bench/fuzz.sh: $build lacks tests/shardgan-fixtures or src/shardgan-pack (build it first)" >&2; exit 2; }
"$root/launch/bootstrap.sh" --fuzz  # clang of this release with libFuzzer and the sanitizers (idempotent)
clang=$("$root/launch/bootstrap.sh" --fuzz-clang)
command -v "clang++-$clang" >/dev/null || { echo "bench/fuzz.sh: clang++-$clang not found" >&2; exit 2; }

CC=clang-$clang CXX=clang++-$clang cmake -S "$root" -B "$fuzz_build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSHARDGAN_FUZZ=ON >/dev/null
cmake --build "$fuzz_build" --parallel "$(nproc)" >/dev/null

# --- seed corpora, in the real formats ------------------------------------------------------------------------
seeds=$work/seeds
if [[ ! -f $seeds/.done ]]; then
  rm -rf "$seeds"
  mkdir -p "$seeds"/{zip,csv,cifar10,idx,jpeg,shard,manifest,checkpoint_state,config}
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$build/tests/shardgan-fixtures" ham10000 --out "$tmp/ham" --count 3 --width 64 --height 48 --zip >/dev/null
  "$build/tests/shardgan-fixtures" ham10000 --out "$tmp/ham-tab" --count 3 --width 40 --height 30 --tab >/dev/null
  cp "$tmp"/ham/*.zip "$seeds/zip/"
  cp "$tmp/ham/HAM10000_metadata.csv" "$seeds/csv/metadata.csv"
  cp "$tmp/ham-tab/HAM10000_metadata.tab" "$seeds/csv/metadata.tab"
  i=0
  for jpg in "$tmp"/ham-tab/HAM10000_images_part_1/*.jpg; do cp "$jpg" "$seeds/jpeg/$((i++)).jpg"; done
  "$build/tests/shardgan-fixtures" cifar10 --out "$tmp/cifar" --records 10 --tar >/dev/null
  { printf '\x01'; cat "$tmp/cifar/cifar-10-binary.tar.gz"; } >"$seeds/cifar10/archive"
  { printf '\x00'; cat "$tmp/cifar/cifar-10-batches-bin/data_batch_1.bin"; } >"$seeds/cifar10/batch"
  # IDX in the real layout: 3 images of 28x28 and their labels; the first two bytes give the images file's size.
  /usr/bin/python3 - "$seeds/idx/three" <<'PY'
import struct, sys
images = struct.pack(">IIII", 0x803, 3, 28, 28) + bytes((i * 7 + j) % 256 for i in range(3) for j in range(784))
labels = struct.pack(">II", 0x801, 3) + bytes([1, 5, 9])
open(sys.argv[1], "wb").write(struct.pack("<H", len(images)) + images + labels)
PY
  "$build/src/shardgan-pack" cifar10 --input "$tmp/cifar/cifar-10-batches-bin" --classes cat,dog --split all \
    --shard-size 4 --out "$tmp/packed" >/dev/null
  cp "$tmp/packed/shard-00000.h5" "$seeds/shard/"
  cp "$tmp/packed/manifest.json" "$seeds/manifest/"
  cat >"$seeds/checkpoint_state/state.json" <<'JSON'
{
  "step": 10,
  "epoch": 1,
  "samples_seen": 640,
  "global_batch": 64,
  "world_size": 2,
  "model_hash": "0123456789abcdef",
  "image_shape": [32, 32, 3],
  "class_names": ["cat", "dog"],
  "loss_scale": {"scale": 65536.0, "good_steps": 3},
  "files": {"config.toml": "x", "discriminator.pt": "x", "generator.pt": "x", "optim_d.pt": "x", "optim_g.pt": "x"}
}
JSON
  cp "$root"/configs/*.toml "$seeds/config/"
  touch "$seeds/.done"
fi

# --- run ------------------------------------------------------------------------------------------------------
passed=0 failed=0
for h in "${harnesses[@]}"; do
  bin=$fuzz_build/fuzz/fuzz_$h
  [[ -x $bin ]] || { echo "bench/fuzz.sh: no harness '$h'" >&2; exit 2; }
  corpus=$work/corpus/$h findings=$work/findings/$h
  rm -rf "$findings"  # this run's findings only (the corpus, which only grows with good inputs, is kept)
  mkdir -p "$corpus" "$findings"
  rc=0
  budget=(-max_total_time="$seconds")
  [[ " ${SHARDGAN_FUZZ_REPLAY:-} " == *" $h "* ]] && budget=(-runs=0)
  (cd "$findings" && ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=0 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$bin" "${budget[@]}" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=1024 -print_final_stats=1 \
    "$corpus" "$seeds/$h" >"$findings/log.txt" 2>&1) || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$findings/log.txt" | tail -n 1)
  found=$(find "$findings" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' \
    -o -maxdepth 1 -name 'leak-*' | wc -l)
  if ((rc == 0 && found == 0)); then
    passed=$((passed + 1))
    printf 'fuzz_%-17s ok      %8s inputs%s, corpus %s files\n' "$h" "${runs:-?}" \
      "$([[ ${budget[0]} == -runs=0 ]] && echo " (corpus replayed)" || echo " in $seconds s")" "$(ls "$corpus" | wc -l)"
  else
    failed=$((failed + 1))
    printf 'fuzz_%-17s FAILED  (exit %s, %s finding(s) in %s)\n' "$h" "$rc" "$found" "$findings"
    grep -m 3 -E 'ERROR|SUMMARY|terminate called|what\(\)' "$findings/log.txt" | cut -c1-200 || true
  fi
done
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
