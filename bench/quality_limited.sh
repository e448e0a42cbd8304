#!/usr/bin/env bash
# Limited data (issue 13): does differentiable augmentation keep a GAN learning from ~6,000 images, about the size of
# the seeds' data sets? The real Fashion-MNIST train split cut to 6,000 images (shardgan-pack --max-images 6000,
# stratified: 600 per class) trains the conditional DCGAN of configs/fashion_mnist.toml on 2 MPI ranks for the same
# number of steps in every arm:
#   none      no augmentation
#   diffaug   augment.policy = "color,translation,cutout" (DiffAugment, every operation always)
#   ada       the same operations with ADA's adaptive probability (augment.ada_target = 0.6, ada_kimg = 100)
# Every kept checkpoint of every arm is scored by shardgan-eval score against the FULL train split (60,000 images,
# n = 10,000, the same real images and noise for every arm) with a classifier trained on the full train split:
# FD-clf, class consistency, precision, recall, density, coverage.
# Target: FD-clf with augmentation <= 0.7x without, class consistency not lower.
#   bench/quality_limited.sh [BUILD_DIR] [WORK_DIR] [STEPS] [ARM...]     (SHARDGAN_NO_BUILD=1: binaries as they are)
# Writes WORK_DIR/<arm>/ (run folders), WORK_DIR/<arm>-step-N.json (scores) and prints one table.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-$(mktemp -d /tmp/shardgan-limited-XXXXXX)}
steps=${3:-1200}
shift $(($# < 3 ? $# : 3))
arms=("$@")
((${#arms[@]})) || arms=(none diffaug ada)
source "$here/bench/common.sh"
quality_tools "$here" "$build"
mkdir -p "$work"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $steps steps per arm on 2 ranks"

pack=$build/src/shardgan-pack
"$pack" verify "$work/full" >/dev/null 2>&1 || "$pack" fashion-mnist --split train --out "$work/full" --force >/dev/null
"$pack" verify "$work/6k" >/dev/null 2>&1 ||
  "$pack" fashion-mnist --split train --max-images 6000 --out "$work/6k" --force >/dev/null
if [[ ! -f $work/clf.pt ]]; then
  echo "==> classifier on the full train split (held out: 10 %)"
  /usr/bin/time -f "classifier: %e s wall" "$build/src/shardgan-eval" train-classifier --data "$work/full" \
    --out "$work/clf.pt" --epochs 2 >"$work/clf.json"
fi
echo "classifier held-out accuracy: $(sed -n 's/.*"holdout_accuracy": \([0-9.]*\).*/\1/p' "$work/clf.json")"

every=$((steps / 4))
for arm in "${arms[@]}"; do
  case $arm in
    none) extra=() ;;
    diffaug) extra=(--set augment.policy=color,translation,cutout) ;;
    ada) extra=(--set augment.policy=color,translation,cutout --set augment.ada_target=0.6
      --set augment.ada_kimg=100) ;;
    *) echo "unknown arm '$arm' (none, diffaug, ada)" >&2; exit 2 ;;
  esac
  echo "==> arm $arm: $steps steps"
  rm -rf "${work:?}/$arm"
  start=$SECONDS
  "${mpi[@]}" -np 2 "$build/src/shardgan-train" --config "$here/configs/fashion_mnist.toml" --run-dir "$work/$arm" \
    --set data.path="$work/6k" --set train.epochs=100000 --set train.max_steps="$steps" \
    --set train.log_every=50 --set output.checkpoint_every_steps="$every" --set output.keep_checkpoints=8 \
    --set output.sample_every_epochs=1000 "${extra[@]}" >"$work/$arm.log" 2>&1 ||
    { tail -20 "$work/$arm.log"; echo "arm $arm failed"; exit 1; }
  echo "arm $arm trained in $((SECONDS - start)) s"
  for ckpt in "$work/$arm"/checkpoints/step-*; do
    "$build/src/shardgan-eval" score --checkpoint "$ckpt" --classifier "$work/clf.pt" --data "$work/full" \
      --n 10000 --out "$work/$arm-$(basename "$ckpt").json" >/dev/null
  done
done

/usr/bin/python3 - "$work" "${arms[@]}" <<'PY'
import glob, json, os, sys
work, arms = sys.argv[1], sys.argv[2:]
print(f"{'arm':<8} {'step':>6} {'FD-clf':>8} {'class cons.':>11} {'precision':>9} {'recall':>7} {'density':>7} "
      f"{'coverage':>8} {'p':>6} {'img/s':>6}")
final = {}
for arm in arms:
    rows = [json.loads(l) for l in open(os.path.join(work, arm, "metrics.jsonl")) if l.strip()]
    train = [r for r in rows if "loss_d" in r]
    speed = [r["img_per_s"] for r in train[1:]]
    for f in sorted(glob.glob(os.path.join(work, f"{arm}-step-*.json"))):
        s = json.load(open(f))
        p = [r.get("augment_p") for r in train if r["step"] <= s["step"]]
        p = f"{p[-1]:.3f}" if p and p[-1] is not None else "-"
        print(f"{arm:<8} {s['step']:>6} {s['fd_clf']:>8.2f} {100 * s['class_consistency']:>10.1f}% "
              f"{s['precision']:>9.3f} {s['recall']:>7.3f} {s['density']:>7.3f} {s['coverage']:>8.3f} {p:>6} "
              f"{sum(speed) / max(1, len(speed)):>6.0f}")
        final[arm] = s
if "none" in final:
    for arm in (a for a in arms if a != "none" and a in final):
        ratio = final[arm]["fd_clf"] / final["none"]["fd_clf"]
        ok = ratio <= 0.7 and final[arm]["class_consistency"] >= final["none"]["class_consistency"]
        print(f"{arm}: FD-clf {ratio:.3f}x of none, class consistency {100 * final[arm]['class_consistency']:.1f}% vs "
              f"{100 * final['none']['class_consistency']:.1f}% -> target (<= 0.7x, not lower) {'MET' if ok else 'MISSED'}")
PY
