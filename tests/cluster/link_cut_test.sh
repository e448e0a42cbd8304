#!/usr/bin/env bash
# A node's network link cut in the middle of multi-node training (issue "faults"), on two simulated nodes
# (cluster/sim-nodes: network namespaces joined by a bridge) x 2 ranks, Open MPI over TCP, launched as
# tests/cluster/multinode_test.sh does (launch/train-hosts.sh on node1), comm.timeout_s = 5, N = 200 steps:
#   0. the reference: N steps without a fault;
#   1. once the run has written its first checkpoint (step 20), node2's link goes down inside node2
#      (ip link set eth0 down), with the nodes' own mpirun arguments;
#   2. --resume auto (link restored) continues from the newest checkpoint, and once it has written one of its own,
#      node1's link goes down on the host side of its veth (its port on the bridge, in the switch namespace); this
#      run's mpirun gets OOB keepalives (idle 1 s, 3 probes 1 s apart);
#   3. --resume auto to step N: every exported parameter and buffer (shardgan-sample --export-weights) must be
#      bit-identical to the reference's.
# After each cut every rank must end within comm.timeout_s + 10 s, either by the watchdog (exit 70 and its message:
# rank, operation, step) or killed by Open MPI after mpirun printed "ORTE has lost communication with a remote
# daemon" (which happened is printed), the launcher must exit non-zero, and no process may be left on either node.
# The launcher must end within the same bound while the link is still down in 2. In 1 it may instead wait for the
# link (Open MPI 4.1 with default OOB settings: mpirun's message to the cut-off daemon sits in TCP retransmission,
# about 15 minutes), and must then end within 60 s of the link's return.
# Each rank runs under a small wrapper that records its exit code and time and copies its stderr to a file: the
# ranks' output reaches mpirun only through the cut link (a cut-off node's lines arrive once the link is back).
# Usage: link_cut_test.sh SHARDGAN_TRAIN SHARDGAN_PACK SHARDGAN_SAMPLE SOURCE_DIR
# Exit codes: 0 pass; 77 skipped (not root, or the kernel refuses namespaces here: the reason is printed);
#   1 fail (with the tails of the logs); 2 bad arguments.
# Environment: SHARDGAN_MPIRUN (mpirun to use), SHARDGAN_KEEP_TMP=1 keeps the temp folder for a look.
set -euo pipefail
# shellcheck source=tests/support/tiny_model.sh
source "$(dirname "$0")/../support/tiny_model.sh"
(($# == 4)) || { echo "usage: link_cut_test.sh SHARDGAN_TRAIN SHARDGAN_PACK SHARDGAN_SAMPLE SOURCE_DIR" >&2; exit 2; }
train=$1 pack=$2 sample=$3 src=$4
for b in "$train" "$pack" "$sample"; do [[ -x $b ]] || { echo "FAIL: not an executable: $b" >&2; exit 2; }; done
[[ -x $src/launch/train-hosts.sh && -x $src/cluster/sim-nodes/up.sh ]] ||
  { echo "FAIL: not the source tree: $src" >&2; exit 2; }
sim=$src/cluster/sim-nodes
unset SHARDGAN_MPIRUN_ARGS SHARDGAN_NP SHARDGAN_PASS_ENV SHARDGAN_GPUS SHARDGAN_BUILD_DIR OMP_NUM_THREADS
timeout_s=5           # comm.timeout_s
bound=$((timeout_s + 10))
steps=200             # N; ~35 steps/s on 2 cores, so a cut lands long before the end

# shellcheck source=tests/cluster/sim_common.sh
source "$(dirname "$0")/sim_common.sh"
sim_require
skip() { echo "SKIP: $*"; exit 77; }

tmp=$(mktemp -d /tmp/shardgan-linkcut-XXXXXX)
cleanup() {
  local rc=$? p
  set +e
  trap - EXIT INT TERM
  for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null; done
  "$sim/down.sh" "$tmp/sim" >/dev/null 2>&1   # ends everything still running inside the nodes
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
  for f in "$tmp"/*.log "$tmp"/ranks-*/*.err; do
    [[ -f $f ]] && { echo "--- $f"; grep -v '^step ' "$f" | tail -12 | cut -c1-300; }
  done
  exit 1
}
t0=$SECONDS
say() { printf '[%3ds] %s\n' $((SECONDS - t0)) "$*"; }
now() { echo "${EPOCHREALTIME/[.,]/.}"; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }   # FROM TO -> seconds, 1 decimal

start() {  # NAME COMMAND... -> background job, pid in $job, output in $tmp/NAME.log
  local name=$1
  shift
  "$@" >"$tmp/$name.log" 2>&1 &
  job=$!
}
wait_job() {  # LIMIT_S -> $rc
  local limit=$1 i
  for ((i = 0; i < limit * 10; i++)); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$job" 2>/dev/null && fail "still running after $limit s: $(tr '\0' ' ' <"/proc/$job/cmdline")"
  rc=0
  wait "$job" || rc=$?
}
wait_for() {  # FILE SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do [[ -e $1 ]] && return 0; sleep 0.1; done
  return 1
}

rc=0
SIM_NODES_OWNER=$$ SIM_NODES_SLOTS=2 "$sim/up.sh" 2 "$tmp/sim" >"$tmp/up.log" 2>&1 || rc=$?
if ((rc == 77)); then skip "$(tail -1 "$tmp/up.log")"; fi
((rc == 0)) || fail "cluster/sim-nodes/up.sh: exit code $rc"
mpi_args=$(cat "$tmp/sim/mpirun-args")
holder() { awk -v n="$1" '$1 == n { print $3 }' "$tmp/sim/nodes"; }
switch=$(awk '{ print $2 }' "$tmp/sim/switch")
[[ $(tr '\0' ' ' <"/proc/$switch/cmdline") == *"sim-nodes:$tmp/sim:switch "* ]] || fail "switch holder $switch?"
holders=" $switch $(holder node1) $(holder node2) "
nets=" "
for h in $(holder node1) $(holder node2); do nets+="$(readlink "/proc/$h/ns/net") "; done
say "2 simulated nodes up: $(awk '{ printf "%s=%s ", $1, $2 }' "$tmp/sim/nodes")"

# The processes inside the nodes but the holders and their sleeps: "PID COMMAND" per line.
on_nodes() {
  local p ns ppid comm
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    ns=$(readlink "/proc/$p/ns/net" 2>/dev/null) || continue
    [[ $nets == *" $ns "* && $holders != *" $p "* ]] || continue
    ppid=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
    [[ $holders == *" $ppid "* ]] && continue
    comm=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120) || continue
    echo "$p $comm"
  done
}

"$pack" fashion-mnist --split test --size 16 --out "$tmp/data" >"$tmp/pack.log" 2>&1 || fail "packing"
{ tiny_model_toml "$tmp/data"; cat <<TOML
[train]
batch_size = 16
epochs = 1000
max_steps = $steps
log_every = 5
[output]
checkpoint_every_steps = 20
sample_every_epochs = 1000
[runtime]
device = "cpu"
threads = 1
[comm]
timeout_s = $timeout_s
TOML
} >"$tmp/tiny.toml"

# The rank wrapper (SHARDGAN_TRAIN of the runs with a cut): the trainer as its child, its stderr also in
# RANKS/rank-R.err; RANKS/rank-R.pid: "TRAINER_PID HOST"; RANKS/rank-R.exit: "CODE TIME" (absent when the wrapper
# itself was killed, as Open MPI does: SIGTERM, then SIGKILL, to the rank's process group).
cat >"$tmp/rank.sh" <<WRAP
#!/bin/bash
d=\$SHARDGAN_TEST_RANKS r=\$OMPI_COMM_WORLD_RANK
"$train" "\$@" 2> >(tee "\$d/rank-\$r.err" >&2) &
echo "\$! \$(hostname)" >"\$d/rank-\$r.pid"
rc=0
wait \$! || rc=\$?
echo "\$rc \${EPOCHREALTIME/[.,]/.}" >"\$d/rank-\$r.exit"
exit \$rc
WRAP
chmod +x "$tmp/rank.sh"

hosts_run() {  # NAME TRAINER ARGS... (background: launch/train-hosts.sh on node1, as multinode_test.sh runs it)
  local name=$1 bin=$2
  shift 2
  start "$name" env SHARDGAN_MPIRUN_ARGS="$mpi_args${extra_args:+ $extra_args}" SHARDGAN_TRAIN="$bin" \
    SHARDGAN_TEST_RANKS="$tmp/ranks-$name" \
    "$sim/exec.sh" "$tmp/sim" node1 "$src/launch/train-hosts.sh" "$tmp/sim/hostfile" "$tmp/tiny.toml" "$@"
}
extra_args=""
alive() {  # PID: running (not gone, not a zombie)
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  [[ ${s:0:1} != Z ]]
}
newest_ckpt() {  # RUN_DIR -> the step of its newest complete checkpoint (0: none)
  local d s=0 n
  for d in "$1"/checkpoints/step-*/state.json; do
    [[ -f $d ]] || continue
    n=${d%/state.json}
    n=$((10#${n##*step-}))
    ((n > s)) && s=$n
  done
  echo "$s"
}

# 0. The reference: N steps, no fault.
hosts_run reference "$train" --run-dir "$tmp/run-ref"
wait_job 120
((rc == 0)) || fail "reference: exit code $rc"
grep -q "done, $steps steps" "$tmp/reference.log" || fail "reference: no 'done, $steps steps'"
say "ok 0: reference: $steps steps on 2 nodes x 2 ranks, no fault"

# cut_run NAME WHERE FROM_STEP STRICT [train-hosts.sh arguments...]
# Trains in $tmp/run-cut from step FROM_STEP (the caller passes --resume auto), cuts WHERE once the checkpoint of
# step FROM_STEP + 20 is written, then checks: every rank ends within $bound s of the cut, by the watchdog (exit 70
# and its message) or killed after Open MPI reported the lost node; the launcher ends with a non-zero code — within
# $bound s (STRICT = 1) or, where it waits for the link (STRICT = 0), within 60 s of the link's return — and nothing
# is left on the nodes. Restores the link; sets $resume_step (the newest checkpoint).
#   WHERE: node2-inside: ip link set eth0 down inside node2; node1-host: node1's veth on the host side (its port on
#   the bridge, in the switch namespace).
cut_run() {
  local name=$1 where=$2 from=$3 strict=$4 r p host code when t_cut t_up="" deadline launcher_end="" alive_n
  local lines="" orte=0 watchdog=0 killed=0 left i t_ranks="" msg what
  shift 4
  local -a cut_cmd up_cmd gone=()
  case $where in
    node2-inside) cut_cmd=(nsenter -t "$(holder node2)" -n ip link set eth0 down)
                  up_cmd=(nsenter -t "$(holder node2)" -n ip link set eth0 up) ;;
    node1-host) cut_cmd=(nsenter -t "$switch" -n ip link set v1 down)
                up_cmd=(nsenter -t "$switch" -n ip link set v1 up) ;;
    *) fail "cut_run: unknown link $where" ;;
  esac
  mkdir -p "$tmp/ranks-$name"
  hosts_run "$name" "$tmp/rank.sh" --run-dir "$tmp/run-cut" "$@"
  wait_for "$(printf '%s/run-cut/checkpoints/step-%06d/state.json' "$tmp" $((from + 20)))" 120 ||
    fail "$name: no checkpoint at step $((from + 20))"
  for r in 0 1 2 3; do wait_for "$tmp/ranks-$name/rank-$r.pid" 5 || fail "$name: rank $r did not start"; done
  t_cut=$(now)
  "${cut_cmd[@]}" || fail "$name: cutting the link ($where)"
  grep -q "done, $steps steps" "$tmp/$name.log" && fail "$name: the run ended before the cut"

  # Ranks (the trainers' pids) and the launcher, every 50 ms, until all ended or the bound passed; once the ranks
  # have ended the launcher gets 3 s more (when it waits for the link, it does so for minutes).
  deadline=$(awk -v t="$t_cut" -v b="$bound" 'BEGIN { printf "%.3f", t + b }')
  while :; do
    [[ -z $launcher_end ]] && ! kill -0 "$job" 2>/dev/null && launcher_end=$(now)
    alive_n=0
    for r in 0 1 2 3; do
      [[ -n ${gone[r]:-} ]] && continue
      read -r p _ <"$tmp/ranks-$name/rank-$r.pid"
      if alive "$p"; then alive_n=$((alive_n + 1)); else gone[r]=$(now); fi
    done
    if ((alive_n == 0)); then
      [[ -n $launcher_end ]] && break
      [[ -z $t_ranks ]] && t_ranks=$(now)
      awk -v t="$(now)" -v r="$t_ranks" 'BEGIN { exit !(t > r + 3) }' && break
    fi
    awk -v t="$(now)" -v d="$deadline" 'BEGIN { exit !(t > d) }' && break
    sleep 0.05
  done

  # What happened to each rank: exit code (or killed), seconds after the cut, node, its error line.
  for r in 0 1 2 3; do
    read -r p host <"$tmp/ranks-$name/rank-$r.pid"
    msg=$(grep -m1 "shardgan-train: error: rank $r: .* did not complete within $timeout_s s (comm.timeout_s)" \
      "$tmp/ranks-$name/rank-$r.err" 2>/dev/null || true)
    if [[ -z ${gone[r]:-} ]]; then
      lines+="    rank $r ($host): STILL RUNNING after $bound s"$'\n'
      continue
    fi
    if [[ -f $tmp/ranks-$name/rank-$r.exit ]]; then
      read -r code when <"$tmp/ranks-$name/rank-$r.exit"
      what="exit $code"
      if ((code > 128)); then  # a signal's 128 + N; Open MPI 5 (PRRTE) may also report others above 128
        sig=$(kill -l $((code - 128)) 2>/dev/null) && what="killed by SIG$sig" || what="ended with $code"
        code=killed
      fi
    else
      code=killed when=${gone[r]} what="killed (SIGTERM/SIGKILL to its process group)"
    fi
    lines+="    rank $r ($host): $what after $(since "$t_cut" "$when") s${msg:+; watchdog: ${msg#*: error: }}"$'\n'
    if [[ $code == 70 && -n $msg ]]; then
      watchdog=$((watchdog + 1))
    elif [[ $code == killed ]]; then
      killed=$((killed + 1))
    else
      lines+="      ^ neither the watchdog's exit 70 with its message nor killed by Open MPI"$'\n'
    fi
  done
  grep -q "ORTE has lost communication with a remote daemon" "$tmp/$name.log" && orte=1
  if [[ -n $launcher_end ]]; then
    wait "$job" && rc=0 || rc=$?
    lines+="    launcher: exit $rc after $(since "$t_cut" "$launcher_end") s (the link still down)"$'\n'
  fi
  echo "$name: link cut ($where) after step $((from + 20))'s checkpoint:"
  printf '%s' "$lines"
  [[ $lines != *"STILL RUNNING"* ]] || fail "$name: a rank did not end within $bound s of the cut"
  [[ $lines != *"^ neither"* ]] || fail "$name: a rank ended otherwise"
  ((killed == 0 || orte)) || fail "$name: ranks were killed, but mpirun did not report the lost node"
  if [[ -z $launcher_end ]]; then
    ((!strict)) || fail "$name: the launcher did not end within $bound s of the cut (the link still down)"
    echo "    launcher: still running $(since "$t_cut" "$(now)") s after the cut, all ranks gone; restoring the link"
  fi

  "${up_cmd[@]}" || fail "$name: restoring the link"
  t_up=$(now)
  if [[ -z $launcher_end ]]; then
    wait_job 60
    echo "    launcher: exit $rc $(since "$t_up" "$(now)") s after the link came back" \
      "($(since "$t_cut" "$(now)") s after the cut)"
  fi
  ((rc != 0)) || fail "$name: the launcher exited 0 after a cut"
  # Nothing may stay on the nodes (a remote orted ends a moment after mpirun).
  for ((i = 0; i < 50; i++)); do
    left=$(on_nodes)
    [[ -z $left ]] && break
    sleep 0.1
  done
  [[ -z $left ]] || fail "$name: left on the nodes after the launcher ended: $(echo "$left" | head -5 | tr '\n' ';')"
  if ((orte)); then
    echo "    who noticed: Open MPI (mpirun: 'ORTE has lost communication with a remote daemon'):" \
      "$killed rank(s) killed$( ((watchdog == 0)) || echo ", $watchdog ended by the watchdog (exit 70)")"
  else
    echo "    who noticed: the watchdog, on all $watchdog ranks (exit 70)"
  fi
  echo "    nothing left on the nodes"
  if [[ -n $launcher_end ]]; then launcher_how="while the link was down"; else launcher_how="once the link was back"; fi
  resume_step=$(newest_ckpt "$tmp/run-cut")
  ((resume_step >= from + 20 && resume_step < steps)) || fail "$name: newest checkpoint at step $resume_step?"
}

# 1. node2's link goes down inside node2, with the nodes' own mpirun arguments (cluster/sim-nodes/up.sh).
cut_run cut1 node2-inside 0 0
say "ok 1: link cut inside node2: every rank ended within $bound s, the launcher $launcher_how; nothing left"

# 2. --resume auto across the restored link, and node1's link cut on the host side once that resumed run has
# written a checkpoint of its own. Here mpirun gets OOB keepalives (idle 1 s, 3 probes 1 s apart) so that it notices
# a lost node by itself while the link is down: it must end within the bound too.
# (A parameter the nodes' arguments already set is left to them: mpirun refuses one given twice.)
# Open MPI 5's launcher (PRRTE) has no oob_tcp_keepalive_* of ORTE's: there it gets none, and the launcher is held
# to cut 1's rule.
strict=1
"${SHARDGAN_MPIRUN:-mpirun}" --version 2>/dev/null | grep -q "(Open MPI) 4\." || strict=0
extra_args=""
for kv in time=1 intvl=1 probes=3; do
  ((strict)) || break
  [[ $mpi_args == *"oob_tcp_keepalive_${kv%=*} "* ]] || extra_args+=" --mca oob_tcp_keepalive_${kv%=*} ${kv#*=}"
done
from=$resume_step
cut_run cut2 node1-host "$from" "$strict" --resume auto
grep -q "(step $from)" "$tmp/cut2.log" || fail "cut2: did not resume from step $from"
say "ok 2: resumed from step $from; link cut on node1's host side: every rank ended within $bound s, the launcher" \
  "$launcher_how"
extra_args=""

# 3. --resume auto to the end: bit-identical to the reference.
from=$resume_step
hosts_run resume "$train" --run-dir "$tmp/run-cut" --resume auto
wait_job 120
((rc == 0)) || fail "resume: exit code $rc"
grep -q "(step $from)" "$tmp/resume.log" || fail "resume: did not resume from step $from"
grep -q "done, $steps steps" "$tmp/resume.log" || fail "resume: no 'done, $steps steps'"
for r in ref cut; do
  "$sample" --checkpoint "$tmp/run-$r" --export-weights "$tmp/weights-$r.h5" --n 1 >"$tmp/export-$r.log" 2>&1 ||
    fail "exporting run-$r"
done
ckpt_ref=$(printf '%s/run-ref/checkpoints/step-%06d' "$tmp" "$steps")
ckpt_cut=$(printf '%s/run-cut/checkpoints/step-%06d' "$tmp" "$steps")
/usr/bin/python3 - "$tmp/weights-ref.h5" "$tmp/weights-cut.h5" "$ckpt_ref" "$ckpt_cut" >"$tmp/compare.log" 2>&1 \
  <<'PY' || fail "the final checkpoints differ: $(tail -1 "$tmp/compare.log")"
import json
import sys
import zipfile
import h5py
import numpy as np

def load(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out

a, b = load(sys.argv[1]), load(sys.argv[2])
if set(a) != set(b):
    sys.exit(f"different tensors: only in the reference {sorted(set(a) - set(b))}, "
             f"only after the cuts {sorted(set(b) - set(a))}")
if not any(k.startswith("generator/") for k in a) or not any(k.startswith("discriminator/") for k in a):
    sys.exit(f"export lacks generator/ or discriminator/ tensors: {sorted(a)}")
bad = [n for n in sorted(a) if np.asarray(a[n]).shape != np.asarray(b[n]).shape or
       np.asarray(a[n]).tobytes() != np.asarray(b[n]).tobytes()]
if bad:
    sys.exit("not bit-identical: " + ", ".join(bad))

# The optimizers' state (Adam's step and moments): LibTorch keys it by the parameters' addresses in memory, so the
# files differ in their names and order; every tensor in them (the archive's data/N storages) must be the same.
def storages(path):
    with zipfile.ZipFile(path) as z:
        return sorted(z.read(n) for n in z.namelist() if "/data/" in n)

for name in ("optim_d.pt", "optim_g.pt"):
    x, y = storages(f"{sys.argv[3]}/{name}"), storages(f"{sys.argv[4]}/{name}")
    if not x or x != y:
        sys.exit(f"{name}: the optimizer state's tensors differ ({len(x)} vs {len(y)} storages)")
# The counters (step, epoch, samples seen ...), all but the files' hashes.
sa, sb = (json.load(open(f"{d}/state.json")) for d in sys.argv[3:5])
sa.pop("files", None)
sb.pop("files", None)
if sa != sb:
    sys.exit(f"state.json differs: {sorted(k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k))}")
print(f"{len(a)} tensors ({sum(np.asarray(x).size for x in a.values())} values) and the optimizers' "
      f"{sum(len(storages(f'{sys.argv[3]}/{n}')) for n in ('optim_d.pt', 'optim_g.pt'))} state tensors bit-identical")
PY
say "ok 3: resumed from step $from to $steps: $(tail -1 "$tmp/compare.log") to the uninterrupted run's"
