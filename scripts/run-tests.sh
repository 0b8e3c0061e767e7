#!/usr/bin/env bash
# Run HyperMesh's tests and print one closing line "N passed, N failed".
#
#   scripts/run-tests.sh            everything (make test)
#   scripts/run-tests.sh --unit     unit tests (under ASan + UBSan), simulator, BPF selftests
#   scripts/run-tests.sh --e2e      the namespace suites
#   scripts/run-tests.sh --soak     long randomized simulator runs and repeated e2e
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 1
mode=${1:---all}
total_passed=0
total_failed=0
failed_suites=()
# Every FAIL line of the run, repeated at the end: CI shows a log's tail.
fail_lines=()

# A suite that hangs gets SIGTERM after this long (its trap removes what it
# made: namespaces, daemons, files), then SIGKILL 60 s later.
# (Soak suites run long on purpose: two hours each.)
default_timeout=900
[ "${1:-}" = --soak ] && default_timeout=7200
suite_timeout=${HM_SUITE_TIMEOUT:-$default_timeout}

# run_suite NAME CMD...: run one suite and add up its "N passed, N failed".
run_suite() {
  local name=$1; shift
  local log; log=$(mktemp)
  echo "=== $name"
  timeout --signal=TERM --kill-after=60 "$suite_timeout" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 124 ] && echo "FAIL $name: still running after ${suite_timeout}s, stopped"
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  local fl
  while IFS= read -r fl; do fail_lines+=("$name: $fl"); done < <(grep -E '^FAIL ' "$log")
  rm -f "$log"
  if [ -z "$line" ]; then
    echo "FAIL $name: no result line (exit $rc)"
    total_failed=$((total_failed + 1)); failed_suites+=("$name"); return
  fi
  local p f; p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
  total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    total_failed=$((total_failed + 1)); echo "FAIL $name: exit $rc"
  fi
  [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] && failed_suites+=("$name")
}

unit() {
  for t in build/san/tests/test_*; do
    run_suite "$(basename "$t") (asan+ubsan)" "$t"
  done
  # The randomized search (sim_checks.h): 1,000 + 500 + 512 = 2,012 seeds,
  # two shards in parallel on two cores, at -O2 (not under ASan).  The
  # issue-17 checks that fail on today's core are reported as SKIP until
  # HM_I17_PENDING drops their gate.
  HM_SIM_SEEDS=1000 run_suite "simulator random_schedules, 1000 seeds, 2 shards" \
    bash scripts/sim-sweep.sh 2 build/tests/test_sim random_schedules
  HM_SIM_SEEDS=500 HM_SIM_N=4 run_suite "Byzantine randomized_faults, 500 seeds at n = 4, 2 shards" \
    bash scripts/sim-sweep.sh 2 build/tests/test_byzantine randomized_faults
  HM_TWINS_COUNT=512 run_suite "Twins enumeration, 512 of 4096 scenarios, 2 shards" \
    bash scripts/sim-sweep.sh 2 build/tests/test_twins twins_enumeration
  # the same searches with the fast path on (docs/protocol.md, "The fast path")
  HM_SIM_SEEDS=300 run_suite "Byzantine randomized_faults_fast, 300 seeds (n = 4 and 7), 2 shards" \
    bash scripts/sim-sweep.sh 2 build/tests/test_byzantine randomized_faults_fast
  HM_TWINS_COUNT=256 run_suite "Twins enumeration with the fast path, 256 scenarios, 2 shards" \
    bash scripts/sim-sweep.sh 2 build/tests/test_twins twins_enumeration_fast
  run_suite "fuzz (quick)" bash scripts/fuzz.sh --quick
  # The operator's side without a cluster: hmctl init, --check-config,
  # --help/--version; make install into a staging tree, the unit checked.
  run_suite "command line (selftests/cli/test_cli.sh)" bash selftests/cli/test_cli.sh
  run_suite "make install (selftests/dist/test_install.sh)" bash selftests/dist/test_install.sh
}

e2e() {
  for t in selftests/e2e/e2e_*.sh; do
    run_suite "$(basename "$t")" bash "$t"
  done
}

soak() {
  # 60,000 + 40,000 seeds (n = 4 and 7) + the 4,096 Twins scenarios: each
  # sweep prints its seeds/s.  Measured rates (2 shards, shared 2 cores):
  # see README "Tests"; the Byzantine sweep takes longer than the default
  # watchdog, so it gets its own (HM_SOAK_BYZ_TIMEOUT, default 6 h).
  HM_SIM_SEEDS=${HM_SOAK_SCHED_SEEDS:-60000} run_suite "simulator random_schedules, many seeds" \
    bash scripts/sim-sweep.sh 2 build/tests/test_sim random_schedules
  local saved=$suite_timeout
  suite_timeout=${HM_SOAK_BYZ_TIMEOUT:-21600}
  HM_SIM_SEEDS=${HM_BYZ_SOAK_SEEDS:-40000} run_suite "Byzantine randomized runner, many seeds (n = 4 and 7)" \
    bash scripts/sim-sweep.sh 2 build/tests/test_byzantine randomized_faults
  suite_timeout=$saved
  HM_TWINS_COUNT=0 run_suite "Twins enumeration, all 4096 scenarios" \
    bash scripts/sim-sweep.sh 2 build/tests/test_twins twins_enumeration
  HM_SIM_SEEDS=${HM_BYZ_FAST_SOAK_SEEDS:-20000} run_suite "Byzantine randomized_faults_fast, many seeds (n = 4 and 7)" \
    bash scripts/sim-sweep.sh 2 build/tests/test_byzantine randomized_faults_fast
  HM_TWINS_COUNT=0 run_suite "Twins enumeration with the fast path, all 4096 scenarios" \
    bash scripts/sim-sweep.sh 2 build/tests/test_twins twins_enumeration_fast
  HM_PERSIST_ROUNDS=${HM_PERSIST_ROUNDS:-3000} run_suite "persist kill -9 crash test, many rounds" \
    build/tests/test_persist crash_recovery_kill9
  for i in 1 2 3; do
    HM_E2E_OPS=5000 run_suite "e2e_socket.sh, round $i" bash selftests/e2e/e2e_socket.sh
  done
  HM_SIM_SEEDS=2000 run_suite "simulator, lossy schedules with crashes" \
    build/tests/test_sim vc_lossy_schedules_safe
  HM_E2E_KILLS=15 run_suite "e2e_recovery.sh, 15 kill -9 rounds" bash selftests/e2e/e2e_recovery.sh
  HM_E2E_DATAPLANE=xdp run_suite "e2e_recovery.sh, xdp dataplane" bash selftests/e2e/e2e_recovery.sh
  HM_DNS_XDP_FUZZ=${HM_DNS_XDP_SOAK_QUERIES:-20000000} run_suite "XDP DNS responder vs userspace parser, 20M queries" \
    bash scripts/fuzz.sh --target xdp-dns
  HM_FAULTS_SOAK=1 run_suite "fault suite, every mode at n = 7 and in xdp mode" \
    bash selftests/e2e/e2e_faults.sh
  HM_E2E_SCALE_N=31 run_suite "31 replicas (f = 10), xdp dataplane: f down, primary killed" \
    bash selftests/e2e/e2e_scale_xdp.sh
}

case "$mode" in
  --unit) unit ;;
  --e2e) e2e ;;
  --soak) soak ;;
  --all) unit; e2e ;;
  *) echo "usage: $0 [--unit|--e2e|--soak]" >&2; exit 2 ;;
esac

echo
[ ${#fail_lines[@]} -gt 0 ] && printf '%s\n' "${fail_lines[@]}"
[ ${#failed_suites[@]} -gt 0 ] && echo "failed suites: ${failed_suites[*]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ] && [ ${#failed_suites[@]} -eq 0 ]
