#!/usr/bin/env bash
# End-to-end: the fast path (byzantine_config.performance.fast_path_enabled)
# on a 4-replica cluster in network namespaces, in socket mode and in xdp
# mode (`scripts/cluster.sh up --fast-path`, metrics on port 9100):
#   - with every replica up, client writes commit and batches take the
#     fast path (all n votes, no COMMIT round): through Prometheus on every
#     replica, hypermesh_fast_path_rounds_total > 0 and
#     hypermesh_fast_path_usage_percent > 0; the replicas end with one
#     state digest.  The reputation gate is held open here
#     (fast_path_trust_threshold: 0): on a loaded machine the fault detector
#     rightly scores a replica that is always last as late, and the gate
#     then withdraws the fast path, which is the gate's test below, not
#     this one's;
#   - one backup stopped: writes still commit (the normal path, 2f+1
#     COMMITs), the fast rounds stop growing on the live replicas while
#     hypermesh_commit_latency_seconds_count{path="normal"} grows by every
#     batch they commit, and the live replicas agree;
#   - the gate (socket mode): with fast_path_trust_threshold: 1 no peer is
#     ever above it, so every replica logs "fast path off", exports
#     hypermesh_fast_path_allowed 0, and commits what follows on the normal
#     path only.
#
#   HM_E2E_DATAPLANES="socket xdp"  the dataplanes, in order (default both)
#   HM_E2E_SECONDS=S                the fault-free run, one client (default 8)
#   HM_E2E_OPS=N                    writes with a backup down (default 150)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

need_tools e2e_fast_path jq curl || give_up "tools"
[ -x "$repo/build/hypermeshd" ] || { echo "e2e_fast_path: make all first"; give_up "built"; }
hm_require_root || give_up "root"

seconds=${HM_E2E_SECONDS:-8}
ops=${HM_E2E_OPS:-150}
dataplanes=${HM_E2E_DATAPLANES:-socket xdp}
# The frame: $dir (files), `cluster` on $dir/cluster, and on every exit
# (a failure or a signal too) the cluster down and its namespaces, links
# and pins removed (cluster.sh names them all with its own random prefix).
cluster_suite_begin hf fast_path
cdir=$dir/cluster

addr() { printf '198.18.0.%s' "$(($1 + 1))"; }
status() { "$repo/build/hmctl" status --socket "$cdir/replica-$1/control.sock" 2>/dev/null | jq -r "$2"; }
# metric ID SAMPLE: one sample of replica ID's /metrics, by its name with
# labels as exported (e.g. 'hypermesh_commit_latency_seconds_count{path="normal"}').
metric() {
	cluster exec curl -s --max-time 5 "http://$(addr "$1"):9100/metrics" |
		awk -v k="$2" '$1 == k { print $2; found = 1; exit } END { if (!found) print "none" }'
}
fast_rounds() { metric "$1" hypermesh_fast_path_rounds_total; }
normal_rounds() { metric "$1" 'hypermesh_commit_latency_seconds_count{path="normal"}'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0 && a != "none") }'; }
quiet() { "$@" >/dev/null 2>&1; }
bench_ops() { grep -o '"ops":[0-9]*' <<<"$1" | cut -d: -f2; }
# executed_all N IDS...: every replica in IDS executed up to N.
executed_all() {
	local n=$1 i
	shift
	for i in "$@"; do [ "$(status "$i" .last_executed)" -ge "$n" ] 2>/dev/null || return 1; done
}
# normal_grew ID FROM BY: replica ID's normal commits reached FROM + BY.
normal_grew() { local v; v=$(normal_rounds "$1"); [ "$v" != none ] && [ "${v%.*}" -ge $(($2 + $3)) ]; }

# normal_path_only WHAT N IDS...: N writes all complete, and on every
# replica in IDS each batch since committed on the normal path and the fast
# rounds did not grow.
normal_path_only() {
	local what=$1 n=$2 i e0 e1 out
	shift 2
	local -A f0=() n0=()
	e0=$(status "$1" .last_executed)
	for i in "$@"; do
		f0[$i]=$(fast_rounds "$i")
		n0[$i]=$(normal_rounds "$i")
		n0[$i]=${n0[$i]%.*}
	done
	out=$(cluster exec hmctl bench --clients 1 --duration 60 --op put --ops "$n")
	check_eq "$what: all $n writes completed" "$(bench_ops "$out")" "$n"
	e1=$(status "$1" .last_executed)
	check_ge "$what: batches committed" "$((e1 - e0))" 1
	check "$what: replicas $* executed them" poll 20 executed_all "$e1" "$@"
	for i in "$@"; do
		check "$what: replica $i: commit_latency_seconds_count{path=\"normal\"} grew by every batch ($((e1 - e0)))" \
			poll 20 normal_grew "$i" "${n0[$i]}" "$((e1 - e0))"
		check_eq "$what: replica $i: hypermesh_fast_path_rounds_total did not grow" \
			"$(fast_rounds "$i")" "${f0[$i]}"
	done
}

for dp in $dataplanes; do
	echo "# $dp dataplane: 4 replicas, the fast path on"
	HM_READY_TIMEOUT=30 cluster up -n 4 --clients 4 --dataplane "$dp" --fast-path \
		--set performance.fast_path_trust_threshold=0 \
		--set detection.metrics_port=9100 >"$dir/up-$dp.out" 2>&1 || {
		sed 's/^/    | /' "$dir/up-$dp.out"
		give_up "$dp: cluster up --fast-path"
	}
	# shellcheck source=/dev/null
	prefix=$(. "$cdir/state.env" && echo "$HM_PREFIX")
	check "$dp: cluster.yaml has fast_path_enabled: true" \
		grep -qE '^    fast_path_enabled: true$' "$cdir/cluster.yaml"

	# long enough for the fault detector to judge every peer several times
	out=$(cluster exec hmctl bench --clients 1 --duration "$seconds" --op put)
	done1=$(bench_ops "$out")
	check_ge "$dp: writes completed in ${seconds}s (one client)" "$done1" 100
	check "$dp: every replica executed them" poll 20 executed_all "$(status 0 .last_executed)" 0 1 2 3
	for i in 0 1 2 3; do
		check_eq "$dp: replica $i: hypermesh_fast_path_enabled" "$(metric "$i" hypermesh_fast_path_enabled)" 1
		check "$dp: replica $i: hypermesh_fast_path_rounds_total > 0" gt "$(fast_rounds "$i")" 0
		usage=$(metric "$i" hypermesh_fast_path_usage_percent)
		echo "    replica $i: fast path usage $usage %"
		check "$dp: replica $i: hypermesh_fast_path_usage_percent > 0" gt "$usage" 0
		check_eq "$dp: replica $i: hypermesh_fast_path_allowed" "$(metric "$i" hypermesh_fast_path_allowed)" 1
	done
	check_eq "$dp: the four replicas end with one state digest" "$(settled_digests 0 1 2 3 | wc -l)" 1

	echo "# $dp: backup 3 stopped: the normal path"
	check "$dp: replica 3 stops" quiet cluster stop 3
	normal_path_only "$dp, replica 3 down" "$ops" 0 1 2
	check_eq "$dp: the three live replicas agree" "$(settled_digests 0 1 2 | wc -l)" 1

	cluster down >/dev/null 2>&1
	check_eq "$dp: no namespace of the cluster ($prefix) left" "$(ip netns list | grep -c "^$prefix-")" 0
	check_eq "$dp: no link of it left" "$(ip -o link show | grep -c ": $prefix-")" 0
	check_eq "$dp: no BPF pin of it left" "$(find /sys/fs/bpf -maxdepth 1 -name "$prefix*" | wc -l)" 0
done

# The gate: fast_path_trust_threshold 1 (no reputation is above it).
dp=socket
echo "# $dp: the reputation gate closed (fast_path_trust_threshold: 1)"
HM_READY_TIMEOUT=30 cluster up -n 4 --clients 4 --dataplane "$dp" --fast-path \
	--set performance.fast_path_trust_threshold=1 \
	--set detection.metrics_port=9100 >"$dir/up-gate.out" 2>&1 || {
	sed 's/^/    | /' "$dir/up-gate.out"
	give_up "gate: cluster up --fast-path"
}
# logged_off ID: replica ID said it withdrew the fast path.
logged_off() { grep -q 'msg="fast path off' "$cdir/replica-$1/log"; }
for i in 0 1 2 3; do
	check "gate: replica $i logs \"fast path off\" (its first judgement)" poll 20 logged_off "$i"
	check_eq "gate: replica $i: hypermesh_fast_path_allowed" "$(metric "$i" hypermesh_fast_path_allowed)" 0
done
normal_path_only "gate" 50 0 1 2 3
cluster down >/dev/null 2>&1

finish
