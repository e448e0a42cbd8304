# Sourced by the tests that start the local Slurm cluster: re-runs the calling script in a network namespace of its
# own with no link to anything: the loopback alone, which also holds a documentation address (RFC 5737) so that
# getaddrinfo(AI_ADDRCONFIG), which Slurm's daemons use to bind, finds an address besides 127.0.0.1. cluster/local-slurm/up.sh refuses to start daemons that other machines could reach.
# Exits 77 (skipped) with the reason where the kernel refuses a network namespace.
if [[ ${SHARDGAN_PRIVATE_NET:-0} != 1 ]]; then
  if ! why=$(unshare --net -- true 2>&1); then
    echo "SKIP: no network namespace for the local cluster (unshare --net: ${why:-refused})"
    exit 77
  fi
  # shellcheck disable=SC2016  # expanded by the inner shell
  exec unshare --net -- env SHARDGAN_PRIVATE_NET=1 /bin/bash -c \
    'ip link set lo up && ip addr add 192.0.2.1/32 dev lo && exec /bin/bash "$@"' _ "$0" "$@"
fi
