# shellcheck shell=bash
# Sourced by the simulated-node tests (multinode_test.sh, link_cut_test.sh): what they need before they start.
# sim_require: skips (77) without root; fails without unshare, nsenter, ip, mpirun or Debian's h5py/numpy.
sim_require() {
  if [[ $(id -u) -ne 0 ]]; then echo "SKIP: simulated nodes need root (network namespaces, veth pairs)"; exit 77; fi
  local tool
  for tool in unshare nsenter ip "${SHARDGAN_MPIRUN:-mpirun}"; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool not found"; exit 1; }
  done
  /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null || { echo "FAIL: /usr/bin/python3 lacks h5py/numpy"; exit 1; }
}
