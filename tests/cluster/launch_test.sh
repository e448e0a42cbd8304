#!/usr/bin/env bash
# The one mpirun policy and the one signal forwarding, and that every launch path uses them. No trainer and no Slurm
# daemon is needed: a fake trainer (a bash script) stands in for shardgan-train under a real mpirun, and fake `srun`
# and `scontrol` stand in for Slurm's under cluster/slurm/train.sbatch.
#   policy   launch/mpi-flags.sh: --bind-to none unless the caller's arguments bind (--bind-to, --map-by, -bind-to),
#            --oversubscribe when asked, --allow-run-as-root as root only (checked as nobody too, where setpriv
#            exists); a bad option is refused (exit 2). This machine's mpirun accepts the flags and --oversubscribe
#            lets 1 more rank than cores start (Open MPI 4 here, 5 on the Debian 13 leg).
#   callers  the MPI tests' flags (CMake's SHARDGAN_MPIEXEC_FLAGS, given as arguments) are the policy's with
#            --oversubscribe; bench/common.sh's `mpi` is mpirun + the policy; launch/lib.sh's base_mpi_flags is the
#            policy of SHARDGAN_MPIRUN_ARGS; train-local.sh's printed mpirun command carries it (and --oversubscribe
#            with more ranks than cores).
#   local    launch/train-local.sh (launch/lib.sh's run_forwarding_signals around mpirun), 2 fake ranks: rank exit
#            codes 0 and 70 come back; SIGTERM and SIGUSR2 to the script reach every rank as SIGUSR1 (exit 75, the
#            signal reported); SIGINT ends the job (SIGTERM to mpirun; not 0, not 75; no rank saw SIGUSR1);
#            runtime.device comes from the trainer's dry run (one process, no mpirun, data.verify=false, data.cache=stream) and its
#            error and exit code are passed on.
#   sbatch   cluster/slurm/train.sbatch run as Slurm runs it (a copy in a spool folder, from a submit folder): it
#            finds the repository through `scontrol show job`'s Command= (relative to the submit folder) and runs
#            srun through the same run_forwarding_signals: exit codes 0 and 70 back; SIGTERM -> SIGUSR1 to srun ->
#            75 -> `scontrol requeue`, after which Slurm's SIGTERM ends the script at once; SIGUSR1 past
#            SHARDGAN_MAX_RESTARTS and SIGUSR2 with SHARDGAN_REQUEUE=0 -> exit 75, no requeue; without a way to the
#            repository: exit 2 and one line, srun not started; SHARDGAN_ROOT then works.
# Usage: launch_test.sh SOURCE_DIR [CMAKE_MPI_TEST_FLAGS...]   Exit: 0 pass, 1 fail, 2 bad usage.
# Environment: SHARDGAN_MPIRUN (mpirun to use), SHARDGAN_TEST_KEEP=1 keeps the temp folder.
set -euo pipefail
if (($# < 1)); then
  echo "usage: launch_test.sh SOURCE_DIR [CMAKE_MPI_TEST_FLAGS...]" >&2
  exit 2
fi
src=$(realpath -m "$1")
shift
cmake_flags=("$@")
flags_sh=$src/launch/mpi-flags.sh local_sh=$src/launch/train-local.sh sbatch_file=$src/cluster/slurm/train.sbatch
for f in "$flags_sh" "$local_sh" "$sbatch_file" "$src/launch/lib.sh" "$src/bench/common.sh"; do
  [[ -f $f ]] || { echo "FAIL: missing $f (SOURCE_DIR wrong?)"; exit 2; }
done
mpirun=${SHARDGAN_MPIRUN:-mpirun}
command -v "$mpirun" >/dev/null || { echo "FAIL: mpirun not found: $mpirun"; exit 1; }
# Only what this test sets may reach the launchers.
unset CUDA_VISIBLE_DEVICES SHARDGAN_GPUS SHARDGAN_TRAIN SHARDGAN_BUILD_DIR SHARDGAN_BIN SHARDGAN_MPIRUN_ARGS \
  SHARDGAN_PASS_ENV SHARDGAN_NP OMP_NUM_THREADS SHARDGAN_THREADS SHARDGAN_SRUN_ARGS SHARDGAN_MPI SHARDGAN_ROOT \
  SHARDGAN_REQUEUE SHARDGAN_MAX_RESTARTS RUN_DIR CONFIG
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SRUN|SALLOC|NCCL)_' || true)

# shellcheck source=tests/support/shell_test.sh
source "$(dirname "$0")/../support/shell_test.sh"
tmp=$(mktemp -d /tmp/sg-launch-XXXXXX)
bg=""
cleanup() {
  [[ -n $bg ]] && kill -KILL "$bg" 2>/dev/null
  remove_unless_kept "$tmp"
}
trap cleanup EXIT
lines() { printf '%s\n' "$@"; }  # ARGS, one a line (as mpi-flags.sh prints them)
is_root=0
[[ $(id -u) -eq 0 ]] && is_root=1
root_flag=()
((is_root)) && root_flag=(--allow-run-as-root)
wait_for() {  # SECONDS WHAT COMMAND...: poll every 0.1 s until COMMAND succeeds
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 10; i++)); do "$@" && return 0; sleep 0.1; done
  fail "$what: not seen within ${limit}s"
}

# --- policy: launch/mpi-flags.sh ----------------------------------------------------------------------------------
flags_of() { "$flags_sh" "$@"; }
[[ $(flags_of) == "$(lines --bind-to none "${root_flag[@]}")" ]] || fail "mpi-flags.sh: got $(flags_of | tr '\n' ' ')"
[[ $(flags_of --oversubscribe) == "$(lines --bind-to none --oversubscribe "${root_flag[@]}")" ]] ||
  fail "mpi-flags.sh --oversubscribe: got $(flags_of --oversubscribe | tr '\n' ' ')"
for custom in "--map-by socket:PE=2" "--bind-to core" "-bind-to core" "-map-by ppr:1:node" "--bind-to=core"; do
  # shellcheck disable=SC2086  # split on purpose, as SHARDGAN_MPIRUN_ARGS is
  got=$(flags_of -- --mca btl self,tcp $custom)
  [[ $got == "$(lines "${root_flag[@]}")" ]] || fail "mpi-flags.sh -- $custom: --bind-to none kept? got: $got"
done
[[ $(flags_of -- --mca btl self,tcp) == "$(flags_of)" ]] || fail "mpi-flags.sh: --mca arguments changed the flags"
rc=0
err=$("$flags_sh" --bind-to 2>&1 >/dev/null) || rc=$?
if ((rc != 2)) || [[ $err != *"unknown option"* ]]; then
  fail "mpi-flags.sh --bind-to: exit $rc, '$err' (expected 2)"
fi
if ((is_root)) && command -v setpriv >/dev/null; then
  # A copy nobody can read: the checkout may sit below a folder only root can enter (mktemp -d is 0700).
  nobody_dir=$(mktemp -d /tmp/shardgan-nobody-XXXXXX) && chmod 755 "$nobody_dir" && cp "$flags_sh" "$nobody_dir/" &&
    chmod 755 "$nobody_dir/mpi-flags.sh"
  got=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$nobody_dir/mpi-flags.sh" --oversubscribe) ||
    fail "mpi-flags.sh as nobody failed"
  rm -rf "$nobody_dir"
  [[ $got == "$(lines --bind-to none --oversubscribe)" ]] || fail "mpi-flags.sh as nobody: got $(tr '\n' ' ' <<<"$got")"
fi
# This machine's mpirun takes the flags, and --oversubscribe lets more ranks than cores start.
cores=$(nproc)
mapfile -t policy < <(flags_of --oversubscribe)
timeout 60 "$mpirun" -np $((cores + 1)) "${policy[@]}" true >"$tmp/mpirun.log" 2>&1 ||
  { log=$tmp/mpirun.log; fail "$mpirun -np $((cores + 1)) ${policy[*]} true failed"; }
[[ -s $tmp/mpirun.log ]] && { log=$tmp/mpirun.log; fail "mpirun printed something for the policy's flags"; }
ok "mpi-flags.sh: --bind-to none unless the caller binds, --oversubscribe when asked, --allow-run-as-root as root" \
  "only; $("$mpirun" --version | head -1) runs $((cores + 1)) ranks on $cores cores with: ${policy[*]}"

# --- callers: CMake, bench/common.sh, launch/lib.sh --------------------------------------------------------------
if ((${#cmake_flags[@]} > 0)); then
  [[ $(lines "${cmake_flags[@]}") == "$(flags_of --oversubscribe)" ]] ||
    fail "the MPI tests' flags (SHARDGAN_MPIEXEC_FLAGS: ${cmake_flags[*]}) are not mpi-flags.sh --oversubscribe's"
  what="the MPI tests' flags (${cmake_flags[*]}),"
else
  what="(no CMake flags given)"
fi
got=$(bash -c 'set -euo pipefail; source "$1/bench/common.sh"; mpi_launcher; printf "%s\n" "${mpi[@]}"' _ "$src") ||
  fail "bench/common.sh: mpi_launcher failed"
[[ $got == "$(lines mpirun; flags_of)" ]] || fail "bench/common.sh: mpi is $(tr '\n' ' ' <<<"$got")"
lib_flags() {  # SHARDGAN_MPIRUN_ARGS [base_mpi_flags args]: mpi_flags, "--", extra_mpi_args
  SHARDGAN_MPIRUN_ARGS=$1 bash -c 'set -euo pipefail; prog=t root=$1; shift
    source "$root/launch/lib.sh"; base_mpi_flags "$@"; printf "%s\n" "${mpi_flags[@]}" -- "${extra_mpi_args[@]}"' \
    _ "$src" "${@:2}"
}
[[ $(lib_flags "") == "$(flags_of; echo --)" ]] || fail "launch/lib.sh base_mpi_flags: $(lib_flags "" | tr '\n' ' ')"
[[ $(lib_flags "--mca btl self,tcp  --map-by socket:PE=2" --oversubscribe) == \
  "$(flags_of --oversubscribe -- --map-by x; lines -- --mca btl self,tcp --map-by socket:PE=2)" ]] ||
  fail "launch/lib.sh base_mpi_flags with a binding in SHARDGAN_MPIRUN_ARGS:" \
    "$(lib_flags "--mca btl self,tcp --map-by socket:PE=2" --oversubscribe | tr '\n' ' ')"
ok "callers: $what bench/common.sh's mpi and launch/lib.sh's base_mpi_flags are the policy's"

# --- local: train-local.sh around mpirun, with a fake trainer ----------------------------------------------------
# The fake trainer. Dry run (--dry-run --json): records its arguments (and whether it ran under mpirun) in
# $FAKE_DIR/dry-run and prints the JSON with runtime.device = $FAKE_DEVICE, or an error line and exit 1 when
# FAKE_DRY_FAIL=1, or no JSON at all when FAKE_DRY_FAIL=json. As a rank: exits $FAKE_EXIT at once when set; else
# writes $FAKE_DIR/rank-N.started and waits: SIGUSR1 -> "USR1" in rank-N.got, exit 75; SIGTERM -> "TERM", exit 143.
mkdir -p "$tmp/bin"
cat >"$tmp/bin/fake-train" <<'EOF'
#!/usr/bin/env bash
set -uo pipefail
if [[ " $* " == *" --dry-run "* ]]; then
  printf 'arg=%s\n' "$@" >>"$FAKE_DIR/dry-run"
  [[ -n ${OMPI_COMM_WORLD_RANK:-} ]] && echo under_mpirun >>"$FAKE_DIR/dry-run"
  case ${FAKE_DRY_FAIL:-0} in
    1) echo "shardgan-train: error: data.path: no manifest.json in /nowhere" >&2; exit 1 ;;
    json) echo "shardgan-train plan (dry run: nothing trained)"; exit 0 ;;
  esac
  printf '{"config":{"data.verify":false,"runtime.device":"%s"},"plan":{"world_size":1,"device":"cpu"}}\n' \
    "${FAKE_DEVICE:-cpu}"
  exit 0
fi
rank=${OMPI_COMM_WORLD_RANK:?not under mpirun}
[[ -n ${FAKE_EXIT:-} ]] && exit "$FAKE_EXIT"
trap 'echo USR1 >>"$FAKE_DIR/rank-$rank.got"; exit 75' USR1
trap 'echo TERM >>"$FAKE_DIR/rank-$rank.got"; exit 143' TERM
touch "$FAKE_DIR/rank-$rank.started"
for ((i = 0; i < 600; i++)); do sleep 0.1; done
exit 3
EOF
chmod +x "$tmp/bin/fake-train"
export SHARDGAN_TRAIN=$tmp/bin/fake-train FAKE_DIR=$tmp/fake SHARDGAN_MPIRUN=$mpirun
cfg=$tmp/tiny.toml
printf '[train]\nbatch_size = 16\n' >"$cfg"
fresh() { rm -rf "$FAKE_DIR"; mkdir -p "$FAKE_DIR"; }
started() { [[ -f $FAKE_DIR/rank-0.started && -f $FAKE_DIR/rank-1.started ]]; }
got_of() { { tr '\n' ' ' <"$FAKE_DIR/rank-$1.got"; } 2>/dev/null | sed 's/ $//'; }
says() { grep -qF -- "$1" "$log" || fail "$2: no '$1' in its output"; }

local_run() {  # NAME [VAR=VALUE...] -- ARGS...: train-local.sh ARGS to the end; rc
  local name=$1 envs=()
  shift
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  fresh
  log=$tmp/local-$name.log rc=0
  env "${envs[@]}" timeout 60 "$local_sh" "$@" >"$log" 2>&1 || rc=$?
  ((rc != 124)) || fail "$name: train-local.sh did not finish within 60 s"
}
local_signal() {  # NAME SIGNAL: 2 waiting ranks, SIGNAL to train-local.sh once both run; rc
  fresh
  log=$tmp/local-$1.log rc=0
  # Job control on: without it a background job starts with SIGINT ignored, and a script cannot trap that.
  set -m
  "$local_sh" 2 "$cfg" >"$log" 2>&1 &
  bg=$!
  set +m
  wait_for 30 "$1: both ranks started" started
  kill "-$2" "$bg"
  wait "$bg" || rc=$?
  bg=""
}

local_run exit0 FAKE_EXIT=0 -- 2 "$cfg" --run-dir "$tmp/run" --set train.max_steps=3
((rc == 0)) || fail "ranks exit 0: train-local.sh exit $rc"
says "2 CPU rank(s)" "ranks exit 0"
plus=$(grep '^+ ' "$log") || fail "ranks exit 0: no mpirun command printed"
mapfile -t policy < <(flags_of)
[[ $plus == *" -np 2 ${policy[*]} "* ]] || fail "ranks exit 0: the mpirun command lacks the policy (${policy[*]}): $plus"
[[ $(<"$FAKE_DIR/dry-run") == "$(printf 'arg=%s\n' --config "$cfg" --run-dir "$tmp/run" --set train.max_steps=3 \
  --set data.verify=false --set data.cache=stream --dry-run --json)" ]] ||
  fail "ranks exit 0: the dry run (once, not under mpirun) got: $(tr '\n' ' ' <"$FAKE_DIR/dry-run")"
local_run exit70 FAKE_EXIT=70 -- 2 "$cfg"
((rc == 70)) || fail "a rank exits 70 (watchdog): train-local.sh exit $rc"
local_run oversubscribed FAKE_EXIT=0 -- $((cores + 1)) "$cfg"
((rc == 0)) || fail "$((cores + 1)) ranks on $cores cores: train-local.sh exit $rc"
mapfile -t policy < <(flags_of --oversubscribe)
[[ $(grep '^+ ' "$log") == *" -np $((cores + 1)) ${policy[*]} "* ]] ||
  fail "$((cores + 1)) ranks on $cores cores: the mpirun command lacks ${policy[*]}: $(grep '^+ ' "$log")"
ok "train-local.sh: exit codes 0 and 70 back; the mpirun command carries the policy (--oversubscribe for" \
  "$((cores + 1)) ranks on $cores cores); one dry run before it, without mpirun"

local_signal term TERM
((rc == 75)) || fail "SIGTERM: train-local.sh exit $rc, expected 75"
[[ $(got_of 0) == USR1 && $(got_of 1) == USR1 ]] || fail "SIGTERM: the ranks got '$(got_of 0)' and '$(got_of 1)'"
says "train-local.sh: got SIGTERM; asking the ranks to checkpoint and stop (SIGUSR1 to " "SIGTERM"
local_signal usr2 USR2
((rc == 75)) || fail "SIGUSR2: train-local.sh exit $rc, expected 75"
[[ $(got_of 0) == USR1 && $(got_of 1) == USR1 ]] || fail "SIGUSR2: the ranks got '$(got_of 0)' and '$(got_of 1)'"
local_signal int INT
((rc != 0 && rc != 75)) || fail "SIGINT: train-local.sh exit $rc; the job should have been aborted"
[[ $(got_of 0) != *USR1* && $(got_of 1) != *USR1* ]] || fail "SIGINT: a rank got SIGUSR1 (a checkpoint request)"
says "train-local.sh: got SIGINT; ending the job (SIGTERM to " "SIGINT"
ok "train-local.sh: SIGTERM and SIGUSR2 -> SIGUSR1 on every rank, exit 75; SIGINT -> job aborted (exit $rc)"

local_run dry-cuda FAKE_DEVICE=cuda CUDA_VISIBLE_DEVICES=-1 -- 1 "$cfg"
((rc == 2)) || fail "dry run says cuda, no GPU: exit $rc, expected 2"
says "runtime.device = cuda but no GPU found" "dry run says cuda, no GPU"
local_run dry-cpu FAKE_DEVICE=cpu FAKE_EXIT=0 SHARDGAN_GPUS=2 -- 3 "$cfg"
((rc == 0)) || fail "dry run says cpu, SHARDGAN_GPUS=2, NPROC 3: exit $rc"
says "3 CPU rank(s)" "dry run says cpu with 2 GPUs"
local_run dry-fail FAKE_DRY_FAIL=1 -- 2 "$cfg"
((rc == 1)) || fail "the dry run fails: exit $rc, expected its 1"
says "shardgan-train: error: data.path: no manifest.json in /nowhere" "the dry run fails"
grep -q '^+ ' "$log" && fail "the dry run fails: mpirun was started anyway"
local_run dry-nojson FAKE_DRY_FAIL=json -- 2 "$cfg"
((rc == 2)) || fail "the dry run prints no JSON: exit $rc, expected 2"
says "train-local.sh: the trainer's dry run (--dry-run --json) printed no config.runtime.device" "no JSON"
grep -q '^+ ' "$log" && fail "the dry run prints no JSON: mpirun was started anyway"
ok "train-local.sh: runtime.device from the dry run's JSON (cuda without a GPU refused; cpu -> CPU ranks with 2" \
  "GPUs); its error and exit code passed on, no JSON -> exit 2; nothing started then"

# --- sbatch: cluster/slurm/train.sbatch as Slurm runs it, with fake srun and scontrol ----------------------------
# Fake srun: records its arguments in $FAKE_DIR/srun; exits $FAKE_EXIT at once when set; else writes
# $FAKE_DIR/srun.started and waits: SIGUSR1 -> "USR1" in srun.got, exit 75 (what srun returns when the ranks stop
# after a checkpoint); SIGTERM -> "TERM", exit 143.
# Fake scontrol: `show job ID` prints Command=$FAKE_COMMAND (when set) as Slurm's multi-line format does; `requeue
# ID` records it in $FAKE_DIR/requeue and sends SIGTERM to its caller, the batch script, as Slurm does.
cat >"$tmp/bin/srun" <<'EOF'
#!/usr/bin/env bash
printf 'arg=%s\n' "$@" >"$FAKE_DIR/srun"
[[ -n ${FAKE_EXIT:-} ]] && exit "$FAKE_EXIT"
trap 'echo USR1 >>"$FAKE_DIR/srun.got"; exit 75' USR1
trap 'echo TERM >>"$FAKE_DIR/srun.got"; exit 143' TERM
touch "$FAKE_DIR/srun.started"
for ((i = 0; i < 600; i++)); do sleep 0.1; done
exit 3
EOF
cat >"$tmp/bin/scontrol" <<'EOF'
#!/usr/bin/env bash
case "$1 $2" in
  "show job")
    printf 'JobId=%s JobName=sg\n   UserId=root(0) GroupId=root(0)\n' "$3"
    [[ -n ${FAKE_COMMAND:-} ]] && printf '   Command=%s\n' "$FAKE_COMMAND"
    printf '   WorkDir=%s\n' "$PWD" ;;
  "requeue "*) echo "requeue $2" >>"$FAKE_DIR/requeue"; kill -TERM "$PPID" ;;
  *) echo "fake scontrol: $*" >&2; exit 1 ;;
esac
EOF
chmod +x "$tmp/bin/srun" "$tmp/bin/scontrol"
mkdir -p "$tmp/spool/job42" "$tmp/submit"
cp "$sbatch_file" "$tmp/spool/job42/slurm_script"  # what slurmd runs: a copy, far from the repository
cp "$cfg" "$tmp/submit/tiny.toml"
relative_command=$(realpath -m --relative-to="$tmp/submit" "$sbatch_file")
batch_env=(PATH="$tmp/bin:$PATH" SLURM_JOB_ID=42 SLURM_JOB_NAME=sg SLURM_SUBMIT_DIR="$tmp/submit"
  SLURM_CPUS_PER_TASK=1 RUN_DIR="$tmp/submit/run")
batch_run() {  # NAME [VAR=VALUE...]: the batch script to the end; rc
  local name=$1
  shift
  fresh
  log=$tmp/sbatch-$name.log rc=0
  (cd "$tmp/submit" && env "${batch_env[@]}" FAKE_COMMAND="$relative_command" "$@" \
    timeout 60 bash "$tmp/spool/job42/slurm_script" tiny.toml --set train.max_steps=3) >"$log" 2>&1 || rc=$?
  ((rc != 124)) || fail "sbatch $name: did not finish within 60 s"
}
batch_signal() {  # NAME SIGNAL [VAR=VALUE...]: SIGNAL to the batch script once srun runs; rc, seconds
  local name=$1 sig=$2 t
  shift 2
  fresh
  log=$tmp/sbatch-$name.log rc=0
  (cd "$tmp/submit" && exec env "${batch_env[@]}" FAKE_COMMAND="$relative_command" "$@" \
    bash "$tmp/spool/job42/slurm_script" tiny.toml) >"$log" 2>&1 &
  bg=$!
  wait_for 30 "sbatch $name: srun started" test -f "$FAKE_DIR/srun.started"
  t=$SECONDS
  kill "-$sig" "$bg"
  wait "$bg" || rc=$?
  bg=""
  seconds=$((SECONDS - t))
}

batch_run exit0 FAKE_EXIT=0
((rc == 0)) || fail "sbatch, srun exits 0: exit $rc"
says "training step ended with exit code 0" "sbatch, srun exits 0"
grep -q '^+ srun --mpi=pmix --label --cpus-per-task=1 ' "$log" || fail "sbatch: no '+ srun ...' command printed"
[[ $(<"$FAKE_DIR/srun") == "$(printf 'arg=%s\n' --mpi=pmix --label --cpus-per-task=1 "$tmp/bin/fake-train" \
  --config "$tmp/submit/tiny.toml" --run-dir "$tmp/submit/run" --resume auto --set runtime.threads=1 \
  --set train.max_steps=3)" ]] || fail "sbatch: srun got: $(tr '\n' ' ' <"$FAKE_DIR/srun")"
batch_run exit70 FAKE_EXIT=70
((rc == 70)) || fail "sbatch, srun exits 70: exit $rc"
ok "train.sbatch (a copy in a spool folder; the repository found through scontrol's Command=$relative_command):" \
  "srun exit codes 0 and 70 back; '+ srun ...' printed"

batch_signal term-requeue TERM
((rc == 143)) || fail "sbatch SIGTERM: exit $rc; expected 143 (ended by the SIGTERM of the requeue)"
((seconds < 20)) || fail "sbatch SIGTERM: the requeue's SIGTERM did not end the script at once (${seconds}s)"
[[ $(cat "$FAKE_DIR/srun.got" 2>/dev/null) == USR1 ]] ||
  fail "sbatch SIGTERM: srun got '$(cat "$FAKE_DIR/srun.got" 2>/dev/null)' instead of SIGUSR1"
says "train.sbatch: got SIGTERM; asking the ranks to checkpoint and stop (SIGUSR1 to srun)" "sbatch SIGTERM"
says "training step ended with exit code 75" "sbatch SIGTERM"
says "requeueing job 42 (restart 1)" "sbatch SIGTERM"
[[ $(cat "$FAKE_DIR/requeue" 2>/dev/null) == "requeue 42" ]] || fail "sbatch SIGTERM: scontrol requeue 42 not called"
batch_signal usr1-limit USR1 SLURM_RESTART_COUNT=1 SHARDGAN_MAX_RESTARTS=1
((rc == 75)) || fail "sbatch SIGUSR1 past SHARDGAN_MAX_RESTARTS: exit $rc, expected 75"
says "got SIGUSR1; asking the ranks to checkpoint and stop" "sbatch SIGUSR1"
says "not requeueing: restarted 1 times" "sbatch SIGUSR1 past SHARDGAN_MAX_RESTARTS"
[[ ! -e $FAKE_DIR/requeue ]] || fail "sbatch SIGUSR1 past SHARDGAN_MAX_RESTARTS: requeued anyway"
batch_signal usr2-norequeue USR2 SHARDGAN_REQUEUE=0
((rc == 75)) || fail "sbatch SIGUSR2, SHARDGAN_REQUEUE=0: exit $rc, expected 75"
[[ $(cat "$FAKE_DIR/srun.got" 2>/dev/null) == USR1 ]] || fail "sbatch SIGUSR2: srun did not get SIGUSR1"
says "not requeueing (SHARDGAN_REQUEUE=0)" "sbatch SIGUSR2, SHARDGAN_REQUEUE=0"
ok "train.sbatch: SIGTERM -> SIGUSR1 to srun -> 75 -> scontrol requeue, whose SIGTERM ends the script in" \
  "${seconds}s; SIGUSR1 past SHARDGAN_MAX_RESTARTS and SIGUSR2 with SHARDGAN_REQUEUE=0 -> exit 75, no requeue"

batch_run no-root FAKE_EXIT=0 FAKE_COMMAND=
((rc == 2)) || fail "sbatch without a way to the repository: exit $rc, expected 2"
says "train.sbatch: error: cannot find the shardgan repository (launch/lib.sh)" "sbatch without the repository"
[[ ! -e $FAKE_DIR/srun ]] || fail "sbatch without the repository: srun was started"
batch_run shardgan-root FAKE_EXIT=0 FAKE_COMMAND= SHARDGAN_ROOT="$src"
((rc == 0)) || fail "sbatch with SHARDGAN_ROOT: exit $rc"
ok "train.sbatch: no Command= and a submit folder without the repository -> exit 2, one line, srun not started;" \
  "SHARDGAN_ROOT then works"

echo "PASS: mpirun policy and signal forwarding of the launch paths in $((SECONDS - t0))s"
