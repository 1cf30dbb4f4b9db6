#!/usr/bin/env bash
# lab/up.sh — the qlaunch SLURM lab: a real, throw-away SLURM cluster on this one
# Debian 12 host, for the end-to-end tests (lab/*_test.go) and for trying qlaunch:
# munged + slurmctld + N slurmd "nodes" (n1..nN), each slurmd on its own port and
# its own loopback address (127.0.0.11, .12, ...), fake GPUs, Open MPI (srun
# --mpi=pmix, mpirun), MPICH (srun --mpi=pmi2) and the PBS look-alike commands.
# Run as root: `make lab-up`. It installs its Debian packages itself.
#
# Idempotent: a second run with the same settings while the cluster is healthy is a
# no-op; otherwise it stops what it started before (down.sh) and starts afresh.
# Every daemon it starts is recorded in $RUN_DIR/pids; down.sh stops only those.
#
# Knobs (environment):
#   QLAB_NODES=3            number of slurmd nodes (n1..nN), 1..200
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
#   QLAB_CTLD_PORT=6817     slurmctld port; slurmd ports are QLAB_SLURMD_PORT0+i
#   QLAB_SLURMD_PORT0=6820
#   QLAB_SMOKE=1            0: skip the final smoke test `srun -N$NODES -n$NODES hostname`
#   QLAB_WAIT=30            seconds to wait for all nodes to be idle
set -euo pipefail

NODES=${QLAB_NODES:-3}
REAL_CPUS=$(nproc)
CPUS=${QLAB_CPUS_PER_NODE:-$REAL_CPUS}
GPUS=${QLAB_GPUS_PER_NODE:-2}
MPI_DEFAULT=${QLAB_MPI_DEFAULT:-none}
CTLD_PORT=${QLAB_CTLD_PORT:-6817}
SLURMD_PORT0=${QLAB_SLURMD_PORT0:-6820}
WAIT=${QLAB_WAIT:-30}

ETC=/etc/slurm
CONF=$ETC/slurm.conf
RUN_DIR=/run/qlaunch-lab
PIDS=$RUN_DIR/pids
INFO=$RUN_DIR/lab.env
STATE_DIR=/var/lib/slurm/qlaunch-lab
SPOOL=/var/spool/slurmd
LOG_DIR=/var/log/slurm
MARK="# managed by qlaunch lab/up.sh"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

t_start=$(date +%s.%N)
say() { printf 'up.sh: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}'; }

[ "$(id -u)" = 0 ] || die "run as root"
if ! [[ $NODES =~ ^[0-9]+$ ]] || [ "$NODES" -lt 1 ] || [ "$NODES" -gt 200 ]; then die "QLAB_NODES=$NODES: want 1..200"; fi
if ! [[ $CPUS =~ ^[0-9]+$ ]] || [ "$CPUS" -lt 1 ]; then die "QLAB_CPUS_PER_NODE=$CPUS: want >= 1"; fi
[[ $GPUS =~ ^[0-9]+$ ]] || die "QLAB_GPUS_PER_NODE=$GPUS: want >= 0"
case $MPI_DEFAULT in none|pmix|pmi2) ;; *) die "QLAB_MPI_DEFAULT=$MPI_DEFAULT: want none|pmix|pmi2";; esac

# ---------------------------------------------------------------- 1. packages
pkgs=(slurmctld slurmd slurm-client munge slurm-wlm-torque)
[ "${QLAB_INSTALL_MPI:-1}" = 1 ] && pkgs+=(openmpi-bin libopenmpi-dev pkg-config mpich libmpich-dev)
PBS=${QLAB_PBS:-0}
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	t=$(date +%s.%N)
	say "installing ${missing[*]}"
	apt_install() {
		DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends \
			-o DPkg::Lock::Timeout=120 "${missing[@]}" >/tmp/qlaunch-lab-apt.log 2>&1
	}
	if ! apt_install; then
		say "apt-get install failed; running apt-get update once and retrying"
		timeout 300 apt-get update -q >>/tmp/qlaunch-lab-apt.log 2>&1 || true
		apt_install || { tail -20 /tmp/qlaunch-lab-apt.log >&2; die "apt-get install failed (log: /tmp/qlaunch-lab-apt.log)"; }
	fi
	say "installed in $(since "$t")s"
fi
slurmd -V | grep -q '^slurm' || die "slurmd not runnable"

# ---------------------------------------------------------------- 2. config
bind=task/affinity
[ "$CPUS" -gt "$REAL_CPUS" ] && bind=task/none
gen_conf() {
	echo "$MARK — regenerated on every run; edit lab/up.sh, not this file"
	cat <<EOF
ClusterName=qlab
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
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd-%n.pid
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
		echo "NodeName=n$i NodeHostname=n$i NodeAddr=127.0.0.$((10 + i)) Port=$((SLURMD_PORT0 + i)) CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=1000$gres State=UNKNOWN"
	done
	echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
}
gen_gres() {
	[ "$GPUS" -gt 0 ] || return 0
	echo "$MARK"
	echo "NodeName=n[1-$NODES] Name=gpu File=$RUN_DIR/dev/nvidia[0-$((GPUS - 1))]"
}
PLUG=$ETC/plugstack.conf.d/qlaunch-lab-pbs.conf
gen_plug() {
	[ "$PBS" = 1 ] || return 0
	echo "$MARK"
	echo "optional /usr/lib/x86_64-linux-gnu/slurm-wlm/spank_pbs.so"
}
new_conf=$(gen_conf)
new_gres=$(gen_gres)
new_plug=$(gen_plug)

pid_alive() { # pid -> 0 if running (not a zombie)
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
cluster_healthy() {
	[ -s "$PIDS" ] || return 1
	local pid
	while read -r _ pid; do pid_alive "$pid" || return 1; done <"$PIDS"
	local bad
	bad=$(timeout 10 sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 !~ /^(idle|alloc|mix|comp)$/' | wc -l) || return 1
	local n
	n=$(timeout 10 sinfo -h -N -o '%N' 2>/dev/null | sort -u | wc -l) || return 1
	[ "$bad" = 0 ] && [ "$n" = "$NODES" ]
}

if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new_conf" ] &&
	[ "$(cat "$ETC/gres.conf" 2>/dev/null || true)" = "$new_gres" ] &&
	[ "$(cat "$PLUG" 2>/dev/null || true)" = "$new_plug" ] && [ -s "$INFO" ] && cluster_healthy; then
	say "already up ($NODES nodes, $(since "$t_start")s): nothing to do"
	exit 0
fi

# Whatever we started before goes first (only PIDs from our own pid file).
if [ -s "$PIDS" ]; then
	say "stopping the previous bring-up"
	"$HERE/down.sh"
fi

if [ -f "$CONF" ] && ! head -1 "$CONF" | grep -qF "$MARK"; then
	[ -f "$CONF.pre-qlab" ] || cp -p "$CONF" "$CONF.pre-qlab"
	say "foreign $CONF saved as $CONF.pre-qlab"
fi
mkdir -p "$ETC" "$RUN_DIR" "$STATE_DIR" "$LOG_DIR"
printf '%s\n' "$new_conf" >"$CONF"
if [ "$GPUS" -gt 0 ]; then
	printf '%s\n' "$new_gres" >"$ETC/gres.conf"
	mkdir -p "$RUN_DIR/dev"
	for g in $(seq 0 $((GPUS - 1))); do
		[ -c "$RUN_DIR/dev/nvidia$g" ] || mknod "$RUN_DIR/dev/nvidia$g" c 1 3
	done
else
	rm -f "$ETC/gres.conf"
fi
if [ "$PBS" = 1 ]; then
	mkdir -p "$ETC/plugstack.conf.d"
	printf '%s\n' "$new_plug" >"$PLUG"
else
	rm -f "$PLUG"
fi
# Every start is a fresh cluster: slurmctld state and slurmd spools from an earlier
# bring-up are wiped. Kept, they bring back jobs that were running when the machine
# stopped (a snapshot, a restart): the controller recovers them as RUNNING, their
# nodes stay "alloc" and the lab never becomes idle. Job ids restart at 1.
rm -rf "${STATE_DIR:?}"/*
find "$SPOOL" -mindepth 1 -maxdepth 1 -type d -regex '.*/n[0-9]+' -exec rm -rf {} + 2>/dev/null || true # the lab's nodes' spools only
for i in $(seq 1 "$NODES"); do mkdir -p "$SPOOL/n$i/tmp"; done

# Node names must resolve for tasks that look peers up by SLURM_JOB_NODELIST names.
hosts_block=$(
	echo "# qlaunch-lab begin"
	for i in $(seq 1 "$NODES"); do echo "127.0.0.$((10 + i)) n$i"; done
	echo "# qlaunch-lab end"
)
hosts_tmp=$(mktemp)
sed '/^# qlaunch-lab begin$/,/^# qlaunch-lab end$/d' /etc/hosts >"$hosts_tmp"
printf '%s\n' "$hosts_block" >>"$hosts_tmp"
cat "$hosts_tmp" >/etc/hosts # keep the inode (bind-mounted /etc/hosts in containers)
rm -f "$hosts_tmp"

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
if [ ! -s /etc/munge/munge.key ]; then
	mungekey --create --keyfile=/etc/munge/munge.key
	chown munge:munge /etc/munge/munge.key
	chmod 0400 /etc/munge/munge.key
fi
if timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; then
	say "munged already running: reusing it"
else
	mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
	rm -f /run/munge/munged.pid
	runuser -u munge -- /usr/sbin/munged
	pid=$(wait_pidfile /run/munge/munged.pid) || die "munged did not start"
	record munged "$pid"
	timeout 5 munge -n | timeout 5 unmunge >/dev/null || die "munge round trip fails"
fi

for port in "$CTLD_PORT" $(seq $((SLURMD_PORT0 + 1)) $((SLURMD_PORT0 + NODES))); do
	if ss -Hltn "sport = :$port" | grep -q .; then
		die "TCP port $port is already in use: set QLAB_CTLD_PORT / QLAB_SLURMD_PORT0"
	fi
done

rm -f "$RUN_DIR"/slurmctld.pid "$RUN_DIR"/slurmd-*.pid
/usr/sbin/slurmctld -i || die "slurmctld failed: $(tail -5 "$LOG_DIR/slurmctld.log")"
pid=$(wait_pidfile "$RUN_DIR/slurmctld.pid") || die "slurmctld did not start: $(tail -5 "$LOG_DIR/slurmctld.log")"
record slurmctld "$pid"
for i in $(seq 1 "$NODES"); do
	/usr/sbin/slurmd -N "n$i" || die "slurmd n$i failed: $(tail -5 "$LOG_DIR/slurmd-n$i.log")"
	pid=$(wait_pidfile "$RUN_DIR/slurmd-n$i.pid") || die "slurmd n$i did not start: $(tail -5 "$LOG_DIR/slurmd-n$i.log")"
	record "slurmd:n$i" "$pid"
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
nodes="n[1-$NODES]"; [ "$NODES" = 1 ] && nodes=n1
# What the tests read (lab.Detect): written last, so its presence means "up".
{
	echo "$MARK"
	echo "QLAB_NODES=$NODES"
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
say "cluster qlab up: nodes $nodes, $CPUS CPUs/node ($bind), ${GPUS} GPUs/node, MpiDefault=$MPI_DEFAULT, PBS look-alike=$PBS; total $(since "$t_start")s"
