#!/usr/bin/env bash
# Two builds of shardgan-train side by side (a change's before and after): the seeds' setup of bench/common.sh,
# 1 rank fp32, 1 rank bf16 and 2 ranks fp32, alternating A and B ROUNDS times; img/s of steps 41-60 and B/A.
#   bench/ab_bench.sh BUILD_A BUILD_B [ROUNDS] [WORK_DIR]    (BUILD_B also provides the fixtures and the packer)
#   e.g. git worktree add /tmp/before OLD_COMMIT; build it; bench/ab_bench.sh /tmp/before/build build 3
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
a=${1:?usage: ab_bench.sh BUILD_A BUILD_B [ROUNDS] [WORK_DIR]} b=${2:?usage: ab_bench.sh BUILD_A BUILD_B}
rounds=${3:-3}
work=${4:-$(mktemp -d /tmp/shardgan-ab-XXXXXX)}
source "$here/bench/common.sh"
mpi_launcher
seed_setup "$b" "$work"
run() {  # BUILD RANKS PRECISION -> img/s
  rm -rf "$work/run"
  "${mpi[@]}" -np "$2" "$1/src/shardgan-train" --config "$work/seed.toml" --run-dir "$work/run" \
    --set runtime.precision="$3" >/dev/null 2>&1
  last_img_per_s "$work/run"
}
for ((r = 1; r <= rounds; r++)); do
  for setting in "1 fp32" "1 bf16" "2 fp32"; do
    read -r ranks precision <<<"$setting"
    x=$(run "$a" "$ranks" "$precision")
    y=$(run "$b" "$ranks" "$precision")
    printf 'round %d, %s rank(s) %s: A %.1f img/s, B %.1f img/s, B/A %.3f\n' "$r" "$ranks" "$precision" "$x" "$y" \
      "$(awk -v x="$x" -v y="$y" 'BEGIN { print y / x }')"
  done
done
