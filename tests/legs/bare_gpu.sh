#!/usr/bin/env bash
# The GPU machine's bareness, rehearsed here: runs bench/gpu/run.sh --cpu inside a Debian 12 chroot that has only what
# that machine has (../shared/facts/GPU.md): a compiler, CMake, ninja, Python with the GPU machine's torch wheel
# (torch==$SHARDGAN_TORCH_GPU and its nvidia-* wheels, NCCL included) and this machine's /usr/local/cuda (nvcc)
# mounted; no Open MPI, no HDF5, none of Debian's -dev packages. So the script's dpkg -x path for the .debs that
# bench/gpu/prepare.sh fetched, its NCCL lookup in the wheel, mpirun's environment and every phase's time limit run
# as they will there. tests/legs/wheel.sh gpu calls it; it also runs alone:
#   tests/legs/bare_gpu.sh        SHARDGAN_BUILD_DIR: a build with src/shardgan-pack and tests/shardgan-fixtures, for
#                                 prepare.sh (default build/). Writes bench/gpu/run.sh's output to gpu-out-bare/.
# The chroot is cached as $SHARDGAN_CHROOT_CACHE/bookworm-bare (~1 GB) and made again when its recipe changes.
set -euo pipefail
leg=bare-gpu
source "$(dirname "$0")/lib.sh"
need_root_tools unshare chroot mount flock sha256sum debootstrap
[[ -d /usr/local/cuda/bin ]] || cannot "/usr/local/cuda (nvcc, the GPU machine has one) is missing"
build=${SHARDGAN_BUILD_DIR:-$src/build}

# Debian 12 with a compiler, CMake, ninja and Python; the wheel goes into a virtual environment whose python3 is the
# first on PATH, as the GPU machine's Python with torch is.
bare_packages=(g++ make cmake ninja-build python3 python3-venv ca-certificates)
setup_bare() {  # ROOT
  in_chroot "$1" apt-get update -qq
  in_chroot "$1" apt-get install -y -qq --no-install-recommends "${bare_packages[@]}"
  chroot_binds="$cache/wheelhouse:/wheelhouse" in_chroot "$1" /bin/sh -euc "
    python3 -m venv /opt/torch
    /opt/torch/bin/pip install -q --disable-pip-version-check --no-index --find-links /wheelhouse \
      torch==$SHARDGAN_TORCH_GPU numpy"
}

mkdir -p "$cache"
exec 9>"$cache/bare.lock"
flock -w 3600 9 || cannot "another leg has held $cache/bare.lock for an hour"
exec 8>"$cache/wheels.lock"
flock -w 3600 8 || cannot "another leg has held $cache/wheels.lock for an hour"
torch_venv "$SHARDGAN_TORCH_GPU" >/dev/null  # fills the wheelhouse
exec 8>&-
scratch=$(mktemp -d /tmp/shardgan-bare-XXXXXX)
chmod 1777 "$scratch"
trap 'rm -rf "$scratch"' EXIT
make_chroot bookworm-bare bookworm "recipe 1; torch $SHARDGAN_TORCH_GPU; ${bare_packages[*]}" setup_bare

say "bench/gpu/prepare.sh $build (here: the .debs, data and peer the GPU machine lacks)"
"$src/bench/gpu/prepare.sh" "$build" >&2 || cannot "bench/gpu/prepare.sh failed"
out=gpu-out-bare
rm -rf "${src:?}/$out"
start=$SECONDS
rc=0
chroot_binds="/usr/local/cuda:/usr/local/cuda" in_chroot "$cache/bookworm-bare" /usr/bin/env \
  PATH=/opt/torch/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  OUT=/shardgan/$out /bin/bash /shardgan/bench/gpu/run.sh --cpu || rc=$?
say "bench/gpu/run.sh --cpu in the bare chroot: exit $rc after $((SECONDS - start)) s (log: $out/gpu_run.log)"
exit "$rc"
