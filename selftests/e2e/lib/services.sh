# shellcheck shell=bash
# The services' side of the namespace suites (e2e_dns.sh, e2e_dns_cluster.sh,
# e2e_tlsa.sh, e2e_ct_cluster.sh) and of scripts/bench_dns.sh: the helpers
# they source (assertions, namespaces, the DNS zones and NSD), a cluster of
# scripts/cluster.sh with a dns: section, NSD on a cluster's bridge, and the
# CT test logs (selftests/service/ct/ct_log) with their certificate factory.
#
#   source "$repo/selftests/e2e/lib/services.sh"

SERVICES_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SERVICES_REPO=$(cd "$SERVICES_LIB_DIR/../../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$SERVICES_LIB_DIR/assert.sh"
# shellcheck source=scripts/lib/netns.sh
source "$SERVICES_REPO/scripts/lib/netns.sh"
# shellcheck source=selftests/service/dns/lib.sh
source "$SERVICES_REPO/selftests/service/dns/lib.sh"

CT_PY=/usr/bin/python3   # Debian's, with python3-cryptography
CT_TOOLS=$SERVICES_REPO/selftests/service/ct/ct_log
CT_LOG_PIDS=()

# give_up WHAT: a failed setup step ends the suite.
give_up() {
	fail "$1"
	finish
	exit 1
}

# need_tools SUITE TOOL...: true when every TOOL is installed; else says
# which one is missing.
need_tools() {
	local suite=$1 tool
	shift
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { echo "$suite: $tool missing (make deps)"; return 1; }
	done
}

# dns_cluster_up DIR ZONES UPSTREAMS CLUSTER-UP-ARGS...: scripts/cluster.sh up
# in DIR with a dns: section (DNS on port 53, ZONES' trust anchors, 8 s for
# a decision, the upstreams UPSTREAMS, a YAML list, clients from the test
# range and loopback allowed, or $DNS_ALLOW) and the other arguments;
# then DIR/state.env is sourced (HM_PREFIX, HM_CLIENT_NS, ...).
dns_cluster_up() {
	local cdir=$1 zones=$2 ups=$3
	shift 3
	bash "$SERVICES_REPO/scripts/cluster.sh" --dir "$cdir" up "$@" \
		--set dns.listen_port=53 \
		--set dns.trust_anchor_file="$zones/trust-anchors" \
		--set dns.query_timeout_ms=8000 \
		--set "dns.allow=${DNS_ALLOW:-[198.18.0.0/15, 127.0.0.0/8]}" \
		--set "dns.upstreams=$ups" >/dev/null || return 1
	# shellcheck source=/dev/null
	. "$cdir/state.env"
}

# cluster_nsd NS ADDR ZONEDIR: namespace NS on the cluster's bridge (its
# state.env sourced) at ADDR, and NSD there serving ZONEDIR on ADDR.
cluster_nsd() {
	hm_ns_create "$1" &&
		hm_ns_connect "$1" eth0 "$2/24" "$HM_PREFIX-sw" br0 "$1" &&
		dns_nsd_start "$1" "$3" "$2"
}

# ct_factory_init CTD: the factory's CAs, log keys and leaf keys in CTD.
ct_factory_init() {
	"$CT_PY" "$CT_TOOLS/certfactory.py" init "$1" >/dev/null
}

# ct_fragment CTD URL: a ct: configuration section trusting CTD's root
# and knowing log A at URL.
ct_fragment() {
	cat <<-EOF
	ct:
	  trust_store: $1/root.pem
	  max_clock_skew_s: 300
	  logs:
	    - name: test-log-a
	      key: $1/log_a.pub.pem
	      url: $2
	EOF
}

# ct_log_start CTD NAME ADDR PORT: test log NAME (key CTD/NAME.key.pem) on
# ADDR:PORT in the cluster's client namespace, its pid in CT_LOG_PIDS; true
# once it listens.
ct_log_start() {
	local ctd=$1 name=$2
	ip netns exec "$HM_CLIENT_NS" "$CT_PY" "$CT_TOOLS/ct_log.py" --key "$ctd/$name.key.pem" \
		--roots "$ctd/root.pem" --host "$3" --port "$4" --port-file "$ctd/$name.port" \
		>"$ctd/$name.log" 2>&1 &
	CT_LOG_PIDS+=($!)
	for _ in $(seq 100); do [ -s "$ctd/$name.port" ] && return 0; sleep 0.1; done
	return 1
}

# ct_logs_stop: the logs first, before their namespace goes (deleting it
# would not end them).
ct_logs_stop() {
	local pid
	for pid in "${CT_LOG_PIDS[@]+"${CT_LOG_PIDS[@]}"}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	CT_LOG_PIDS=()
}

# ct_factory_issue CTD URL_A URL_B: certificates with SCTs from the logs at
# URL_A and URL_B, issued from the client namespace.
ct_factory_issue() {
	ip netns exec "$HM_CLIENT_NS" "$CT_PY" "$CT_TOOLS/certfactory.py" issue "$1" --log-a "$2" --log-b "$3"
}

# Reading dig's output: the rcode, the header flags, one flag among them.
status_of() { sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$1" | head -1; }
flags_of() { sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' <<<"$1" | head -1; }
has_flag() { [[ " $1 " == *" $2 "* ]]; }
# For check: true when the command fails.
not() { ! "$@"; }

# cluster_suite_begin PREFIX NAME: the frame of a suite around a namespace
# cluster.  Sets p (the namespace prefix, unique to this run) and dir (its
# files, /tmp/hm-e2e-NAME.*), defines `cluster` (scripts/cluster.sh on
# $dir/cluster) and, on exit, also a failed or interrupted one, takes the
# cluster down and removes every namespace under $p and $dir.
cluster_suite_begin() {
	p="$1$$"
	dir=$(mktemp -d "/tmp/hm-e2e-$2.XXXXXX")
	cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir/cluster" "$@"; }
	cleanup() {
		cluster down >/dev/null 2>&1
		hm_cleanup_prefix "$p" 2 >/dev/null 2>&1
		rm -rf "$dir"
	}
	trap cleanup EXIT
	trap 'exit 1' INT TERM
}
