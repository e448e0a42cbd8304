#!/usr/bin/env bash
# Open MPI launch agent for the simulated nodes (what ssh is on a real cluster): mpirun calls
#   agent.sh [ssh-like options] HOST COMMAND...
# and the COMMAND (a shell command line: "orted -mca ess env ...") runs in HOST's namespaces (network, hostname,
# mount) with a fresh login-like environment (PATH, HOME, USER, LOGNAME, SHELL), as ssh would give it — so whatever
# the ranks need from the launching shell must come through mpirun -x, as on a real cluster.
# HOST is a node name or address from STATE_DIR/nodes. Without COMMAND: an interactive shell on HOST.
# Each call appends "TIME HOST NAME-INSIDE COMMAND" to STATE_DIR/agent.log.
# Environment:
#   SIM_NODES_STATE      the STATE_DIR given to up.sh (required; STATE_DIR/agent sets it)
#   SIM_NODES_KEEP_ENV   1: keep the caller's environment instead of a fresh one
# Usage: mpirun --mca plm_rsh_agent STATE_DIR/agent ...      or by hand:  STATE_DIR/agent node2 hostname
set -euo pipefail
die() { echo "sim-nodes/agent.sh: $*" >&2; exit 255; }  # 255, like ssh when it cannot connect
state=${SIM_NODES_STATE:-}
[[ -n $state && -f $state/nodes ]] || die "SIM_NODES_STATE must name an up.sh state folder (got '${state}')"
# shellcheck source=cluster/sim-nodes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
problem=$(require_private "$state" "$state/nodes" "$state/agent" 2>&1) || die "$problem"

# ssh-like options before HOST (Open MPI adds none for a custom agent, but plm_rsh_args may).
while (($#)) && [[ $1 == -* ]]; do
  case $1 in
    -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;
    *) shift ;;
  esac
done
(($#)) || die "usage: agent.sh [options] HOST [COMMAND...]"
host=$1
shift
read -r name _ pid start < <(awk -v h="$host" '$1 == h || $2 == h { print; exit }' "$state/nodes") || true
[[ -n ${pid:-} ]] || die "unknown host '$host' (nodes: $(awk '{ printf "%s ", $1 }' "$state/nodes"))"
holder_is "$pid" "$state" "$name" "${start:-}" || die "node $name is down (holder $pid gone; run up.sh again)"
inside=$(nsenter -t "$pid" -u hostname)
printf '%s %s %s %s\n' "$(date +%T.%N)" "$host" "$inside" "${*:-(shell)}" >>"$state/agent.log"

env=(env -i "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=${HOME:-/root}"
  "USER=$(id -un)" "LOGNAME=$(id -un)" "SHELL=/bin/sh" "SIM_NODE=$name")
[[ ${SIM_NODES_KEEP_ENV:-0} == 1 ]] && env=(env "SIM_NODE=$name")
if (($#)); then
  exec nsenter -t "$pid" -n -u -m -r --wd="${HOME:-/}" -- "${env[@]}" /bin/sh -c "$*"
else
  exec nsenter -t "$pid" -n -u -m -r --wd="${HOME:-/}" -- "${env[@]}" "TERM=${TERM:-dumb}" /bin/bash -l
fi
