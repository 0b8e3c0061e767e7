#!/usr/bin/env bash
# View-change latency: the primary of a fresh cluster is killed (SIGKILL)
# and a client PUTs until one commits; the time from the kill to that commit
# is one sample.  Prints every sample, then p50 and p99 and a JSON line.
#
#   scripts/bench_viewchange.sh [--rounds N] [--n N] [--dataplane socket|xdp]
#                               [--vc-timeout MS] [--client-timeout MS]
#
# Defaults: 10 rounds, n = 4, socket, view_change_timeout_ms 500,
# timeout_ms (client retransmission) 300.  The client sends each request to
# every replica, so the backups start waiting for it at once: the latency is
# view_change_timeout_ms (the backups suspect the primary) plus the protocol
# (VIEW-CHANGE, NEW-VIEW, the re-proposed slots) plus, at worst, one client
# retransmission interval before the client hears the new view's replies.
#
# Needs root, build/ (make) and jq.  Called by make bench.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=selftests/e2e/lib/faults.sh
source "$REPO/selftests/e2e/lib/faults.sh"

rounds=10 n=4 dataplane=socket vc_timeout=500 client_timeout=300
while [ $# -gt 0 ]; do
  case "$1" in
  --rounds) rounds=$2; shift 2 ;;
  --n) n=$2; shift 2 ;;
  --dataplane) dataplane=$2; shift 2 ;;
  --vc-timeout) vc_timeout=$2; shift 2 ;;
  --client-timeout) client_timeout=$2; shift 2 ;;
  -h | --help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  *) echo "bench_viewchange.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench_viewchange.sh: must run as root" >&2; exit 1; }
[ -x "$REPO/build/hypermeshd" ] || { echo "bench_viewchange.sh: run make first" >&2; exit 1; }

FAULTS_BASE=$(mktemp -d "/tmp/hm-bench-vc.$$.XXXXXX")
trap 'faults_cleanup; rm -rf "$FAULTS_BASE"' EXIT
trap 'exit 130' INT TERM

# The timeouts of this benchmark, over new_cluster's defaults.
bench_cluster() {
  CDIR="$FAULTS_BASE/$1"
  FAULTS_CLUSTERS+=("$CDIR")
  cluster up -n "$n" --clients 4 --dataplane "$dataplane" \
    --set consensus.view_change_timeout_ms="$vc_timeout" \
    --set consensus.timeout_ms="$client_timeout" >"$CDIR.up.log" 2>&1
}

samples=()
bound=$(( (vc_timeout * 4 + client_timeout * 4) / 1000 + 5 ))
echo "# view-change latency: n=$n $dataplane, view_change_timeout_ms=$vc_timeout," \
  "timeout_ms=$client_timeout, $rounds rounds"
for ((r = 1; r <= rounds; r++)); do
  if ! bench_cluster "r$r"; then
    echo "round $r: cluster up failed:" >&2
    sed 's/^/    | /' "$CDIR.up.log" >&2
    exit 1
  fi
  out=$(timeout "$bound" bash "$REPO/scripts/cluster.sh" --dir "$CDIR" exec hmctl put warm up)
  [ "$out" = OK ] || { echo "round $r: the warm-up PUT failed" >&2; exit 1; }
  cluster kill 0 >/dev/null
  t=$(first_commit_after "$bound")
  view=$(status 1 .view)
  drop_cluster
  if [ "$t" = timeout ] || [ "${view:-0}" -lt 1 ]; then
    echo "round $r: no commit in a new view within ${bound}s" >&2
    exit 1
  fi
  printf 'round %2d: %5d ms (view %s)\n' "$r" "$t" "$view"
  samples+=("$t")
done

sorted=$(printf '%s\n' "${samples[@]}" | sort -n)
# nearest-rank percentiles
pct() { awk -v p="$1" '{ a[NR] = $1 } END { r = int(p * NR + 0.999999); if (r < 1) r = 1; print a[r] }' <<<"$sorted"; }
p50=$(pct 0.50)
p99=$(pct 0.99)
printf 'view change (primary killed -> first commit in the new view): p50 %d ms, p99 %d ms over %d rounds\n' \
  "$p50" "$p99" "$rounds"
printf '{"bench":"viewchange","n":%d,"dataplane":"%s","view_change_timeout_ms":%d,"timeout_ms":%d,"rounds":%d,"p50_ms":%d,"p99_ms":%d,"samples_ms":[%s]}\n' \
  "$n" "$dataplane" "$vc_timeout" "$client_timeout" "$rounds" "$p50" "$p99" \
  "$(IFS=,; echo "${samples[*]}")"
