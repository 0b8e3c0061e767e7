#!/usr/bin/env bash
# Throughput, latency and memory against the cluster size: n = 4, 7, 16 and
# 31 replicas (f = 1, 2, 5, 10) in network namespaces, closed-loop clients,
# null operations, in each dataplane.  Part 8 of `make bench`; alone:
#
#   scripts/bench_scale.sh [--ns "4 7 16 31"] [--dataplanes "socket xdp"]
#
# Per replica: resident memory (VmRSS after the runs, and VmHWM, the peak),
# averaged over the replicas, and in xdp mode the BPF maps the replica
# loaded (the kernel's memlock accounting of its pinned maps, bpftool).
# Figures are medians of BENCH_RUNS runs of BENCH_SECONDS each with
# BENCH_CLIENTS clients (defaults 3, 5, 32).  The last line of output is
# the JSON object {"scale": [...]}, also written to build/bench_scale.json.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${BENCH_RUNS:-3}
seconds=${BENCH_SECONDS:-5}
clients=${BENCH_CLIENTS:-32}
ns="4 7 16 31"
dataplanes="socket xdp"
while [ $# -gt 0 ]; do
  case "$1" in
  --ns) ns=$2; shift 2 ;;
  --dataplanes) dataplanes=$2; shift 2 ;;
  *) echo "usage: $0 [--ns \"4 7 16 31\"] [--dataplanes \"socket xdp\"]" >&2; exit 2 ;;
  esac
done
dir=$(mktemp -d /tmp/hm-bench-scale.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
trap 'cluster down >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }
status() { "$repo/build/hmctl" status --socket "$dir/replica-$1/control.sock"; }

# mean_kib N FIELD: the mean of /proc/PID/status FIELD (kB) over replicas.
mean_kib() {
  local i sum=0
  for ((i = 0; i < $1; i++)); do
    sum=$((sum + $(awk -v f="$2:" '$1 == f {print $2}' "/proc/$(cat "$dir/replica-$i/pid")/status")))
  done
  echo $((sum / $1))
}

# Bytes of BPF maps replica 0 pinned (xdp mode; 0 in socket mode).
map_bytes() {
  local pins sum=0 f b
  pins=$(status 0 | jq -r '.xdp.pin_dir // empty')
  [ -n "$pins" ] || { echo 0; return; }
  for f in $(cluster exec-replica 0 find "$pins" -maxdepth 1 -type f 2>/dev/null); do
    b=$(cluster exec-replica 0 bpftool -j map show pinned "$f" 2>/dev/null | jq -r '.bytes_memlock // 0') || b=0
    sum=$((sum + ${b:-0}))
  done
  echo "$sum"
}

rows=()
for plane in $dataplanes; do
  for n in $ns; do
    echo "# n = $n ($plane), $clients clients" >&2
    HM_READY_TIMEOUT=${HM_READY_TIMEOUT:-120} cluster up -n "$n" --clients "$clients" \
      --dataplane "$plane" >/dev/null
    tput=() p50=() p99=()
    for r in $(seq "$runs"); do
      line=$(cluster exec hmctl bench --clients "$clients" --duration "$seconds" --op null | tail -1)
      tput+=("$(jq -r .ops_per_s <<<"$line")")
      p50+=("$(jq -r .p50_us <<<"$line")")
      p99+=("$(jq -r .p99_us <<<"$line")")
      echo "  run $r: $(jq -c '{ops_per_s, p50_us, p99_us}' <<<"$line")" >&2
    done
    rss=$(mean_kib "$n" VmRSS) hwm=$(mean_kib "$n" VmHWM) maps=$(map_bytes)
    cluster down >/dev/null
    rows+=("$(jq -n --argjson n "$n" --arg plane "$plane" --argjson clients "$clients" \
      --argjson t "$(printf '%s\n' "${tput[@]}" | median)" \
      --argjson p50 "$(printf '%s\n' "${p50[@]}" | median)" \
      --argjson p99 "$(printf '%s\n' "${p99[@]}" | median)" \
      --argjson rss "$rss" --argjson hwm "$hwm" --argjson maps "$maps" \
      '{n: $n, f: (($n - 1) / 3 | floor), dataplane: $plane, clients: $clients,
        ops_per_s: $t, p50_us: $p50, p99_us: $p99, rss_kib_mean: $rss,
        peak_rss_kib_mean: $hwm, bpf_map_bytes: $maps}')")
  done
done

json=$(printf '%s\n' "${rows[@]}" | jq -sc '{scale: .}')
mkdir -p "$repo/build"
echo "$json" >"$repo/build/bench_scale.json"
printf '%-4s %-3s %-7s %8s %9s %9s %9s %10s %9s\n' n f plane ops/s p50_us p99_us RSS_MiB peak_MiB maps_MiB >&2
jq -r '.scale[] | [.n, .f, .dataplane, .ops_per_s, .p50_us, .p99_us, (.rss_kib_mean / 1024),
  (.peak_rss_kib_mean / 1024), (.bpf_map_bytes / 1048576)] | @tsv' <<<"$json" |
  awk -F'\t' '{printf "%-4d %-3d %-7s %8.0f %9d %9d %9.1f %10.1f %9.1f\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}' >&2
echo "$json"
