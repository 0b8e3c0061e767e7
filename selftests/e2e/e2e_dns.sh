#!/usr/bin/env bash
# End-to-end DNS suite in network namespaces: NSD serving zones signed at
# test time (signed with NSEC, signed with NSEC3, unsigned, broken
# signatures, a large RRset), a second honest NSD and a poisoning NSD, and
# build/dns_testd (front end -> libunbound resolver -> canonical answer ->
# reply) queried with dig, kdig and a raw client.
#
#   auth  198.18.53.2  NSD, the honest zones
#         198.18.53.4  NSD, the unsigned zone again (other order, case, TTLs)
#   pois  198.18.53.3  NSD, other data for the same names
#   res   198.18.53.10 dns_testd serve (stubs to .2, trust anchors from the KSKs)
#   cli   198.18.53.20 dig, kdig, rawclient.py
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

testd=$repo/build/dns_testd
need_tools e2e_dns nsd ldns-signzone ldns-keygen dig kdig python3 || give_up "tools"
[ -x "$testd" ] || { echo "e2e_dns: build $testd first (make all)"; give_up "dns_testd built"; }
hm_require_root || give_up "root"

p="hd$$"
dir=$(mktemp -d /tmp/hm-e2e-dns.XXXXXX)
cleanup() { hm_cleanup_prefix "$p" 2 >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

AUTH=198.18.53.2 AUTH2=198.18.53.4 POIS=198.18.53.3 RES=198.18.53.10 CLI=198.18.53.20
honest_stubs=()
poison_stubs=()
for z in signed.hmtest nsec3.hmtest bogus.hmtest unsigned.hmtest; do
	honest_stubs+=(--stub "$z=$AUTH")
	poison_stubs+=(--stub "$z=$POIS")
done

setup() {
	dns_build_zones "$dir/zones" || return 1
	hm_ns_create "$p-sw" && hm_bridge_create "$p-sw" br0 || return 1
	local role addr
	for role in auth:$AUTH pois:$POIS res:$RES cli:$CLI; do
		addr=${role#*:}
		role=${role%%:*}
		hm_ns_create "$p-$role" || return 1
		hm_ns_connect "$p-$role" eth0 "$addr/24" "$p-sw" br0 "$p-$role" || return 1
	done
	ip -n "$p-auth" addr add "$AUTH2/24" dev eth0 || return 1
	dns_nsd_start "$p-auth" "$dir/zones/honest" "$AUTH" || return 1
	dns_nsd_start "$p-auth" "$dir/zones/honest2" "$AUTH2" || return 1
	dns_nsd_start "$p-pois" "$dir/zones/poison" "$POIS" || return 1
	hm_ns_spawn "$p-res" "$dir/testd.pid" "$dir/testd.log" "$testd" serve --listen "$RES" \
		--port 53 --ta-file "$dir/zones/trust-anchors" --max-ttl 300 --tcp-idle 1000 \
		"${honest_stubs[@]}" || return 1
	for _ in $(seq 100); do
		grep -q '^listening' "$dir/testd.log" 2>/dev/null && return 0
		sleep 0.05
	done
	cat "$dir/testd.log" >&2
	return 1
}

echo "# setup: zones signed now, 3 NSD instances, dns_testd"
setup || give_up "setup"
pass "setup"

cli() { ip netns exec "$p-cli" "$@"; }
d() { cli dig @"$RES" +time=5 +tries=1 "$@" 2>&1; }
kd() { cli kdig @"$RES" +time=5 +retry=0 "$@" 2>&1; }
kflags_of() { sed -n 's/^;; Flags: \([a-z ]*\);.*/\1/p' <<<"$1" | head -1; }
answers() { sed -n '/ANSWER SECTION/,/^$/p' <<<"$1" | grep -c "	$2	" ; }
digest_of() { ip netns exec "$p-res" "$testd" digest --ta-file "$dir/zones/trust-anchors" "$@" 2>"$dir/digest.err"; }

echo "# the signed zone: data with AD (dig and kdig)"
out=$(d www.signed.hmtest A +dnssec)
check_eq "dig: NOERROR" "$(status_of "$out")" NOERROR
check "dig: AD flag" has_flag "$(flags_of "$out")" ad
check_eq "dig: both A records" "$(answers "$out" A)" 2
check_ge "dig: RRSIG for DO" "$(answers "$out" RRSIG)" 1
out=$(d www.signed.hmtest A +adflag)
check "dig without DO, AD asked: AD flag" has_flag "$(flags_of "$out")" ad
check_eq "dig without DO: no RRSIG" "$(answers "$out" RRSIG)" 0
out=$(kd www.signed.hmtest AAAA +dnssec)
check "kdig: AD flag" has_flag "$(kflags_of "$out")" ad
check "kdig: the AAAA record" grep -q "2001:db8::80" <<<"$out"
out=$(d alias.signed.hmtest A +dnssec)
check "CNAME chain validated (AD)" has_flag "$(flags_of "$out")" ad
check_eq "CNAME and its target's records" "$(($(answers "$out" CNAME) + $(answers "$out" A)))" 3
out=$(d www.child.signed.hmtest A +dnssec)
check "delegated child zone validated through the parent's DS (AD)" has_flag "$(flags_of "$out")" ad
check_le() { if [ "$2" -le "$3" ] 2>/dev/null; then pass "$1"; else fail "$1: got '$2', expected <= $3"; fi; }
ttl=$(d www.signed.hmtest A +noall +answer | awk '{print $2; exit}')
check_le "served TTL capped at --max-ttl 300 (zone says 3600)" "${ttl:-99999}" 300

echo "# the unsigned zone: no AD"
out=$(d www.unsigned.hmtest A +dnssec)
check_eq "unsigned: NOERROR" "$(status_of "$out")" NOERROR
no_flag() { ! has_flag "$@"; }
check "unsigned: no AD flag" no_flag "$(flags_of "$out")" ad
check_eq "unsigned: both A records" "$(answers "$out" A)" 2

echo "# NXDOMAIN with its proof"
out=$(d nope.signed.hmtest A +dnssec)
check_eq "NSEC zone: NXDOMAIN" "$(status_of "$out")" NXDOMAIN
check "NSEC zone: AD flag" has_flag "$(flags_of "$out")" ad
check "NSEC zone: NSEC proof in authority" grep -qE "IN	NSEC	" <<<"$out"
check "NSEC zone: SOA in authority" grep -qE "IN	SOA	" <<<"$out"
out=$(kd nope.nsec3.hmtest A +dnssec)
check "NSEC3 zone: NXDOMAIN" grep -q "status: NXDOMAIN" <<<"$out"
check "NSEC3 zone: NSEC3 proof in authority" grep -qE "NSEC3[[:space:]]+1 " <<<"$out"
check "NSEC3 zone: AD flag" has_flag "$(kflags_of "$out")" ad
out=$(d www.signed.hmtest TXT +dnssec)
check_eq "NODATA: NOERROR" "$(status_of "$out")" NOERROR
check "NODATA: NSEC proof" grep -qE "IN	NSEC	" <<<"$out"

echo "# TCP fallback for a large RRset"
out=$(d big.signed.hmtest TXT +notcp +ignore +bufsize=1232)
check "UDP: TC flag" has_flag "$(flags_of "$out")" tc
check_eq "UDP: no partial answer" "$(answers "$out" TXT)" 0
out=$(d big.signed.hmtest TXT +notcp +ignore +noedns)
check "UDP without EDNS (512 bytes): TC flag" has_flag "$(flags_of "$out")" tc
out=$(d big.signed.hmtest TXT +tcp)
check_eq "TCP: all 40 records" "$(answers "$out" TXT)" 40
check "TCP: AD flag" has_flag "$(flags_of "$out")" ad
out=$(d big.signed.hmtest TXT)
check_eq "dig retries over TCP by itself" "$(answers "$out" TXT)" 40
out=$(kd big.signed.hmtest TXT +tcp)
check_eq "kdig over TCP: all 40 records" "$(grep -c 'TXT	"large rrset' <<<"$out")" 40

echo "# TCP: several queries per connection, idle timeout"
check_eq "pipelined queries on one connection" \
	"$(cli python3 "$here/../service/dns/rawclient.py" "$RES" pipeline www.signed.hmtest www.unsigned.hmtest nope.signed.hmtest big.signed.hmtest)" ok
out=$(kd www.signed.hmtest A +tcp +keepopen www.nsec3.hmtest A www.unsigned.hmtest A)
check_eq "kdig +keepopen: three answers" "$(grep -c 'status: NOERROR' <<<"$out")" 3
check_eq "idle connection closed after 1 s" "$(cli python3 "$here/../service/dns/rawclient.py" "$RES" idle 4)" closed

echo "# bogus signatures: SERVFAIL with EDE"
out=$(d www.bogus.hmtest A +dnssec)
check_eq "bogus: SERVFAIL" "$(status_of "$out")" SERVFAIL
check "bogus: EDE 6 (DNSSEC Bogus) from dig" grep -qE "EDE: 6 \(DNSSEC Bogus\)" <<<"$out"
out=$(kd www.bogus.hmtest A +edns)
check "bogus: EDE seen by kdig" grep -qiE "EDE: 6|Extended DNS Error.*6|EDE.*DNSSEC Bogus" <<<"$out"
out=$(d www.bogus.hmtest A +noedns)
check_eq "bogus without EDNS: SERVFAIL (no OPT for an EDE)" "$(status_of "$out")" SERVFAIL

echo "# malformed queries: FORMERR, never a crash"
check_eq "FORMERR with the id echoed, UDP and TCP" \
	"$(cli python3 "$here/../service/dns/rawclient.py" "$RES" formerr)" "udp rcode=1 id=echoed tcp rcode=1 id=echoed"
out=$(cli python3 "$here/../service/dns/rawclient.py" "$RES" garbage 1000)
check "1000 garbage datagrams and 100 garbage TCP streams: some replies" grep -q "^replies [1-9]" <<<"$out"
check "dns_testd survives the garbage" hm_pid_in_ns "$(cat "$dir/testd.pid")" "$p-res"
out=$(d www.signed.hmtest A +dnssec)
check "still serving after the garbage" has_flag "$(flags_of "$out")" ad
out=$(d www.signed.hmtest A +opcode=status)
check_eq "STATUS opcode: NOTIMP" "$(status_of "$out")" NOTIMP
out=$(d signed.hmtest AXFR +notcp)
check "AXFR: refused" grep -q "status: REFUSED\|Transfer failed" <<<"$out"

echo "# canonical digests: honest replicas agree, a poisoned one stands out"
h1=$(digest_of "${honest_stubs[@]}" www.unsigned.hmtest A)
h2=$(digest_of --stub "unsigned.hmtest=$AUTH2" www.unsigned.hmtest A)
pz=$(digest_of "${poison_stubs[@]}" www.unsigned.hmtest A)
check "honest answer is insecure with a digest" grep -qE "^insecure NOERROR [0-9a-f]{64} " <<<"$h1"
check_eq "two honest servers (other order, case, TTLs): same digest" "$(cut -d' ' -f3 <<<"$h1")" "$(cut -d' ' -f3 <<<"$h2")"
check "poisoned upstream: a digest" grep -qE "^insecure NOERROR [0-9a-f]{64} " <<<"$pz"
check "poisoned upstream: another digest" [ "$(cut -d' ' -f3 <<<"$h1")" != "$(cut -d' ' -f3 <<<"$pz")" ]
t1=$(digest_of "${honest_stubs[@]}" www.unsigned.hmtest TXT)
t2=$(digest_of --stub "unsigned.hmtest=$AUTH2" www.unsigned.hmtest TXT)
check_eq "TXT: same digest from both honest servers" "$(cut -d' ' -f3 <<<"$t1")" "$(cut -d' ' -f3 <<<"$t2")"
s1=$(digest_of "${honest_stubs[@]}" www.signed.hmtest A)
s2=$(digest_of "${honest_stubs[@]}" www.signed.hmtest A)
check "signed zone: secure" grep -qE "^secure NOERROR [0-9a-f]{64} " <<<"$s1"
check_eq "signed zone: two contexts, same digest" "$s1" "$s2"
sp=$(digest_of "${poison_stubs[@]}" www.signed.hmtest A)
check "signed zone from the poisoning upstream: bogus, no digest" grep -qE "^bogus [A-Z]+ - 6$" <<<"$sp"
n1=$(digest_of "${honest_stubs[@]}" nope.nsec3.hmtest A)
check "NXDOMAIN (NSEC3) has a secure digest" grep -qE "^secure NXDOMAIN [0-9a-f]{64} " <<<"$n1"

echo "# the validation time is the caller's, not the clock's"
exp=$(cat "$dir/zones/sig-expiration")
inc=$(cat "$dir/zones/sig-inception")
late=$(digest_of "${honest_stubs[@]}" --time "$((exp + 60 * 86400))" www.signed.hmtest A)
check_eq "60 days after expiry: bogus, EDE 7 (Signature Expired)" "$late" "bogus SERVFAIL - 7"
early=$(digest_of "${honest_stubs[@]}" --time "$((inc - 5 * 86400))" www.signed.hmtest A)
check_eq "5 days before inception: bogus, EDE 8 (Signature Not Yet Valid)" "$early" "bogus SERVFAIL - 8"
mid=$(digest_of "${honest_stubs[@]}" --time "$((exp - 86400))" www.signed.hmtest A)
check_eq "a day before expiry: secure, the same digest" "$mid" "$s1"

echo "# rule (a): DNSSEC chains collected by one resolver, verified offline at a given time"
chain_of() { ip netns exec "$p-res" "$testd" chain --ta-file "$dir/zones/trust-anchors" "${honest_stubs[@]}" "$@" 2>&1; }
check "signed zone: chain verifies" grep -q "^chain ok" <<<"$(chain_of www.signed.hmtest A)"
check "child zone: chain through the parent's DS verifies" grep -q "^chain ok" <<<"$(chain_of www.child.signed.hmtest A)"
check "CNAME chain: verifies" grep -q "^chain ok" <<<"$(chain_of alias.signed.hmtest A)"
check "NSEC3 zone: chain verifies" grep -q "^chain ok" <<<"$(chain_of www.nsec3.hmtest A)"
check "large RRset: chain verifies" grep -q "^chain ok" <<<"$(chain_of big.signed.hmtest TXT)"
out=$(chain_of --forge www.signed.hmtest A)
check "forged record claimed secure: rejected" grep -q "^chain rejected: .*does not validate" <<<"$out"
out=$(chain_of --forge www.child.signed.hmtest A)
check "forged record in the child zone: rejected" grep -q "^chain rejected" <<<"$out"
out=$(chain_of --verify-time "$((exp + 86400))" www.signed.hmtest A)
check "verified a day after expiry: rejected" grep -q "^chain rejected" <<<"$out"
out=$(chain_of --verify-time "$((inc - 86400))" www.child.signed.hmtest A)
check "verified a day before inception: rejected" grep -q "^chain rejected" <<<"$out"

echo "# shutdown"
pid=$(cat "$dir/testd.pid")
kill -TERM "$pid" 2>/dev/null
hm_wait_pid_exit "$pid" "$p-res" 5
gone() { ! hm_pid_in_ns "$@"; }
check "dns_testd exits on SIGTERM" gone "$pid" "$p-res"
stats=$(grep '^stats' "$dir/testd.log")
echo "  $stats"
check "front end counted FORMERRs" grep -qE "formerr=[1-9]" <<<"$stats"
check "front end counted truncated replies" grep -qE "truncated=[1-9]" <<<"$stats"
if [ "$HM_FAILED" -gt 0 ]; then
	echo "--- dns_testd log (tail)"
	tail -n 30 "$dir/testd.log"
fi
finish
