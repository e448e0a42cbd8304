# Sourced by the legs of tests/run.sh that need more than this machine (tests/legs/*.sh): the cache folder, Debian
# chroots made with debootstrap and cached by recipe, running commands inside them, and the PyTorch wheels'
# wheelhouse and virtual environments. The caller sets `leg` (its name, for messages) before sourcing.
#   SHARDGAN_CHROOT_CACHE  where chroots, the wheelhouse and the virtual environments live (default /var/cache/shardgan)
# shellcheck shell=bash
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${SHARDGAN_CHROOT_CACHE:-/var/cache/shardgan}
# shellcheck source=tests/legs/versions.sh
source "$src/tests/legs/versions.sh"
say() { printf '%s: %s\n' "$leg" "$*" >&2; }
cannot() { say "cannot run this leg: $*"; exit 1; }

need_root_tools() {  # TOOL...: root and the named tools (debootstrap is installed from Debian when missing)
  [[ $(id -u) -eq 0 ]] || cannot "needs root (debootstrap, chroot, bind mounts)"
  local tool
  for tool in "$@"; do
    [[ $tool == debootstrap ]] && continue
    command -v "$tool" >/dev/null || cannot "$tool not found"
  done
  if [[ " $* " == *" debootstrap "* ]] && ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        debootstrap >/dev/null; } || cannot "debootstrap could not be installed"
  fi
}

# The Debian mirror of this machine's apt sources: the first URI of an entry for the main archive (not security),
# deb822 or one-line format. No host name is written into the project.
debian_mirror() {
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

# Runs COMMAND... inside chroot ROOT with /proc, /sys, /dev, the checkout (at /shardgan), a scratch /tmp and the
# BINDS (HOST_PATH:CHROOT_PATH, blank-separated in $chroot_binds) mounted, in a private mount namespace: nothing stays
# mounted when it ends, however it ends. ROOT is bind-mounted onto itself (unshare inside needs a mount point).
chroot_binds=""
in_chroot() {  # ROOT COMMAND...
  local root=$1
  shift
  [[ -n ${scratch:-} ]] || { scratch=$(mktemp -d /tmp/shardgan-chroot-XXXXXX) && chmod 1777 "$scratch"; }
  mkdir -p "$root/shardgan" "$root/tmp"
  unshare --mount --propagation private -- /bin/bash -euc '
    root=$1 src=$2 tmp=$3 binds=$4
    shift 4
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount --bind "$src" "$root/shardgan"
    mount --bind "$tmp" "$root/tmp"
    for b in $binds; do mkdir -p "$root/${b#*:}"; mount --bind "${b%%:*}" "$root/${b#*:}"; done
    exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
  ' in_chroot "$root" "$src" "$scratch" "$chroot_binds" "$@" 9>&-  # locks stay with the leg, not with what tests leave
}

# Makes $cache/NAME, a Debian SUITE chroot (debootstrap minbase from this machine's mirror), when it is missing or
# RECIPE (text: whatever decides its contents) changed, then calls SETUP_FUNCTION ROOT to install what it needs. Built
# under a temporary name and renamed when complete, so a half-made chroot is never used.
make_chroot() {  # NAME SUITE RECIPE SETUP_FUNCTION
  local name=$1 suite=$2 want have new uri
  want=$(printf '%s\n%s\n' "$suite" "$3" | sha256sum | cut -c1-16)
  have=$(cat "$cache/$name/.shardgan-recipe" 2>/dev/null || true)
  [[ $have == "$want" ]] && return 0
  uri=$(set +o pipefail; debian_mirror 2>/dev/null | head -n 1)
  [[ -n $uri ]] || cannot "no Debian mirror found in /etc/apt/sources.list{,.d/*}"
  new=$cache/$name.new
  rm -rf "$new"
  say "making the chroot $name (debootstrap $suite from the machine's mirror, then its packages)"
  debootstrap --variant=minbase "$suite" "$new" "$uri" >"$cache/$name.log" 2>&1 ||
    { tail -n 5 "$cache/$name.log" >&2; cannot "debootstrap $suite failed (log: $cache/$name.log)"; }
  echo "deb $uri $suite main contrib non-free" >"$new/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"  # packages start no daemons in the chroot
  chmod +x "$new/usr/sbin/policy-rc.d"
  cp /etc/hosts "$new/etc/hosts"
  "$4" "$new" >>"$cache/$name.log" 2>&1 ||
    { tail -n 5 "$cache/$name.log" >&2; cannot "setting up the chroot $name failed (log: $cache/$name.log)"; }
  in_chroot "$new" apt-get clean
  echo "$want" >"$new/.shardgan-recipe"
  rm -rf "${cache:?}/$name"
  mv "$new" "$cache/$name"
}

# The interpreter that makes the virtual environments: the `python3` first on PATH when it is not Debian's (that one
# is for Debian's python3-* packages), else Debian's with python3-venv. Prints its path.
venv_python() {
  local py
  py=$(command -v python3 || true)
  if [[ -n $py && $(readlink -f "$py") != /usr/bin/python3* ]] && "$py" -m venv --help >/dev/null 2>&1; then
    echo "$py"
    return
  fi
  if ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null ||
      cannot "python3-venv could not be installed"
  fi
  echo /usr/bin/python3
}

# Makes $cache/venv/torch-VERSION (torch==VERSION with its nvidia-* dependencies, numpy, h5py) from the wheelhouse
# $cache/wheelhouse, downloading into the wheelhouse only what it lacks. A venv's scripts name its folder, so it is
# made in place; the marker written last says it is complete (one without it is made again). Prints its python.
torch_venv() {  # VERSION
  local version=$1 venv=$cache/venv/torch-$1 py
  if [[ -x $venv/bin/python && -f $venv/.shardgan-complete ]]; then
    echo "$venv/bin/python"
    return
  fi
  py=$(venv_python)
  mkdir -p "$cache/wheelhouse" "$cache/venv"
  say "fetching torch==$version and its dependencies into $cache/wheelhouse (the first time ~4 GB)"
  "$py" -m pip download -q --disable-pip-version-check -d "$cache/wheelhouse" "torch==$version" numpy h5py >&2 ||
    cannot "pip could not download torch==$version"
  say "making the virtual environment $venv"
  rm -rf "$venv"
  "$py" -m venv "$venv" >&2 || cannot "$py -m venv failed"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --find-links "$cache/wheelhouse" \
    "torch==$version" numpy h5py >&2 || cannot "installing torch==$version from the wheelhouse failed"
  touch "$venv/.shardgan-complete"
  echo "$venv/bin/python"
}
