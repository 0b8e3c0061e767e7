# shellcheck shell=bash
# Assertions for the shell test suites.  Each suite sources this file, calls
# check/check_eq, and ends with `finish`, which prints "N passed, N failed"
# and returns non-zero on any failure.

HM_PASSED=0
HM_FAILED=0

pass() { HM_PASSED=$((HM_PASSED + 1)); echo "ok   $1"; }
fail() { HM_FAILED=$((HM_FAILED + 1)); echo "FAIL $1"; }

# check DESCRIPTION CMD...: passes when CMD exits 0.
check() {
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what (command: $*)"; fi
}

# check_eq DESCRIPTION ACTUAL EXPECTED
check_eq() {
  if [ "$2" == "$3" ]; then pass "$1"; else fail "$1: got '$2', expected '$3'"; fi
}

# check_ge DESCRIPTION ACTUAL MINIMUM (integers)
check_ge() {
  if [ "$2" -ge "$3" ] 2>/dev/null; then pass "$1"; else fail "$1: got '$2', expected >= $3"; fi
}

finish() {
  echo "$HM_PASSED passed, $HM_FAILED failed"
  [ "$HM_FAILED" -eq 0 ]
}
