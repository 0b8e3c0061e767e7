#!/usr/bin/env bash
# End-to-end: `make demo` (scripts/demo.sh) does what README says it shows,
# and leaves nothing behind: dig answers with AD from every replica, the
# poisoned replica counted, a SERVFAIL with its reason, a certificate
# verified offline, a forged packet dropped in XDP by name, the key-value
# store, a crashed replica reported down.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

need_tools e2e_demo nsd ldns-signzone dig jq curl bpftool || give_up "tools"
[ -x "$repo/build/hypermeshd" ] || { echo "e2e_demo: make all first"; give_up "built"; }
hm_require_root || give_up "root"

out=$(mktemp /tmp/hm-e2e-demo.XXXXXX)
trap 'rm -f "$out"' EXIT

bash "$repo/scripts/demo.sh" >"$out" 2>&1
check_eq "the demo ran to the end (exit 0)" "$?" 0
has() { grep -qE -- "$1" "$out"; }
not_has() { ! has "$1"; }
check_eq "dig: AD from all four replicas" "$(grep -c '^;; flags: qr rd ra ad;' "$out")" 4
check "the poisoned replica serves the agreed answer" has '^198\.18\.53\.101$'
check "the poisoned answer never shows" not_has '^198\.18\.66\.66$'
check "replica 3 counted as poisoned" has '^hypermesh_dns_poisoned_observations_total\{replica="3"\} [1-9]'
check "SERVFAIL" has 'status: SERVFAIL'
check "with the validator's reason in the EDE text" has 'EDE: 6 \(DNSSEC Bogus\): .*verification failed from 198\.18\.0\.53'
check "and in the log" has 'msg=SERVFAIL query="www.bogus.hmtest. A" .*reason='
check "a certificate of 3 signatures" has 'certificate: 3 signatures'
check "verified offline" has '^certificate OK'
check "the forged packets dropped in XDP, by name" has 'bad_mac=5'
check "the key-value store" has '^hello, byzantine world$'
check "the crashed replica is down" has 'peer 2: down \(unreachable'
check "and not Byzantine in the metrics" has '^hypermesh_peer_state\{peer="2",state="byzantine"\} 0$'
check "torn down" has '^cluster hm[0-9a-f]+ down$'
prefix=$(sed -n 's/.*prefix \(hm[0-9a-f]*\)$/\1/p' "$out" | head -1)
check "the cluster's prefix shown" [ -n "$prefix" ]
check_eq "no namespace of it left behind" "$(ip netns list | grep -c "^$prefix-")" 0
[ "$HM_FAILED" -eq 0 ] || sed 's/^/    | /' "$out"
finish
