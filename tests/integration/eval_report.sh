#!/usr/bin/env bash
# Metrics and the run report end to end, on the real Fashion-MNIST test split (16x16):
#   1. shardgan-eval train-classifier trains the metrics' classifier and reports its held-out accuracy;
#   2. 2 ranks train a tiny conditional DCGAN with [eval]: metrics.jsonl gets an evaluation before the first step and
#      after each epoch, and FD-clf falls;
#   3. shardgan-eval score in one process reproduces the 2-rank evaluation of the same checkpoint (the sharded
#      statistics add up to the single-process ones);
#   4. report.html renders in headless Chromium: the screenshot is not blank, and the loss, FD-clf and class
#      consistency curves are drawn in their colours;
#   5. bad input: a missing or mismatched classifier is one error line naming the file, non-zero exit.
# Usage: eval_report.sh SHARDGAN_PACK SHARDGAN_TRAIN SHARDGAN_EVAL HERE MPIEXEC [MPIEXEC FLAGS...]
set -uo pipefail
# shellcheck source=tests/support/tiny_model.sh
source "$(dirname "$0")/../support/tiny_model.sh"
pack=$1 train=$2 evaluate=$3 here=$4
shift 4
mpiexec=("$@")
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/shardgan-eval-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.err; do [[ -s $f ]] && { echo "--- $f"; tail -5 "$f"; }; done; exit 1; }
json() { "$py" -c "import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

"$pack" fashion-mnist --split test --size 16 --out "$tmp/data" >/dev/null || fail "packing"

# 1. The classifier (one epoch of a narrow one: the test is about the plumbing; the 88 % target is in bench/).
"$evaluate" train-classifier --data "$tmp/data" --out "$tmp/clf.pt" --epochs 1 --width 8 --threads 2 \
  >"$tmp/clf.json" 2>"$tmp/clf.err" || fail "train-classifier"
acc=$(json "$tmp/clf.json" "d['holdout_accuracy']")
held=$(json "$tmp/clf.json" "d['holdout_images']")
"$py" -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.6 else 1)" "$acc" || fail "held-out accuracy $acc"
echo "ok 1: classifier held-out accuracy $acc on $held images (10 % of the test split)"

# 2. Training with metrics on 2 ranks.
{ tiny_model_toml "$tmp/data"; cat <<TOML
[train]
batch_size = 64
epochs = 2
log_every = 10
[output]
sample_every_epochs = 1
[runtime]
threads = 1
[eval]
classifier = "$tmp/clf.pt"
n = 1000
TOML
} >"$tmp/tiny.toml"
"${mpiexec[@]}" -np 2 "$train" --config "$tmp/tiny.toml" --run-dir "$tmp/run" >"$tmp/train.out" 2>"$tmp/train.err" ||
  fail "training with [eval]"
"$py" - "$tmp/run/metrics.jsonl" <<'PY' || fail "eval rows in metrics.jsonl"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ev = [r for r in rows if r.get("kind") == "eval"]
assert [r["step"] for r in ev] == [0, 78, 156], [r["step"] for r in ev]
for r in ev:
    assert r["n"] == 1000 and r["generator"] == "ema" and 0 <= r["class_consistency"] <= 1, r
    assert len(r["class_consistency_per_class"]) == 10 and 0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1, r
    assert all(0 <= r[k] <= 1 for k in ("precision", "recall", "coverage")) and r["density"] >= 0, r
    assert len(r["fd_clf_per_class"]) == 10, r
# Training spreads the generated images over the data: coverage rises well above the untrained generator's. (Its
# precision can be 1: near-identical images near the data's mean fall inside the large balls of outlying reals, the
# weakness of precision that density was made for.)
assert ev[-1]["coverage"] > 5 * ev[0]["coverage"] + 0.01, (ev[0]["coverage"], ev[-1]["coverage"])
assert ev[-1]["fd_clf"] < 0.8 * ev[0]["fd_clf"], (ev[0]["fd_clf"], ev[-1]["fd_clf"])
print(f"ok 2: FD-clf {ev[0]['fd_clf']:.1f} -> {ev[-1]['fd_clf']:.1f}, class consistency "
      f"{ev[0]['class_consistency']:.3f} -> {ev[-1]['class_consistency']:.3f}")
PY

# 3. One process scores the same checkpoint like the two ranks did.
"$evaluate" score --checkpoint "$tmp/run" --classifier "$tmp/clf.pt" --data "$tmp/data" --n 1000 \
  --threads 1 --out "$tmp/score.json" >"$tmp/score.out" 2>"$tmp/score.err" || fail "score"
"$py" - "$tmp/score.json" "$tmp/run/metrics.jsonl" <<'PY' || fail "score disagrees with the in-training evaluation"
import json, sys
s = json.load(open(sys.argv[1]))
last = [json.loads(l) for l in open(sys.argv[2]) if '"eval"' in l][-1]
assert s["step"] == last["step"] == 156, (s["step"], last["step"])
assert abs(s["fd_clf"] - last["fd_clf"]) <= 1e-6 * last["fd_clf"], (s["fd_clf"], last["fd_clf"])
assert s["class_consistency"] == last["class_consistency"], (s["class_consistency"], last["class_consistency"])
# The k-NN metrics: 2 ranks each computed a part of the distance blocks; a borderline neighbour may flip.
for k in ("precision", "recall", "density", "coverage"):
    assert abs(s[k] - last[k]) <= 0.01, (k, s[k], last[k])
print(f"ok 3: shardgan-eval score (1 process) = training's evaluation (2 ranks): FD-clf {s['fd_clf']:.6f}, "
      f"precision {s['precision']:.3f}, recall {s['recall']:.3f}, density {s['density']:.3f}, "
      f"coverage {s['coverage']:.3f}")
PY

# 4. The report in headless Chromium.
[[ -s $tmp/run/report.html ]] || fail "no report.html"
chrome=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --user-data-dir="$tmp/chrome" --hide-scrollbars)
command -v chromium >/dev/null || fail "chromium is not installed (launch/bootstrap.sh installs it)"
timeout 120 "${chrome[@]}" --window-size=1280,1800 --screenshot="$tmp/shot.png" "file://$tmp/run/report.html" \
  >/dev/null 2>"$tmp/chrome.err" || fail "chromium screenshot"
timeout 120 "${chrome[@]}" --dump-dom "file://$tmp/run/report.html" >"$tmp/dom.html" 2>>"$tmp/chrome.err" ||
  fail "chromium --dump-dom"
"$py" "$here/report_check.py" "$tmp/shot.png" "$tmp/dom.html" || fail "report rendering"

# 5. Bad input.
one_error() {  # NAME NEEDLE: exit non-zero, exactly one error line, naming NEEDLE
  local rc=$1 err=$2 needle=$3
  [[ $rc -ne 0 ]] || fail "$err: exit code 0"
  [[ $(grep -c "error:" "$err") -eq 1 ]] || fail "$err: not exactly one error line"
  grep "error:" "$err" | grep -qF "$needle" || fail "$err: error line does not name $needle"
}
"$evaluate" score --checkpoint "$tmp/run" --classifier "$tmp/none.pt" --data "$tmp/data" >/dev/null 2>"$tmp/b1.err"
one_error $? "$tmp/b1.err" "$tmp/none.pt"
"$pack" fashion-mnist --split test --size 32 --out "$tmp/data32" >/dev/null || fail "packing 32"
"$evaluate" score --checkpoint "$tmp/run" --classifier "$tmp/clf.pt" --data "$tmp/data32" >/dev/null 2>"$tmp/b2.err"
one_error $? "$tmp/b2.err" "$tmp/data32"
"$train" --config "$tmp/tiny.toml" --run-dir "$tmp/bad" --set eval.classifier="$tmp/none.pt" >/dev/null 2>"$tmp/b3.err"
one_error $? "$tmp/b3.err" "$tmp/none.pt"
echo "ok 5: missing and mismatched classifier/data: one error line naming the file"
