#!/usr/bin/env bash
# Starts N simulated nodes on this machine: each node is a set of Linux namespaces (network, UTS = its own
# hostname, mount = its own /etc/hosts) held open by a sleeping "holder" process; the nodes' eth0 (a veth pair each)
# meet on a bridge in one more namespace (the switch). Nothing is added to the machine's own network namespace,
# /etc/hosts or /run/netns; only the private addresses SUBNET.1 .. SUBNET.N (inside the new namespaces) are used.
# Usage: cluster/sim-nodes/up.sh N STATE_DIR          (as root; 1 <= N <= 200)
#   STATE_DIR   created if missing; gets everything the nodes need and the files to use them:
#     hostfile      Open MPI hostfile: "node1 slots=2" ... (names resolve inside the nodes)
#     hosts         the /etc/hosts every node sees (bind-mounted in the node's own mount namespace)
#     nodes         one line per node: NAME IP HOLDER_PID
#     agent         Open MPI launch agent for these nodes (--mca plm_rsh_agent STATE_DIR/agent)
#     mpirun-args   the mpirun arguments for the nodes (agent, btl, TCP on the nodes' subnet only, ranks yield
#                   the CPU while they wait); e.g.
#                   SHARDGAN_MPIRUN_ARGS="$(cat STATE_DIR/mpirun-args)" cluster/sim-nodes/exec.sh STATE_DIR node1 \
#                     launch/train-hosts.sh STATE_DIR/hostfile CONFIG ...
#     agent.log     one line per command the agent ran on a node (which node, which hostname, what)
# Environment:
#   SIM_NODES_SLOTS    slots per node in the hostfile (default 2)
#   SIM_NODES_SUBNET   first three octets of the nodes' /24 (default 10.77.0; must be a private range)
#   SIM_NODES_PREFIX   node name prefix (default node: node1, node2, ...)
#   SIM_NODES_OWNER    a process id: the holders exit when it ends (a test passes its own $$ so that nothing
#                      outlives it, even after SIGKILL)
#   SIM_NODES_BTL      the btl list in mpirun-args (default self,vader,tcp: shared memory within a node, TCP between
#                      nodes — each node has its own hostname, which vader needs)
#   SIM_NODES_RATE     shape every node's link to this rate (tc tbf on each node's eth0, egress: a full-duplex NIC of
#                      that speed), e.g. 1gbit, 10gbit, 100mbit; default: unshaped (veth runs at memory speed)
#   SIM_NODES_DELAY    one-way latency added on each node's eth0, e.g. 50us (tc netem, under the tbf); needs the
#                      kernel's sch_netem: where it is missing up.sh says so and exits 77
# Exit codes: 0 up; 77 the kernel refuses namespaces/veth/bridges here (message says why); 2 bad input; 1 other.
# Tear down with cluster/sim-nodes/down.sh STATE_DIR (idempotent; up.sh calls it itself when it fails).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "sim-nodes/up.sh: $*" >&2; exit 2; }

(($# == 2)) || die "usage: up.sh N STATE_DIR"
n=$1 state=$2
if ! [[ $n =~ ^[1-9][0-9]*$ ]] || ((n > 200)); then die "N must be 1..200, got '$n'"; fi
slots=${SIM_NODES_SLOTS:-2}
[[ $slots =~ ^[1-9][0-9]*$ ]] || die "SIM_NODES_SLOTS must be a positive integer, got '$slots'"
subnet=${SIM_NODES_SUBNET:-10.77.0}
[[ $subnet =~ ^(10\.[0-9]{1,3}\.[0-9]{1,3}|192\.168\.[0-9]{1,3}|172\.(1[6-9]|2[0-9]|3[01])\.[0-9]{1,3})$ ]] ||
  die "SIM_NODES_SUBNET must be the first three octets of a private /24 (10.x.y, 172.16-31.x, 192.168.x), got '$subnet'"
prefix=${SIM_NODES_PREFIX:-node}
[[ $prefix =~ ^[a-z][a-z0-9-]*$ ]] || die "SIM_NODES_PREFIX must be a lowercase hostname prefix, got '$prefix'"
owner=${SIM_NODES_OWNER:-}
[[ -z $owner || $owner =~ ^[0-9]+$ ]] || die "SIM_NODES_OWNER must be a process id, got '$owner'"
btl=${SIM_NODES_BTL:-self,vader,tcp}
rate=${SIM_NODES_RATE:-}
delay=${SIM_NODES_DELAY:-}
[[ -z $rate || $rate =~ ^[1-9][0-9]*(kbit|mbit|gbit)$ ]] || die "SIM_NODES_RATE must be like 100mbit, 1gbit, 10gbit, got '$rate'"
[[ -z $delay || $delay =~ ^[1-9][0-9]*(us|ms)$ ]] || die "SIM_NODES_DELAY must be like 50us or 2ms, got '$delay'"
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, veth pairs, bind mounts)"
tools=(unshare nsenter ip mount)
[[ -n $rate$delay ]] && tools+=(tc)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || die "$tool not found (util-linux, iproute2)"
done
mkdir -p "$state"
state=$(cd "$state" && pwd)
# shellcheck source=cluster/sim-nodes/lib.sh
source "$here/lib.sh"
require_private "$state" || die "refusing $state"
[[ $state =~ ^[A-Za-z0-9_./+-]+$ ]] || die "STATE_DIR must have a plain path (no blanks or quotes): $state"
[[ -e $state/nodes || -e $state/switch ]] && die "$state already holds simulated nodes (run down.sh first)"

# Can this kernel do it at all? (containers without CAP_SYS_ADMIN, kernels without veth/bridge: exit 77)
refuse() { echo "sim-nodes/up.sh: cannot simulate nodes here: $*" >&2; exit 77; }
if ! err=$(unshare --uts --net --mount -- true 2>&1); then refuse "unshare --uts --net --mount: ${err:-failed}"; fi
if ! err=$(unshare --net -- sh -c 'ip link add b0 type bridge && ip link add v0 type veth peer name v1' 2>&1); then
  refuse "veth/bridge in a network namespace: ${err:-failed}"
fi
# Link shaping: tbf for the rate (burst: 2 ms at that rate, at least 128 KiB so that a 64 KiB GSO packet passes;
# queue: 50 ms), netem for the latency.
shape=()
if [[ -n $rate ]]; then
  bits=${rate%bit}
  case $bits in *k) bits=$((${bits%k} * 1000)) ;; *m) bits=$((${bits%m} * 1000000)) ;; *g) bits=$((${bits%g} * 1000000000)) ;; esac
  burst=$((bits / 8 / 500))
  ((burst >= 131072)) || burst=131072
  shape=(tbf rate "$rate" burst "$burst" latency 50ms)
fi
probe() {  # VARIABLE QDISC ARGS... → refuses (77) where the kernel lacks the qdisc
  local variable=$1
  shift
  if ! err=$(unshare --net -- sh -c "ip link add v0 type veth peer name v1 && tc qdisc add dev v0 root $*" 2>&1); then
    refuse "SIM_NODES_$variable needs tc qdisc $1 (kernel module sch_$1): ${err:-failed}"
  fi
}
if [[ -n $rate ]]; then probe RATE "${shape[@]}"; fi
if [[ -n $delay ]]; then probe DELAY netem delay "$delay"; fi

ok=0
trap '((ok)) || "$here/down.sh" "$state" >/dev/null 2>&1 || true' EXIT

# A holder: a process in fresh namespaces that only waits (for SIM_NODES_OWNER, or forever). Its command line
# carries "sim-nodes:STATE:NAME" so that down.sh kills only its own holders.
start_holder() {  # NAME NAMESPACE-FLAGS... -> prints the holder's pid
  local name=$1 pid i self_ns
  shift
  # shellcheck disable=SC2016  # $1 is the holder's own argument
  unshare "$@" -- bash -c 'while [ -z "$1" ] || kill -0 "$1" 2>/dev/null; do sleep 1; done' \
    "sim-nodes:$state:$name" "$owner" </dev/null >/dev/null 2>&1 &
  pid=$!
  self_ns=$(readlink /proc/self/ns/net)
  for ((i = 0; i < 100; i++)); do
    ns=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || { echo "sim-nodes/up.sh: holder for $name died" >&2; exit 1; }
    [[ $ns != "$self_ns" ]] && { echo "$pid"; return 0; }
    sleep 0.05
  done
  echo "sim-nodes/up.sh: holder for $name did not enter its namespaces" >&2
  exit 1
}
in_ns() {  # HOLDER_PID NSENTER-ARGS... (one clear line when it fails; the EXIT trap then removes what exists)
  local pid=$1
  shift
  nsenter -t "$pid" -r "$@" || { echo "sim-nodes/up.sh: failed in the namespaces of holder $pid: $*" >&2; return 1; }
}

sw=$(start_holder switch --net --uts)
echo "switch $sw $(proc_start "$sw")" >"$state/switch"
in_ns "$sw" -u hostname sim-switch
in_ns "$sw" -n ip link add br0 type bridge
in_ns "$sw" -n ip link set br0 up

{
  echo "127.0.0.1 localhost"
  echo "::1 localhost ip6-localhost ip6-loopback"
  for ((i = 1; i <= n; i++)); do echo "$subnet.$i $prefix$i"; done
} >"$state/hosts"
: >"$state/hostfile"
: >"$state/agent.log"
for ((i = 1; i <= n; i++)); do
  name=$prefix$i ip=$subnet.$i
  pid=$(start_holder "$name" --net --uts --mount)
  echo "$name $ip $pid $(proc_start "$pid")" >>"$state/nodes"
  in_ns "$pid" -u hostname "$name"
  in_ns "$pid" -m mount --bind "$state/hosts" /etc/hosts
  in_ns "$sw" -n ip link add "v$i" type veth peer name eth0 netns "$pid"
  in_ns "$sw" -n ip link set "v$i" master br0 up
  in_ns "$pid" -n ip link set lo up
  in_ns "$pid" -n ip addr add "$ip/24" dev eth0
  in_ns "$pid" -n ip link set eth0 up
  if [[ -n $delay ]]; then
    in_ns "$pid" -n tc qdisc add dev eth0 root handle 1: netem delay "$delay"
    [[ -n $rate ]] && in_ns "$pid" -n tc qdisc add dev eth0 parent 1:1 handle 10: "${shape[@]}"
  elif [[ -n $rate ]]; then
    in_ns "$pid" -n tc qdisc add dev eth0 root "${shape[@]}"
  fi
  echo "$name slots=$slots" >>"$state/hostfile"
done
# Links come up asynchronously; wait until every node's eth0 reports UP.
while read -r name ip pid _; do
  for ((i = 0; i < 100; i++)); do
    [[ $(in_ns "$pid" -n ip -br link show eth0) == *" UP "* ]] && break
    sleep 0.05
  done
  ((i < 100)) || { echo "sim-nodes/up.sh: $name: eth0 did not come up" >&2; exit 1; }
done <"$state/nodes"

cat >"$state/agent" <<AGENT
#!/bin/sh
SIM_NODES_STATE=$state exec $here/agent.sh "\$@"
AGENT
chmod 755 "$state/agent"
# mpi_yield_when_idle: the nodes share this machine's cores, but Open MPI sees only each node's slots and would let
# waiting ranks spin (measured: 10x slower steps with 4 ranks on 2 real cores).
echo "--mca plm_rsh_agent $state/agent --mca btl $btl --mca btl_tcp_if_include $subnet.0/24" \
  "--mca oob_tcp_if_include $subnet.0/24 --mca mpi_yield_when_idle 1" >"$state/mpirun-args"
# shellcheck disable=SC2034  # read by the EXIT trap
ok=1

echo "sim-nodes: $n node(s) up in $state (switch holder $sw)${rate:+, links shaped to $rate}${delay:+, $delay latency}:"
while read -r name ip pid _; do echo "  $name  $ip  holder $pid"; done <"$state/nodes"
cat <<MSG
hostfile:     $state/hostfile
mpirun args:  $(cat "$state/mpirun-args")
a shell on a node:  $here/exec.sh $state ${prefix}1
tear down:          $here/down.sh $state
MSG
