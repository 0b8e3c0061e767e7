#!/usr/bin/env bash
# Recovery time of a restarted replica against the number of operations
# since its last checkpoint (the committed-log records it must replay).
# A 4-replica cluster in namespaces with batching off (one op a batch) and
# checkpoints every 5000 batches; for each N, bring the group to N batches
# past its last checkpoint, kill -9 replica 3, restart it, and read the time
# hm_node_open_state took from its log line "recovered: ...".
#
#   scripts/bench_recovery.sh                 (make bench calls it)
#   BENCH_RECOVERY_POINTS="0 1000 2000 4000"  the values of N
# Prints a table and writes build/bench_recovery.json.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
points=${BENCH_RECOVERY_POINTS:-"0 500 1000 2000 4000"}
interval=5000
out_json="$repo/build/bench_recovery.json"
dir=$(mktemp -d /tmp/hm-bench-rec.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
trap 'cluster down >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM
status() { "$repo/build/hmctl" status --socket "$dir/replica-$1/control.sock" | jq -r "$2"; }

cluster up -n 4 --clients 8 --set performance.batching_enabled=false \
  --set consensus.checkpoint_interval=$interval --set consensus.watermark_window=$interval >/dev/null

printf '%-12s %-14s %-14s %s\n' "ops_since_cp" "records" "last_seq" "recovery_ms"
json="["
for n in $points; do
  have=$(status 0 .last_executed)
  want=$(( (have / interval) * interval + n ))
  [ "$want" -lt "$have" ] && want=$(( ((have / interval) + 1) * interval + n ))
  if [ "$want" -gt "$have" ]; then
    cluster exec hmctl bench --clients 8 --duration 300 --op put --ops $(( want - have )) >/dev/null
  fi
  # let replica 3 execute what the others did
  for _ in $(seq 50); do
    [ "$(status 3 .last_executed)" = "$(status 0 .last_executed)" ] && break
    sleep 0.1
  done
  cluster kill 3 >/dev/null
  cluster start 3 >/dev/null
  line=$(grep "recovered:" "$dir/replica-3/log" | tail -1)
  records=$(sed -n 's/.*, \([0-9]*\) log records replayed.*/\1/p' <<<"$line")
  last=$(sed -n 's/.*last executed \([0-9]*\),.*/\1/p' <<<"$line")
  ms=$(sed -n 's/.* in \([0-9.]*\) ms.*/\1/p' <<<"$line")
  printf '%-12s %-14s %-14s %s\n' "$n" "$records" "$last" "$ms"
  [ "$json" != "[" ] && json+=","
  json+="{\"ops_since_checkpoint\":$n,\"records_replayed\":${records:-0},\"last_seq\":${last:-0},\"recovery_ms\":${ms:-0}}"
done
json+="]"
mkdir -p "$(dirname "$out_json")"
echo "$json" | jq . >"$out_json"
echo "wrote $out_json"
