#!/usr/bin/env bash
# Run a local HyperMesh cluster in network namespaces.
#
#   scripts/cluster.sh up -n N [--dataplane socket|xdp] [--dir DIR] [--clients C] [--set KEY=VALUE]...
#                         [--fast-path]              the fast path on (byzantine_config.performance.
#                                                     fast_path_enabled: true; a later --set of that
#                                                     key wins)
#                         [--config-fragment FILE]   (FILE appended to cluster.yaml: top-level
#                                                     sections such as ct:; use absolute paths)
#                         [--dns [--dns-poison IDS]] a DNS resolver cluster: an authoritative NSD
#                                                     (PREFIX-auth, 198.18.0.53) serving test zones
#                                                     signed now (signed.hmtest, nsec3.hmtest, a bogus
#                                                     bogus.hmtest, unsigned.hmtest), their trust
#                                                     anchors, DNS on port 53 (clients allowed from
#                                                     198.18.0.0/15) and metrics on 9100 on
#                                                     every replica; --dns-poison 3 (or 5,6) puts
#                                                     those replicas behind a poisoning server
#                                                     (198.18.0.54: other data for the same names)
#   scripts/cluster.sh exec CMD...              run CMD in the client namespace
#   scripts/cluster.sh exec-replica ID CMD...   run CMD in replica ID's namespace
#   scripts/cluster.sh exec-attacker CMD...     run CMD in the attacker namespace
#   scripts/cluster.sh kill ID                  SIGKILL replica ID (a crash)
#   scripts/cluster.sh stop ID                  SIGTERM replica ID and wait for it to exit
#   scripts/cluster.sh start ID                 (re)start replica ID and wait until it is ready
#   scripts/cluster.sh status                   one line per replica: id ns address pid state
#   scripts/cluster.sh down [--keep-logs]       remove everything this cluster created
#
# Every command takes --dir DIR (before or after the command name; for exec
# and exec-replica only before it).  Without it, commands other than `up` use
# $HM_CLUSTER_DIR, and all fall back to <repo>/build/cluster.
#
# Topology (PREFIX = "hm" + 5 random hex chars, made at `up`, in DIR/state.env):
#   PREFIX-sw   switch namespace with bridge br0 and one port PREFIX-<role> per node
#   PREFIX-rI   replica I, eth0 = 198.18.0.(I+1)/24
#   PREFIX-c    clients,   eth0 = 198.18.0.200/24
#   PREFIX-a    attacker,  eth0 = 198.18.0.250/24 (for flood tests; no keys of its own)
#   PREFIX-auth with --dns: NSD, eth0 = 198.18.0.53/24 (and .54, the poisoning server)
#
# Environment:
#   HM_BUILD            directory with hypermeshd, hypermeshd-test and hmctl (default <repo>/build;
#                       later commands default to the one `up` used)
#   HM_CLUSTER_DIR      cluster directory for commands other than `up`
#   HM_READY_TIMEOUT    seconds to wait for a replica to log "ready" (default 5)
#   HM_STOP_TIMEOUT     seconds `stop` waits after SIGTERM before SIGKILL (default 10)
#   HM_DOWN_GRACE       seconds `down` waits after SIGTERM before SIGKILL (default 3)
#
# DIR layout: state.env (sourceable: HM_PREFIX, HM_N, HM_F, HM_CLIENTS,
# HM_DATAPLANE, HM_PORT, ...), cluster.yaml, client.yaml (node 100),
# client-<id>.yaml (one per client), keys/, replica-I/ (data dir, log, pid;
# an optional extra-args file, one argument a line, is added to replica I's
# hypermeshd command line at every start: how the fault suite sets
# --byzantine; a replica whose extra arguments include --byzantine runs the
# test build, hypermeshd-test, since the shipped hypermeshd has no such
# option).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/netns.sh
. "$REPO/scripts/lib/netns.sh"

PROG="scripts/cluster.sh"
SUBNET_BASE="198.18.0"
CLIENT_ADDR="$SUBNET_BASE.200"
DNS_AUTH_ADDR="$SUBNET_BASE.53"
DNS_POISON_ADDR="$SUBNET_BASE.54"
DNS_METRICS_PORT=9100
DNS_ZONES=(signed.hmtest nsec3.hmtest bogus.hmtest unsigned.hmtest)
ATTACKER_ADDR="$SUBNET_BASE.250"
FIRST_CLIENT_ID=100
SECTIONS=(consensus performance security network detection dns)

DIR_OPT=""

die() {
	hm_err "cluster.sh: error: $*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------- helpers

# Absolute cluster directory: --dir, else (not for up) $HM_CLUSTER_DIR,
# else <repo>/build/cluster.
resolve_dir() {
	local for_up="$1" d
	if [ -n "$DIR_OPT" ]; then
		d="$DIR_OPT"
	elif [ "$for_up" = 0 ] && [ -n "${HM_CLUSTER_DIR:-}" ]; then
		d="$HM_CLUSTER_DIR"
	else
		d="$REPO/build/cluster"
		if [ "$for_up" = 1 ] && [ -n "${HM_CLUSTER_DIR:-}" ] &&
			[ "$(realpath -m -- "$HM_CLUSTER_DIR")" != "$d" ]; then
			hm_err "cluster.sh: note: 'up' ignores HM_CLUSTER_DIR=$HM_CLUSTER_DIR; using $d (pass --dir to choose)"
		fi
	fi
	realpath -m -- "$d"
}

# --dir hint for messages, empty for the default directory.
dir_hint() {
	[ "$DIR" = "$REPO/build/cluster" ] || printf ' --dir %q' "$DIR"
}

# Load DIR/state.env into HM_* variables; fail if there is no cluster.
load_state() {
	DIR="$(resolve_dir 0)"
	[ -f "$DIR/state.env" ] || die "no cluster in $DIR (no state.env); start one with: $PROG up -n 4$(dir_hint)"
	# shellcheck source=/dev/null
	. "$DIR/state.env"
	case "${HM_PREFIX:-}" in
	'' | *[!a-z0-9]*) die "$DIR/state.env has no valid HM_PREFIX" ;;
	esac
	BUILD="$(realpath -m -- "${HM_BUILD:-${HM_UP_BUILD:-$REPO/build}}")"
}

replica_ns() { printf '%s-r%s\n' "$HM_PREFIX" "$1"; }
replica_addr() { printf '%s.%s\n' "$SUBNET_BASE" "$(($1 + 1))"; }

# Validate a replica id argument against HM_N.
check_id() {
	local id="${1:-}"
	case "$id" in
	'' | *[!0-9]*) die "replica id must be a number 0..$((HM_N - 1)), got '$id'" ;;
	esac
	[ "$id" -lt "$HM_N" ] || die "replica id $id out of range 0..$((HM_N - 1))"
}

# Print replica I's recorded pid if that process is still running, else fail.
# A process counts as the replica if it lives in the replica's namespace, or
# (for a namespace deleted behind our back) if its command line names the
# replica's data dir.
replica_pid() {
	local i="$1" pid
	pid="$(cat "$DIR/replica-$i/pid" 2>/dev/null || true)"
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	if hm_pid_in_ns "$pid" "$(replica_ns "$i")"; then
		printf '%s\n' "$pid"
		return 0
	fi
	if [ -r "/proc/$pid/cmdline" ] &&
		tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$DIR/replica-$i" &&
		! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
		printf '%s\n' "$pid"
		return 0
	fi
	return 1
}

log_marker() {
	printf -- '--- cluster.sh: %s (%s) ---\n' "$2" "$(date '+%F %T')" >>"$DIR/replica-$1/log"
}

# Last lines of replica I's log from byte OFFSET on, indented.
log_tail() {
	local i="$1" off="${2:-0}"
	tail -c "+$((off + 1))" "$DIR/replica-$i/log" 2>/dev/null | tail -n 20 | sed 's/^/    | /' >&2 || true
}

# Start replica I in its namespace (no waiting); sets START_OFFSET to the
# log size before the daemon started, for wait_ready.
spawn_replica() {
	local i="$1" ns rdir
	ns="$(replica_ns "$i")"
	rdir="$DIR/replica-$i"
	hm_ns_exists "$ns" || die "namespace $ns does not exist; is the cluster up? ($PROG down$(dir_hint), then up)"
	# Extra daemon arguments, one a line, for tests (e.g. --byzantine,
	# which only the test build has).
	local extra=() daemon=hypermeshd a
	[ -s "$rdir/extra-args" ] && mapfile -t extra <"$rdir/extra-args"
	for a in "${extra[@]+"${extra[@]}"}"; do
		[ "$a" = --byzantine ] && daemon=hypermeshd-test
	done
	[ -x "$BUILD/$daemon" ] || die "$BUILD/$daemon not found or not executable (run make, or set HM_BUILD)"
	mkdir -p "$rdir"
	log_marker "$i" "start replica $i in $ns"
	START_OFFSET="$(stat -c %s "$rdir/log")"
	hm_ns_spawn "$ns" "$rdir/pid" "$rdir/log" \
		"$BUILD/$daemon" -c "$DIR/cluster.yaml" --id "$i" \
		--key "$DIR/keys/replica-$i.key" --data-dir "$rdir" "${extra[@]+"${extra[@]}"}"
}

# Check replica I started at log OFFSET: prints nothing; returns 0 if it is
# running and has logged "ready", 1 if not yet, 2 if it died.
ready_state() {
	local i="$1" off="$2" pidf="$DIR/replica-$1/pid" pid
	[ -s "$pidf" ] || return 1
	pid="$(replica_pid "$i")" || return 2
	[ -n "$pid" ] || return 2
	tail -c "+$((off + 1))" "$DIR/replica-$i/log" 2>/dev/null | grep -q ready && return 0
	return 1
}

# Wait until every replica in IDS (array of "id:offset") is ready or
# HM_READY_TIMEOUT passes.  Reports each failure with its log tail.
wait_ready() {
	local timeout="${HM_READY_TIMEOUT:-5}" end item i off rc pending failed=0
	end="$(hm_deadline "$timeout")" || return 1
	pending=("$@")
	while [ "${#pending[@]}" -gt 0 ]; do
		local next=()
		for item in "${pending[@]}"; do
			i="${item%%:*}"
			off="${item#*:}"
			rc=0
			ready_state "$i" "$off" || rc=$?
			case "$rc" in
			0) ;;
			2)
				hm_err "cluster.sh: replica $i exited before becoming ready; log $DIR/replica-$i/log:"
				log_tail "$i" "$off"
				rm -f "$DIR/replica-$i/pid"
				failed=1
				;;
			*) next+=("$item") ;;
			esac
		done
		pending=("${next[@]+"${next[@]}"}")
		[ "${#pending[@]}" -gt 0 ] || break
		if ! hm_before "$end"; then
			for item in "${pending[@]}"; do
				i="${item%%:*}"
				hm_err "cluster.sh: replica $i did not log 'ready' within ${timeout}s (still running as pid $(replica_pid "$i" || echo '?'); '$PROG$(dir_hint) kill $i' stops it); log $DIR/replica-$i/log:"
				log_tail "$i" "${item#*:}"
			done
			return 1
		fi
		sleep 0.05
	done
	return "$failed"
}

# ---------------------------------------------------------------- YAML

declare -A SETS=()
SET_ORDER=()

# Record byzantine_config override KEY (section.sub.key) = VALUE; the last
# value given for a key wins.
set_override() {
	local key="$1" value="$2" section comp other rest
	section="${key%%.*}"
	[ "$section" != "$key" ] || die "--set $key: key must be SECTION.NAME (sections: ${SECTIONS[*]})"
	case " ${SECTIONS[*]} " in
	*" $section "*) ;;
	*) die "--set $key: unknown section '$section' (sections: ${SECTIONS[*]})" ;;
	esac
	rest="$key"
	while [ -n "$rest" ]; do
		comp="${rest%%.*}"
		case "$comp" in
		'' | *[!A-Za-z0-9_-]*) die "--set $key: bad key component '$comp'" ;;
		esac
		[ "$comp" != "$rest" ] || break
		rest="${rest#*.}"
	done
	case "$value" in *$'\n'*) die "--set $key: value must be one line" ;; esac
	if [ -z "${SETS[$key]+x}" ]; then
		for other in "${SET_ORDER[@]+"${SET_ORDER[@]}"}"; do
			case "$other." in "$key."?*) die "--set $key conflicts with $other" ;; esac
			case "$key." in "$other."?*) die "--set $key conflicts with $other" ;; esac
		done
		SET_ORDER+=("$key")
	fi
	SETS[$key]="$value"
}

# Print VALUE as a YAML scalar: plain if it is a simple token or already
# YAML flow/quoted syntax, otherwise double-quoted.
yaml_scalar() {
	local v="$1"
	if [[ "$v" =~ ^[A-Za-z0-9_./+][A-Za-z0-9_./:+-]*$ || "$v" =~ ^-[0-9.]+$ || "$v" =~ ^[\[\{\"\'] ]]; then
		printf '%s' "$v"
	else
		v="${v//\\/\\\\}"
		printf '"%s"' "${v//\"/\\\"}"
	fi
}

# Print the overrides under dotted PREFIX (e.g. "consensus.") as a YAML
# mapping indented by INDENT, keeping first-given order.
yaml_tree() {
	local indent="$1" prefix="$2" key rest comp seen=" "
	for key in "${SET_ORDER[@]}"; do
		case "$key" in "$prefix"*) ;; *) continue ;; esac
		rest="${key#"$prefix"}"
		comp="${rest%%.*}"
		case "$seen" in *" $comp "*) continue ;; esac
		seen+="$comp "
		if [ "$rest" = "$comp" ]; then
			printf '%s%s: %s\n' "$indent" "$comp" "$(yaml_scalar "${SETS[$key]}")"
		else
			printf '%s%s:\n' "$indent" "$comp"
			yaml_tree "$indent  " "$prefix$comp."
		fi
	done
}

# Succeed if some override lies in SECTION.
section_has() {
	local key
	for key in "${SET_ORDER[@]}"; do
		case "$key" in "$1".*) return 0 ;; esac
	done
	return 1
}

write_cluster_yaml() {
	local s i j
	echo "# Generated by $PROG up (prefix $HM_PREFIX); paths are relative to this file."
	echo "byzantine_config:"
	for s in "${SECTIONS[@]}"; do
		section_has "$s" || continue
		echo "  $s:"
		yaml_tree "    " "$s."
	done
	echo "cluster:"
	echo "  dataplane: $HM_DATAPLANE"
	echo "  members:"
	for ((i = 0; i < HM_N; i++)); do
		echo "    - id: $i"
		echo "      address: $(replica_addr "$i")"
		echo "      public_key: keys/replica-$i.pub"
	done
	echo "  clients:"
	for ((j = 0; j < HM_CLIENTS; j++)); do
		echo "    - id: $((FIRST_CLIENT_ID + j))"
		echo "      public_key: keys/client-$((FIRST_CLIENT_ID + j)).pub"
	done
}

write_state() {
	{
		echo "# HyperMesh cluster state, written by $PROG up; sourceable by bash."
		printf 'HM_PREFIX=%q\n' "$HM_PREFIX"
		printf 'HM_N=%q\n' "$HM_N"
		printf 'HM_F=%q\n' "$HM_F"
		printf 'HM_CLIENTS=%q\n' "$HM_CLIENTS"
		printf 'HM_DATAPLANE=%q\n' "$HM_DATAPLANE"
		printf 'HM_PORT=%q\n' "$HM_PORT"
		printf 'HM_SWITCH_NS=%q\n' "$HM_PREFIX-sw"
		printf 'HM_CLIENT_NS=%q\n' "$HM_PREFIX-c"
		printf 'HM_CLIENT_ADDR=%q\n' "$CLIENT_ADDR"
		printf 'HM_CLUSTER_DIR=%q\n' "$DIR"
		printf 'HM_UP_BUILD=%q\n' "$BUILD"
		printf 'HM_CREATED_DIR=%q\n' "$HM_CREATED_DIR"
		printf 'HM_PHASE=%q\n' "$HM_PHASE"
		printf 'HM_DNS=%q\n' "${HM_DNS:-0}"
		printf 'HM_METRICS_PORT=%q\n' "${HM_METRICS_PORT:-0}"
	} >"$DIR/state.env.tmp"
	mv -f "$DIR/state.env.tmp" "$DIR/state.env"
}

# Remove the files `up` creates in DIR (all but replica logs if KEEP_LOGS=1).
remove_dir_state() {
	local keep_logs="${1:-0}" i rdir
	rm -f "$DIR/cluster.yaml" "$DIR/client.yaml" "$DIR/state.env.tmp"
	for ((i = 0; i < ${HM_CLIENTS:-0}; i++)); do
		rm -f "$DIR/client-$((FIRST_CLIENT_ID + i)).yaml"
	done
	rm -rf "$DIR/keys" "$DIR/dns"
	for ((i = 0; i < ${HM_N:-0}; i++)); do
		rdir="$DIR/replica-$i"
		[ -d "$rdir" ] || continue
		if [ "$keep_logs" = 1 ] && [ -f "$rdir/log" ]; then
			find "$rdir" -mindepth 1 -maxdepth 1 ! -name log -exec rm -rf -- {} +
		else
			rm -rf -- "$rdir"
		fi
	done
	rm -f "$DIR/state.env"
	if [ "${HM_CREATED_DIR:-0}" = 1 ]; then
		rmdir "$DIR" 2>/dev/null || true
	fi
}

# ---------------------------------------------------------------- DNS (--dns)

# The upstreams list (YAML flow): every test zone at the honest server,
# and for the replicas in POISON (comma list, may be empty) at the
# poisoning one.
dns_upstreams() {
	local poison="$1" z out="[" sep=""
	for z in "${DNS_ZONES[@]}"; do
		out+="$sep{zone: $z., address: $DNS_AUTH_ADDR}"
		sep=", "
		[ -z "$poison" ] || out+="$sep{zone: $z., address: $DNS_POISON_ADDR, replicas: [$poison]}"
	done
	printf '%s]' "$out"
}

# Sign the test zones now (selftests/service/dns/lib.sh) into DIR/dns.
dns_prepare_zones() {
	local t
	for t in nsd ldns-signzone ldns-keygen dig; do
		command -v "$t" >/dev/null || die "--dns needs $t (scripts/deps.sh installs it)"
	done
	# shellcheck source=selftests/service/dns/lib.sh
	. "$REPO/selftests/service/dns/lib.sh"
	rm -rf "$DIR/dns"
	dns_build_zones "$DIR/dns" >/dev/null 2>&1 || die "--dns: signing the test zones in $DIR/dns failed"
}

# NSD in PREFIX-auth on the bridge: the honest zones, and with POISON the
# poisoning ones on a second address.
dns_start_auth() {
	local poison="$1" ns="$HM_PREFIX-auth"
	hm_ns_create "$ns"
	hm_ns_connect "$ns" eth0 "$DNS_AUTH_ADDR/24" "$HM_PREFIX-sw" br0 "$HM_PREFIX-auth"
	dns_nsd_start "$ns" "$DIR/dns/honest" "$DNS_AUTH_ADDR" || die "--dns: NSD did not start"
	if [ -n "$poison" ]; then
		ip -n "$ns" addr add "$DNS_POISON_ADDR/24" dev eth0
		dns_nsd_start "$ns" "$DIR/dns/poison" "$DNS_POISON_ADDR" || die "--dns: poisoning NSD did not start"
	fi
}

# The endpoints an operator uses: DNS, metrics, control sockets.
print_endpoints() {
	local i
	for ((i = 0; i < HM_N; i++)); do
		printf '  replica %-2s' "$i"
		[ "${HM_DNS:-0}" = 1 ] && printf '  dns %s:53' "$(replica_addr "$i")"
		[ "${HM_METRICS_PORT:-0}" != 0 ] && printf '  metrics http://%s:%s/metrics' "$(replica_addr "$i")" "$HM_METRICS_PORT"
		printf '  control %s\n' "$DIR/replica-$i/control.sock"
	done
}

# ---------------------------------------------------------------- commands

cmd_up() {
	local n=4 clients=8 dataplane=socket kv i j f existing pids id fragment="" dns=0 poison=""
	while [ $# -gt 0 ]; do
		case "$1" in
		-n | --replicas) [ $# -ge 2 ] || die "$1 needs a value"; n="$2"; shift 2 ;;
		--dataplane) [ $# -ge 2 ] || die "$1 needs a value"; dataplane="$2"; shift 2 ;;
		--dataplane=*) dataplane="${1#*=}"; shift ;;
		--dir) [ $# -ge 2 ] || die "$1 needs a value"; DIR_OPT="$2"; shift 2 ;;
		--dir=*) DIR_OPT="${1#*=}"; shift ;;
		--clients) [ $# -ge 2 ] || die "$1 needs a value"; clients="$2"; shift 2 ;;
		--clients=*) clients="${1#*=}"; shift ;;
		--config-fragment) [ $# -ge 2 ] || die "$1 needs a file"; fragment="$2"; shift 2 ;;
		--config-fragment=*) fragment="${1#*=}"; shift ;;
		--dns) dns=1; shift ;;
		--fast-path) set_override performance.fast_path_enabled true; shift ;;
		--dns-poison) [ $# -ge 2 ] || die "$1 needs replica ids (e.g. 3 or 5,6)"; poison="$2"; shift 2 ;;
		--dns-poison=*) poison="${1#*=}"; shift ;;
		--set) [ $# -ge 2 ] || die "$1 needs KEY=VALUE"; kv="$2"; shift 2
			[[ "$kv" == *=* ]] || die "--set $kv: expected KEY=VALUE"
			set_override "${kv%%=*}" "${kv#*=}" ;;
		--set=*) kv="${1#--set=}"; shift
			[[ "$kv" == *=* ]] || die "--set $kv: expected KEY=VALUE"
			set_override "${kv%%=*}" "${kv#*=}" ;;
		-h | --help) usage; exit 0 ;;
		*) die "up: unknown argument '$1' (see $PROG --help)" ;;
		esac
	done

	case "$n" in
	4 | 7 | 10 | 13 | 16 | 19 | 22 | 25 | 28 | 31) ;;
	*) die "-n must be 3f+1 replicas for f = 1..10, i.e. one of 4 7 10 ... 28 31 (got '$n')" ;;
	esac
	f=$(((n - 1) / 3))
	case "$dataplane" in socket | xdp) ;; *) die "--dataplane must be socket or xdp (got '$dataplane')" ;; esac
	case "$clients" in '' | *[!0-9]*) die "--clients must be a number 1..100 (got '$clients')" ;; esac
	if [ "$clients" -lt 1 ] || [ "$clients" -gt 100 ]; then
		die "--clients must be 1..100 (got $clients)"
	fi
	[ -z "$poison" ] || [ "$dns" = 1 ] || die "--dns-poison needs --dns"
	[[ -z "$poison" || "$poison" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--dns-poison takes replica ids like 3 or 5,6 (got '$poison')"
	if [ -n "$fragment" ] && [ ! -r "$fragment" ]; then
		die "--config-fragment $fragment: not a readable file"
	fi
	hm_require_root || exit 1

	# Defaults first so user --set values override them in place.
	local user_order=("${SET_ORDER[@]+"${SET_ORDER[@]}"}")
	local -A user_sets=()
	for kv in "${user_order[@]+"${user_order[@]}"}"; do user_sets[$kv]="${SETS[$kv]}"; done
	SETS=()
	SET_ORDER=()
	set_override consensus.max_faulty_nodes "$f"
	set_override network.port 7000
	set_override network.interface eth0
	DIR="$(resolve_dir 1)"
	if [ "$dns" = 1 ]; then
		set_override dns.listen_port 53
		# the cluster's clients (198.18.0.0/15) and loopback; not an open resolver
		set_override dns.allow "[198.18.0.0/15, 127.0.0.0/8]"
		set_override dns.trust_anchor_file "$DIR/dns/trust-anchors"
		set_override dns.upstreams "$(dns_upstreams "$poison")"
		set_override detection.metrics_port "$DNS_METRICS_PORT"
	fi
	for kv in "${user_order[@]+"${user_order[@]}"}"; do set_override "$kv" "${user_sets[$kv]}"; done

	BUILD="$(realpath -m -- "${HM_BUILD:-$REPO/build}")"
	for i in hypermeshd hmctl; do
		[ -x "$BUILD/$i" ] || die "$BUILD/$i not found or not executable (run make, or set HM_BUILD)"
	done

	# Refuse a live cluster; clear stale state of a dead one.
	if [ -f "$DIR/state.env" ]; then
		(
			# shellcheck source=/dev/null
			. "$DIR/state.env"
			existing="$(hm_ns_list_prefix "${HM_PREFIX:-none}")"
			pids=""
			for ((id = 0; id < ${HM_N:-0}; id++)); do
				pids+="$(replica_pid "$id" || true)"
			done
			if [ -n "$existing$pids" ]; then
				die "a cluster (prefix ${HM_PREFIX:-?}) is already up in $DIR; run '$PROG down$(dir_hint)' first"
			fi
			hm_err "cluster.sh: removing stale state of dead cluster ${HM_PREFIX:-?} in $DIR"
			remove_dir_state 0
		)
	fi

	HM_CREATED_DIR=0
	[ -d "$DIR" ] || HM_CREATED_DIR=1
	mkdir -p "$DIR"
	HM_PREFIX="$(hm_make_prefix hm)"
	HM_N="$n"
	HM_F="$f"
	HM_CLIENTS="$clients"
	HM_DATAPLANE="$dataplane"
	HM_PORT="${SETS[network.port]}"
	HM_DNS="$dns"
	HM_METRICS_PORT="${SETS[detection.metrics_port]:-0}"
	HM_PHASE=starting
	# Record the prefix before creating anything, so `down` can undo a partial up.
	write_state
	trap 'hm_err "cluster.sh: up failed; state left in $DIR for inspection. Clean up with: $PROG down$(dir_hint)"' EXIT

	# Keys.
	mkdir -p "$DIR/keys"
	chmod 700 "$DIR/keys"
	for ((i = 0; i < n; i++)); do
		"$BUILD/hmctl" keygen "$DIR/keys/replica-$i" >/dev/null
		if [ ! -s "$DIR/keys/replica-$i.key" ] || [ ! -s "$DIR/keys/replica-$i.pub" ]; then
			die "hmctl keygen did not write $DIR/keys/replica-$i.key and .pub"
		fi
	done
	for ((j = 0; j < clients; j++)); do
		id=$((FIRST_CLIENT_ID + j))
		"$BUILD/hmctl" keygen "$DIR/keys/client-$id" >/dev/null
		if [ ! -s "$DIR/keys/client-$id.key" ] || [ ! -s "$DIR/keys/client-$id.pub" ]; then
			die "hmctl keygen did not write $DIR/keys/client-$id.key and .pub"
		fi
	done

	[ "$dns" = 0 ] || dns_prepare_zones
	# Configs.
	write_cluster_yaml >"$DIR/cluster.yaml"
	# Sections cluster.sh does not generate (ct:, ...), verbatim.
	[ -z "$fragment" ] || cat -- "$fragment" >>"$DIR/cluster.yaml"
	for ((j = 0; j < clients; j++)); do
		id=$((FIRST_CLIENT_ID + j))
		{
			cat "$DIR/cluster.yaml"
			echo "node:"
			echo "  id: $id"
			echo "  private_key: keys/client-$id.key"
		} >"$DIR/client-$id.yaml"
	done
	cp "$DIR/client-$FIRST_CLIENT_ID.yaml" "$DIR/client.yaml"

	# Topology: switch with bridge, then one veth per replica and the client.
	hm_ns_create "$HM_PREFIX-sw"
	hm_bridge_create "$HM_PREFIX-sw" br0
	for ((i = 0; i < n; i++)); do
		hm_ns_create "$(replica_ns "$i")"
		hm_ns_connect "$(replica_ns "$i")" eth0 "$(replica_addr "$i")/24" \
			"$HM_PREFIX-sw" br0 "$HM_PREFIX-r$i"
	done
	hm_ns_create "$HM_PREFIX-c"
	hm_ns_connect "$HM_PREFIX-c" eth0 "$CLIENT_ADDR/24" "$HM_PREFIX-sw" br0 "$HM_PREFIX-c"
	hm_ns_create "$HM_PREFIX-a"
	hm_ns_connect "$HM_PREFIX-a" eth0 "$ATTACKER_ADDR/24" "$HM_PREFIX-sw" br0 "$HM_PREFIX-a"
	[ "$dns" = 0 ] || dns_start_auth "$poison"

	# Replicas: start all, then wait for all.
	local waits=()
	for ((i = 0; i < n; i++)); do
		spawn_replica "$i"
		waits+=("$i:$START_OFFSET")
	done
	wait_ready "${waits[@]}" || exit 1

	HM_PHASE=up
	write_state
	trap - EXIT

	echo "HyperMesh cluster up: $n replicas (f=$f), dataplane $dataplane, prefix $HM_PREFIX"
	for ((i = 0; i < n; i++)); do
		printf '  replica %-2s %-15s ns %-12s pid %s\n' "$i" "$(replica_addr "$i"):$HM_PORT" \
			"$(replica_ns "$i")" "$(replica_pid "$i" || echo '?')"
	done
	printf '  clients    %-15s ns %-12s ids %s..%s\n' "$CLIENT_ADDR" "$HM_PREFIX-c" \
		"$FIRST_CLIENT_ID" "$((FIRST_CLIENT_ID + clients - 1))"
	echo "  dir        $DIR (cluster.yaml, client.yaml, keys/, replica-I/log)"
	[ "$dns" = 0 ] || printf '  auth DNS   %s (NSD, ns %s)%s\n' "$DNS_AUTH_ADDR" "$HM_PREFIX-auth" \
		"${poison:+; poisoning server $DNS_POISON_ADDR for replica(s) $poison}"
	echo "Endpoints (reachable from the client namespace):"
	print_endpoints
	[ "$dns" = 0 ] || echo "Ask a replica:         $PROG$(dir_hint) exec dig @$(replica_addr 0) www.signed.hmtest A +dnssec"
	echo "Status of a replica:   hmctl status --socket $DIR/replica-0/control.sock"
	echo "Run a client command:  $PROG$(dir_hint) exec hmctl ...   (HM_CONFIG=client.yaml, \$HM_BUILD on PATH)"
	echo "Manage:                $PROG$(dir_hint) status | kill ID | stop ID | start ID | down"
}

cmd_status() {
	local i pid
	load_state
	for ((i = 0; i < HM_N; i++)); do
		if pid="$(replica_pid "$i")"; then
			printf '%-3s %-12s %-13s %-8s %s\n' "$i" "$(replica_ns "$i")" "$(replica_addr "$i")" "$pid" running
		else
			printf '%-3s %-12s %-13s %-8s %s\n' "$i" "$(replica_ns "$i")" "$(replica_addr "$i")" - stopped
		fi
	done
}

cmd_kill() {
	local i="${1:-}" pid
	load_state
	check_id "$i"
	pid="$(replica_pid "$i")" || die "replica $i is not running"
	kill -KILL "$pid" 2>/dev/null || true
	hm_wait_pid_exit "$pid" "$(replica_ns "$i")" 5 || die "replica $i (pid $pid) did not die after SIGKILL"
	log_marker "$i" "replica $i killed with SIGKILL"
	rm -f "$DIR/replica-$i/pid"
	echo "replica $i killed (pid $pid)"
}

cmd_stop() {
	local i="${1:-}" pid timeout="${HM_STOP_TIMEOUT:-10}"
	load_state
	check_id "$i"
	pid="$(replica_pid "$i")" || die "replica $i is not running"
	kill -TERM "$pid" 2>/dev/null || true
	if ! hm_wait_pid_exit "$pid" "$(replica_ns "$i")" "$timeout"; then
		kill -KILL "$pid" 2>/dev/null || true
		hm_wait_pid_exit "$pid" "$(replica_ns "$i")" 5 || true
		log_marker "$i" "replica $i ignored SIGTERM for ${timeout}s, killed with SIGKILL"
		rm -f "$DIR/replica-$i/pid"
		die "replica $i (pid $pid) did not exit within ${timeout}s of SIGTERM; sent SIGKILL"
	fi
	log_marker "$i" "replica $i stopped with SIGTERM"
	rm -f "$DIR/replica-$i/pid"
	echo "replica $i stopped (pid $pid)"
}

cmd_start() {
	local i="${1:-}" pid
	load_state
	check_id "$i"
	if pid="$(replica_pid "$i")"; then
		die "replica $i is already running (pid $pid)"
	fi
	spawn_replica "$i"
	wait_ready "$i:$START_OFFSET" || die "replica $i failed to start"
	echo "replica $i started (pid $(replica_pid "$i" || echo '?'))"
}

# exec CMD...: run CMD in the client namespace.
cmd_exec() {
	load_state
	hm_ns_exists "$HM_PREFIX-c" || die "client namespace $HM_PREFIX-c does not exist; is the cluster up?"
	[ $# -gt 0 ] || set -- "${SHELL:-bash}"
	exec ip netns exec "$HM_PREFIX-c" env -C "$DIR" -- \
		HM_CONFIG="$DIR/client.yaml" HM_CLUSTER_DIR="$DIR" HM_BUILD="$BUILD" \
		PATH="$BUILD:$PATH" "$@"
}

# exec-attacker CMD...: run CMD in the attacker namespace (with the client
# configuration, so hmctl knows where the replicas are).
cmd_exec_attacker() {
	load_state
	hm_ns_exists "$HM_PREFIX-a" || die "attacker namespace $HM_PREFIX-a does not exist; is the cluster up?"
	[ $# -gt 0 ] || set -- "${SHELL:-bash}"
	exec ip netns exec "$HM_PREFIX-a" env -C "$DIR" -- \
		HM_CONFIG="$DIR/client.yaml" HM_CLUSTER_DIR="$DIR" HM_BUILD="$BUILD" \
		PATH="$BUILD:$PATH" "$@"
}

# exec-replica ID CMD...: run CMD in replica ID's network namespace.  While the
# replica runs, CMD also joins its mount namespace (same /sys and the bpffs
# with the daemon's pins); otherwise it gets a fresh, empty bpffs.
cmd_exec_replica() {
	local i="${1:-}" ns pid
	load_state
	check_id "$i"
	shift
	[ $# -gt 0 ] || set -- "${SHELL:-bash}"
	ns="$(replica_ns "$i")"
	hm_ns_exists "$ns" || die "namespace $ns does not exist; is the cluster up?"
	set -- env -C "$DIR" -- HM_CONFIG="$DIR/cluster.yaml" HM_CLUSTER_DIR="$DIR" \
		HM_BUILD="$BUILD" HM_REPLICA_ID="$i" PATH="$BUILD:$PATH" "$@"
	if pid="$(replica_pid "$i")" && hm_pid_in_ns "$pid" "$ns"; then
		exec nsenter --target "$pid" --net --mount -- "$@"
	fi
	hm_ns_exec_bpffs "$ns" "$@"
}

cmd_down() {
	local keep_logs=0 i pid pids=() grace="${HM_DOWN_GRACE:-3}" end rc=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--dir) [ $# -ge 2 ] || die "$1 needs a value"; DIR_OPT="$2"; shift 2 ;;
		--dir=*) DIR_OPT="${1#*=}"; shift ;;
		--keep-logs) keep_logs=1; shift ;;
		*) die "down: unknown argument '$1'" ;;
		esac
	done
	hm_require_root || exit 1
	DIR="$(resolve_dir 0)"
	if [ ! -f "$DIR/state.env" ]; then
		echo "no cluster in $DIR; nothing to do"
		return 0
	fi
	load_state

	# Daemons by pid file first (SIGTERM, short grace, then SIGKILL) ...
	for ((i = 0; i < ${HM_N:-0}; i++)); do
		if pid="$(replica_pid "$i")"; then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	end="$(hm_deadline "$grace")" || exit 1
	for pid in "${pids[@]+"${pids[@]}"}"; do
		while [ -d "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null &&
			hm_before "$end"; do
			sleep 0.05
		done
		if [ -d "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	# ... then anything left in the namespaces, the namespaces, links, pins.
	hm_cleanup_prefix "$HM_PREFIX" "$grace" || rc=1
	if [ "$rc" -ne 0 ]; then
		die "could not remove everything of cluster $HM_PREFIX; state kept in $DIR so down can be retried"
	fi
	remove_dir_state "$keep_logs"
	if [ "$keep_logs" = 1 ]; then
		echo "cluster $HM_PREFIX down (logs kept in $DIR/replica-*/log)"
	else
		echo "cluster $HM_PREFIX down"
	fi
}

# ---------------------------------------------------------------- main

main() {
	while [ $# -gt 0 ]; do
		case "$1" in
		--dir) [ $# -ge 2 ] || die "$1 needs a value"; DIR_OPT="$2"; shift 2 ;;
		--dir=*) DIR_OPT="${1#*=}"; shift ;;
		-h | --help | help) usage; exit 0 ;;
		-*) die "unknown option '$1' (see $PROG --help)" ;;
		*) break ;;
		esac
	done
	[ $# -gt 0 ] || { usage >&2; exit 2; }
	local cmd="$1"
	shift
	local v
	for v in HM_READY_TIMEOUT HM_STOP_TIMEOUT HM_DOWN_GRACE; do
		[ -z "${!v:-}" ] || [[ "${!v}" =~ ^[0-9]+(\.[0-9]*)?$ ]] || die "$v must be a number of seconds (got '${!v}')"
	done
	case "$cmd" in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	exec | exec-replica | exec-attacker) ;;
	status | kill | stop | start)
		# Allow --dir after the command too.
		local args=()
		while [ $# -gt 0 ]; do
			case "$1" in
			--dir) [ $# -ge 2 ] || die "$1 needs a value"; DIR_OPT="$2"; shift 2 ;;
			--dir=*) DIR_OPT="${1#*=}"; shift ;;
			*) args+=("$1"); shift ;;
			esac
		done
		set -- "${args[@]+"${args[@]}"}"
		;;
	*) die "unknown command '$cmd' (see $PROG --help)" ;;
	esac
	case "$cmd" in
	up | down) ;;
	*) hm_require_root || exit 1 ;;
	esac
	case "$cmd" in
	status) [ $# -eq 0 ] || die "status takes no arguments"; cmd_status ;;
	kill) [ $# -eq 1 ] || die "usage: $PROG kill ID"; cmd_kill "$1" ;;
	stop) [ $# -eq 1 ] || die "usage: $PROG stop ID"; cmd_stop "$1" ;;
	start) [ $# -eq 1 ] || die "usage: $PROG start ID"; cmd_start "$1" ;;
	exec) cmd_exec "$@" ;;
	exec-attacker) cmd_exec_attacker "$@" ;;
	exec-replica) [ $# -ge 1 ] || die "usage: $PROG exec-replica ID CMD..."; cmd_exec_replica "$@" ;;
	esac
}

main "$@"
