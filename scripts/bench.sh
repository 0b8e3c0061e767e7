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
#   9. The fast path (performance.fast_path_enabled: commit on all n
#      PREPAREs, no COMMIT round) on and off, at 1 and 8 clients, in socket
#      and xdp mode: throughput, p50, p99, the ratio fast / normal p50, and
#      from every replica's /metrics the share of batches that took the fast
#      path and the mean PRE-PREPARE-to-commit time by path.
#  10. Requests: MAC-only (the default: link MACs and vouches) against
#      signed (security.signed_requests: true), at 1, 8 and 32 clients, in
#      socket and xdp mode: throughput, p50, p99 and the ratios.
#
# BENCH_ONLY=flood runs parts 2 and 3 alone (build/bench_flood.json);
# BENCH_ONLY=auth runs part 10 alone (build/bench_requests.json);
# BENCH_AUTH_CLIENTS="1 8 32" its client counts.
# BENCH_ONLY=fast runs part 9 alone (writes build/bench_fast_path.json
# instead of build/bench.json); BENCH_FAST_CLIENTS="1 8" its client counts;
# BENCH_FAST_SET="KEY=VALUE ..." more settings for its fast-path-on rows
# (e.g. performance.fast_path_trust_threshold=0: the reputation gate open).
#
# Every cluster figure is the median of RUNS runs of SECONDS each; closed-loop
# clients, null operations, n = 4 replicas in network namespaces.
#
#   BENCH_RUNS=3 BENCH_SECONDS=5 BENCH_CLIENTS=32 scripts/bench.sh
#   BENCH_ONLY=fast BENCH_RUNS=3 scripts/bench.sh     part 9 only
#   BENCH_ONLY=auth BENCH_RUNS=3 scripts/bench.sh     part 10 only
#   BENCH_ONLY=flood BENCH_RUNS=3 scripts/bench.sh    parts 2 and 3 only
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${BENCH_RUNS:-3}
seconds=${BENCH_SECONDS:-5}
clients=${BENCH_CLIENTS:-32}
only=${BENCH_ONLY:-}
fast_clients=${BENCH_FAST_CLIENTS:-1 8}
auth_clients=${BENCH_AUTH_CLIENTS:-1 8 32}
case "$only" in
'' | fast | auth | flood) ;;
*) echo "bench.sh: BENCH_ONLY must be unset, 'fast', 'auth' or 'flood' (got '$only')" >&2; exit 2 ;;
esac
out_json="$repo/build/bench.json"
[ "$only" = fast ] && out_json="$repo/build/bench_fast_path.json"
[ "$only" = auth ] && out_json="$repo/build/bench_requests.json"
[ "$only" = flood ] && out_json="$repo/build/bench_flood.json"
# BENCH_TMP: where the replicas' files go (/dev/shm: fsyncs cost nothing, as
# with a fast disk per replica; the default /tmp is this machine's one disk)
dir=$(mktemp -d "${BENCH_TMP:-/tmp}/hm-bench.XXXXXX")
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
trap 'cluster down >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
# field JSON CONFIG CLIENTS KEY: KEY of the result row (CONFIG, CLIENTS).
field() { jq -r --arg c "$2" --argjson n "$3" ".results[] | select(.config == \$c and .clients == \$n) | .$4" <<<"$1"; }
# row_ratio JSON CONFIG_A CONFIG_B CLIENTS KEY: A's KEY over B's.
row_ratio() { ratio "$(field "$1" "$2" "$4" "$5")" "$(field "$1" "$3" "$4" "$5")"; }

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
# attacker floods the primary for the whole run, as the client after the
# bench's (one process per client identity: bench_config makes one more).
run_load() {
  local n=$1 flood=${2:-} line attacker=""
  if [ -n "$flood" ]; then
    cluster exec-attacker hmctl -c "$dir/client-$((100 + n)).yaml" inject forged-vote --replica 0 \
      --duration "$((seconds + 1))" \
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
  local name=$1 n=$2 flood=$3 up_clients=$2; shift 3
  if [ -n "$flood" ]; then up_clients=$((n + 1)); fi # and the attacker's identity
  cluster up -n 4 --clients "$up_clients" "$@" >/dev/null
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

# ---- part 9: the fast path on and off ----------------------------------

# From every replica's /metrics (port 9100), over the cluster's life: the
# lowest and highest share of batches on the fast path, the mean
# PRE-PREPARE-to-commit time by path, and how often a replica withdrew the
# fast path (a peer's reputation at or below fast_path_trust_threshold).
fast_extra() {
  local i m all=""
  for i in 0 1 2 3; do
    m=$(cluster exec curl -s --max-time 5 "http://198.18.0.$((i + 1)):9100/metrics")
    all+=$(awk '$1 == "hypermesh_fast_path_usage_percent" { u = $2 }
      $1 == "hypermesh_commit_latency_seconds_sum{path=\"fast\"}" { fs = $2 }
      $1 == "hypermesh_commit_latency_seconds_count{path=\"fast\"}" { fc = $2 }
      $1 == "hypermesh_commit_latency_seconds_sum{path=\"normal\"}" { ns = $2 }
      $1 == "hypermesh_commit_latency_seconds_count{path=\"normal\"}" { nc = $2 }
      END { printf "%s %s %s %s %s\n", u + 0, fs + 0, fc + 0, ns + 0, nc + 0 }' <<<"$m")$'\n'
  done
  awk -v off="$(cat "$dir"/replica-*/log | grep -c 'msg="fast path off' || true)" '
    NF == 5 { if (n == 0 || $1 < lo) lo = $1; if (n == 0 || $1 > hi) hi = $1; n++
              fs += $2; fc += $3; ns += $4; nc += $5 }
    END { printf "{\"fast_usage_min\": %.1f, \"fast_usage_max\": %.1f, \"commit_ms_fast\": %s, \"commit_ms_normal\": %s, \"fast_path_off_logged\": %d}\n",
            lo, hi, fc ? sprintf("%.3f", 1000 * fs / fc) : "null",
            nc ? sprintf("%.3f", 1000 * ns / nc) : "null", off }' <<<"$all"
}

# fast_pair CLIENTS DATAPLANE: RUNS rounds, each a run with the fast path on
# then one with it off, every run on a fresh cluster (so that the load of
# other work on the machine drifts alike over both); two result rows, the
# medians, and the /metrics figures of fast_extra (usage: lowest and
# highest over the runs' replicas; commit times: medians; off: summed).
fast_pair() {
  local n=$1 dp=$2 r mode line ex rows=() args
  for r in $(seq "$runs"); do
    for mode in on off; do
      if [ "$mode" = on ]; then
        args=(--fast-path "${fast_sets[@]+"${fast_sets[@]}"}")
      else
        args=(--set performance.fast_path_enabled=false)
      fi
      cluster up -n 4 --clients "$n" --dataplane "$dp" --set detection.metrics_port=9100 \
        "${args[@]}" >/dev/null
      line=$(run_load "$n")
      ex=$(fast_extra)
      cluster down >/dev/null
      echo "  $dp, fast path $mode, $n client(s), run $r: $(jq -c '{ops_per_s, p50_us, p99_us}' <<<"$line") $ex" >&2
      rows+=("$(jq -c --arg mode "$mode" --argjson ex "$ex" '{mode: $mode, ops_per_s, p50_us, p99_us} + $ex' <<<"$line")")
    done
  done
  for mode in on off; do
    results+=("$(printf '%s\n' "${rows[@]}" | jq -s -c --arg mode "$mode" --arg dp "$dp" --argjson n "$n" '
      def med: sort | .[(length - 1) / 2 | floor];
      map(select(.mode == $mode)) |
      {config: "\($dp), fast path \($mode)", clients: $n,
       ops_per_s: (map(.ops_per_s) | med), p50_us: (map(.p50_us) | med), p99_us: (map(.p99_us) | med),
       peak_rss_kib: 0, forged_dropped: 0,
       fast_usage_min: (map(.fast_usage_min) | min), fast_usage_max: (map(.fast_usage_max) | max),
       commit_ms_fast: (map(.commit_ms_fast | select(. != null)) | if length > 0 then med else null end),
       commit_ms_normal: (map(.commit_ms_normal | select(. != null)) | if length > 0 then med else null end),
       fast_path_off_logged: (map(.fast_path_off_logged) | add),
       runs: map({ops_per_s, p50_us})}')")
  done
}

fast_sets=()
for kv in ${BENCH_FAST_SET:-}; do fast_sets+=(--set "$kv"); done
fast_part() {
  local n dp
  for n in $fast_clients; do
    for dp in socket xdp; do
      fast_pair "$n" "$dp"
    done
  done
}

# fast_report JSON: part 9's table and ratios.
fast_report() {
  local json=$1 n dp on off
  printf '\n%-20s %7s %9s %8s %8s %10s %14s %16s %4s\n' config clients ops/s p50_us p99_us \
    fast_use_% commit_ms_fast commit_ms_normal off
  jq -r '.results[] | select(.config | test("fast path")) | [.config, .clients, .ops_per_s,
    .p50_us, .p99_us, "\(.fast_usage_min)-\(.fast_usage_max)", (.commit_ms_fast // "-"),
    (.commit_ms_normal // "-"), .fast_path_off_logged] | @tsv' <<<"$json" |
    awk -F'\t' '{printf "%-20s %7d %9.0f %8d %8d %10s %14s %16s %4d\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}'
  for n in $fast_clients; do
    for dp in socket xdp; do
      on="$dp, fast path on" off="$dp, fast path off"
      echo "fast / normal, $dp, $n client(s): p50 x$(row_ratio "$json" "$on" "$off" "$n" p50_us)," \
        "throughput x$(row_ratio "$json" "$on" "$off" "$n" ops_per_s)," \
        "p99 x$(row_ratio "$json" "$on" "$off" "$n" p99_us)"
    done
  done
}
# ---- part 10: requests MAC-only and signed ---------------------------------
auth_part() {
  local n dp
  for n in $auth_clients; do
    for dp in socket xdp; do
      bench_config "$dp, MAC-only requests" "$n" "" --dataplane "$dp" \
        --set security.signed_requests=false
      bench_config "$dp, signed requests" "$n" "" --dataplane "$dp" \
        --set security.signed_requests=true
    done
  done
}

# auth_report JSON: part 10's table and ratios.
auth_report() {
  local json=$1 n dp mac sig
  printf '\n%-26s %7s %9s %8s %8s\n' config clients ops/s p50_us p99_us
  jq -r '.results[] | select(.config | test("requests")) |
    [.config, .clients, .ops_per_s, .p50_us, .p99_us] | @tsv' <<<"$json" |
    awk -F'\t' '{printf "%-26s %7d %9.0f %8d %8d\n", $1, $2, $3, $4, $5}'
  for n in $auth_clients; do
    for dp in socket xdp; do
      mac="$dp, MAC-only requests" sig="$dp, signed requests"
      echo "MAC-only / signed, $dp, $n client(s): throughput x$(row_ratio "$json" "$mac" "$sig" "$n" ops_per_s)," \
        "p50 x$(row_ratio "$json" "$mac" "$sig" "$n" p50_us)"
    done
    mac="xdp, MAC-only requests" sig="socket, MAC-only requests"
    echo "xdp / socket, MAC-only, $n client(s): throughput x$(row_ratio "$json" "$mac" "$sig" "$n" ops_per_s)," \
      "p50 x$(row_ratio "$json" "$mac" "$sig" "$n" p50_us)"
  done
}

# write_part_json [JQ_OBJECT]: a single part's run (BENCH_ONLY) ends here:
# its results, the machine and the settings as $json, written to $out_json
# (JQ_OBJECT: more fields; $fset is BENCH_FAST_SET).
write_part_json() {
  json=$(printf '%s\n' "${results[@]}" | jq -s \
    --arg kernel "$(uname -r)" --arg cpus "$(nproc)" --argjson runs "$runs" --argjson seconds "$seconds" \
    --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg fset "${BENCH_FAST_SET:-}" \
    "{date: (now | todate), kernel: \$kernel, cpus: (\$cpus | tonumber), load_average: \$load,
      replicas: 4, op: \"null\", runs: \$runs, seconds: \$seconds, results: .} + ${1:-{\}}")
  mkdir -p "$(dirname "$out_json")"
  echo "$json" >"$out_json"
}

if [ "$only" = auth ]; then
  echo "HyperMesh benchmark, part 10 only (requests MAC-only and signed): $runs runs of ${seconds}s per configuration (medians)" >&2
  auth_part
  write_part_json
  auth_report "$json"
  echo "written to $out_json"
  exit 0
fi

# Parts 2 and 3: socket and xdp, unflooded and under a forged-vote flood.
flood_part() {
  bench_config "socket" "$clients" "" --dataplane socket
  bench_config "xdp" "$clients" "" --dataplane xdp
  bench_config "socket, flooded" "$clients" flood --dataplane socket
  bench_config "xdp, flooded" "$clients" flood --dataplane xdp
}

# flood_report JSON: parts 2 and 3's ratios.
flood_report() {
  local json=$1
  echo "xdp / socket, $clients clients: throughput x$(row_ratio "$json" xdp socket "$clients" ops_per_s)," \
    "p50 latency x$(row_ratio "$json" xdp socket "$clients" p50_us)," \
    "p99 latency x$(row_ratio "$json" xdp socket "$clients" p99_us)"
  echo "flooded / unflooded goodput: socket $(row_ratio "$json" "socket, flooded" socket "$clients" ops_per_s)," \
    "xdp $(row_ratio "$json" "xdp, flooded" xdp "$clients" ops_per_s)"
}

if [ "$only" = flood ]; then
  echo "HyperMesh benchmark, parts 2 and 3 only (socket and xdp, flooded and not): $runs runs of ${seconds}s per configuration (medians)" >&2
  flood_part
  write_part_json
  printf '\n%-16s %8s %10s %9s %9s %15s\n' config clients ops/s p50_us p99_us forged_dropped
  jq -r '.results[] | [.config, .clients, .ops_per_s, .p50_us, .p99_us, .forged_dropped] | @tsv' <<<"$json" |
    awk -F'\t' '{printf "%-16s %8d %10.0f %9d %9d %15d\n", $1, $2, $3, $4, $5, $6}'
  flood_report "$json"
  echo "written to $out_json"
  exit 0
fi

if [ "$only" = fast ]; then
  echo "HyperMesh benchmark, part 9 only (the fast path): $runs runs of ${seconds}s per configuration (medians)" >&2
  fast_part
  write_part_json "{fast_set: \$fset}"
  fast_report "$json"
  echo "written to $out_json"
  exit 0
fi

echo "HyperMesh benchmark: $runs runs of ${seconds}s per configuration (medians)" >&2
echo "# 1. hm_xdp per packet" >&2
xdp_json=$("$repo/build/bench_xdp" --json)

echo "# 2, 3. socket vs xdp, $clients clients, with and without a forged-vote flood" >&2
flood_part
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

echo "# 9. the fast path on and off, $fast_clients client(s)" >&2
fast_part
echo "# 10. requests MAC-only and signed, $auth_clients client(s)" >&2
auth_part

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

get() { field "$json" "$1" "$2" "$3"; }
echo
flood_report "$json"
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
fast_report "$json"
auth_report "$json"
echo "written to $out_json"
