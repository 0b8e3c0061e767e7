#!/usr/bin/env bash
# End-to-end suite for the link layer (docs/wire-format.md, "Sealed
# payloads"): a 4-replica cluster with network.encryption_required and
# network.message_compression on, once in socket mode and once in xdp mode.
# Writes commit and read back; a capture of the switch (tcpdump, every
# bridge port) shows every replica-to-replica payload sealed and a known
# value nowhere between replicas, while the same value is seen from the
# client (so the capture would have caught it); no link refusal is counted.
#
#   HM_E2E_LINK_OPS=N   bench operations per run (default 400)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"

ops=${HM_E2E_LINK_OPS:-400}
base=$(mktemp -d /tmp/hm-e2e-lc.XXXXXX)
dir=""
tcpdump_pid=""
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
status() { "$repo/build/hmctl" status --socket "$dir/replica-$1/control.sock" | jq -r "$2"; }
stop_capture() {
  [ -n "$tcpdump_pid" ] || return 0
  kill "$tcpdump_pid" 2>/dev/null
  wait "$tcpdump_pid" 2>/dev/null
  tcpdump_pid=""
}
cleanup() {
  stop_capture
  [ -n "$dir" ] && cluster down >/dev/null 2>&1
  rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v tcpdump >/dev/null || { fail "tcpdump missing (make deps)"; finish; exit 1; }

# wait_for SECONDS CMD...: poll until CMD succeeds.
wait_for() {
  local until=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $until ] || return 1; sleep 0.1; done
}

settled() {
  local e0 e; e0=$(status 0 .last_executed)
  for i in 1 2 3; do e=$(status "$i" .last_executed); [ "$e" = "$e0" ] || return 1; done
  [ "$(for i in 0 1 2 3; do status "$i" .state_digest; done | sort -u | wc -l)" = 1 ]
}

link_drops() {
  local sum=0 i r
  for i in 0 1 2 3; do
    for r in bad_seal not_encrypted bad_compression inflated_oversize; do
      sum=$((sum + $(status "$i" ".drops.$r")))
    done
  done
  echo "$sum"
}

run() {
  local dp=$1 prefix marker out counts
  dir="$base/$dp"
  marker="lc-marker-$dp-$RANDOM$RANDOM"
  echo "# $dp dataplane: encryption_required and message_compression on"
  cluster up -n 4 --clients 8 --dataplane "$dp" --set network.encryption_required=true \
    --set network.message_compression=true >"$dir.up.log" 2>&1 ||
    { sed 's/^/    | /' "$dir.up.log"; fail "$dp: cluster up"; dir=""; return; }
  pass "$dp: cluster up with both options"
  check_eq "$dp: status reports encryption on" "$(status 0 .link.encryption)" true
  prefix=$(source "$dir/state.env" && echo "$HM_PREFIX")
  ip netns exec "$prefix-sw" tcpdump -i any -U -B 16384 -n -s 0 -w "$dir.pcap" udp \
    2>"$dir.tcpdump.log" &
  tcpdump_pid=$!
  check "$dp: capture on the switch started" wait_for 10 grep -q "listening on" "$dir.tcpdump.log"

  # The marker first, while the capture's buffer is empty: behind the load
  # on a busy machine tcpdump can fall behind and the kernel drop it.
  check_eq "$dp: put of the marker" "$(cluster exec hmctl put lc-secret "$marker")" OK
  check_eq "$dp: get reads it back" "$(cluster exec hmctl get lc-secret)" "$marker"
  out=$(cluster exec hmctl bench --clients 4 --duration 60 --op put --ops "$ops")
  check_eq "$dp: $ops puts completed with f+1 matching replies" \
    "$(grep -o '"ops":[0-9]*' <<<"$out" | cut -d: -f2)" "$ops"
  check "$dp: replicas settle on one state digest" wait_for 20 settled
  stop_capture

  counts=$(python3 "$here/lib/pcap_link.py" "$dir.pcap" 198.18.0.1 198.18.0.2 198.18.0.3 \
    198.18.0.4 -- "$marker")
  echo "    capture: $counts"
  count() { sed -n "s/.* \?$1=\([0-9]*\).*/\1/p" <<<" $counts"; }
  check_ge "$dp: replica datagrams with payloads captured" "$(count with_payload)" 10
  check_eq "$dp: none of them in plaintext" "$(count plain)" 0
  check_eq "$dp: the marker never crosses a replica link" "$(count marker_replica)" 0
  check_ge "$dp: ... but is seen from the client (the capture works)" "$(count marker_client)" 1
  check_ge "$dp: some payloads compressed on the wire" "$(count compressed)" 1
  check_ge "$dp: the primary counts sealed sends" "$(status 0 .link.sealed)" 1
  check_eq "$dp: no link refusal on any replica" "$(link_drops)" 0
  cluster down >/dev/null 2>&1
  dir=""
}

run socket
run xdp
finish
