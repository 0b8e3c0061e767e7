#!/usr/bin/env bash
# Where the CPU goes under load: one 4-replica cluster, C closed-loop clients
# doing null ops, profiled machine-wide with `perf record -a` (DWARF call
# graphs) while the load runs.  Prints the bench's JSON line, then for the
# replicas (comm hypermeshd) the share of their samples per DSO, the top
# leaf functions, and libsodium's samples attributed to the first HyperMesh
# function above them on the stack (libsodium has no symbols here, so
# hm_sign_header, hm_verify_header, hm_reply_* and so on name what its CPU
# went to).
#
#   scripts/bench_profile.sh [--dataplane socket|xdp] [--clients C] [--seconds S] [--out DIR]
#                            [--report-only]   (report DIR/perf.data again, no run)
#
# Needs root and perf.  Leaves perf.data, samples.tsv and the reports in DIR
# (default build/profile-<dataplane>).  HM_BUILD picks the binaries, as for
# scripts/cluster.sh.  Not a test: the figures vary with the machine's load.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dataplane=socket clients=32 seconds=5 out="" report_only=""
while [ $# -gt 0 ]; do
  case $1 in
  --dataplane) dataplane=$2; shift 2 ;;
  --clients) clients=$2; shift 2 ;;
  --seconds) seconds=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  --report-only) report_only=1; shift ;;
  *) echo "usage: $0 [--dataplane socket|xdp] [--clients C] [--seconds S] [--out DIR]" >&2; exit 2 ;;
  esac
done
out=${out:-$repo/build/profile-$dataplane}
mkdir -p "$out"
if [ -z "$report_only" ]; then
rm -f "$out/binary"
dir=$(mktemp -d /tmp/hm-prof.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
trap 'cluster down >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM

cluster up -n 4 --clients "$clients" --dataplane "$dataplane" >/dev/null
# Warm up, then profile exactly the measured run.
cluster exec hmctl bench --clients "$clients" --duration 1 --op null >/dev/null
cluster exec hmctl bench --clients "$clients" --duration "$seconds" --op null >"$out/bench.out" &
load=$!
# DWARF unwinding: libsodium is built without frame pointers, so only
# --call-graph dwarf finds the HyperMesh function that called into it.
perf record -a --call-graph dwarf,8192 -F 499 -o "$out/perf.data" -- sleep "$seconds" \
  >/dev/null 2>"$out/perf-record.err"
wait "$load"
# Requests per executed batch (replica 0's counters): what one batch
# signature is spread over.
"${HM_BUILD:-$repo/build}/hmctl" status --json --socket "$dir/replica-0/control.sock" 2>/dev/null |
  jq -c '{ops_executed: .core.ops_executed, batches_executed: .core.batches_executed,
          reply_batches_signed: .core.reply_batches_signed}' >"$out/batches.json" || true
trap - EXIT INT TERM
cluster down >/dev/null 2>&1
rm -rf "$dir"
fi
tail -1 "$out/bench.out"

# This cluster's replicas only: other hypermeshd processes on the machine
# (other clusters) are told apart by the binary their stacks run in.
bin=$(cat "$out/binary" 2>/dev/null || echo "${HM_BUILD:-$repo/build}/hypermeshd")
bin=$(readlink -f "$bin")
echo "$bin" >"$out/binary"
pids=$(perf script -i "$out/perf.data" --comm hypermeshd -F pid,ip,dso 2>/dev/null |
  awk -v bin="$bin" '/^ *[0-9]+ *$/ { pid = $1; next } index($0, "(" bin ")") { print pid }' |
  sort -un | paste -sd, -)
[ -n "$pids" ] || { echo "no samples of $bin in $out/perf.data" >&2; exit 1; }
echo "replica pids: $pids ($bin)"

# One line per sample of the replicas: period, leaf DSO, leaf symbol, and the
# HyperMesh functions on the stack (in hypermeshd): the first, and the first four.
perf script -i "$out/perf.data" --pid "$pids" -F period,ip,sym,dso 2>/dev/null | awk '
  function flush() {
    if (period) print period "\t" leafdso "\t" leafsym "\t" (depth ? chain[1] : "-") "\t" \
      (depth ? joined : "-")
  }
  /^ *[0-9]+ *$/ { flush(); period = $1; leafdso = ""; leafsym = ""; depth = 0; joined = ""; next }
  NF >= 2 {
    dso = $NF; gsub(/[()]/, "", dso); n = split(dso, parts, "/"); dso = parts[n]
    sym = $2; sub(/\+0x[0-9a-f]+$/, "", sym)
    if (leafdso == "") { leafdso = dso; leafsym = sym }
    # the first four distinct HyperMesh functions, innermost first
    if (dso == "hypermeshd" && sym != "[unknown]" && depth < 4 && (depth == 0 || chain[depth] != sym)) {
      chain[++depth] = sym; joined = depth == 1 ? sym : joined "<-" sym
    }
  }
  END { flush() }' >"$out/samples.tsv"
share() { awk -F'\t' -v col="$1" '{ t += $1; s[$col] += $1 }
  END { for (k in s) printf "%6.2f%%  %s\n", 100 * s[k] / t, k }' "$out/samples.tsv" | sort -rn | awk -v n="$2" 'NR <= n'; }
echo "== hypermeshd CPU by DSO (% of the replicas' samples)"
share 2 10 | tee "$out/dso.txt"
echo "== top leaf functions"
awk -F'\t' '{ print $1 "\t" $2 "\t" $2 ":" $3 }' "$out/samples.tsv" >"$out/leaf.tsv"
awk -F'\t' '{ t += $1; s[$3] += $1 } END { for (k in s) printf "%6.2f%%  %s\n", 100 * s[k] / t, k }' \
  "$out/leaf.tsv" | sort -rn | awk 'NR <= 15' | tee "$out/sym.txt"
echo "== libsodium by HyperMesh caller (% of the replicas' samples)"
awk -F'\t' '{ t += $1 } $2 ~ /^libsodium/ { s[$4] += $1 }
  END { for (k in s) printf "%6.2f%%  %s\n", 100 * s[k] / t, k }' "$out/samples.tsv" |
  sort -rn | awk 'NR <= 12' | tee "$out/sodium-callers.txt"
echo "== libsodium by its first four HyperMesh callers"
awk -F'\t' '{ t += $1 } $2 ~ /^libsodium/ { s[$5] += $1 }
  END { for (k in s) printf "%6.2f%%  %s\n", 100 * s[k] / t, k }' "$out/samples.tsv" |
  sort -rn | awk 'NR <= 15' | tee "$out/sodium-callers2.txt"

# CPU per operation: the CPU time sampled (cpu-clock periods, ns) in the
# replicas and in the clients
# (hmctl bench, comm hmctl), divided by the operations of the run, and each
# side's libsodium share.
ops=$(tail -1 "$out/bench.out" | jq -r .ops)
perf script -i "$out/perf.data" --comm hmctl -F period,ip,dso 2>/dev/null | awk '
  /^ *[0-9]+ *$/ { if (p) print p "\t" leaf; p = $1; leaf = ""; next }
  NF >= 2 && leaf == "" { d = $NF; gsub(/[()]/, "", d); n = split(d, a, "/"); leaf = a[n] }
  END { if (p) print p "\t" leaf }' >"$out/client-samples.tsv"
echo "== CPU per operation ($ops ops)"
for side in replicas:samples.tsv clients:client-samples.tsv; do
  awk -F'\t' -v name="${side%%:*}" -v ops="$ops" '{ t += $1 } $2 ~ /^libsodium/ { s += $1 }
    END { if (t) printf "%-8s %6.0f us CPU/op, libsodium %5.1f%%\n", name, t / (ops ? ops : 1) / 1e3, 100 * s / t }' \
    "$out/${side#*:}"
done | tee "$out/per-op.txt"
[ -s "$out/batches.json" ] && jq -r '"requests per batch (replica 0): \(.ops_executed / .batches_executed * 100 | round / 100)"' "$out/batches.json"
