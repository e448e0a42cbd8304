# The PyTorch wheels the wheel legs build against, pinned here and nowhere else (tests/legs/wheel.sh,
# tests/legs/bare_gpu.sh, bench/modern_peers.sh read them). To bump the newest: docs/development.md, "Wheel legs".
# shellcheck shell=bash disable=SC2034
SHARDGAN_TORCH_GPU=2.11.0     # the GPU machine's wheel (2.11.0+cu130: ../shared/facts/GPU.md); change only with it
SHARDGAN_TORCH_LATEST=2.15.0  # the newest torch on the package index
SHARDGAN_TENSORBOARD=2.21.0   # the reader the tensorboard test checks event files with (tests/legs/tensorboard_venv.sh)
