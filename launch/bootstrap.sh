#!/usr/bin/env bash
# Installs every Debian package shardgan needs to build, test and run on a fresh Debian 12 machine.
# Idempotent: when everything is already installed it only runs dpkg-query and exits (well under a second).
#   launch/bootstrap.sh            build + test + run dependencies
#   launch/bootstrap.sh --bench    also the Python peers used by bench/ (python3-torch, pandas, sklearn, hyperfine)
#   launch/bootstrap.sh --list     prints the package list (one a line) and installs nothing: the LibTorch 2.6 legs
#                                  (tests/legs/trixie.sh) install the same names into a Debian 13 chroot (all but the
#                                  fuzzing compiler, which only this machine's leg uses)
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
  # tests (strace: the durability tests check which files are flushed to disk, and when)
  libgtest-dev googletest python3 python3-h5py python3-numpy python3-pil strace
  # the real data set used by the quickstart and the integration tests
  dataset-fashion-mnist
  # cluster launch paths and their tests: a real one-machine Slurm cluster (srun --mpi=pmix needs libpmix-dev),
  # network namespaces for simulated nodes
  slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge libpmix-dev iproute2 procps
  # the run report's test renders report.html in headless Chromium
  chromium
)
if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi
# This machine only (not the LibTorch 2.6 chroots): clang 14 with libFuzzer and the sanitizers, for bench/fuzz.sh.
packages+=(clang-14 libclang-rt-14-dev)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-torch python3-pandas python3-sklearn hyperfine time)
fi

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
