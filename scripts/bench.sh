#!/usr/bin/env bash
# make bench: benchmarks, not tests.  A 4-replica cluster in network
# namespaces, socket dataplane, closed-loop clients (8 and 32); batching on
# and off.  Each configuration runs RUNS times; the table shows medians.
# Results also go to build/bench.json.
#
#   BENCH_RUNS=3 BENCH_SECONDS=5 BENCH_CLIENTS="8 32" scripts/bench.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${BENCH_RUNS:-3}
seconds=${BENCH_SECONDS:-5}
client_counts=${BENCH_CLIENTS:-8 32}
out_json="$repo/build/bench.json"
dir=$(mktemp -d /tmp/hm-bench.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
trap 'cluster down >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }

# Peak resident memory (VmHWM, KiB) of each replica, the largest of them.
peak_rss_kib() {
  local max=0 pid v
  for i in 0 1 2 3; do
    pid=$(cat "$dir/replica-$i/pid")
    v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    [ "$v" -gt "$max" ] && max=$v
  done
  echo "$max"
}

# bench_config NAME CLIENTS [--set KEY=VALUE...]: one configuration, RUNS runs.
results=()
bench_config() {
  local name=$1 clients=$2; shift 2
  cluster up -n 4 --clients "$clients" "$@" >/dev/null
  local tput=() p50=() p99=()
  for r in $(seq "$runs"); do
    local line
    line=$(cluster exec hmctl bench --clients "$clients" --duration "$seconds" --op null | tail -1)
    tput+=("$(jq -r .ops_per_s <<<"$line")")
    p50+=("$(jq -r .p50_us <<<"$line")")
    p99+=("$(jq -r .p99_us <<<"$line")")
    echo "  $name run $r: $(jq -c '{ops_per_s, p50_us, p99_us}' <<<"$line")" >&2
  done
  local rss; rss=$(peak_rss_kib)
  cluster down >/dev/null
  results+=("$(jq -n --arg name "$name" --argjson clients "$clients" \
    --argjson t "$(printf '%s\n' "${tput[@]}" | median)" \
    --argjson p50 "$(printf '%s\n' "${p50[@]}" | median)" \
    --argjson p99 "$(printf '%s\n' "${p99[@]}" | median)" \
    --argjson rss "$rss" \
    '{config: $name, clients: $clients, ops_per_s: $t, p50_us: $p50, p99_us: $p99,
      peak_rss_kib: $rss}')")
}

echo "HyperMesh benchmark: n=4, socket dataplane, closed-loop clients ($client_counts), null ops," \
     "$runs runs of ${seconds}s each (medians)" >&2
for clients in $client_counts; do
  bench_config "batching on" "$clients" --set performance.batching_enabled=true
  bench_config "batching off" "$clients" --set performance.batching_enabled=false
done

json=$(printf '%s\n' "${results[@]}" | jq -s \
  --arg kernel "$(uname -r)" --arg cpus "$(nproc)" --argjson runs "$runs" \
  --argjson seconds "$seconds" \
  '{date: (now | todate), kernel: $kernel, cpus: ($cpus | tonumber), replicas: 4,
    dataplane: "socket", op: "null", runs: $runs, seconds: $seconds, results: .}')
mkdir -p "$(dirname "$out_json")"
echo "$json" >"$out_json"

printf '\n%-14s %8s %10s %9s %9s %15s\n' config clients ops/s p50_us p99_us peak_rss_MiB
jq -r '.results[] | [.config, .clients, .ops_per_s, .p50_us, .p99_us, (.peak_rss_kib / 1024 | . * 10 | round / 10)] | @tsv' \
  <<<"$json" | awk -F'\t' '{printf "%-14s %8d %10.0f %9d %9d %15.1f\n", $1, $2, $3, $4, $5, $6}'
# Ratios of batching on to off at each client count (results come in pairs).
jq -r '.results as $r | range(0; $r | length; 2) | "batching on / off, \($r[.].clients) clients: throughput x\($r[.].ops_per_s / $r[. + 1].ops_per_s * 100 | round / 100), p50 latency x\($r[.].p50_us / $r[. + 1].p50_us * 100 | round / 100)"' <<<"$json"
echo "written to $out_json"
