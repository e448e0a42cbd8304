#!/usr/bin/env bash
# Stops a cluster started by cluster/local-slurm/up.sh and removes its folder: slurmd, slurmctld and munged (from the
# pid files under DIR/run, each checked to be a daemon up.sh started for DIR), every slurmstepd of this cluster and every process of its jobs (the slurmstepds'
# descendants). Safe to call twice, on a half-started cluster, and from traps (exits 0 unless DIR is not a
# local-slurm folder).
#
# Usage: cluster/local-slurm/down.sh DIR [--keep]
#   --keep   stop everything but leave DIR (logs under DIR/log) in place
set -uo pipefail

die() { echo "local-slurm down: $*" >&2; exit 2; }
(($# >= 1 && $# <= 2)) || die "usage: down.sh DIR [--keep]"
dir=$1 keep=0
[[ ${2:-} == "" || ${2:-} == --keep ]] || die "unknown option '$2' (usage: down.sh DIR [--keep])"
[[ ${2:-} == --keep ]] && keep=1
[[ -e $dir ]] || exit 0
dir=$(cd "$dir" && pwd) || die "cannot enter $dir"
[[ -e $dir/.local-slurm ]] || die "$dir was not made by up.sh (no .local-slurm marker); not touching it"
# A marker is easy to plant: the folder must also be ours and writable by nobody else.
mode=$(stat -c %a "$dir") owner=$(stat -c %u "$dir")
[[ $owner == "$(id -u)" ]] && ! ((8#$mode & 8#022)) ||
  die "$dir belongs to uid $owner with mode $mode (not ours alone); not touching it"

stat_field() {  # PID N: the Nth field after the process name in /proc/PID/stat (1: state, 2: parent pid)
  local s f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r -a f <<<"${s##*) }"
  echo "${f[$2 - 1]}"
}
dead() { [[ ! -e /proc/$1 ]] || [[ $(stat_field "$1" 1) == Z ]]; }
children() { # PID -> its direct children
  local p
  for p in /proc/[0-9]*; do
    [[ $(stat_field "${p#/proc/}" 2) == "$1" ]] && echo "${p#/proc/}"
  done
}
descendants() { local c; for c in $(children "$1"); do echo "$c"; descendants "$c"; done; }
# This script and its callers (up.sh calls it when a start fails) are never touched.
spare=" " p=$$
while [[ $p =~ ^[0-9]+$ ]] && ((p > 1)); do spare+="$p "; p=$(stat_field "$p" 2); done
ours() {  # the daemons up.sh started (LOCAL_SLURM_DAEMONS_OF=$dir in their environment) and this cluster's
          # slurmstepds (slurmd starts them with SLURM_CONF=$dir/etc/slurm.conf)
  local p pid env
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ $spare == *" $pid "* || $pid == "$BASHPID" ]] && continue
    env=$({ tr '\0' '\n' <"$p/environ"; } 2>/dev/null) || continue
    if grep -qxF "LOCAL_SLURM_DAEMONS_OF=$dir" <<<"$env" ||
      { [[ $(cat "$p/comm" 2>/dev/null) == slurmstepd ]] && grep -qxF "SLURM_CONF=$dir/etc/slurm.conf" <<<"$env"; }; then
      echo "$pid"
    fi
  done
}

started_here() {  # PID: a daemon up.sh started for this folder (its environment says so; a pid file alone is no proof)
  { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "LOCAL_SLURM_DAEMONS_OF=$dir"
}
stop() {  # PIDFILE...: SIGTERM, up to 5 s, then SIGKILL — only processes up.sh started for this folder
  local f pid pids=() left i
  for f in "$@"; do
    pid=$(cat "$f" 2>/dev/null) && [[ $pid =~ ^[0-9]+$ ]] && ! dead "$pid" && started_here "$pid" && pids+=("$pid")
  done
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    left=()
    for pid in "${pids[@]}"; do dead "$pid" || left+=("$pid"); done
    ((${#left[@]})) || return 0
    sleep 0.1
  done
  kill -KILL "${left[@]}" 2>/dev/null
}
sweep() {  # SIGKILL to every process of ours that is left, with its descendants (the jobs' processes)
  local pid victims=() below=()
  for pid in $(ours); do
    mapfile -t below < <(descendants "$pid")
    victims+=("$pid" "${below[@]}")
  done
  if ((${#victims[@]})); then kill -KILL "${victims[@]}" 2>/dev/null; fi
}

# No new jobs, no new steps; then the steps and the jobs' processes; munged last (the others talk to it).
stop "$dir/run/slurmctld.pid" "$dir/run/slurmd.pid"
sweep
stop "$dir/run/munged.pid"
sweep

if ((keep == 0)); then rm -rf "$dir"; fi
exit 0
