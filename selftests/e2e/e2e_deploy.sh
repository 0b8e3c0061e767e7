#!/usr/bin/env bash
# docs/deployment.md, walked in namespaces: four "hosts" on one bridge, an
# authoritative server (NSD with zones signed now) standing in for the
# internet, and the operator's machine.  `hmctl init` writes the cluster
# for the four addresses; each replica-I/ is copied to host I's
# /etc/hypermesh (a directory of its own here); `hypermeshd --check-config`
# passes on each copy; hypermeshd starts from the copied files alone (not
# through systemd: see e2e_lifecycle.sh for that environment); then dig
# answers from every replica, hmctl with the operator's file, status and
# metrics.
#
#   h0..h3  198.18.5.1-4   hosts, one replica each (DNS on port 53)
#   auth    198.18.5.53    NSD: signed.hmtest (DNSSEC), unsigned.hmtest
#   op      198.18.5.200   the operator: dig, hmctl, curl
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/services.sh
source "$here/lib/services.sh"

need_tools e2e_deploy nsd ldns-signzone ldns-keygen dig curl jq || give_up "tools"
[ -x "$repo/build/hypermeshd" ] || { echo "e2e_deploy: make all first"; give_up "built"; }
hm_require_root || give_up "root"

p=hd$$
dir=$(mktemp -d /tmp/hm-e2e-deploy.XXXXXX)
cleanup() {
  hm_cleanup_prefix "$p" 3 >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

NET=198.18.5
AUTH=$NET.53 OP=$NET.200
addr() { echo "$NET.$(($1 + 1))"; }
etc() { echo "$dir/host$1/etc/hypermesh"; }
var() { echo "$dir/host$1/var/lib/hypermesh"; }
op() { ip netns exec "$p-op" "$@"; }
hmctl_op() { op env HM_CONFIG="$dir/init/client/hmctl.yaml" "$repo/build/hmctl" "$@"; }
d() { op dig @"$1" +time=8 +tries=1 "${@:2}" 2>&1; }
answers() { sed -n '/ANSWER SECTION/,/^$/p' <<<"$1" | grep -c "	$2	"; }

echo "# the network: four hosts, the authoritative server, the operator"
hm_ns_create "$p-sw" && hm_bridge_create "$p-sw" br0 || give_up "switch"
for i in 0 1 2 3; do
  hm_ns_create "$p-h$i" && hm_ns_connect "$p-h$i" eth0 "$(addr "$i")/24" "$p-sw" br0 "$p-h$i" ||
    give_up "host $i"
done
hm_ns_create "$p-op" && hm_ns_connect "$p-op" eth0 "$OP/24" "$p-sw" br0 "$p-op" || give_up "operator"
dns_build_zones "$dir/zones" >/dev/null 2>&1 || give_up "zones"
hm_ns_create "$p-auth" && hm_ns_connect "$p-auth" eth0 "$AUTH/24" "$p-sw" br0 "$p-auth" &&
  dns_nsd_start "$p-auth" "$dir/zones/honest" "$AUTH" || give_up "NSD"
pass "network and NSD"

echo "# hmctl init for the four addresses"
out=$("$repo/build/hmctl" init --out "$dir/init" --trust-anchor-file "$dir/zones/trust-anchors" \
  --stub "signed.hmtest.=$AUTH" --stub "unsigned.hmtest.=$AUTH" --stub "bogus.hmtest.=$AUTH" --allow 198.18.0.0/15 \
  "$(addr 0)" "$(addr 1)" "$(addr 2)" "$(addr 3)" 2>&1); rc=$?
check_eq "hmctl init exits 0" "$rc" 0
check "it says where each directory goes" grep -q "replica-3/hypermesh.yaml *$(addr 3)" <<<"$out"

echo "# copy each replica-I/ to host I's /etc/hypermesh, check it there"
for i in 0 1 2 3; do
  mkdir -p "$(etc "$i")" "$(var "$i")"
  cp -a "$dir/init/replica-$i/." "$(etc "$i")/"
  out=$("$repo/build/hypermeshd" --check-config "$(etc "$i")/hypermesh.yaml" 2>&1); rc=$?
  check_eq "host $i: hypermeshd --check-config exits 0" "$rc" 0
  check "host $i: it is replica $i" grep -q "replica $i; dns on" <<<"$out"
  check_eq "host $i: the key kept mode 0600" "$(stat -c %a "$(etc "$i")/replica-$i.key")" 600
done

echo "# start hypermeshd on every host from its files"
for i in 0 1 2 3; do
  # /var/lib/hypermesh is the host's own: here a directory per host
  hm_ns_spawn "$p-h$i" "$dir/host$i/pid" "$dir/host$i/log" "$repo/build/hypermeshd" \
    -c "$(etc "$i")/hypermesh.yaml" --data-dir "$(var "$i")"
done
end=$(hm_deadline 30)
for i in 0 1 2 3; do
  until grep -q "ready: replica $i of 4" "$dir/host$i/log" 2>/dev/null; do
    hm_before "$end" || break
    sleep 0.1
  done
  check "host $i: replica $i ready" grep -q "ready: replica $i of 4" "$dir/host$i/log"
done

echo "# dig against every replica"
for i in 0 1 2 3; do
  out=$(d "$(addr "$i")" www.signed.hmtest A +dnssec)
  check_eq "replica $i: NOERROR" "$(status_of "$out")" NOERROR
  check "replica $i: validated (AD)" has_flag "$(flags_of "$out")" ad
  check_eq "replica $i: both A records" "$(answers "$out" A)" 2
done
out=$(d "$(addr 2)" www.unsigned.hmtest A)
check_eq "unsigned zone: NOERROR" "$(status_of "$out")" NOERROR
check "unsigned zone: its address" grep -q "198.18.53.101" <<<"$out"
out=$(d "$(addr 1)" www.bogus.hmtest A +dnssec)
check_eq "a bogus signature: SERVFAIL" "$(status_of "$out")" SERVFAIL

echo "# the operator's hmctl"
out=$(hmctl_op dns query www.signed.hmtest A 2>&1); rc=$?
check_eq "hmctl dns query exits 0" "$rc" 0
check "the decided answer" grep -q "NOERROR (rule" <<<"$out"
hmctl_op dns query www.signed.hmtest A --cert >"$dir/cert.json" 2>/dev/null
check "a certificate that verifies offline" sh -c "'$repo/build/hmctl' -c '$dir/init/client/hmctl.yaml' verify '$dir/cert.json' | grep -q 'certificate OK'"
st=$("$repo/build/hmctl" status --socket "$(var 0)/control.sock" --json 2>&1)
check_eq "hmctl status: replica 0" "$(jq -r .id <<<"$st" 2>/dev/null)" 0
check_eq "hmctl status: its 3 peers" "$(jq -r '.detection.peers | length' <<<"$st" 2>/dev/null)" 3
check "HM_CONTROL_SOCKET names the socket" sh -c "HM_CONTROL_SOCKET='$(var 1)/control.sock' '$repo/build/hmctl' status --json | jq -e '.id == 1' >/dev/null"
m=$(op curl -s --max-time 5 "http://$(addr 3):9154/metrics")
check "metrics on port 9154" grep -q "^hypermesh_" <<<"$m"

echo "# stop: SIGTERM"
for i in 0 1 2 3; do
  pid=$(cat "$dir/host$i/pid")
  kill -TERM "$pid"
  hm_wait_pid_exit "$pid" "$p-h$i" 10
  check "host $i: stopped" grep -q "shutting down" "$dir/host$i/log"
done
finish
