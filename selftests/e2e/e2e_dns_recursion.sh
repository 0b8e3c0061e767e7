#!/usr/bin/env bash
# End-to-end: recursion from the root, offline (docs/dns.md, "Recursion from
# the root").  A 4-replica cluster with no dns.upstreams resolves through a
# DNS tree of its own: NSD serving a root zone, the TLD hmtest. and leaf
# zones, all signed at test time with the DS records up the chain, a hints
# file naming the test root server (dns.root_hints) and the root KSK's DS
# as the only trust anchor.  Then prefetch (dns.prefetch): a name asked in
# the last tenth of its TTL gets a fresh agreed entry with a later expiry.
#
#   root  198.18.0.71  NSD: .            (a.root-servers.)
#   tld   198.18.0.72  NSD: hmtest.      (ns.nic.hmtest.)
#   leaf  198.18.0.73  NSD: alpha.hmtest. (NSEC), beta.hmtest. (NSEC3),
#                      bogus.hmtest. (www's RRSIG broken), plain.hmtest.
#                      (unsigned: no DS in hmtest.)
#   rI    198.18.0.(I+1)  replica I (scripts/cluster.sh), DNS on port 53
# The records' data are from 198.19.40.0/24.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

need_tools e2e_dns_recursion nsd nsd-control ldns-signzone ldns-keygen dig jq || give_up "tools"
[ -x "$repo/build/hypermeshd" ] || { echo "e2e_dns_recursion: make all first"; give_up "built"; }
hm_require_root || give_up "root"

cluster_suite_begin rec rec

ROOT=198.18.0.71 TLD=198.18.0.72 LEAF=198.18.0.73
z="$dir/zones"

status() { "$repo/build/hmctl" status --socket "$dir/cluster/replica-$1/control.sock" | jq -r "$2"; }
metrics() { "$repo/build/hmctl" metrics --socket "$dir/cluster/replica-$1/control.sock"; }
d() { cluster exec dig @"$1" +time=6 +tries=1 "${@:2}" 2>&1; }
addr() { printf '198.18.0.%s' "$(($1 + 1))"; }
ttl_of() { awk '$1 !~ /^;/ && NF >= 5 { print $2; exit }' <<<"$1"; }
no_flag() { ! has_flag "$@"; }

# ---- the tree --------------------------------------------------------------

# soa_ns ZONE NS: the apex of a zone (SOA MINIMUM 300, the negative TTL).
soa_ns() {
	printf '$TTL 3600\n%s IN SOA %s hostmaster.nic.hmtest. 1 7200 3600 1209600 300\n%s IN NS %s\n' \
		"$1" "$2" "$1" "$2"
}

write_zones() {
	mkdir -p "$z/root" "$z/tld" "$z/leaf" || return 1
	{ soa_ns . a.root-servers.
	  printf 'a.root-servers. IN A %s\nhmtest. IN NS ns.nic.hmtest.\nns.nic.hmtest. IN A %s\n' \
		"$ROOT" "$TLD"; } >"$z/root/root.zone"
	{ soa_ns hmtest. ns.nic.hmtest.
	  printf 'ns.nic.hmtest. IN A %s\nns.leaf.hmtest. IN A %s\n' "$TLD" "$LEAF"
	  for c in alpha beta bogus plain; do printf '%s.hmtest. IN NS ns.leaf.hmtest.\n' "$c"; done
	} >"$z/tld/hmtest.zone"
	{ soa_ns alpha.hmtest. ns.leaf.hmtest.
	  printf 'www.alpha.hmtest. IN A 198.19.40.10\n'
	  printf 'short.alpha.hmtest. 20 IN A 198.19.40.11\n'; } >"$z/leaf/alpha.hmtest.zone"
	{ soa_ns beta.hmtest. ns.leaf.hmtest.
	  printf 'www.beta.hmtest. IN A 198.19.40.20\n'; } >"$z/leaf/beta.hmtest.zone"
	{ soa_ns bogus.hmtest. ns.leaf.hmtest.
	  printf 'www.bogus.hmtest. IN A 198.19.40.40\n'; } >"$z/leaf/bogus.hmtest.zone"
	{ soa_ns plain.hmtest. ns.leaf.hmtest.
	  printf 'www.plain.hmtest. IN A 198.19.40.30\n'; } >"$z/leaf/plain.hmtest.zone"
}

# sign DIR ZONE FILE PARENT_FILE [signer flags]: fresh ECDSA keys, signed for
# [now - 1 day, now + 30 days]; the KSK's DS goes into PARENT_FILE (the
# parent's zone, not signed yet) or, for the root, into the trust anchors.
sign() {
	local dir=$1 zone=$2 file=$3 parent=$4 ksk zsk now
	now=$(date -u +%s)
	(cd "$dir" &&
		ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$zone") &&
		zsk=$(ldns-keygen -a ECDSAP256SHA256 "$zone") &&
		ldns-signzone ${5:-} -f "$file.signed" \
			-i "$(date -u -d "@$((now - 86400))" +%Y%m%d%H%M%S)" \
			-e "$(date -u -d "@$((now + 30 * 86400))" +%Y%m%d%H%M%S)" \
			"$file" "$ksk" "$zsk" &&
		cat "$ksk.ds" >>"$parent" && rm -f "$file")
}

build_tree() {
	write_zones &&
		sign "$z/leaf" alpha.hmtest. alpha.hmtest.zone "$z/tld/hmtest.zone" &&
		sign "$z/leaf" beta.hmtest. beta.hmtest.zone "$z/tld/hmtest.zone" \
			"-n -s $(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" &&
		sign "$z/leaf" bogus.hmtest. bogus.hmtest.zone "$z/tld/hmtest.zone" &&
		dns_break_signature "$z/leaf/bogus.hmtest.zone.signed" &&
		sign "$z/tld" hmtest. hmtest.zone "$z/root/root.zone" &&
		sign "$z/root" . root.zone "$z/trust-anchors" &&
		printf '.\t3600000\tNS\ta.root-servers.\na.root-servers.\t3600000\tA\t%s\n' "$ROOT" \
			>"$z/root.hints"
}

# nsd_up NS ADDR DIR: NSD on ADDR in its own namespace on the cluster's
# bridge, serving DIR's zone files, with a control socket for its counters.
nsd_up() {
	local ns=$1 a=$2 dir=$3 f name
	{
		printf 'server:\n  ip-address: %s\n  port: 53\n  username: ""\n  chroot: ""\n' "$a"
		printf '  zonesdir: "%s"\n  database: ""\n  zonelistfile: "%s/zone.list"\n' "$dir" "$dir"
		printf '  xfrdfile: "%s/xfrd.state"\n  pidfile: "%s/nsd.pid"\n' "$dir" "$dir"
		printf '  logfile: "%s/nsd.log"\n  server-count: 1\n  verbosity: 1\n' "$dir"
		printf 'remote-control:\n  control-enable: yes\n  control-interface: %s/nsd.ctl\n' "$dir"
		for f in "$dir"/*.zone.signed "$dir"/plain.hmtest.zone; do
			[ -e "$f" ] || continue
			name=$(basename "$f" .signed)
			name=${name%.zone}
			[ "$name" = root ] && name=""
			printf 'zone:\n  name: "%s."\n  zonefile: "%s"\n' "$name" "$(basename "$f")"
		done
	} >"$dir/nsd.conf"
	nsd-checkconf "$dir/nsd.conf" || return 1
	hm_ns_create "$ns" && hm_ns_connect "$ns" eth0 "$a/24" "$HM_PREFIX-sw" br0 "$ns" || return 1
	setsid ip netns exec "$ns" nsd -d -c "$dir/nsd.conf" >>"$dir/nsd.out" 2>&1 </dev/null &
	for _ in $(seq 100); do
		nsd-control -c "$dir/nsd.conf" status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$dir/nsd.out" "$dir/nsd.log" >&2 2>/dev/null
	return 1
}

# queries DIR: the queries the NSD of DIR has answered so far.
queries() {
	nsd-control -c "$1/nsd.conf" stats_noreset 2>/dev/null | sed -n 's/^num\.queries=//p'
}

# wait_status I JQ MIN: poll replica I's status field until >= MIN; print it.
wait_status() {
	local v=0
	for _ in $(seq 100); do
		v=$(status "$1" "$2")
		[ "$v" -ge "$3" ] 2>/dev/null && break
		sleep 0.1
	done
	printf '%s' "$v"
}

echo "# setup: a signed root, TLD and leaves in NSD, 4 replicas with no upstreams"
build_tree >"$dir/build.log" 2>&1 || { cat "$dir/build.log"; give_up "zones"; }
check "the root's DS is the only trust anchor" [ "$(grep -c DS "$z/trust-anchors")" -eq 1 ]
dns_cluster_up "$dir/cluster" "$z" "[]" -n 4 --clients 2 \
	--set dns.root_hints="$z/root.hints" --set dns.max_ttl_s=3600 || give_up "cluster"
nsd_up "$p-root" "$ROOT" "$z/root" && nsd_up "$p-tld" "$TLD" "$z/tld" &&
	nsd_up "$p-leaf" "$LEAF" "$z/leaf" || give_up "nsd"
check "replica 0 says it resolves from the root hints" \
	grep -q "no upstreams: resolving from the root (hints $z/root.hints" \
	"$dir/cluster/replica-0/log"
before_root=$(queries "$z/root") before_tld=$(queries "$z/tld")

echo "# signed leaves through every replica: AD (rule (a): a chain to the root's key)"
for i in 0 1 2 3; do
	out=$(d "$(addr $i)" www.alpha.hmtest A +dnssec)
	check_eq "replica $i: NOERROR" "$(status_of "$out")" NOERROR
	check "replica $i: AD" has_flag "$(flags_of "$out")" ad
	check "replica $i: the leaf's address" grep -q "198.19.40.10" <<<"$out"
done
out=$(d "$(addr 1)" www.beta.hmtest A +dnssec)
check "NSEC3 leaf: AD" has_flag "$(flags_of "$out")" ad
check "NSEC3 leaf: its address" grep -q "198.19.40.20" <<<"$out"
check_ge "decided by rule (a)" "$(status 0 .dns.service.decided_dnssec)" 1

echo "# the replicas iterated: the root and the TLD servers were asked"
check_ge "root server queried" "$(queries "$z/root")" $((before_root + 1))
check_ge "TLD server queried" "$(queries "$z/tld")" $((before_tld + 1))
check_ge "leaf server queried" "$(queries "$z/leaf")" 1

echo "# a bogus leaf: SERVFAIL with a DNSSEC EDE"
out=$(d "$(addr 2)" www.bogus.hmtest A +dnssec)
check_eq "SERVFAIL" "$(status_of "$out")" SERVFAIL
check "EDE 6..12" grep -qE "EDE: (6|7|8|9|10|12) " <<<"$out"
check "never the bogus address" not grep -q "198.19.40.40" <<<"$out"

echo "# an unsigned delegation (no DS in hmtest.): insecure, no AD"
out=$(d "$(addr 3)" www.plain.hmtest A +dnssec)
check_eq "NOERROR" "$(status_of "$out")" NOERROR
check "the address" grep -q "198.19.40.30" <<<"$out"
check "no AD" no_flag "$(flags_of "$out")" ad

echo "# NXDOMAIN with its proof"
out=$(d "$(addr 0)" nope.alpha.hmtest A +dnssec)
check_eq "NXDOMAIN" "$(status_of "$out")" NXDOMAIN
check "AD on the denial" has_flag "$(flags_of "$out")" ad
check "NSEC proof in authority" grep -qE "IN	NSEC	" <<<"$out"
out=$(d "$(addr 1)" nope.beta.hmtest A +dnssec)
check_eq "NSEC3 zone: NXDOMAIN" "$(status_of "$out")" NXDOMAIN
check "NSEC3 proof in authority" grep -qE "IN[[:space:]]+NSEC3[[:space:]]" <<<"$out"

echo "# prefetch: asked in the last tenth of its TTL (20 s), a fresh agreed entry"
out=$(d "$(addr 0)" short.alpha.hmtest A +noall +answer)
first=$(ttl_of "$out")
check "TTL 20 at most" [ "${first:-99}" -le 20 ]
# Wait (polling the served TTL) until the answer is in its last 2 s.
for _ in $(seq 250); do
	left=$(ttl_of "$(d "$(addr 0)" short.alpha.hmtest A +noall +answer)")
	[ "${left:-99}" -le 2 ] && break
	sleep 0.1
done
check "served from the cache down to the last tenth" [ "${left:-99}" -le 2 ]
check_ge "a prefetch refreshed the entry" "$(wait_status 0 .dns.prefetch.refreshed 1)" 1
check_ge "the prefetch resolved on a fresh context" "$(status 0 .dns.prefetch.fresh_lookups)" 1
after=$(ttl_of "$(d "$(addr 0)" short.alpha.hmtest A +noall +answer)")
# Without the empty-cache context the replicas' libunbound answered with
# the TTL left, and the new entry expired when the old one did.
check "the new entry expires later (TTL $after > $left + 5)" [ "${after:-0}" -gt $((left + 5)) ]
check_eq "every replica refreshed (agreed)" "$(wait_status 3 .dns.prefetch.refreshed 1)" 1
check "metric hypermesh_dns_prefetch_total{result=refreshed}" \
	grep -qE '^hypermesh_dns_prefetch_total\{result="refreshed"\} [1-9]' <<<"$(metrics 1)"
check_eq "no prefetch failed" "$(status 0 .dns.prefetch.failed)" 0

finish
