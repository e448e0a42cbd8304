#!/usr/bin/env bash
# Run HERE (the CPU machine) before bench/gpu/run.sh travels to the GPU machine, which has nvcc, CMake, ninja and
# Python with a CUDA PyTorch wheel but no package archive. Fills .gpu/ (git-ignored; carry it: `carry: [".gpu"]`):
#   .gpu/debs/    Debian 12 .debs of what the trainer needs and the GPU machine lacks: Open MPI, HDF5, GoogleTest,
#                 the header-only libraries (CLI11, toml++, nlohmann-json), xxHash, libpng, OpenSSL and zlib headers,
#                 with the run-time libraries they depend on (run.sh unpacks them with dpkg -x, never into /)
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

# The packages, and the libraries they load that a machine with Python and nvcc may lack (run.sh puts on the
# library path only those the machine does not have itself). libhdf5 links libcurl, which brings its own.
packages=(
  openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev libevent-core-2.1-7 libevent-pthreads-2.1-7 libhwloc15
  libpmix2 libmunge2 libltdl7
  libhdf5-103-1 libhdf5-dev libsz2 libaec0 libcurl4 libnghttp2-14 librtmp1 libssh2-1 libpsl5 libldap-2.5-0
  libsasl2-2 libsasl2-modules-db libbrotli1
  libgtest-dev libcli11-dev libtomlplusplus-dev libtomlplusplus3 nlohmann-json3-dev libxxhash-dev libxxhash0
  libpng-dev libpng16-16 libssl-dev zlib1g-dev pkgconf pkgconf-bin libpkgconf3)
(cd "$out.new/debs" && apt-get download "${packages[@]}" >/dev/null) || die "apt-get download failed"
find "$out.new/debs" -name '*.deb' -size +12M -printf '%f is large (%s bytes)\n' >&2

# The data: the seeds' image shape, CIFAR-10's binary format, packed by shardgan-pack.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
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
