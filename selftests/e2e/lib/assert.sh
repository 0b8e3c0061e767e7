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

# poll SECONDS CMD...: true as soon as CMD is (tried every 0.2 s), false
# after SECONDS.
poll() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}

# settled_digests IDS...: wait (up to 20 s) until the replicas executed the
# same sequence, then print their distinct state digests (one line when they
# agree).  Needs the suite's `status ID JQ`.
settled_digests() {
  local i e prev same
  for _ in $(seq 100); do
    prev=""; same=1
    for i in "$@"; do
      e=$(status "$i" .last_executed)
      [ -n "$prev" ] && [ "$e" != "$prev" ] && same=0
      prev=$e
    done
    [ "$same" = 1 ] && break
    sleep 0.2
  done
  for i in "$@"; do status "$i" .state_digest; done | sort -u
}
