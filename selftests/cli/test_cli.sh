#!/usr/bin/env bash
# The operator's command line without a cluster: hmctl init (the files,
# their modes, refusals), hypermeshd --check-config on what it wrote and on
# broken files, --version and --help everywhere, the exit codes of
# hmctl(8) and hypermeshd(8).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$repo/selftests/e2e/lib/assert.sh"

hmctl=$repo/build/hmctl
hmd=$repo/build/hypermeshd
dir=$(mktemp -d /tmp/hm-cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
rc_of() { "$@" >/dev/null 2>&1; echo $?; }
mode_of() { stat -c %a "$1"; }
addrs=(198.18.1.1 198.18.1.2 198.18.1.3 198.18.1.4)

echo "# --version: one release string for both programs"
v=$("$hmd" --version); check "hypermeshd --version" grep -qE '^hypermeshd [0-9]' <<<"$v"
check_eq "hmctl --version is the same release" "$("$hmctl" --version | cut -d' ' -f2)" "${v#hypermeshd }"

echo "# --help for every command, with no configuration"
unset HM_CONFIG
for c in init keygen status block metrics control put get bench dns inject cert verify; do
  out=$("$hmctl" "$c" --help 2>&1); rc=$?
  check_eq "hmctl $c --help exits 0" "$rc" 0
  check "hmctl $c --help prints its usage" grep -q "hmctl.* $c" <<<"$out"
done
check_eq "hmctl --help" "$(rc_of "$hmctl" --help)" 0
check_eq "hypermeshd --help" "$(rc_of "$hmd" --help)" 0
check_eq "an unknown command: usage, exit 2" "$(rc_of "$hmctl" frobnicate)" 2
check_eq "hypermeshd with an unknown option: exit 2" "$(rc_of "$hmd" --frobnicate)" 2

echo "# hmctl init: 4 replicas"
out=$("$hmctl" init --out "$dir/c" --metrics-port 9154 "${addrs[@]}"); rc=$?
check_eq "init exits 0" "$rc" 0
for i in 0 1 2 3; do
  check "replica $i: its file" test -s "$dir/c/replica-$i/hypermesh.yaml"
  check_eq "replica $i: its secret key is 0600" "$(mode_of "$dir/c/replica-$i/replica-$i.key")" 600
  check_eq "replica $i: only its own secret key" "$(ls "$dir/c/replica-$i"/*.key | wc -l)" 1
  check "replica $i: its address in the summary" grep -q "replica-$i/hypermesh.yaml *${addrs[$i]}" <<<"$out"
  out_i=$("$hmd" --check-config "$dir/c/replica-$i/hypermesh.yaml"); rc=$?
  check_eq "replica $i: --check-config exits 0" "$rc" 0
  check "replica $i: --check-config names the replica" grep -q "ok: 4 replicas (f=1).*replica $i; dns on" <<<"$out_i"
done
check_eq "the client key is 0600" "$(mode_of "$dir/c/client/client-100.key")" 600
check "the client file checks as client 100" sh -c "'$hmd' --check-config '$dir/c/client/hmctl.yaml' | grep -q 'client 100'"
check_eq "the files differ only in node:" \
  "$(diff <(sed '/^node:/,$d; /^#/d' "$dir/c/replica-0/hypermesh.yaml") <(sed '/^node:/,$d; /^#/d' "$dir/c/replica-3/hypermesh.yaml") && echo same)" same
check "DNS on by default, with the root trust anchor" grep -q "trust_anchor_file: /usr/share/dns/root.key" "$dir/c/replica-0/hypermesh.yaml"
check "metrics port written" grep -q "metrics_port: 9154" "$dir/c/replica-0/hypermesh.yaml"

echo "# init refuses to overwrite keys"
sum=$(cat "$dir"/c/*/*.key | md5sum)
err=$("$hmctl" init --out "$dir/c" "${addrs[@]}" 2>&1); rc=$?
check_eq "a second init exits 1" "$rc" 1
check "it names the existing key" grep -q "replica-0.key exists" <<<"$err"
check_eq "no key changed" "$(cat "$dir"/c/*/*.key | md5sum)" "$sum"
check_eq "--force overwrites" "$(rc_of "$hmctl" init --out "$dir/c" --force "${addrs[@]}")" 0
check "with new keys" test "$(cat "$dir"/c/*/*.key | md5sum)" != "$sum"

echo "# init refusals and options"
check_eq "5 addresses (not 3f+1): exit 1" "$(rc_of "$hmctl" init --out "$dir/x" "${addrs[@]}" 198.18.1.5)" 1
check_eq "a host name: exit 1" "$(rc_of "$hmctl" init --out "$dir/x" a.example 198.18.1.2 198.18.1.3 198.18.1.4)" 1
check_eq "an address twice: exit 1" "$(rc_of "$hmctl" init --out "$dir/x" 198.18.1.1 198.18.1.1 198.18.1.3 198.18.1.4)" 1
check_eq "no --out: exit 2" "$(rc_of "$hmctl" init "${addrs[@]}")" 2
check_eq "xdp without --interface: exit 2" "$(rc_of "$hmctl" init --out "$dir/x" --dataplane xdp "${addrs[@]}")" 2
check_eq "a client id that is a replica's: exit 1" "$(rc_of "$hmctl" init --out "$dir/x" --client-id 2 "${addrs[@]}")" 1
check_eq "a bad --allow prefix: exit 1" "$(rc_of "$hmctl" init --out "$dir/x" --allow 198.18.0.1/15 "${addrs[@]}")" 1
check "nothing written by the refusals" test ! -e "$dir/x/replica-0"
check "no --allow: loopback only, said in the file" grep -q "only loopback clients are served" "$dir/c/replica-0/hypermesh.yaml"
"$hmctl" init --out "$dir/acl" --allow 198.18.0.0/15 --allow 2001:db8::/32 "${addrs[@]}" >/dev/null
check "--allow written as dns.allow" grep -q "^      - '2001:db8::/32'" "$dir/acl/replica-2/hypermesh.yaml"
check "and accepted by --check-config" "$hmd" --check-config "$dir/acl/replica-2/hypermesh.yaml"
"$hmctl" init --out "$dir/v6" --dataplane xdp --interface eth1 --port 7100 --no-dns --metrics-port 0 \
  --client-id 500 2001:db8::1 2001:db8::2 2001:db8::3 2001:db8::4 2001:db8::5 2001:db8::6 2001:db8::7 >/dev/null
check "7 IPv6 replicas (f=2), xdp, no DNS: valid" sh -c "'$hmd' --check-config '$dir/v6/replica-6/hypermesh.yaml' | grep -q 'ok: 7 replicas (f=2), dataplane xdp; replica 6; dns off'"
check "the interface is written" grep -q "interface: eth1" "$dir/v6/replica-0/hypermesh.yaml"
"$hmctl" init --out "$dir/up" --forward 198.18.9.53@5353 --stub example.=198.18.9.54 "${addrs[@]}" >/dev/null
check "--forward and --stub become upstreams" sh -c "grep -q \"zone: '.', address: '198.18.9.53@5353', mode: forward\" '$dir/up/replica-0/hypermesh.yaml' && grep -q \"zone: 'example.', address: '198.18.9.54', mode: stub\" '$dir/up/replica-0/hypermesh.yaml'"
check "and the file is valid" sh -c "'$hmd' --check-config '$dir/up/replica-1/hypermesh.yaml' >/dev/null"
check_eq "a bad --forward address: exit 2" "$(rc_of "$hmctl" init --out "$dir/y" --forward resolver.example "${addrs[@]}")" 2

echo "# --check-config on broken files: exit 1 with file:line:key"
sed 's/max_faulty_nodes: 1 /max_faulty_nodes: abc /' "$dir/c/replica-0/hypermesh.yaml" >"$dir/c/replica-0/bad.yaml"
err=$("$hmd" --check-config "$dir/c/replica-0/bad.yaml" 2>&1); rc=$?
check_eq "a bad value: exit 1" "$rc" 1
check "file:line:key" grep -qE "bad.yaml:[0-9]+: byzantine_config.consensus.max_faulty_nodes: " <<<"$err"
cp "$dir/c/replica-1/replica-1.key" "$dir/c/replica-0/replica-1.key"
sed 's/private_key: replica-0.key/private_key: replica-1.key/' "$dir/c/replica-0/hypermesh.yaml" >"$dir/c/replica-0/wrongkey.yaml"
err=$("$hmd" --check-config "$dir/c/replica-0/wrongkey.yaml" 2>&1); rc=$?
check_eq "another replica's key: exit 1" "$rc" 1
check "it says whose key it is not" grep -q "is not the key of replica 0" <<<"$err"
sed 's/^  network:$/  network:\n    max_message_size: 1024/' "$dir/c/replica-0/hypermesh.yaml" >"$dir/c/replica-0/small.yaml"
err=$("$hmd" --check-config "$dir/c/replica-0/small.yaml" 2>&1); rc=$?
check_eq "max_message_size too small for a VIEW-CHANGE: exit 1" "$rc" 1
check "it says so" grep -q "max_message_size 1024 is too small for a VIEW-CHANGE" <<<"$err"
sed 's|trust_anchor_file: .*|trust_anchor_file: /nonexistent/anchors|' "$dir/c/replica-0/hypermesh.yaml" >"$dir/c/replica-0/noanchor.yaml"
err=$("$hmd" --check-config "$dir/c/replica-0/noanchor.yaml" 2>&1); rc=$?
check_eq "missing trust anchors: exit 1" "$rc" 1
check "named" grep -q "trust anchors: /nonexistent/anchors" <<<"$err"
check_eq "a missing file: exit 1" "$(rc_of "$hmd" --check-config "$dir/none.yaml")" 1
check_eq "the daemon itself exits 2 on the bad file" "$(rc_of "$hmd" -c "$dir/c/replica-0/bad.yaml")" 2

echo "# --check-config and the specification's keys (issue 13: consensus.algorithm, fault_detection, security, quic_transport)"
spec=$dir/c/replica-0/spec.yaml
sed 's/^  consensus:$/  consensus:\n    algorithm: "pbft"/' "$dir/c/replica-0/hypermesh.yaml" |
  sed 's/^  network:$/  network:\n    max_message_size: 65536\n    quic_transport: false/' |
  sed 's/^  detection:$/  fault_detection:\n    enabled: true\n    reputation_threshold: 0.5\n    anomaly_detection: true\n    statistical_analysis: true\n    ebpf_monitoring: false\n  security:\n    signature_algorithm: "ed25519"\n    message_authentication: true\n    certificate_validation: true\n    ct_log_verification: true\n  detection:/' >"$spec"
check "the keys are in the file" grep -q "reputation_threshold: 0.5" "$spec"
out=$("$hmd" --check-config "$spec" 2>&1); rc=$?
check_eq "the specification's keys: --check-config exits 0" "$rc" 0
check "and says ok" grep -q "ok: 4 replicas (f=1)" <<<"$out"
sed 's/quic_transport: false/quic_transport: true/' "$spec" >"$dir/c/replica-0/quic.yaml"
err=$("$hmd" --check-config "$dir/c/replica-0/quic.yaml" 2>&1); rc=$?
check_eq "quic_transport: true: exit 1" "$rc" 1
check "with file:line:key and the reason" grep -qE "quic.yaml:[0-9]+: byzantine_config.network.quic_transport: true is not supported: replica messages stay one UDP datagram" <<<"$err"
sed 's/enabled: true/enabled: false/; s/^  detection:$/  detection:\n    enabled: true/' "$spec" >"$dir/c/replica-0/conflict.yaml"
err=$("$hmd" --check-config "$dir/c/replica-0/conflict.yaml" 2>&1); rc=$?
check_eq "fault_detection and detection disagree: exit 1" "$rc" 1
check "the conflict is named" grep -q "byzantine_config.fault_detection.enabled: conflicts with byzantine_config.detection.enabled" <<<"$err"

echo "# the control socket default"
err=$(HM_CONTROL_SOCKET="$dir/no.sock" "$hmctl" status 2>&1); rc=$?
check_eq "status without a daemon: exit 1" "$rc" 1
check "\$HM_CONTROL_SOCKET is used and named" grep -q "$dir/no.sock" <<<"$err"
err=$(env -u HM_CONTROL_SOCKET "$hmctl" status 2>&1)
check "otherwise /run/hypermesh/control.sock, with a hint" grep -q "/run/hypermesh/control.sock: .*give --socket" <<<"$err"
finish
