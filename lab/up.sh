#!/usr/bin/env bash
# lab/up.sh — the qlaunch SLURM lab: a real, throw-away SLURM cluster on this one
# Debian 12 host, for the end-to-end tests (lab/*_test.go) and for trying qlaunch:
# munged + slurmctld + N slurmd "nodes" (n1..nN), each slurmd on its own port and
# its own loopback address (127.0.0.11, .12, ...), fake GPUs, Open MPI (srun
# --mpi=pmix, mpirun), MPICH (srun --mpi=pmi2) and the PBS look-alike commands.
# Run as root: `make lab-up`. It installs its Debian packages itself.
#
# The lab owns only its own files. Its configuration (slurm.conf, gres.conf,
# plugstack.conf), state, spools, logs, pid files and fake GPU devices all live
# in QLAB_DIR; its daemons listen on their own ports, not SLURM's 6817/6818. SLURM
# commands find it through SLURM_CONF:
#     . /run/qlaunch-lab/env        # export SLURM_CONF=/run/qlaunch-lab/slurm.conf
#     srun -N3 hostname
# Outside QLAB_DIR it changes only, and records in QLAB_DIR/changes so that
# down.sh undoes exactly that: the /etc/hosts lines of node names that do not
# resolve yet, a munge key and /run/munge when there are none, and a munged
# when none answers. Every check (ports, host names, munge) comes before the
# first write; Debian packages are installed (and left installed) in between.
#
# Idempotent: a second run with the same settings while the cluster is healthy is a
# no-op; otherwise it stops what it started before (down.sh) and starts afresh.
# Every daemon it starts is recorded in QLAB_DIR/pids; down.sh stops only those.
#
# Knobs (environment):
#   QLAB_DIR=/run/qlaunch-lab  the lab's own directory (several labs may run side
#                           by side with different QLAB_DIR, ports and names)
#   QLAB_NODES=3            number of slurmd nodes (n1..nN), 1..200
#   QLAB_NODE_PREFIX=n      node names: PREFIX1..PREFIXN
#   QLAB_ADDR_BASE=127.0.0.10  node i listens on the IPv4 address BASE+i
#   QLAB_CLUSTER=qlab       ClusterName
#   QLAB_CPUS_PER_NODE=     CPUs per node; default = real CPU count (nproc). Above it,
#                           TaskPlugin becomes task/none (task/affinity cannot bind to
#                           CPUs that do not exist and fails the launch).
#   QLAB_GPUS_PER_NODE=2    >0: fake GPUs (char devices 1:3, i.e. /dev/null clones) so
#                           --gres=gpu:K / --gpus-per-task set CUDA_VISIBLE_DEVICES
#   QLAB_MPI_DEFAULT=none   slurm.conf MpiDefault (none | pmix | pmi2)
#   QLAB_INSTALL_MPI=1      install Open MPI, MPICH (+ -dev, pkg-config) (0: skip)
#   QLAB_PBS=0              1: load the spank_pbs plugin, which adds PBS_JOBID,
#                           PBS_O_WORKDIR, PBS_NODENUM, PBS_TASKNUM, ... to every task.
#                           The PBS look-alike commands of slurm-wlm-torque (qsub,
#                           qstat, qdel, pbsnodes, generate_pbs_nodefile) are always
#                           installed. Not real PBS: no PBS_NODEFILE (make one with
#                           generate_pbs_nodefile) and SLURM_* stay set.
#   QLAB_CTLD_PORT=16817    slurmctld port; slurmd ports are QLAB_SLURMD_PORT0+i
#   QLAB_SLURMD_PORT0=16820
#   QLAB_SMOKE=1            0: skip the final smoke test `srun -N$NODES -n$NODES hostname`
#   QLAB_WAIT=30            seconds to wait for all nodes to be idle
set -euo pipefail

DIR=${QLAB_DIR:-/run/qlaunch-lab}
NODES=${QLAB_NODES:-3}
PREFIX=${QLAB_NODE_PREFIX:-n}
ADDR_BASE=${QLAB_ADDR_BASE:-127.0.0.10}
CLUSTER=${QLAB_CLUSTER:-qlab}
REAL_CPUS=$(nproc)
CPUS=${QLAB_CPUS_PER_NODE:-$REAL_CPUS}
GPUS=${QLAB_GPUS_PER_NODE:-2}
MPI_DEFAULT=${QLAB_MPI_DEFAULT:-none}
CTLD_PORT=${QLAB_CTLD_PORT:-16817}
SLURMD_PORT0=${QLAB_SLURMD_PORT0:-16820}
WAIT=${QLAB_WAIT:-30}
PBS=${QLAB_PBS:-0}

CONF=$DIR/slurm.conf
PIDS=$DIR/pids
INFO=$DIR/lab.env
CHANGES=$DIR/changes
OWNER=$DIR/.qlaunch-lab # present in every directory this script made its own
STATE_DIR=$DIR/state
SPOOL=$DIR/spool
LOG_DIR=$DIR/log
MARK="# managed by qlaunch lab/up.sh"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

t_start=$(date +%s.%N)
say() { printf 'up.sh: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}'; }

# ---------------------------------------------------------------- 0. checks (no writes)
[ "$(id -u)" = 0 ] || die "run as root"
if ! [[ $NODES =~ ^[0-9]+$ ]] || [ "$NODES" -lt 1 ] || [ "$NODES" -gt 200 ]; then die "QLAB_NODES=$NODES: want 1..200"; fi
if ! [[ $CPUS =~ ^[0-9]+$ ]] || [ "$CPUS" -lt 1 ]; then die "QLAB_CPUS_PER_NODE=$CPUS: want >= 1"; fi
[[ $GPUS =~ ^[0-9]+$ ]] || die "QLAB_GPUS_PER_NODE=$GPUS: want >= 0"
case $MPI_DEFAULT in none|pmix|pmi2) ;; *) die "QLAB_MPI_DEFAULT=$MPI_DEFAULT: want none|pmix|pmi2";; esac
[[ $PREFIX =~ ^[a-z][a-z0-9-]*$ ]] || die "QLAB_NODE_PREFIX=$PREFIX: want a lower-case host name prefix"
[[ $CLUSTER =~ ^[a-z][a-z0-9]*$ ]] || die "QLAB_CLUSTER=$CLUSTER: want lower-case letters and digits"
if ! [[ $DIR =~ ^/[A-Za-z0-9._/-]+$ ]] || [ "$DIR" = / ]; then die "QLAB_DIR=$DIR: want an absolute path of plain characters"; fi
for p in "$CTLD_PORT" "$SLURMD_PORT0"; do
	if ! [[ $p =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt $((65535 - NODES)) ]; then die "port $p: want 1..$((65535 - NODES))"; fi
done
if ! [[ $ADDR_BASE =~ ^127\.([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || [ $((BASH_REMATCH[3] + NODES)) -gt 254 ]; then
	die "QLAB_ADDR_BASE=$ADDR_BASE: want 127.X.Y.Z with Z+QLAB_NODES <= 254"
fi
addr_of() { echo "127.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.$((BASH_REMATCH[3] + $1))"; }
node_addrs=()
for i in $(seq 1 "$NODES"); do node_addrs+=("$(addr_of "$i")"); done

pid_alive() { # pid -> 0 if running (not a zombie)
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
port_in_use() { # port -> 0 if some socket listens on it (IPv4 or IPv6), read from /proc
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p="$hex" 'FNR > 1 { n = split($2, a, ":"); if (a[n] == p && $4 == "0A") f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# The directory: ours (marker) or new; never someone else's.
if [ -e "$DIR" ] && [ ! -f "$OWNER" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
	die "$DIR exists, is not empty and was not made by lab/up.sh: set QLAB_DIR to another directory"
fi

# Our own lab from before: healthy with the same settings = nothing to do;
# otherwise it is stopped (down.sh) before anything else is looked at.
export SLURM_CONF=$CONF
export QLAB_DIR=$DIR
bind=task/affinity
[ "$CPUS" -gt "$REAL_CPUS" ] && bind=task/none
gen_conf() {
	echo "$MARK — regenerated on every run; edit lab/up.sh, not this file"
	cat <<EOF
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=$MPI_DEFAULT
ProctrackType=proctrack/linuxproc
TaskPlugin=$bind
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
KillWait=5
InactiveLimit=0
MinJobAge=300
PlugStackConfig=$DIR/plugstack.conf
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL/%n
TmpFS=$SPOOL/%n/tmp
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
EOF
	local gres=""
	if [ "$GPUS" -gt 0 ]; then
		echo "GresTypes=gpu"
		gres=" Gres=gpu:$GPUS"
	fi
	local i
	for i in $(seq 1 "$NODES"); do
		echo "NodeName=$PREFIX$i NodeHostname=$PREFIX$i NodeAddr=${node_addrs[i - 1]} Port=$((SLURMD_PORT0 + i)) CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=1000$gres State=UNKNOWN"
	done
	echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
}
gen_gres() {
	echo "$MARK"
	[ "$GPUS" -gt 0 ] || return 0
	echo "NodeName=${PREFIX}[1-$NODES] Name=gpu File=$DIR/dev/nvidia[0-$((GPUS - 1))]"
}
gen_plug() {
	echo "$MARK"
	[ "$PBS" = 1 ] || return 0
	echo "optional /usr/lib/x86_64-linux-gnu/slurm-wlm/spank_pbs.so"
}
new_conf=$(gen_conf)
new_gres=$(gen_gres)
new_plug=$(gen_plug)

cluster_healthy() {
	[ -s "$PIDS" ] || return 1
	local pid
	while read -r _ pid; do pid_alive "$pid" || return 1; done <"$PIDS"
	local states
	states=$(timeout 10 sinfo -h -N -o '%N %t' 2>/dev/null) || return 1
	[ "$(awk '$2 !~ /^(idle|alloc|mix|comp|plnd)$/' <<<"$states" | wc -l)" = 0 ] &&
		[ "$(awk '{print $1}' <<<"$states" | sort -u | wc -l)" = "$NODES" ]
}
if [ -f "$OWNER" ] && [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new_conf" ] &&
	[ "$(cat "$DIR/gres.conf" 2>/dev/null || true)" = "$new_gres" ] &&
	[ "$(cat "$DIR/plugstack.conf" 2>/dev/null || true)" = "$new_plug" ] && [ -s "$INFO" ] && cluster_healthy; then
	say "already up ($NODES nodes, $(since "$t_start")s): nothing to do"
	exit 0
fi
if [ -f "$OWNER" ]; then
	say "stopping the previous bring-up in $DIR"
	"$HERE/down.sh" || die "down.sh could not stop the previous bring-up in $DIR"
fi

# Ports: ours must all be free (another SLURM, or anything else, keeps its own).
for port in "$CTLD_PORT" $(seq $((SLURMD_PORT0 + 1)) $((SLURMD_PORT0 + NODES))); do
	if port_in_use "$port"; then
		die "TCP port $port is already in use (another SLURM or another service): nothing was changed; choose free ports with QLAB_CTLD_PORT / QLAB_SLURMD_PORT0"
	fi
done

# Host names: a node name that resolves already must name its node's address.
hosts_add=()
for i in $(seq 1 "$NODES"); do
	name=$PREFIX$i addr=${node_addrs[i - 1]}
	have=$(awk -v n="$name" '!/^[[:space:]]*#/ { sub(/#.*/, ""); for (k = 2; k <= NF; k++) if ($k == n) print $1 }' /etc/hosts | sort -u)
	if [ -z "$have" ]; then
		hosts_add+=("$addr $name")
	elif [ "$have" != "$addr" ]; then
		die "/etc/hosts already maps $name to $(tr '\n' ' ' <<<"$have")(the lab wants $addr): nothing was changed; choose other names with QLAB_NODE_PREFIX or addresses with QLAB_ADDR_BASE"
	fi
done

# munge: a munged process that does not answer cannot be reused nor replaced.
munged_running=""
for p in $(pgrep -x munged 2>/dev/null || true); do pid_alive "$p" && munged_running+="$p "; done

# ---------------------------------------------------------------- 1. packages
pkgs=(slurmctld slurmd slurm-client munge slurm-wlm-torque)
[ "${QLAB_INSTALL_MPI:-1}" = 1 ] && pkgs+=(openmpi-bin libopenmpi-dev pkg-config mpich libmpich-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	t=$(date +%s.%N)
	say "installing ${missing[*]}"
	apt_log=$(mktemp /tmp/qlaunch-lab-apt.XXXXXX.log)
	apt_install() {
		DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends \
			-o DPkg::Lock::Timeout=120 "${missing[@]}" >>"$apt_log" 2>&1
	}
	if ! apt_install; then
		say "apt-get install failed; running apt-get update once and retrying"
		timeout 300 apt-get update -q >>"$apt_log" 2>&1 || true
		apt_install || { tail -20 "$apt_log" >&2; die "apt-get install failed (log: $apt_log)"; }
	fi
	rm -f "$apt_log"
	say "installed in $(since "$t")s"
fi
slurmd -V | grep -q '^slurm' || die "slurmd not runnable"
munge_works() { timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }
reuse_munged=0
if munge_works; then
	reuse_munged=1
elif [ -n "$munged_running" ]; then
	die "munged runs (PID $munged_running) but a munge/unmunge round trip fails: nothing was changed; fix or stop that munged"
fi

# ---------------------------------------------------------------- 2. files (all in $DIR but the recorded changes)
created_dir=0
[ -e "$DIR" ] || created_dir=1
mkdir -p "$DIR"
: >"$OWNER"
[ -f "$CHANGES" ] || { echo "$MARK: what up.sh changed outside $DIR, undone by down.sh"; } >"$CHANGES"
[ "$created_dir" = 1 ] && echo "dir $DIR" >>"$CHANGES"
# Every start is a fresh cluster: slurmctld state and slurmd spools from an earlier
# bring-up are wiped. Kept, they bring back jobs that were running when the machine
# stopped (a snapshot, a restart): the controller recovers them as RUNNING, their
# nodes stay "alloc" and the lab never becomes idle. Job ids restart at 1.
rm -rf "${STATE_DIR:?}" "${SPOOL:?}" "${DIR:?}/dev"
mkdir -p "$STATE_DIR" "$LOG_DIR"
for i in $(seq 1 "$NODES"); do mkdir -p "$SPOOL/$PREFIX$i/tmp"; done
printf '%s\n' "$new_conf" >"$CONF"
printf '%s\n' "$new_gres" >"$DIR/gres.conf"
printf '%s\n' "$new_plug" >"$DIR/plugstack.conf"
printf '# source this file to use the lab: . %s/env\nexport SLURM_CONF=%s\n' "$DIR" "$CONF" >"$DIR/env"
if [ "$GPUS" -gt 0 ]; then
	mkdir -p "$DIR/dev"
	for g in $(seq 0 $((GPUS - 1))); do mknod "$DIR/dev/nvidia$g" c 1 3; done
fi

# Node names must resolve for tasks that look peers up by SLURM_JOB_NODELIST names:
# the missing ones are appended to /etc/hosts (in place: the inode is kept, for a
# bind-mounted /etc/hosts in a container), and the file as it was is kept so that
# down.sh can put back exactly those bytes.
if [ ${#hosts_add[@]} -gt 0 ]; then
	[ -f "$DIR/hosts.before" ] || cp -p /etc/hosts "$DIR/hosts.before"
	add=$(mktemp)
	# A last line without its newline gets one first, or ours would join it.
	[ -s /etc/hosts ] && [ -n "$(tail -c1 /etc/hosts)" ] && echo >>"$add"
	for l in "${hosts_add[@]}"; do echo "$l # qlaunch lab $DIR" >>"$add"; done
	cat "$add" >>/etc/hosts
	rm -f "$add"
	for l in "${hosts_add[@]}"; do echo "hosts $l # qlaunch lab $DIR" >>"$CHANGES"; done
fi

# ---------------------------------------------------------------- 3. daemons
t_daemons=$(date +%s.%N)
rm -f "$INFO"
: >"$PIDS"
record() { echo "$1 $2" >>"$PIDS"; }
wait_pidfile() { # file -> echoes pid once the file names a live process
	local i
	for i in $(seq 1 100); do
		if [ -s "$1" ] && pid_alive "$(cat "$1")"; then cat "$1"; return 0; fi
		sleep 0.1
	done
	return 1
}

# munge: reuse a working munged (not ours to stop); else start one as user munge.
if [ "$reuse_munged" = 1 ]; then
	say "munged already running: reusing it"
else
	if [ ! -s /etc/munge/munge.key ]; then
		mungekey --create --keyfile=/etc/munge/munge.key
		chown munge:munge /etc/munge/munge.key
		chmod 0400 /etc/munge/munge.key
		echo "file /etc/munge/munge.key" >>"$CHANGES"
	fi
	if [ ! -d /run/munge ]; then
		mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
		echo "dir /run/munge" >>"$CHANGES"
	fi
	rm -f /run/munge/munged.pid
	runuser -u munge -- /usr/sbin/munged
	pid=$(wait_pidfile /run/munge/munged.pid) || die "munged did not start"
	record munged "$pid"
	munge_works || die "munge round trip fails"
fi

/usr/sbin/slurmctld -i || die "slurmctld failed: $(tail -5 "$LOG_DIR/slurmctld.log")"
pid=$(wait_pidfile "$DIR/slurmctld.pid") || die "slurmctld did not start: $(tail -5 "$LOG_DIR/slurmctld.log")"
record slurmctld "$pid"
for i in $(seq 1 "$NODES"); do
	/usr/sbin/slurmd -N "$PREFIX$i" || die "slurmd $PREFIX$i failed: $(tail -5 "$LOG_DIR/slurmd-$PREFIX$i.log")"
	pid=$(wait_pidfile "$DIR/slurmd-$PREFIX$i.pid") || die "slurmd $PREFIX$i did not start: $(tail -5 "$LOG_DIR/slurmd-$PREFIX$i.log")"
	record "slurmd:$PREFIX$i" "$pid"
done

# ---------------------------------------------------------------- 4. wait for idle
deadline=$(($(date +%s) + WAIT))
while :; do
	idle=$(timeout 5 sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 == "idle"' | sort -u | wc -l || true)
	[ "$idle" = "$NODES" ] && break
	if [ "$(date +%s)" -ge "$deadline" ]; then
		sinfo -N >&2 || true
		die "nodes not idle after ${WAIT}s (logs: $LOG_DIR)"
	fi
	sleep 0.2
done
say "daemons up and $NODES nodes idle in $(since "$t_daemons")s"

if [ "${QLAB_SMOKE:-1}" = 1 ]; then
	out=$(cd / && timeout 60 srun -N"$NODES" -n"$NODES" -l hostname 2>&1) || die "smoke srun failed: $out"
	[ "$(printf '%s\n' "$out" | wc -l)" = "$NODES" ] || die "smoke srun printed: $out"
fi
nodes="${PREFIX}[1-$NODES]"; [ "$NODES" = 1 ] && nodes=${PREFIX}1
# What the tests read (lab.Detect): written last, so its presence means "up".
{
	echo "$MARK"
	echo "QLAB_DIR=$DIR"
	echo "QLAB_SLURM_CONF=$CONF"
	echo "QLAB_CTLD_PORT=$CTLD_PORT"
	echo "QLAB_NODES=$NODES"
	echo "QLAB_NODE_PREFIX=$PREFIX"
	echo "QLAB_NODELIST=$nodes"
	echo "QLAB_CPUS_PER_NODE=$CPUS"
	echo "QLAB_REAL_CPUS=$REAL_CPUS"
	echo "QLAB_GPUS_PER_NODE=$GPUS"
	echo "QLAB_TASK_PLUGIN=$bind"
	echo "QLAB_MPI_DEFAULT=$MPI_DEFAULT"
	echo "QLAB_PBS=$PBS"
	echo "QLAB_MPICH=$(command -v mpiexec.mpich >/dev/null && pkg-config --exists mpich && echo 1 || echo 0)"
} >"$INFO.tmp"
mv "$INFO.tmp" "$INFO"
say "cluster $CLUSTER up: nodes $nodes, $CPUS CPUs/node ($bind), ${GPUS} GPUs/node, MpiDefault=$MPI_DEFAULT, PBS look-alike=$PBS, slurmctld on port $CTLD_PORT; total $(since "$t_start")s"
say "use it with: export SLURM_CONF=$CONF   (or: . $DIR/env)"
