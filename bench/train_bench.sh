#!/usr/bin/env bash
# Training throughput (issue: shardgan-train): one process, CPU, 1 thread, batch 64, the seeds' model (unconditional
# DCGAN, 32x32x3, dropout 0.3), same BLAS, against the PyTorch peer (../shared/peers/dcgan_ddp.py 1) in one run,
# alternating the two tools ROUNDS times. Then bf16: shardgan-train runtime.precision=bf16 against the peer's step
# under torch.autocast("cpu", bfloat16) (bench/peer_bf16.py).
#   bench/train_bench.sh [BUILD_DIR] [WORK_DIR] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-$(mktemp -d /tmp/shardgan-train-bench-XXXXXX)}
rounds=${3:-3}
peers=$here/../shared/peers
steps=60  # per measurement; img/s from the last 40 (the first 20 warm up)
"$here/launch/bootstrap.sh" --bench
mkdir -p "$work"
[[ -f $peers/dcgan_ddp.py ]] || { echo "the PyTorch peer ($peers/dcgan_ddp.py) is needed"; exit 1; }
if [[ ! -f $work/data/manifest.json ]]; then
  "$build/tests/shardgan-fixtures" cifar10 --out "$work/cifar" --records 2000
  "$build/preprocessing/shardgan-pack" cifar10 --input "$work/cifar/cifar-10-batches-bin" \
    --classes 0,1,2,3,4,5,6,7,8,9 --out "$work/data" --force
fi
cat > "$work/seed.toml" <<TOML
[data]
path = "$work/data"
[model]
conditional = false
dropout = 0.3
[train]
batch_size = 64
epochs = 1
max_steps = $steps
log_every = 20
[runtime]
threads = 1
[output]
checkpoint_every_steps = 100000
TOML
ours() {  # precision → img/s of the last logged interval
  rm -rf "$work/run"
  "$build/src/shardgan-train" --config "$work/seed.toml" --set runtime.precision="$1" --run-dir "$work/run" \
    2>/dev/null
  tail -1 "$work/run/metrics.jsonl" | sed 's/.*"img_per_s":\([0-9.]*\).*/\1/'
}
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), libblas -> $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
for ((i = 1; i <= rounds; i++)); do
  peer=$(cd "$work" && /usr/bin/python3 "$peers/dcgan_ddp.py" 1 40 64 | sed 's/.*img\/s total=//')
  mine=$(ours fp32)
  echo "round $i fp32: peer $peer img/s, shardgan-train $mine img/s, ratio $(awk -v a="$mine" -v b="$peer" 'BEGIN{printf "%.2f", a/b}')"
done
for ((i = 1; i <= rounds; i++)); do
  peer=$(/usr/bin/python3 "$here/bench/peer_bf16.py" "$peers" 40 64 | sed 's/.*img\/s total=//')
  mine=$(ours bf16)
  echo "round $i bf16: peer (autocast) $peer img/s, shardgan-train $mine img/s, ratio $(awk -v a="$mine" -v b="$peer" 'BEGIN{printf "%.2f", a/b}')"
done
