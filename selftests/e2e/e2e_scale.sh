#!/usr/bin/env bash
# The largest cluster at the specification's f: n = 31 replicas (f = 10) in
# network namespaces.  It commits writes; with f - 1 backups killed it still
# commits; then its primary is killed too (f replicas down, exactly 2f+1
# left): the survivors change view and commit again, and agree on one state.
#
#   selftests/e2e/e2e_scale.sh          n = 31, socket dataplane (make test)
#   HM_E2E_SCALE_N=16|31|...            the cluster size (3f+1, up to 31)
#   HM_E2E_DATAPLANE=socket|xdp         the dataplane (default socket)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"

n=${HM_E2E_SCALE_N:-31}
f=$(((n - 1) / 3))
dataplane=${HM_E2E_DATAPLANE:-socket}
dir=$(mktemp -d /tmp/hm-e2e-scale.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
cleanup() { cluster down >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

status() { "$repo/build/hmctl" status --socket "$dir/replica-$1/control.sock" | jq -r "$2"; }
bench_ops() { grep -o '"ops":[0-9]*' <<<"$1" | cut -d: -f2; }

# put_until_ok KEY VALUE SECONDS: one client write, retried (each try waits
# up to 10 s for f+1 replies) until it answers OK or SECONDS pass; prints
# the last answer.  A view change can outlast a single try.
put_until_ok() {
  local end=$((SECONDS + $3)) out=""
  while [ "$SECONDS" -lt "$end" ]; do
    out=$(cluster exec hmctl put "$1" "$2" 2>&1) && [ "$out" = OK ] && break
  done
  echo "$out"
}


echo "# $n replicas (f = $f, $dataplane dataplane)"
HM_READY_TIMEOUT=${HM_READY_TIMEOUT:-120} cluster up -n "$n" --clients 4 --dataplane "$dataplane" \
  >"$dir/up.log" 2>&1 || { fail "cluster up"; tail -20 "$dir/up.log"; finish; exit 1; }
out=$(cluster exec hmctl bench --clients 4 --duration 120 --op put --ops 100)
check_eq "100 writes committed with f+1 matching replies" "$(bench_ops "$out")" 100
check_eq "all $n replicas end with one state digest" "$(settled_digests $(seq 0 $((n - 1))) | wc -l)" 1
check_eq "replica $((n - 1)) (the top voter bit) executed them" \
  "$(status $((n - 1)) .core.ops_executed)" "$(status 0 .core.ops_executed)"
check_eq "replica 0 runs the $dataplane dataplane" "$(status 0 .dataplane)" "$dataplane"
check_ge "replica 0 accepted messages from replica $((n - 1))" \
  "$(status 0 ".peers[\"$((n - 1))\"].accepted")" 1
if [ "$dataplane" = xdp ]; then
  # The widened maps: node_stats counts the top id in XDP, and the TC
  # fan-out holds every peer of replica 0 in its (u32) peer bitmap.
  check_ge "XDP node_stats at replica 0 count replica $((n - 1))'s messages" \
    "$(status 0 ".xdp.node_stats[\"$((n - 1))\"].total_messages")" 100
  check_eq "TC fan-out peers of replica 0: ids 1..$((n - 1))" "$(status 0 .xdp.fanout_peers)" \
    "$(((1 << n) - 2))"
  check_ge "TC fan-out copies sent" "$(status 0 .xdp.tc_stats.copies)" 100
fi

echo "# $((f - 1)) backups killed: $((n - f + 1)) left, one more than 2f+1"
for ((i = n - f + 1; i < n; i++)); do cluster kill "$i" >/dev/null; done
check_eq "a write commits" "$(put_until_ok colour blue 60)" OK
check_eq "and reads back" "$(cluster exec hmctl get colour)" blue

# The primary now: 0, or (if the kills above cost a request timeout) the
# one of a later view.
primary=$(status 1 .primary)
view=$(status 1 .view)
echo "# the primary ($primary, view $view) killed too: f = $f down, exactly 2f+1 = $((2 * f + 1)) left"
check "the primary $primary is live" kill -0 "$(cat "$dir/replica-$primary/pid")"
cluster kill "$primary" >/dev/null
live=()
for ((i = 0; i <= n - f; i++)); do [ "$i" != "$primary" ] && live+=("$i"); done
check_eq "a write commits after the view change" "$(put_until_ok colour green 120)" OK
check_eq "it reads back" "$(cluster exec hmctl get colour)" green
for i in "${live[0]}" "${live[-1]}"; do
  check_ge "replica $i installed a view above $view" "$(status "$i" .view)" $((view + 1))
  check_ge "replica $i counted view changes" "$(status "$i" .core.view_changes_installed)" 1
done
check "the new primary is not replica $primary" test "$(status "${live[0]}" .primary)" != "$primary"
out=$(cluster exec hmctl bench --clients 4 --duration 120 --op put --ops 50)
check_eq "50 more writes commit in the new view" "$(bench_ops "$out")" 50
check_eq "the ${#live[@]} survivors agree on one state" "$(settled_digests "${live[@]}" | wc -l)" 1

finish
