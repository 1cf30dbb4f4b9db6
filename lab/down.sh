#!/usr/bin/env bash
# lab/down.sh — stop the qlaunch SLURM lab that lab/up.sh started, and nothing else.
# Only the PIDs recorded by up.sh in /run/qlaunch-lab/pids are signalled, and only
# after checking that the process still is the daemon that was recorded.
#   --purge   also remove slurmctld state, slurmd spool, logs, the generated
#             /etc/slurm/{slurm,gres}.conf and the n1..nN block in /etc/hosts
set -euo pipefail

RUN_DIR=/run/qlaunch-lab
PIDS=$RUN_DIR/pids
MARK="# managed by qlaunch lab/up.sh"
say() { printf 'down.sh: %s\n' "$*" >&2; }
t_start=$(date +%s.%N)

[ "$(id -u)" = 0 ] || { say "ERROR: run as root"; exit 1; }

pid_alive() { # pid -> 0 if running and not a zombie
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
is_ours() { # name pid -> 0 if pid still is that daemon
	local name=$1 pid=$2 comm cmd
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	case $name in
	munged) [ "$comm" = munged ] ;;
	slurmctld) [ "$comm" = slurmctld ] ;;
	slurmd:*) [ "$comm" = slurmd ] && [[ " $cmd " == *" -N ${name#slurmd:} "* ]] ;;
	*) return 1 ;;
	esac
}
stop_pid() { # name pid
	local name=$1 pid=$2
	if ! pid_alive "$pid"; then say "$name ($pid) already gone"; return 0; fi
	if ! is_ours "$name" "$pid"; then say "PID $pid is no longer $name: left alone"; return 0; fi
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do pid_alive "$pid" || { say "stopped $name ($pid)"; return 0; }; sleep 0.1; done
	say "$name ($pid) ignored SIGTERM for 10s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do pid_alive "$pid" || return 0; sleep 0.1; done
	say "WARNING: $name ($pid) still alive"
	return 1
}

rc=0
rm -f "$RUN_DIR/lab.env"
if [ -s "$PIDS" ]; then
	ctld_pid=$(awk '$1 == "slurmctld" {print $2}' "$PIDS")
	if [ -n "$ctld_pid" ] && pid_alive "$ctld_pid" && is_ours slurmctld "$ctld_pid"; then
		# End the cluster's jobs first so slurmd can reap their slurmstepd processes.
		jobs=$(timeout 10 squeue -h -o '%i' 2>/dev/null || true)
		if [ -n "$jobs" ]; then
			say "cancelling jobs: $(tr '\n' ' ' <<<"$jobs")"
			# shellcheck disable=SC2086
			timeout 10 scancel $jobs 2>/dev/null || true
			# squeue's default listing includes COMPLETING: wait (<= 15 s) until it is empty.
			for _ in $(seq 1 150); do
				[ -z "$(timeout 5 squeue -h -o '%i' 2>/dev/null)" ] && break
				sleep 0.1
			done
		fi
	fi
	# Reverse start order: slurmd nodes, then slurmctld, then munged (if ours).
	mapfile -t lines < <(tac "$PIDS")
	for line in "${lines[@]}"; do
		# shellcheck disable=SC2086
		set -- $line
		stop_pid "$1" "$2" || rc=1
	done
	[ $rc = 0 ] && rm -f "$PIDS"
else
	say "no $PIDS: nothing of ours is running"
fi

left=""
for p in $(pgrep -x slurmstepd 2>/dev/null || true); do pid_alive "$p" && left+="$p "; done
[ -n "$left" ] && say "note: slurmstepd processes still present (PIDs: $left); not touched"

if [ "${1:-}" = --purge ]; then
	rm -rf /var/lib/slurm/qlaunch-lab /var/spool/slurmd/n[0-9]* /run/qlaunch-lab/dev
	rm -f /var/log/slurm/slurmctld.log /var/log/slurm/slurmd-n[0-9]*.log
	for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf /etc/slurm/plugstack.conf.d/qlaunch-lab-pbs.conf; do
		[ -f "$f" ] && head -1 "$f" | grep -qF "$MARK" && rm -f "$f"
	done
	[ -f /etc/slurm/slurm.conf.pre-qlab ] && mv /etc/slurm/slurm.conf.pre-qlab /etc/slurm/slurm.conf
	tmp=$(mktemp)
	sed '/^# qlaunch-lab begin$/,/^# qlaunch-lab end$/d' /etc/hosts >"$tmp" && cat "$tmp" >/etc/hosts
	rm -f "$tmp"
	say "purged state, spool, logs, generated config and /etc/hosts block"
fi
say "done in $(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')s"
exit $rc
