#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and runs the test suite on every leg: installs the Debian packages
# (launch/bootstrap.sh), then per leg configures (Release), builds and runs ctest (unit, MPI, integration, Slurm,
# multi-node). CI runs exactly this (.ci/run).
#   host        Debian 12: LibTorch 1.13, Open MPI 4.1, Slurm 22.05; NCCL communicator built against /usr/local/cuda;
#               TensorBoard's event files read by the tensorboard package (a venv: tests/legs/tensorboard_venv.sh)
#   fuzz        every parser's libFuzzer harness for 20 s (bench/fuzz.sh; clang of the release, ASan + UBSan)
#   trixie      Debian 13 chroot: the quickstart's set-up, then the suite on LibTorch 2.6 (CPU), Open MPI 5, Slurm 24,
#               GCC 14 (tests/legs/trixie.sh)
#   pip-gpu     the GPU machine's wheel (torch 2.11 + nvidia-* wheels): -Werror, NCCL from its wheel, the CPU suite
#               with the CUDA LibTorch loaded, then bench/gpu/run.sh --cpu in a chroot as bare as the GPU machine
#               (tests/legs/wheel.sh gpu, tests/legs/bare_gpu.sh)
#   pip-latest  the newest torch wheel (tests/legs/versions.sh): -Werror, -DC10_NODEPRECATED, the suite
# Every leg runs even when an earlier one failed; the exit code is non-zero if any failed. Each leg's time is printed.
#   SHARDGAN_LEGS        which legs (default "host fuzz trixie pip-gpu pip-latest"); SHARDGAN_LEGS=host: a quick run
#   SHARDGAN_BUILD_DIR   the host leg's build folder (default: build/ in the checkout; the other legs use
#                        build-trixie/, build-pip-gpu/, build-pip-latest/)
#   extra arguments go to ctest on every leg, e.g.  ./tests/run.sh -L mpi
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
legs=${SHARDGAN_LEGS:-host fuzz trixie pip-gpu pip-latest}

"$root/launch/bootstrap.sh"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=() passed_tests=0 failed_tests=0
for leg in $legs; do
  echo "=== leg $leg" >&2
  start=$SECONDS
  rc=0
  case $leg in
    host)  # with TensorBoard's own reader for the tensorboard test (a venv from the package index)
      { tb=$("$root/tests/legs/tensorboard_venv.sh") &&
        SHARDGAN_CMAKE_ARGS="${SHARDGAN_CMAKE_ARGS:-} -DSHARDGAN_TENSORBOARD_PYTHON=$tb" \
          "$root/tests/build_and_test.sh" "${SHARDGAN_BUILD_DIR:-$root/build}" "$@"; } 2>&1 | tee "$log" || rc=$? ;;
    fuzz) SHARDGAN_BUILD_DIR=${SHARDGAN_BUILD_DIR:-$root/build} SHARDGAN_FUZZ_REPLAY=shard "$root/bench/fuzz.sh" 20 2>&1 |
      tee "$log" || rc=$? ;;
    trixie) "$root/tests/legs/trixie.sh" "$@" 2>&1 | tee "$log" || rc=$? ;;
    pip-gpu | pip-latest) "$root/tests/legs/wheel.sh" "${leg#pip-}" "$@" 2>&1 | tee "$log" || rc=$? ;;
    *) echo "tests/run.sh: unknown leg '$leg' (host, fuzz, trixie, pip-gpu, pip-latest)" >&2; exit 2 ;;
  esac
  # ctest's summary: "NN% tests passed, F tests failed out of T"; bench/fuzz.sh's: "fuzz: P passed, F failed"
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  fuzz=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
  if [[ -n $fuzz ]]; then
    read -r p f < <(sed -E 's/fuzz: ([0-9]+) passed, ([0-9]+) failed/\1 \2/' <<<"$fuzz")
    passed_tests=$((passed_tests + p)) failed_tests=$((failed_tests + f))
  elif [[ -n $summary ]]; then
    read -r f t < <(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1 \2/' <<<"$summary")
    passed_tests=$((passed_tests + t - f)) failed_tests=$((failed_tests + f))
  fi
  ((rc == 0)) || failed+=("$leg")
  echo "=== leg $leg: $([[ $rc == 0 ]] && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - start)) s" >&2
done
if ((${#failed[@]} > 0)); then
  echo "tests/run.sh: legs failed: ${failed[*]}" >&2
  echo "legs: $passed_tests passed, $((failed_tests > 0 ? failed_tests : ${#failed[@]})) failed"
  exit 1
fi
echo "legs: $passed_tests passed, 0 failed"
