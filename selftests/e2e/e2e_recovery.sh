#!/usr/bin/env bash
# End-to-end recovery suite: a real cluster of hypermeshd processes in
# network namespaces (scripts/cluster.sh), each persisting its checkpoints
# and committed log under its data dir (replica-I/state).
#
#   1. kill -9 a replica at random moments under load, several times, and
#      restart it: it recovers from its files, catches up, and every replica
#      ends with the same state digest (the KV contents) and executed seq;
#      keys written before each kill read back unchanged.  Then the same for
#      the primary (the group changes view: docs/protocol.md, "Recovery").
#   2. a replica stopped for longer than a watermark window catches up by
#      state transfer; again while replica 0 serves corrupted chunks
#      (--byzantine bad-chunk): caught by their Merkle proofs, replica 0
#      blamed, the state fetched from the others.
#   3. a corrupted checkpoint file is detected at restart and repaired (the
#      replica fetches the state and rewrites its files).
#
#   HM_E2E_KILLS=N     kill/restart rounds in part 1 (default 3; soak: more)
#   HM_E2E_DATAPLANE=socket|xdp   the dataplane (default socket)
#   HM_E2E_SEED=N      seed of the kill moments (printed)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"

kills=${HM_E2E_KILLS:-3}
dataplane=${HM_E2E_DATAPLANE:-socket}
seed=${HM_E2E_SEED:-$$}
RANDOM=$seed
dir=$(mktemp -d /tmp/hm-e2e-rec.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
cleanup() { cluster down >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

status() { "$repo/build/hmctl" status --socket "$dir/replica-$1/control.sock" 2>/dev/null | jq -r "$2"; }
quiet() { "$@" >/dev/null; }
bench_ops() { grep -o '"ops":[0-9]*' <<<"$1" | cut -d: -f2; }

# Wait until the replicas executed the same seq; print their distinct digests.
settled_digests() {
  local ids=("$@") i prev same
  for _ in $(seq 100); do
    prev=""; same=1
    for i in "${ids[@]}"; do
      local e; e=$(status "$i" .last_executed)
      [ -n "$prev" ] && [ "$e" != "$prev" ] && same=0
      prev=$e
    done
    [ "$same" = 1 ] && break
    cluster exec hmctl put tick "$RANDOM" >/dev/null 2>&1
    sleep 0.2
  done
  for i in "${ids[@]}"; do status "$i" .state_digest; done | sort -u
}

echo "# seed $seed (HM_E2E_SEED replays the kill moments)"
echo "# 4 replicas ($dataplane dataplane), checkpoint every 20 batches, window 40"
cluster up -n 4 --clients 8 --dataplane "$dataplane" --set consensus.checkpoint_interval=20 \
  --set consensus.watermark_window=40 >/dev/null || { fail "cluster up"; finish; exit 1; }

echo "# part 1: kill -9 replica 2 at random moments under load, $kills times"
for round in $(seq "$kills"); do
  check_eq "round $round: marker written" "$(cluster exec hmctl put "marker-$round" "v$round")" OK
  cluster exec hmctl bench --clients 4 --duration 60 --op put --ops 600 >"$dir/bench.out" 2>&1 &
  bench=$!
  sleep "0.$((RANDOM % 9 + 1))"
  cluster kill 2 >/dev/null
  sleep "0.$((RANDOM % 9 + 1))"
  check "round $round: replica 2 restarts" quiet cluster start 2
  wait "$bench"
  check_eq "round $round: 600 operations completed" "$(bench_ops "$(cat "$dir/bench.out")")" 600
  check_eq "round $round: replica 2 recovered its files" "$(status 2 .recovery.status)" ok
  check_eq "round $round: and took back every vote record it wrote" \
    "$(status 2 .recovery.vote_records_malformed)" 0
done
check_eq "all four replicas end with one state digest" "$(settled_digests 0 1 2 3 | wc -l)" 1
for round in $(seq "$kills"); do
  check_eq "marker $round reads back unchanged" "$(cluster exec hmctl get "marker-$round")" "v$round"
done
check_eq "replica 2 never held its replies" "$(status 2 .recovery.replies_held)" 0

echo "# part 1b: kill -9 the primary under load and restart it"
start=$(status 1 .core.ops_executed)
cluster exec hmctl bench --clients 4 --duration 60 --op put --ops 600 >"$dir/bench.out" 2>&1 &
bench=$!
# The kill must land mid-run: after some operations executed, and not so
# late that the run is over (then nothing is pending, no view change is
# due, and the restarted primary, which does not lead the view it recovered,
# would leave the group without a proposer until a request times out).
for _ in $(seq 200); do
  [ "$(status 1 .core.ops_executed)" -ge $((start + 50 + RANDOM % 100)) ] && break
  sleep 0.02
done
cluster kill 0 >/dev/null
check "the primary restarts" quiet cluster start 0
wait "$bench"
check_eq "600 operations completed across the primary's restart" \
  "$(bench_ops "$(cat "$dir/bench.out")")" 600
check_ge "the group moved to a new view (the restarted primary does not lead its old one)" \
  "$(status 1 .view)" 1
check_eq "the restarted primary's vote log recovered intact" "$(status 0 .recovery.vote_log)" ok
check_eq "so it votes at once: no silent rule" "$(status 0 .recovery.restart_silent)" false
echo "# vote log: $(status 1 .recovery.vote_syncs) fdatasyncs in $(status 1 .recovery.readies) Readies at replica 1" >&2
check_eq "all four agree after the primary's restart" "$(settled_digests 0 1 2 3 | wc -l)" 1

# behind_a_window: replica 3 down while the others move more than a window
# on, then back: it catches up by state transfer.
behind_a_window() {
  local out low behind
  cluster kill 3 >/dev/null
  out=$(cluster exec hmctl bench --clients 4 --duration 60 --op put --ops 400)
  check_eq "400 operations with replica 3 down" "$(bench_ops "$out")" 400
  low=$(status 1 .low_watermark)
  check "replica 3 restarts" quiet cluster start 3
  # what it recovered from its own files (it may already be catching up)
  behind=$(( low - $(status 3 .recovery.recovered_seq) ))
  check_ge "it came back more than a window behind" "$behind" 41
  cluster exec hmctl bench --clients 2 --duration 60 --op put --ops 100 >/dev/null
  check_eq "the four agree after it catches up" "$(settled_digests 0 1 2 3 | wc -l)" 1
  check_ge "replica 3 fetched the state by state transfer" \
    "$(status 3 .recovery.state_transfers_done)" 1
}

echo "# part 2: replica 3 down for longer than a window"
behind_a_window

echo "# part 2b: the same, with replica 0 serving corrupted state chunks (bad-chunk)"
# Its chunks carry data re-hashed and re-signed, so only their Merkle proofs
# catch them; the fetcher asks the lowest id first.
printf '%s\n' --byzantine bad-chunk --i-know-this-is-a-test >"$dir/replica-0/extra-args"
cluster stop 0 >/dev/null
check "replica 0 restarts serving bad chunks" quiet cluster start 0
behind_a_window
check_ge "it caught a bad chunk" "$(status 3 .recovery.state_bad_chunks)" 1
check_eq "and blamed replica 0 (only)" "$(status 3 .recovery.state_blamed)" 1
rm -f "$dir/replica-0/extra-args"
cluster stop 0 >/dev/null
check "replica 0 restarts as a correct replica" quiet cluster start 0

echo "# part 3: a corrupted checkpoint file"
cluster kill 1 >/dev/null
cp=$(ls "$dir/replica-1/state"/checkpoint-*.hmc | tail -1)
check "replica 1 has a checkpoint file" test -f "$cp"
size=$(stat -c %s "$cp")
printf '\xff' | dd of="$cp" bs=1 seek=$((size / 2)) conv=notrunc status=none
cluster exec hmctl bench --clients 4 --duration 60 --op put --ops 200 >/dev/null
check "replica 1 restarts" quiet cluster start 1
check_eq "the damage is detected" "$(status 1 .recovery.status)" corrupt
cluster exec hmctl bench --clients 4 --duration 60 --op put --ops 200 >/dev/null
check_eq "the four agree after the repair" "$(settled_digests 0 1 2 3 | wc -l)" 1
for _ in $(seq 50); do
  [ "$(status 1 .recovery.persist_degraded)" = false ] && break
  cluster exec hmctl put tick "$RANDOM" >/dev/null 2>&1
  sleep 0.2
done
check_eq "its files are repaired (appends accepted again)" "$(status 1 .recovery.persist_degraded)" false
cluster kill 1 >/dev/null
check "replica 1 restarts once more" quiet cluster start 1
check_eq "and now its files are valid" "$(status 1 .recovery.status)" ok
finish
