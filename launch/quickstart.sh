#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs what is needed, builds shardgan, packs the real Fashion-MNIST
# (Debian package dataset-fashion-mnist) into checksummed HDF5 shards under data/fashion-mnist, verifies them and
# prints a summary. Packing happens once: a valid existing data/fashion-mnist is kept.
#   SHARDGAN_BUILD_DIR  build folder (default: build/)
#   SHARDGAN_DATA_DIR   where packed data sets go (default: data/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SHARDGAN_BUILD_DIR:-$root/build}
data=${SHARDGAN_DATA_DIR:-$root/data}

echo "==> installing Debian packages (launch/bootstrap.sh)"
"$root/launch/bootstrap.sh"
echo "==> building shardgan ($build)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target shardgan-pack
pack=$build/preprocessing/shardgan-pack

mkdir -p "$data"
out=$data/fashion-mnist
if [[ -f $out/manifest.json ]] && "$pack" verify "$out" >/dev/null 2>&1; then
  echo "==> $out is already packed and verified; keeping it"
else
  echo "==> packing Fashion-MNIST (train + test) into $out"
  "$pack" fashion-mnist --split all --out "$out" --force
  "$pack" verify "$out"
fi
echo "==> summary"
"$pack" info "$out"
cat <<MSG

Packed data: $out (manifest.json + shard-*.h5; format in docs/data-format.md).
Inspect it:  $pack info $out
Check it:    $pack verify $out
MSG
