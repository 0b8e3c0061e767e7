#!/usr/bin/env bash
# End-to-end: requests without signatures (security.signed_requests: false,
# the default; user/core/pbft_auth.c, selftests/sim/test_request_auth.c in
# the simulator) against a faulty client, with real replicas in network
# namespaces at n = 4 and 7, in socket and xdp mode.  The faulty client is
# build/hm_bad_client (selftests/e2e/tools/bad_client.c): hmctl's client with
# one byte of its link MAC flipped on every datagram to the replicas named.
# For each dataplane and n (view_change_timeout_ms 2000):
#   1. its MACs bad at every backup (its requests authentic at the primary
#      alone, never 2f+1 vouches): it is not served within 4 view-change
#      timeouts, while a normal client (hmctl bench) is; every backup counts
#      its bad MACs, the primary none; every replica is still in view 0 and
#      started no view change;
#   2. its MACs bad at f+1 backups: it is served (those backups hold its
#      requests authentic through the other replicas' vouches:
#      core.requests_by_vouches grows by one per request at each of them, also
#      in hypermesh_requests_by_vouches_total); still view 0, no view change;
#   3. a normal client after both: served, the replicas agree on one state,
#      view 0 and no view change anywhere; the cluster leaves no namespace,
#      link or BPF pin behind.
# Then the option, security.signed_requests: true (n = 4, socket): forged
# request signatures refused and counted, normal clients served; then the
# switch to the default by rolling restart under a signed write load (the
# mixed cluster serves signing clients at every step, every acknowledged
# write reads back, and clients that stop signing are served at the end).
#
#   HM_E2E_DATAPLANES="socket xdp"  the dataplanes, in order (default both)
#   HM_E2E_NS="4 7"                 the cluster sizes (default both)
#   HM_E2E_VC_MS=MS                 view_change_timeout_ms (default 2000)
#   HM_E2E_OPS=N                    the faulty client's requests in case 2 (default 10)
#   HM_E2E_SIGNED=0                 skip the signed-requests part
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

need_tools e2e_request_auth jq || give_up "tools"
for b in hypermeshd hmctl hm_bad_client; do
	[ -x "$repo/build/$b" ] || { echo "e2e_request_auth: build/$b missing (make all)"; give_up "built"; }
done
hm_require_root || give_up "root"

dataplanes=${HM_E2E_DATAPLANES:-socket xdp}
sizes=${HM_E2E_NS:-4 7}
vc_ms=${HM_E2E_VC_MS:-2000}
ops=${HM_E2E_OPS:-10}
# Case 1: how long the faulty client waits (4 view-change timeouts).
wait_s=$((4 * vc_ms / 1000))
# The frame: $dir (files), `cluster` on $dir/cluster, and on every exit (a
# failure or a signal too) the faulty client stopped if it still runs, the
# cluster down and its namespaces, links and pins removed.
cluster_suite_begin ha request_auth
cdir=$dir/cluster
# The clients' identity files (user/client/identity.h) in $dir, not /run.
export XDG_RUNTIME_DIR=$dir
bad_pid=""
trap '[ -z "$bad_pid" ] || kill "$bad_pid" 2>/dev/null; cleanup' EXIT

status() { "$repo/build/hmctl" status --socket "$cdir/replica-$1/control.sock" 2>/dev/null | jq -r "$2"; }
# metric ID NAME: one sample of replica ID's Prometheus text.
metric() {
	"$repo/build/hmctl" metrics --socket "$cdir/replica-$1/control.sock" 2>/dev/null |
		awk -v k="$2" '$1 == k { print $2; found = 1; exit } END { if (!found) print "none" }'
}
# Bad MACs from clients that replica ID dropped: in userspace (socket mode)
# or in XDP (xdp mode).
bad_macs() {
	status "$1" '(.peers.clients.drops.bad_mac // 0) + (.xdp.node_stats.clients.drops.bad_mac // 0)'
}
bench_ops() { grep -o '"ops":[0-9]*' <<<"$1" | cut -d: -f2; }
# grew ID JQ FROM BY: replica ID's counter JQ reached FROM + BY.
grew() { [ "$(status "$1" "$2")" -ge $(($3 + $4)) ] 2>/dev/null; }
# bad_macs_grew IDS... (with the snapshot in mac0): each counted a new bad MAC.
bad_macs_grew() {
	local i
	for i in "$@"; do [ "$(bad_macs "$i")" -gt "${mac0[$i]}" ] 2>/dev/null || return 1; done
}
# normal_client WHAT N: a normal client (hmctl's identity, 100) gets N writes done.
normal_client() {
	local out
	out=$(cluster exec hmctl bench --clients 1 --duration 60 --op put --ops "$2")
	check_eq "$1: a normal client's $2 writes all completed" "$(bench_ops "$out")" "$2"
}
# view_zero WHAT N: replicas 0..N-1 are in view 0 and started no view change
# (each as ID:VIEW/VIEW_CHANGES_STARTED).
view_zero() {
	local i got="" want=""
	for ((i = 0; i < $2; i++)); do
		got+="$i:$(status "$i" '"\(.view)/\(.core.view_changes_started)"') "
		want+="$i:0/0 "
	done
	check_eq "$1: every replica in view 0, no view change started" "$got" "$want"
}

run() {
	local dp=$1 n=$2 f i rc out prefix tag all_backups bad_f1
	local -A mac0=() byv0=()
	f=$(((n - 1) / 3))
	tag="$dp n=$n"
	all_backups=$(seq -s, 1 $((n - 1)))
	bad_f1=$(seq -s, 1 $((f + 1)))

	echo "# $tag: $n replicas (f = $f), view_change_timeout_ms $vc_ms"
	HM_READY_TIMEOUT=30 cluster up -n "$n" --clients 4 --dataplane "$dp" \
		--set consensus.view_change_timeout_ms="$vc_ms" >"$dir/up-$dp-$n.out" 2>&1 || {
		sed 's/^/    | /' "$dir/up-$dp-$n.out"
		give_up "$tag: cluster up"
	}
	# shellcheck source=/dev/null
	prefix=$(. "$cdir/state.env" && echo "$HM_PREFIX")
	check_eq "$tag: replica 0 runs the $dp dataplane" "$(status 0 .dataplane)" "$dp"

	echo "# $tag: client 101's MACs bad at every backup ($all_backups)"
	for ((i = 0; i < n; i++)); do mac0[$i]=$(bad_macs "$i"); done
	cluster exec hm_bad_client -c "$cdir/client-101.yaml" --bad "$all_backups" --ops 3 \
		--timeout "$wait_s" >"$dir/bad1-$dp-$n.out" 2>&1 &
	bad_pid=$!
	# Once its first request is out (the backups dropped it), a normal
	# client runs while it waits and retransmits.
	check "$tag: every backup drops client 101's bad MACs" poll 20 bad_macs_grew $(seq 1 $((n - 1)))
	normal_client "$tag, client 101 waiting" 200
	wait "$bad_pid"
	rc=$?
	bad_pid=""
	sed 's/^/    | /' "$dir/bad1-$dp-$n.out"
	check_eq "$tag: client 101 not served within ${wait_s}s (hm_bad_client exits 3)" "$rc" 3
	check "$tag: not one of its requests served" grep -q '^served 0 of 3' "$dir/bad1-$dp-$n.out"
	check_eq "$tag: the primary saw no bad MAC" "$(bad_macs 0)" "${mac0[0]}"
	view_zero "$tag, bad MACs at every backup" "$n"

	echo "# $tag: client 102's MACs bad at f+1 = $((f + 1)) backups ($bad_f1)"
	for ((i = 0; i < n; i++)); do
		mac0[$i]=$(bad_macs "$i")
		byv0[$i]=$(status "$i" .core.requests_by_vouches)
	done
	out=$(cluster exec hm_bad_client -c "$cdir/client-102.yaml" --bad "$bad_f1" --ops "$ops" \
		--timeout 60 2>&1)
	rc=$?
	echo "    | $out"
	check_eq "$tag: client 102 served, all $ops requests (hm_bad_client exits 0)" "$rc" 0
	for ((i = 1; i <= f + 1; i++)); do
		check "$tag: replica $i dropped client 102's bad MACs" bad_macs_grew "$i"
		check "$tag: replica $i: core.requests_by_vouches grew by $ops (from ${byv0[$i]})" \
			poll 20 grew "$i" .core.requests_by_vouches "${byv0[$i]}" "$ops"
		check_eq "$tag: replica $i: hypermesh_requests_by_vouches_total as in its status" \
			"$(metric "$i" hypermesh_requests_by_vouches_total)" \
			"$(status "$i" .core.requests_by_vouches)"
	done
	for ((i = f + 2; i < n; i++)); do
		check_eq "$tag: replica $i (MACs good) saw no bad MAC" "$(bad_macs "$i")" "${mac0[$i]}"
	done
	check_eq "$tag: nor did the primary" "$(bad_macs 0)" "${mac0[0]}"
	view_zero "$tag, bad MACs at f+1 backups" "$n"

	echo "# $tag: a normal client after both"
	normal_client "$tag, after" 100
	check_eq "$tag: the $n replicas end with one state digest" \
		"$(settled_digests $(seq 0 $((n - 1))) | wc -l)" 1
	view_zero "$tag, at the end" "$n"

	cluster down >/dev/null 2>&1
	check_eq "$tag: no namespace of the cluster ($prefix) left" "$(ip netns list | grep -c "^$prefix-")" 0
	check_eq "$tag: no link of it left" "$(ip -o link show | grep -c ": $prefix-")" 0
	check_eq "$tag: no BPF pin of it left" "$(find /sys/fs/bpf -maxdepth 1 -name "$prefix*" | wc -l)" 0
}

# The option: security.signed_requests: true (n = 4, socket mode).  Clients
# sign, replicas verify: a request with another key's signature under a
# good MAC is refused and counted at the primary (bad_signature), which the
# default mode does not look at (e2e_socket.sh); normal clients are served.
signed() {
	local before core_before

	echo "# signed requests: 4 replicas, socket mode, security.signed_requests: true"
	HM_READY_TIMEOUT=30 cluster up -n 4 --clients 2 --dataplane socket \
		--set security.signed_requests=true >"$dir/up-signed.out" 2>&1 || {
		sed 's/^/    | /' "$dir/up-signed.out"
		give_up "signed: cluster up"
	}
	normal_client "signed" 50
	before=$(status 0 .drops.bad_signature)
	core_before=$(status 0 .core.bad_client_signatures)
	cluster exec hmctl inject forged-sig --replica 0 --count 5 >/dev/null
	check "signed: 5 forged request signatures refused and counted at the primary" \
		poll 20 grew 0 .drops.bad_signature "$before" 5
	check_eq "signed: the core counted the same 5 in bad_client_signatures" \
		"$(status 0 .core.bad_client_signatures)" "$((core_before + 5))"
	normal_client "signed, after" 50
	check_eq "signed: the replicas sent vouches all the same (mixed-mode upgrades)" \
		"$(status 1 '.core.vouches_sent > 0')" true
	view_zero "signed" 4
	rolling_switch
	cluster down >/dev/null 2>&1
}

# The switch to the default by rolling restart, as README's upgrade note
# says: each replica in turn restarted with signed_requests: false (its own
# copy of the config, beside the first for its relative paths, passed with
# -c through its extra-args file), the clients still signing, a loop of
# signed writes (client 101; hmctl bench is client 100) running throughout.
# After each restart (2 of 4 switched is the mixed cluster at its most
# even) the signing clients are served; once every replica is switched, so
# are clients that do not sign.  Every write the loop got OK for reads back.
rolling_switch() {
	local i load_pid k v lost=0 n_acked=0 views
	sed 's/signed_requests: true/signed_requests: false/' "$cdir/cluster.yaml" >"$cdir/unsigned.yaml"
	check "switch: the new config says signed_requests: false" \
		grep -q "signed_requests: false" "$cdir/unsigned.yaml"
	echo "# switching to requests without signatures, one replica at a time, under load"
	: >"$dir/switch-acked"
	(
		n=0
		while [ ! -e "$dir/switch-stop" ]; do
			n=$((n + 1))
			[ "$(timeout 8 bash "$repo/scripts/cluster.sh" --dir "$cdir" exec \
				hmctl -c "$cdir/client-101.yaml" put "switch-$n" "w$n" 2>/dev/null)" = OK ] &&
				echo "switch-$n w$n" >>"$dir/switch-acked"
		done
	) &
	load_pid=$!
	for i in 0 1 2 3; do
		printf -- '-c\n%s\n' "$cdir/unsigned.yaml" >"$cdir/replica-$i/extra-args"
		cluster stop "$i" >/dev/null 2>&1
		HM_READY_TIMEOUT=30 cluster start "$i" >/dev/null 2>&1 || fail "switch: replica $i restarted"
		check_eq "switch: replica $i runs without signed requests" \
			"$(status "$i" .signed_requests)" false
		normal_client "switch, $((i + 1)) of 4 replicas switched, clients signing" 20
	done
	touch "$dir/switch-stop"
	wait "$load_pid"
	while read -r k v; do
		n_acked=$((n_acked + 1))
		[ "$(timeout 8 bash "$repo/scripts/cluster.sh" --dir "$cdir" exec hmctl get "$k" \
			2>/dev/null)" = "$v" ] || lost=$((lost + 1))
	done <"$dir/switch-acked"
	check_ge "switch: the signed writes went on throughout ($n_acked acknowledged)" "$n_acked" 4
	check_eq "switch: every acknowledged write reads back" "$lost" 0
	sed -i 's/signed_requests: true/signed_requests: false/' "$cdir/client.yaml" "$cdir"/client-*.yaml
	check "switch: the clients' config says signed_requests: false" \
		grep -q "signed_requests: false" "$cdir/client.yaml"
	normal_client "switch done, clients not signing" 20
	views=$(for i in 0 1 2 3; do status "$i" .view; done | sort -u | wc -l)
	check_eq "switch: the replicas agree on one view" "$views" 1
}

for dp in $dataplanes; do
	for n in $sizes; do
		run "$dp" "$n"
	done
done
[ "${HM_E2E_SIGNED:-1}" = 0 ] || signed
finish
