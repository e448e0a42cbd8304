#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs what is needed, builds shardgan, packs the real Fashion-MNIST
# (Debian package dataset-fashion-mnist) into checksummed HDF5 shards under data/fashion-mnist (once: a valid
# existing pack is kept), then trains a class-conditional DCGAN on it with 2 MPI ranks for a few minutes and says
# where the sample grids, loss plot and metrics are.
#   SHARDGAN_BUILD_DIR   build folder (default: build/)
#   SHARDGAN_DATA_DIR    where packed data sets go (default: data/)
#   SHARDGAN_RUN_DIR     run folder (default: runs/quickstart; replaced on every quickstart)
#   SHARDGAN_RANKS       MPI ranks (default: 2)
#   SHARDGAN_STEPS       training steps (default: 400, about 3 minutes on 2 CPU cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SHARDGAN_BUILD_DIR:-$root/build}
data=${SHARDGAN_DATA_DIR:-$root/data}

echo "==> installing Debian packages (launch/bootstrap.sh)"
"$root/launch/bootstrap.sh"
echo "==> building shardgan ($build)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target shardgan-pack shardgan-train shardgan-sample
pack=$build/preprocessing/shardgan-pack
run=${SHARDGAN_RUN_DIR:-$root/runs/quickstart}
ranks=${SHARDGAN_RANKS:-2}
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

echo "==> training a conditional DCGAN: $ranks ranks, $steps steps (configs/fashion_mnist.toml)"
rm -rf "$run"
mpi_flags=(--bind-to none)
if [[ $(id -u) -eq 0 ]]; then mpi_flags+=(--allow-run-as-root); fi
if (( ranks > $(nproc) )); then mpi_flags+=(--oversubscribe); fi
mpirun -np "$ranks" "${mpi_flags[@]}" "$build/src/shardgan-train" --config "$root/configs/fashion_mnist.toml" \
  --set data.path="$out" --set train.max_steps="$steps" --set output.sample_every_steps=100 \
  --set train.log_every=25 --run-dir "$run"
"$build/src/shardgan-sample" --checkpoint "$run" --n 40 --out "$run/samples/final-per-class.png" --score

cat <<MSG

Done. In $run:
  samples/step-*.png            fixed-noise grids during training, one row per class
  samples/final-per-class.png   40 fresh samples from the last checkpoint, one column per class
  losses.png                    D and G loss against step
  metrics.jsonl                 per logged step: loss_d, loss_g, D(real), D(fake), img/s, elapsed
  checkpoints/                  step-*/ + latest; continue with: --resume auto
Packed data: $out (shardgan-pack info/verify; format in docs/data-format.md).
MSG
