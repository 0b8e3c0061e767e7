#!/usr/bin/env bash
# End-to-end: the Byzantine-safe resolver as the replicated service.  A real
# cluster of hypermeshd processes (scripts/cluster.sh) with byzantine_config.dns,
# NSD with the zones signed at test time in a namespace of its own on the
# cluster's bridge, and dig/kdig against every replica.
#
#   auth  198.18.0.53  NSD, the honest zones
#         198.18.0.54  NSD, the poisoning zones (other data for the same names)
#   rI    198.18.0.(I+1)  replica I, DNS on port 53; replica 3 (n = 4) or
#                         replicas 5 and 6 (n = 7) use the poisoning server
#   c     198.18.0.200 dig, kdig, hmctl
#
#   HM_E2E_DATAPLANE=socket|xdp   the dataplane (default socket)
#   HM_E2E_DNS_N7=0    skip the n = 7 cluster (f = 2 poisoners; on by default)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

need_tools e2e_dns_cluster nsd ldns-signzone ldns-keygen dig kdig jq || give_up "tools"
[ -x "$repo/build/hypermeshd" ] || { echo "e2e_dns_cluster: make all first"; give_up "built"; }
hm_require_root || give_up "root"

cluster_suite_begin hw dnsc

AUTH=198.18.0.53 POIS=198.18.0.54
ZONES=(signed.hmtest nsec3.hmtest bogus.hmtest unsigned.hmtest)

# The upstreams: every zone at the honest server, and for the replicas
# in $1 (a YAML list) every zone at the poisoning one.
upstreams() {
	local z out="[" sep=""
	for z in "${ZONES[@]}"; do
		out+="$sep{zone: $z., address: $AUTH}"
		sep=", "
		[ -n "$1" ] && out+="$sep{zone: $z., address: $POIS, replicas: $1}"
	done
	printf '%s]' "$out"
}

status() { "$repo/build/hmctl" status --socket "$dir/cluster/replica-$1/control.sock" | jq -r "$2"; }
cli() { cluster exec "$@"; }
# Waits past query_timeout_ms (set below): an answer that is late on a loaded
# machine is still checked for what it says; latency is make bench's job.
d() { cli dig @"$1" +time=20 +tries=1 "${@:2}" 2>&1; }
kd() { cli kdig @"$1" +time=20 +retry=0 "${@:2}" 2>&1; }
kflags_of() { sed -n 's/^;; Flags: \([a-z ]*\);.*/\1/p' <<<"$1" | head -1; }
no_flag() { ! has_flag "$@"; }
answers() { sed -n '/ANSWER SECTION/,/^$/p' <<<"$1" | grep -c "	$2	"; }
# The answer section without TTLs, sorted: what must be identical everywhere.
answer_set() { d "$1" "${@:2}" +noall +answer | awk '{ $2 = ""; print }' | sort; }
addr() { printf '198.18.0.%s' "$(($1 + 1))"; }
# Poll replica $1's status field $2 until it reaches $3 (late observations
# execute shortly after the decision); print the last value.
wait_ge() {
	local v=0
	for _ in $(seq 40); do
		v=$(status "$1" "$2")
		[ "$v" -ge "$3" ] 2>/dev/null && break
		sleep 0.1
	done
	printf '%s' "$v"
}

# start_cluster N POISONERS [--set KEY=VALUE...]
start_cluster() {
	local n=$1 poisoners=$2
	dns_cluster_up "$dir/cluster" "$dir/zones" "$(upstreams "$poisoners")" -n "$n" --clients 2 \
		--dataplane "${HM_E2E_DATAPLANE:-socket}" --set dns.max_ttl_s=4 --set dns.skew_s=30 \
		--set dns.query_timeout_ms=15000 "${@:3}" ||
		return 1
	cluster_nsd "$p-auth" "$AUTH" "$dir/zones/honest" &&
		ip -n "$p-auth" addr add "$POIS/24" dev eth0 &&
		dns_nsd_start "$p-auth" "$dir/zones/poison" "$POIS"
}

stop_cluster() {
	cluster down >/dev/null 2>&1
	hm_cleanup_prefix "$p" 2 >/dev/null 2>&1
}

echo "# setup: zones signed now, NSD, 4 replicas with DNS (replica 3 behind the poisoning server)"
dns_build_zones "$dir/zones" >/dev/null 2>&1 || give_up "zones"
# Audit lookups (docs/dns.md) at 2 a second: the 40 concurrent misses below
# go over that budget.
start_cluster 4 "[3]" --set dns.audit_lookups_per_s=2 || give_up "setup"
pass "setup"

echo "# the signed zone through every replica: data with AD (dig and kdig)"
for i in 0 1 2 3; do
	out=$(d "$(addr $i)" www.signed.hmtest A +dnssec)
	check_eq "replica $i: NOERROR" "$(status_of "$out")" NOERROR
	check "replica $i: AD flag" has_flag "$(flags_of "$out")" ad
	check_eq "replica $i: both A records" "$(answers "$out" A)" 2
	check "replica $i: never the poisoned address" not grep -q 198.18.66.66 <<<"$out"
done
check "signed data decided by rule (a), the DNSSEC chain" [ "$(status 0 .dns.service.decided_dnssec)" -ge 1 ]
for i in 0 1 2 3; do
	out=$(kd "$(addr $i)" www.signed.hmtest AAAA +dnssec)
	check "kdig replica $i: AD flag" has_flag "$(kflags_of "$out")" ad
	check "kdig replica $i: the AAAA record" grep -q "2001:db8::80" <<<"$out"
done

echo "# identical answers from all replicas (unsigned zone: rule (b))"
ref=$(answer_set "$(addr 0)" www.unsigned.hmtest A)
check "an answer" [ -n "$ref" ]
for i in 1 2 3; do
	check_eq "replica $i: same answer set" "$(answer_set "$(addr $i)" www.unsigned.hmtest A)" "$ref"
done
check "never the poisoned unsigned data" not grep -q 198.18.66.66 <<<"$ref"
out=$(d "$(addr 3)" www.unsigned.hmtest A +dnssec)
check "unsigned: no AD" no_flag "$(flags_of "$out")" ad

echo "# NXDOMAIN with its proof"
out=$(d "$(addr 1)" nope.signed.hmtest A +dnssec)
check_eq "NXDOMAIN" "$(status_of "$out")" NXDOMAIN
check "AD on the denial" has_flag "$(flags_of "$out")" ad
check "NSEC proof in authority" grep -qE "IN	NSEC	" <<<"$out"

echo "# TCP fallback for the large answer"
out=$(d "$(addr 0)" big.signed.hmtest TXT +dnssec +bufsize=1232 +ignore)
check "UDP answer truncated (TC)" has_flag "$(flags_of "$out")" tc
out=$(d "$(addr 0)" big.signed.hmtest TXT +dnssec +bufsize=1232)
check_eq "dig retries over TCP: 40 TXT records" "$(answers "$out" TXT)" 40
out=$(kd "$(addr 2)" big.signed.hmtest TXT +tcp)
check_eq "kdig over TCP: 40 TXT records" "$(answers "$out" TXT)" 40

echo "# bogus signatures: SERVFAIL with an EDE"
out=$(d "$(addr 0)" www.bogus.hmtest A +dnssec)
check_eq "SERVFAIL" "$(status_of "$out")" SERVFAIL
check "EDE 6..12 (DNSSEC)" grep -qE "EDE: (6|7|8|9|10|12) " <<<"$out"

echo "# cache hits and TTL expiry (max_ttl_s 4)"
ttl=$(d "$(addr 1)" www.unsigned.hmtest A +noall +answer | awk '{print $2; exit}')
check "served TTL within max_ttl_s" [ "${ttl:-99}" -le 4 ]
decided_before=$(status 1 .dns.service.decided_observed)
hits_before=$(status 1 .dns.replica.cache_hits)
d "$(addr 1)" www.unsigned.hmtest A >/dev/null
check "a repeat query is a cache hit" [ "$(status 1 .dns.replica.cache_hits)" -gt "$hits_before" ]
sleep 5
d "$(addr 1)" www.unsigned.hmtest A >/dev/null
check "after expiry: a fresh agreement" [ "$(status 1 .dns.service.decided_observed)" -gt "$decided_before" ]

echo "# concurrent misses share agreement rounds (OBSERVE_MANY)"
sent0=$(status 0 .dns.replica.ops_sent)
reqs0=$(status 0 .dns.replica.observe_requests)
# Wait for the digs alone: a bare `wait` would also wait for the replicas.
digs=()
for k in $(seq 40); do
	d "$(addr 0)" "c$k.wild.signed.hmtest" A +short >"$dir/conc.$k" &
	digs+=($!)
done
wait "${digs[@]}"
answered=$(grep -lx '198\.18\.53\.77' "$dir"/conc.* | wc -l)
check_eq "40 concurrent misses, each answered with the agreed address" "$answered" 40
[ "$answered" = 40 ] || grep -h "dns:" "$dir/cluster/replica-0/log" | tail -5
sent=$(($(status 0 .dns.replica.ops_sent) - sent0))
reqs=$(($(status 0 .dns.replica.observe_requests) - reqs0))
check_ge "replica 0 observed each of them" "$sent" 40
check "several observations per request ($sent in $reqs requests)" [ "$reqs" -lt "$sent" ]

echo "# audit lookups: 40 concurrent signed misses, decided by replica 0's observations"
# Rule (a) decides each on replica 0's observation, so the others' lookups
# would only be compared with the decision: audits, at most 2 a second
# here (and a burst of 2), so most are not made (docs/dns.md).
audits0=$(status 1 .dns.audit.lookups)
digs=()
for k in $(seq -w 1 40); do
	d "$(addr 0)" "many-$k.signed.hmtest" A +short >"$dir/many.$k" &
	digs+=($!)
done
wait "${digs[@]}"
check_eq "40 signed misses answered" "$(grep -lx '198\.18\.53\.90' "$dir"/many.* | wc -l)" 40
check_eq "replica 1 audits at most 2 a second" "$(status 1 .dns.audit.per_s)" 2
check_ge "replica 1 skipped audits over the budget" "$(wait_ge 1 .dns.audit.skipped 1)" 1
check "replica 1 made fewer audits than there were misses" \
	[ "$(($(status 1 .dns.audit.lookups) - audits0))" -lt 40 ]
check_eq "and exports the count" "$("$repo/build/hmctl" metrics --socket \
	"$dir/cluster/replica-1/control.sock" |
	awk '$1 == "hypermesh_dns_audit_lookups_skipped_total" { print ($2 > 0) }')" 1

echo "# the poisoned replica is counted, the others are not"
# Its observations of names replica 0 decided are audits (docs/dns.md,
# "Audit lookups"), made within dns.audit_lookups_per_s.
check_ge "replica 3 made audit lookups" "$(status 3 .dns.audit.lookups)" 1
for i in 0 1 2 3; do
	check_ge "replica $i sees replica 3 counted" "$(wait_ge $i '.dns.poisoning."3"' 1)" 1
	check_eq "replica $i: replicas 0-2 not counted" \
		"$(status $i '[.dns.poisoning."0", .dns.poisoning."1", .dns.poisoning."2"] | add')" 0
done

echo "# one replicated state: every replica ends with the same state digest"
digests=""
for _ in $(seq 30); do
	seqs=$(for i in 0 1 2 3; do status $i .last_executed; done | sort -u | wc -l)
	[ "$seqs" = 1 ] && digests=$(for i in 0 1 2 3; do status $i .state_digest; done | sort -u | wc -l) && break
	sleep 0.1
done
check_eq "one state digest (the DNS service included)" "$digests" 1

echo "# certificates: hmctl dns query --cert, hmctl verify"
d "$(addr 0)" www.signed.hmtest A >/dev/null
if cli hmctl dns query www.signed.hmtest A --cert >"$dir/cert.json" 2>"$dir/cert.err"; then
	pass "hmctl dns query --cert"
	check "certificate has 2f+1 signatures" [ "$(jq '.signatures | length' "$dir/cert.json")" -ge 3 ]
	expiry=$(sed -n 's/.* expires \([0-9]*\), .*/\1/p' "$dir/cert.err" | head -1)
	check "the entry's expiry printed" [ -n "$expiry" ]
	check "hmctl verify accepts it before its expiry" \
		cli hmctl verify "$dir/cert.json" --now "$((expiry - 1))"
	check "hmctl verify --allow-expired checks the signatures only" \
		cli hmctl verify "$dir/cert.json" --allow-expired
	check "hmctl verify refuses it at its expiry" \
		not cli hmctl verify "$dir/cert.json" --now "$expiry"
	for _ in $(seq 100); do [ "$(date +%s)" -gt "$expiry" ] && break; sleep 0.1; done
	out=$(cli hmctl verify "$dir/cert.json" 2>&1)
	check "hmctl verify (now) refuses the expired answer, saying so" grep -q "expired at" <<<"$out"
	check "the certified answer is the honest one" grep -qP "IN\tA\t198\.18\.53\.80" "$dir/cert.err"
	jq '.result |= (.[:-2] + (if .[-2:] == "00" then "01" else "00" end))' "$dir/cert.json" >"$dir/bad.json"
	check "hmctl verify refuses a tampered answer" not cli hmctl verify "$dir/bad.json" --allow-expired
	jq '.signatures[0].signature |= ((if .[0:1] == "0" then "1" else "0" end) + .[1:])' \
		"$dir/cert.json" >"$dir/bad2.json"
	check "hmctl verify refuses a bad signature" not cli hmctl verify "$dir/bad2.json" --allow-expired
	jq '.signatures |= .[:2]' "$dir/cert.json" >"$dir/bad3.json"
	check "hmctl verify refuses 2f signatures" not cli hmctl verify "$dir/bad3.json" --allow-expired
	jq '.signatures[1] = .signatures[0]' "$dir/cert.json" >"$dir/bad4.json"
	check "hmctl verify refuses a replica counted twice" not cli hmctl verify "$dir/bad4.json" --allow-expired
	jq '.batch.root |= ((if .[0:1] == "0" then "1" else "0" end) + .[1:])' "$dir/cert.json" \
		>"$dir/bad5.json"
	check "hmctl verify refuses another batch root" not cli hmctl verify "$dir/bad5.json" --allow-expired
else
	fail "hmctl dns query --cert: $(cat "$dir/cert.err")"
fi
out=$(cli hmctl dns query never-asked.unsigned.hmtest. A)
check_eq "hmctl dns query: not decided" "$out" "not decided"

if [ "${HM_E2E_DNS_N7:-1}" = 1 ]; then
	stop_cluster
	echo "# n = 7, replicas 5 and 6 behind the poisoning server"
	if start_cluster 7 "[5, 6]"; then
		for i in 0 3 5 6; do
			out=$(d "$(addr $i)" www.unsigned.hmtest A)
			check "n=7 replica $i: the honest answer" grep -q "198.18.53.101" <<<"$out"
			check "n=7 replica $i: not the poisoned one" not grep -q 198.18.66.66 <<<"$out"
		done
		check_ge "n=7: replica 5 counted" "$(wait_ge 0 '.dns.poisoning."5"' 1)" 1
		check_ge "n=7: replica 6 counted" "$(wait_ge 0 '.dns.poisoning."6"' 1)" 1
		check_eq "n=7: honest replicas not counted" \
			"$(status 0 '[.dns.poisoning."0", .dns.poisoning."1", .dns.poisoning."2", .dns.poisoning."3", .dns.poisoning."4"] | add')" 0
	else
		fail "n=7 setup"
	fi
fi
finish
