#!/usr/bin/env bash
# TensorBoard's default port does not hang MPI. Open MPI's hwloc opens X displays to look for GPUs (its GL
# component), display :6 being TCP port 6006 on localhost, TensorBoard's default: a server there that never answers
# like X made every mpirun and MPI_Init wait forever. In a network namespace of its own (the loopback alone, so that
# nothing else on the machine meets the listener) with a silent listener on 127.0.0.1:6006:
#   0. control: a plain `mpirun true` without HWLOC_COMPONENTS hangs (where hwloc has the GL component);
#   1. shardgan-train --dry-run (a singleton MPI_Init) finishes;
#   2. launch/train-local.sh trains 5 steps on 2 ranks through mpirun.
# Usage: tensorboard_port_test.sh REPO SHARDGAN_PACK SHARDGAN_TRAIN [MPIEXEC FLAGS...] (flags unused: the launcher's)
set -uo pipefail
if [[ ${SHARDGAN_TBPORT_NET:-0} != 1 ]]; then  # the loopback alone (no documentation address: Open MPI's OOB wants none)
  if ! why=$(unshare --net -- true 2>&1); then
    echo "SKIP: no network namespace (unshare --net: ${why:-refused})"
    exit 77
  fi
  exec unshare --net -- env SHARDGAN_TBPORT_NET=1 /bin/bash -c 'ip link set lo up && exec /bin/bash "$@"' _ "$0" "$@"
fi
# shellcheck source=tests/support/tiny_model.sh
source "$(dirname "$0")/../support/tiny_model.sh"
repo=$1 pack=$2 train=$3
tmp=$(mktemp -d /tmp/shardgan-tbport-XXXXXX)
listener=""
trap '[[ -n $listener ]] && kill "$listener" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.err; do [[ -s $f ]] && { echo "--- $f"; tail -5 "$f"; }; done; exit 1; }

# Accepts every connection and says nothing, like a web server waiting for a request.
/usr/bin/python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 6006)); s.listen(64)
held = []
while True:
    held.append(s.accept()[0])
' &
listener=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/6006) 2>/dev/null && break; sleep 0.1; done
(exec 3<>/dev/tcp/127.0.0.1/6006) 2>/dev/null || fail "the listener on 127.0.0.1:6006 did not start"

root_flag=()
[[ $(id -u) -eq 0 ]] && root_flag=(--allow-run-as-root)
(env -u HWLOC_COMPONENTS timeout -s KILL 15 mpirun "${root_flag[@]}" -np 1 true >/dev/null 2>&1) 2>/dev/null
rc=$?
if [[ $rc -eq 137 ]]; then
  echo "ok 0: control: mpirun without HWLOC_COMPONENTS hangs with a silent listener on port 6006 (killed after 15 s)"
else
  echo "ok 0: control: mpirun without HWLOC_COMPONENTS did not hang here (exit $rc: no hwloc GL component?)"
fi

"$pack" fashion-mnist --split test --size 16 --out "$tmp/data" >/dev/null 2>"$tmp/pack.err" || fail "packing"
{ tiny_model_toml "$tmp/data"; printf '[train]\nbatch_size = 16\nmax_steps = 5\nlog_every = 5\n[runtime]\nthreads = 1\n'
} >"$tmp/tiny.toml"
env -u HWLOC_COMPONENTS timeout -s KILL 60 "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/dry" --dry-run \
  >/dev/null 2>"$tmp/dry.err" || fail "shardgan-train --dry-run (a singleton MPI_Init) with port 6006 taken: exit $?"
echo "ok 1: shardgan-train --dry-run (singleton MPI_Init) finishes"
env -u HWLOC_COMPONENTS SHARDGAN_TRAIN="$train" timeout -s KILL 120 "$repo/launch/train-local.sh" 2 "$tmp/tiny.toml" \
  --run-dir "$tmp/run" >/dev/null 2>"$tmp/train.err" || fail "train-local.sh with port 6006 taken: exit $?"
[[ -f $tmp/run/checkpoints/step-000005/state.json ]] || fail "no checkpoint after 5 steps"
echo "ok 2: launch/train-local.sh: 5 steps on 2 ranks through mpirun"
