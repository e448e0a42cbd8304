#!/usr/bin/env bash
# Builds shardgan against Debian 13 (trixie)'s LibTorch 2.6 and runs the whole test suite there, in a chroot.
#   tests/legs/trixie.sh cpu  [ctest args]   libtorch-dev 2.6 (CPU), Open MPI 5, HDF5 1.14, GCC 14, Slurm 24
#   tests/legs/trixie.sh cuda [ctest args]   the same plus libtorch-cuda-dev 2.6 (CUDA 12.4), nvidia-cuda-toolkit,
#                                           libnccl-dev 2.22: every target compiled with -Werror on our code
#                                           (SHARDGAN_WERROR), then the CPU test suite with the CUDA LibTorch loaded
# The chroots are cached outside the checkout (SHARDGAN_CHROOT_CACHE, default /var/cache/shardgan) and made again
# when their recipe (this file's package lists and steps) changes. The mirror is the one this machine's apt sources
# name for Debian (deb822 or one-line format); no host name is written here. Needs root (debootstrap, chroot,
# mounts), debootstrap (installed from Debian when missing) and ~6 GB (cpu) + ~13 GB (cuda) of disk.
# Everything is mounted in a private mount namespace, so nothing stays mounted when this ends, however it ends.
# A leg that cannot start says why and exits 1: a missing leg is not a pass.
#
# cuDNN is not in Debian (nvidia-cudnn only downloads it from NVIDIA). libtorch_cuda.so needs libcudnn.so.9 to link
# and load, so the cuda leg generates a stand-in from the cudnn* symbols libtorch_cuda.so imports, each returning
# CUDNN_STATUS_NOT_SUPPORTED. It exists only inside the cuda chroot, for linking and CPU-side tests; it is never
# installed and never near a GPU run (bench/gpu/ builds against the GPU machine's own LibTorch).
set -euo pipefail
leg=${1:-}
[[ $leg == cpu || $leg == cuda ]] || { echo "usage: tests/legs/trixie.sh cpu|cuda [ctest args]" >&2; exit 2; }
shift
src=$(cd "$(dirname "$0")/../.." && pwd)
cache=${SHARDGAN_CHROOT_CACHE:-/var/cache/shardgan}
say() { printf 'trixie-%s: %s\n' "$leg" "$*" >&2; }
cannot() { say "cannot run this leg: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || cannot "needs root (debootstrap, chroot, bind mounts)"
for tool in unshare chroot mount flock sha256sum; do command -v "$tool" >/dev/null || cannot "$tool not found"; done
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      debootstrap >/dev/null; } || cannot "debootstrap could not be installed"
fi

# The Debian mirror of this machine's apt sources: the first URI of an entry for the main archive (not security).
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uri = ""; suites = ""; types = "";
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^URIs:/) { uri = $i; sub(/^URIs:[ \t]*/, "", uri); sub(/[ \t].*/, "", uri) }
             if ($i ~ /^Suites:/) suites = $i
             if ($i ~ /^Types:/) types = $i }
           if (types ~ /[ \t]deb([ \t]|$)/ && suites !~ /security/ && uri ~ /debian\/?$/) { print uri; exit } }' "$f"
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }'
}
uri=$(set +o pipefail; mirror 2>/dev/null | head -n 1)
[[ -n $uri ]] || cannot "no Debian mirror found in /etc/apt/sources.list{,.d/*}"

mapfile -t packages < <("$src/launch/bootstrap.sh" --list)
((${#packages[@]} > 0)) || cannot "launch/bootstrap.sh --list printed no packages"
cuda_packages=(libtorch-cuda-dev nvidia-cuda-toolkit libnccl-dev binutils)
recipe_version=2  # bump when the steps below change in a way the package lists do not show

recipe() {  # the text that decides whether a cached chroot is still the right one
  echo "recipe $recipe_version trixie main contrib non-free"
  printf '%s\n' "${packages[@]}"
  [[ $1 == cuda ]] && printf 'cuda %s\n' "${cuda_packages[@]}"
  return 0
}

# Runs COMMAND... inside chroot ROOT with /proc, /sys, /dev and the checkout (at /shardgan) mounted, in a private
# mount namespace. ROOT is bind-mounted onto itself so that it is a mount point (unshare inside needs that).
in_chroot() {  # ROOT COMMAND...
  local root=$1
  shift
  mkdir -p "$root/shardgan" "$root/tmp"
  unshare --mount --propagation private -- /bin/bash -euc '
    root=$1 src=$2 tmp=$3
    shift 3
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount --bind "$src" "$root/shardgan"
    mount --bind "$tmp" "$root/tmp"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
  ' in_chroot "$root" "$src" "$scratch" "$@" 9>&-  # the lock stays with this script, not with what tests leave
}

# Makes $cache/trixie-LEG when it is missing or its recipe changed: built under a temporary name, renamed when
# complete, so a half-made chroot is never used.
make_chroot() {  # LEG
  local name=trixie-$1 want have new
  want=$(recipe "$1" | sha256sum | cut -c1-16)
  have=$(cat "$cache/$name/.shardgan-recipe" 2>/dev/null || true)
  [[ $have == "$want" ]] && return 0
  new=$cache/$name.new
  rm -rf "$new"
  if [[ $1 == cpu ]]; then
    say "making the chroot (debootstrap trixie from $uri, then ${#packages[@]} packages; ~3 min, ~3 GB)"
    debootstrap --variant=minbase trixie "$new" "$uri" >"$cache/$name.log" 2>&1 ||
      { tail -n 5 "$cache/$name.log" >&2; cannot "debootstrap trixie $uri failed (log: $cache/$name.log)"; }
    echo "deb $uri trixie main contrib non-free" >"$new/etc/apt/sources.list"
    printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"  # packages start no daemons in the chroot
    chmod +x "$new/usr/sbin/policy-rc.d"
    cp /etc/hosts "$new/etc/hosts"
    in_chroot "$new" apt-get update -qq >>"$cache/$name.log" 2>&1 || cannot "apt-get update in the chroot failed"
    in_chroot "$new" apt-get install -y -qq --no-install-recommends "${packages[@]}" >>"$cache/$name.log" 2>&1 ||
      { tail -n 5 "$cache/$name.log" >&2; cannot "installing the packages failed (log: $cache/$name.log)"; }
  else
    make_chroot cpu
    say "making the chroot (the cpu chroot plus ${cuda_packages[*]}; ~5 min, ~2.6 GB download)"
    cp -a "$cache/trixie-cpu" "$new"
    # nvidia-cudnn would download cuDNN from NVIDIA (no internet here): declining its licence installs it without.
    echo "nvidia-cudnn nvidia-cudnn/license note" | in_chroot "$new" debconf-set-selections 2>/dev/null || true
    echo "nvidia-cudnn nvidia-cudnn/question select I Decline" | in_chroot "$new" debconf-set-selections
    in_chroot "$new" apt-get update -qq >>"$cache/$name.log" 2>&1 || cannot "apt-get update in the chroot failed"
    in_chroot "$new" apt-get install -y -qq --no-install-recommends "${cuda_packages[@]}" >>"$cache/$name.log" 2>&1 ||
      { tail -n 5 "$cache/$name.log" >&2; cannot "installing the CUDA packages failed (log: $cache/$name.log)"; }
    in_chroot "$new" /bin/bash /shardgan/tests/legs/cudnn_standin.sh /opt/cudnn-standin >>"$cache/$name.log" 2>&1 ||
      { tail -n 5 "$cache/$name.log" >&2; cannot "the cuDNN link stand-in could not be made (log: $cache/$name.log)"; }
  fi
  in_chroot "$new" apt-get clean
  echo "$want" >"$new/.shardgan-recipe"
  rm -rf "$cache/$name"
  mv "$new" "$cache/$name"
}

mkdir -p "$cache"
exec 9>"$cache/trixie.lock"
flock -w 3600 9 || cannot "another leg has held $cache/trixie.lock for an hour"  # one leg at a time per cache
scratch=$(mktemp -d /tmp/shardgan-trixie-XXXXXX)  # the chroot's /tmp
chmod 1777 "$scratch"  # as /tmp is (munged refuses a socket below a folder others cannot enter)
trap 'rm -rf "$scratch"' EXIT
make_chroot "$leg"

build=build-trixie-$leg
cmake_args=(-DSHARDGAN_BUILD_TESTS=ON)
[[ $leg == cuda ]] && cmake_args+=(-DSHARDGAN_WERROR=ON -DCUDAToolkit_ROOT=/usr)
say "building into $build and running the tests (LibTorch $(in_chroot "$cache/trixie-$leg" dpkg-query -W -f '${Version}' \
  "libtorch$([[ $leg == cuda ]] && echo -cuda)-dev"))"
in_chroot "$cache/trixie-$leg" /usr/bin/env SHARDGAN_CMAKE_ARGS="${cmake_args[*]}" \
  /shardgan/tests/build_and_test.sh "/shardgan/$build" "$@"
