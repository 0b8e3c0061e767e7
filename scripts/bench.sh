#!/usr/bin/env bash
# make bench: benchmarks, not tests.  Prints figures and ratios, writes
# build/bench.json.  Four parts, in one run:
#
#   1. hm_xdp per packet, by message type (BPF_PROG_TEST_RUN), and the
#      memory its maps take (build/bench_xdp).
#   2. The same 4-replica cluster and load in socket mode and in xdp mode:
#      throughput, p50 and p99 latency, and their ratios.
#   3. Flood: while the clients run, an attacker namespace sends forged
#      COMMITs to the primary as fast as it can; goodput as a fraction of
#      the unflooded figure, in both modes.
#   4. Batching on and off (socket mode), 8 and 32 clients; 4b. the link
#      layer (network.encryption_required, message_compression) on, in
#      socket mode one at a time and both, and both in xdp mode.
#   5. View-change latency: the primary killed until the first commit in
#      the new view, p50 and p99 (scripts/bench_viewchange.sh), in both
#      dataplanes; and recovery time of a restarted replica against the
#      operations since its last checkpoint (scripts/bench_recovery.sh).
#   6. DNS: dnsperf against one replica of a 4-replica cluster with
#      byzantine_config.dns and against plain Unbound, cache hits and misses,
#      the latency agreement adds to a miss (scripts/bench_dns.sh).
#   8. Scale: throughput, p50/p99 and memory per replica (RSS, BPF maps)
#      at n = 4, 7, 16 and 31 in both dataplanes (scripts/bench_scale.sh).
#
# Every cluster figure is the median of RUNS runs of SECONDS each; closed-loop
# clients, null operations, n = 4 replicas in network namespaces.
#
#   BENCH_RUNS=3 BENCH_SECONDS=5 BENCH_CLIENTS=32 scripts/bench.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${BENCH_RUNS:-3}
seconds=${BENCH_SECONDS:-5}
clients=${BENCH_CLIENTS:-32}
out_json="$repo/build/bench.json"
dir=$(mktemp -d /tmp/hm-bench.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
trap 'cluster down >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

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

# run_load CLIENTS [flood]: one bench run, its JSON line; with `flood`, the
# attacker floods the primary for the whole run.
run_load() {
  local n=$1 flood=${2:-} line attacker=""
  if [ -n "$flood" ]; then
    cluster exec-attacker hmctl inject forged-vote --replica 0 --duration "$((seconds + 1))" \
      >"$dir/flood.out" 2>&1 &
    attacker=$!
    sleep 0.3
  fi
  line=$(cluster exec hmctl bench --clients "$n" --duration "$seconds" --op null | tail -1)
  [ -n "$attacker" ] && wait "$attacker"
  echo "$line"
}

# bench_config NAME CLIENTS FLOOD [cluster up options...]: RUNS runs, medians.
results=()
bench_config() {
  local name=$1 n=$2 flood=$3; shift 3
  cluster up -n 4 --clients "$n" "$@" >/dev/null
  local tput=() p50=() p99=() r line forged=0
  for r in $(seq "$runs"); do
    line=$(run_load "$n" "$flood")
    tput+=("$(jq -r .ops_per_s <<<"$line")")
    p50+=("$(jq -r .p50_us <<<"$line")")
    p99+=("$(jq -r .p99_us <<<"$line")")
    echo "  $name run $r: $(jq -c '{ops_per_s, p50_us, p99_us}' <<<"$line")" >&2
  done
  if [ -n "$flood" ]; then
    forged=$("$repo/build/hmctl" status --socket "$dir/replica-0/control.sock" |
      jq '.drops.bad_address')
  fi
  local rss; rss=$(peak_rss_kib)
  cluster down >/dev/null
  results+=("$(jq -n --arg name "$name" --argjson clients "$n" \
    --argjson t "$(printf '%s\n' "${tput[@]}" | median)" \
    --argjson p50 "$(printf '%s\n' "${p50[@]}" | median)" \
    --argjson p99 "$(printf '%s\n' "${p99[@]}" | median)" \
    --argjson rss "$rss" --argjson forged "$forged" \
    '{config: $name, clients: $clients, ops_per_s: $t, p50_us: $p50, p99_us: $p99,
      peak_rss_kib: $rss, forged_dropped: $forged}')")
}

echo "HyperMesh benchmark: $runs runs of ${seconds}s per configuration (medians)" >&2
echo "# 1. hm_xdp per packet" >&2
xdp_json=$("$repo/build/bench_xdp" --json)

echo "# 2, 3. socket vs xdp, $clients clients, with and without a forged-vote flood" >&2
bench_config "socket" "$clients" "" --dataplane socket
bench_config "xdp" "$clients" "" --dataplane xdp
bench_config "socket, flooded" "$clients" flood --dataplane socket
bench_config "xdp, flooded" "$clients" flood --dataplane xdp
echo "# 4. batching on and off (socket)" >&2
for n in 8 32; do
  bench_config "batching on" "$n" "" --set performance.batching_enabled=true
  bench_config "batching off" "$n" "" --set performance.batching_enabled=false
done

echo "# 4b. the link layer: encryption and compression on and off, $clients clients" >&2
enc="--set network.encryption_required=true"
zip="--set network.message_compression=true"
# shellcheck disable=SC2086  # $enc and $zip are two words each
{
  bench_config "socket, sealed" "$clients" "" --dataplane socket $enc
  bench_config "socket, zstd" "$clients" "" --dataplane socket $zip
  bench_config "socket, both" "$clients" "" --dataplane socket $enc $zip
  bench_config "xdp, both" "$clients" "" --dataplane xdp $enc $zip
}

echo "# 5. view-change latency" >&2
vc_socket=$(bash "$repo/scripts/bench_viewchange.sh" --rounds "${BENCH_VC_ROUNDS:-10}" --dataplane socket | tail -1)
vc_xdp=$(bash "$repo/scripts/bench_viewchange.sh" --rounds "${BENCH_VC_ROUNDS:-10}" --dataplane xdp | tail -1)
echo "# recovery time of a restarted replica" >&2
recovery=null
if bash "$repo/scripts/bench_recovery.sh" >&2; then
  recovery=$(jq -c . "$repo/build/bench_recovery.json")
fi

echo "# 6. DNS: a replica beside plain Unbound" >&2
# A failed DNS part (no dnsperf, setup failure) leaves "dns": null, the rest stands.
dns=$(bash "$repo/scripts/bench_dns.sh" | tail -1 | jq -c '.dns' 2>/dev/null) || dns=null
[ -n "$dns" ] || dns=null
echo "# 7. DNS cache hits: XDP responder vs userspace hit path vs Unbound" >&2
dns_xdp=$(bash "$repo/scripts/bench_dns.sh" --xdp | tail -1 | jq -c '.dns_xdp_hits' 2>/dev/null) || dns_xdp=null
[ -n "$dns_xdp" ] || dns_xdp=null
echo "# 8. scale: n = 4, 7, 16, 31" >&2
scale=$(bash "$repo/scripts/bench_scale.sh" | tail -1 | jq -c '.scale' 2>/dev/null) || scale=null
[ -n "$scale" ] || scale=null

json=$(printf '%s\n' "${results[@]}" | jq -s \
  --arg kernel "$(uname -r)" --arg cpus "$(nproc)" --argjson runs "$runs" \
  --argjson seconds "$seconds" --argjson xdp "$xdp_json" \
  --argjson vcs "$vc_socket" --argjson vcx "$vc_xdp" --argjson rec "$recovery" --argjson dns "$dns" --argjson dns_xdp "$dns_xdp" --argjson scale "$scale" \
  '{date: (now | todate), kernel: $kernel, cpus: ($cpus | tonumber), replicas: 4,
    op: "null", runs: $runs, seconds: $seconds, xdp_program: $xdp, results: .,
    view_change: {socket: $vcs, xdp: $vcx}, recovery: $rec, dns: $dns, dns_xdp_hits: $dns_xdp, scale: $scale}')
mkdir -p "$(dirname "$out_json")"
echo "$json" >"$out_json"

jq -r '.xdp_program | "\nhm_xdp, per packet (mean of \(.repeat) runs)\tns\tverdict",
  (.xdp_ns[] | "\(.case)\t\(.ns)\t\(.verdict)"),
  "\nBPF map memory\tbytes",
  (.map_bytes | to_entries[] | "\(.key)\t\(.value)")' <<<"$json" |
  awk -F'\t' '{ if (NF == 1) print; else printf "%-48s %12s  %s\n", $1, $2, $3 }'

printf '\n%-16s %8s %10s %9s %9s %13s %15s\n' config clients ops/s p50_us p99_us peak_rss_MiB forged_dropped
jq -r '.results[] | [.config, .clients, .ops_per_s, .p50_us, .p99_us,
  (.peak_rss_kib / 1024 | . * 10 | round / 10), .forged_dropped] | @tsv' <<<"$json" |
  awk -F'\t' '{printf "%-16s %8d %10.0f %9d %9d %13.1f %15d\n", $1, $2, $3, $4, $5, $6, $7}'

get() { jq -r --arg c "$1" --argjson n "$2" ".results[] | select(.config == \$c and .clients == \$n) | .$3" <<<"$json"; }
echo
echo "xdp / socket, $clients clients: throughput x$(ratio "$(get xdp "$clients" ops_per_s)" "$(get socket "$clients" ops_per_s)")," \
  "p50 latency x$(ratio "$(get xdp "$clients" p50_us)" "$(get socket "$clients" p50_us)")," \
  "p99 latency x$(ratio "$(get xdp "$clients" p99_us)" "$(get socket "$clients" p99_us)")"
echo "flooded / unflooded goodput: socket $(ratio "$(get "socket, flooded" "$clients" ops_per_s)" "$(get socket "$clients" ops_per_s)")," \
  "xdp $(ratio "$(get "xdp, flooded" "$clients" ops_per_s)" "$(get xdp "$clients" ops_per_s)")"
for n in 8 32; do
  echo "batching on / off, $n clients: throughput x$(ratio "$(get "batching on" "$n" ops_per_s)" "$(get "batching off" "$n" ops_per_s)")," \
    "p50 latency x$(ratio "$(get "batching on" "$n" p50_us)" "$(get "batching off" "$n" p50_us)")"
done
jq -r '.view_change | to_entries[] | "view change (\(.key)): primary killed -> first commit in the new view: p50 \(.value.p50_ms) ms, p99 \(.value.p99_ms) ms over \(.value.rounds) rounds (view_change_timeout_ms \(.value.view_change_timeout_ms))"' <<<"$json"
jq -r 'if .recovery then "recovery of a restarted replica (ops since its checkpoint -> ms): \(.recovery)" else empty end' <<<"$json"
jq -r 'if .dns == null then "dns: not measured (scripts/bench_dns.sh failed)" else .dns | "dns, hypermesh / unbound: hits \(.hypermesh.hit.qps) / \(.unbound.hit.qps) qps (x\(.ratios.hit_qps)), hit p50 \(.hypermesh.hit.p50_us) / \(.unbound.hit.p50_us) us; misses \(.hypermesh.miss_n.qps) / \(.unbound.miss_n.qps) qps (x\(.ratios.miss_qps)); agreement adds \(.agreement_adds_p50_us) us at p50 to a miss" end' <<<"$json"
jq -r 'if .dns_xdp_hits == null then "dns xdp: not measured (scripts/bench_dns.sh --xdp failed)" else .dns_xdp_hits | "dns hits, xdp / userspace / unbound: \(.xdp.qps) / \(.userspace.qps) / \(.unbound.qps) qps, p50 \(.xdp.p50_us) / \(.userspace.p50_us) / \(.unbound.p50_us) us, CPU per answer \(.xdp.cpu_us_per_answer) / \(.userspace.cpu_us_per_answer) / \(.unbound.cpu_us_per_answer) us; the XDP program \(.xdp_prog_ns_per_answer) ns per answer" end' <<<"$json"
jq -r 'if .scale == null then "scale: not measured (scripts/bench_scale.sh failed)" else
  (.scale[] | "scale n=\(.n) f=\(.f) \(.dataplane): \(.ops_per_s) ops/s, p50 \(.p50_us) us, p99 \(.p99_us) us; per replica RSS \(.rss_kib_mean / 1024 | . * 10 | round / 10) MiB (peak \(.peak_rss_kib_mean / 1024 | . * 10 | round / 10)), BPF maps \(.bpf_map_bytes / 1048576 | . * 10 | round / 10) MiB") end' <<<"$json"
echo "written to $out_json"
