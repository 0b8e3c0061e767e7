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

# agree IDS...: wait (up to 20 s) until the replicas executed the same
# sequence, then print how many distinct state digests they hold.
agree() {
  local i e prev same
  for _ in $(seq 100); do
    prev="" same=1
    for i in "$@"; do
      e=$(status "$i" .last_executed)
      [ -n "$prev" ] && [ "$e" != "$prev" ] && same=0
      prev=$e
    done
    [ "$same" = 1 ] && break
    sleep 0.2
  done
  for i in "$@"; do status "$i" .state_digest; done | sort -u | wc -l
}

echo "# $n replicas (f = $f, $dataplane dataplane)"
HM_READY_TIMEOUT=${HM_READY_TIMEOUT:-120} cluster up -n "$n" --clients 4 --dataplane "$dataplane" \
  >"$dir/up.log" 2>&1 || { fail "cluster up"; tail -20 "$dir/up.log"; finish; exit 1; }
out=$(cluster exec hmctl bench --clients 4 --duration 120 --op put --ops 100)
check_eq "100 writes committed with f+1 matching replies" "$(bench_ops "$out")" 100
check_eq "all $n replicas end with one state digest" "$(agree $(seq 0 $((n - 1))))" 1
check_eq "replica $((n - 1)) (the top voter bit) executed them" \
  "$(status $((n - 1)) .core.ops_executed)" "$(status 0 .core.ops_executed)"
if [ "$dataplane" = xdp ]; then
  # The XDP program counted the votes: its quorum events name voter ids
  # across the whole u32 bitmap.
  check_ge "XDP quorum events at replica $((n - 1))" \
    "$(status $((n - 1)) '.dataplane.quorum_events // .dataplane.votes.quorum_events // 0')" 1
fi

echo "# $((f - 1)) backups killed: $((n - f + 1)) left, one more than 2f+1"
for ((i = n - f + 1; i < n; i++)); do cluster kill "$i" >/dev/null; done
check_eq "a write commits" "$(put_until_ok colour blue 60)" OK
check_eq "and reads back" "$(cluster exec hmctl get colour)" blue

echo "# the primary (0) killed too: f = $f down, exactly 2f+1 = $((2 * f + 1)) left"
check_eq "replica 0 is the primary" "$(status 1 .primary)" 0
cluster kill 0 >/dev/null
check_eq "a write commits after the view change" "$(put_until_ok colour green 120)" OK
check_eq "it reads back" "$(cluster exec hmctl get colour)" green
live=$(seq 1 $((n - f)))
for i in 1 $((n - f)); do
  check_ge "replica $i installed a new view" "$(status "$i" .view)" 1
  check_ge "replica $i counted the view change" "$(status "$i" .core.view_changes_installed)" 1
done
check "the new primary is not replica 0" test "$(status 1 .primary)" != 0
out=$(cluster exec hmctl bench --clients 4 --duration 120 --op put --ops 50)
check_eq "50 more writes commit in the new view" "$(bench_ops "$out")" 50
# shellcheck disable=SC2086
check_eq "the $((2 * f + 1)) survivors agree on one state" "$(agree $live)" 1

finish
