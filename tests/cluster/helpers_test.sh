#!/usr/bin/env bash
# The cluster helpers never act on what they did not make: cluster/local-slurm and cluster/sim-nodes refuse folders
# that others own or can write, kill only processes they can prove they started (a pid file or a nodes file naming
# another process is not enough), and the local Slurm daemons start only where nothing but the loopback is up.
# Usage: helpers_test.sh SOURCE_DIR.  Exit: 0 pass, 1 fail, 77 skipped (not root).
set -euo pipefail
src=${1:?usage: helpers_test.sh SOURCE_DIR}
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (chown to another user)"; exit 77; }
tmp=$(mktemp -d /tmp/shardgan-helpers-XXXXXX)
chmod 755 "$tmp"  # as a cluster folder's parent must be (munged)
victim=""
cleanup() {
  [[ -n $victim ]] && kill -KILL "$victim" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
expect_refusal() {  # NAME NEEDLE COMMAND...: exits non-zero, one line on stderr containing NEEDLE
  local name=$1 needle=$2 rc=0 err
  shift 2
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  ((rc != 0)) || fail "$name: accepted"
  [[ $err == *"$needle"* ]] || fail "$name: expected '$needle' in: $err"
  ok "$name"
}

# A process these scripts did not start, whose pid a tampered file names.
sleep 300 &
victim=$!

# --- local-slurm -------------------------------------------------------------------------------------------------
down=$src/cluster/local-slurm/down.sh
mkdir -p "$tmp/planted/run"
touch "$tmp/planted/.local-slurm"
echo "$victim" >"$tmp/planted/run/slurmctld.pid"
echo "$victim" >"$tmp/planted/run/munged.pid"
chmod 777 "$tmp/planted"
expect_refusal "local-slurm down.sh: a world-writable folder with a marker" "not ours alone" "$down" "$tmp/planted"
chmod 755 "$tmp/planted"
chown 65534 "$tmp/planted"
expect_refusal "local-slurm down.sh: another user's folder with a marker" "not ours alone" "$down" "$tmp/planted"
chown 0 "$tmp/planted"
"$down" "$tmp/planted" --keep || fail "down.sh on our own folder"
kill -0 "$victim" 2>/dev/null || fail "local-slurm down.sh killed the process its pid files named"
ok "local-slurm down.sh: pid files naming a process it did not start: that process lives"
if ip -o link show up 2>/dev/null | awk -F': ' '$2 != "lo"' | grep -q .; then
  expect_refusal "local-slurm up.sh: other interfaces up" "loopback only" "$src/cluster/local-slurm/up.sh" "$tmp/c"
  [[ ! -e $tmp/c ]] || fail "up.sh created its folder before refusing"
else
  echo "note: no interface but the loopback is up here; the up.sh refusal is not exercised"
fi

# --- sim-nodes -----------------------------------------------------------------------------------------------------
sim=$src/cluster/sim-nodes
mkdir -p "$tmp/sim"
echo "node1 10.0.0.1 $victim 12345" >"$tmp/sim/nodes"  # a live pid, but not the holder up.sh started
echo "switch $victim 12345" >"$tmp/sim/switch"
printf '#!/bin/sh\n' >"$tmp/sim/agent"
chmod 755 "$tmp/sim/agent"
"$sim/down.sh" "$tmp/sim" || fail "sim-nodes down.sh"
kill -0 "$victim" 2>/dev/null || fail "sim-nodes down.sh killed a process its nodes file named"
ok "sim-nodes down.sh: a nodes file naming another process: that process lives"
echo "node1 10.0.0.1 $victim 12345" >"$tmp/sim/nodes"
printf '#!/bin/sh\n' >"$tmp/sim/agent"
expect_refusal "sim-nodes agent: a pid that is not the holder" "node node1 is down" \
  env SIM_NODES_STATE="$tmp/sim" "$sim/agent.sh" node1 true
expect_refusal "sim-nodes exec: a pid that is not the holder" "node node1 is down" "$sim/exec.sh" "$tmp/sim" node1 true
chmod 777 "$tmp/sim"
expect_refusal "sim-nodes agent: a world-writable state folder" "writable by nobody else" \
  env SIM_NODES_STATE="$tmp/sim" "$sim/agent.sh" node1 true
expect_refusal "sim-nodes down.sh: a world-writable state folder" "refusing" "$sim/down.sh" "$tmp/sim"
chmod 755 "$tmp/sim"
chmod 777 "$tmp/sim/agent"
expect_refusal "sim-nodes agent: a world-writable agent script" "writable by nobody else" \
  env SIM_NODES_STATE="$tmp/sim" "$sim/agent.sh" node1 true
kill -0 "$victim" 2>/dev/null || fail "the unrelated process died"
echo "PASS"
