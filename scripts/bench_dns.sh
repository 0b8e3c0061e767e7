#!/usr/bin/env bash
# The DNS benchmark (make bench calls it; not a test): dnsperf against one
# replica of a 4-replica HyperMesh cluster (byzantine_config.dns) and, in the
# same run, against three plain resolvers from Debian: Unbound, Knot Resolver
# (kresd) and PowerDNS Recursor, each with validation on, the same trust
# anchor, the same NSD upstream and zone, and its cache defaults.
#
#   auth  198.18.0.53   NSD with bench.hmtest, signed now (and the test zones)
#   ub    198.18.0.60   unbound, stub-zone bench.hmtest -> 198.18.0.53
#   kr    198.18.0.61   kresd, policy.FORWARD bench.hmtest -> 198.18.0.53
#   pd    198.18.0.62   pdns_recursor, forward-zones bench.hmtest=198.18.0.53
#   r0    198.18.0.1    the replica dnsperf asks (r1..r3: the rest of the cluster)
#   c     198.18.0.200  dnsperf
#
# The three resolvers, configured alike: one thread answering queries each
# (unbound num-threads 1; kresd one process, which is single-threaded, the
# way Knot Resolver scales being more processes; pdns_recursor threads=1
# with pdns-distributes-queries=no, one thread that both receives and
# resolves, beside its housekeeping threads), the way HyperMesh's replica
# answers from one event loop; no tuning of caches, each its defaults. The
# trust anchor is the DS of bench.hmtest's KSK from zones/trust-anchors
# (unbound reads that whole file; the others get the bench zone's line), and
# none has the root's: unbound is given none, kresd's built-in one is
# removed (trust_anchors.remove) and pdns_recursor's (clearTA), so each
# validates bench.hmtest from its own anchor alone. kresd uses
# policy.FORWARD, not policy.STUB, because STUB does not validate (no AD
# bit); FORWARD to NSD validates the answers. kresd's priming and
# detect_time_skew modules (queries to the root) and pdns_recursor's
# security polling are off; pdns_recursor still primes the root now and
# then, which fails at once: there is no route out of the namespaces.
# Before any load each one must answer, and answer hit-0 with the AD bit
# set (dig +dnssec), or the bench fails. A resolver whose daemon is not
# installed is skipped (said on stderr; null in the JSON); the others are
# measured. The daemons run only in their namespaces, their pids killed
# and their files (in the run's temporary directory) removed on every exit.
#
# Three loads per resolver, each the same for all:
#   hit      a few names, warmed first, queried for BENCH_DNS_SECONDS with
#            BENCH_DNS_OUTSTANDING queries outstanding: qps and latency
#   miss@1   BENCH_DNS_LAT_NAMES distinct names, one query outstanding: the
#            latency of a miss without queueing (agreement adds = HyperMesh
#            p50 minus Unbound p50)
#   miss@N   BENCH_DNS_MISS_NAMES other distinct names, BENCH_DNS_OUTSTANDING
#            outstanding: miss throughput
# Latency percentiles come from dnsperf -v (one line per answer, its latency).
# Prints a table and HyperMesh's ratios against each resolver; the last line
# is one JSON object (.dns.ratios: against Unbound, .dns.ratios_vs: against
# each).
#
# With --xdp, instead: the cache-hit path only, with dns.xdp on (answers
# from kern/hm_dns.bpf.c): the XDP path, HyperMesh's userspace hit path (the
# same queries with a DNS cookie, which XDP passes up), Unbound, kresd and
# pdns_recursor, each with dnsperf for BENCH_DNS_SECONDS; qps, p50 and the
# server CPU per answered query (XDP: the machine's softirq time, which also
# holds the veth and bridge work; the others: their process's time, all its
# threads), and the program's own time per answer (BPF_PROG_TEST_RUN,
# test_dns_xdp).
# Queries carry an EDNS padding option (RFC 7830): on a veth XDP gets
# buffers with little tailroom, and the padding leaves the answer room.
#
#   BENCH_DNS_SECONDS=5 BENCH_DNS_OUTSTANDING=20 BENCH_DNS_LAT_NAMES=300 \
#   BENCH_DNS_MISS_NAMES=2000 scripts/bench_dns.sh [--dataplane socket|xdp] [--xdp]
#   BENCH_DNS_VERBOSE=1: dnsperf's own summaries to stderr
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$repo/selftests/e2e/lib/services.sh"

seconds=${BENCH_DNS_SECONDS:-5}
outstanding=${BENCH_DNS_OUTSTANDING:-20}
hit_names=${BENCH_DNS_HIT_NAMES:-10}
lat_names=${BENCH_DNS_LAT_NAMES:-300}
miss_names=${BENCH_DNS_MISS_NAMES:-2000}
dataplane=socket
xdp_hits=0
while [ $# -gt 0 ]; do
	case "$1" in
	--dataplane) dataplane=${2:?--dataplane needs socket or xdp}; shift 2 ;;
	--xdp) xdp_hits=1; dataplane=xdp; shift ;;
	*) echo "bench_dns: unknown argument $1" >&2; exit 2 ;;
	esac
done

die() { echo "bench_dns: $*" >&2; exit 1; }
need_tools bench_dns nsd nsd-checkconf ldns-signzone ldns-keygen dig dnsperf unbound unbound-checkconf \
	jq >&2 || exit 1
[ -x "$repo/build/hypermeshd" ] || die "make all first"
hm_require_root || exit 1
# The other resolvers: each measured where its daemon is installed.
have_kresd=1 have_pdns=1
command -v kresd >/dev/null ||
	{ have_kresd=0; echo "bench_dns: kresd missing (make deps): knot_resolver not measured" >&2; }
command -v pdns_recursor >/dev/null ||
	{ have_pdns=0; echo "bench_dns: pdns_recursor missing (make deps): pdns_recursor not measured" >&2; }

p="hd$$"
dir=$(mktemp -d /tmp/hm-bench-dns.XXXXXX)
AUTH=198.18.0.53 UB=198.18.0.60 KR=198.18.0.61 PD=198.18.0.62 HM=198.18.0.1 ZONE=bench.hmtest
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir/cluster" "$@"; }
# The resolvers' daemons: NAME -> pid, each started in its namespace.
declare -A daemon_pid=() daemon_ns=()
cleanup() {
	local d
	for d in "${!daemon_pid[@]}"; do kill "${daemon_pid[$d]}" 2>/dev/null; done
	for d in "${!daemon_pid[@]}"; do
		hm_wait_pid_exit "${daemon_pid[$d]}" "${daemon_ns[$d]}" 5 || kill -KILL "${daemon_pid[$d]}" 2>/dev/null
	done
	hm_cleanup_prefix "$p" 2 >/dev/null 2>&1
	cluster down >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The bench zone: hit-I, lat-I, miss-I, each with one A record.
bench_zone() {
	local i
	# shellcheck disable=SC2016  # $ORIGIN and $TTL are zone-file directives
	printf '$ORIGIN %s.\n$TTL 3600\n' "$ZONE"
	printf '@\tIN SOA ns.%s. hostmaster.%s. 1 7200 3600 1209600 300\n' "$ZONE" "$ZONE"
	printf '@\tIN NS ns.%s.\nns\tIN A 198.18.53.2\n' "$ZONE"
	for ((i = 0; i < hit_names; i++)); do printf 'hit-%d\tIN A 198.18.54.%d\n' "$i" "$((i % 250 + 1))"; done
	for ((i = 0; i < lat_names; i++)); do printf 'lat-%d\tIN A 198.18.55.%d\n' "$i" "$((i % 250 + 1))"; done
	for ((i = 0; i < miss_names; i++)); do printf 'miss-%d\tIN A 198.18.56.%d\n' "$i" "$((i % 250 + 1))"; done
}
# query_file KIND COUNT: dnsperf input, one "NAME A" a line.
query_file() {
	local i
	for ((i = 0; i < $2; i++)); do printf '%s-%d.%s A\n' "$1" "$i" "$ZONE"; done >"$dir/$1.queries"
}

unbound_conf() {
	cat <<-EOF
	server:
	    interface: $UB
	    port: 53
	    username: ""
	    chroot: ""
	    directory: "$dir/unbound"
	    pidfile: "$dir/unbound/unbound.pid"
	    use-syslog: no
	    logfile: ""
	    verbosity: 0
	    num-threads: 1
	    do-ip6: no
	    access-control: 198.18.0.0/15 allow
	    module-config: "validator iterator"
	    trust-anchor-file: "$dir/zones/trust-anchors"
	remote-control:
	    control-enable: no
	stub-zone:
	    name: "$ZONE."
	    stub-addr: $AUTH
	EOF
}

# The bench zone's DS line in zones/trust-anchors ("OWNER IN DS RDATA"), and
# its RDATA alone.
zone_ds() { grep -m1 "^$ZONE\.[[:space:]]" "$dir/zones/trust-anchors"; }
zone_ds_rdata() { zone_ds | awk '{ for (i = 1; i < NF; i++) if ($i == "DS") { sub(/^.*[[:space:]]DS[[:space:]]+/, ""); print; exit } }'; }

kresd_conf() {
	cat <<-EOF
	-- bench_dns.sh: Knot Resolver for bench.hmtest, one process
	net.ipv6 = false
	net.listen('$KR', 53, { kind = 'dns' })
	trust_anchors.remove('.')
	trust_anchors.add('$(zone_ds)')
	policy.add(policy.suffix(policy.FORWARD({'$AUTH'}), {todname('$ZONE.')}))
	modules.unload('priming')
	modules.unload('detect_time_skew')
	EOF
}

pdns_conf() {
	cat <<-EOF
	# bench_dns.sh: PowerDNS Recursor for bench.hmtest, one worker thread
	local-address=$PD
	local-port=53
	allow-from=198.18.0.0/15
	forward-zones=$ZONE=$AUTH
	dnssec=validate
	lua-config-file=$dir/pdns/recursor.lua
	socket-dir=$dir/pdns
	daemon=no
	threads=1
	pdns-distributes-queries=no
	security-poll-suffix=
	disable-syslog=yes
	quiet=yes
	EOF
}

pdns_lua() {
	printf "clearTA('.')\naddTA('%s', '%s')\n" "$ZONE" "$(zone_ds_rdata)"
}

# wait_answers NS SERVER: until SERVER answers the zone's SOA from NS.
wait_answers() {
	for _ in $(seq 100); do
		ip netns exec "$1" dig +short +time=1 +tries=1 @"$2" "$ZONE" SOA 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# resolver_up NAME ADDR LOG CMD...: namespace $p-NAME on the bridge at ADDR,
# CMD (the daemon, in the foreground) started there, its pid kept for
# cleanup; then it must answer the zone's SOA and answer hit-0 validated
# (NOERROR with the AD bit, dig +dnssec from the client namespace).
resolver_up() {
	local name=$1 addr=$2 log=$3 pid out
	shift 3
	if ! hm_ns_create "$p-$name" ||
		! hm_ns_connect "$p-$name" eth0 "$addr/24" "$HM_PREFIX-sw" br0 "$p-$name"; then
		die "$name namespace"
	fi
	hm_ns_spawn "$p-$name" "$dir/$name.pid" "$log" "$@"
	pid=$(hm_wait_pidfile "$dir/$name.pid" 5) || die "$name did not start"
	daemon_pid[$name]=$pid daemon_ns[$name]=$p-$name
	wait_answers "$HM_PREFIX-c" "$addr" || { cat "$log" >&2; die "$name ($addr) did not come up"; }
	out=$(ip netns exec "$HM_PREFIX-c" dig +dnssec +time=2 +tries=2 @"$addr" "hit-0.$ZONE" A 2>&1)
	if [ "$(status_of "$out")" != NOERROR ] || ! has_flag "$(flags_of "$out")" ad; then
		echo "$out" >&2
		die "$name ($addr) does not validate: no AD bit on hit-0.$ZONE"
	fi
}

setup() {
	local others=unbound
	[ "$have_kresd" = 1 ] && others+=", kresd"
	[ "$have_pdns" = 1 ] && others+=", pdns_recursor"
	echo "# setup: zones signed now ($hit_names + $lat_names + $miss_names names in $ZONE), NSD," \
		"4 replicas ($dataplane) with DNS, $others" >&2
	dns_build_zones "$dir/zones" >/dev/null 2>&1 || die "zones"
	bench_zone >"$dir/zones/honest/$ZONE.zone"
	dns_sign_zone "$dir/zones/honest" "$ZONE" "" >/dev/null 2>&1 || die "signing $ZONE"
	# Agreement on one upstream, answers cached for the whole run, a query
	# waits up to 8 s for its decision.
	local xdp_set=()
	[ "$xdp_hits" = 1 ] && xdp_set=(--set dns.xdp=true --set dns.rrl_rate=0)
	dns_cluster_up "$dir/cluster" "$dir/zones" "[{zone: $ZONE., address: $AUTH}]" -n 4 --clients 1 \
		--dataplane "$dataplane" --set dns.max_ttl_s=3600 "${xdp_set[@]}" || die "cluster up"
	cluster_nsd "$p-auth" "$AUTH" "$dir/zones/honest" || die "nsd"
	[ -n "$(zone_ds_rdata)" ] || die "no DS for $ZONE in $dir/zones/trust-anchors"
	mkdir -p "$dir/unbound"
	unbound_conf >"$dir/unbound/unbound.conf"
	unbound-checkconf "$dir/unbound/unbound.conf" >/dev/null || die "unbound.conf"
	resolver_up ub "$UB" "$dir/unbound/out" unbound -d -c "$dir/unbound/unbound.conf"
	if [ "$have_kresd" = 1 ]; then
		mkdir -p "$dir/kresd"
		kresd_conf >"$dir/kresd/kresd.conf"
		# Its cache (lmdb) and control socket go to the run directory, $dir/kresd.
		resolver_up kr "$KR" "$dir/kresd/out" kresd -n -c "$dir/kresd/kresd.conf" "$dir/kresd"
	fi
	if [ "$have_pdns" = 1 ]; then
		mkdir -p "$dir/pdns"
		pdns_conf >"$dir/pdns/recursor.conf"
		pdns_lua >"$dir/pdns/recursor.lua"
		resolver_up pd "$PD" "$dir/pdns/out" pdns_recursor --config-dir="$dir/pdns"
	fi
	wait_answers "$HM_PREFIX-c" "$HM" || die "replica 0 does not answer DNS"
	query_file hit "$hit_names"
	query_file lat "$lat_names"
	query_file miss "$miss_names"
}

# perf NAME SERVER FILE DNSPERF-ARGS...: one dnsperf run from the client
# namespace; prints its figures as a JSON object.
perf() {
	local name=$1 server=$2 file=$3 out="$dir/perf-$1.out"
	shift 3
	cluster exec dnsperf -v -s "$server" -d "$file" -t 10 "$@" >"$out" 2>&1
	[ -n "${BENCH_DNS_VERBOSE:-}" ] && grep -v '^> ' "$out" | sed "s/^/  [$name $server] /" >&2
	# -v: "> RCODE NAME TYPE LATENCY" per answer; percentiles from those.
	awk '/^> / { print $NF * 1e6 }' "$out" | sort -n >"$out.lat"
	local n; n=$(wc -l <"$out.lat")
	pct() { [ "$n" -gt 0 ] && awk -v k="$(((n * $1 + 99) / 100))" 'NR == (k < 1 ? 1 : k) { printf "%.0f", $1; exit }' "$out.lat" || echo 0; }
	jq -n --arg name "$name" \
		--argjson sent "$(awk '/Queries sent:/ {print $3; exit}' "$out" | grep . || echo 0)" \
		--argjson completed "$(awk '/Queries completed:/ {print $3; exit}' "$out" | grep . || echo 0)" \
		--argjson lost "$(awk '/Queries lost:/ {print $3; exit}' "$out" | grep . || echo 0)" \
		--argjson noerror "$(awk '/Response codes:/ {for (i = 3; i < NF; i++) if ($i == "NOERROR") {gsub(/[^0-9]/, "", $(i + 1)); print $(i + 1)}; exit}' "$out" | grep . || echo 0)" \
		--argjson qps "$(awk '/Queries per second:/ {printf "%.0f", $4; exit}' "$out" | grep . || echo 0)" \
		--argjson avg "$(awk '/Average Latency \(s\):/ {printf "%.0f", $4 * 1e6; exit}' "$out" | grep . || echo 0)" \
		--argjson p50 "$(pct 50)" --argjson p90 "$(pct 90)" --argjson p99 "$(pct 99)" \
		'{load: $name, sent: $sent, completed: $completed, lost: $lost, noerror: $noerror,
		  qps: $qps, avg_us: $avg, p50_us: $p50, p90_us: $p90, p99_us: $p99}'
}

# bench SERVER: the three loads against SERVER; a JSON object of them.
bench() {
	local server=$1 hit lat miss
	# Warm: every hit name once (a miss each), then their answers are cached.
	cluster exec dnsperf -s "$server" -d "$dir/hit.queries" -n 1 -q 1 -t 10 >/dev/null 2>&1
	hit=$(perf hit "$server" "$dir/hit.queries" -l "$seconds" -q "$outstanding")
	lat=$(perf miss1 "$server" "$dir/lat.queries" -n 1 -q 1)
	miss=$(perf missN "$server" "$dir/miss.queries" -n 1 -q "$outstanding" -l 60)
	jq -n --argjson h "$hit" --argjson l "$lat" --argjson m "$miss" '{hit: $h, miss_1: $l, miss_n: $m}'
}

# ---- --xdp: the hit path -----------------------------------------------------

PAD="12:$(printf '0%.0s' $(seq 800))"    # a 400-byte padding option
COOKIE="10:0102030405060708"             # a client cookie: XDP passes it up
cpu_ticks_pid() { awk '{print $14 + $15}' "/proc/$1/stat"; }
softirq_ticks() { awk '/^cpu / {print $8; exit}' /proc/stat; }
replica0_pid() { cat "$dir/cluster/replica-0/pid" 2>/dev/null || pgrep -f "hypermeshd.*--id 0" | head -1; }

# hitrun NAME SERVER EDNS-OPTION PID: one hit load; JSON with the CPU per
# answer of the server process PID and of the machine's softirq work (where
# XDP runs, and also the veth and bridge work for every server).
hitrun() {
	local name=$1 server=$2 opt=$3 pid=$4 p0 p1 s0 s1 hz j
	hz=$(getconf CLK_TCK)
	p0=$(cpu_ticks_pid "$pid") s0=$(softirq_ticks)
	j=$(perf "$name" "$server" "$dir/hit.queries" -l "$seconds" -q "$outstanding" -D -E "$opt")
	p1=$(cpu_ticks_pid "$pid") s1=$(softirq_ticks)
	jq -c --argjson pt "$((p1 - p0))" --argjson st "$((s1 - s0))" --argjson hz "$hz" '
		def per(t): if .noerror > 0 then (t / $hz * 1e6 / .noerror * 100 | round / 100) else null end;
		. + {process_cpu_us_per_answer: per($pt), softirq_cpu_us_per_answer: per($st),
		     cpu_us_per_answer: per($pt + $st)}' <<<"$j"
}

xdp_hit_bench() {
	local xdp user ub kr=null pd=null ns_per_answer port addr
	for port in $(ip -n "$HM_PREFIX-sw" -o link show type veth | awk -F'[ :@]+' '{print $2}'); do
		ip -n "$HM_PREFIX-sw" link set dev "$port" xdpdrv obj "$repo/build/hm_pass.bpf.o" sec xdp ||
			die "hm_pass on $port"
	done
	# Warm: every hit name decided (a miss each), then in the answer map
	# (and in each resolver's cache).
	for addr in "$HM" "$UB" ${daemon_pid[kr]:+"$KR"} ${daemon_pid[pd]:+"$PD"}; do
		cluster exec dnsperf -s "$addr" -d "$dir/hit.queries" -n 2 -q 1 -t 10 -D >/dev/null 2>&1
	done
	echo "# XDP hit path (replica 0 at $HM)" >&2
	xdp=$(hitrun xdp "$HM" "$PAD" "$(replica0_pid)")
	echo "# userspace hit path (same queries with a cookie)" >&2
	user=$(hitrun userspace "$HM" "$COOKIE" "$(replica0_pid)")
	echo "# unbound ($UB)" >&2
	ub=$(hitrun unbound "$UB" "$PAD" "${daemon_pid[ub]}")
	if [ -n "${daemon_pid[kr]:-}" ]; then
		echo "# knot_resolver ($KR)" >&2
		kr=$(hitrun knot_resolver "$KR" "$PAD" "${daemon_pid[kr]}")
	fi
	if [ -n "${daemon_pid[pd]:-}" ]; then
		echo "# pdns_recursor ($PD)" >&2
		pd=$(hitrun pdns_recursor "$PD" "$PAD" "${daemon_pid[pd]}")
	fi
	ns_per_answer=$("$repo/build/tests/test_dns_xdp" time_per_answer 2>/dev/null |
		awk '/ns per answer/ {print $1; exit}')
	json=$(jq -n -c --argjson x "$xdp" --argjson u "$user" --argjson b "$ub" --argjson k "$kr" --argjson pd "$pd" \
		--argjson ns "${ns_per_answer:-null}" --argjson st "$("$repo/build/hmctl" status \
			--socket "$dir/cluster/replica-0/control.sock" | jq -c '.dns.xdp')" '
		def r(a; b): if b == 0 or b == null or a == null then null else (a / b * 100 | round / 100) end;
		{dns_xdp_hits: {xdp: $x, userspace: $u, unbound: $b, knot_resolver: $k, pdns_recursor: $pd,
		  xdp_counters: $st, xdp_prog_ns_per_answer: $ns,
		  ratios: {xdp_vs_unbound_qps: r($x.qps; $b.qps), xdp_vs_userspace_qps: r($x.qps; $u.qps),
		           unbound_vs_xdp_cpu: r($b.cpu_us_per_answer; $x.cpu_us_per_answer),
		           userspace_vs_xdp_cpu: r($u.cpu_us_per_answer; $x.cpu_us_per_answer),
		           xdp_vs_knot_resolver_qps: r($x.qps; $k.qps),
		           knot_resolver_vs_xdp_cpu: r($k.cpu_us_per_answer; $x.cpu_us_per_answer),
		           xdp_vs_pdns_recursor_qps: r($x.qps; $pd.qps),
		           pdns_recursor_vs_xdp_cpu: r($pd.cpu_us_per_answer; $x.cpu_us_per_answer)}}}')
	printf '\n%-13s %8s %9s %8s %8s %6s %13s %13s %13s\n' path qps answered p50_us p99_us lost \
		process_us/ans softirq_us/ans total_us/ans
	jq -r '.dns_xdp_hits | ["xdp", "userspace", "unbound", "knot_resolver", "pdns_recursor"][] as $k |
		select(.[$k] != null) | .[$k] |
		[$k, .qps, .noerror, .p50_us, .p99_us, .lost, .process_cpu_us_per_answer,
		 .softirq_cpu_us_per_answer, .cpu_us_per_answer] | @tsv' <<<"$json" |
		awk -F'\t' '{printf "%-13s %8d %9d %8d %8d %6d %13s %13s %13s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}'
	jq -r '.dns_xdp_hits | "\nXDP / unbound qps x\(.ratios.xdp_vs_unbound_qps), XDP / userspace qps x\(.ratios.xdp_vs_userspace_qps); CPU per answer: unbound / XDP x\(.ratios.unbound_vs_xdp_cpu), userspace / XDP x\(.ratios.userspace_vs_xdp_cpu)",
		(. as $d | ["knot_resolver", "pdns_recursor"][] | select($d[.] != null) |
		 "XDP / \(.) qps x\($d.ratios["xdp_vs_" + . + "_qps"]); CPU per answer: \(.) / XDP x\($d.ratios[. + "_vs_xdp_cpu"])"),
		"the XDP program: \(.xdp_prog_ns_per_answer) ns per answer (BPF_PROG_TEST_RUN); hits \(.xdp_counters.hit), grow_failed \(.xdp_counters.grow_failed)"' <<<"$json"
	echo "$json"
}

setup
if [ "$xdp_hits" = 1 ]; then
	xdp_hit_bench
	exit 0
fi
echo "# hypermesh (replica 0 at $HM)" >&2
hm=$(bench "$HM")
# For scale: one consensus round on the same cluster, a null op from one
# closed-loop client (what an OBSERVE's ordering costs before execute).
round=$(cluster exec hmctl bench --clients 1 --duration 2 --op null 2>/dev/null | tail -1 |
	jq -c '{ops_per_s, p50_us, p99_us}' 2>/dev/null) || round=null
[ -n "$round" ] || round=null
echo "# unbound ($UB)" >&2
ub=$(bench "$UB")
hits_before=$("$repo/build/hmctl" status --socket "$dir/cluster/replica-0/control.sock" | jq '.dns.replica.cache_hits // 0')
kr=null pd=null
if [ "$have_kresd" = 1 ]; then
	echo "# knot_resolver ($KR)" >&2
	kr=$(bench "$KR")
fi
if [ "$have_pdns" = 1 ]; then
	echo "# pdns_recursor ($PD)" >&2
	pd=$(bench "$PD")
fi

json=$(jq -n -c --argjson hm "$hm" --argjson ub "$ub" --argjson kr "$kr" --argjson pd "$pd" --arg dp "$dataplane" \
	--argjson o "$outstanding" --argjson s "$seconds" --argjson hits "$hits_before" --argjson round "$round" '
	def r(a; b): if b == 0 then null else (a / b * 100 | round / 100) end;
	# HyperMesh against one resolver (null: not measured).
	def vs($x): if $x == null then null else
		{hit_qps: r($hm.hit.qps; $x.hit.qps), hit_p50: r($hm.hit.p50_us; $x.hit.p50_us),
		 miss_qps: r($hm.miss_n.qps; $x.miss_n.qps), miss_p50: r($hm.miss_1.p50_us; $x.miss_1.p50_us),
		 miss_p50_adds_us: ($hm.miss_1.p50_us - $x.miss_1.p50_us)} end;
	{dns: {replicas: 4, dataplane: $dp, outstanding: $o, hit_seconds: $s,
	  hypermesh: $hm, unbound: $ub, knot_resolver: $kr, pdns_recursor: $pd, replica0_cache_hits: $hits,
	  ratios: (vs($ub) | del(.miss_p50_adds_us)),
	  ratios_vs: {unbound: vs($ub), knot_resolver: vs($kr), pdns_recursor: vs($pd)},
	  null_op_round_1_client: $round,
	  agreement_adds_p50_us: ($hm.miss_1.p50_us - $ub.miss_1.p50_us),
	  targets: {hits_at_least_as_fast: ($hm.hit.qps >= $ub.hit.qps and $hm.hit.p50_us <= $ub.hit.p50_us),
	            agreement_under_1ms_p50: (($hm.miss_1.p50_us - $ub.miss_1.p50_us) < 1000)}}}')

printf '\n%-13s %-8s %8s %9s %8s %8s %8s %8s %7s\n' resolver load qps answered avg_us p50_us p90_us p99_us lost
jq -r '.dns | ["hypermesh", "unbound", "knot_resolver", "pdns_recursor"][] as $r | select(.[$r] != null) |
	.[$r] | to_entries[] |
	[$r, .key, .value.qps, .value.noerror, .value.avg_us, .value.p50_us, .value.p90_us, .value.p99_us, .value.lost] | @tsv' <<<"$json" |
	awk -F'\t' '{printf "%-13s %-8s %8d %9d %8d %8d %8d %8d %7d\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}'
echo
jq -r '.dns | . as $d | ["unbound", "knot_resolver", "pdns_recursor"][] | select($d.ratios_vs[.] != null) as $k |
	$d.ratios_vs[$k] | "hypermesh / \($k): hits qps x\(.hit_qps), hit p50 x\(.hit_p50); misses qps x\(.miss_qps) (\($d.outstanding) outstanding), miss p50 x\(.miss_p50) (1 outstanding, +\(.miss_p50_adds_us) us)"' <<<"$json"
jq -r '.dns | "one consensus round (null op, 1 client) on the same cluster: p50 \(.null_op_round_1_client.p50_us // "?") us",
	"agreement adds \(.agreement_adds_p50_us) us at p50 to a miss (against unbound; target < 1000 us: \(.targets.agreement_under_1ms_p50)); hits at least as fast as unbound: \(.targets.hits_at_least_as_fast)"' <<<"$json"
echo "$json"
