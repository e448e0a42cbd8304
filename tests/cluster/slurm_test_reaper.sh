#!/usr/bin/env bash
# Cleans up after tests/cluster/slurm_test.sh when that script is killed outright (SIGKILL, as by a CTest timeout) and
# so runs no trap of its own. slurm_test.sh starts this detached (it outlives its parent): it waits until PID is gone,
# then stops the local Slurm cluster (down.sh), kills the test's own leftover clients (processes whose environment
# has SHARDGAN_SLURM_TEST=TMP, e.g. a `sbatch --wait` still polling) and removes TMP (unless --keep).
# Usage: slurm_test_reaper.sh PID TMP CLUSTER_DIR DOWN_SH [--keep]
set -uo pipefail

if (($# < 4 || $# > 5)) || [[ ${5:---keep} != --keep ]]; then
  echo "usage: slurm_test_reaper.sh PID TMP CLUSTER_DIR DOWN_SH [--keep]" >&2
  exit 2
fi
pid=$1 tmp=$2 cluster=$3 down=$4 keep=${5:-}
[[ $pid =~ ^[0-9]+$ ]] || { echo "slurm_test_reaper.sh: PID must be a number, got '$pid'" >&2; exit 2; }

while kill -0 "$pid" 2>/dev/null; do sleep 1; done

"$down" "$cluster" ${keep:+--keep} >/dev/null 2>&1
for p in /proc/[0-9]*; do
  [[ ${p#/proc/} == "$$" ]] && continue
  if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "SHARDGAN_SLURM_TEST=$tmp"; then
    kill -KILL "${p#/proc/}" 2>/dev/null
  fi
done
[[ -n $keep ]] || rm -rf "$tmp"
exit 0
