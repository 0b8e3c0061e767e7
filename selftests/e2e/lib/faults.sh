# shellcheck shell=bash
# Helpers for the fault suite (selftests/e2e/e2e_faults.sh) and the view-change
# benchmark (scripts/bench_viewchange.sh): clusters of real hypermeshd
# processes in namespaces (scripts/cluster.sh), Byzantine replicas
# (the test build, hypermeshd-test --byzantine: scripts/cluster.sh picks it
# for a replica given --byzantine), and the safety and liveness checks.
#
# The caller sets REPO and FAULTS_BASE (a directory it removes) and calls
# faults_cleanup on exit.  Every cluster lives in its own directory under
# FAULTS_BASE; its namespaces carry cluster.sh's random prefix.

FAULTS_CLUSTERS=()
CDIR=""

cluster() { bash "$REPO/scripts/cluster.sh" --dir "$CDIR" "$@"; }
hmctl_status() { "$REPO/build/hmctl" status --socket "$CDIR/replica-$1/control.sock" 2>/dev/null; }
# status ID JQ: one field of replica ID's status.
status() { hmctl_status "$1" | jq -r "$2" 2>/dev/null; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

faults_cleanup() {
  local d
  for d in "${FAULTS_CLUSTERS[@]+"${FAULTS_CLUSTERS[@]}"}"; do
    [ -n "$d" ] || continue
    bash "$REPO/scripts/cluster.sh" --dir "$d" down >/dev/null 2>&1
  done
  FAULTS_CLUSTERS=()
}

# new_cluster NAME N DATAPLANE: a fresh cluster with short timeouts (view
# change 500 ms, client retransmission 300 ms, checkpoints every 20).
new_cluster() {
  CDIR="$FAULTS_BASE/$1"
  FAULTS_CLUSTERS+=("$CDIR")
  cluster up -n "$2" --clients 4 --dataplane "$3" \
    --set consensus.view_change_timeout_ms=500 --set consensus.timeout_ms=300 \
    --set consensus.checkpoint_interval=20 >"$CDIR.up.log" 2>&1 || {
    sed 's/^/    | /' "$CDIR.up.log"
    return 1
  }
}

drop_cluster() {
  local d keep=()
  cluster down >/dev/null 2>&1
  for d in "${FAULTS_CLUSTERS[@]}"; do [ "$d" = "$CDIR" ] || keep+=("$d"); done
  FAULTS_CLUSTERS=("${keep[@]+"${keep[@]}"}")
}

# selected NAME: false when HM_FAULTS_ONLY (an extended regex) is set and
# NAME does not match it (to run one case while debugging).
selected() { [ -z "${HM_FAULTS_ONLY:-}" ] || grep -Eq -- "$HM_FAULTS_ONLY" <<<"$1"; }

# make_byzantine ID SPEC: restart replica ID with --byzantine SPEC (before
# any operation, so that the restart loses nothing).
make_byzantine() {
  cluster stop "$1" >/dev/null || return 1
  # No operation ran, so it voted on nothing: a first start, not a restart
  # (a restarted replica would keep the restart rule and not lead its view:
  # docs/protocol.md, "Recovery").
  rm -f "$CDIR/replica-$1/state/incarnation"
  printf '%s\n' --byzantine "$2" --i-know-this-is-a-test >"$CDIR/replica-$1/extra-args"
  cluster start "$1" >/dev/null
}

# safety_sample IDS...: among the replicas that executed the same sequence
# number, one state digest.  Each status is one snapshot of one replica, so
# (last_executed, digest) pairs are consistent.  Prints "pairs mismatches".
safety_sample() {
  local i line
  declare -A seen=()
  local pairs=0 bad=0
  for i in "$@"; do
    line=$(status "$i" '"\(.last_executed) \(.state_digest)"') || continue
    [ -n "$line" ] || continue
    local seq=${line%% *} dig=${line#* }
    if [ -n "${seen[$seq]:-}" ]; then
      pairs=$((pairs + 1))
      [ "${seen[$seq]}" = "$dig" ] || bad=$((bad + 1))
    else
      seen[$seq]=$dig
    fi
  done
  echo "$pairs $bad"
}

# settled_digests IDS...: in lib/assert.sh.

# timed_put KEY VALUE BOUND_S: one replicated PUT; prints its latency in ms,
# or "timeout" if it did not complete within the bound.
timed_put() {
  local t0 out
  t0=$(now_ms)
  out=$(timeout "$3" bash "$REPO/scripts/cluster.sh" --dir "$CDIR" exec hmctl put "$1" "$2" 2>/dev/null)
  if [ "$out" = OK ]; then echo $(($(now_ms) - t0)); else echo timeout; fi
}

# first_commit_after_fault BOUND_S: PUTs until one completes; prints the
# ms from now to that commit, or "timeout".
first_commit_after() {
  local t0 end out
  t0=$(now_ms)
  end=$((t0 + $1 * 1000))
  while [ "$(now_ms)" -lt "$end" ]; do
    out=$(timeout "$1" bash "$REPO/scripts/cluster.sh" --dir "$CDIR" exec hmctl put vc-probe "$t0" 2>/dev/null)
    if [ "$out" = OK ]; then echo $(($(now_ms) - t0)); return 0; fi
  done
  echo timeout
}

# min_view IDS...: the lowest view among the replicas.
min_view() {
  local i v min=""
  for i in "$@"; do
    v=$(status "$i" .view)
    [ -n "$v" ] || continue
    if [ -z "$min" ] || [ "$v" -lt "$min" ]; then min=$v; fi
  done
  echo "${min:-0}"
}

# Replica ID's namespace (cluster.sh's naming).
# shellcheck disable=SC1091 # written by cluster.sh up
replica_ns() { (source "$CDIR/state.env" && echo "$HM_PREFIX-r$1"); }
