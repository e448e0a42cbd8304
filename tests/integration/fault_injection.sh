#!/usr/bin/env bash
# Nothing lost when a run folder is shared or the disk fills, for real (as root: it mounts tmpfs). A tiny conditional
# DCGAN on the real Fashion-MNIST test split (16x16), 1 rank unless said otherwise:
#   1-3. a small tmpfs as the run folder, holding a copy of a step-20 checkpoint and filled (fallocate) so that the
#        resumed run runs out of space at (1) its next checkpoint, half-way through, (2) a sample grid, (3) a
#        metrics row: exit 1..127 (no abort), exactly one "error:" line naming the file and "No space left on
#        device", stderr < 64 KiB, no temporary or staging entry left; with the space freed, --resume auto
#        continues from the step-20 checkpoint;
#   4. two trainers on one folder: the second (1 rank, then 2 ranks under mpirun) is refused within seconds with one
#      line naming the holder and writes nothing; then both started at once with --resume auto: one trains, the
#      other is refused;
#   5. a file system without locks (flock fails with ENOLCK, injected by strace): refused with one line;
#   6. metrics.jsonl with a 1 GiB sparse tail of NULs (what a power cut leaves), then with one 100 MB line:
#      --resume auto works, peak RSS < 1 GiB, wall time < 30 s, the rejected tail stays sparse.
# Usage: fault_injection.sh SHARDGAN_PACK SHARDGAN_TRAIN MPIEXEC [MPIEXEC FLAGS...]
set -uo pipefail
# shellcheck source=tests/support/tiny_model.sh
source "$(dirname "$0")/../support/tiny_model.sh"
pack=$1 train=$2
shift 2
mpiexec=("$@")
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: needs root (mounts tmpfs)"
  exit 77
fi
tmp=$(mktemp -d /tmp/shardgan-fault-injection-XXXXXX)
mnt=$tmp/run
mkdir "$mnt"
if ! mount -t tmpfs -o size=4m tmpfs "$mnt"; then
  rm -rf "$tmp"
  echo "SKIP: root here may not mount a tmpfs"
  exit 77
fi
umount "$mnt"
started=()  # background jobs, ended by pid in cleanup
cleanup() {
  for pid in "${started[@]}"; do kill -CONT "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null; done
  mountpoint -q "$mnt" && umount -l "$mnt"
  if [[ ${SHARDGAN_KEEP:-0} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.err; do [[ -s $f ]] && { echo "--- $f"; tail -5 "$f"; }; done; exit 1; }
command -v strace >/dev/null || fail "strace is missing (launch/bootstrap.sh installs it)"

"$pack" fashion-mnist --split test --size 16 --out "$tmp/data" >/dev/null || fail "packing"
# No rows, grids or checkpoints unless a case asks for them (--set): the failing write is the one each case wants.
tiny_signal_test_toml "$tmp/data" 600 >"$tmp/tiny.toml"
run() {  # NAME RUN_DIR [args]: one rank in the foreground; $rc, $ms (wall time)
  local name=$1 dir=$2 t0
  shift 2
  t0=$(date +%s%N)
  "$train" --config "$tmp/tiny.toml" --run-dir "$dir" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
}
# The one error line: exit 1..127 (not an abort), exactly one "error:" line holding every NEEDLE, stderr < 64 KiB.
one_error_line() {  # NAME NEEDLE...
  local name=$1 line
  shift
  ((rc >= 1 && rc <= 127)) || fail "$name: exit code $rc, expected 1..127"
  (($(grep -c 'error:' "$tmp/$name.err") == 1)) || fail "$name: not exactly one error line"
  (($(stat -c %s "$tmp/$name.err") < 65536)) || fail "$name: stderr is $(stat -c %s "$tmp/$name.err") bytes"
  line=$(grep 'error:' "$tmp/$name.err")
  for needle in "$@"; do [[ $line == *"$needle"* ]] || fail "$name: '$needle' not in: $line"; done
}
run seed "$tmp/seed" --set train.max_steps=20
[[ $rc -eq 0 && -f $tmp/seed/checkpoints/step-000020/state.json ]] || fail "seed run (exit $rc)"

# 1-3. A full tmpfs. FREE is what is left after the filler: the lock file and config.toml take a page each (4 KiB,
# before the first step), the rest is what the case's write finds.
full_disk() {  # CASE NAME FREE_BYTES FILE_REGEX [--set ...]
  local case=$1 name=$2 free=$3 file=$4 avail leftover
  shift 4
  mkdir -p "$mnt"
  mount -t tmpfs -o size=4m tmpfs "$mnt" || fail "$name: cannot mount a tmpfs"
  cp -a "$tmp/seed/checkpoints" "$mnt/"
  avail=$(($(stat -f -c '%a * %S' "$mnt")))
  fallocate -l $((avail - free)) "$mnt/filler" || fail "$name: fallocate"
  run "$name" "$mnt" --resume auto --set train.max_steps=1000 "$@"
  one_error_line "$name" "$mnt/"
  [[ $(grep 'error:' "$tmp/$name.err") =~ $mnt/$file": write failed (No space left on device)"$ ]] ||
    fail "$name: the error line does not name $file and the reason"
  leftover=$(find "$mnt" -name '*.tmp*' -o -name 'run.lock' -o -name 'events.out.tfevents.*' -size 0 | head -3)
  [[ -z $leftover ]] || fail "$name: left behind: $leftover"
  if [[ -e $mnt/metrics.jsonl ]]; then  # no row cut short
    python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$mnt/metrics.jsonl" ||
      fail "$name: metrics.jsonl has a broken line"
  fi
  [[ $(cat "$mnt/checkpoints/latest") == step-000020 ]] || fail "$name: latest changed"
  echo "ok $case: $name: exit $rc after ${ms} ms: $(grep 'error:' "$tmp/$name.err")"
  rm "$mnt/filler"
  run "$name-resume" "$mnt" --resume auto --set train.max_steps=25
  [[ $rc -eq 0 ]] || fail "$name: --resume auto after freeing space: exit $rc"
  grep -q "resuming from $mnt/checkpoints/step-000020 (step 20)" "$tmp/$name-resume.err" ||
    fail "$name: did not resume from step 20"
  echo "ok $case: $name: space freed, --resume auto continued from the step-20 checkpoint"
  umount "$mnt" || fail "$name: umount"
}
# The checkpoint at step 40 (836 KiB: 5 archives, config.toml, state.json) finds room for about half of itself.
ckpt=$(du -sb "$tmp/seed/checkpoints/step-000020" | cut -f1)
# Cases 1-3 are about their own files: TensorBoard's event file (a page at the start) is off there; 3b is its case.
full_disk 1 checkpoint $((8192 + ckpt / 2)) "checkpoints/step-000040/[a-z_]+[.]pt" --set train.log_every=1000 \
  --set output.tensorboard=false
# The grid at step 30 (about 20 KB) finds 8 KiB.
full_disk 2 sample-grid $((8192 + 8192)) "samples/step-000030[.]png" \
  --set train.log_every=1000 --set output.sample_every_steps=30 --set output.tensorboard=false
# The first row (step 25) needs a page for metrics.jsonl; none is left.
full_disk 3 metrics-row 8192 "metrics[.]jsonl" --set output.tensorboard=false
# The event file's first records (the configuration, hparams; written before the first step) find no page; the file
# holding no whole record is removed.
full_disk 3b event-file 8192 "events[.]out[.]tfevents[.][0-9]+[.][^/]+"

# 4. Two trainers, one folder.
snapshot() { find "$1" -printf '%P %s %T@\n' | sort; }
"$train" --config "$tmp/tiny.toml" --run-dir "$tmp/race" --set train.max_steps=1000000 >"$tmp/first.out" \
  2>"$tmp/first.err" &
first=$!
started+=("$first")
for ((i = 0; i < 600; i++)); do grep -qs "pid $first " "$tmp/race/run.lock" && break; sleep 0.1; done
grep -qs "pid $first " "$tmp/race/run.lock" || fail "race: the first trainer did not take the lock"
kill -STOP "$first"  # it holds the lock and writes nothing while the second one tries
before=$(snapshot "$tmp/race")
holder="$tmp/race: in use by shardgan-train pid $first on host $(hostname) since 20"
run second "$tmp/race"
one_error_line second "$holder" "Z; wait for it to end"
((ms < 10000)) || fail "race: the second trainer took $ms ms to give up"
[[ $(snapshot "$tmp/race") == "$before" ]] || fail "race: the second trainer changed the run folder"
echo "ok 4: a second trainer on the folder: exit $rc after $ms ms, nothing written: $(grep 'error:' "$tmp/second.err")"
t0=$(date +%s%N)
"${mpiexec[@]}" -np 2 "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/race" --resume auto \
  >"$tmp/second-mpi.out" 2>"$tmp/second-mpi.err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[[ $rc -ne 0 ]] || fail "race: a 2-rank second trainer was not refused"
grep -q "error: rank 0: $holder" "$tmp/second-mpi.err" || fail "race: no holder line from the 2-rank trainer"
((ms < 20000)) || fail "race: the 2-rank second trainer took $ms ms to give up"
[[ $(snapshot "$tmp/race") == "$before" ]] || fail "race: the 2-rank second trainer changed the run folder"
echo "ok 4: a 2-rank second trainer: exit $rc after $ms ms (MPI_Abort), nothing written"
kill -CONT "$first"
kill -TERM "$first"
wait "$first"
rc=$?
[[ $rc -eq 75 ]] || fail "race: the first trainer ended with $rc, expected 75 (stopped by a signal)"
step=$(sed -n 's/.*stopped by a signal after step \([0-9]*\).*/\1/p' "$tmp/first.err")
[[ ! -e $tmp/race/run.lock ]] || fail "race: the lock file stayed after a clean stop"
# Both at once, both resuming the same checkpoint: one wins, the other is refused before it resumes anything.
pids=()
for who in a b; do
  "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/race" --resume auto --set train.max_steps=1000000 \
    >"$tmp/both-$who.out" 2>"$tmp/both-$who.err" &
  pids+=($!)
  started+=($!)
done
loser=""
for ((i = 0; i < 600; i++)); do
  for j in 0 1; do kill -0 "${pids[j]}" 2>/dev/null || loser=$j; done
  [[ -n $loser ]] && break
  sleep 0.1
done
[[ -n $loser ]] || fail "race: neither of two trainers on one folder was refused"
winner=$((1 - loser))
wait "${pids[loser]}"
rc=$?
who=$([[ $loser -eq 0 ]] && echo a || echo b)
one_error_line "both-$who" "$tmp/race: in use by shardgan-train pid ${pids[winner]} on host"
grep -q "resuming from" "$tmp/both-$who.err" && fail "race: the refused trainer resumed"
kill -0 "${pids[winner]}" 2>/dev/null || fail "race: the winner is not running"
# Stop it once it has resumed (a loaded machine may still have it reading the checkpoint).
who=$([[ $winner -eq 0 ]] && echo a || echo b)
for ((i = 0; i < 600; i++)); do grep -qs "resuming from" "$tmp/both-$who.err" && break; sleep 0.1; done
kill -TERM "${pids[winner]}"
wait "${pids[winner]}"
rc=$?
[[ $rc -eq 75 ]] || fail "race: the winner ended with $rc, expected 75"
who=$([[ $winner -eq 0 ]] && echo a || echo b)
grep -q "resuming from $tmp/race/checkpoints/step-$(printf %06d "$step") (step $step)" "$tmp/both-$who.err" ||
  fail "race: the winner did not resume from step $step"
echo "ok 4: two trainers with --resume auto at once: one resumed from step $step, the other was refused"

# 5. No locks on the file system (Lustre without -o flock): refused, and the folder left as it was (empty).
# HDF5's own file locks (also flock) are switched off so that the injected error reaches the run lock.
mkdir "$tmp/nolock"
HDF5_USE_FILE_LOCKING=FALSE strace -f -qq -o /dev/null -e trace=flock -e inject=flock:error=ENOLCK \
  "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/nolock" >"$tmp/nolock.out" 2>"$tmp/nolock.err"
rc=$?
one_error_line nolock "$tmp/nolock: cannot lock $tmp/nolock/run.lock (No locks available)" "-o flock"
[[ -z $(ls -A "$tmp/nolock") ]] || fail "nolock: the run folder is not empty: $(ls -A "$tmp/nolock")"
echo "ok 5: no flock on the file system: exit $rc: $(grep 'error:' "$tmp/nolock.err")"

# 6. metrics.jsonl with what a power cut leaves (a sparse tail of NULs), then with one huge line.
measure() {  # NAME RUN_DIR [args]: like run, and $kb (peak RSS, /usr/bin/time -v, else Python's getrusage)
  local name=$1 dir=$2 t0
  shift 2
  t0=$(date +%s%N)
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -v -o "$tmp/$name.time" "$train" --config "$tmp/tiny.toml" --run-dir "$dir" "$@" \
      >"$tmp/$name.out" 2>"$tmp/$name.err"
    rc=$?
    kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/$name.time")
  else
    python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:], stdout=open(sys.argv[1] + ".out", "w"), stderr=open(sys.argv[1] + ".err", "w"))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$tmp/$name" "$train" --config "$tmp/tiny.toml" --run-dir "$dir" "$@" >"$tmp/$name.time"
    rc=$?
    kb=$(cat "$tmp/$name.time")
  fi
  ms=$((($(date +%s%N) - t0) / 1000000))
}
bounded_resume() {  # CASE NAME: resumes $tmp/NAME from step 20; checks exit, RSS, time and what was moved aside
  local case=$1 name=$2 dir=$tmp/$2
  measure "$name" "$dir" --resume auto --set train.max_steps=25
  [[ $rc -eq 0 ]] || fail "$name: --resume auto: exit $rc"
  grep -q "(step 20)" "$tmp/$name.err" || fail "$name: did not resume from step 20"
  if [[ -z $kb ]] || ((kb >= 1048576)); then fail "$name: peak RSS ${kb:-?} kB"; fi
  ((ms < 30000)) || fail "$name: took $ms ms"
  python3 - "$dir/metrics.jsonl" <<'PY' || fail "$name: metrics.jsonl after the resume"
import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1])]
assert steps == [5, 10, 15, 20, 25], steps
PY
  echo "ok $case: $name: --resume auto in $ms ms, peak RSS $((kb / 1024)) MiB;" \
    "metrics.rejected.jsonl $(stat -c %s "$dir/metrics.rejected.jsonl") bytes, $(du -k "$dir/metrics.rejected.jsonl" |
      cut -f1) KiB on disk"
}
cp -a "$tmp/seed" "$tmp/sparse"
truncate -s +1G "$tmp/sparse/metrics.jsonl"
bounded_resume 6 sparse
(($(stat -c %s "$tmp/sparse/metrics.rejected.jsonl") > (1 << 30))) || fail "sparse: the NUL tail was not moved aside"
(($(du -k "$tmp/sparse/metrics.rejected.jsonl" | cut -f1) < 1024)) || fail "sparse: the moved tail is not sparse"
cp -a "$tmp/seed" "$tmp/long"
# A row by its step (7 <= 20), but a line over the 1 MiB limit: moved aside unparsed, whole.
{ printf '{"step":7,"pad":"'; head -c 100000000 /dev/zero | tr '\0' x; printf '"}\n'; } >"$tmp/long-line"
cat "$tmp/long-line" >>"$tmp/long/metrics.jsonl"
bounded_resume 6 long
cmp -s "$tmp/long-line" "$tmp/long/metrics.rejected.jsonl" || fail "long: the line was not moved aside whole"
