#!/usr/bin/env bash
# Training throughput (issue: shardgan-train): one process, CPU, 1 thread, batch 64, the seeds' model (unconditional
# DCGAN, 32x32x3, dropout 0.3), same BLAS, against the PyTorch peer (../shared/peers/dcgan_ddp.py 1) in one run,
# alternating the two tools ROUNDS times. Then bf16: shardgan-train runtime.precision=bf16 against the peer's step
# under torch.autocast("cpu", bfloat16) (bench/peer_bf16.py).
# Then TensorBoard's cost: every step logged (train.log_every=1, the worst case: a metrics.jsonl row and an event per
# step), output.tensorboard on and off alternated, the mean training img/s of the 60 steps (elapsed_s of the last row).
#   bench/train_bench.sh [BUILD_DIR] [WORK_DIR] [ROUNDS] [PARTS]    PARTS: default "fp32 bf16 tensorboard"
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-$(mktemp -d /tmp/shardgan-train-bench-XXXXXX)}
rounds=${3:-3}
parts=" ${4:-fp32 bf16 tensorboard} "
peers=$here/../shared/peers
"$here/launch/bootstrap.sh" --bench
[[ -f $peers/dcgan_ddp.py ]] || { echo "the PyTorch peer ($peers/dcgan_ddp.py) is needed"; exit 1; }
source "$here/bench/common.sh"
seed_setup "$build" "$work"
ours() {  # precision [--set ...] → img/s of the last logged interval
  rm -rf "$work/run"
  "$build/src/shardgan-train" --config "$work/seed.toml" --set runtime.precision="$1" --run-dir "$work/run" \
    "${@:2}" 2>/dev/null
  last_img_per_s "$work/run"
}
mean_img_per_s() {  # img/s over all steps: steps x batch / elapsed_s of the last row
  tail -1 "$work/run/metrics.jsonl" |
    /usr/bin/python3 -c 'import json, sys; r = json.load(sys.stdin); print("%.1f" % (r["step"] * 64 / r["elapsed_s"]))'
}
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), libblas -> $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
for ((i = 1; i <= rounds; i++)); do
  [[ $parts == *" fp32 "* ]] || break
  peer=$(cd "$work" && /usr/bin/python3 "$peers/dcgan_ddp.py" 1 40 64 | sed 's/.*img\/s total=//')
  mine=$(ours fp32)
  echo "round $i fp32: peer $peer img/s, shardgan-train $mine img/s, ratio $(awk -v a="$mine" -v b="$peer" 'BEGIN{printf "%.2f", a/b}')"
done
for ((i = 1; i <= rounds; i++)); do
  [[ $parts == *" bf16 "* ]] || break
  peer=$(/usr/bin/python3 "$here/bench/peer_bf16.py" "$peers" 40 64 | sed 's/.*img\/s total=//')
  mine=$(ours bf16)
  echo "round $i bf16: peer (autocast) $peer img/s, shardgan-train $mine img/s, ratio $(awk -v a="$mine" -v b="$peer" 'BEGIN{printf "%.2f", a/b}')"
done
for ((i = 1; i <= rounds; i++)); do
  [[ $parts == *" tensorboard "* ]] || break
  ours fp32 --set train.log_every=1 --set output.tensorboard=false >/dev/null
  off=$(mean_img_per_s)
  ours fp32 --set train.log_every=1 --set output.tensorboard=true >/dev/null
  on=$(mean_img_per_s)
  events=$(stat -c %s "$work"/run/events.out.tfevents.*)
  echo "round $i tensorboard (log_every=1): off $off img/s, on $on img/s, ratio $(awk -v a="$on" -v b="$off" 'BEGIN{printf "%.3f", a/b}'), event file $events bytes for 60 steps"
done
