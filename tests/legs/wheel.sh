#!/usr/bin/env bash
# Builds shardgan against the LibTorch inside a PyTorch wheel and runs the test suite with it, on this machine.
#   tests/legs/wheel.sh gpu    [ctest args]  torch==$SHARDGAN_TORCH_GPU (the GPU machine's wheel, tests/legs/versions.sh)
#                                            with its nvidia-* wheels: every target with -Werror, the NCCL communicator
#                                            against the nvidia-nccl wheel (required), the CUDA-graph code, the real
#                                            cuDNN loaded; the CPU suite; then the GPU check's own script in a chroot as
#                                            bare as the GPU machine (tests/legs/bare_gpu.sh)
#   tests/legs/wheel.sh latest [ctest args]  torch==$SHARDGAN_TORCH_LATEST (the newest on the index), -Werror,
#                                            -DC10_NODEPRECATED (deprecated c10 names are errors), the whole suite
# The build is exactly what the README tells a wheel user to run (CMAKE_PREFIX_PATH from torch.utils.cmake_prefix_path,
# NCCL_ROOT from the nvidia.nccl package's __path__), plus -Werror and the tests. Wheels are cached in
# $SHARDGAN_CHROOT_CACHE/wheelhouse (default /var/cache/shardgan), one virtual environment per version beside it.
# Build folders: build-pip-gpu/ and build-pip-latest/ in the checkout.
set -euo pipefail
which=${1:-}
[[ $which == gpu || $which == latest ]] || { echo "usage: tests/legs/wheel.sh gpu|latest [ctest args]" >&2; exit 2; }
shift
leg=pip-$which
source "$(dirname "$0")/lib.sh"
version=$SHARDGAN_TORCH_GPU
[[ $which == latest ]] && version=$SHARDGAN_TORCH_LATEST

mkdir -p "$cache"
exec 9>"$cache/wheels.lock"
flock -w 3600 9 || cannot "another leg has held $cache/wheels.lock for an hour"
python=$(torch_venv "$version")
exec 9>&-
# What the README says a wheel user runs.
torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
nccl_root=$("$python" -c 'import nvidia.nccl as n; print(list(n.__path__)[0])')
say "torch $("$python" -c 'import torch; print(torch.__version__)') from $python; NCCL from $nccl_root"

build=$src/build-pip-$which
args=(-DSHARDGAN_WERROR=ON -DSHARDGAN_REQUIRE_NCCL=ON "-DCMAKE_PREFIX_PATH=$torch_prefix" "-DNCCL_ROOT=$nccl_root"
  "-DSHARDGAN_TORCH_PYTHON=$python")
[[ $which == latest ]] && args+=(-DCMAKE_CXX_FLAGS=-DC10_NODEPRECATED)
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # no GPU here to detect: the GPU machine's Hopper
# pip-gpu runs the CPU suite but for the launch paths (labels slurm, multinode: no LibTorch difference, and the
# host and trixie legs run them), to keep .ci/run's time; pip-latest runs everything.
ctest_args=()
[[ $which == gpu ]] && ctest_args=(-LE 'slurm|multinode')
rc=0
SHARDGAN_CMAKE_ARGS="${args[*]}" "$src/tests/build_and_test.sh" "$build" "${ctest_args[@]}" "$@" || rc=$?
if [[ $which == gpu ]]; then
  say "the GPU check's script (bench/gpu/run.sh --cpu) in a chroot as bare as the GPU machine"
  SHARDGAN_BUILD_DIR=$build "$src/tests/legs/bare_gpu.sh" || rc=1
fi
exit "$rc"
