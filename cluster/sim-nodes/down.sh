#!/usr/bin/env bash
# Removes the simulated nodes of STATE_DIR: ends every process inside their network namespaces (orted, ranks,
# shells — SIGTERM, then SIGKILL after 3 s), then the holders, whereupon the kernel removes the namespaces with
# their veth pairs, bridge, addresses and bind mounts. Idempotent; never touches processes outside those namespaces,
# and only holders that are still the processes up.sh started (start time and command line, lib.sh). Keeps STATE_DIR's logs (agent.log); removes the rest
# of what up.sh wrote.
# Usage: cluster/sim-nodes/down.sh STATE_DIR
set -uo pipefail
(($# == 1)) || { echo "sim-nodes/down.sh: usage: down.sh STATE_DIR" >&2; exit 2; }
state=$1
[[ -d $state ]] || exit 0
state=$(cd "$state" && pwd)
# shellcheck source=cluster/sim-nodes/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_private "$state" || { echo "sim-nodes/down.sh: refusing $state" >&2; exit 2; }

holders=()   # "NAME PID" of holders still alive and ours
for f in "$state/switch" "$state/nodes"; do
  [[ -f $f ]] || continue
  while read -r name a b c; do
    # switch lines: "switch PID START"; node lines: "NAME IP PID START"
    if [[ $name == switch ]]; then pid=$a start=$b; else pid=$b start=$c; fi
    holder_is "$pid" "$state" "$name" "$start" && holders+=("$name $pid")
  done <"$f"
done

# The holders' namespaces (a live holder keeps its namespace, so these ids are not stale); then the holders go, and
# every process still inside one of those namespaces is ended. A namespace lives as long as a process is in it,
# so the ids stay valid until the sweep below has emptied them.
nslist=" "
me=$(readlink /proc/self/ns/net)
for h in "${holders[@]}"; do
  ns=$(readlink "/proc/${h#* }/ns/net" 2>/dev/null) || continue
  [[ $ns == "$me" ]] || nslist+="$ns "
done
for h in "${holders[@]}"; do kill -KILL "${h#* }" 2>/dev/null; done
members() {  # pids inside our namespaces, one find for all of /proc
  find /proc/[0-9]*/ns/net -maxdepth 0 -printf '%l %p\n' 2>/dev/null |
    awk -v nss="$nslist" -v me="$$" '{ split($2, p, "/") } index(nss, " " $1 " ") && p[3] != me { print p[3] }'
}
if [[ $nslist != " " ]]; then
  pids=$(members)
  if [[ -n $pids ]]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    for ((i = 0; i < 30; i++)); do
      pids=$(members)
      [[ -z $pids ]] && break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
  fi
fi
rm -f "$state/switch" "$state/nodes" "$state/hostfile" "$state/hosts" "$state/agent" "$state/mpirun-args"
exit 0
