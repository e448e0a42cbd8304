#!/usr/bin/env bash
# Faults under mpirun, for real: 2 ranks train a tiny conditional DCGAN on the real Fashion-MNIST test split (16x16),
# then
#   1. SIGUSR1 to one rank: all ranks agree at the next step, write a checkpoint, exit 75; --resume auto continues;
#   2. SIGKILL of one rank: the whole job ends by itself within 60 s, non-zero; --resume auto continues from the
#      last checkpoint;
#   3. a hung rank (SIGSTOP): the other rank's watchdog (comm.timeout_s = 5) ends the job with a message.
# Usage: faults.sh SHARDGAN_PACK SHARDGAN_TRAIN MPIEXEC [MPIEXEC FLAGS...]
set -uo pipefail
# shellcheck source=tests/support/tiny_model.sh
source "$(dirname "$0")/../support/tiny_model.sh"
pack=$1 train=$2
shift 2
mpiexec=("$@")
tmp=$(mktemp -d /tmp/shardgan-faults-XXXXXX)
cleanup() {
  pkill -CONT -f "$tmp" 2>/dev/null
  pkill -KILL -f "$tmp" 2>/dev/null
  [[ ${SHARDGAN_KEEP:-0} == 1 ]] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.err; do echo "--- $f"; tail -5 "$f"; done; exit 1; }

"$pack" fashion-mnist --split test --size 16 --out "$tmp/data" >/dev/null || fail "packing"
tiny_signal_test_toml "$tmp/data" 5 >"$tmp/tiny.toml"

start() {  # NAME [extra args] → background mpirun, its pid in $job
  "${mpiexec[@]}" -np 2 "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/$1" "${@:2}" \
    >"$tmp/$1.out" 2>"$tmp/$1.err" &
  job=$!
}
wait_for() {  # FILE SECONDS
  for ((i = 0; i < $2 * 10; i++)); do [[ -e $1 ]] && return 0; sleep 0.1; done
  return 1
}
rank_pid() { pgrep -P "$job" -f shardgan-train | tail -1; }
wait_job() {  # waits for $job, at most LIMIT s; sets $rc and $took (seconds)
  local limit=$1 t0=$SECONDS
  for ((i = 0; i < limit * 10; i++)); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$job" 2>/dev/null && { kill -KILL "$job"; fail "job still running after $limit s"; }
  wait "$job"
  rc=$?
  took=$((SECONDS - t0))
}

# 1. SIGUSR1 (Slurm's --signal=USR1@T) to one rank.
start usr1
wait_for "$tmp/usr1/metrics.jsonl" 120 || fail "usr1: training did not start"
kill -USR1 "$(rank_pid)"
wait_job 60
[[ $rc -eq 75 ]] || fail "usr1: exit code $rc, expected 75"
step=$(sed -n 's/.*stopped by a signal after step \([0-9]*\).*/\1/p' "$tmp/usr1.err")
[[ -n $step ]] || fail "usr1: no 'stopped by a signal' message"
ckpt=$(printf "%s/usr1/checkpoints/step-%06d/state.json" "$tmp" "$step")
[[ -f $ckpt ]] || fail "usr1: no checkpoint at step $step"
echo "ok 1: SIGUSR1 -> checkpoint at step $step, exit 75 after ${took}s"
"${mpiexec[@]}" -np 2 "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/usr1" --resume auto \
  --set train.max_steps=$((step + 3)) >"$tmp/usr1-resume.out" 2>"$tmp/usr1-resume.err" || fail "usr1: resume failed"
grep -q "(step $step)" "$tmp/usr1-resume.err" || fail "usr1: resume did not start from step $step"
echo "ok 1: --resume auto continued from step $step"

# 2. SIGKILL of one rank after the first checkpoint.
start kill
wait_for "$tmp/kill/checkpoints/step-000020/state.json" 120 || fail "kill: no first checkpoint"
kill -KILL "$(rank_pid)"
wait_job 60
[[ $rc -ne 0 ]] || fail "kill: exit code 0 after a rank was killed"
echo "ok 2: SIGKILL of a rank -> job ended by itself in ${took}s, exit code $rc"
"${mpiexec[@]}" -np 2 "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/kill" --resume auto \
  --set train.max_steps=25 >"$tmp/kill-resume.out" 2>"$tmp/kill-resume.err" || fail "kill: resume failed"
grep -q "resuming from" "$tmp/kill-resume.err" || fail "kill: did not resume"
echo "ok 2: --resume auto continued: $(grep -o 'resuming from.*' "$tmp/kill-resume.err")"

# 3. A hung rank: the other one's watchdog ends the job.
start hang
wait_for "$tmp/hang/metrics.jsonl" 120 || fail "hang: training did not start"
kill -STOP "$(rank_pid)"
wait_job 60
[[ $rc -ne 0 ]] || fail "hang: exit code 0"
grep -q "did not complete within 5 s" "$tmp/hang.err" || fail "hang: no watchdog message"
echo "ok 3: hung rank -> watchdog ended the job in ${took}s: $(grep -o 'rank [0-9]*: [a-z -]*[^a]* at step [0-9]*' "$tmp/hang.err" | head -1)"
