#!/usr/bin/env bash
# End-to-end: HyperMesh compared with Unbound, query by query, on the same
# signed zones (docs/dns.md, "Conformance").  A query corpus runs against a
# replica of a 4-replica cluster and against Debian's unbound with the same
# stub zones and trust anchors; rcode, flags (but aa), EDE, answer and
# authority (proof) sections must match, TTLs aside
# (selftests/service/dns/dignorm.py).  Then what the comparison cannot say
# alone: delv validating a wildcard answer served by the replica, the CD
# and RD=0 choices, FORMERR for what RFC 1035/6891 call format errors
# (rawclient.py conform), the access list and the per-client rate limit.
#
#   auth  198.18.0.53   NSD, the zones of selftests/service/dns/zones signed now
#   ub    198.18.0.60   unbound (validator iterator), stub zones -> auth
#   rI    198.18.0.(I+1) replica I, DNS on port 53
#   c     198.18.0.200  dig, delv, rawclient.py (the one client dns.allow admits)
#   a     198.18.0.250  the cluster's attacker namespace: outside dns.allow
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

need_tools e2e_dns_conform nsd ldns-signzone ldns-keygen dig delv kdig openssl unbound unbound-checkconf jq \
	python3 || give_up "tools"
[ -x "$repo/build/hypermeshd" ] || { echo "e2e_dns_conform: make all first"; give_up "built"; }
hm_require_root || give_up "root"

cluster_suite_begin hq dnsq

AUTH=198.18.0.53 UB=198.18.0.60 R0=198.18.0.1 R1=198.18.0.2 R2=198.18.0.3
ZONES=(signed.hmtest nsec3.hmtest bogus.hmtest unsigned.hmtest)
NORM="$repo/selftests/service/dns/dignorm.py"
RAW="$repo/selftests/service/dns/rawclient.py"

status() { "$repo/build/hmctl" status --socket "$dir/cluster/replica-$1/control.sock" | jq -r "$2"; }
metrics() { "$repo/build/hmctl" metrics --socket "$dir/cluster/replica-$1/control.sock"; }
dq() { cluster exec dig @"$1" +time=6 +tries=1 "${@:2}" 2>&1; }
norm() { dq "$1" +noall +comments +answer +authority "${@:2}" | python3 "$NORM"; }

upstreams() {
	local z out="[" sep=""
	for z in "${ZONES[@]}"; do
		out+="$sep{zone: $z., address: $AUTH}"
		sep=", "
	done
	printf '%s]' "$out"
}

unbound_conf() {
	local z
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
	    ede: yes
	remote-control:
	    control-enable: no
	EOF
	for z in "${ZONES[@]}"; do
		printf 'stub-zone:\n    name: "%s."\n    stub-addr: %s\n' "$z" "$AUTH"
	done
}

# The trust anchors as delv reads them (bind's trust-anchors clause).
delv_anchors() {
	awk '{ for (i = 2; i < NF; i++) if ($i == "DS") {
		d = ""; for (k = i + 4; k <= NF; k++) d = d $k
		printf "trust-anchors { %s initial-ds %s %s %s \"%s\"; };\n", $1, $(i + 1), $(i + 2), $(i + 3), d
		break } }' "$dir/zones/trust-anchors"
}

echo "# setup: zones signed now, NSD, 4 replicas (dns.allow: the client only; 200 qps per /24;"
echo "#        serve-expired for 6 s), unbound"
dns_build_zones "$dir/zones" >/dev/null 2>&1 || give_up "zones"
# DNS over TLS on 853 with a self-signed certificate made now
mkdir -p "$dir/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=hmtest -addext subjectAltName=DNS:hmtest \
	-keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" >/dev/null 2>&1 || give_up "tls certificate"
DNS_ALLOW="[198.18.0.200/32, 127.0.0.0/8]" dns_cluster_up "$dir/cluster" "$dir/zones" "$(upstreams)" \
	-n 4 --clients 1 --dataplane "${HM_E2E_DATAPLANE:-socket}" --set dns.max_ttl_s=600 \
	--set dns.skew_s=30 --set dns.rate_limit_qps=200 --set dns.serve_expired_s=6 \
	--set dns.tls_port=853 --set "dns.tls_cert_file=$dir/tls/cert.pem" \
	--set "dns.tls_key_file=$dir/tls/key.pem" ||
	give_up "cluster up"
cluster_nsd "$p-auth" "$AUTH" "$dir/zones/honest" || give_up "nsd"
mkdir -p "$dir/unbound"
unbound_conf >"$dir/unbound/unbound.conf"
unbound-checkconf "$dir/unbound/unbound.conf" >/dev/null || give_up "unbound.conf"
hm_ns_create "$p-ub" && hm_ns_connect "$p-ub" eth0 "$UB/24" "$HM_PREFIX-sw" br0 "$p-ub" ||
	give_up "unbound namespace"
setsid ip netns exec "$p-ub" unbound -d -c "$dir/unbound/unbound.conf" >>"$dir/unbound/out" 2>&1 </dev/null &
for _ in $(seq 100); do
	[ "$(status_of "$(dq "$UB" signed.hmtest SOA)")" = NOERROR ] && break
	sleep 0.1
done
check_eq "unbound answers" "$(status_of "$(dq "$UB" signed.hmtest SOA)")" NOERROR
delv_anchors >"$dir/delv.anchors"
pass "setup"

# The corpus: every line "NAME TYPE DIG-OPTIONS...".  (Bogus data with CD is
# a deliberate difference, checked below: Unbound hands it over, HyperMesh
# serves nothing the cluster did not agree on.)  Each is asked of
# replica 0 and of unbound; the normalised answers must be identical.
CORPUS=(
	"www.signed.hmtest A +dnssec"
	"www.signed.hmtest AAAA +dnssec"
	"www.signed.hmtest A"
	"www.signed.hmtest A +noadflag"
	"WwW.SiGnEd.HmTeSt A +dnssec"
	"alias.signed.hmtest A +dnssec"
	"mail.signed.hmtest MX +dnssec"
	"nope.signed.hmtest A +dnssec"
	"www.signed.hmtest TXT +dnssec"
	"x.wild.signed.hmtest TXT +dnssec"
	"y.wild.signed.hmtest A +dnssec"
	"x.wild.signed.hmtest TXT"
	"x.wild.nsec3.hmtest TXT +dnssec"
	"nope.nsec3.hmtest A +dnssec"
	"www.nsec3.hmtest A +dnssec +cd"
	"www.signed.hmtest A +dnssec +cd"
	"www.unsigned.hmtest A"
	"www.unsigned.hmtest A +dnssec"
	"nope.unsigned.hmtest A"
	"www.unsigned.hmtest AAAA"
	"www.bogus.hmtest A +dnssec"
	"big.signed.hmtest TXT +dnssec +tcp"
)
# Not in the corpus: ANY (what a resolver returns depends on what it has
# cached, RFC 8482, so two resolvers legitimately differ).

echo "# the corpus: replica 0 and unbound give the same rcode, flags, EDE, answer and proof"
for c in "${CORPUS[@]}"; do
	# shellcheck disable=SC2086  # each corpus line is NAME TYPE OPTIONS
	hm=$(norm "$R0" $c)
	# shellcheck disable=SC2086
	ub=$(norm "$UB" $c)
	if [ "$hm" = "$ub" ]; then
		pass "same as unbound: $c"
	else
		fail "differs from unbound: $c"
		diff <(echo "$hm") <(echo "$ub") | sed 's/^/#   hm < > ub  /'
	fi
done

echo "# wildcards: the NSEC/NSEC3 proof kept, and a validator downstream accepts the answer"
out=$(dq "$R1" x.wild.signed.hmtest TXT +dnssec)
check "wildcard answer carries its NSEC" grep -qE "IN[[:space:]]+NSEC[[:space:]]" <<<"$out"
out=$(dq "$R1" z.wild.nsec3.hmtest TXT +dnssec)
check "NSEC3 wildcard answer carries its NSEC3" grep -qE "IN[[:space:]]+NSEC3[[:space:]]" <<<"$out"
for z in signed.hmtest nsec3.hmtest; do
	out=$(cluster exec delv @"$R2" -a "$dir/delv.anchors" +root="$z" "v.wild.$z" TXT 2>&1)
	if grep -q "fully validated" <<<"$out"; then
		pass "delv validates the wildcard answer from replica 2 ($z)"
	else
		fail "delv validates the wildcard answer from replica 2 ($z)"
		sed 's/^/#   /' <<<"$out"
	fi
done

echo "# CD: echoed; a CD query gets the agreed answer, never unagreed (bogus) data"
out=$(dq "$R0" www.signed.hmtest A +dnssec +cd)
check "CD echoed" has_flag "$(flags_of "$out")" cd
out=$(dq "$R0" www.bogus.hmtest A +dnssec +cd)
check_eq "bogus data with CD: SERVFAIL (unbound would hand the bogus data over)" "$(status_of "$out")" SERVFAIL
check "CD echoed on the SERVFAIL too" has_flag "$(flags_of "$out")" cd

echo "# RD=0: from the certified cache only"
dq "$R0" www.unsigned.hmtest TXT >/dev/null
out=$(dq "$R0" www.unsigned.hmtest TXT +norec)
check_eq "cached: answered" "$(status_of "$out")" NOERROR
check "RD not set in the reply" not has_flag "$(flags_of "$out")" rd
check "the answer" grep -q '"honest"' <<<"$out"
before=$(status 0 .dns.replica.cache_misses)
out=$(dq "$R0" norec-miss.unsigned.hmtest A +norec)
check_eq "a miss: REFUSED" "$(status_of "$out")" REFUSED
check "with EDE 20 (Not Authoritative)" grep -q "EDE: 20" <<<"$out"
out=$(cluster exec hmctl dns query norec-miss.unsigned.hmtest. A)
check_eq "and nothing was resolved (no entry)" "$out" "not decided"
check_eq "counted" "$(status 0 .dns.access.norec_refused)" 1
check_eq "one miss, counted as such" "$(status 0 .dns.replica.cache_misses)" "$((before + 1))"

echo "# negative caching (RFC 2308): NXDOMAIN lives min(SOA TTL, SOA MINIMUM = 300), within max_ttl_s = 600"
ttl=$(dq "$R0" www.signed.hmtest A +noall +answer | awk '{print $2; exit}')
check "a positive answer: up to max_ttl_s, not the SOA minimum (TTL $ttl)" test "${ttl:-0}" -gt 300 -a "${ttl:-0}" -le 600
out=$(dq "$R0" nxttl.signed.hmtest A +dnssec)
check_eq "NXDOMAIN" "$(status_of "$out")" NXDOMAIN
ttl=$(awk '$4 == "SOA" {print $2; exit}' <<<"$out")
check "its SOA served with the negative TTL (TTL $ttl)" test "${ttl:-999}" -le 300 -a "${ttl:-0}" -gt 200
decided=$(status 0 '.dns.service.decided_dnssec + .dns.service.decided_observed')
hits=$(status 0 .dns.replica.cache_hits)
out=$(dq "$R0" nxttl.signed.hmtest A +dnssec)
check_eq "asked again: NXDOMAIN" "$(status_of "$out")" NXDOMAIN
check "from the certified cache" [ "$(status 0 .dns.replica.cache_hits)" -gt "$hits" ]
check_eq "no new agreement" "$(status 0 '.dns.service.decided_dnssec + .dns.service.decided_observed')" \
	"$decided"

echo "# serve-expired (RFC 8767): within 6 s of expiry the agreed answer, EDE 3, TTL 30; then fresh"
until_past() { for _ in $(seq 200); do [ "$(date +%s)" -gt "$1" ] && return 0; sleep 0.1; done; return 1; }
t0=$(date +%s)
out=$(dq "$R0" short.unsigned.hmtest A)
check "a 3 s answer" grep -q "198.18.53.103" <<<"$out"
dq "$R0" short2.unsigned.hmtest A >/dev/null
until_past "$((t0 + 4))"
out=$(dq "$R0" short.unsigned.hmtest A)
check_eq "expired: still answered" "$(status_of "$out")" NOERROR
check "with the agreed data" grep -q "198.18.53.103" <<<"$out"
check "marked EDE 3 (Stale Answer)" grep -q "EDE: 3" <<<"$out"
check_eq "with TTL 30" "$(awk '$4 == "A" {print $2; exit}' <<<"$(sed -n '/ANSWER SECTION/,/^$/p' <<<"$out")")" 30
check_eq "counted" "$(status 0 .dns.stale.served)" 1
fresh=""
for _ in $(seq 50); do
	out=$(dq "$R0" short.unsigned.hmtest A)
	grep -q "EDE: 3" <<<"$out" || { fresh=1; break; }
	sleep 0.2
done
check "meanwhile a fresh agreement: then answers without EDE 3" [ -n "$fresh" ]
check "the fresh answer" grep -q "198.18.53.103" <<<"$out"
until_past "$((t0 + 3 + 6 + 1))"
served=$(status 0 .dns.stale.served)
out=$(dq "$R0" short2.unsigned.hmtest A)
check_eq "past the bound: a fresh answer" "$(status_of "$out")" NOERROR
check "not a stale one" not grep -q "EDE: 3" <<<"$out"
check_eq "nothing served stale" "$(status 0 .dns.stale.served)" "$served"
check "in /metrics" grep -qE '^hypermesh_dns_stale_served_total [1-9]' <<<"$(metrics 0)"

echo "# FORMERR for what RFC 1035 / RFC 6891 call format errors (and Unbound's answers)"
hm=$(cluster exec python3 "$RAW" "$R0" conform)
ub=$(cluster exec python3 "$RAW" "$UB" conform)
for case in two-opt opt-owner-not-root qtype-opt qtype-tsig qtype-tkey qtype-128 forward-pointer; do
	check "replica: $case -> FORMERR" grep -qx "$case rcode=1" <<<"$hm"
	check_eq "unbound agrees: $case" "$(grep "^$case " <<<"$ub")" "$(grep "^$case " <<<"$hm")"
done
check "replica: the good query still answered" grep -qx "good-query rcode=0" <<<"$hm"

echo "# access control: a client outside dns.allow gets REFUSED (EDE 18), counted"
out=$(cluster exec-attacker dig @"$R0" +time=6 +tries=1 www.signed.hmtest A 2>&1)
check_eq "outside the allow list: REFUSED" "$(status_of "$out")" REFUSED
check "with EDE 18 (Prohibited)" grep -q "EDE: 18" <<<"$out"
check "no answer given" not grep -q "198.18.53.80" <<<"$out"
check_eq "counted in status" "$(status 0 .dns.access.refused_acl)" 1
check "and in /metrics" grep -q 'hypermesh_dns_refused_total{reason="acl"} 1' <<<"$(metrics 0)"

echo "# DNS over TLS (RFC 7858) on 853: the same agreed answer as over UDP"
udp=$(dq "$R0" +short www.signed.hmtest A | sort)
tls=$(cluster exec kdig @"$R0" -p 853 +tls +short +timeout=6 www.signed.hmtest A 2>&1 | sort)
check "an answer over TLS" test -n "$tls"
check_eq "the UDP answer's records" "$tls" "$udp"
tls=$(cluster exec kdig @"$R0" -p 853 +tls-ca="$dir/tls/cert.pem" +tls-hostname=hmtest +short \
	+timeout=6 www.unsigned.hmtest A 2>&1)
check "with the certificate checked" grep -qE '^[0-9.]+$' <<<"$tls"
cluster exec kdig @"$R0" -p 853 +tls +timeout=6 +keepopen www.signed.hmtest A www.unsigned.hmtest A \
	>"$dir/tls/two.out" 2>&1
check_eq "two queries on one TLS connection" "$(grep -c 'status: NOERROR' "$dir/tls/two.out")" 2
cluster exec dig @"$R0" -p 853 +tcp +time=3 +tries=1 www.signed.hmtest A >/dev/null 2>&1
check_eq "TLS connections counted" "$(status 0 '.dns.frontend.tls_accepted >= 3')" true
check_eq "queries over TLS counted" "$(status 0 '.dns.frontend.tls_queries >= 4')" true
check_eq "plain DNS on the TLS port: a failed handshake, counted" \
	"$(status 0 '.dns.frontend.tls_handshake_failed >= 1')" true
check "in /metrics" grep -qE '^hypermesh_dns_tls_queries_total [1-9]' <<<"$(metrics 0)"
out=$(cluster exec kdig @"$R0" -p 853 +tls +timeout=6 www.signed.hmtest A 2>&1)
check_eq "the TLS port still serves after that" "$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$out" | head -1)" NOERROR

echo "# rate limit: 200 qps per /24; a burst of 1000 queries is cut"
out=$(cluster exec python3 "$RAW" "$R1" flood 1000 www.unsigned.hmtest)
got=${out##* }
check "some answered" [ "${got:-0}" -ge 100 ]
check "most dropped ($out)" [ "${got:-1000}" -lt 700 ]
dropped=$(status 1 .dns.access.rate_dropped)
# Every query that arrived was answered or dropped by the limit (the
# kernel may drop a few more from a full socket buffer under load).
check "dropped ones counted ($dropped)" test "$dropped" -ge 1 -a "$dropped" -le "$((1000 - got))"
check "in /metrics" grep -qE '^hypermesh_dns_rate_limited_dropped_total [1-9]' <<<"$(metrics 1)"
out=$(dq "$R2" www.unsigned.hmtest A)
check_eq "another replica's limit is its own" "$(status_of "$out")" NOERROR

finish
