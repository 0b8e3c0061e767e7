#!/usr/bin/env bash
# The operators' routines on a real cluster (issue 17): a cluster of
# hypermeshd processes in network namespaces (scripts/cluster.sh), each
# persisting its state under its data dir.
#
#   1. rolling restart under load: stop (SIGTERM) and start each of the four
#      replicas in turn, as an upgrade does, each logging "recovered: ok";
#      then writes and reads succeed within HM_E2E_LIVE_S seconds and every
#      acknowledged write (markers, and every key the load got OK for)
#      reads back.
#   2. one restart followed by a primary crash (kill -9 of the new view's
#      primary): the cluster serves again within the bound.
#   3. all replicas killed at once (a power loss) and restarted: the data
#      is intact and the cluster serves again, reads included.
#
# Each part checks liveness (writes and reads succeed again within the
# bound) and that no acknowledged write is lost.  These failed before the
# issue-17 vote log (a restarted replica stayed silent until 2f+1 others
# executed past its recovered point: circular once more than f restarted).
#
#   HM_E2E_DATAPLANE=socket|xdp   the dataplane (default socket)
#   HM_E2E_LIVE_S=N               the liveness bound in seconds (default 15)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"

dataplane=${HM_E2E_DATAPLANE:-socket}
live_s=${HM_E2E_LIVE_S:-15}
dir=$(mktemp -d /tmp/hm-e2e-restarts.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
bench_pid=""
cleanup() {
  [ -n "$bench_pid" ] && kill "$bench_pid" 2>/dev/null
  cluster down >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status() { "$repo/build/hmctl" status --socket "$dir/replica-$1/control.sock" 2>/dev/null | jq -r "$2"; }
quiet() { "$@" >/dev/null 2>&1; }

# A check of issue 17's liveness.
check_live() {
  local what=$1; shift
  if "$@"; then pass "$what"
  else fail "$what"; return 1
  fi
}

# put KEY VALUE: one write, at most a few seconds; "OK" when acknowledged.
put() { timeout 8 bash "$repo/scripts/cluster.sh" --dir "$dir" exec hmctl put "$1" "$2" 2>/dev/null; }
get() { timeout 8 bash "$repo/scripts/cluster.sh" --dir "$dir" exec hmctl get "$1" 2>/dev/null; }

# Poll until a write and a read of it succeed, at most live_s seconds.
serves_within() {
  local tag=$1 end=$((SECONDS + live_s))
  while [ "$SECONDS" -lt "$end" ]; do
    if [ "$(put "live-$tag" "v-$tag")" = OK ] && [ "$(get "live-$tag")" = "v-$tag" ]; then
      acked["live-$tag"]="v-$tag"
      return 0
    fi
  done
  return 1
}

# Poll until replica I's log (since byte OFF) says "recovered: ok".
recovered_ok() {
  local i=$1 off=$2
  for _ in $(seq 100); do
    tail -c "+$((off + 1))" "$dir/replica-$i/log" 2>/dev/null | grep -q 'recovered: ok' && return 0
    sleep 0.1
  done
  return 1
}

declare -A acked=()
# Every acknowledged write reads back (only meaningful while it serves).
all_acked_survive() {
  local k bad=0
  for k in "${!acked[@]}"; do
    [ "$(get "$k")" = "${acked[$k]}" ] || { echo "#   lost or unreadable: $k" >&2; bad=1; }
  done
  return $bad
}

# Background load: writes distinct keys, logs the acknowledged ones.
start_load() {
  local tag=$1
  (
    n=0
    while :; do
      n=$((n + 1))
      [ "$(put "load-$tag-$n" "w$n")" = OK ] && echo "load-$tag-$n w$n" >>"$dir/acked-$tag"
    done
  ) &
  bench_pid=$!
}
stop_load() {
  local tag=$1 k v
  kill "$bench_pid" 2>/dev/null; wait "$bench_pid" 2>/dev/null; bench_pid=""
  [ -f "$dir/acked-$tag" ] || return 0
  while read -r k v; do acked[$k]=$v; done <"$dir/acked-$tag"
}

primary() { local v; v=$(status "$1" .view); echo $((v % 4)); }

# A fresh cluster for each part (a part that stalls must not spoil the
# next), with three acknowledged markers.
fresh_cluster() {
  local tag=$1
  cluster down >/dev/null 2>&1
  acked=()
  cluster up -n 4 --clients 4 --dataplane "$dataplane" --set consensus.checkpoint_interval=20 \
    --set consensus.watermark_window=40 >/dev/null || { fail "cluster up"; finish; exit 1; }
  for i in 1 2 3; do
    check_eq "$tag: marker $i written" "$(put "marker-$i" "m$i")" OK && acked["marker-$i"]="m$i"
  done
}

echo "# 4 replicas ($dataplane dataplane), liveness bound ${live_s}s"
fresh_cluster "part 1"

echo "# part 1: rolling restart under load"
start_load roll
for i in 0 1 2 3; do
  off=$(stat -c %s "$dir/replica-$i/log")
  check "replica $i stops cleanly" quiet cluster stop "$i"
  check "replica $i starts" quiet cluster start "$i"
  check "replica $i logs 'recovered: ok'" recovered_ok "$i" "$off"
done
stop_load roll
echo "#   the load got ${#acked[@]} acknowledged writes so far"
if check_live "after the rolling restart, a write and a read within ${live_s}s" serves_within roll; then
  check "every acknowledged write survived the rolling restart" all_acked_survive
fi

echo "# part 2: one restart, then the primary crashes"
fresh_cluster "part 2"
r=$(( $(primary 1) == 1 ? 2 : 1 ))
off=$(stat -c %s "$dir/replica-$r/log")
check "replica $r stops cleanly" quiet cluster stop "$r"
check "replica $r starts" quiet cluster start "$r"
check "replica $r logs 'recovered: ok'" recovered_ok "$r" "$off"
p=$(primary $(( (r + 1) % 4 )))
echo "#   then kill -9 the primary, replica $p"
cluster kill "$p" >/dev/null
if check_live "after a restart and a primary crash, a write and a read within ${live_s}s" serves_within pc; then
  check "every acknowledged write survived" all_acked_survive
fi
check "replica $p starts again" quiet cluster start "$p"

echo "# part 3: all four killed at once, then restarted"
fresh_cluster "part 3"
declare -A offs=()
for i in 0 1 2 3; do offs[$i]=$(stat -c %s "$dir/replica-$i/log"); cluster kill "$i" >/dev/null; done
for i in 0 1 2 3; do
  check "replica $i starts after the power loss" quiet cluster start "$i"
done
for i in 0 1 2 3; do
  check "replica $i logs 'recovered: ok'" recovered_ok "$i" "${offs[$i]}"
done
if check_live "after all restarted at once, a write and a read within ${live_s}s" serves_within all; then
  check "every acknowledged write survived the power loss" all_acked_survive
fi
finish
