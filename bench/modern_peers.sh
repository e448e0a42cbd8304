#!/usr/bin/env bash
# shardgan-train against the PyTorch peer on a current PyTorch wheel (CPU, 1 thread per process, batch 64 per rank,
# the seeds' model): the peer in every mode of bench/peers/dcgan_modern.py (eager, torch.compile default and
# max-autotune-no-cudagraphs, bf16 autocast eager and compiled, DDP on 2 ranks), and shardgan-train 1 rank fp32,
# 1 rank bf16 and 2 ranks (mpirun) built against the wheel's LibTorch and against Debian's LibTorch 1.13.
# One run, ROUNDS rounds, every measurement once per round (odd rounds peer first, even rounds shardgan first).
# shardgan-train runs as in bench/train_bench.sh and scaling_bench.sh (bench/common.sh's seed_toml on the packed
# 10,000-image CIFAR-format set, runtime.threads=1, img/s of the last logged interval from metrics.jsonl).
#   bench/modern_peers.sh [ROUNDS]                                                             (default 3)
# Environment:
#   SHARDGAN_PEER_PYTHON  the peer's Python (default /var/cache/shardgan/venv/torch-2.15.0/bin/python)
#   SHARDGAN_WHEEL_BUILD  build folder configured against that Python's LibTorch (default build-pip-latest/);
#                         skipped, with a message, when it holds no src/shardgan-train
#   SHARDGAN_BUILD        build folder against Debian's LibTorch 1.13 (default build/); skipped likewise
#   SHARDGAN_BENCH_ITERS  timed steps: the peer times ITERS steps after its warm-up, shardgan-train runs 1.5 x ITERS
#                         steps and reports the last ITERS/2 (default 40: steps 41-60, as train_bench.sh); even, >= 2
#   SHARDGAN_PEER_WARMUP  the peer's untimed steps, compilation included (default 5)
#   SHARDGAN_PEER_ARGS    more arguments for dcgan_modern.py (e.g. "--dynamic false")
#   SHARDGAN_BENCH_WORK   work folder (packed data, runs; default a new /tmp/shardgan-modern-XXXXXX)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
py=${SHARDGAN_PEER_PYTHON:-/var/cache/shardgan/venv/torch-2.15.0/bin/python}
wheel_build=${SHARDGAN_WHEEL_BUILD:-$here/build-pip-latest}
deb_build=${SHARDGAN_BUILD:-$here/build}
iters=${SHARDGAN_BENCH_ITERS:-40}
warmup=${SHARDGAN_PEER_WARMUP:-5}
read -r -a peer_args <<<"${SHARDGAN_PEER_ARGS:-}"
work=${SHARDGAN_BENCH_WORK:-$(mktemp -d /tmp/shardgan-modern-XXXXXX)}
peers=$here/../shared/peers
source "$here/bench/common.sh"

((iters >= 2 && iters % 2 == 0)) || { echo "SHARDGAN_BENCH_ITERS must be even and at least 2 (got $iters)"; exit 1; }
[[ -f $peers/dcgan_ddp.py ]] || { echo "the PyTorch peer ($peers/dcgan_ddp.py) is needed"; exit 1; }
torch_version=$("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null) ||
  { echo "$py cannot import torch (set SHARDGAN_PEER_PYTHON)"; exit 1; }

# The builds to measure: name, folder. Each needs src/shardgan-train.
names=() dirs=()
for entry in "wheel:$wheel_build" "debian:$deb_build"; do
  name=${entry%%:*} dir=${entry#*:}
  if [[ -x $dir/src/shardgan-train ]]; then
    names+=("$name") dirs+=("$dir")
  else
    echo "skipped: shardgan-train against the ${name} LibTorch ($dir/src/shardgan-train is not built)"
  fi
done
# The data: packed once with the first build that has the packer and the fixtures tool.
data_build=""
for dir in "$deb_build" "$wheel_build"; do
  if [[ -x $dir/src/shardgan-pack && -x $dir/tests/shardgan-fixtures ]]; then data_build=$dir; break; fi
done
if ((${#names[@]})); then
  [[ -n $data_build ]] ||
    { echo "no build has src/shardgan-pack and tests/shardgan-fixtures to pack the data"; exit 1; }
  seed_setup "$data_build" "$work"
fi
mpi_launcher
have_mpi=1
command -v "${mpi[0]}" >/dev/null || { have_mpi=0; echo "skipped: 2-rank shardgan-train (no ${mpi[0]})"; }

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')," \
  "libblas -> $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
echo "peer: $py, torch $torch_version; $iters timed steps after $warmup warm-up steps${peer_args[*]:+; ${peer_args[*]}}"
for i in "${!names[@]}"; do
  lib=$(ldd "${dirs[$i]}/src/shardgan-train" | sed -n 's/^\s*libtorch_cpu\.so\S* => \(\S*\).*/\1/p')
  echo "shardgan-train (${names[$i]}): ${dirs[$i]}/src/shardgan-train, libtorch_cpu: ${lib:-?}"
done
echo "work folder: $work"

declare -A v  # "round:key" -> img/s; keys: peer:<mode>, <build>:fp32|bf16|2ranks
peer_modes=(eager compile-default compile-max-autotune-no-cudagraphs bf16-eager bf16-compile ddp2)

peer_line='^peer mode=([^ ]+) torch=[^ ]+ img/s=([0-9.]+)$'
run_peer() {  # round
  local out line mode
  out=$(cd "$work" && "$py" "$here/bench/peers/dcgan_modern.py" "$peers" --iters "$iters" --warmup "$warmup" \
    "${peer_args[@]}" 2>"$work/peer-$1.err") || echo "round $1: some peer modes failed (see $work/peer-$1.err)"
  while read -r line; do
    [[ $line =~ $peer_line ]] || continue
    mode=${BASH_REMATCH[1]}
    v["$1:peer:$mode"]=${BASH_REMATCH[2]}
    echo "round $1: peer $mode ${BASH_REMATCH[2]} img/s"
  done <<<"$out"
}

ours() {  # build-dir ranks precision → img/s of the last logged interval (empty on failure)
  local dir=$1 ranks=$2 precision=$3 launcher=()
  ((ranks > 1)) && launcher=("${mpi[@]}" -np "$ranks")
  rm -rf "$work/run"
  "${launcher[@]}" "$dir/src/shardgan-train" --config "$work/seed.toml" --run-dir "$work/run" \
    --set runtime.precision="$precision" --set train.max_steps=$((iters * 3 / 2)) \
    --set train.log_every=$((iters / 2)) >/dev/null 2>"$work/train.err" || { tail -3 "$work/train.err" >&2; return 0; }
  last_img_per_s "$work/run" | awk '/^[0-9.]+$/ {printf "%.1f", $1}'
}

run_ours() {  # round
  local i name x
  for i in "${!names[@]}"; do
    name=${names[$i]}
    x=$(ours "${dirs[$i]}" 1 fp32) && v["$1:$name:fp32"]=$x
    x=$(ours "${dirs[$i]}" 1 bf16) && v["$1:$name:bf16"]=$x
    if ((have_mpi)); then x=$(ours "${dirs[$i]}" 2 fp32) && v["$1:$name:2ranks"]=$x; fi
    echo "round $1: shardgan ($name) fp32 ${v[$1:$name:fp32]:-n/a}, bf16 ${v[$1:$name:bf16]:-n/a}," \
      "2 ranks ${v[$1:$name:2ranks]:-n/a} img/s"
  done
}

for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then run_peer "$r"; run_ours "$r"; else run_ours "$r"; run_peer "$r"; fi
done

# ---- the table -----------------------------------------------------------------------------------------------------
ratio() { [[ -n ${1:-} && -n ${2:-} ]] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}' || echo "n/a"; }
median() {  # of the numbers among the arguments
  printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g |
    awk '{a[NR] = $1} END {if (!NR) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2];
                           else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
best_compile() {  # round → "img/s mode" of the faster fp32 compile mode
  local a=${v[$1:peer:compile-default]:-} b=${v[$1:peer:compile-max-autotune-no-cudagraphs]:-}
  if [[ -z $a && -z $b ]]; then echo ""; return; fi
  if [[ -z $b ]] || { [[ -n $a ]] && awk -v a="$a" -v b="$b" 'BEGIN{exit !(a >= b)}'; }; then
    echo "$a default"
  else
    echo "$b max-autotune-no-cudagraphs"
  fi
}

echo
echo "peer (torch $torch_version), img/s:"
printf "| round |"; printf " %s |" "${peer_modes[@]}"; echo
printf "| ---: |"; printf -- " ---: |%.0s" "${peer_modes[@]}"; echo
for ((r = 1; r <= rounds; r++)); do
  printf "| %d |" "$r"
  for m in "${peer_modes[@]}"; do printf " %s |" "${v[$r:peer:$m]:-n/a}"; done
  echo
done
for i in "${!names[@]}"; do
  name=${names[$i]}
  echo
  echo "shardgan-train (${name} LibTorch) against the peer (torch $torch_version), img/s and ratios shardgan / peer:"
  echo "| round | fp32 | / eager | best compile | / best compile | bf16 | / bf16 eager | 2 ranks | / DDP 2 ranks |"
  echo "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
  r1=() r2=() r3=() r4=()
  for ((r = 1; r <= rounds; r++)); do
    read -r bc bc_mode <<<"$(best_compile "$r")"
    f=${v[$r:$name:fp32]:-} b=${v[$r:$name:bf16]:-} t=${v[$r:$name:2ranks]:-}
    a1=$(ratio "$f" "${v[$r:peer:eager]:-}") a2=$(ratio "$f" "${bc:-}")
    a3=$(ratio "$b" "${v[$r:peer:bf16-eager]:-}") a4=$(ratio "$t" "${v[$r:peer:ddp2]:-}")
    r1+=("$a1") r2+=("$a2") r3+=("$a3") r4+=("$a4")
    echo "| $r | ${f:-n/a} | **$a1** | ${bc:-n/a} (${bc_mode:-n/a}) | **$a2** | ${b:-n/a} | **$a3** |" \
      "${t:-n/a} | **$a4** |"
  done
  echo "| median | | **$(median "${r1[@]}")** | | **$(median "${r2[@]}")** | | **$(median "${r3[@]}")** |" \
    "| **$(median "${r4[@]}")** |"
done
((${#names[@]})) || echo "no shardgan-train build to compare: only the peer was measured"
