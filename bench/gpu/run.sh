#!/usr/bin/env bash
# The GPU check in one command, for the GPU machine (one H100/H200, a CUDA PyTorch wheel, nvcc, CMake, ninja; no
# package archive): builds shardgan against the wheel's CUDA LibTorch (find_package(Torch) through
# torch.utils.cmake_prefix_path, NCCL from the wheel's nvidia-nccl package), runs the CUDA checks (tests/gpu:
# models, NCCL at world size 1, GradSync on CUDA tensors over NCCL and over MPI staging, checkpoints CUDA<->CPU, a
# short CUDA training against the CPU run), then measures training img/s of the seeds' model (batch 64 and 256,
# fp32/bf16/fp16, eager and runtime.cuda_graphs) side by side with the PyTorch peer (eager, AMP, torch.compile
# reduce-overhead), and writes $OUT/gpu_run.json and $OUT/gpu_run.log (OUT defaults to ./gpu-out).
#   bench/gpu/prepare.sh            here first: .gpu/ with the .debs, data and peer the GPU machine lacks
#   bench/gpu/run.sh [--cpu]        there, with .gpu carried; budget: <= 8 minutes, every phase under `timeout`
# --cpu runs the same steps on a CPU machine (device cpu, short runs, longer time limits for 2 cores), to prove the
# script end to end before a GPU is lent (CUDA graphs there are the CPU emulation the tests use: the wiring, not the
# speed). tests/legs/bare_gpu.sh runs it so against the GPU machine's wheel in a chroot as bare as that machine.
# The Python is $PYTHON, else the python3 first on PATH (the one with torch, there and in the rehearsal).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cpu=0
[[ ${1:-} == --cpu ]] && cpu=1
out=${OUT:-$root/gpu-out}
mkdir -p "$out"
log=$out/gpu_run.log
exec > >(tee "$log") 2>&1
t0=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - t0)) "$*"; }
die() { say "FAILED: $*"; exit 1; }
results=$out/results.tsv  # name <tab> value: gathered into the JSON at the end
: >"$results"
record() { printf '%s\t%s\n' "$1" "$2" >>"$results"; }
python=${PYTHON:-python3}
[[ -d $root/.gpu/debs && -d $root/.gpu/data ]] || die ".gpu/ is missing: run bench/gpu/prepare.sh on the CPU machine"
jobs=$(nproc)
# Time limits per phase, seconds (a hang must not spend the whole device call): GPU machine (16 cores) / --cpu (2).
if [[ $cpu == 1 ]]; then
  limit_configure=300 limit_build=1800 limit_gpu_test=300 limit_run=300 limit_peer=600
else
  limit_configure=120 limit_build=300 limit_gpu_test=120 limit_run=60 limit_peer=90
fi
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # Hopper (H100/H200): no per-arch detection, one target

# --- what the machine lacks, from the carried .debs (unpacked under /tmp, never into /) -------------------------
deps=/tmp/shardgan-gpu-deps
rm -rf "$deps"
mkdir -p "$deps/ld"
for deb in "$root"/.gpu/debs/*.deb; do dpkg-deb -x "$deb" "$deps" 2>/dev/null || dpkg -x "$deb" "$deps"; done
# Only libraries this machine does not have go on the library path, so its own (newer) ones stay in use.
have=$(ldconfig -p | awk '{ print $1 }' | sort -u)
for lib in "$deps"/usr/lib/x86_64-linux-gnu/*.so.* "$deps"/lib/x86_64-linux-gnu/*.so.* \
  "$deps"/usr/lib/x86_64-linux-gnu/hdf5/serial/*.so.* "$deps"/usr/lib/libpsm1/*.so.*; do
  [[ -e $lib ]] || continue
  name=$(basename "$lib")
  [[ $name =~ \.so\.[0-9]+$ ]] || continue  # sonames only (the loader asks for those)
  grep -qx "$name" <<<"$have" || ln -sf "$lib" "$deps/ld/$name"
done
export LD_LIBRARY_PATH=$deps/ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# dpkg -x makes no alternatives links either: OpenCV's core needs libblas.so.3 and liblapack.so.3, which live in
# openblas-openmp/ (or blas/, lapack/). So whatever the unpacked libraries and programs still cannot load (ldd: "not
# found", hence absent from this machine too) is linked in from wherever the unpacked tree holds it (the first path in
# sorted order; else a file named SONAME.*), until nothing more is found: a library linked in may need another
# (openblas' libblas.so.3 finds libopenblas.so.0 through $ORIGIN, which is ld/ once it is loaded through the link).
for _ in 1 2 3 4 5 6; do
  mapfile -t missing < <(find "$deps/usr" "$deps/lib" -type f \( -name '*.so*' -o -path '*/bin/*' \) -print0 \
    2>/dev/null | xargs -0 -r ldd 2>/dev/null | awk '$2 == "=>" && $3 == "not" { print $1 }' | sort -u)
  linked=0
  for name in "${missing[@]}"; do
    [[ $name == */* || -e $deps/ld/$name ]] && continue
    lib=$(find "$deps/usr" "$deps/lib" -name "$name" \( -type f -o -type l \) 2>/dev/null | sort | head -n 1)
    # else the file the link would name (libpsm1/libpsm_infinipath.so.1.16 for libpsm_infinipath.so.1)
    [[ -n $lib ]] || lib=$(find "$deps/usr" "$deps/lib" -name "$name.*" -type f 2>/dev/null | sort | head -n 1)
    [[ -n $lib && -e $lib ]] || continue
    ln -sf "$lib" "$deps/ld/$name"
    linked=$((linked + 1))
  done
  ((linked > 0)) || break
done
if ! command -v mpirun >/dev/null; then
  # Debian installs mpirun/mpicxx as alternatives links that dpkg -x does not make: make them here.
  for tool in mpirun mpiexec mpicxx mpicc; do ln -sf "$tool.openmpi" "$deps/usr/bin/$tool"; done
  export OPAL_PREFIX=$deps/usr PMIX_INSTALL_PREFIX=$deps/usr PATH=$deps/usr/bin:$PATH
  export OMPI_MCA_plm_rsh_agent=false  # one node: no ssh
fi
# MPI carries only the control plane here (one node; NCCL moves the gradients): shared memory and TCP, not UCX or
# InfiniBand, whose libraries a GPU machine's image may lack; a user's own OMPI_MCA_pml/btl/osc settings win.
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1} OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp} OMPI_MCA_osc=${OMPI_MCA_osc:-^ucx}
command -v pkg-config >/dev/null || ln -sf pkgconf "$deps/usr/bin/pkg-config"
say "dependencies: $(ls "$root"/.gpu/debs | wc -l) .debs unpacked in $deps; $(ls "$deps/ld" | wc -l) libraries the" \
  "machine lacks; mpirun: $(command -v mpirun)"

# --- LibTorch and NCCL from the Python wheel ------------------------------------------------------------------
torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null) || torch_prefix=""
torch_version=$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null) || torch_version="none"
[[ -n $torch_prefix && -d $torch_prefix/Torch ]] || torch_prefix=""  # Debian's python3-torch has no CMake files
# The NCCL wheel installs nvidia.nccl as a namespace package: no __file__, its folder is __path__[0].
nccl_root=$("$python" -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null) || nccl_root=""
say "python torch $torch_version; CMake prefix for Torch: ${torch_prefix:-none, the system LibTorch}; NCCL:" \
  "${nccl_root:-from the CUDA toolkit}"
record torch_version "$torch_version"
record gpu "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || echo none)"

# --- build: the trainer and the CUDA checks (no packer: OpenCV's codecs and friends are not needed) ----------
build=$root/build-gpu
[[ $cpu == 1 ]] && build=$root/build-gpu-cpu
prefix="$deps/usr${torch_prefix:+;$torch_prefix}"
args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDGAN_BUILD_PACKER=OFF -DSHARDGAN_BUILD_TESTS=ON
  "-DMPI_CXX_COMPILER=$(command -v mpicxx)" "-DPKG_CONFIG_EXECUTABLE=$(PATH=$PATH:$deps/usr/bin command -v pkg-config)"
  "-DCMAKE_PREFIX_PATH=$prefix" "-DSHARDGAN_HDF5_DIR=$deps/usr"
  # OpenCV core + imgproc (losses.png), found by find_path/find_library: CMAKE_PREFIX_PATH covers include/opencv4 and
  # lib/<triplet> where CMake knows the triplet; these name the unpacked folders outright where it does not.
  "-DCMAKE_INCLUDE_PATH=$deps/usr/include" "-DCMAKE_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu")
[[ -n $nccl_root ]] && args+=("-DNCCL_ROOT=$nccl_root")
# A GPU run without the NCCL communicator would fail every CUDA run in nccl_unavailable.cpp: stop at configure time.
[[ $cpu == 0 || -n $nccl_root ]] && args+=(-DSHARDGAN_REQUIRE_NCCL=ON)
export PKG_CONFIG_PATH=$deps/usr/lib/x86_64-linux-gnu/pkgconfig:$deps/usr/share/pkgconfig
# Header-only libraries found by the compiler's default /usr/include (toml++) and multiarch headers found through its
# /usr/include/<triplet> (openssl/opensslconf.h): the unpacked prefix is neither, so search both as system folders.
export CPLUS_INCLUDE_PATH=$deps/usr/include/x86_64-linux-gnu:$deps/usr/include${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}
export PKG_CONFIG_SYSROOT_DIR=$deps
say "configuring $build"
# Found again every run: the unpacked prefix is made anew, and a cache from an earlier one may name what it lacked.
rm -f "$build/CMakeCache.txt"
timeout "$limit_configure" cmake -S "$root" -B "$build" "${args[@]}" >"$out/cmake.log" 2>&1 ||
  { rc=$?; tail -n 30 "$out/cmake.log"; die "cmake (exit $rc; limit $limit_configure s)"; }
unset PKG_CONFIG_SYSROOT_DIR
grep -E 'shardgan: NCCL' "$out/cmake.log"
say "building shardgan-train and gpu_test with $jobs jobs"
timeout "$limit_build" cmake --build "$build" --parallel "$jobs" --target shardgan-train shardgan-train-emulated-graphs gpu_test >"$out/build.log" 2>&1 ||
  { rc=$?; grep -E 'error|Error' "$out/build.log" | head -n 30; die "build (exit $rc; limit $limit_build s)"; }
record build_seconds $((SECONDS - t0))

# --- the CUDA checks ------------------------------------------------------------------------------------------
mapfile -t mpi_policy < <(bash "$root/launch/mpi-flags.sh" --oversubscribe)  # the one mpirun policy
mpirun=(mpirun "${mpi_policy[@]}")
for n in 1 2; do
  say "gpu_test under mpirun -np $n"
  timeout "$limit_gpu_test" "${mpirun[@]}" -np "$n" "$build/tests/gpu_test" --gtest_color=no >"$out/gpu_test_np$n.log" 2>&1
  rc=$?
  grep -E '^\[  (PASSED|FAILED|SKIPPED) |^step ' "$out/gpu_test_np$n.log"
  record "gpu_test_np${n}_exit" "$rc"
  record "gpu_test_np${n}_passed" "$(grep -c '^\[       OK \]' "$out/gpu_test_np$n.log")"
  record "gpu_test_np${n}_failed" "$(grep -cE '^\[  FAILED  \] [A-Za-z0-9_]+\.[A-Za-z0-9_]+$' "$out/gpu_test_np$n.log")"
  record "gpu_test_np${n}_skipped" "$(grep -cE '^\[  SKIPPED \] [A-Za-z0-9_]+\.[A-Za-z0-9_]+$' "$out/gpu_test_np$n.log")"
done

# --- speed: the seeds' model (unconditional DCGAN, 32x32x3, dropout 0.3) against the peer --------------------
device=cuda steps=300 log_every=100 peer_iters=200
[[ $cpu == 1 ]] && device=cpu steps=12 log_every=6 peer_iters=6
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ours() {  # BATCH PRECISION GRAPHS(true|false) -> img/s of the last logged interval, or the error
  local run=$work/run-$1-$2-$3
  cat >"$run.toml" <<TOML
[data]
path = "$root/.gpu/data"
[model]
conditional = false
dropout = 0.3
[train]
batch_size = $1
epochs = 1000
max_steps = $steps
log_every = $log_every
[runtime]
device = "$device"
precision = "$2"
threads = $([[ $cpu == 1 ]] && echo 1 || echo 0)
cuda_graphs = $3
[output]
checkpoint_every_steps = 1000000
sample_every_epochs = 1000
TOML
  # --cpu: runtime.cuda_graphs runs through the test build's twin of shardgan-train, which injects the CPU emulation.
  local trainer=$build/src/shardgan-train
  [[ $cpu == 1 && $3 == true ]] && trainer=$build/tests/shardgan-train-emulated-graphs
  if timeout "$limit_run" "$trainer" --config "$run.toml" \
    --run-dir "$run" >"$run.log" 2>&1; then
    tail -n 1 "$run/metrics.jsonl" | sed 's/.*"img_per_s":\([0-9.]*\).*/\1/'
  else
    echo "error: $(grep -m1 'error' "$run.log" | cut -c1-160)"
  fi
}
peer() {  # BATCH AMP COMPILE -> img/s or the error
  local line
  line=$(cd "$root/.gpu/peers" && timeout "$limit_peer" "$python" dcgan_gpu.py --device "$device" --batch "$1" --iters "$peer_iters" \
    --amp "$2" --compile "$3" 2>"$work/peer.err" | grep -o 'img/s=[0-9.]*' | cut -d= -f2)
  [[ -n $line ]] && echo "$line" || echo "error: $(grep -v "^[[:space:]]*$" "$work/peer.err" | tail -n 1 | cut -c1-160)"
}
batches="64 256" precisions="fp32 bf16 fp16"
# --cpu proves the wiring, not the speed: one batch size, and no fp16 (CPU fp16 autocast ran at 9 img/s with the 2.11
# wheel, 10 minutes for its two runs; the test suite covers fp16 on the CPU).
[[ $cpu == 1 ]] && batches=64 precisions="fp32 bf16"
for batch in $batches; do
  for precision in $precisions; do
    amp=$([[ $precision == fp32 ]] && echo none || echo "$precision")
    v=$(ours "$batch" "$precision" false)
    record "shardgan_eager_b${batch}_${precision}" "$v"
    g=$(ours "$batch" "$precision" true)
    record "shardgan_cuda_graphs_b${batch}_${precision}" "$g"
    p=$(peer "$batch" "$amp" none)
    record "peer_eager_b${batch}_${precision}" "$p"
    say "batch $batch $precision: shardgan-train eager $v img/s, CUDA graphs $g img/s, PyTorch eager $p img/s"
  done
  if [[ $cpu == 1 && $torch_version == 1.* ]]; then
    c="not available (torch $torch_version has no torch.compile)"
  else
    c=$(peer "$batch" bf16 reduce-overhead)
  fi
  record "peer_compile_reduce_overhead_b${batch}_bf16" "$c"
  say "batch $batch bf16: PyTorch torch.compile(reduce-overhead) $c img/s"
done
record total_seconds $((SECONDS - t0))

"$python" - "$results" "$out/gpu_run.json" "$cpu" <<'PY'
import json, sys
rows = [line.rstrip("\n").split("\t", 1) for line in open(sys.argv[1]) if "\t" in line]
def value(v):
    try: return float(v)
    except ValueError: return v
doc = {"mode": "cpu" if sys.argv[3] == "1" else "gpu", **{k: value(v) for k, v in rows}}
# The issue's targets: CUDA-graph bf16 at batch 64 against PyTorch eager (AMP bf16) and torch.compile(reduce-overhead).
ours = doc.get("shardgan_cuda_graphs_b64_bf16")
for peer in ("peer_eager_b64_bf16", "peer_compile_reduce_overhead_b64_bf16"):
    if isinstance(ours, float) and isinstance(doc.get(peer), float) and doc[peer] > 0:
        doc["ratio_cuda_graphs_b64_bf16_over_" + peer] = round(ours / doc[peer], 3)
json.dump(doc, open(sys.argv[2], "w"), indent=2)
print(json.dumps(doc, indent=2))
PY
say "done: $out/gpu_run.json"
# Failures: a failed or aborted gpu_test, and a shardgan-train run that gave an error instead of img/s (the peer's
# errors are its own: recorded, not counted).
failed=$(awk -F'\t' '($1 ~ /_failed$|_exit$/ && $2 != 0) || ($1 ~ /^shardgan_/ && $2 ~ /^error/)' "$results" | wc -l)
exit $((failed > 0))
