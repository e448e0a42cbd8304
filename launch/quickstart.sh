#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs what is needed, builds shardgan, packs the real Fashion-MNIST
# (Debian package dataset-fashion-mnist) into checksummed HDF5 shards under data/fashion-mnist (once: a valid
# existing pack is kept) and the metrics' classifier (once), then trains a class-conditional DCGAN on it with 2 MPI
# ranks for a few minutes, measuring FD-clf and class consistency before and after, and says where the sample
# grids, loss plot, metrics and the HTML report are.
#   SHARDGAN_BUILD_DIR   build folder (default: build/)
#   SHARDGAN_DATA_DIR    where packed data sets go (default: data/)
#   SHARDGAN_RUN_DIR     run folder (default: runs/quickstart; replaced on every quickstart)
#   SHARDGAN_RANKS       MPI ranks (default: 2 CPU ranks; one per GPU when nvidia-smi lists GPUs)
#   SHARDGAN_STEPS       training steps (default: 400, about 3 minutes on 2 CPU cores)
#   --setup-only         install and build, then stop (tests/legs/trixie.sh runs this on Debian 13)
set -euo pipefail
setup_only=0
case ${1:-} in
  --setup-only) setup_only=1 ;;
  "") ;;
  *) echo "usage: launch/quickstart.sh [--setup-only]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SHARDGAN_BUILD_DIR:-$root/build}
data=${SHARDGAN_DATA_DIR:-$root/data}

echo "==> installing Debian packages (launch/bootstrap.sh)"
"$root/launch/bootstrap.sh"
echo "==> building shardgan ($build)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target shardgan-pack shardgan-train shardgan-sample shardgan-eval
if ((setup_only)); then
  echo "==> set up: the tools are in $build/src"
  exit 0
fi
pack=$build/src/shardgan-pack
run=${SHARDGAN_RUN_DIR:-$root/runs/quickstart}
ranks=${SHARDGAN_RANKS:-}
if [[ -z $ranks ]]; then
  ranks=2
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then ranks=auto; fi
fi
steps=${SHARDGAN_STEPS:-400}

mkdir -p "$data"
out=$data/fashion-mnist
if [[ -f $out/manifest.json ]] && "$pack" verify "$out" >/dev/null 2>&1; then
  echo "==> $out is already packed and verified; keeping it"
else
  echo "==> packing Fashion-MNIST (train + test) into $out"
  "$pack" fashion-mnist --split all --out "$out" --force
  "$pack" verify "$out"
fi
echo "==> data summary"
"$pack" info "$out"
clf=$data/fashion-mnist-classifier.pt
if [[ -f $clf ]]; then
  echo "==> $clf exists; keeping it"
else
  echo "==> training the metrics' classifier (1 epoch; held out: the 10,000 test images)"
  "$build/src/shardgan-eval" train-classifier --data "$out" --out "$clf" --epochs 1 | grep holdout_accuracy
fi

echo "==> training a conditional DCGAN: $ranks ranks, $steps steps (configs/fashion_mnist.toml)"
rm -rf "$run"
# launch/train-local.sh: one rank per GPU or CPU ranks, thread counts, binding, signals (docs/cluster.md).
SHARDGAN_TRAIN=$build/src/shardgan-train "$root/launch/train-local.sh" "$ranks" "$root/configs/fashion_mnist.toml" \
  --set data.path="$out" --set train.max_steps="$steps" --set output.sample_every_steps=100 \
  --set train.log_every=25 --set eval.classifier="$clf" --set eval.n=2000 --run-dir "$run"
"$build/src/shardgan-sample" --checkpoint "$run" --n 40 --out "$run/samples/final-per-class.png" --score

cat <<MSG

Done. In $run:
  samples/step-*.png            fixed-noise grids during training, one row per class
  samples/final-per-class.png   40 fresh samples from the last checkpoint, one column per class
  report.html                   everything below on one self-contained page: open it in a browser
  losses.png                    D and G loss against step
  metrics.jsonl                 per logged step: loss_d, loss_g, D(real), D(fake), img/s, elapsed; and the
                                evaluations ("kind":"eval"): FD-clf and class consistency before and after training
  checkpoints/                  step-*/ + latest; continue with: --resume auto
Packed data: $out (shardgan-pack info/verify; format in docs/data-format.md).
Score any checkpoint: $build/src/shardgan-eval score --checkpoint $run --classifier $clf --data $out
MSG
