#!/usr/bin/env bash
# Debian 13 (trixie), in a chroot: the quickstart's set-up as a user on the current stable runs it, then the whole
# test suite against Debian 13's LibTorch 2.6 (CPU), Open MPI 5, Slurm 24.11, HDF5 1.14, GCC 14.
#   tests/legs/trixie.sh [ctest args]
# The chroot is made with debootstrap (minbase) and set up by launch/bootstrap.sh itself, run inside it: the
# quickstart's install step on Debian 13. Every run then calls `launch/quickstart.sh --setup-only` inside it (install
# check + the quickstart's build, into build-trixie/), then builds the tests into the same folder and runs ctest.
# Cached as $SHARDGAN_CHROOT_CACHE/trixie (default /var/cache/shardgan; ~3 GB) and made again when its recipe (the
# package list of launch/bootstrap.sh, this file's steps) changes. Needs root and debootstrap (installed when missing).
# A leg that cannot start says why and exits 1: a missing leg is not a pass.
set -euo pipefail
leg=trixie
source "$(dirname "$0")/lib.sh"
need_root_tools unshare chroot mount flock sha256sum debootstrap

setup_trixie() {  # ROOT: the quickstart's install step, on Debian 13
  in_chroot "$1" /shardgan/launch/bootstrap.sh
}

mkdir -p "$cache"
exec 9>"$cache/trixie.lock"
flock -w 3600 9 || cannot "another leg has held $cache/trixie.lock for an hour"  # one leg at a time per cache
scratch=$(mktemp -d /tmp/shardgan-trixie-XXXXXX)  # the chroot's /tmp
chmod 1777 "$scratch"  # as /tmp is (munged refuses a socket below a folder others cannot enter)
trap 'rm -rf "$scratch"' EXIT
make_chroot trixie trixie "recipe 3; $("$src/launch/bootstrap.sh" --list | tr '\n' ' ')" setup_trixie

root=$cache/trixie
say "the quickstart's set-up on Debian 13 (launch/quickstart.sh --setup-only), LibTorch $(in_chroot "$root" \
  dpkg-query -W -f '${Version}' libtorch-dev)"
in_chroot "$root" /usr/bin/env SHARDGAN_BUILD_DIR=/shardgan/build-trixie /shardgan/launch/quickstart.sh --setup-only >&2 ||
  { say "FAILED: launch/quickstart.sh --setup-only on Debian 13"; exit 1; }
say "building the tests into build-trixie and running them"
in_chroot "$root" /shardgan/tests/build_and_test.sh /shardgan/build-trixie "$@"
