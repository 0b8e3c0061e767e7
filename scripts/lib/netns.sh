# shellcheck shell=bash
# Network-namespace helpers for HyperMesh cluster and test scripts.
#
# Source this file from bash (scripts/cluster.sh, selftests/*.sh); it defines
# functions only and changes no shell options.  Every function returns
# non-zero on failure instead of exiting, so callers decide what is fatal.
#
# Conventions: everything one cluster (or one test) creates is named with a
# prefix from hm_make_prefix, e.g. "hm3fa0c": namespaces are "<prefix>-<role>"
# and switch-side interfaces "<prefix>-<role>", so hm_cleanup_prefix can find
# and remove exactly that cluster's objects and nothing else.  Interface
# names are limited to 15 characters (IFNAMSIZ - 1).

# Print an error message to stderr.
hm_err() {
	printf '%s\n' "$*" >&2
}

# Succeed if running as root; otherwise print why not.
hm_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		hm_err "error: must run as root (network namespaces need CAP_NET_ADMIN/CAP_SYS_ADMIN)"
		return 1
	fi
}

# Print "now + SECS" in microseconds (SECS may be fractional, e.g. 0.5), for
# use as a deadline with hm_before.
hm_deadline() {
	local secs="${1:-0}" int frac now
	if ! [[ "$secs" =~ ^[0-9]+(\.[0-9]*)?$ ]]; then
		hm_err "error: bad timeout '$secs' (seconds expected)"
		return 1
	fi
	int="${secs%%.*}"
	frac=0
	[ "$int" = "$secs" ] || frac="${secs#*.}000000"
	frac="${frac:0:6}"
	now="${EPOCHREALTIME/[.,]/}"
	printf '%s\n' "$((now + 10#${int:-0} * 1000000 + 10#$frac))"
}

# Succeed if the deadline DEADLINE (from hm_deadline) has not passed yet.
hm_before() {
	[ "${EPOCHREALTIME/[.,]/}" -lt "$1" ]
}

# Print the names of all namespaces starting with "<prefix>-", one per line.
hm_ns_list_prefix() {
	local prefix="$1" name
	ip netns list 2>/dev/null | while read -r name _; do
		case "$name" in
		"$prefix"-*) printf '%s\n' "$name" ;;
		esac
	done
}

# Succeed if namespace NS exists.
hm_ns_exists() {
	[ -e "/run/netns/$1" ]
}

# Print a fresh prefix: BASE (default "hm") + 5 random lowercase hex chars,
# not used by any existing namespace or root-namespace link.
hm_make_prefix() {
	local base="${1:-hm}" prefix
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		prefix="$base$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n' | cut -c1-5)"
		if [ -z "$(hm_ns_list_prefix "$prefix")" ] &&
			! ip -o link show 2>/dev/null | grep -q ": $prefix-"; then
			printf '%s\n' "$prefix"
			return 0
		fi
	done
	hm_err "error: could not find an unused namespace prefix"
	return 1
}

# Create namespace NS with lo up and IPv6 disabled (so the only addresses
# in it are the IPv4 ones we assign).
hm_ns_create() {
	local ns="$1"
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up || return 1
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
}

# Create a Linux bridge BR (STP off, no forwarding delay) in namespace NS
# and bring it up.
hm_bridge_create() {
	local ns="$1" br="$2"
	ip -n "$ns" link add "$br" type bridge stp_state 0 forward_delay 0 || return 1
	ip -n "$ns" link set "$br" up
}

# Connect namespace NS to bridge BR in namespace SWNS with a veth pair:
# IFNAME (inside NS, address ADDR in CIDR form, e.g. 198.18.0.1/24) and
# PORT (inside SWNS, enslaved to BR; must be <= 15 chars).  The pair is
# created with both ends directly in their target namespaces, so nothing
# ever appears in the root namespace.
hm_ns_connect() {
	local ns="$1" ifname="$2" addr="$3" swns="$4" br="$5" port="$6"
	if [ "${#port}" -gt 15 ] || [ "${#ifname}" -gt 15 ]; then
		hm_err "error: interface name too long: $ifname / $port"
		return 1
	fi
	ip link add "$ifname" netns "$ns" type veth peer name "$port" netns "$swns" || return 1
	ip -n "$swns" link set "$port" master "$br" || return 1
	ip -n "$swns" link set "$port" up || return 1
	# brd +: the subnet broadcast address, which the TC fan-out can use.
	ip -n "$ns" addr add "$addr" brd + dev "$ifname" || return 1
	ip -n "$ns" link set "$ifname" up
}

# Run CMD... in namespace NS (foreground; returns CMD's status).
hm_ns_exec() {
	local ns="$1"
	shift
	ip netns exec "$ns" "$@"
}

# Run CMD... in namespace NS with a bpffs mounted at /sys/fs/bpf.
# `ip netns exec` mounts a fresh /sys for every invocation, so the bpffs must
# be mounted within the same invocation as the command that uses it.
hm_ns_exec_bpffs() {
	local ns="$1"
	shift
	ip netns exec "$ns" sh -c 'mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec "$@"' hm-exec "$@"
}

# Start CMD... in the background in namespace NS, detached (own session,
# stdin from /dev/null), with a bpffs at /sys/fs/bpf, stdout+stderr appended
# to LOGFILE.  The pid of CMD itself (the shell execs it) is written
# atomically to PIDFILE; use hm_wait_pidfile to read it.
hm_ns_spawn() {
	local ns="$1" pidfile="$2" logfile="$3"
	shift 3
	rm -f "$pidfile" "$pidfile.tmp"
	# shellcheck disable=SC2016  # $$ and $@ are expanded by the inner sh
	setsid ip netns exec "$ns" sh -c '
		pidfile=$1; shift
		mount -t bpf bpf /sys/fs/bpf 2>/dev/null
		echo $$ >"$pidfile.tmp" && mv -f "$pidfile.tmp" "$pidfile"
		exec "$@"' hm-spawn "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null &
}

# Wait up to TIMEOUT seconds for PIDFILE to hold a pid; print it.
hm_wait_pidfile() {
	local pidfile="$1" timeout="${2:-5}" pid="" end
	end="$(hm_deadline "$timeout")"
	while :; do
		pid="$(cat "$pidfile" 2>/dev/null || true)"
		case "$pid" in
		'' | *[!0-9]*) ;;
		*)
			printf '%s\n' "$pid"
			return 0
			;;
		esac
		hm_before "$end" || return 1
		sleep 0.02
	done
}

# Succeed if PID is a live (non-zombie) process inside namespace NS.  Checking
# the namespace guards against pid reuse after the daemon has died.
hm_pid_in_ns() {
	local pid="$1" ns="$2" state
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	[ -d "/proc/$pid" ] || return 1
	state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null || true)"
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
	[ "$(ip netns identify "$pid" 2>/dev/null)" = "$ns" ]
}

# Wait up to TIMEOUT seconds (default 5) for PID in NS to exit.
hm_wait_pid_exit() {
	local pid="$1" ns="$2" timeout="${3:-5}" end
	end="$(hm_deadline "$timeout")"
	while hm_pid_in_ns "$pid" "$ns"; do
		hm_before "$end" || return 1
		sleep 0.05
	done
}

# Send SIGTERM to every process in namespace NS, wait up to GRACE seconds
# (default 3), then SIGKILL whatever is left and wait for it to go.
hm_ns_kill_all() {
	local ns="$1" grace="${2:-3}" pids end
	hm_ns_exists "$ns" || return 0
	pids="$(ip netns pids "$ns" 2>/dev/null || true)"
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086  # word splitting of the pid list is intended
	kill -TERM $pids 2>/dev/null || true
	end="$(hm_deadline "$grace")"
	while [ -n "$(ip netns pids "$ns" 2>/dev/null || true)" ] && hm_before "$end"; do
		sleep 0.05
	done
	end="$(hm_deadline 5)"
	while pids="$(ip netns pids "$ns" 2>/dev/null || true)" && [ -n "$pids" ]; do
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
		if ! hm_before "$end"; then
			hm_err "warning: processes still in namespace $ns: $pids"
			return 1
		fi
		sleep 0.05
	done
}

# Remove everything named with PREFIX: kill all processes in its namespaces,
# delete the namespaces (which deletes their veth ends and bridges), delete
# any stray "<prefix>-*" link in the root namespace and any "<prefix>*" pin in
# the root bpffs.  Idempotent; succeeds if nothing of PREFIX is left.
hm_cleanup_prefix() {
	local prefix="$1" grace="${2:-3}" ns link rc=0
	case "$prefix" in
	'' | *[!a-z0-9]*)
		hm_err "error: refusing to clean up invalid prefix '$prefix'"
		return 1
		;;
	esac
	for ns in $(hm_ns_list_prefix "$prefix"); do
		hm_ns_kill_all "$ns" "$grace" || rc=1
	done
	for ns in $(hm_ns_list_prefix "$prefix"); do
		ip netns del "$ns" 2>/dev/null || {
			hm_err "warning: could not delete namespace $ns"
			rc=1
		}
	done
	for link in $(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
		case "$link" in
		"$prefix"-*) ip link del "$link" 2>/dev/null || rc=1 ;;
		esac
	done
	if [ -d /sys/fs/bpf ]; then
		for link in /sys/fs/bpf/"$prefix"*; do
			[ -e "$link" ] && { rm -rf -- "$link" || rc=1; }
		done
	fi
	if [ -n "$(hm_ns_list_prefix "$prefix")" ]; then
		hm_err "error: namespaces of $prefix still present: $(hm_ns_list_prefix "$prefix" | tr '\n' ' ')"
		rc=1
	fi
	return "$rc"
}
