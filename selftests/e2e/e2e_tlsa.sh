#!/usr/bin/env bash
# DANE: `hmctl cert check CHAIN --tlsa NAME` against a real cluster that runs
# both services: 4 replicas with a dns: section (NSD with the test zones,
# signed now, plus TLSA records added here) and a ct: section (test log A in
# the client namespace, the factory's certificates).  The TLSA RRsets are the
# cluster's decided, DNSSEC-secure answers; the chain is matched against them.
#
#   _443._tcp.www.signed.hmtest    3 1 1  SPKI of the factory's valid leaf  -> match
#   _443._tcp.ta.signed.hmtest     2 0 1  the factory's intermediate         -> match
#   _443._tcp.other.signed.hmtest  3 1 1  another key                        -> no match (4)
#   _443._tcp.www.unsigned.hmtest  3 1 1  the right key, but not signed      -> refused (1)
#
# Needs nsd, ldns-utils, dig, jq, openssl, curl, python3-cryptography.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"
# shellcheck source=scripts/lib/netns.sh
source "$repo/scripts/lib/netns.sh"
# shellcheck source=selftests/service/dns/lib.sh
source "$here/../service/dns/lib.sh"

for tool in nsd ldns-signzone ldns-keygen dig jq openssl curl; do
	command -v "$tool" >/dev/null || { echo "e2e_tlsa: $tool missing (make deps)"; fail "tools"; finish; exit 1; }
done
[ -x "$repo/build/hypermeshd" ] || { echo "e2e_tlsa: make all first"; fail "built"; finish; exit 1; }
hm_require_root || { fail "root"; finish; exit 1; }

p="ht$$"
py=/usr/bin/python3
tools=$here/../service/ct/ct_log
dir=$(mktemp -d /tmp/hm-e2e-tlsa.XXXXXX)
ctd=$dir/ct
log_pid=""
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir/cluster" "$@"; }
cleanup() {
	[ -n "$log_pid" ] && { kill "$log_pid" 2>/dev/null; wait "$log_pid" 2>/dev/null; }
	cluster down >/dev/null 2>&1
	hm_cleanup_prefix "$p" 2 >/dev/null 2>&1
	if [ -n "${HM_KEEP:-}" ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

AUTH=198.18.0.53 LOG=198.18.0.200

# SHA-256 of a key's SubjectPublicKeyInfo, of a certificate's DER.
spki_sha256() { openssl pkey -in "$1" -pubout -outform DER | sha256sum | cut -d' ' -f1; }
cert_sha256() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

echo "# setup: CAs and the valid leaf's key; zones with TLSA records, signed now"
"$py" "$tools/certfactory.py" init "$ctd" >/dev/null || { fail "certfactory init"; finish; exit 1; }
# The zones of selftests/service/dns with TLSA records added, signed by dns/lib.sh.
mkdir -p "$dir/src/zones" && cp "$DNS_LIB_DIR"/zones/*.zone "$dir/src/zones/" &&
	{
		printf '_443._tcp.www   IN TLSA 3 1 1 %s\n' "$(spki_sha256 "$ctd/valid.key.pem")"
		printf '_443._tcp.ta    IN TLSA 2 0 1 %s\n' "$(cert_sha256 "$ctd/int.pem")"
		printf '_443._tcp.other IN TLSA 3 1 1 %s\n' "$(spki_sha256 "$ctd/log_b.key.pem")"
	} >>"$dir/src/zones/signed.hmtest.zone" &&
	printf '_443._tcp.www IN TLSA 3 1 1 %s\n' "$(spki_sha256 "$ctd/valid.key.pem")" \
		>>"$dir/src/zones/unsigned.hmtest.zone" || { fail "zone files"; finish; exit 1; }
DNS_LIB_DIR=$dir/src
dns_build_zones "$dir/zones" >/dev/null 2>&1 || { fail "zones"; finish; exit 1; }

cat >"$dir/ct.yaml" <<EOF
ct:
  trust_store: $ctd/root.pem
  max_clock_skew_s: 300
  logs:
    - name: test-log-a
      key: $ctd/log_a.pub.pem
      url: http://$LOG:8080
EOF

echo "# 4 replicas with dns: and ct:, NSD, test log A"
ups="[{zone: signed.hmtest., address: $AUTH}, {zone: unsigned.hmtest., address: $AUTH}]"
if ! cluster up -n 4 --clients 2 --dataplane "${HM_E2E_DATAPLANE:-socket}" \
	--config-fragment "$dir/ct.yaml" \
	--set dns.listen_port=53 \
	--set dns.trust_anchor_file="$dir/zones/trust-anchors" \
	--set dns.skew_s=30 \
	--set dns.query_timeout_ms=8000 \
	--set "dns.upstreams=$ups" >/dev/null; then
	fail "cluster up"; finish; exit 1
fi
# shellcheck source=/dev/null
. "$dir/cluster/state.env"
hm_ns_create "$p-auth" &&
	hm_ns_connect "$p-auth" eth0 "$AUTH/24" "$HM_PREFIX-sw" br0 "$p-auth" &&
	dns_nsd_start "$p-auth" "$dir/zones/honest" "$AUTH" || { fail "nsd"; finish; exit 1; }

ip netns exec "$HM_CLIENT_NS" "$py" "$tools/ct_log.py" --key "$ctd/log_a.key.pem" \
	--roots "$ctd/root.pem" --host "$LOG" --port 8080 --port-file "$ctd/log_a.port" \
	>"$ctd/log_a.log" 2>&1 &
log_pid=$!
for _ in $(seq 100); do [ -s "$ctd/log_a.port" ] && break; sleep 0.1; done
# The factory also issues an unknown_log variant: DANE needs no second log,
# so that one goes to log A as well (its chain is not used here).
check "the factory issues certificates into log A" ip netns exec "$HM_CLIENT_NS" \
	"$py" "$tools/certfactory.py" issue "$ctd" --log-a "http://$LOG:8080" --log-b "http://$LOG:8080"
sleep 1 # SCTs are in ms, the agreed time in s: not in the second of issuance

# tlsa NAME: hmctl cert check on the valid chain with --tlsa NAME; $out, $rc
tlsa() {
	out=$(cluster exec hmctl cert check "$ctd/valid.chain.pem" --tlsa "$1" 2>"$dir/stderr")
	rc=$?
	echo "$out" | sed 's/^/    /'
	sed 's/^/    stderr: /' "$dir/stderr"
}

echo "# DANE against the agreed TLSA RRsets"
tlsa _443._tcp.www.signed.hmtest
check "leaf SPKI record: CT verdict ok" grep -q '^verdict: ok' <<<"$out"
check "leaf SPKI record: the answer was decided by the DNSSEC rule" grep -q 'rule dnssec' <<<"$out"
check "leaf SPKI record: DANE-EE match at the leaf" \
	grep -q '^dane: match: record 0 of 1 (usage DANE-EE, certificate 0' <<<"$out"
check_eq "leaf SPKI record: exit 0" "$rc" 0

tlsa _443._tcp.ta.signed.hmtest
check "intermediate record: DANE-TA match at chain position 1" \
	grep -q '^dane: match: record 0 of 1 (usage DANE-TA, certificate 1' <<<"$out"
check_eq "intermediate record: exit 0" "$rc" 0

tlsa _443._tcp.other.signed.hmtest
check "another key's record: no match" grep -q '^dane: no match among 1 TLSA records' <<<"$out"
check_eq "another key's record: exit 4" "$rc" 4

tlsa _443._tcp.www.unsigned.hmtest
check "unsigned zone: refused as not DNSSEC-secure" grep -q 'not DNSSEC-secure' "$dir/stderr"
check_eq "unsigned zone: exit 1" "$rc" 1

finish
