#!/usr/bin/env bash
# One leg's build and test run: configures (Release, tests on) into BUILD_DIR, builds, runs ctest.
# tests/run.sh calls it for the host leg and, inside the Debian 13 chroots, for the LibTorch 2.6 legs.
#   tests/build_and_test.sh BUILD_DIR [ctest args]
#   SHARDGAN_CMAKE_ARGS  extra CMake arguments (blank-separated), e.g. "-DSHARDGAN_WERROR=ON"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: tests/build_and_test.sh BUILD_DIR [ctest args]}
shift
read -r -a extra <<<"${SHARDGAN_CMAKE_ARGS:-}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDGAN_BUILD_TESTS=ON "${extra[@]}" >/dev/null
cmake --build "$build" --parallel "$(nproc)"
cd "$build"
ctest --output-on-failure --parallel "$(nproc)" --timeout 600 "$@"
