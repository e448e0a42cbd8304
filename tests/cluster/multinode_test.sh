#!/usr/bin/env bash
# Multi-node training for real, on one machine: two simulated nodes (network namespaces with their own hostnames,
# joined by a bridge: cluster/sim-nodes) and Open MPI over TCP between them.
#   1. launch/train-hosts.sh puts ranks 0-1 on node1 and 2-3 on node2 (a probe binary in place of the trainer
#      reports each rank's hostname); NCCL_*/SHARDGAN_* reach the remote ranks through mpirun -x (the launch agent
#      gives remote commands a fresh environment, as ssh does), and arguments with blanks arrive intact;
#   2. shardgan-train 2 nodes x 2 ranks (train-hosts.sh) and 4 ranks on one node (launch/train-local.sh) train the
#      same 20 steps of a tiny conditional DCGAN (dropout on, runtime.threads = 1) on the real Fashion-MNIST test
#      split; every exported parameter and buffer must agree within 1e-5 relative (bit-identical is reported);
#   3. SIGTERM to train-hosts.sh on node1: every rank on both nodes checkpoints after the current step, exit 75;
#      --resume auto across the nodes continues from that step.
# Usage: multinode_test.sh SHARDGAN_TRAIN SHARDGAN_PACK SHARDGAN_SAMPLE SOURCE_DIR
# Exit codes: 0 pass; 77 skipped (not root, or the kernel refuses namespaces here: the reason is printed);
#   1 fail (with the tails of the logs); 2 bad arguments.
# Environment: SHARDGAN_MPIRUN (mpirun to use), SHARDGAN_KEEP_TMP=1 keeps the temp folder for a look.
set -euo pipefail
# shellcheck source=tests/support/tiny_model.sh
source "$(dirname "$0")/../support/tiny_model.sh"
(($# == 4)) || { echo "usage: multinode_test.sh SHARDGAN_TRAIN SHARDGAN_PACK SHARDGAN_SAMPLE SOURCE_DIR" >&2; exit 2; }
train=$1 pack=$2 sample=$3 src=$4
for b in "$train" "$pack" "$sample"; do [[ -x $b ]] || { echo "FAIL: not an executable: $b" >&2; exit 2; }; done
[[ -x $src/launch/train-hosts.sh && -x $src/cluster/sim-nodes/up.sh ]] ||
  { echo "FAIL: not the source tree: $src" >&2; exit 2; }
sim=$src/cluster/sim-nodes
# The launchers read these; only what this test sets below may reach them.
unset SHARDGAN_MPIRUN_ARGS SHARDGAN_NP SHARDGAN_PASS_ENV SHARDGAN_GPUS SHARDGAN_BUILD_DIR OMP_NUM_THREADS
export SHARDGAN_TRAIN=$train

# shellcheck source=tests/cluster/sim_common.sh
source "$(dirname "$0")/sim_common.sh"
sim_require
skip() { echo "SKIP: $*"; exit 77; }

tmp=$(mktemp -d /tmp/shardgan-multinode-XXXXXX)
cleanup() {
  local rc=$? p
  set +e
  trap - EXIT INT TERM
  for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null; done  # this shell's jobs that still run
  "$sim/down.sh" "$tmp/sim" >/dev/null 2>&1                    # ends everything still running inside the nodes
  "$sim/down.sh" "$tmp/shaped" >/dev/null 2>&1
  for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null; done
  if [[ ${SHARDGAN_KEEP_TMP:-0} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
fail() {
  echo "FAIL: $*"
  local f
  for f in "$tmp"/*.log "$tmp/sim/agent.log"; do [[ -f $f ]] && { echo "--- $f"; tail -8 "$f" | cut -c1-300; }; done
  exit 1
}
t0=$SECONDS
say() { printf '[%3ds] %s\n' $((SECONDS - t0)) "$*"; }

# Runs a command in the background (its pid in $job), output to $tmp/NAME.log.
start() {  # NAME COMMAND...
  local name=$1
  shift
  "$@" >"$tmp/$name.log" 2>&1 &
  job=$!
}
wait_job() {  # LIMIT_S -> $rc; a job still running after LIMIT_S fails the test
  local limit=$1 i
  for ((i = 0; i < limit * 10; i++)); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$job" 2>/dev/null && fail "still running after $limit s: $(tr '\0' ' ' <"/proc/$job/cmdline")"
  rc=0
  wait "$job" || rc=$?
}
run() {  # NAME LIMIT_S COMMAND... ; fails unless it exits 0
  local name=$1 limit=$2
  shift 2
  start "$name" "$@"
  wait_job "$limit"
  ((rc == 0)) || fail "$name: exit code $rc"
}
wait_for() {  # FILE SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do [[ -e $1 ]] && return 0; sleep 0.1; done
  return 1
}

# Nodes. up.sh exits 77 (with the reason) where the kernel refuses namespaces, veth pairs or bridges.
rc=0
SIM_NODES_OWNER=$$ SIM_NODES_SLOTS=2 "$sim/up.sh" 2 "$tmp/sim" >"$tmp/up.log" 2>&1 || rc=$?
if ((rc == 77)); then skip "$(tail -1 "$tmp/up.log")"; fi
((rc == 0)) || fail "cluster/sim-nodes/up.sh: exit code $rc"
say "2 simulated nodes up: $(awk '{ printf "%s=%s ", $1, $2 }' "$tmp/sim/nodes")"
mpi_args=$(cat "$tmp/sim/mpirun-args")
on_node1() { "$sim/exec.sh" "$tmp/sim" node1 "$@"; }   # like logging in to the first node of an allocation
orteds_on_node2() { grep -cE '^[^ ]* node2 node2 .*(orted|prted)' "$tmp/sim/agent.log" || true; }

"$pack" fashion-mnist --split test --size 16 --out "$tmp/data" >"$tmp/pack.log" 2>&1 || fail "packing"
{ tiny_model_toml "$tmp/data"; cat <<TOML
[train]
batch_size = 16
epochs = 1000
max_steps = 20
log_every = 5
[output]
checkpoint_every_steps = 20
sample_every_epochs = 1000
[runtime]
device = "cpu"
threads = 1
[comm]
timeout_s = 30
TOML
} >"$tmp/tiny.toml"

# 1. Placement, environment and arguments, with a probe in place of the trainer.
cat >"$tmp/probe.sh" <<'PROBE'
#!/bin/bash
echo "probe rank=$OMPI_COMM_WORLD_RANK host=$(hostname) local=$OMPI_COMM_WORLD_LOCAL_RANK/$OMPI_COMM_WORLD_LOCAL_SIZE" \
  "nccl=${NCCL_SOCKET_IFNAME:-unset},${NCCL_IB_DISABLE:-unset},${NCCL_DEBUG:-unset}" \
  "token=${SHARDGAN_PROBE_TOKEN:-unset}" \
  "other=${MULTINODE_NOT_PASSED:-unset} nargs=$# last=${!#}"
PROBE
chmod +x "$tmp/probe.sh"
run probe 60 env SHARDGAN_TRAIN="$tmp/probe.sh" SHARDGAN_MPIRUN_ARGS="$mpi_args" NCCL_SOCKET_IFNAME=eth0 \
  NCCL_IB_DISABLE=1 NCCL_DEBUG=WARN SHARDGAN_PROBE_TOKEN=t0k3n MULTINODE_NOT_PASSED=1 \
  "$sim/exec.sh" "$tmp/sim" node1 "$src/launch/train-hosts.sh" "$tmp/sim/hostfile" "$tmp/tiny.toml" --set "a b"
grep -q '^+ .* --hostfile ' "$tmp/probe.log" || fail "train-hosts.sh did not print its mpirun command"
for r in 0 1 2 3; do
  line=$(grep "^probe rank=$r " "$tmp/probe.log") || fail "probe: no output from rank $r"
  host=node$((r / 2 + 1))
  [[ $line == *" host=$host local=$((r % 2))/2 "* ]] ||
    fail "probe: rank $r not on $host as local rank $((r % 2))/2: $line"
  [[ $line == *" nccl=eth0,1,WARN token=t0k3n "* ]] || fail "probe: NCCL_*/SHARDGAN_* did not reach rank $r: $line"
  [[ $line == *" nargs=4 last=a b" ]] || fail "probe: arguments mangled on rank $r: $line"
  if [[ $host == node2 ]]; then
    # The agent starts remote commands with a fresh environment, like ssh: only -x variables get there.
    [[ $line == *" other=unset "* ]] || fail "probe: rank $r on node2 inherited the launching shell's environment"
  fi
done
(($(orteds_on_node2) >= 1)) || fail "the agent never started orted/prted on node2"
say "ok 1: train-hosts.sh: ranks 0,1 on node1 and 2,3 on node2; NCCL_*/SHARDGAN_* passed with -x; args intact"

# 2. The same 20 steps on 2 nodes x 2 ranks and on 1 node x 4 ranks.
run dryrun 60 env SHARDGAN_MPIRUN_ARGS="$mpi_args" \
  "$sim/exec.sh" "$tmp/sim" node1 "$src/launch/train-hosts.sh" "$tmp/sim/hostfile" "$tmp/tiny.toml" --dry-run
grep -q "4 rank(s), 2 on this node (node1)" "$tmp/dryrun.log" ||
  fail "dry run: rank 0 does not see 4 ranks with 2 on node1: $(grep 'world size' "$tmp/dryrun.log")"
before=$(orteds_on_node2)
run train-2x2 120 env SHARDGAN_MPIRUN_ARGS="$mpi_args" \
  "$sim/exec.sh" "$tmp/sim" node1 "$src/launch/train-hosts.sh" "$tmp/sim/hostfile" "$tmp/tiny.toml" \
  --run-dir "$tmp/run-2x2"
(($(orteds_on_node2) > before)) || fail "the 2x2 run started no orted/prted on node2"
say "2x2 trained"
run train-4x1 120 "$src/launch/train-local.sh" 4 "$tmp/tiny.toml" --run-dir "$tmp/run-4x1"
say "4x1 trained"
for r in 2x2 4x1; do
  grep -q "done, 20 steps" "$tmp/train-$r.log" || fail "$r: no 'done, 20 steps'"
  run "export-$r" 60 "$sample" --checkpoint "$tmp/run-$r" --export-weights "$tmp/weights-$r.h5" --n 1
done
say "ok 2: 20 steps trained on 2 nodes x 2 ranks (TCP between the nodes) and on 1 node x 4 ranks"
/usr/bin/python3 - "$tmp/weights-2x2.h5" "$tmp/weights-4x1.h5" >"$tmp/compare.log" 2>&1 <<'PY' || fail "weights differ"
import sys
import h5py
import numpy as np

def load(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out

a, b = load(sys.argv[1]), load(sys.argv[2])
if set(a) != set(b):
    sys.exit(f"different tensors: only 2x2 {sorted(set(a) - set(b))}, only 4x1 {sorted(set(b) - set(a))}")
if not any(k.startswith("generator/") for k in a) or not any(k.startswith("discriminator/") for k in a):
    sys.exit(f"export lacks generator/ or discriminator/ tensors: {sorted(a)}")
identical, worst, worst_name, bad = 0, 0.0, "", []
for name in sorted(a):
    x, y = np.asarray(a[name], np.float64), np.asarray(b[name], np.float64)
    if x.shape != y.shape:
        sys.exit(f"{name}: shape {x.shape} vs {y.shape}")
    if np.array_equal(x, y):
        identical += 1
        continue
    # relative to the tensor's largest magnitude, so that entries near 0 do not blow the ratio up
    rel = float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(x))), 1e-12))
    if rel > worst:
        worst, worst_name = rel, name
    if rel > 1e-5:
        bad.append(f"{name} ({rel:.2e})")
print(f"{len(a)} tensors ({sum(x.size for x in a.values())} values): {identical} bit-identical; "
      f"max relative difference {worst:.3g}{' in ' + worst_name if worst_name else ''}")
if bad:
    sys.exit("beyond 1e-5 relative: " + ", ".join(bad))
PY
say "ok 2: parameters and buffers agree: $(tail -1 "$tmp/compare.log")"

# 3. SIGTERM to the launcher on node1 reaches the ranks on both nodes as SIGUSR1: checkpoint, exit 75; then resume.
start usr1 env SHARDGAN_MPIRUN_ARGS="$mpi_args" \
  "$sim/exec.sh" "$tmp/sim" node1 "$src/launch/train-hosts.sh" "$tmp/sim/hostfile" "$tmp/tiny.toml" \
  --run-dir "$tmp/run-sig" --set train.max_steps=1000000
wait_for "$tmp/run-sig/metrics.jsonl" 60 || fail "signal run: training did not start"
kill -TERM "$job"   # exec.sh execs nsenter, which execs train-hosts.sh: $job is the launcher
wait_job 60
((rc == 75)) || fail "signal run: exit code $rc, expected 75"
step=$(sed -n 's/.*stopped by a signal after step \([0-9]*\).*/\1/p' "$tmp/usr1.log" | head -1)
[[ -n $step ]] || fail "signal run: no 'stopped by a signal' message"
ckpt=$(printf "%s/run-sig/checkpoints/step-%06d/state.json" "$tmp" "$step")
[[ -f $ckpt ]] || fail "signal run: no checkpoint at step $step"
run resume 120 env SHARDGAN_MPIRUN_ARGS="$mpi_args" \
  "$sim/exec.sh" "$tmp/sim" node1 "$src/launch/train-hosts.sh" "$tmp/sim/hostfile" "$tmp/tiny.toml" \
  --run-dir "$tmp/run-sig" --resume auto --set train.max_steps=$((step + 3))
grep -q "(step $step)" "$tmp/resume.log" || fail "resume did not start from step $step"
say "ok 3: SIGTERM to train-hosts.sh -> all ranks on 2 nodes checkpointed at step $step, exit 75; resumed across nodes"

# 4. Shaped links: SIM_NODES_RATE puts a tbf on each node's eth0, and a transfer between the nodes then takes as long
# as the rate says (bench/network_bench.sh relies on it). A malformed rate is refused before anything is made.
rc=0
SIM_NODES_RATE=fast "$sim/up.sh" 2 "$tmp/bad" >"$tmp/bad.log" 2>&1 || rc=$?
((rc == 2)) && grep -q "SIM_NODES_RATE must be like" "$tmp/bad.log" || fail "SIM_NODES_RATE=fast: exit $rc"
[[ ! -e $tmp/bad ]] || fail "SIM_NODES_RATE=fast: up.sh made its folder before refusing"
rc=0
SIM_NODES_OWNER=$$ SIM_NODES_SUBNET=10.78.0 SIM_NODES_RATE=100mbit "$sim/up.sh" 2 "$tmp/shaped" >"$tmp/shaped.log" \
  2>&1 || rc=$?
if ((rc == 77)); then
  say "note: shaped links not exercised: $(tail -1 "$tmp/shaped.log")"
  exit 0
fi
((rc == 0)) || fail "SIM_NODES_RATE=100mbit: up.sh exit code $rc"
"$sim/exec.sh" "$tmp/shaped" node1 tc qdisc show dev eth0 | grep -q "tbf .*rate 100Mbit" ||
  fail "no 100 Mbit/s tbf on node1's eth0: $("$sim/exec.sh" "$tmp/shaped" node1 tc qdisc show dev eth0)"
# 4 MB from node2 to node1: at least 0.32 s at 100 Mbit/s (a few ms on an unshaped veth).
"$sim/exec.sh" "$tmp/shaped" node1 /usr/bin/python3 -c '
import socket, time
s = socket.create_server(("10.78.0.1", 5077))
c, _ = s.accept()
t, n = time.monotonic(), 0
while True:
    b = c.recv(1 << 16)
    if not b: break
    n += len(b)
print(n, time.monotonic() - t)' >"$tmp/recv.log" 2>&1 &
server=$!
"$sim/exec.sh" "$tmp/shaped" node2 /usr/bin/python3 -c '
import socket, time
for _ in range(100):
    try:
        c = socket.create_connection(("10.78.0.1", 5077)); break
    except OSError: time.sleep(0.05)
c.sendall(b"x" * 4000000); c.close()' >"$tmp/send.log" 2>&1 || fail "sending 4 MB from node2 to node1"
wait "$server" || fail "receiving on node1"
read -r bytes secs <"$tmp/recv.log"
((bytes == 4000000)) || fail "node1 received $bytes bytes, expected 4000000"
awk -v s="$secs" 'BEGIN { exit !(s >= 0.25) }' || fail "4 MB took $secs s on a 100 Mbit/s link (expected >= 0.32 s)"
say "ok 4: SIM_NODES_RATE=100mbit: tbf on eth0, 4 MB between the nodes in $secs s ($(awk -v s="$secs" 'BEGIN { printf "%.0f", 32 / s }') Mbit/s)"
