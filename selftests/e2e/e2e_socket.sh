#!/usr/bin/env bash
# End-to-end suite in network namespaces: a real cluster of hypermeshd
# processes on a bridge, driven by hmctl from a client namespace.  Socket
# dataplane by default; selftests/e2e/e2e_xdp.sh runs the same suite with the
# XDP dataplane.
#
#   selftests/e2e/e2e_socket.sh            the suite (part of make test)
#   HM_E2E_OPS=N                       operations per run (default 1000)
#   HM_E2E_DATAPLANE=socket|xdp        the dataplane (default socket)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"

ops=${HM_E2E_OPS:-1000}
dataplane=${HM_E2E_DATAPLANE:-socket}
dir=$(mktemp -d /tmp/hm-e2e.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
cleanup() { cluster down >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

# status ID FIELD: one field of replica ID's status, by a jq path.
status() { "$repo/build/hmctl" status --socket "$dir/replica-$1/control.sock" | jq -r "$2"; }

# Wait until the given replicas executed the same sequence, then print
# their distinct state digests (one line when they agree).
settled_digests() {
  local ids=("$@") i last prev
  for _ in $(seq 50); do
    prev=""; last=same
    for i in "${ids[@]}"; do
      local e; e=$(status "$i" .last_executed)
      [ -n "$prev" ] && [ "$e" != "$prev" ] && last=differ
      prev=$e
    done
    [ "$last" = same ] && break
    sleep 0.2
  done
  for i in "${ids[@]}"; do status "$i" .state_digest; done | sort -u
}

bench_ops() { grep -o '"ops":[0-9]*' <<<"$1" | cut -d: -f2; }

# counter_reaches ID JQPATH VALUE: wait (up to 5 s: the machine may be busy)
# until replica ID's counter reaches VALUE, then print it.
counter_reaches() {
  local v
  for _ in $(seq 50); do
    v=$(status "$1" "$2")
    [ "$v" -ge "$3" ] 2>/dev/null && break
    sleep 0.1
  done
  echo "$v"
}

echo "# 4 replicas ($dataplane dataplane), 4 clients, $ops operations"
cluster up -n 4 --clients 8 --dataplane "$dataplane" >/dev/null || { fail "cluster up"; finish; exit 1; }
out=$(cluster exec hmctl bench --clients 4 --duration 60 --op put --ops "$ops")
check_eq "all $ops operations completed with f+1 matching replies" "$(bench_ops "$out")" "$ops"
check_eq "all replicas end with one state digest" "$(settled_digests 0 1 2 3 | wc -l)" 1
check_ge "replica 3 executed every batch" "$(status 3 .core.ops_executed)" "$ops"

echo "# put/get through hmctl"
check_eq "put answers OK" "$(cluster exec hmctl put colour blue)" OK
check_eq "get reads the value back" "$(cluster exec hmctl get colour)" blue
check_eq "get of a missing key" "$(cluster exec hmctl get no-such-key)" NOT_FOUND

echo "# one process per client identity"
# bench --clients 1 runs as client 100, hmctl's own identity (client.yaml):
# while it runs, a second hmctl under 100 is refused at once, naming it.
# The bench holds the identity once its puts execute: only then is a second
# process started (before, the second could take the identity first and
# refuse the bench instead: a race under load).
executed=$(status 0 .last_executed)
cluster exec hmctl bench --clients 1 --duration 6 --op put >"$dir/bench1.out" 2>&1 &
bench=$!
for _ in $(seq 100); do
  [ "$(status 0 .last_executed)" -gt "$executed" ] && break
  kill -0 "$bench" 2>/dev/null || break
  sleep 0.05
done
refused="" rc=0
for _ in $(seq 30); do
  err=$(cluster exec hmctl get colour 2>&1 >/dev/null); rc=$?
  [ "$rc" -ne 0 ] && { refused=$err; break; }
  sleep 0.1
done
check_ge "a second hmctl under identity 100 exits non-zero while the first runs" "$rc" 1
check "it says the identity is in use, and by which pid" \
  grep -q "client identity 100 is in use by pid [1-9]" <<<"$refused"
wait "$bench"
check_ge "the first one (bench) completed its operations" "$(bench_ops "$(cat "$dir/bench1.out")")" 1
check_eq "once it exits the identity is free again" "$(cluster exec hmctl get colour)" blue
check_eq "and writes go on (timestamps above the stored one)" "$(cluster exec hmctl put colour green)" OK
check_eq "reads see them" "$(cluster exec hmctl get colour)" green

echo "# misbehaving traffic is rejected and counted"
# Requests are MAC-only by default (security.signed_requests: false): no
# signature is looked at.  These five (a foreign key's signature, a valid
# MAC) reach replica 0 alone: one vouch of the 2f+1 a proposal needs, so
# they are never proposed, never executed, and time no view change.
before=$(status 0 .drops.bad_signature)
cluster exec hmctl inject forged-sig --replica 0 --count 5 >/dev/null
check_eq "the cluster still serves" "$(cluster exec hmctl put probe 1)" OK
check_eq "no request signature looked at" "$(status 0 .drops.bad_signature)" "$before"
check_eq "the five requests replica 0 alone got were not executed" \
  "$(cluster exec hmctl get forged 2>&1 | grep -c '^x$' || true)" 0
check_eq "and no view change for them" "$(status 1 .view)" 0
before=$(status 1 .drops.bad_mac)
cluster exec hmctl inject bad-mac --replica 1 --count 7 >/dev/null
check_eq "bad MACs counted" "$(counter_reaches 1 .drops.bad_mac $((before + 7)))" "$((before + 7))"
check_eq "no signature verified for a bad MAC" "$(status 1 .drops.bad_signature)" 0
before=$(status 2 .drops.stale)
cluster exec hmctl inject replay --replica 2 --count 3 >/dev/null
check_eq "replayed request counted as stale" \
  "$(counter_reaches 2 .drops.stale $((before + 3)))" "$((before + 3))"
cluster exec hmctl inject garbage --replica 0 --count 2000 >/dev/null
sleep 0.5
check "replica 0 survives 2000 garbage datagrams" kill -0 "$(cat "$dir/replica-0/pid")"
garbage=$(status 0 '[.drops.truncated, .drops.bad_magic, .drops.bad_type, .drops.bad_length, .drops.unknown_sender] | add')
check_ge "garbage counted as drops" "$garbage" 2000
check_eq "still serving after the garbage" "$(cluster exec hmctl put after garbage)" OK

echo "# a backup killed mid-run"
start=$(status 0 .core.ops_executed)
cluster exec hmctl bench --clients 4 --duration 60 --op put --ops "$((3 * ops))" >"$dir/bench.out" &
bench=$!
# Kill once the run is under way, so the kill lands in the middle of it.
for _ in $(seq 100); do
  [ "$(status 0 .core.ops_executed)" -ge $((start + ops / 2)) ] && break
  sleep 0.05
done
at_kill=$(status 2 .core.ops_executed)
cluster kill 2 >/dev/null
wait "$bench"
check_eq "all operations completed with replica 2 killed" "$(bench_ops "$(cat "$dir/bench.out")")" "$((3 * ops))"
check_ge "the kill came mid-run (ops executed after it)" \
  "$(( $(status 0 .core.ops_executed) - at_kill ))" "$((ops / 2))"
check_eq "the three live replicas agree" "$(settled_digests 0 1 3 | wc -l)" 1

echo "# SIGTERM stops a replica cleanly"
check "replica 3 stops on SIGTERM" cluster stop 3
check "it logged its shutdown" grep -q "shutting down" "$dir/replica-3/log"
check "it removed its control socket" test ! -e "$dir/replica-3/control.sock"
cluster down >/dev/null

echo "# a bad configuration is refused at start, naming file, line and key"
mkdir -p "$dir/bad"
printf 'byzantine_config:\n  consensus:\n    timeout_ms: soon\ncluster:\n  members: []\n' \
  >"$dir/bad/bad.yaml"
err=$("$repo/build/hypermeshd" -c "$dir/bad/bad.yaml" --id 0 2>&1); rc=$?
check_eq "hypermeshd exits 2 on a bad config" "$rc" 2
check "the error names file, line and key" \
  grep -q "bad.yaml:3: byzantine_config.consensus.timeout_ms" <<<"$err"

echo "# 7 replicas (f=2) with two backups down"
cluster up -n 7 --clients 4 --dataplane "$dataplane" >/dev/null || { fail "cluster up -n 7"; finish; exit 1; }
cluster kill 5 >/dev/null
cluster kill 6 >/dev/null
out=$(cluster exec hmctl bench --clients 4 --duration 60 --op put --ops 300)
check_eq "n=7: 300 operations with f=2 replicas down" "$(bench_ops "$out")" 300
check_eq "n=7: live replicas agree" "$(settled_digests 0 1 2 3 4 | wc -l)" 1
finish
