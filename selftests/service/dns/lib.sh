# shellcheck shell=bash
# DNS test infrastructure: zones signed at test time, NSD configurations and
# instances.  Source from bash; functions only, no shell options changed.
#
#   dns_build_zones OUT      sign the zones of selftests/service/dns/zones into OUT:
#       OUT/honest/    the zones as published (signed ones signed now)
#       OUT/honest2/   the unsigned zone again, reordered, other case and TTLs
#       OUT/poison/    the same names with other data (the signed zone keeps
#                      its old signatures, so it is bogus to a validator)
#       OUT/trust-anchors   DS records of the signed zones' KSKs
#       OUT/sig-inception, OUT/sig-expiration   the signatures' window (epoch s)
#   dns_nsd_conf DIR ADDR       write DIR/nsd.conf serving DIR/*.zone* on ADDR:53
#   dns_nsd_start NS DIR        run NSD in namespace NS; waits until it answers

DNS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Signed in this order: a child before its parent, which gets the child's DS.
DNS_SIGNED_ZONES=(child.signed.hmtest signed.hmtest nsec3.hmtest bogus.hmtest)
# Signatures valid from a day ago to 30 days ahead, so a validation time
# outside that window is testable in both directions.
DNS_SIG_BEFORE=86400
DNS_SIG_AFTER=$((30 * 86400))

# The 40 TXT records of big.signed.hmtest (about 3 KB: more than any UDP
# answer we send, so clients must use TCP).
dns_big_rrset() {
	local i
	for i in $(seq -w 1 40); do
		printf 'big\tIN TXT "large rrset record %s, padding to make the answer need tcp"\n' "$i"
	done
}

# 40 signed names, many-01..many-40.signed.hmtest A: distinct misses that
# rule (a) decides on one observation (e2e_dns_cluster.sh, audit lookups).
dns_many_names() {
	local i
	for i in $(seq -w 1 40); do
		printf 'many-%s\tIN A 198.18.53.90\n' "$i"
	done
}

# dns_sign_zone DIR ZONE FLAGS: keys, signature; the KSK's DS goes to the
# trust anchors, or for child.signed.hmtest into its parent's zone file.
dns_sign_zone() {
	local dir=$1 zone=$2 extra=$3 ksk zsk now
	now=$(date -u +%s)
	# shellcheck disable=SC2086  # extra holds signer flags (or nothing)
	(cd "$dir" &&
		ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$zone.") &&
		zsk=$(ldns-keygen -a ECDSAP256SHA256 "$zone.") &&
		ldns-signzone $extra -f "$zone.zone.signed" \
			-i "$(date -u -d "@$((now - DNS_SIG_BEFORE))" +%Y%m%d%H%M%S)" \
			-e "$(date -u -d "@$((now + DNS_SIG_AFTER))" +%Y%m%d%H%M%S)" \
			"$zone.zone" "$ksk" "$zsk" &&
		if [ "$zone" = child.signed.hmtest ]; then
			printf 'child\tIN NS ns.signed.hmtest.\n' >>signed.hmtest.zone &&
			sed 's/^child\.signed\.hmtest\.[[:space:]]*/child\t/' "$ksk.ds" >>signed.hmtest.zone
		else
			cat "$ksk.ds" >>../trust-anchors
		fi &&
		rm -f "$zone.zone") || return 1
	echo "$((now - DNS_SIG_BEFORE))" >"$dir/../sig-inception"
	echo "$((now + DNS_SIG_AFTER))" >"$dir/../sig-expiration"
}

# Corrupt the signature over www.bogus.hmtest. A: flip the first characters
# of its base64 signature field.
dns_break_signature() {
	local file=$1
	awk 'BEGIN { OFS = "\t"; done = 0 }
	     $1 == "www.bogus.hmtest." && $4 == "RRSIG" && $5 == "A" && !done {
	         sig = $NF; repl = (substr(sig, 1, 8) == "AAAAAAAA") ? "BBBBBBBB" : "AAAAAAAA";
	         $NF = repl substr(sig, 9); done = 1 }
	     { print } END { exit done ? 0 : 1 }' "$file" >"$file.tmp" && mv "$file.tmp" "$file"
}

dns_build_zones() {
	local out=$1 src="$DNS_LIB_DIR/zones" z
	mkdir -p "$out/honest" "$out/honest2" "$out/poison" || return 1
	: >"$out/trust-anchors"
	cp "$src"/*.zone "$out/honest/" || return 1
	dns_big_rrset >>"$out/honest/signed.hmtest.zone"
	dns_many_names >>"$out/honest/signed.hmtest.zone"
	for z in "${DNS_SIGNED_ZONES[@]}"; do
		if [ "$z" = nsec3.hmtest ]; then
			dns_sign_zone "$out/honest" "$z" "-n -s $(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" || return 1
		else
			dns_sign_zone "$out/honest" "$z" "" || return 1
		fi
	done
	dns_break_signature "$out/honest/bogus.hmtest.zone.signed" || return 1
	# The second honest server: same RRsets, other order, case and TTLs.
	cat >"$out/honest2/unsigned.hmtest.zone" <<-'EOF'
	$ORIGIN unsigned.hmtest.
	$TTL 60
	WWW     IN TXT "honest"
	@       IN NS  NS.unsigned.hmtest.
	www     IN A   198.18.53.101
	Www     120 IN A   198.18.53.100
	@       IN SOA NS.Unsigned.hmtest. Hostmaster.unsigned.hmtest. 1 7200 3600 1209600 300
	ns      IN A   198.18.53.2
	EOF
	# The poisoning server: other data for the same names.
	sed 's/198\.18\.53\.101/198.18.66.66/; s/"honest"/"poisoned"/' \
		"$src/unsigned.hmtest.zone" >"$out/poison/unsigned.hmtest.zone"
	sed 's/198\.18\.53\.80$/198.18.66.66/' "$out/honest/signed.hmtest.zone.signed" \
		>"$out/poison/signed.hmtest.zone.signed"
	grep -q 198.18.66.66 "$out/poison/signed.hmtest.zone.signed" || return 1
	grep -q "^www.*198.18.66.66" "$out/poison/unsigned.hmtest.zone" || return 1
}

# dns_nsd_conf DIR ADDR: NSD serving every zone file in DIR on ADDR port 53.
dns_nsd_conf() {
	local dir=$1 addr=$2 f name
	{
		cat <<-EOF
		server:
		    ip-address: $addr
		    port: 53
		    username: ""
		    chroot: ""
		    zonesdir: "$dir"
		    database: ""
		    zonelistfile: "$dir/zone.list"
		    xfrdfile: "$dir/xfrd.state"
		    pidfile: "$dir/nsd.pid"
		    logfile: "$dir/nsd.log"
		    server-count: 1
		    hide-version: yes
		    verbosity: 1
		remote-control:
		    control-enable: no
		EOF
		for f in "$dir"/*.zone "$dir"/*.zone.signed; do
			[ -e "$f" ] || continue
			name=$(basename "$f")
			name=${name%.signed}
			name=${name%.zone}
			printf 'zone:\n    name: "%s."\n    zonefile: "%s"\n' "$name" "$(basename "$f")"
		done
	} >"$dir/nsd.conf"
}

# dns_nsd_start NS DIR ADDR: NSD in the foreground of a detached process in
# namespace NS (killed with the namespace); waits until it answers.
dns_nsd_start() {
	local ns=$1 dir=$2 addr=$3 zone
	dns_nsd_conf "$dir" "$addr" || return 1
	nsd-checkconf "$dir/nsd.conf" || return 1
	setsid ip netns exec "$ns" nsd -d -c "$dir/nsd.conf" >>"$dir/nsd.out" 2>&1 </dev/null &
	zone=$(sed -n 's/^    name: "\(.*\)"$/\1/p' "$dir/nsd.conf" | head -1)
	for _ in $(seq 100); do
		if ip netns exec "$ns" dig +short +time=1 +tries=1 @"$addr" "$zone" SOA 2>/dev/null | grep -q .; then
			return 0
		fi
		sleep 0.1
	done
	echo "nsd in $ns did not come up; log:" >&2
	cat "$dir/nsd.out" "$dir/nsd.log" >&2 2>/dev/null
	return 1
}
