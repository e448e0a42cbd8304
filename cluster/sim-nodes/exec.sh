#!/usr/bin/env bash
# Runs a command on a simulated node — in its namespaces (network, hostname, mount), in the current directory and
# with the current environment (like a login on that node that kept your shell's variables). Exit code and signals
# pass straight through (nsenter execs the command; its pid is this script's pid).
# Usage: cluster/sim-nodes/exec.sh STATE_DIR NODE [COMMAND [ARGS...]]     (no COMMAND: $SHELL or bash)
#   e.g. cluster/sim-nodes/exec.sh /tmp/sim node1 \
#          mpirun --allow-run-as-root --hostfile /tmp/sim/hostfile $(cat /tmp/sim/mpirun-args) hostname
set -euo pipefail
die() { echo "sim-nodes/exec.sh: $*" >&2; exit 2; }
(($# >= 2)) || die "usage: exec.sh STATE_DIR NODE [COMMAND...]"
state=$1 node=$2
shift 2
[[ -f $state/nodes ]] || die "no simulated nodes in $state (run up.sh N $state)"
state=$(cd "$state" && pwd)
# shellcheck source=cluster/sim-nodes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_private "$state" "$state/nodes" || die "refusing $state"
read -r name _ pid start < <(awk -v h="$node" '$1 == h || $2 == h { print; exit }' "$state/nodes") || true
[[ -n ${pid:-} ]] || die "unknown node '$node' (nodes: $(awk '{ printf "%s ", $1 }' "$state/nodes"))"
holder_is "$pid" "$state" "$name" "${start:-}" || die "node $name is down (holder $pid gone; run up.sh again)"
(($#)) || set -- "${SHELL:-/bin/bash}"
exec nsenter -t "$pid" -n -u -m -r --wd="$PWD" -- "$@"
