#!/usr/bin/env bash
# The Byzantine fault suite on real clusters in network namespaces
# (docs/faults.md): replicas of the test build, build/hypermeshd-test, started
# with --byzantine MODE (the shipped hypermeshd refuses it), the
# primary killed, the primary partitioned, a faulty client.
#
# For every run, with the f faulty replicas being the primaries of views
# 0..f-1:
#   safety    while a workload runs, the correct replicas are sampled
#             (hmctl status): any two that executed the same sequence
#             number have the same state digest; afterwards all of them
#             settle on one digest;
#   liveness  a bench workload completes operations, then every one of a
#             series of PUTs completes within BOUND seconds
#             (HM_FAULTS_BOUND_S, default 8: two view changes of 0.5 s and
#             1 s plus client retransmission, with margin for a loaded
#             machine), and reads return what was written;
#   the mode  acted (the Byzantine replica's status counts it), and a
#             faulty primary that must be replaced was (view >= f).
#
#   selftests/e2e/e2e_faults.sh            the quick suite (make test): n = 4
#                                      every mode, n = 7 and xdp a subset
#   HM_FAULTS_SOAK=1                   every mode at n = 7, xdp too
#   HM_FAULTS_ONLY=REGEX               only the runs whose name matches
#
# Needs root, build/ (make) and jq.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"
# shellcheck source=selftests/e2e/lib/faults.sh
source "$here/lib/faults.sh"

BOUND=${HM_FAULTS_BOUND_S:-8}
SOAK=${HM_FAULTS_SOAK:-0}
[ "$(id -u)" = 0 ] || { fail "must run as root"; finish; exit 1; }
for f in hypermeshd hypermeshd-test hmctl; do
  [ -x "$REPO/build/$f" ] || { fail "missing build/$f (run make)"; finish; exit 1; }
done
command -v jq >/dev/null || { fail "jq missing"; finish; exit 1; }

FAULTS_BASE=$(mktemp -d "/tmp/hm-e2e-faults.$$.XXXXXX")
cleanup() { faults_cleanup; rm -rf "$FAULTS_BASE"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# workload NAME CORRECT_IDS...: a 2 s bench with safety samples every
# 0.25 s, then 8 timed PUTs and their reads.
workload() {
  local name=$1; shift
  local bench_out="$CDIR.bench" pid pairs=0 bad=0 p b lat worst=0 late=0 i
  bash "$REPO/scripts/cluster.sh" --dir "$CDIR" exec hmctl bench --clients 2 --duration 2 \
    --op put >"$bench_out" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    read -r p b < <(safety_sample "$@")
    pairs=$((pairs + p)); bad=$((bad + b))
    sleep 0.25
  done
  wait "$pid"
  check_ge "$name: the bench completed operations" \
    "$(grep -o '"ops":[0-9]*' "$bench_out" | cut -d: -f2)" 1
  for i in 1 2 3 4 5 6 7 8; do
    lat=$(timed_put "k$i" "$name-$i" "$BOUND")
    if [ "$lat" = timeout ]; then late=$((late + 1)); else [ "$lat" -gt "$worst" ] && worst=$lat; fi
  done
  check_eq "$name: every PUT within ${BOUND}s (slowest ${worst} ms)" "$late" 0
  check_eq "$name: a read returns the last write" \
    "$(timeout "$BOUND" bash "$REPO/scripts/cluster.sh" --dir "$CDIR" exec hmctl get k8)" "$name-8"
  read -r p b < <(safety_sample "$@")
  pairs=$((pairs + p)); bad=$((bad + b))
  check_eq "$name: no two correct replicas differ at one sequence number ($pairs comparisons)" \
    "$bad" 0
  check_eq "$name: the correct replicas settle on one state digest" \
    "$(settled_digests "$@" | wc -l)" 1
}

# run_mode N DATAPLANE SPEC MODE_NAME REPLACED: f faulty replicas 0..f-1.
run_mode() {
  local n=$1 dp=$2 spec=$3 mode=$4 replaced=$5 f=$(( ($1 - 1) / 3 )) i correct=() name
  name="n=$n $dp $spec"
  selected "$name" || return 0
  echo "# $name: replicas 0..$((f - 1)) Byzantine"
  new_cluster "m$n-$dp-${spec//[:,]/_}" "$n" "$dp" || { fail "$name: cluster up"; return; }
  for ((i = 0; i < f; i++)); do
    make_byzantine "$i" "$spec" || fail "$name: replica $i restarted with --byzantine"
  done
  for ((i = f; i < n; i++)); do correct+=("$i"); done
  workload "$name" "${correct[@]}"
  if [ "$mode" = crash ]; then
    check "$name: the replica crashed as asked" grep -q "crashing now" "$CDIR/replica-0/log"
  else
    check_ge "$name: the mode acted" "$(status 0 ".byzantine.applied[\"$mode\"]")" 1
  fi
  if [ "$replaced" = 1 ]; then
    check_ge "$name: every faulty primary replaced" "$(min_view "${correct[@]}")" "$f"
  fi
  drop_cluster
}

# kill_or_partition N DATAPLANE HOW: the primary killed (SIGKILL) or cut
# off (its link down); a new view is installed and clients continue.
primary_fault() {
  local n=$1 dp=$2 how=$3 name t i correct=()
  name="n=$n $dp primary $how"
  selected "$name" || return 0
  echo "# $name"
  new_cluster "p$n-$dp-$how" "$n" "$dp" || { fail "$name: cluster up"; return; }
  for ((i = 1; i < n; i++)); do correct+=("$i"); done
  check_eq "$name: a PUT before the fault" "$(timeout "$BOUND" bash "$REPO/scripts/cluster.sh" \
    --dir "$CDIR" exec hmctl put before fault)" OK
  if [ "$how" = killed ]; then
    cluster kill 0 >/dev/null
  else
    ip -n "$(replica_ns 0)" link set eth0 down
  fi
  t=$(first_commit_after "$BOUND")
  echo "# $name: time to the first commit in the new view: $t ms"
  check "$name: a commit within ${BOUND}s of the fault ($t ms)" [ "$t" != timeout ]
  check_ge "$name: a new view installed" "$(min_view "${correct[@]}")" 1
  workload "$name" "${correct[@]}"
  [ "$how" = partitioned ] && ip -n "$(replica_ns 0)" link set eth0 up
  drop_cluster
}

# A faulty client: one timestamp, different requests to the two halves.
faulty_client() {
  local name="n=4 socket faulty client"
  selected "$name" || return 0
  echo "# $name"
  new_cluster "client" 4 socket || { fail "$name: cluster up"; return; }
  local out rc
  out=$(HM_BYZANTINE_TESTS=1 "$REPO/build/hypermeshd" -c "$CDIR/cluster.yaml" --id 0 \
    --key "$CDIR/keys/replica-0.key" --data-dir "$FAULTS_BASE" --byzantine silent-primary \
    --i-know-this-is-a-test 2>&1)
  rc=$?
  check_eq "the shipped hypermeshd refuses --byzantine (exit 2)" "$rc" 2
  check "the shipped hypermeshd says --byzantine is test-only" \
    grep -q "test-only and not in this build" <<<"$out"
  out=$(env -u HM_BYZANTINE_TESTS "$REPO/build/hypermeshd-test" -c "$CDIR/cluster.yaml" --id 0 \
    --key "$CDIR/keys/replica-0.key" --data-dir "$FAULTS_BASE" --byzantine silent-primary 2>&1)
  rc=$?
  check "hypermeshd-test refuses --byzantine without --i-know-this-is-a-test (exit $rc)" \
    grep -q "Refused without --i-know-this-is-a-test" <<<"$out"
  out=$("$REPO/build/hypermeshd-test" -c "$CDIR/cluster.yaml" --id 0 --key "$CDIR/keys/replica-0.key" \
    --data-dir "$FAULTS_BASE" --byzantine no-such-mode --i-know-this-is-a-test 2>&1)
  check "hypermeshd-test refuses an unknown Byzantine mode" grep -q "bad Byzantine mode 'no-such-mode'" <<<"$out"
  check "$name: hmctl inject split-request" \
    bash "$REPO/scripts/cluster.sh" --dir "$CDIR" exec hmctl inject split-request --count 20
  workload "$name" 0 1 2 3
  # Requests without signatures (the default): each version reaches the
  # half it was sent to, f+1 vouches at most, so usually neither becomes
  # ready (2f+1) and neither executes; when one half's vouches reach the
  # other half before the client's own copy, that version is taken there
  # and executes.  So at most one took effect, the same one everywhere
  # (the digests above); with signed requests it was always one
  # (docs/protocol.md, "The faulty client").
  check "$name: at most one of the two conflicting requests took effect" grep -qxE 'a|b|NOT_FOUND' \
    <(timeout "$BOUND" bash "$REPO/scripts/cluster.sh" --dir "$CDIR" exec hmctl get split)
  drop_cluster
}

modes=(
  "crash:1500 crash 1"
  "silent-primary silent-primary 1"
  "equivocate equivocate 1"
  "forge-sig forge-sig 1"
  "corrupt-sig corrupt-sig 1"
  "replay:3 replay 0"
  "future-votes future-votes 0"
  "delay-votes:200 delay-votes 0"
  "bad-checkpoint bad-checkpoint 0"
)
for m in "${modes[@]}"; do
  read -r spec mode replaced <<<"$m"
  run_mode 4 socket "$spec" "$mode" "$replaced"
done
if [ "$SOAK" = 1 ]; then
  for m in "${modes[@]}"; do
    read -r spec mode replaced <<<"$m"
    run_mode 7 socket "$spec" "$mode" "$replaced"
    run_mode 4 xdp "$spec" "$mode" "$replaced"
  done
else
  run_mode 7 socket silent-primary silent-primary 1
  run_mode 7 socket "equivocate,forge-sig" equivocate 1
  run_mode 4 xdp equivocate equivocate 1
  run_mode 4 xdp future-votes future-votes 0
fi
primary_fault 4 socket killed
primary_fault 4 socket partitioned
primary_fault 7 socket killed
primary_fault 4 xdp killed
faulty_client

finish
