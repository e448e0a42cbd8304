#!/usr/bin/env bash
# `cmake --install` into a relocatable prefix, used as a user of it would, far from the build (label install):
#   1. cmake --install BUILD --prefix TMP/P, then mv P Q: the prefix is used only at its new path.
#   2. What is installed: the four tools in Q/bin and no test program; configs/, launch/ and cluster/ in
#      Q/share/shardgan; the module file Q/share/modulefiles/shardgan/VERSION.lua; the docs in Q/share/doc/shardgan.
#      No installed file (binaries included) names the build folder, the source folder or P; each tool's RUNPATH
#      starts with $ORIGIN/, and ldd finds every library with an empty environment (no LD_LIBRARY_PATH).
#   3. launch/lib.sh's find_tool, with fake tools: SHARDGAN_TRAIN, then SHARDGAN_BIN, then SHARDGAN_BUILD_DIR (a
#      variable naming nothing: exit 2); then Q/bin for the installed scripts (which never look for a build/), a
#      checkout's build/src for a checkout's; then PATH.
#   4. With only PATH=Q/bin:/usr/bin:/bin (no SHARDGAN_* variable, no LD_LIBRARY_PATH) in a folder outside the checkout:
#      the installed quickstart.sh --setup-only neither installs nor builds; shardgan-pack packs 2,000 images of
#      Fashion-MNIST's test split at 16x16; Q/share/shardgan/launch/train-local.sh trains the tests' tiny model
#      (tests/support/tiny_model.sh) 20 steps on 2 ranks with Q/bin/shardgan-train (the mpirun command it prints says
#      so); shardgan-sample writes a grid and --score prints D's mean; shardgan-eval trains a small classifier and
#      scores the checkpoint.
#      The installed cluster/slurm/train.sbatch and pack.sbatch, run from a spool copy as Slurm runs them (fake srun
#      and scontrol): they find Q/share/shardgan through Slurm's Command= or SHARDGAN_ROOT=Q, and start Q/bin's tools.
#   5. The Lmod module: `module use Q/share/modulefiles; module load shardgan` puts Q/bin first on PATH and sets
#      SHARDGAN_ROOT=Q, SHARDGAN_SHARE=Q/share/shardgan (Debian's lmod; without it: `luac -p` where a Lua compiler
#      exists, else a note that the module was not checked).
# Usage: install_test.sh CMAKE BUILD_DIR SOURCE_DIR   Exit: 0 pass, 1 fail, 2 bad usage.
# Environment: SHARDGAN_MPIRUN (mpirun to use; default mpirun on /usr/bin:/bin), SHARDGAN_TEST_KEEP=1 keeps the
# temp folder.
set -euo pipefail
if (($# != 3)); then
  echo "usage: install_test.sh CMAKE BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
cmake=$1
build=$(realpath "$2")
src=$(realpath "$3")
# shellcheck source=tests/support/tiny_model.sh
source "$src/tests/support/tiny_model.sh"
# shellcheck source=tests/support/shell_test.sh
source "$src/tests/support/shell_test.sh"
mpirun_env=()
[[ -n ${SHARDGAN_MPIRUN:-} ]] && mpirun_env=(SHARDGAN_MPIRUN="$SHARDGAN_MPIRUN")

tmp=$(mktemp -d /tmp/shardgan-install-XXXXXX)
trap 'remove_unless_kept "$tmp"' EXIT
# A command with nothing but Q/bin and the system on PATH, from $tmp/work (outside the checkout and the build), for at
# most 180 s (a hang fails here, with the command's output, rather than at CTest's timeout).
clean() { (cd "$tmp/work" && timeout -k 10 180 env -i HOME="$tmp/work" USER="${USER:-$(id -un)}" \
  PATH="$Q/bin:/usr/bin:/bin" "${mpirun_env[@]}" "$@"); }

# --- 1. install, then move -----------------------------------------------------------------------------------------
P=$tmp/P Q=$tmp/Q
log=$tmp/install.log
"$cmake" --install "$build" --prefix "$P" >"$log" 2>&1 || fail "cmake --install $build --prefix $P"
mv "$P" "$Q"
mkdir -p "$tmp/work"
version=$(sed -n 's/^project(shardgan VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
ok "cmake --install $build --prefix $P ($(grep -c '^-- Installing' "$log") files), moved to $Q"

# --- 2. what is installed, and that nothing in it names the build, the source or the first prefix ----------------
tools=(shardgan-pack shardgan-train shardgan-sample shardgan-eval)
for t in "${tools[@]}"; do [[ -x $Q/bin/$t ]] || fail "Q/bin/$t missing"; done
extra=$(find "$Q/bin" -mindepth 1 -printf '%f\n' | grep -vxE 'shardgan-(pack|train|sample|eval)' || true)
[[ -z $extra ]] || fail "Q/bin has more than the four tools: $extra"
found=$(find "$Q" -name '*_test' -o -name 'shardgan-fixtures' -o -name 'shardgan-mpi-probe' -o -name '*emulated*')
[[ -z $found ]] || fail "test programs installed: $found"
for f in share/shardgan/configs/fashion_mnist.toml share/shardgan/launch/train-local.sh \
  share/shardgan/launch/train-hosts.sh share/shardgan/launch/quickstart.sh share/shardgan/launch/lib.sh \
  share/shardgan/launch/mpi-flags.sh share/shardgan/launch/installed.sh share/shardgan/cluster/slurm/train.sbatch \
  share/shardgan/cluster/slurm/pack.sbatch "share/modulefiles/shardgan/$version.lua" share/doc/shardgan/README.md \
  share/doc/shardgan/docs/cluster.md; do
  [[ -f $Q/$f ]] || fail "$f not installed"
done
for f in launch/train-local.sh launch/train-hosts.sh launch/quickstart.sh cluster/slurm/train.sbatch; do
  [[ -x $Q/share/shardgan/$f ]] || fail "share/shardgan/$f is not executable"
done
# A path as a whole: "/shardgan" (the Debian 13 leg's checkout) must not match "share/shardgan" or "/shardgan-x".
names_path() {  # PATH: the installed files that name PATH (or a file below it)
  local re
  # shellcheck disable=SC2001,SC2016  # the regex metacharacters, escaped
  re=$(sed 's/[][\\.*^$()+?{}|]/\\&/g' <<<"$1")
  grep -rlaE -- "(^|[^A-Za-z0-9_.~/-])$re(/|[^A-Za-z0-9_.-]|\$)" "$Q" || true
}
for path in "$build" "$src" "$P"; do
  hits=$(names_path "$path")
  [[ -z $hits ]] || fail "installed files name $path: $hits"
done
runpaths=()
for t in "${tools[@]}"; do
  rp=$(readelf -d "$Q/bin/$t" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p')
  [[ $rp == "\$ORIGIN/"* ]] || fail "$t: RUNPATH '$rp' does not start with \$ORIGIN/"
  [[ $rp != *"$build"* && $rp != *"$src"* ]] || fail "$t: RUNPATH '$rp' names the build or source folder"
  missing=$(env -i "$(command -v ldd)" "$Q/bin/$t" | grep 'not found' || true)
  [[ -z $missing ]] || fail "$t: ldd with an empty environment: $missing"
  runpaths+=("$t: $rp")
done
ok "installed: 4 tools (no test program), scripts, configs, module file, docs; no file names the build" \
  "($build), the source ($src) or $P; RUNPATHs ($(printf '%s; ' "${runpaths[@]}")); ldd finds every library"

# --- 3. find_tool's order, with fake tools -------------------------------------------------------------------------
mkdir -p "$tmp/fake/bin" "$tmp/fake/dir" "$tmp/fake/build/src" "$tmp/checkout/build/src" "$tmp/path"
cp -r "$src/launch" "$tmp/checkout/"
rm -f "$tmp/checkout/launch/installed.sh"
for f in fake/bin/train fake/dir/shardgan-train fake/build/src/shardgan-train checkout/build/src/shardgan-train \
  path/shardgan-train path/shardgan-none; do
  printf '#!/bin/sh\nexit 0\n' >"$tmp/$f"
  chmod +x "$tmp/$f"
done
lookup() {  # EXPECTED ROOT NAME [VAR=VALUE...]: launch/lib.sh's find_tool NAME from ROOT, in a clean environment
  local want=$1 root=$2 name=$3 got rc=0
  shift 3
  # shellcheck disable=SC2016  # expanded by the inner bash
  got=$(cd "$tmp/work" && env -i PATH="$tmp/path:/usr/bin:/bin" "$@" bash -c \
    'set -euo pipefail; prog=lookup root=$1; source "$root/launch/lib.sh"; find_tool "$2"' _ "$root" "$name" \
    2>"$tmp/lookup.err") || rc=$?
  if [[ $want == error ]]; then
    ((rc == 2)) || fail "find_tool $name from $root with $*: exit $rc ($got), expected 2"
    grep -q "^lookup: $name not found" "$tmp/lookup.err" ||
      fail "find_tool $name from $root with $*: said '$(cat "$tmp/lookup.err")'"
  else
    ((rc == 0)) || fail "find_tool $name from $root with $*: exit $rc: $(cat "$tmp/lookup.err")"
    [[ $got == "$want" ]] || fail "find_tool $name from $root with $*: got $got, expected $want"
  fi
}
share=$Q/share/shardgan
lookup "$Q/bin/shardgan-train" "$share" shardgan-train
lookup "$tmp/fake/bin/train" "$share" shardgan-train SHARDGAN_TRAIN="$tmp/fake/bin/train" SHARDGAN_BIN="$tmp/fake/dir"
lookup "$tmp/fake/dir/shardgan-train" "$share" shardgan-train SHARDGAN_BIN="$tmp/fake/dir" \
  SHARDGAN_BUILD_DIR="$tmp/fake/build"
lookup "$tmp/fake/build/src/shardgan-train" "$share" shardgan-train SHARDGAN_BUILD_DIR="$tmp/fake/build"
lookup error "$share" shardgan-train SHARDGAN_TRAIN="$tmp/nothing"
lookup "$Q/bin/shardgan-pack" "$share" shardgan-pack SHARDGAN_TRAIN="$tmp/fake/bin/train"
lookup "$tmp/path/shardgan-none" "$share" shardgan-none  # not in Q/bin: PATH, and no build/ looked for
lookup "$tmp/checkout/build/src/shardgan-train" "$tmp/checkout" shardgan-train
lookup "$tmp/checkout/build/src/shardgan-train" "$tmp/checkout" shardgan-train SHARDGAN_BUILD_DIR= \
  SHARDGAN_TRAIN=  # empty variables count as unset
rm "$tmp/checkout/build/src/shardgan-train"
lookup "$tmp/path/shardgan-train" "$tmp/checkout" shardgan-train
lookup error "$tmp/checkout" shardgan-eval
ok "find_tool: SHARDGAN_TRAIN > SHARDGAN_BIN > SHARDGAN_BUILD_DIR (naming nothing: exit 2) > the installed bin/" \
  "(installed scripts) or build/src (a checkout) > PATH"

# --- 4. pack, train on 2 ranks, sample and score with the installed tools only -------------------------------------
log=$tmp/quickstart.log
clean "$share/launch/quickstart.sh" --setup-only >"$log" 2>&1 || fail "installed quickstart.sh --setup-only"
grep -q "installed copy ($share): nothing to install or build" "$log" || fail "installed quickstart.sh --setup-only"
log=$tmp/pack.log
t=$SECONDS
clean shardgan-pack fashion-mnist --split test --size 16 --max-images 2000 --out data >"$log" 2>&1 ||
  fail "shardgan-pack fashion-mnist (from Q/bin)"
clean shardgan-pack verify data >>"$log" 2>&1 || fail "shardgan-pack verify"
took=("pack $((SECONDS - t))s")
{ tiny_model_toml "$tmp/work/data"; cat <<TOML
[train]
batch_size = 16
max_steps = 20
log_every = 5
[output]
sample_every_steps = 10
[runtime]
threads = 1
TOML
} >"$tmp/work/tiny.toml"
log=$tmp/train.log
t=$SECONDS
clean "$share/launch/train-local.sh" 2 tiny.toml --run-dir run >"$log" 2>&1 ||
  fail "Q/share/shardgan/launch/train-local.sh 2 tiny.toml"
grep '^+ ' "$log" | grep -qF " $Q/bin/shardgan-train --config $tmp/work/tiny.toml " ||
  fail "train-local.sh did not start Q/bin/shardgan-train: $(grep '^+ ' "$log" || echo 'no command printed')"
for f in run/metrics.jsonl run/report.html run/losses.png run/samples/step-000010.png run/checkpoints/latest; do
  [[ -e $tmp/work/$f ]] || fail "training wrote no $f: $(find "$tmp/work/run" -maxdepth 2 | tr '\n' ' ')"
done
grep -q '"step":20' "$tmp/work/run/metrics.jsonl" || fail "metrics.jsonl has no step 20"
took+=("train $((SECONDS - t))s")
log=$tmp/sample.log
t=$SECONDS
clean shardgan-sample --checkpoint run --n 20 --out grid.png --score >"$log" 2>&1 || fail "shardgan-sample --score"
[[ -s $tmp/work/grid.png ]] || fail "shardgan-sample wrote no grid.png"
d_score=$(sed -n 's/^discriminator mean probability on 20 samples: \(0\.[0-9]*\)$/\1/p' "$log")
[[ -n $d_score ]] || fail "shardgan-sample --score printed no D(G(z)) for 20 samples"
took+=("sample $((SECONDS - t))s")
log=$tmp/eval.log
t=$SECONDS
clean shardgan-eval train-classifier --data data --out clf.pt --epochs 1 --width 8 --threads 2 >"$log" 2>&1 ||
  fail "shardgan-eval train-classifier"
clean shardgan-eval score --checkpoint run --classifier clf.pt --data data --n 500 --threads 2 --out score.json \
  >>"$log" 2>&1 || fail "shardgan-eval score"
fd=$(/usr/bin/python3 - "$tmp/work/score.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["step"] == 20 and d["fd_clf"] > 0 and 0 <= d["class_consistency"] <= 1, d
print("FD-clf %.1f, class consistency %.3f" % (d["fd_clf"], d["class_consistency"]))
PY
) || fail "score.json: $(head -c 300 "$tmp/work/score.json")"
took+=("eval $((SECONDS - t))s")
ok "from $tmp/work with PATH=Q/bin:/usr/bin:/bin only: packed 2000 images, trained 20 steps on 2 ranks through" \
  "Q/share/shardgan/launch/train-local.sh (Q/bin/shardgan-train), sampled (D(G(z)) = $d_score), scored at step 20" \
  "($fd); ${took[*]}"

# --- 4b. the installed Slurm scripts, run as Slurm runs them (a spooled copy), with fake srun and scontrol ----------
# scontrol show job: Command= the installed script (or nothing); srun records its arguments and exits 0.
mkdir -p "$tmp/slurm/bin" "$tmp/slurm/spool"
cat >"$tmp/slurm/bin/scontrol" <<'SH'
#!/bin/sh
[ "$1 $2" = "show job" ] || exit 1
echo "JobId=$3 JobName=sg"
[ -n "$FAKE_COMMAND" ] && echo "   Command=$FAKE_COMMAND"
exit 0
SH
cat >"$tmp/slurm/bin/srun" <<'SH'
#!/bin/sh
printf '%s\n' "$@" >"$FAKE_SRUN_ARGS"
SH
chmod +x "$tmp/slurm/bin/scontrol" "$tmp/slurm/bin/srun"
sbatch_run() {  # SCRIPT COMMAND= [VAR=VALUE...] -- ARGS: the installed cluster/slurm/SCRIPT from a spool copy
  local script=$1 command=$2
  shift 2
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  cp "$share/cluster/slurm/$script" "$tmp/slurm/spool/slurm_script"
  rm -f "$tmp/slurm/srun.args"
  log=$tmp/slurm/$script.log
  (cd "$tmp/work" && timeout 60 env -i HOME="$tmp/work" PATH="$tmp/slurm/bin:/usr/bin:/bin" SLURM_JOB_ID=7 \
    SLURM_SUBMIT_DIR="$tmp/work" FAKE_COMMAND="$command" FAKE_SRUN_ARGS="$tmp/slurm/srun.args" "${envs[@]}" \
    bash "$tmp/slurm/spool/slurm_script" "$@") >"$log" 2>&1 || fail "installed $script (Command=$command) failed"
}
sbatch_run train.sbatch "$share/cluster/slurm/train.sbatch" RUN_DIR="$tmp/work/sbatch-run" -- tiny.toml
grep -qxF "$Q/bin/shardgan-train" "$tmp/slurm/srun.args" ||
  fail "installed train.sbatch did not start Q/bin/shardgan-train: $(tr '\n' ' ' <"$tmp/slurm/srun.args")"
sbatch_run train.sbatch "" RUN_DIR="$tmp/work/sbatch-run" SHARDGAN_ROOT="$Q" -- tiny.toml
grep -qxF "$Q/bin/shardgan-train" "$tmp/slurm/srun.args" ||
  fail "train.sbatch with SHARDGAN_ROOT=Q did not start Q/bin/shardgan-train"
sbatch_run pack.sbatch "$share/cluster/slurm/pack.sbatch" -- info data
[[ $(<"$tmp/slurm/srun.args") == "$(printf '%s\n' --ntasks=1 --nodes=1 "$Q/bin/shardgan-pack" info data)" ]] ||
  fail "installed pack.sbatch: srun got $(tr '\n' ' ' <"$tmp/slurm/srun.args")"
ok "the installed train.sbatch and pack.sbatch, spooled, find Q/share/shardgan (through Slurm's Command=, or" \
  "SHARDGAN_ROOT=Q as the module sets it) and start Q/bin's tools"

# --- 5. the Lmod module ------------------------------------------------------------------------------------------
lmod=""
for f in /usr/share/lmod/lmod/libexec/lmod /usr/share/lmod/*/libexec/lmod; do [[ -x $f ]] && { lmod=$f; break; }; done
module_file=$Q/share/modulefiles/shardgan/$version.lua
if [[ -n $lmod ]]; then
  log=$tmp/module.log
  # shellcheck disable=SC2016  # expanded by the inner bash
  got=$(env -i HOME="$tmp/work" PATH=/usr/bin:/bin MODULEPATH="$Q/share/modulefiles" bash -c \
    'eval "$("$1" bash load shardgan)" && command -v shardgan-train && echo "$SHARDGAN_ROOT" "$SHARDGAN_SHARE" &&
     echo "${PATH%%:*}"' _ "$lmod" 2>"$log") || fail "module load shardgan ($lmod)"
  [[ $got == "$(printf '%s\n' "$Q/bin/shardgan-train" "$Q $share" "$Q/bin")" ]] ||
    fail "module load shardgan: got $(tr '\n' ' ' <<<"$got")"
  [[ ! -s $log ]] || fail "module load shardgan printed: $(cat "$log")"
  # Copied where PREFIX cannot be worked out from its path, it says which line to edit.
  mkdir -p "$tmp/mods/shardgan"
  cp "$module_file" "$tmp/mods/shardgan/$version.lua"
  env -i HOME="$tmp/work" PATH=/usr/bin:/bin MODULEPATH="$tmp/mods" "$lmod" bash load shardgan >/dev/null 2>"$log" ||
    true
  grep -q "ADMIN" "$log" || fail "module load of a copy outside PREFIX: no pointer to the ADMIN line: $(cat "$log")"
  ok "module use Q/share/modulefiles; module load shardgan ($lmod): PATH starts with Q/bin, SHARDGAN_ROOT=Q," \
    "SHARDGAN_SHARE=Q/share/shardgan; a copy elsewhere stops with the line to edit"
elif luac=$(command -v luac luac5.4 luac5.3 luac5.1 2>/dev/null | head -1) && [[ -n $luac ]]; then
  "$luac" -p "$module_file" || fail "$luac -p $module_file"
  ok "no Lmod here: the module file parses ($luac -p); not loaded"
else
  echo "note: neither Lmod nor a Lua compiler here (apt-get install lmod): the module file was not checked"
fi

echo "PASS: cmake --install, moved, used from PATH alone, in $((SECONDS - t0))s"
