#!/usr/bin/env bash
# make demo: a 4-replica HyperMesh cluster in network namespaces, used for
# real: writes and reads, a load run, a crashed backup, and the replicas'
# own view of it all.  Everything it creates is removed at the end.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/hm-demo.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
trap 'cluster down >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

replicas() {
  printf '%-8s %-6s %-8s %-9s %-10s %-18s %s\n' replica view primary executed low_water state_digest drops
  for i in 0 1 2 3; do
    if ! s=$("$repo/build/hmctl" status --socket "$dir/replica-$i/control.sock" 2>/dev/null); then
      printf '%-8s (down)\n' "$i"; continue
    fi
    jq -r '[.id, .view, .primary, .last_executed, .low_watermark, .state_digest[0:16],
            ([.drops | to_entries[] | select(.value > 0) | "\(.key)=\(.value)"] | join(" "))]
           | @tsv' <<<"$s" | awk -F'\t' '{printf "%-8s %-6s %-8s %-9s %-10s %-18s %s\n", $1,$2,$3,$4,$5,$6,$7}'
  done
}

say "Start 4 replicas (f=1) on a bridge in network namespaces"
cluster up -n 4

say "Replicated writes and reads: each answer is accepted only with f+1=2 matching signed replies"
run cluster exec hmctl put greeting "hello, byzantine world"
run cluster exec hmctl get greeting
run cluster exec hmctl put counter 1
run cluster exec hmctl get counter

say "Load: 4 closed-loop clients for 3 seconds"
run cluster exec hmctl bench --clients 4 --duration 3 --op put

say "The replicas agree (same executed sequence, same state digest)"
sleep 0.5
replicas

say "A forged request and a bad MAC are refused and counted"
run cluster exec hmctl inject forged-sig --replica 0 --count 3
run cluster exec hmctl inject bad-mac --replica 0 --count 3
sleep 0.3
replicas

say "Crash backup 3 (kill -9): the other three still form a quorum of 2f+1"
run cluster kill 3
run cluster exec hmctl put after-crash "still here"
run cluster exec hmctl get after-crash
run cluster exec hmctl bench --clients 4 --duration 2 --op put
sleep 0.5
replicas

say "Done: tearing the cluster down"
cluster down
