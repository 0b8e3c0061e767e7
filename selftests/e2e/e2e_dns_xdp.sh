#!/usr/bin/env bash
# End-to-end: DNS cache hits answered from XDP (kern/hm_dns.bpf.c).  A real
# cluster (scripts/cluster.sh) with dns.xdp on, NSD with the zones signed at
# test time, and dig against replica 0: the first query is decided by the
# cluster and answered by the userspace front end; the repeats are answered
# by XDP (the hit counter rises, the front end sees nothing), with the same
# answer, AD, the client's 0x20 case, TC for a small buffer, and TTLs that
# count down; the counters are in hmctl status, Prometheus and bpftool.
#
#   HM_E2E_DATAPLANE=xdp|socket   xdp (default): hm_xdp tail-calls hm_dns;
#                                 socket: hm_dns attached alone
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

need_tools e2e_dns_xdp nsd ldns-signzone ldns-keygen dig jq curl bpftool || give_up "tools"
[ -x "$repo/build/hypermeshd" ] || { echo "e2e_dns_xdp: make all first"; give_up "built"; }
hm_require_root || give_up "root"

cluster_suite_begin hx dnsx
mode=${HM_E2E_DATAPLANE:-xdp}

AUTH=198.18.0.53
R0=198.18.0.1
ZONES=(signed.hmtest nsec3.hmtest unsigned.hmtest)
upstreams() {
	local z out="[" sep=""
	for z in "${ZONES[@]}"; do
		out+="$sep{zone: $z., address: $AUTH}"
		sep=", "
	done
	printf '%s]' "$out"
}
status() { "$repo/build/hmctl" status --socket "$dir/cluster/replica-0/control.sock" | jq -r "$1"; }
# +nocookie: dig sends a DNS cookie by default, and queries with EDNS
# options other than padding go to the front end (see kern/hm_dns.bpf.c).
# +padding=468: a veth hands XDP a buffer with little tailroom, so an answer
# much longer than its query cannot be built in place there (grow_failed,
# answered by the front end); a padded query leaves room (a NIC's buffers
# are a page: no such limit).
d() { cluster exec dig @"$R0" +time=4 +tries=1 +nocookie +padding=468 "$@" 2>&1; }
# The answer section without TTLs, sorted.
answer_set() { d "$@" +noall +answer | awk '{ $2 = ""; print }' | sort; }
# Poll status field $1 until it is at least $2; print the last value.
wait_ge() {
	local v=0
	for _ in $(seq 50); do
		v=$(status "$1")
		[ "$v" -ge "$2" ] 2>/dev/null && break
		sleep 0.1
	done
	printf '%s' "$v"
}
hits() { status .dns.xdp.hit; }
udp_queries() { status .dns.frontend.udp_queries; }

echo "# setup: zones signed now, NSD, 4 replicas ($mode dataplane) with dns.xdp"
dns_build_zones "$dir/zones" >/dev/null 2>&1 || give_up "zones"
dns_cluster_up "$dir/cluster" "$dir/zones" "$(upstreams)" -n 4 --clients 2 --dataplane "$mode" \
	--set dns.xdp=true --set dns.max_ttl_s=300 --set dns.rrl_rate=0 \
	--set detection.metrics_port=9464 || give_up "cluster"
cluster_nsd "$p-auth" "$AUTH" "$dir/zones/honest" || give_up "nsd"
# XDP_TX on a veth hands the frame to its peer, which takes it only when it
# runs an XDP program too (a NIC needs nothing): hm_pass on the switch ports.
veth_peers_xdp() {
	local port
	for port in $(ip -n "$HM_PREFIX-sw" -o link show type veth | awk -F'[ :@]+' '{print $2}'); do
		ip -n "$HM_PREFIX-sw" link set dev "$port" xdpdrv obj "$repo/build/hm_pass.bpf.o" \
			sec xdp || return 1
	done
}
veth_peers_xdp || give_up "hm_pass on the switch ports"
pass "setup"
want_how="tail call from hm_xdp"
[ "$mode" = socket ] && want_how="native"
how=$(status .dns.xdp.attached)
check "responder attached ($how)" [ "$how" = "$want_how" ] || [ "$mode" = socket -a "$how" = skb ]

echo "# first query: decided by the cluster, answered from userspace"
first=$(d www.signed.hmtest A +dnssec)
check_eq "NOERROR" "$(status_of "$first")" NOERROR
check "AD" has_flag "$(flags_of "$first")" ad
check_ge "installed in the answer map" "$(wait_ge .dns.xdp.installed 2)" 2

echo "# repeats: answered by XDP"
h0=$(hits) q0=$(udp_queries)
again=$(d www.signed.hmtest A +dnssec)
check_eq "XDP hit counted" "$(wait_ge .dns.xdp.hit $((h0 + 1)))" $((h0 + 1))
check_eq "the front end did not see it" "$(udp_queries)" "$q0"
check "AD from XDP" has_flag "$(flags_of "$again")" ad
check_eq "same records as the userspace answer" \
	"$(sed -n '/ANSWER SECTION/,/^$/p' <<<"$again" | awk '{ $2 = ""; print }')" \
	"$(sed -n '/ANSWER SECTION/,/^$/p' <<<"$first" | awk '{ $2 = ""; print }')"
mixed=$(d wWw.SiGnEd.HmTeSt A +dnssec)
check "0x20: the question echoed as asked" grep -q "^;wWw.SiGnEd.HmTeSt.	" <<<"$mixed"
check_eq "0x20 query also from XDP" "$(wait_ge .dns.xdp.hit $((h0 + 2)))" $((h0 + 2))
noedns=$(cluster exec dig @"$R0" +time=4 +tries=1 +noedns +noadflag www.signed.hmtest A 2>&1)
check "no EDNS: no OPT record" not grep -q "OPT PSEUDOSECTION" <<<"$noedns"
check "no EDNS: no AD without DO or AD" not has_flag "$(flags_of "$noedns")" ad
check "no EDNS: no RRSIG without DO" not grep -q "RRSIG" <<<"$noedns"
ttl1=$(d www.signed.hmtest A +noall +answer | awk '{print $2; exit}')
sleep 2.2
ttl2=$(d www.signed.hmtest A +noall +answer | awk '{print $2; exit}')
check "TTL counts down in XDP answers ($ttl1 -> $ttl2)" [ "${ttl2:-0}" -lt "${ttl1:-0}" ]

echo "# a large answer: TC for a small buffer, from XDP"
d big.signed.hmtest TXT +dnssec +bufsize=1232 +ignore >/dev/null
check_ge "big answer installed" "$(wait_ge .dns.xdp.installed 4)" 4
tc0=$(status .dns.xdp.tc)
out=$(d big.signed.hmtest TXT +dnssec +bufsize=1232 +ignore)
check "TC set" has_flag "$(flags_of "$out")" tc
check_ge "TC counted" "$(wait_ge .dns.xdp.tc $((tc0 + 1)))" $((tc0 + 1))
out=$(d big.signed.hmtest TXT +dnssec +bufsize=1232)
check_eq "dig retries over TCP: 40 TXT records" "$(grep -c "	TXT	" <<<"$(sed -n '/ANSWER SECTION/,/^$/p' <<<"$out")")" 40

echo "# NXDOMAIN, from XDP on the repeat"
d nope.signed.hmtest A >/dev/null
h1=$(hits)
out=$(d nope.signed.hmtest A)
check_eq "NXDOMAIN" "$(status_of "$out")" NXDOMAIN
check "SOA in authority" grep -qE "IN	SOA	" <<<"$out"
check_eq "from XDP" "$(wait_ge .dns.xdp.hit $((h1 + 1)))" $((h1 + 1))

echo "# an unpadded query: from XDP, or (no room on this veth) by the front end"
g0=$(( $(status .dns.xdp.grow_failed) + $(hits) ))
out=$(cluster exec dig @"$R0" +time=4 +tries=1 +nocookie www.signed.hmtest A +dnssec 2>&1)
check_eq "answered" "$(status_of "$out")" NOERROR
check_eq "counted as a hit or as grow_failed" "$(( $(status .dns.xdp.grow_failed) + $(hits) ))" $((g0 + 1))

echo "# what XDP does not answer goes up unchanged"
p0=$(status .dns.xdp.pass) q0=$(udp_queries)
out=$(cluster exec dig @"$R0" +time=4 +tries=1 +cookie www.signed.hmtest A 2>&1)
check_eq "a query with a cookie: answered" "$(status_of "$out")" NOERROR
check_ge "passed in XDP" "$(wait_ge .dns.xdp.pass $((p0 + 1)))" $((p0 + 1))
check_ge "answered by the front end" "$(udp_queries)" $((q0 + 1))
m0=$(status .dns.xdp.miss)
d never.unsigned.hmtest A >/dev/null
check_ge "a miss counted" "$(wait_ge .dns.xdp.miss $((m0 + 1)))" $((m0 + 1))

echo "# counters: Prometheus and bpftool"
metrics=$(cluster exec-replica 0 curl -s "http://198.18.0.1:9464/metrics" 2>/dev/null)
check "hypermesh_dns_xdp_hits_total exported" grep -qE "^hypermesh_dns_xdp_hits_total [1-9]" <<<"$metrics"
table=$("$repo/build/hmctl" status --socket "$dir/cluster/replica-0/control.sock" --table)
check "hmctl status table shows the XDP counters" grep -qE "^dns from xdp .*hit [1-9]" <<<"$table"
dump=$(cluster exec-replica 0 bpftool map dump pinned /sys/fs/bpf/hypermesh/eth0/hm_dns_stats 2>&1)
check "bpftool shows the named counters" grep -q '"hit":' <<<"$dump"

echo "# RRL: 3 answers/s per prefix, every 2nd over the rate slips"
cluster down >/dev/null 2>&1
hm_cleanup_prefix "$p" 2 >/dev/null 2>&1
dns_cluster_up "$dir/cluster" "$dir/zones" "$(upstreams)" -n 4 --clients 2 --dataplane "$mode" \
	--set dns.xdp=true --set dns.max_ttl_s=300 --set dns.rrl_rate=3 --set dns.rrl_slip=2 ||
	give_up "cluster with rrl"
cluster_nsd "$p-auth" "$AUTH" "$dir/zones/honest" || give_up "nsd"
veth_peers_xdp || give_up "hm_pass on the switch ports"
d www.unsigned.hmtest A >/dev/null
wait_ge .dns.xdp.installed 2 >/dev/null
for _ in $(seq 20); do d www.unsigned.hmtest A +time=1 >/dev/null; done
check_ge "over the rate: dropped" "$(status .dns.xdp.rrl_dropped)" 1
check_ge "over the rate: slipped (TC)" "$(status .dns.xdp.rrl_slipped)" 1

echo "# kill -9: the programs left on eth0 are removed by hypermeshd --cleanup"
cluster kill 0 >/dev/null 2>&1
check "an XDP program left on replica 0's eth0" \
	sh -c "bash '$repo/scripts/cluster.sh' --dir '$dir/cluster' exec-replica 0 ip link show eth0 | grep -q xdp"
out=$(cluster exec-replica 0 "$repo/build/hypermeshd" --cleanup "$dir/cluster/cluster.yaml" 2>&1)
check "--cleanup says it removed ours ($out)" grep -q "eth0: removed our XDP program" <<<"$out"
check "nothing attached any more" \
	sh -c "! bash '$repo/scripts/cluster.sh' --dir '$dir/cluster' exec-replica 0 ip link show eth0 | grep -q xdp"
finish
