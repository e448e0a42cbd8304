#!/usr/bin/env bash
# Installs every Debian package shardgan needs to build, test and run on a fresh Debian 12 machine.
# Idempotent: when everything is already installed it only runs dpkg-query and exits (well under a second).
#   launch/bootstrap.sh            build + test + run dependencies
#   launch/bootstrap.sh --bench    also the Python peers used by bench/ (python3-torch, pandas, sklearn, hyperfine)
#   launch/bootstrap.sh --list     prints the package list (one a line) and installs nothing: the Debian 13 leg's
#                                  chroot (tests/legs/trixie.sh) is made by running this script inside it
#   launch/bootstrap.sh --fuzz     only the fuzzing compiler (clang with libFuzzer and the sanitizers) of this
#                                  release: the fuzz leg (bench/fuzz.sh) installs it, the quickstart never does
#   launch/bootstrap.sh --fuzz-clang  prints that compiler's version suffix (14 on Debian 12, 19 on Debian 13)
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates
  # LibTorch (CPU) and a fast BLAS for it: without libopenblas0-openmp libtorch uses the reference BLAS (4.6x slower)
  libtorch-dev libopenblas0-openmp
  # MPI, HDF5
  libopenmpi-dev openmpi-bin libhdf5-dev
  # images: OpenCV for decoding/resizing in the packer, libpng for the trainer's PNG writer
  libopencv-dev libturbojpeg0-dev libpng-dev zlib1g-dev
  # header-only and small libraries
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libarchive-dev libxxhash-dev libssl-dev
  # TensorBoard's event files: protobuf for the events, Intel ISA-L for their CRC-32C
  libprotobuf-dev protobuf-compiler libisal-dev
  # tests (strace: the durability tests check which files are flushed to disk, and when; lmod: the install test
  # loads the environment module with it)
  libgtest-dev googletest python3 python3-h5py python3-numpy python3-pil strace lmod
  # the real data set used by the quickstart and the integration tests
  dataset-fashion-mnist
  # cluster launch paths and their tests: a real one-machine Slurm cluster (srun --mpi=pmix needs libpmix-dev),
  # network namespaces for simulated nodes
  slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge libpmix-dev iproute2 procps
  # the run report's test renders report.html in headless Chromium
  chromium
)
# The fuzzing compiler, named for the release (clang-14 is gone from Debian 13).
fuzz_clang() {
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  case $codename in
    bookworm) echo 14 ;;
    trixie) echo 19 ;;
    *) echo "bootstrap: no fuzzing compiler known for Debian '$codename' (bookworm: 14, trixie: 19)" >&2; return 1 ;;
  esac
}
case "${1:-}" in
  --list) printf '%s\n' "${packages[@]}"; exit 0 ;;
  --fuzz-clang) fuzz_clang; exit ;;
  --fuzz) v=$(fuzz_clang); packages=("clang-$v" "libclang-rt-$v-dev") ;;
  --bench) packages+=(python3-torch python3-pandas python3-sklearn hyperfine time) ;;
  "") ;;
  *) echo "usage: launch/bootstrap.sh [--list | --fuzz | --fuzz-clang | --bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "bootstrap: installing ${#missing[@]} package(s): ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done" >&2
