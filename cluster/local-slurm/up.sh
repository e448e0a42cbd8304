#!/usr/bin/env bash
# Stands up a real one-machine Slurm cluster — munged, slurmctld and slurmd started directly (no systemd) — with
# every file it uses (munge key and socket, slurm.conf, state, spool, logs, pid files) under one folder. For tests
# of cluster/slurm/*.sbatch and for trying the Slurm path on a workstation.
#
# Usage: cluster/local-slurm/up.sh [DIR]
#   DIR      folder for the cluster (created; must be empty if it exists). Default: a new /tmp/local-slurm-XXXXXX.
#            munged insists that every folder above its socket is world-executable (o+x), so DIR's parents must be.
# On success it prints, on stdout, what a client needs (also written to DIR/env.sh):
#     export SLURM_CONF=DIR/etc/slurm.conf
#     export LOCAL_SLURM_DIR=DIR
# so `eval "$(cluster/local-slurm/up.sh /tmp/x)"` then `sinfo`, `sbatch`, `srun --mpi=pmix` talk to this cluster.
# Stop it with cluster/local-slurm/down.sh DIR (kills what up.sh started and the jobs' processes, removes DIR).
#
# Environment:
#   LOCAL_SLURM_PORT         slurmctld port; slurmd uses the next one. Default: a free pair picked in 20000-39999
#   LOCAL_SLURM_CPUS         CPUs of the one node (default: nproc)
#   LOCAL_SLURM_CRED_EXPIRE  job credential lifetime in s; also how long a requeued job waits before it may start
#                            again (Slurm's default is 120; default here 10)
#   LOCAL_SLURM_MIN_JOB_AGE  seconds a finished job stays visible (default 4, so `sbatch --wait` polls every 2 s)
#   LOCAL_SLURM_TIMEOUT      seconds to wait for the node to become idle (default 60)
#   LOCAL_SLURM_ALLOW_NETWORK  1: start even where interfaces other than the loopback are up (the daemons then
#                            listen on them too); by default up.sh refuses, so run it in a network namespace of its
#                            own (the tests do: tests/support/private_net.sh)
#   LOCAL_SLURM_GPUS         fake GPUs for tests of GPU binding (default 0: no GRES at all). N > 0 makes N character
#                            devices DIR/dev/nvidia0..N-1 (mknod, major 195 like NVIDIA's; nothing drives them) and
#                            declares them as Slurm GRES: GresTypes=gpu, the node's Gres=gpu:N and DIR/etc/gres.conf
#                            with AutoDetect=off and Name=gpu File=DIR/dev/nvidia[0-(N-1)]. Slurm then allocates them
#                            and sets CUDA_VISIBLE_DEVICES (SLURM_JOB_GPUS, ...) in jobs that ask for GPUs exactly as
#                            on a GPU node; no program can use them.
#
# Runs as root: SlurmUser=root and SlurmdUser=root (no slurm/munge accounts, no /etc or /run files are touched).
# The node is NodeName=localhost NodeAddr=127.0.0.1, partition "debug"; ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none, SelectType=select/cons_tres with CR_CPU; MpiDefault=none (ask for PMIx: srun --mpi=pmix).
# slurmd 23.11 and newer set up a cgroup plugin even with those settings and fail where no cgroup file system is
# mounted (a chroot); for them DIR/etc/cgroup.conf says CgroupPlugin=disabled. Older slurmd get no cgroup.conf.
#
# Exit codes: 0 cluster up; 2 bad usage; 3 the cluster cannot start on this machine (a program is missing or a daemon
# refused or died) — the reason and the tails of the daemons' logs are printed on stderr, and everything started is
# stopped again.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Started from inside another Slurm job (CI on a cluster)? Its SLURM_* variables must not reach these daemons.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SRUN|SALLOC)_' || true)
die() { echo "local-slurm up: $*" >&2; exit 2; }

if (($# > 1)) || [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
fi

# --- settings (checked before anything is created) ---------------------------------------------------------------
if [[ -n ${LOCAL_SLURM_PORT:-} ]]; then
  if ! [[ $LOCAL_SLURM_PORT =~ ^[0-9]+$ ]] || ((LOCAL_SLURM_PORT < 1024 || LOCAL_SLURM_PORT > 65534)); then
    die "LOCAL_SLURM_PORT must be a port number 1024-65534, got '$LOCAL_SLURM_PORT'"
  fi
fi
cpus=${LOCAL_SLURM_CPUS:-$(nproc)}
cred_expire=${LOCAL_SLURM_CRED_EXPIRE:-10}
min_job_age=${LOCAL_SLURM_MIN_JOB_AGE:-4}
timeout=${LOCAL_SLURM_TIMEOUT:-60}
gpus=${LOCAL_SLURM_GPUS:-0}
for v in cpus cred_expire min_job_age timeout gpus; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((cred_expire >= 5)) || die "LOCAL_SLURM_CRED_EXPIRE must be at least 5 (Slurm's minimum)"
((cpus >= 1)) || die "LOCAL_SLURM_CPUS must be at least 1"
((gpus <= 64)) || die "LOCAL_SLURM_GPUS must be at most 64, got $gpus"

if (($# == 1)); then
  dir=$1
  [[ -n $dir ]] || die "DIR is empty"
  [[ $dir == /* ]] || dir=$PWD/$dir
  if [[ -e $dir ]]; then
    [[ -d $dir ]] || die "$dir exists and is not a folder"
    [[ -z $(ls -A "$dir") ]] || die "$dir is not empty (stop an old cluster with down.sh $dir first)"
  fi
else
  dir=/tmp/local-slurm-XXXXXX  # made by mktemp below
fi
((${#dir} <= 60)) || die "DIR path too long (${#dir} > 60 characters; unix socket paths are limited): $dir"
# munged refuses a socket below a folder that is not world-executable; name the folder instead of its message.
p=$(dirname "$dir")
while [[ $p != / ]]; do
  if [[ -e $p ]] && [[ $(stat -c %A "$p") != ?????????[xt] ]]; then
    die "munged needs every folder above its socket to be world-executable: chmod o+x $p"
  fi
  p=$(dirname "$p")
done

missing=""
for prog in munged slurmctld slurmd sinfo scontrol srun sbatch; do
  command -v "$prog" >/dev/null || [[ -x /usr/sbin/$prog ]] || missing+=" $prog"
done
PATH=$PATH:/usr/sbin
plugindir=""
for d in /usr/lib/x86_64-linux-gnu/slurm-wlm /usr/lib/slurm-wlm /usr/lib64/slurm /usr/lib/slurm; do
  [[ -e $d/select_cons_tres.so ]] && { plugindir=$d; break; }
done
if [[ -n $missing || -z $plugindir ]]; then
  echo "local-slurm up: cannot start the cluster: ${missing:+not found:$missing; }${plugindir:-no Slurm plugin folder}" \
    "(Debian: apt-get install munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins libpmix-dev)" >&2
  exit 3
fi

# The daemons listen on every address of their network namespace (Slurm has no listen-address setting): only in
# one whose only interface is the loopback are they unreachable from other machines.
if [[ ${LOCAL_SLURM_ALLOW_NETWORK:-0} != 1 ]] && command -v ip >/dev/null; then
  other=$(ip -o link show up 2>/dev/null | awk -F': ' '$2 != "lo" { printf "%s ", $2 }')
  [[ -z $other ]] || die "the daemons would listen on ${other}too; start up.sh in a network namespace with the" \
    "loopback only (see tests/support/private_net.sh), or set LOCAL_SLURM_ALLOW_NETWORK=1"
fi

# --- the folder -------------------------------------------------------------------------------------------------
if (($# == 1)); then
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
else
  dir=$(mktemp -d /tmp/local-slurm-XXXXXX)
fi
# Root runs these daemons from files in here: the folder must be ours and writable by nobody else.
[[ $(stat -c %u "$dir") == "$(id -u)" ]] || die "$dir belongs to uid $(stat -c %u "$dir"), not to $(id -un)"
chmod 755 "$dir"
echo "local-slurm cluster made by cluster/local-slurm/up.sh; down.sh removes this folder" >"$dir/.local-slurm"
mkdir -p "$dir"/{etc,run,log,state,spool/localhost,tmp,munge}
chmod 700 "$dir/munge" "$dir/etc"
chmod 755 "$dir/run"

cannot() {  # the cluster cannot start here: say why, show logs, stop what was started
  echo "local-slurm up: cannot start the cluster: $*" >&2
  for f in "$dir"/log/*.log; do
    [[ -s $f ]] || continue
    echo "--- tail of $f" >&2
    tail -n 15 "$f" >&2
  done
  "$here/down.sh" "$dir" >&2 || true
  exit 3
}

# --- ports ------------------------------------------------------------------------------------------------------
if [[ -n ${LOCAL_SLURM_PORT:-} ]]; then
  port=$LOCAL_SLURM_PORT
else
  used=" $(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ') "
  for ((try = 0; try < 50; try++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 20000))
    [[ $used == *" $port "* || $used == *" $((port + 1)) "* ]] || break
  done
fi
host=$(hostname -s)

export LOCAL_SLURM_DAEMONS_OF=$dir   # marks the daemons and their slurmstepd children for down.sh

# --- munge ------------------------------------------------------------------------------------------------------
sock=$dir/run/munge.sock
if command -v mungekey >/dev/null || [[ -x /usr/sbin/mungekey ]]; then
  mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1 || cannot "mungekey could not create a key"
else
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
fi
chmod 600 "$dir/munge/munge.key"
munged --socket="$sock" --key-file="$dir/munge/munge.key" --pid-file="$dir/run/munged.pid" \
  --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" </dev/null >>"$dir/log/munged.log" 2>&1 ||
  cannot "munged refused to start"
for ((i = 0; i < 50; i++)); do [[ -S $sock ]] && break; sleep 0.1; done
[[ -S $sock ]] || cannot "munged did not create its socket $sock"
munge -s selftest -S "$sock" 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1 ||
  cannot "munge/unmunge through $sock failed"

# --- slurm.conf (and gres.conf, cgroup.conf next to it) ---------------------------------------------------------
conf=$dir/etc/slurm.conf
: >"$dir/etc/plugstack.conf"   # no site SPANK plugins
gres_line="" node_gres=""
if ((gpus > 0)); then
  mkdir -p "$dir/dev"
  for ((i = 0; i < gpus; i++)); do
    mknod "$dir/dev/nvidia$i" c 195 "$i" 2>/dev/null ||
      cannot "mknod $dir/dev/nvidia$i failed (LOCAL_SLURM_GPUS needs CAP_MKNOD and a file system mounted without nodev)"
  done
  gres_line=$'GresTypes=gpu\n'
  node_gres=" Gres=gpu:$gpus"
  files=$dir/dev/nvidia0
  ((gpus == 1)) || files="$dir/dev/nvidia[0-$((gpus - 1))]"
  cat >"$dir/etc/gres.conf" <<EOF
# Generated by cluster/local-slurm/up.sh (LOCAL_SLURM_GPUS=$gpus): fake GPUs, character devices nothing drives
AutoDetect=off
Name=gpu File=$files
EOF
fi
slurmd_version=$(slurmd -V 2>/dev/null | grep -o '[0-9][0-9]*\.[0-9][0-9]*' | head -1 || true)
if [[ $slurmd_version =~ ^([0-9]+)\.([0-9]+)$ ]] &&
  ((BASH_REMATCH[1] * 100 + 10#${BASH_REMATCH[2]} >= 2311)); then
  cat >"$dir/etc/cgroup.conf" <<EOF
# Generated by cluster/local-slurm/up.sh: slurmd $slurmd_version would set up cgroups, which a chroot may not have
CgroupPlugin=disabled
EOF
fi
cat >"$conf" <<EOF
# Generated by cluster/local-slurm/up.sh: a one-machine cluster under $dir
ClusterName=localslurm
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock,cred_expire=$cred_expire
PluginDir=$plugindir
PlugStackConfig=$dir/etc/plugstack.conf
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
TmpFS=$dir/tmp
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
ReturnToService=2
MinJobAge=$min_job_age
# Job ids differ between clusters started side by side (MPI session folders are named after them).
FirstJobId=$((port * 1000 + 1))
KillWait=10
InactiveLimit=0
SlurmdTimeout=60
${gres_line}NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus${node_gres} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$conf

# --- daemons ----------------------------------------------------------------------------------------------------
alive() {  # PIDFILE: is that process running (not gone, not a zombie)?
  local pid s
  pid=$(cat "$1" 2>/dev/null) && [[ $pid =~ ^[0-9]+$ ]] && s=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  s=${s##*) }
  [[ ${s:0:1} != Z ]]
}

slurmctld -i </dev/null >>"$dir/log/slurmctld.log" 2>&1 || cannot "slurmctld refused to start"
for ((i = 0; i < timeout * 5; i++)); do
  scontrol ping 2>/dev/null | grep -q "is UP" && break
  sleep 0.2
  ((i % 10 == 9)) && ! alive "$dir/run/slurmctld.pid" && cannot "slurmctld exited"
done
scontrol ping 2>/dev/null | grep -q "is UP" || cannot "slurmctld did not answer within ${timeout}s"

slurmd -N localhost </dev/null >>"$dir/log/slurmd.log" 2>&1 || cannot "slurmd refused to start"
state=""
for ((i = 0; i < timeout * 5; i++)); do
  state=$(sinfo -h -N -n localhost -o %T 2>/dev/null || true)
  [[ $state == idle ]] && break
  sleep 0.2
  ((i % 10 == 9)) && ! alive "$dir/run/slurmd.pid" && cannot "slurmd exited"
done
[[ $state == idle ]] || cannot "the node did not become idle within ${timeout}s (state: '${state:-none}')"

cat >"$dir/env.sh" <<EOF
export SLURM_CONF=$conf
export LOCAL_SLURM_DIR=$dir
EOF
echo "local-slurm: up in $dir (node localhost, $cpus CPUs${node_gres:+, $gpus fake GPU(s)}, slurmctld port $port," \
  "munge socket $sock)" >&2
cat "$dir/env.sh"
