# shellcheck shell=bash
# Sourced by the shell tests that report step by step: `ok MESSAGE` (with the seconds since the test began),
# `fail MESSAGE` (the tail of $log, when a step set one, then exit 1), and `remove_unless_kept DIR` for their EXIT
# trap (SHARDGAN_TEST_KEEP=1 keeps DIR and says where it is).
t0=$SECONDS
log=""
fail() {
  echo "FAIL: $*"
  if [[ -n $log && -s $log ]]; then echo "--- tail of $log"; tail -n 20 "$log"; fi
  exit 1
}
ok() { echo "ok ($((SECONDS - t0))s): $*"; }
remove_unless_kept() {
  if [[ ${SHARDGAN_TEST_KEEP:-0} == 1 ]]; then echo "kept (SHARDGAN_TEST_KEEP=1): $1"; else rm -rf "$1"; fi
}
