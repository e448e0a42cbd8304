#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs what is needed, builds shardgan, packs the real Fashion-MNIST
# (Debian package dataset-fashion-mnist) into checksummed HDF5 shards under data/fashion-mnist (once: a valid
# existing pack is kept) and the metrics' classifier (once), then trains a class-conditional DCGAN on it with 2 MPI
# ranks for a few minutes, measuring FD-clf and class consistency before and after, and says where the sample
# grids, loss plot, metrics and the HTML report are.
# From an installed copy (PREFIX/share/shardgan/launch/quickstart.sh, after `cmake --install`) nothing is installed
# or built: the tools are PREFIX/bin's, and data/ and runs/ are made in the current folder.
#   SHARDGAN_BUILD_DIR   build folder (default: build/)
#   SHARDGAN_PACK, SHARDGAN_TRAIN, SHARDGAN_SAMPLE, SHARDGAN_EVAL, SHARDGAN_BIN
#                        other tools than those built or installed (launch/lib.sh, find_tool)
#   SHARDGAN_DATA_DIR    where packed data sets go (default: data/; ./data from an installed copy)
#   SHARDGAN_RUN_DIR     run folder (default: runs/quickstart, ./runs/quickstart from an installed copy; replaced on
#                        every quickstart)
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
prog=quickstart.sh
# shellcheck source=launch/lib.sh
source "$root/launch/lib.sh"  # find_tool; shardgan_installed_bindir is set in an installed copy
if [[ -n $shardgan_installed_bindir ]]; then
  # An installed copy: its tools, no build; outputs in the current folder (the prefix may be read-only).
  echo "==> installed copy ($root): nothing to install or build"
  ((setup_only)) && exit 0
  base=$PWD
else
  build=${SHARDGAN_BUILD_DIR:-$root/build}
  echo "==> installing Debian packages (launch/bootstrap.sh)"
  "$root/launch/bootstrap.sh"
  echo "==> building shardgan ($build)"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --parallel "$(nproc)" --target shardgan-pack shardgan-train shardgan-sample shardgan-eval
  if ((setup_only)); then
    echo "==> set up: the tools are in $build/src"
    exit 0
  fi
  export SHARDGAN_BUILD_DIR=$build  # find_tool: the tools just built (unless SHARDGAN_TRAIN etc. name others)
  base=$root
fi
data=${SHARDGAN_DATA_DIR:-$base/data}
pack=$(find_tool shardgan-pack)
train=$(find_tool shardgan-train)
sample=$(find_tool shardgan-sample)
evaluate=$(find_tool shardgan-eval)
echo "==> the tools: $pack, $train, $sample, $evaluate"
run=${SHARDGAN_RUN_DIR:-$base/runs/quickstart}
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
  "$evaluate" train-classifier --data "$out" --out "$clf" --epochs 1 | grep holdout_accuracy
fi

echo "==> training a conditional DCGAN: $ranks ranks, $steps steps (configs/fashion_mnist.toml)"
rm -rf "$run"
# launch/train-local.sh: one rank per GPU or CPU ranks, thread counts, binding, signals (docs/cluster.md).
SHARDGAN_TRAIN=$train "$root/launch/train-local.sh" "$ranks" "$root/configs/fashion_mnist.toml" \
  --set data.path="$out" --set train.max_steps="$steps" --set output.sample_every_steps=100 \
  --set train.log_every=25 --set eval.classifier="$clf" --set eval.n=2000 --run-dir "$run"
"$sample" --checkpoint "$run" --n 40 --out "$run/samples/final-per-class.png" --score

cat <<MSG

Done. In $run:
  samples/step-*.png            fixed-noise grids during training, one row per class
  samples/final-per-class.png   40 fresh samples from the last checkpoint, one column per class
  report.html                   everything below on one self-contained page: open it in a browser
  losses.png                    D and G loss against step
  metrics.jsonl                 per logged step: loss_d, loss_g, D(real), D(fake), img/s, elapsed; and the
                                evaluations ("kind":"eval"): FD-clf and class consistency before and after training
  events.out.tfevents.*         the same for TensorBoard (tensorboard --logdir $run), with the grids and hparams
  checkpoints/                  step-*/ + latest; continue with: --resume auto
Packed data: $out (shardgan-pack info/verify; format in docs/data-format.md).
Score any checkpoint: $evaluate score --checkpoint $run --classifier $clf --data $out
MSG
