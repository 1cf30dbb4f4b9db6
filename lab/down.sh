#!/usr/bin/env bash
# lab/down.sh — stop the qlaunch SLURM lab that lab/up.sh started, undo exactly
# what it changed, and nothing else.
#   - Only the PIDs up.sh recorded in QLAB_DIR/pids are signalled, and only after
#     checking that the process still is the daemon that was recorded.
#   - The changes up.sh recorded in QLAB_DIR/changes are undone: /etc/hosts gets
#     back its bytes from before (or, when someone edited it since, loses just the
#     lab's lines), a munge key and /run/munge that up.sh created are removed.
#   - QLAB_DIR itself (configuration, state, spools, logs) is removed when up.sh
#     created it, else emptied of what up.sh put there.
# QLAB_DIR: as for up.sh (default /run/qlaunch-lab).
set -euo pipefail

DIR=${QLAB_DIR:-/run/qlaunch-lab}
PIDS=$DIR/pids
CHANGES=$DIR/changes
OWNER=$DIR/.qlaunch-lab
say() { printf 'down.sh: %s\n' "$*" >&2; }
t_start=$(date +%s.%N)

[ "$(id -u)" = 0 ] || { say "ERROR: run as root"; exit 1; }
if [ ! -f "$OWNER" ]; then
	say "no lab in $DIR (no $OWNER): nothing to do"
	exit 0
fi
export SLURM_CONF=$DIR/slurm.conf

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
rm -f "$DIR/lab.env"
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
fi
if [ $rc != 0 ]; then
	say "ERROR: some daemons did not stop; $DIR and the recorded changes are kept (run down.sh again)"
	exit 1
fi

left=""
for p in $(pgrep -x slurmstepd 2>/dev/null || true); do pid_alive "$p" && left+="$p "; done
[ -n "$left" ] && say "note: slurmstepd processes still present (PIDs: $left); not touched"

# Undo the recorded changes outside $DIR, last first.
created_dir=0
if [ -f "$CHANGES" ]; then
	mapfile -t changes < <(grep -v '^#' "$CHANGES" | tac)
	hosts_lines=()
	for c in "${changes[@]}"; do
		case $c in
		"hosts "*) hosts_lines+=("${c#hosts }") ;;
		"file /etc/munge/munge.key") rm -f /etc/munge/munge.key && say "removed the munge key it created" ;;
		"dir /run/munge") rm -rf /run/munge && say "removed /run/munge" ;;
		"dir $DIR") created_dir=1 ;;
		*) say "WARNING: unknown change recorded: $c" ;;
		esac
	done
	if [ ${#hosts_lines[@]} -gt 0 ]; then
		# /etc/hosts as up.sh left it is the file before plus our lines: put back
		# the bytes from before. Edited since: remove our lines only.
		expect=$(mktemp)
		cp "$DIR/hosts.before" "$expect"
		[ -s "$expect" ] && [ -n "$(tail -c1 "$expect")" ] && echo >>"$expect"
		for l in $(seq $((${#hosts_lines[@]} - 1)) -1 0); do printf '%s\n' "${hosts_lines[l]}" >>"$expect"; done
		if cmp -s "$expect" /etc/hosts; then
			cat "$DIR/hosts.before" >/etc/hosts # in place: keep the inode
			say "restored /etc/hosts"
		else
			tmp=$(mktemp)
			awk 'NR == FNR { drop[$0] = 1; next } !($0 in drop) || seen[$0]++' \
				<(printf '%s\n' "${hosts_lines[@]}") /etc/hosts >"$tmp"
			cat "$tmp" >/etc/hosts
			rm -f "$tmp"
			say "/etc/hosts was edited since lab-up: removed the lab's lines only"
		fi
		rm -f "$expect"
	fi
fi

if [ "$created_dir" = 1 ]; then
	rm -rf "${DIR:?}"
else
	rm -rf "${DIR:?}"/{slurm.conf,gres.conf,plugstack.conf,env,state,spool,log,dev,pids,changes,hosts.before,slurmctld.pid} "$DIR"/slurmd-*.pid
	rm -f "$OWNER"
fi
say "stopped the lab in $DIR and undid its changes in $(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')s"
