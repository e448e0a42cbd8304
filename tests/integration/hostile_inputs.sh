#!/usr/bin/env bash
# Hostile inputs to the tools, for real: special files where a regular file or a folder belongs (a FIFO, /dev/zero,
# a folder, a link to a device, a dangling link) and oversized inputs (a config over its limit, megabyte keys). Each
# must end by itself, within 30 s and under 1 GiB of memory, with an exit code 1..127 and ONE short "error:" line
# naming what is wrong: no hang, no endless allocation, no megabytes of echoed input.
# Usage: hostile_inputs.sh SHARDGAN_TRAIN SHARDGAN_SAMPLE SHARDGAN_PACK SHARDGAN_FIXTURES SHARDGAN_EVAL
set -uo pipefail
train=$1 sample=$2 pack=$3 fixtures=$4 eval=$5
tmp=$(mktemp -d /tmp/shardgan-hostile-XXXXXX)
cleanup() {
  if [[ ${SHARDGAN_KEEP:-0} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
failures=0
max_rss_kib=$((1024 * 1024))
have_time=0
[[ -x /usr/bin/time ]] && have_time=1
((have_time)) || echo "note: /usr/bin/time is missing: peak memory is not checked"

# A tiny data set of 3 shards (4 images each), and a configuration that trains it for 2 steps.
"$fixtures" cifar10 --out "$tmp/fx" --records 10 >/dev/null || { echo "FAIL: fixtures"; exit 1; }
"$pack" cifar10 --input "$tmp/fx/cifar-10-batches-bin" --classes 0,1 --split all --shard-size 4 --out "$tmp/data" \
  >/dev/null 2>&1 || { echo "FAIL: packing"; exit 1; }
# shellcheck source=tests/support/tiny_model.sh
source "$(dirname "$0")/../support/tiny_model.sh"
config_for() {  # DATA_DIR: a complete small configuration
  tiny_model_toml "$1"
  cat <<TOML
[train]
batch_size = 4
max_steps = 2
[output]
sample_every_epochs = 1000
[runtime]
threads = 1
TOML
}
config_for "$tmp/data" >"$tmp/ok.toml"

# expect NAME PHRASE COMMAND...: COMMAND ends within 30 s, exit 1..127, one "error:" line holding PHRASE, stderr
# under 64 KiB, peak RSS under 1 GiB.
expect() {
  local name=$1 phrase=$2
  shift 2
  local err="$tmp/$name.err" rss_file="$tmp/$name.rss" t0 t1 rc
  t0=$(date +%s.%N)
  if ((have_time)); then
    /usr/bin/time -f %M -o "$rss_file" timeout -k 5 30 "$@" </dev/null >"$tmp/$name.out" 2>"$err"
  else
    timeout -k 5 30 "$@" </dev/null >"$tmp/$name.out" 2>"$err"
  fi
  rc=$?
  t1=$(date +%s.%N)
  local took bytes lines rss=-1 problems=()
  took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  bytes=$(wc -c <"$err")
  lines=$(grep -c 'error:' "$err")
  ((have_time)) && rss=$(tail -1 "$rss_file")
  ((rc == 124 || rc == 137)) && problems+=("timed out (exit $rc)")
  ((rc < 1 || rc > 127)) && problems+=("exit code $rc, expected 1..127")
  ((lines == 1)) || problems+=("$lines lines with 'error:', expected 1")
  grep 'error:' "$err" | grep -qF -- "$phrase" || problems+=("no '$phrase' in the error line")
  ((bytes < 65536)) || problems+=("$bytes bytes of stderr")
  ((have_time)) && [[ $rss =~ ^[0-9]+$ ]] && ((rss >= max_rss_kib)) && problems+=("peak RSS $rss KiB")
  local line
  line=$(grep -m1 'error:' "$err" | cut -c1-300)
  if ((${#problems[@]} == 0)); then
    echo "ok   $name: exit $rc, ${took}s, ${rss} KiB, $bytes bytes: $line"
  else
    echo "FAIL $name: ${problems[*]} (exit $rc, ${took}s, ${rss} KiB, $bytes bytes): $(head -c 300 "$err")"
    failures=$((failures + 1))
  fi
}

# --- The configuration: a FIFO, an endless device, a folder, a dangling link, over the size limit. ---
mkfifo "$tmp/fifo.toml"
expect config_fifo "is a FIFO" "$train" --config "$tmp/fifo.toml" --run-dir "$tmp/run"
expect config_dev_zero "is a character device" "$train" --config /dev/zero --run-dir "$tmp/run"
mkdir "$tmp/dir.toml"
expect config_directory "is a directory" "$train" --config "$tmp/dir.toml" --run-dir "$tmp/run"
ln -s "$tmp/nowhere.toml" "$tmp/dangling.toml"
expect config_dangling "is a dangling symbolic link" "$train" --config "$tmp/dangling.toml" --run-dir "$tmp/run"
expect config_missing "is missing" "$train" --config "$tmp/nothing.toml" --run-dir "$tmp/run"
{
  config_for "$tmp/data"
  head -c $((2 << 20)) /dev/zero | tr '\0' '#'
  echo
} >"$tmp/big.toml"
expect config_2mib "over the 1 MiB limit" "$train" --config "$tmp/big.toml" --run-dir "$tmp/run"

# --- Oversized keys and values: refused at once, quoted short. ---
# 10 MB of key is over the file's limit; 1,000,000 characters is within it and refused as a key.
key10m=$(head -c 10000000 /dev/zero | tr '\0' 'k')
{
  config_for "$tmp/data"
  echo "[extra]"
  printf '%s = 1\n' "$key10m"
} >"$tmp/key10m.toml"
expect config_key_10mb "over the 1 MiB limit" "$train" --config "$tmp/key10m.toml" --run-dir "$tmp/run"
{
  config_for "$tmp/data"
  echo "[extra]"
  printf '%s = 1\n' "${key10m:0:1000000}"
} >"$tmp/key1m.toml"
expect config_key_1mb "longer than" "$train" --config "$tmp/key1m.toml" --run-dir "$tmp/run"
{
  config_for "$tmp/data" | sed '/^\[data\]/,/^path/d'
  echo "[data]"
  printf 'path = "%s"\n' "${key10m:0:900000}"
} >"$tmp/value1m.toml"
expect config_value_900kb "longer than" "$train" --config "$tmp/value1m.toml" --run-dir "$tmp/run"
# One command-line argument is at most 128 KiB on Linux (MAX_ARG_STRLEN): a 10 MB --set cannot reach a program
# (the unit tests in tests/config/config_test.cpp give parse() one). 100 KB: Open MPI's singleton start passes the
# whole command line on to its daemon in one string, which fails (not shardgan's message) from about 128 KiB in all.
expect set_key_100kb "longer than" "$train" --config "$tmp/ok.toml" --run-dir "$tmp/run" \
  --set "${key10m:0:100000}=1"
expect set_value_100kb "longer than" "$train" --config "$tmp/ok.toml" --run-dir "$tmp/run" \
  --set "data.path=${key10m:0:100000}"
expect set_choice_4000 "expected one of" "$train" --config "$tmp/ok.toml" --run-dir "$tmp/run" \
  --set "model.loss=${key10m:0:4000}"

# --- The data set: a FIFO as manifest.json; a folder, a link to a device and a dangling link as a shard. ---
dataset_with() {  # NAME: a copy of the data set at $tmp/NAME, its config at $tmp/NAME.toml
  cp -r "$tmp/data" "$tmp/$1"
  config_for "$tmp/$1" >"$tmp/$1.toml"
}
dataset_with manifest_fifo
rm "$tmp/manifest_fifo/manifest.json" && mkfifo "$tmp/manifest_fifo/manifest.json"
expect manifest_fifo "is a FIFO" "$train" --config "$tmp/manifest_fifo.toml" --run-dir "$tmp/run"
dataset_with manifest_dev_zero
ln -sf /dev/zero "$tmp/manifest_dev_zero/manifest.json"
expect manifest_dev_zero "is a character device" "$train" --config "$tmp/manifest_dev_zero.toml" --run-dir "$tmp/run"
dataset_with data_fifo
rm -r "$tmp/data_fifo" && mkfifo "$tmp/data_fifo"
expect data_folder_fifo "is a FIFO" "$train" --config "$tmp/data_fifo.toml" --run-dir "$tmp/run"
dataset_with shard_directory
rm "$tmp/shard_directory/shard-00001.h5" && mkdir "$tmp/shard_directory/shard-00001.h5"
expect shard_directory "shard-00001.h5: is a directory" "$train" --config "$tmp/shard_directory.toml" \
  --run-dir "$tmp/run"
dataset_with shard_device
ln -sf /dev/null "$tmp/shard_device/shard-00001.h5"
expect shard_device "shard-00001.h5: is a character device" "$train" --config "$tmp/shard_device.toml" \
  --run-dir "$tmp/run"
dataset_with shard_dangling
ln -sf "$tmp/nowhere.h5" "$tmp/shard_dangling/shard-00001.h5"
expect shard_dangling "shard-00001.h5: is a dangling symbolic link" "$train" --config "$tmp/shard_dangling.toml" \
  --run-dir "$tmp/run"
dataset_with shard_missing
rm "$tmp/shard_missing/shard-00001.h5"
expect shard_missing "shard-00001.h5: is missing" "$train" --config "$tmp/shard_missing.toml" --run-dir "$tmp/run"

# --- A checkpoint for shardgan-sample: FIFOs as state.json and as the folder itself. ---
"$train" --config "$tmp/ok.toml" --run-dir "$tmp/trained" >/dev/null 2>&1 || { echo "FAIL: training"; exit 1; }
ckpt=$(ls -d "$tmp"/trained/checkpoints/step-*)
cp -r "$ckpt" "$tmp/ckpt_fifo"
rm "$tmp/ckpt_fifo/state.json" && mkfifo "$tmp/ckpt_fifo/state.json"
expect state_fifo "is a FIFO" "$sample" --checkpoint "$tmp/ckpt_fifo" --n 4 --out "$tmp/s.png"
cp -r "$ckpt" "$tmp/ckpt_big"
{ head -c -2 "$ckpt/state.json"; head -c $((17 << 20)) /dev/zero | tr '\0' ' '; echo "}"; } >"$tmp/ckpt_big/state.json"
expect state_17mib "over the 16 MiB limit" "$sample" --checkpoint "$tmp/ckpt_big" --n 4 --out "$tmp/s.png"
mkfifo "$tmp/ckpt_is_fifo"
expect checkpoint_fifo "is a FIFO" "$sample" --checkpoint "$tmp/ckpt_is_fifo" --n 4 --out "$tmp/s.png"
cp -r "$ckpt" "$tmp/ckpt_config_fifo"
rm "$tmp/ckpt_config_fifo/config.toml" && mkfifo "$tmp/ckpt_config_fifo/config.toml"
expect checkpoint_config_fifo "is a FIFO" "$sample" --checkpoint "$tmp/ckpt_config_fifo" --n 4 --out "$tmp/s.png"

# --- A classifier (eval.classifier, shardgan-eval score --classifier): checked before torch::load opens it. ---
mkfifo "$tmp/classifier.pt"
expect train_classifier_fifo "is a FIFO" "$train" --config "$tmp/ok.toml" --run-dir "$tmp/run-clf" \
  --set "eval.classifier=$tmp/classifier.pt"
expect eval_classifier_fifo "is a FIFO" "$eval" score --checkpoint "$ckpt" --classifier "$tmp/classifier.pt" \
  --data "$tmp/data"
expect eval_classifier_directory "is a directory" "$eval" score --checkpoint "$ckpt" --classifier "$tmp/data" \
  --data "$tmp/data"

if ((failures > 0)); then
  echo "$failures case(s) failed"
  exit 1
fi
echo "all cases passed"
