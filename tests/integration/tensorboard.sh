#!/usr/bin/env bash
# TensorBoard's event files, read back by TensorBoard itself (the tensorboard package in a virtual environment:
# tests/legs/tensorboard_venv.sh makes it; tests/run.sh passes it to CMake as SHARDGAN_TENSORBOARD_PYTHON):
#   1. 2 ranks train a tiny conditional DCGAN with [eval], then resume from the step-20 checkpoint: one event file is
#      left, and TensorBoard's EventAccumulator reads every scalar series with each step once and the values of
#      metrics.jsonl, the sample grids (the PNGs in samples/, their size), the configuration text and the hparams;
#   2. the file cut in the middle of a record reads up to the last whole one;
#   3. `tensorboard --logdir` on loopback (its own data server) serves the same scalars;
#   4. output.tensorboard = false writes no event file.
# Usage: tensorboard.sh SHARDGAN_PACK SHARDGAN_TRAIN SHARDGAN_EVAL HERE TENSORBOARD_PYTHON MPIEXEC [MPIEXEC FLAGS...]
set -uo pipefail
# shellcheck source=tests/support/tiny_model.sh
source "$(dirname "$0")/../support/tiny_model.sh"
pack=$1 train=$2 evaluate=$3 here=$4 tbpy=$5
shift 5
mpiexec=("$@")
tmp=$(mktemp -d /tmp/shardgan-tensorboard-XXXXXX)
server=""
trap '[[ -n $server ]] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.err; do [[ -s $f ]] && { echo "--- $f"; tail -5 "$f"; }; done; exit 1; }
[[ -x $tbpy ]] || fail "no python with the tensorboard package at $tbpy"

"$pack" fashion-mnist --split test --size 16 --out "$tmp/data" >/dev/null 2>"$tmp/pack.err" || fail "packing"
"$evaluate" train-classifier --data "$tmp/data" --out "$tmp/clf.pt" --epochs 1 --width 8 --threads 2 \
  >/dev/null 2>"$tmp/clf.err" || fail "train-classifier"

# 1. A run, and a resume from its step-20 checkpoint that replaces steps 21-40.
{ tiny_model_toml "$tmp/data"; cat <<TOML
[train]
batch_size = 16
max_steps = 40
log_every = 10
[output]
sample_every_steps = 20
checkpoint_every_steps = 20
[runtime]
threads = 1
[eval]
classifier = "$tmp/clf.pt"
n = 500
TOML
} >"$tmp/tiny.toml"
"${mpiexec[@]}" -np 2 "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/run" >/dev/null 2>"$tmp/train.err" ||
  fail "training"
"${mpiexec[@]}" -np 2 "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/run" \
  --resume "$tmp/run/checkpoints/step-000020" >/dev/null 2>"$tmp/resume.err" || fail "resuming"
grep -qE '^step 40/40 epoch 0 elapsed [0-9]+:[0-9]{2} eta [0-9]+:[0-9]{2} loss_d ' "$tmp/resume.err" ||
  fail "the log line has no elapsed time and ETA"
"$tbpy" "$here/tensorboard_check.py" read "$tmp/run" || fail "TensorBoard's reader"

# 2. A file cut in the middle of a record (a killed run).
"$tbpy" "$here/tensorboard_check.py" truncated "$tmp/run" "$tmp/cut" || fail "a truncated event file"

# 3. TensorBoard itself, on loopback, on a port it picks.
"$tbpy" -m tensorboard.main --logdir "$tmp/run" --host 127.0.0.1 --port 0 >"$tmp/server.log" 2>&1 &
server=$!
url=""
for _ in $(seq 120); do
  url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' "$tmp/server.log" | head -n 1)
  [[ -n $url ]] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.5
done
[[ -n $url ]] || { cat "$tmp/server.log"; fail "tensorboard did not start"; }
"$tbpy" "$here/tensorboard_check.py" server "$tmp/run" "$url" || { cat "$tmp/server.log"; fail "tensorboard's server"; }
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
server=""

# 4. Off.
"${mpiexec[@]}" -np 2 "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/off" --set output.tensorboard=false \
  --set train.max_steps=10 --set eval.classifier='""' >/dev/null 2>"$tmp/off.err" || fail "training without events"
compgen -G "$tmp/off/events.out.tfevents.*" >/dev/null && fail "output.tensorboard = false wrote an event file"
echo "ok 4: output.tensorboard = false: no event file"
