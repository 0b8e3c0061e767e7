#!/usr/bin/env bash
# End-to-end: failures that explain themselves, on a DNS cluster made by
# `scripts/cluster.sh up --dns` (NSD with the test zones, replica 3 behind a
# poisoning server):
#   - structured logs (key=value; JSON with --log-format json), SERVFAIL
#     with the validator's reason in the log and in the EDE text, the view
#     change with its reason;
#   - /metrics passes `promtool check metrics` and has the DNS families;
#   - contrib/monitoring: the alert rules pass `promtool check rules`, the
#     dashboard is JSON, and every metric either names is one a live
#     replica exports;
#   - peer states: a killed replica is "down" (never "byzantine"), stably
#     over several polls, and "up" again after a restart.
#
#   HM_E2E_DATAPLANE=socket|xdp   the dataplane (default socket)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

need_tools e2e_observability nsd ldns-signzone dig jq curl promtool python3 || give_up "tools"
[ -x "$repo/build/hypermeshd" ] || { echo "e2e_observability: make all first"; give_up "built"; }
hm_require_root || give_up "root"

dir=$(mktemp -d /tmp/hm-e2e-obs.XXXXXX)
cdir=$dir/cluster
mon=$repo/contrib/monitoring
cluster() { bash "$repo/scripts/cluster.sh" --dir "$cdir" "$@"; }
cleanup() {
	cluster down >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

addr() { printf '198.18.0.%s' "$(($1 + 1))"; }
d() { cluster exec dig @"$1" +time=6 +tries=1 "${@:2}" 2>&1; }
metrics() { cluster exec curl -s --max-time 5 "http://$(addr "$1"):9100/metrics"; }
status() { "$repo/build/hmctl" status --json --socket "$cdir/replica-$1/control.sock" 2>/dev/null | jq -r "$2"; }
not() { ! "$@"; }
peer_state() { status "$1" ".detection.peers[\"$2\"].state"; }
state_is() { [ "$(peer_state "$1" "$2")" = "$3" ]; }
logged() { grep -q -- "$2" "$cdir/replica-$1/log"; }

echo "# setup: cluster.sh up --dns --dns-poison 3"
HM_READY_TIMEOUT=30 cluster up --dns --dns-poison 3 --dataplane "${HM_E2E_DATAPLANE:-socket}" \
	--set consensus.view_change_timeout_ms=2000 >"$dir/up.out" 2>&1 || { cat "$dir/up.out"; give_up "cluster up --dns"; }
pass "setup"
check "up prints the DNS endpoints" grep -q "dns 198.18.0.1:53" "$dir/up.out"
check "up prints the metrics endpoints" grep -q "metrics http://198.18.0.1:9100/metrics" "$dir/up.out"
check "up prints the control sockets" grep -q "control $cdir/replica-0/control.sock" "$dir/up.out"

echo "# the main job: answers, the poisoned replica outvoted, a bogus name"
for i in 0 1 2 3; do
	out=$(d "$(addr "$i")" www.signed.hmtest A +dnssec)
	check "replica $i: signed name answered with AD" grep -q "flags: qr rd ra ad" <<<"$out"
done
out=$(d "$(addr 3)" www.unsigned.hmtest A +short)
check "the poisoned replica serves the agreed answer" grep -q 198.18.53.101 <<<"$out"
check "and never the poisoned one" not grep -q 198.18.66.66 <<<"$out"
out=$(d "$(addr 0)" www.bogus.hmtest A)
check "bogus: SERVFAIL" grep -q "status: SERVFAIL" <<<"$out"
check "bogus: the EDE text carries the validator's reason" \
	grep -qiE "EDE: 6 .*(signature|crypto|verif).*from 198\.18\.0\.53" <<<"$out"

echo "# structured logs"
check "replica 0 logs key=value lines" grep -qE '^ts=[0-9T:.-]+Z level=info prog=hypermeshd replica=0 msg="ready: replica 0 of 4' "$cdir/replica-0/log"
check "the SERVFAIL line has the query and the reason" \
	poll 10 logged 0 'msg=SERVFAIL query="www.bogus.hmtest. A" ede=6 rule=fail reason="replicas agree the answer fails: '

echo "# /metrics"
metrics 0 >"$dir/m0.txt"
check "promtool check metrics accepts a live replica's /metrics" sh -c "promtool check metrics <'$dir/m0.txt' >'$dir/lint.out' 2>&1 && ! [ -s '$dir/lint.out' ]"
[ -s "$dir/lint.out" ] && sed 's/^/    | /' "$dir/lint.out"
check "build_info" grep -qE '^hypermesh_build_info\{version="[^"]+"\} 1$' "$dir/m0.txt"
check "SERVFAILs counted by rule" grep -qE '^hypermesh_dns_answers_total\{rcode="SERVFAIL",rule="fail"\} [1-9]' "$dir/m0.txt"
check "NOERROR by rule (a)" grep -qE '^hypermesh_dns_answers_total\{rcode="NOERROR",rule="dnssec"\} [1-9]' "$dir/m0.txt"
check "upstream latency histogram" grep -qE '^hypermesh_dns_upstream_latency_seconds_count [1-9]' "$dir/m0.txt"
check "poisoning counted for replica 3" \
	poll 10 sh -c "$(declare -f metrics addr cluster); repo='$repo' cdir='$cdir'; metrics 0 | grep -qE '^hypermesh_dns_poisoned_observations_total\\{replica=\"3\"\\} [1-9]'"
check "no rate gauges" not grep -qE '^# TYPE [a-z_]*per_(second|hour) gauge' "$dir/m0.txt"

echo "# contrib/monitoring: alert rules and dashboard"
check "promtool check rules" promtool check rules "$mon/alerts.yml"
check "the dashboard is JSON with panels" sh -c "jq -e '.panels | length > 5' '$mon/grafana-dashboard.json' >/dev/null"
# Metric names the rules and the dashboard use, and those the replica exports
# (a histogram's series are NAME_bucket, NAME_sum, NAME_count).
used=$( { grep -oE 'hypermesh_[a-z_]+' "$mon/alerts.yml"; jq -r '.. | .expr? // empty' "$mon/grafana-dashboard.json" | grep -oE 'hypermesh_[a-z_]+'; } | sort -u)
exported=$(grep -oE '^hypermesh_[a-z_]+' "$dir/m0.txt" | sort -u)
missing=$(comm -23 <(printf '%s\n' "$used") <(printf '%s\n' "$exported"))
check_eq "every metric the rules and the dashboard use is exported" "$missing" ""
check "the rules use the peer-down and view-change metrics" \
	sh -c "grep -q 'hypermesh_peer_state{state=\"down\"}' '$mon/alerts.yml' && grep -q hypermesh_view_changes_started_total '$mon/alerts.yml'"

echo "# peer state: a killed replica is down, not Byzantine, and stays so"
cluster kill 2 >/dev/null
check "replica 0 sees replica 2 down" poll 60 state_is 0 2 down
stable=1
for _ in 1 2 3 4 5 6; do
	sleep 1
	s=$(peer_state 0 2)
	[ "$s" = down ] || { stable=0; echo "    poll: state $s"; }
	status 0 '.detection.suspected[]' | grep -qx 2 && { stable=0; echo "    poll: suspected"; }
done
check "down over six polls, never byzantine or suspected" [ "$stable" = 1 ]
check_eq "the proven-Byzantine list is empty" "$(status 0 '.detection.byzantine | length')" 0
check "the reason says unreachable" sh -c "$(declare -f status); repo='$repo' cdir='$cdir'; status 0 '.detection.peers[\"2\"].state_reason' | grep -q unreachable"
check "the status table shows it down" sh -c "'$repo/build/hmctl' status --table --socket '$cdir/replica-0/control.sock' | grep -qE '^2 +down '"
check "the status table has replica 0's trust in peer 1 (the trust graph), in [0, 1]" sh -c "'$repo/build/hmctl' status --table --socket '$cdir/replica-0/control.sock' | awk '\$1 == \"peer\" && \$9 == \"trust\" { h = 1 } h && \$1 == 1 && \$9 ~ /^[01]\\.[0-9]+\$/ && \$9 <= 1 { ok = 1 } END { exit !ok }'"
check "logged: peer down" logged 0 'msg="peer down" peer=2 state=down'
check "not logged: judged Byzantine" not grep -qi 'judged Byzantine' "$cdir/replica-0/log"
check "metrics: peer 2 down" sh -c "$(declare -f metrics addr cluster); repo='$repo' cdir='$cdir'; metrics 0 | grep -qx 'hypermesh_peer_state{peer=\"2\",state=\"down\"} 1'"

echo "# a restart brings it up; its log in JSON"
printf -- '--log-format\njson\n' >"$cdir/replica-2/extra-args"
off=$(stat -c %s "$cdir/replica-2/log")
cluster start 2 >/dev/null || fail "restart replica 2"
check "replica 0 sees replica 2 up again" poll 60 state_is 0 2 up
check "logged: peer up" logged 0 'msg="peer up" peer=2 state=up was=down'
tail -c "+$((off + 1))" "$cdir/replica-2/log" | grep '^{' >"$dir/r2.json"
check "replica 2 logs JSON lines" [ -s "$dir/r2.json" ]
check "every JSON line parses, with ts, level, msg and replica 2" \
	sh -c "jq -e -s 'all(.[]; .ts and .level and .msg and .replica == 2)' '$dir/r2.json' >/dev/null"
rm -f "$cdir/replica-2/extra-args"

echo "# a view change logged with its reason: the primary (replica 0) killed under load"
cluster kill 0 >/dev/null
d "$(addr 1)" fresh1.unsigned.hmtest A >/dev/null
check "a backup logged the view change and why" \
	poll 60 sh -c "grep -hE 'msg=\"view change\" old_view=0 new_view=1 reason=(request_timeout|f\\+1_higher_views)' '$cdir'/replica-[123]/log | grep -q ."
check "one logged the request timeout (the primary did not order it)" \
	grep -qhE 'msg="view change" old_view=0 new_view=1 reason=request_timeout' "$cdir"/replica-1/log "$cdir"/replica-2/log "$cdir"/replica-3/log
check "view installed" poll 30 sh -c "grep -qh 'msg=\"view installed\" view=1' '$cdir'/replica-[123]/log"
out=$(d "$(addr 1)" www.signed.hmtest A +short)
check "the resolver serves in the new view" grep -q 198.18.53.80 <<<"$out"
metrics 1 >"$dir/m1.txt"
check "metrics: view changes by reason" grep -qE '^hypermesh_view_changes_started_total\{reason="(request_timeout|f\+1_higher_views)"\} [1-9]' "$dir/m1.txt"

finish
