#!/usr/bin/env bash
# Does the GAN learn? (issue: offline quality metrics.) A conditional DCGAN on the real Fashion-MNIST (32x32, train +
# test = 70,000 images, configs/fashion_mnist.toml) trains on 2 MPI ranks of this machine's CPU for a fixed budget
# (default 15 minutes of training, stopped by SIGUSR1 = checkpoint + exit 75, as Slurm's --signal would). FD-clf and
# class consistency of the EMA generator are measured before the first step and after every epoch (eval.n = 5000,
# sharded over the ranks), then the last checkpoint is scored again in one process: with the same 5000 images and
# noise as the untrained baseline (the like-for-like ratio the target is about), and with 10,000.
# Target: class consistency >= 80 % and FD-clf <= 1/10 of the untrained generator's.
#   bench/quality_bench.sh [BUILD_DIR] [WORK_DIR] [MINUTES] [--set section.key=value ...]
# (extra --set options go to shardgan-train: another configuration on the same budget)
# Writes WORK_DIR/run (metrics.jsonl, report.html, samples/), WORK_DIR/clf.json, WORK_DIR/final.json (n = 5000),
# WORK_DIR/final-10k.json and prints a per-epoch table.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-$(mktemp -d /tmp/shardgan-quality-XXXXXX)}
minutes=${3:-15}
shift $(($# < 3 ? $# : 3))
extra=("$@")
source "$here/bench/common.sh"
quality_tools "$here" "$build"
mkdir -p "$work"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); budget ${minutes} min on 2 ranks"

if ! "$build/src/shardgan-pack" verify "$work/fashion-mnist" >/dev/null 2>&1; then
  "$build/src/shardgan-pack" fashion-mnist --split all --out "$work/fashion-mnist" --force >/dev/null
fi
if [[ ! -f $work/clf.pt ]]; then
  echo "==> classifier (held out: the 10,000 test images)"
  /usr/bin/time -f "classifier: %e s wall" "$build/src/shardgan-eval" train-classifier --data "$work/fashion-mnist" \
    --out "$work/clf.pt" --epochs 4 >"$work/clf.json"
fi
echo "classifier held-out accuracy: $(sed -n 's/.*"holdout_accuracy": \([0-9.]*\).*/\1/p' "$work/clf.json")"

echo "==> training for $minutes min"
rm -rf "$work/run"
set +e
timeout -s USR1 -k 120 "$((minutes * 60))" "${mpi[@]}" -np 2 "$build/src/shardgan-train" \
  --config "$here/configs/fashion_mnist.toml" --run-dir "$work/run" \
  --set data.path="$work/fashion-mnist" --set train.epochs=1000 --set eval.classifier="$work/clf.pt" \
  --set eval.n=5000 --set train.log_every=100 "${extra[@]}" >"$work/train.log" 2>&1
rc=$?
set -e
[[ $rc -eq 75 || $rc -eq 124 ]] || { tail -20 "$work/train.log"; echo "training failed (exit $rc)"; exit 1; }
"$build/src/shardgan-eval" score --checkpoint "$work/run" --classifier "$work/clf.pt" \
  --data "$work/fashion-mnist" --n 5000 --out "$work/final.json" >/dev/null
"$build/src/shardgan-eval" score --checkpoint "$work/run" --classifier "$work/clf.pt" \
  --data "$work/fashion-mnist" --n 10000 --out "$work/final-10k.json" >/dev/null

/usr/bin/python3 - "$work/run/metrics.jsonl" "$work/final.json" "$work/final-10k.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ev = [r for r in rows if r.get("kind") == "eval"]
loss = [r for r in rows if "loss_d" in r]
final = json.load(open(sys.argv[2]))
final10k = json.load(open(sys.argv[3]))
base = ev[0]["fd_clf"]
print(f"{'step':>6} {'epoch':>6} {'minutes':>7} {'FD-clf':>8} {'ratio':>6} {'class cons.':>11} {'D(real)':>7} {'D(fake)':>7}")
def elapsed(step):
    before = [r["elapsed_s"] for r in loss if r["step"] <= step]
    return before[-1] / 60 if before else 0.0
for r in ev:
    print(f"{r['step']:>6} {r['epoch']:>6.2f} {elapsed(r['step']):>7.1f} {r['fd_clf']:>8.2f} {r['fd_clf'] / base:>6.3f} "
          f"{100 * r['class_consistency']:>10.1f}% {r['d_real']:>7.3f} {r['d_fake']:>7.3f}")
print(f"final checkpoint (step {final['step']}, n = {final['n']}, the baseline's images and noise): FD-clf "
      f"{final['fd_clf']:.2f} (ratio to untrained {final['fd_clf'] / base:.3f}), class consistency "
      f"{100 * final['class_consistency']:.1f}%")
print(f"same checkpoint, n = {final10k['n']}: FD-clf {final10k['fd_clf']:.2f}, class consistency "
      f"{100 * final10k['class_consistency']:.1f}%")
print("per class:", ", ".join(f"{k} {100 * v:.0f}%" for k, v in final["class_consistency_per_class"].items()))
speed = [r["img_per_s"] for r in loss[1:]]
print(f"throughput: mean {sum(speed) / max(1, len(speed)):.0f} img/s (2 ranks)")
ok = final["class_consistency"] >= 0.8 and final["fd_clf"] <= base / 10
print("target (class consistency >= 80 %, FD-clf <= 1/10 of untrained):", "MET" if ok else "MISSED")
ok = final["class_consistency"] >= 0.92 and final["fd_clf"] <= base / 20
print("issue 13's target (class consistency >= 92 %, FD-clf <= 0.05 of untrained):", "MET" if ok else "MISSED")
print(f"precision {final['precision']:.3f}, recall {final['recall']:.3f}, density {final['density']:.3f}, "
      f"coverage {final['coverage']:.3f} (n = {final['n']})")
PY
