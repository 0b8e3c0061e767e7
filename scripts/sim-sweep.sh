#!/usr/bin/env bash
# Run one randomized simulator case in K shards in parallel (HM_SIM_SHARD=i/K,
# one per core), show each shard's output, and print one closing line
# "N passed, N failed" (N = shards) with the wall time.  Extra environment
# (HM_SIM_SEEDS, HM_SIM_N, HM_TWINS_COUNT, HM_I17_PENDING, ...) passes through.
#
#   scripts/sim-sweep.sh K BINARY [CASE...]
set -uo pipefail
k=$1; shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
start=$(date +%s.%N)
pids=()
for ((i = 0; i < k; i++)); do
  HM_SIM_SHARD="$i/$k" "$@" >"$dir/$i.log" 2>&1 &
  pids+=($!)
done
passed=0 failed=0
for ((i = 0; i < k; i++)); do
  if wait "${pids[$i]}"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
for ((i = 0; i < k; i++)); do
  echo "--- shard $i/$k"
  grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$dir/$i.log"
done
# every shard prints "NAME: S seeds in T s, R seeds/s (shard i/k)"
awk -v t0="$start" -v t1="$(date +%s.%N)" '
  /seeds in .* s, .* seeds\/s \(shard/ { for (f = 1; f <= NF; f++) if ($f == "seeds" && $(f+1) == "in") n += $(f-1) }
  END { wall = t1 - t0; if (n) printf "     all shards: %d seeds in %.1f s wall, %.1f seeds/s\n", n, wall, n / wall }' \
  "$dir"/*.log
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
