#!/usr/bin/env bash
# Another HDF5 client reads what shardgan-pack wrote: packs CIFAR-10 and HAM10000 fixtures, then checks every dataset
# and attribute through Debian's python3-h5py (tests/integration/h5py_read.py).
set -euo pipefail
pack=$1 fixtures=$2 here=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$fixtures" cifar10 --out "$tmp/cifar" --records 30 --tar
"$pack" cifar10 --input "$tmp/cifar/cifar-10-binary.tar.gz" --out "$tmp/cifar-packed" 2>/dev/null
"$fixtures" ham10000 --out "$tmp/ham" --count 10 --width 120 --height 90 --zip --tab --dataset-column >/dev/null
"$pack" ham10000 --metadata "$tmp/ham/HAM10000_metadata.tab" --images "$tmp/ham/HAM10000_images_part_1.zip" \
  --out "$tmp/ham-packed" --shard-size 4
/usr/bin/python3 "$here/h5py_read.py" "$tmp/cifar-packed" "$tmp/ham-packed"
