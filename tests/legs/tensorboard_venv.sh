#!/usr/bin/env bash
# Prints the python of a virtual environment with the tensorboard package (pinned in tests/legs/versions.sh), making
# it from the Python package index the first time: $SHARDGAN_CHROOT_CACHE/venv/tensorboard-VERSION. The tensorboard
# test (tests/integration/tensorboard.sh) reads shardgan's event files with it; tests/run.sh passes it to CMake.
set -euo pipefail
# shellcheck disable=SC2034  # lib.sh names the leg in its messages
leg=tensorboard
# shellcheck source=tests/legs/lib.sh
source "$(dirname "$0")/lib.sh"
venv=$cache/venv/tensorboard-$SHARDGAN_TENSORBOARD
if [[ ! -x $venv/bin/python || ! -f $venv/.shardgan-complete ]]; then
  py=$(venv_python)
  say "making the virtual environment $venv (tensorboard==$SHARDGAN_TENSORBOARD from the package index)"
  mkdir -p "$cache/venv"
  rm -rf "$venv"
  "$py" -m venv "$venv" >&2 || cannot "$py -m venv failed"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "tensorboard==$SHARDGAN_TENSORBOARD" >&2 ||
    cannot "pip could not install tensorboard==$SHARDGAN_TENSORBOARD"
  touch "$venv/.shardgan-complete"
fi
echo "$venv/bin/python"
