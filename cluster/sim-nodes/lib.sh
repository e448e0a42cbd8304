# Sourced by the sim-nodes scripts: how they recognise the processes and folders that are theirs.
# A holder is entered (nsenter) or killed only when its pid still names the process up.sh started: the same start
# time (field 22 of /proc/PID/stat, which a reused pid does not share) and the "sim-nodes:STATE:NAME" marker on its
# command line. STATE_DIR and its agent script must belong to the user running these scripts and be writable by
# nobody else (another user could otherwise point the agent, which runs commands as root, at their own code).

proc_start() {  # PID -> its start time in clock ticks since boot
  local s f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r -a f <<<"${s##*) }"
  echo "${f[19]}"
}

holder_is() {  # PID STATE NAME START: is PID the holder up.sh started for NAME?
  [[ $1 =~ ^[0-9]+$ && -n $4 && $(proc_start "$1") == "$4" ]] &&
    [[ $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) == *"sim-nodes:$2:$3 "* ]]
}

require_private() {  # PATH...: owned by this user, not writable by group or others; else one line and status 1
  local p owner mode
  for p in "$@"; do
    owner=$(stat -c %u "$p" 2>/dev/null) && mode=$(stat -c %a "$p") || { echo "$p: missing" >&2; return 1; }
    if [[ $owner != "$(id -u)" ]] || ((8#$mode & 8#022)); then
      echo "$p must belong to $(id -un) and be writable by nobody else (owner uid $owner, mode $mode)" >&2
      return 1
    fi
  done
}
