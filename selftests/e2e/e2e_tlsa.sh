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
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

need_tools e2e_tlsa nsd ldns-signzone ldns-keygen dig jq openssl curl || give_up "tools"
[ -x "$repo/build/hypermeshd" ] || { echo "e2e_tlsa: make all first"; give_up "built"; }
hm_require_root || give_up "root"

p="ht$$"
dir=$(mktemp -d /tmp/hm-e2e-tlsa.XXXXXX)
ctd=$dir/ct
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir/cluster" "$@"; }
cleanup() {
	ct_logs_stop
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
ct_factory_init "$ctd" || give_up "certfactory init"
# The zones of selftests/service/dns with TLSA records added, signed by dns/lib.sh.
mkdir -p "$dir/src/zones" && cp "$DNS_LIB_DIR"/zones/*.zone "$dir/src/zones/" &&
	{
		printf '_443._tcp.www   IN TLSA 3 1 1 %s\n' "$(spki_sha256 "$ctd/valid.key.pem")"
		printf '_443._tcp.ta    IN TLSA 2 0 1 %s\n' "$(cert_sha256 "$ctd/int.pem")"
		printf '_443._tcp.other IN TLSA 3 1 1 %s\n' "$(spki_sha256 "$ctd/log_b.key.pem")"
	} >>"$dir/src/zones/signed.hmtest.zone" &&
	printf '_443._tcp.www IN TLSA 3 1 1 %s\n' "$(spki_sha256 "$ctd/valid.key.pem")" \
		>>"$dir/src/zones/unsigned.hmtest.zone" || give_up "zone files"
DNS_LIB_DIR=$dir/src
dns_build_zones "$dir/zones" >/dev/null 2>&1 || give_up "zones"
ct_fragment "$ctd" "http://$LOG:8080" >"$dir/ct.yaml"

echo "# 4 replicas with dns: and ct:, NSD, test log A"
ups="[{zone: signed.hmtest., address: $AUTH}, {zone: unsigned.hmtest., address: $AUTH}]"
dns_cluster_up "$dir/cluster" "$dir/zones" "$ups" -n 4 --clients 2 \
	--dataplane "${HM_E2E_DATAPLANE:-socket}" --config-fragment "$dir/ct.yaml" \
	--set dns.skew_s=30 || give_up "cluster up"
cluster_nsd "$p-auth" "$AUTH" "$dir/zones/honest" || give_up "nsd"
ct_log_start "$ctd" log_a "$LOG" 8080
# The factory also issues an unknown_log variant: DANE needs no second log,
# so that one goes to log A as well (its chain is not used here).
check "the factory issues certificates into log A" \
	ct_factory_issue "$ctd" "http://$LOG:8080" "http://$LOG:8080"
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
