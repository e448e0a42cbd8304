#!/usr/bin/env bash
# The Slurm launch path for real, on a one-machine Slurm cluster (cluster/local-slurm/up.sh: munged, slurmctld,
# slurmd under a temp folder):
#   pack  cluster/slurm/pack.sbatch packs the real Fashion-MNIST test split (16x16) as a job; shardgan-pack verify;
#   (a)   cluster/slurm/train.sbatch, 2 ranks (srun --mpi=pmix) on the node, 40 steps, `sbatch --wait`: exit 0, one
#         world of 2 ranks (state.json), checkpoints, metrics.jsonl, sample PNGs; shardgan-sample on the result
#         through `srun -n1`;
#   (b)   a long run: `scancel --signal=USR1 JOB` (what --signal=USR1@N does: the job steps get it) -> checkpoint at
#         step N1, exit 75, the script requeues the job, it restarts (SLURM_RESTART_COUNT=1) and resumes from step
#         N1; then `scancel --batch --signal=USR1` (only the batch shell: the script passes it to the ranks through
#         srun) -> checkpoint at N2 > N1, exit 75, not requeued again (SHARDGAN_MAX_RESTARTS=1), job exit code 75;
#   (c)   the time-limit warning itself (the template's --signal=USR1@120): the job's time limit is cut to 2 minutes
#         while it trains -> Slurm signals the ranks (not the batch shell); checkpoint, exit 75 (SHARDGAN_MAX_RESTARTS=0:
#         no requeue).
# Exit 77 (skipped) when the cluster cannot start on this machine (the reason is printed); 1 on any other problem,
# with the tails of the job and daemon logs. Everything (daemons, jobs, temp folder) is removed on every exit, and by
# slurm_test_reaper.sh when this script is killed outright (SIGKILL, CTest timeout); SHARDGAN_TEST_KEEP=1 stops the
# cluster but keeps the temp folder (job logs, run folders, daemon logs).
# Usage: slurm_test.sh SHARDGAN_TRAIN SHARDGAN_PACK SHARDGAN_SAMPLE SOURCE_DIR
set -euo pipefail
# shellcheck source=tests/support/private_net.sh
source "$(dirname "$0")/../support/private_net.sh"
# shellcheck source=tests/support/tiny_model.sh
source "$(dirname "$0")/../support/tiny_model.sh"

if (($# != 4)); then
  echo "usage: slurm_test.sh SHARDGAN_TRAIN SHARDGAN_PACK SHARDGAN_SAMPLE SOURCE_DIR" >&2
  exit 2
fi
train=$(realpath -m "$1") pack=$(realpath -m "$2") sample=$(realpath -m "$3") src=$(realpath -m "$4")
for b in "$train" "$pack" "$sample"; do
  [[ -x $b ]] || { echo "FAIL: not an executable: $b"; exit 1; }
done
sbatch_file=$src/cluster/slurm/train.sbatch pack_file=$src/cluster/slurm/pack.sbatch
up=$src/cluster/local-slurm/up.sh down=$src/cluster/local-slurm/down.sh
for f in "$sbatch_file" "$pack_file" "$up" "$down" "$src/tests/cluster/slurm_test_reaper.sh"; do
  [[ -f $f ]] || { echo "FAIL: missing $f (SOURCE_DIR wrong?)"; exit 1; }
done
# A test started inside a Slurm job must not hand that job's variables to our sbatch/srun.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SRUN|SALLOC)_' || true)

tmp=$(mktemp -d /tmp/sg-slurm-XXXXXX)
chmod 755 "$tmp"  # munged wants every folder above its socket world-executable
cluster=$tmp/c
bg_pids=()
cleanup() {
  local p
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ ${SHARDGAN_TEST_KEEP:-0} == 1 ]]; then
    "$down" "$cluster" --keep >/dev/null 2>&1 || true
    echo "kept (SHARDGAN_TEST_KEEP=1): $tmp (cluster logs in $cluster/log)"
  else
    "$down" "$cluster" >/dev/null 2>&1 || true
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
# Killed outright (SIGKILL, as by a CTest timeout), this script runs no trap: a detached reaper then stops the
# cluster, kills this test's leftover clients (marked by SHARDGAN_SLURM_TEST) and removes the folder.
export SHARDGAN_SLURM_TEST=$tmp
keep_arg=()
[[ ${SHARDGAN_TEST_KEEP:-0} == 1 ]] && keep_arg=(--keep)
(env -u SHARDGAN_SLURM_TEST setsid "$src/tests/cluster/slurm_test_reaper.sh" $$ "$tmp" "$cluster" "$down" \
  "${keep_arg[@]}" </dev/null >/dev/null 2>&1 &)
trap 'echo "FAIL: interrupted"; exit 1' INT TERM
t_start=$SECONDS

show_logs() {
  local f
  for f in "$tmp"/*.out "$tmp"/*.sbatch "$cluster"/log/slurmctld.log "$cluster"/log/slurmd.log; do
    [[ -s $f ]] || continue
    echo "--- tail of $f"
    tail -n 25 "$f"
  done
}
fail() {
  echo "FAIL: $*"
  if [[ -n ${SLURM_CONF:-} ]]; then echo "--- squeue"; squeue 2>&1 | tail -5; fi
  show_logs
  exit 1
}
ok() { echo "ok ($((SECONDS - t_start))s): $*"; }
wait_for() {  # SECONDS WHAT COMMAND...: poll every 0.2 s until COMMAND succeeds
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 5; i++)); do "$@" && return 0; sleep 0.2; done
  fail "$what: not seen within ${limit}s"
}
job_of() { sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' "$1" 2>/dev/null | head -1; }
logged() { grep -q -- "$2" "$1" 2>/dev/null; }  # FILE TEXT
metrics_past() { # RUN_DIR STEP: metrics.jsonl has a row with a larger step
  [[ -s $1/metrics.jsonl ]] &&
    awk -F'"step":' -v s="$2" 'NF > 1 { split($2, a, ","); if (a[1] + 0 > s) found = 1 } END { exit !found }' \
      "$1/metrics.jsonl"
}
state_of() { # RUN_DIR STEP: that checkpoint's state.json
  printf "%s/checkpoints/step-%06d/state.json" "$1" "$2"
}

# --- the cluster ------------------------------------------------------------------------------------------------
up_rc=0
"$up" "$cluster" >"$tmp/up.env" 2>"$tmp/up.err" || up_rc=$?
if ((up_rc == 3)); then
  cat "$tmp/up.err"
  echo "SKIP: a local Slurm cluster cannot start on this machine (reason above)"
  exit 77
fi
((up_rc == 0)) || { cat "$tmp/up.err"; fail "cluster/local-slurm/up.sh exited with $up_rc"; }
# shellcheck disable=SC1091
source "$tmp/up.env"
srun --mpi=list 2>&1 | grep -q pmix ||
  fail "Slurm has no PMIx plugin (srun --mpi=list: $(srun --mpi=list 2>&1 | tr '\n' ' ')); install libpmix-dev"
ok "local Slurm cluster up: $(sinfo -h -o '%P %D node(s) %c CPUs %T')"
cd "$tmp"

# --- pack through pack.sbatch -----------------------------------------------------------------------------------
SHARDGAN_PACK=$pack timeout 120 sbatch --wait --job-name=sg-pack --cpus-per-task=1 --time=5 "$pack_file" \
  fashion-mnist --split test --size 16 --out "$tmp/data" >"$tmp/pack.sbatch" 2>&1 ||
  fail "pack.sbatch: sbatch --wait exited with $?"
job=$(job_of "$tmp/pack.sbatch")
logged "$tmp/sg-pack-$job.out" "exit code 0" || fail "pack.sbatch: no 'exit code 0' in its log"
"$pack" verify "$tmp/data" >/dev/null || fail "shardgan-pack verify failed on what pack.sbatch wrote"
ok "pack.sbatch packed the Fashion-MNIST test split (job $job), verify passes"

tiny_signal_test_toml "$tmp/data" 30 >"$tmp/tiny.toml"
export SHARDGAN_TRAIN=$train
two_ranks=(--ntasks-per-node=2 --cpus-per-task=1)

# --- (a) a short run to the end ---------------------------------------------------------------------------------
RUN_DIR=$tmp/a timeout 150 sbatch --wait --job-name=sg-a "${two_ranks[@]}" --time=5 "$sbatch_file" tiny.toml \
  --set train.max_steps=40 --set output.sample_every_steps=20 >"$tmp/a.sbatch" 2>&1 ||
  fail "(a) sbatch --wait exited with $? (0 expected)"
job=$(job_of "$tmp/a.sbatch")
log=$tmp/sg-a-$job.out
logged "$log" "0: shardgan-train: done, 40 steps" || fail "(a) no 'done, 40 steps' from rank 0 in $log"
logged "$log" "training step ended with exit code 0" || fail "(a) the script did not see exit code 0"
for s in 20 40; do
  [[ -f $(state_of "$tmp/a" $s) ]] || fail "(a) no checkpoint at step $s"
done
grep -q '"world_size": *2' "$(state_of "$tmp/a" 40)" ||
  fail "(a) the checkpoint was not written by one world of 2 ranks (srun --mpi=pmix): $(grep world_size "$(state_of "$tmp/a" 40)")"
metrics_past "$tmp/a" 39 || fail "(a) metrics.jsonl has no row for step 40"
for png in "$tmp/a/samples/step-000020.png" "$tmp/a/samples/step-000040.png"; do
  [[ $(head -c 4 "$png" 2>/dev/null | od -An -c | tr -d ' ') == '211PNG' ]] || fail "(a) $png missing or not a PNG"
done
srun -n1 --job-name=sg-sample "$sample" --checkpoint "$tmp/a" --n 16 --out "$tmp/a-grid.png" >"$tmp/sample.out" 2>&1 ||
  fail "(a) shardgan-sample under srun -n1 failed: $(tail -3 "$tmp/sample.out")"
[[ -s $tmp/a-grid.png ]] || fail "(a) shardgan-sample wrote no grid"
ok "(a) train.sbatch, 2 ranks, 40 steps: exit 0, world size 2, checkpoints 20 and 40, metrics, samples; shardgan-sample ok"

# start_training_job PART RUN_DIR MAX_RESTARTS TIMEOUT [trainer args]: `sbatch --wait` of train.sbatch in the
# background (2 ranks, 10-minute limit); returns once the ranks train. Sets job_pid, job and log.
start_training_job() {
  local part=$1 run=$2 restarts=$3 limit=$4
  shift 4
  RUN_DIR=$run SHARDGAN_MAX_RESTARTS=$restarts timeout "$limit" sbatch --wait --job-name="sg-$part" \
    "${two_ranks[@]}" --time=10 "$sbatch_file" tiny.toml "$@" >"$tmp/$part.sbatch" 2>&1 &
  job_pid=$!
  bg_pids+=("$job_pid")
  wait_for 30 "($part) job id from sbatch" logged "$tmp/$part.sbatch" "Submitted batch job"
  job=$(job_of "$tmp/$part.sbatch")
  log=$tmp/sg-$part-$job.out
  wait_for 120 "($part) training started (metrics.jsonl)" test -s "$run/metrics.jsonl"
}

# --- (b) USR1 to the steps -> checkpoint, exit 75, requeue, resume; USR1 to the batch shell -> 75, no requeue ----
start_training_job b "$tmp/b" 1 200 --set train.max_steps=1000000 --set output.checkpoint_every_steps=1000000
b_pid=$job_pid
scancel --signal=USR1 "$job" || fail "(b) scancel --signal=USR1 $job failed"
wait_for 60 "(b) 'requeueing job' after the first SIGUSR1" logged "$log" "requeueing job $job"
n1=$(sed -n 's/.*stopped by a signal after step \([0-9]*\).*/\1/p' "$log" | head -1)
[[ -n $n1 ]] || fail "(b) no 'stopped by a signal after step N' before the requeue"
logged "$log" "training step ended with exit code 75" || fail "(b) the script did not see exit code 75"
[[ -f $(state_of "$tmp/b" "$n1") ]] || fail "(b) no checkpoint at step $n1 after the signal"
ok "(b) scancel --signal=USR1: checkpoint at step $n1, exit 75, job $job requeued"

wait_for 90 "(b) the requeued job's restart" logged "$log" "SLURM_RESTART_COUNT=1"
wait_for 60 "(b) resume from step $n1" logged "$log" "(step $n1)"
wait_for 90 "(b) training past step $n1 after the resume" metrics_past "$tmp/b" "$n1"
ok "(b) restarted with SLURM_RESTART_COUNT=1 and resumed from step $n1: $(grep -o 'resuming from.*' "$log" | head -1)"

scancel --batch --signal=USR1 "$job" || fail "(b) scancel --batch --signal=USR1 $job failed"
b_rc=0
wait "$b_pid" || b_rc=$?
((b_rc == 75)) || fail "(b) sbatch --wait exited with $b_rc; expected 75 (stopped, not requeued a second time)"
logged "$log" "got SIGUSR1" || fail "(b) the batch script did not report the SIGUSR1 it got"
n2=$(sed -n 's/.*stopped by a signal after step \([0-9]*\).*/\1/p' "$log" | sed -n 2p)
[[ -n $n2 ]] || fail "(b) no second 'stopped by a signal after step N'"
((n2 > n1)) || fail "(b) second stop at step $n2 is not after the first ($n1)"
[[ -f $(state_of "$tmp/b" "$n2") ]] || fail "(b) no checkpoint at step $n2"
logged "$log" "not requeueing: restarted 1 times" || fail "(b) no 'not requeueing' message after the restart limit"
ok "(b) scancel --batch --signal=USR1 (batch shell only, passed on through srun): checkpoint at step $n2 > $n1, job exit 75"

# --- (c) the time-limit warning of the template's own --signal=USR1@120 reaches the ranks ---------------------------
# Submitted with 10 minutes; once the ranks train, the time limit is cut to 2 minutes, so the warning is due at
# once and Slurm sends it at its next periodic time-limit check (every 30 s or so), never before the ranks run.
start_training_job c "$tmp/c-run" 0 150 --set train.max_steps=100000000 --set train.log_every=100 \
  --set output.checkpoint_every_steps=100000000
c_pid=$job_pid
# A loaded machine can make slurmctld answer late (MessageTimeout): try a few times, keeping scontrol's message.
for attempt in 1 2 3; do
  scontrol update JobId="$job" TimeLimit=2 2>"$tmp/scontrol.err" && break
  ((attempt < 3)) || fail "(c) scontrol update JobId=$job TimeLimit=2 failed: $(tr '\n' ' ' <"$tmp/scontrol.err")"
  sleep 2
done
t_cut=$SECONDS
c_rc=0
wait "$c_pid" || c_rc=$?
((c_rc == 75)) || fail "(c) sbatch --wait exited with $c_rc; expected 75 (time-limit warning -> checkpoint)"
n3=$(sed -n 's/.*stopped by a signal after step \([0-9]*\).*/\1/p' "$log" | head -1)
[[ -n $n3 ]] || fail "(c) no 'stopped by a signal' after the time-limit warning"
[[ -f $(state_of "$tmp/c-run" "$n3") ]] || fail "(c) no checkpoint at step $n3"
logged "$log" "got SIG" && fail "(c) the batch shell got a signal; --signal=USR1@120 should reach only the steps"
ok "(c) --signal=USR1@120 with 2 minutes left: the ranks stopped $((SECONDS - t_cut))s after the cut, checkpoint at step $n3, exit 75"

echo "PASS: Slurm launch path (pack.sbatch, train.sbatch, signal -> checkpoint -> requeue -> resume) in $((SECONDS - t_start))s"
