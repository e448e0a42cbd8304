#!/usr/bin/env bash
# Run HERE (the CPU machine) before bench/gpu/run.sh travels to the GPU machine, which has nvcc, CMake, ninja and
# Python with a CUDA PyTorch wheel but no package archive. Fills .gpu/ (git-ignored; carry it: `carry: [".gpu"]`):
#   .gpu/debs/    Debian 12 .debs of what the trainer needs and the GPU machine lacks: Open MPI, HDF5, GoogleTest,
#                 the header-only libraries (CLI11, toml++, nlohmann-json), xxHash, libpng, OpenSSL and zlib headers,
#                 OpenCV's core and imgproc (losses.png; not its codecs, which only the packer needs), and every
#                 library their programs and libraries load but the C/C++ runtimes (OpenCV's core brings BLAS/LAPACK,
#                 libGLX, X11 and TBB; run.sh unpacks them with dpkg -x, never into /, and puts on the library path
#                 only those the machine lacks)
#   .gpu/data/    a packed CIFAR-format set (2,000 records of the fixture generator: the seeds' 32x32x3 images)
#   .gpu/peers/   ../shared/peers/dcgan_gpu.py and dcgan_ddp.py (the PyTorch peer), which do not travel otherwise
# Usage: bench/gpu/prepare.sh [BUILD_DIR]   (a build with shardgan-pack and tests/shardgan-fixtures; default build/)
# Limit: 60 MiB in all (the device tool carries at most 64 MiB with the working tree).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
out=$root/.gpu
die() { echo "bench/gpu/prepare.sh: $*" >&2; exit 1; }
[[ -x $build/src/shardgan-pack && -x $build/tests/shardgan-fixtures ]] ||
  die "$build lacks src/shardgan-pack or tests/shardgan-fixtures (run ./tests/run.sh or build it first)"
grep -qx '/.gpu/' "$root/.git/info/exclude" 2>/dev/null || grep -q '^/\.gpu/$' "$root/.gitignore" ||
  die ".gpu/ must be ignored by git"

rm -rf "$out.new"
mkdir -p "$out.new/debs" "$out.new/peers"

# The packages; then, until nothing is added, the packages of every library that their programs and libraries load
# (ldd, resolved on this machine, owner by dpkg -S), but for the C and C++ runtimes every Linux machine has. So a
# -dev package's links (libz.so, libcrypto.so) have their targets, and libhdf5's libcurl has its own dependencies.
packages=(
  openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev
  libhdf5-dev libhdf5-103-1 libgtest-dev libcli11-dev libtomlplusplus-dev libtomlplusplus3 nlohmann-json3-dev
  libxxhash-dev libxxhash0 libpng-dev libpng16-16 libssl-dev libssl3 zlib1g-dev zlib1g pkgconf pkgconf-bin libpkgconf3
  libopencv-core-dev libopencv-imgproc-dev libopencv-core406 libopencv-imgproc406
  libprotobuf-dev protobuf-compiler libisal-dev)
always_there='^(libc6|libstdc\+\+6|libgcc-s1|gcc-12-base|libcrypt1)$'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A have_pkg=()
todo=("${packages[@]}")
while ((${#todo[@]} > 0)); do
  (cd "$out.new/debs" && apt-get download "${todo[@]}" >/dev/null) || die "apt-get download ${todo[*]} failed"
  for p in "${todo[@]}"; do have_pkg[$p]=1; done
  for deb in "$out.new/debs"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  # What the programs and libraries load, and where the -dev packages' links point (libz.so -> libz.so.1.2.13).
  # (ldd fails on the scripts in bin/: `|| true`, or set -e would end the group there and the links below would never
  # be followed — so it was until the ISA-L and protobuf-lite libraries behind libisal.so and libprotobuf-lite.so
  # went missing on the bare machine.)
  mapfile -t libs < <({
    find "$tmp/root" -type f \( -name '*.so*' -o -path '*/bin/*' \) -exec ldd {} + 2>/dev/null |
      awk '$2 == "=>" && $3 ~ /^\// { print $3 }' || true
    find "$tmp/root" -xtype l -name '*.so*' -printf '%h\t%l\n' |
      awk -F'\t' -v root="$tmp/root" '{ d = $1; sub("^" root, "", d); print ($2 ~ /^\// ? $2 : d "/" $2) }'
  } | sort -u)
  todo=()
  for lib in "${libs[@]}"; do
    owner=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1) || true
    [[ -z $owner ]] && owner=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1) || true
    [[ -n $owner && -z ${have_pkg[$owner]:-} && ! $owner =~ $always_there ]] || continue
    have_pkg[$owner]=1
    todo+=("$owner")
  done
done
echo "bench/gpu/prepare.sh: ${#have_pkg[@]} packages with their run-time libraries" >&2
find "$out.new/debs" -name '*.deb' -size +12M -printf '%f is large (%s bytes)\n' >&2

# The data: the seeds' image shape, CIFAR-10's binary format, packed by shardgan-pack.
"$build/tests/shardgan-fixtures" cifar10 --out "$tmp/cifar" --records 400 >/dev/null
"$build/src/shardgan-pack" cifar10 --input "$tmp/cifar/cifar-10-batches-bin" --classes 0,1,2,3,4,5,6,7,8,9 \
  --out "$out.new/data" >/dev/null

peers=$root/../shared/peers
[[ -f $peers/dcgan_gpu.py && -f $peers/dcgan_ddp.py ]] || die "the PyTorch peer ($peers/dcgan_gpu.py) is missing"
cp "$peers/dcgan_gpu.py" "$peers/dcgan_ddp.py" "$out.new/peers/"

size=$(du -sm "$out.new" | cut -f1)
((size <= 60)) || die ".gpu would hold $size MiB (limit 60): too many packages"
rm -rf "$out"
mv "$out.new" "$out"
echo "bench/gpu/prepare.sh: .gpu/ holds $(ls "$out/debs" | wc -l) .debs, $(ls "$out/data"/*.h5 | wc -l) shard(s)," \
  "the peer; $size MiB. On the GPU machine: bench/gpu/run.sh (carry .gpu)"
