#!/usr/bin/env bash
# Fault detection, block policy, metrics and status on a 4-replica xdp
# cluster in namespaces:
#   - the metrics endpoint parses with the Prometheus parser and its
#     counters move as traffic flows;
#   - a slow replica (SIGSTOP bursts) loses reputation and is not blocked;
#   - a replica that equivocates (two conflicting signed COMMITs, MACed on
#     each link, from its own address) is blocked by every correct replica,
#     its packets are then dropped in XDP (drops.blocked rises, the
#     controller sees none of them), metrics and status show it;
#   - a second proven offender is not blocked: the 2f+1 floor;
#   - after the cooldown the blocked replica is let back in; a repeat
#     doubles the cooldown; an operator can list and lift blocks;
#   - a non-canonical signature under a valid MAC is proof as well;
#   - an equivocating primary is blocked (socket mode: by the node's
#     pre-filter, with a transferable proof; xdp mode: in XDP) and the
#     others change view and serve.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"

dir=$(mktemp -d /tmp/hm-rep.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
cleanup() {
  # a stopped replica must not outlive the test
  [ -s "$dir/replica-1/pid" ] && kill -CONT "$(cat "$dir/replica-1/pid")" 2>/dev/null
  cluster down >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

PY=/usr/bin/python3 # Debian's, with python3-prometheus-client
sock() { echo "$dir/replica-$1/control.sock"; }
status() { "$repo/build/hmctl" status --json --socket "$(sock "$1")" | jq -r "$2"; }
blocked() { "$repo/build/hmctl" status --json --socket "$(sock "$1")" | jq -c .detection.blocked; }
blocks() { "$repo/build/hmctl" block list --json --socket "$(sock "$1")" | jq -r "$2"; }
control() { local i=$1; shift; "$repo/build/hmctl" control --socket "$(sock "$i")" "$@"; }
# One sample's value from replica I's endpoint, parsed by prometheus_client:
#   metric I NAME 'label=value,...'   (labels sorted by name; '' for none)
metric() {
  cluster exec-replica "$1" "$PY" -c '
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5).read().decode()
name, labels = sys.argv[1], sys.argv[2]
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        if s.name == name and ",".join("%s=%s" % kv for kv in sorted(s.labels.items())) == labels:
            print(int(s.value) if s.value == int(s.value) else s.value)
            sys.exit(0)
sys.exit("no sample %s{%s}" % (name, labels))' "$2" "${3:-}"
}
wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.2; done
}
blocked_is() { [ "$(blocked "$1")" = "$2" ]; }
refused() { blocks "$1" "[.decisions[] | select(.replica == $2 and .decision == \"refused\")] | length" | grep -qx 1; }
in_blocklist_map() { cluster exec-replica "$1" bpftool map dump pinned /sys/fs/bpf/hypermesh/eth0/hm_blocklist | grep -q "\"key\": $2"; }
caught_up() { [ "$(status "$1" .last_executed)" -ge "$(status 0 .last_executed)" ]; }
view_changes_counted() {
  "$repo/build/hmctl" metrics --socket "$(sock "$1")" | awk '$1 == "hypermesh_view_changes_total" {ok = $2 >= 1} END {exit !ok}'
}
not_in_blocklist_map() { ! in_blocklist_map "$@"; }
peer_field() { status "$1" ".detection.peers[\"$2\"].$3"; }
field_is() { [ "$(peer_field "$1" "$2" "$3")" = "$4" ]; }
# Replica 3 sends a forged proof to replica 2 (refused, blocks nobody), then
# equivocates towards replica 1 only: 1 catches it and sends the proof, 0
# and 2 block 3 on it without having seen a conflicting vote; then the
# blocks are lifted for what follows.
proof_checks() {
  local mode=$1 i
  echo "# $mode mode: a forged proof blocks nobody"
  check_eq "forged proof sent" "$(control 3 inject forged-proof to 2 | jq -r .injected)" forged-proof
  check "$mode: replica 2 refuses it" wait_for 3 field_is 2 3 proofs_refused 1
  sleep 0.6 # two judge steps
  check_eq "$mode: replica 2 blocks nobody" "$(blocked 2)" "[]"
  check_eq "$mode: and decided nothing" "$(blocks 2 '.decisions | length')" 0
  echo "# $mode mode: replica 3 equivocates towards replica 1 only"
  check_eq "injected" "$(control 3 inject equivocation to 1 | jq -r .injected)" equivocation
  check "$mode: replica 1 catches it" wait_for 3 blocked_is 1 '[3]'
  for i in 0 2; do
    check "$mode: replica $i blocks 3 on replica 1's proof" wait_for 3 blocked_is $i '[3]'
    check_eq "$mode: replica $i's decision" \
      "$(blocks $i '.decisions[0] | "\(.decision) \(.offence) \(.replica)"')" "block equivocation_proof 3"
    check "$mode: its evidence names the finder" \
      grep -q 'proof sent by replica 1' <<<"$(blocks $i '.decisions[0].evidence')"
    check_eq "$mode: replica $i saw no equivocation itself" "$(peer_field $i 3 proofs_sent)" 0
  done
  check_eq "$mode: replica 1 sent one proof" "$(peer_field 1 3 proofs_sent)" 1
  check_eq "$mode: replica 0 checked one" "$(peer_field 0 3 proofs_received)" 1
  [ "$mode" = xdp ] && check "$mode: replica 0's blocklist map holds 3" wait_for 2 in_blocklist_map 0 3
  check_eq "$mode: the cluster serves" "$(cluster exec hmctl put "proof-$mode" x)" OK
  for i in 0 1 2; do "$repo/build/hmctl" block lift 3 --socket "$(sock $i)" >/dev/null; done
  check_eq "$mode: lifted" "$(blocked 0)$(blocked 1)$(blocked 2)" "[][][]"
}
bench() { cluster exec hmctl bench --clients 2 --duration 30 --op put --ops "$1" >/dev/null; }

echo "# 4 replicas, xdp, judge every 250 ms, 6 s first cooldown, metrics on :9464"
HM_ALLOW_INJECT=1 cluster up -n 4 --clients 2 --dataplane xdp \
  --set consensus.checkpoint_interval=500 --set consensus.watermark_window=1000 \
  --set detection.judge_interval_ms=250 --set detection.block_cooldown_s=6 \
  --set detection.block_max_cooldown_s=60 --set detection.metrics_port=9464 \
  --set detection.metrics_address=0.0.0.0 >/dev/null || { fail "cluster up"; finish; exit 1; }

echo "# the metrics endpoint"
full=$(cluster exec-replica 1 "$PY" -c '
import urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5).read().decode()
print(len(list(text_string_to_metric_families(text))))' 2>&1)
check_ge "the whole exposition parses into families ($full)" "${full//[^0-9]/}" 20
r0=$(metric 1 hypermesh_consensus_rounds_total)
m0=$(metric 1 hypermesh_messages_accepted_total peer=clients)
bench 200
sleep 0.6
check "hypermesh_consensus_rounds_total moved ($r0 -> $(metric 1 hypermesh_consensus_rounds_total))" \
  test "$(metric 1 hypermesh_consensus_rounds_total)" -gt "$r0"
check "hypermesh_messages_accepted_total{peer=clients} moved" \
  test "$(metric 1 hypermesh_messages_accepted_total peer=clients)" -gt "$m0"
check "hypermesh_quorums_total counts quorums" test "$(metric 1 hypermesh_quorums_total)" -gt 0
check_eq "nobody blocked yet" "$(metric 1 hypermesh_blocked_nodes)" 0
check_eq "connectivity row: replica 1 hears 2" "$(metric 1 hypermesh_connectivity from=1,to=2)" 1

echo "# a slow replica loses reputation and is not blocked"
pid1=$(cat "$dir/replica-1/pid")
rep_before=$(status 0 '.detection.peers["1"].reputation')
# a light load for the whole of the stalls (ending on its own): the stalled
# replica must stay inside the window to catch up without state transfer
cluster exec bash -c 'end=$((SECONDS + 6)); while [ $SECONDS -lt $end ]; do
  hmctl put slow x >/dev/null; sleep 0.05; done' 2>/dev/null & load=$!
for _ in 1 2 3; do
  sleep 0.4; kill -STOP "$pid1"; sleep 1.5; kill -CONT "$pid1"
done
wait "$load"
rep_after=$(status 0 '.detection.peers["1"].reputation')
check "replica 0 lowered replica 1's reputation ($rep_before -> $rep_after)" \
  awk -v a="$rep_after" -v b="$rep_before" 'BEGIN { exit !(a < b - 0.1) }'
check_eq "and did not block it" "$(status 0 '.detection.peers["1"].blocked')" false
check_eq "no block decision against it" "$(blocks 0 '[.decisions[] | select(.replica == 1)] | length')" 0
check "the metric shows it too" awk -v a="$(metric 0 hypermesh_reputation peer=1)" 'BEGIN { exit !(a < 0.95) }'
check "replica 1 caught up after its stalls" wait_for 20 caught_up 1

echo "# replica 3 equivocates"
bench 50
check_eq "injection sent" "$(control 3 inject equivocation | jq -r .injected)" equivocation
for i in 0 1 2; do
  check "replica $i blocks replica 3" wait_for 3 blocked_is $i '[3]'
done
check "the decision carries the evidence (both digests)" \
  sh -c "\"$repo/build/hmctl\" block list --json --socket $(sock 0) | jq -r '.decisions[0].evidence' | grep -q 'COMMIT view .* signed digests .* and '"
# (caught by replica 0 itself, or first proven to it by another's proof)
first=$(blocks 0 '.decisions[0] | "\(.decision) \(.offence) \(.replica) \(.cooldown_s)"')
check "decision: block for 6 s ($first)" \
  grep -qxE 'block (equivocation|equivocation_proof) 3 6' <<<"$first"
check "the blocklist map holds replica 3" wait_for 2 in_blocklist_map 0 3
kb=$(status 0 '.xdp.node_stats["3"].drops.blocked // 0')
ua=$(status 0 '.peers["3"].accepted')
bench 100
sleep 0.3
check "XDP drops replica 3's packets as blocked ($kb -> $(status 0 '.xdp.node_stats["3"].drops.blocked // 0'))" \
  test "$(status 0 '.xdp.node_stats["3"].drops.blocked // 0')" -gt "$kb"
check_eq "the controller saw none of them" "$(status 0 '.peers["3"].accepted')" "$ua"
check_eq "metrics: replica 3 blocked" "$(metric 0 hypermesh_peer_blocked peer=3)" 1
check "metrics: blocked drops for replica 3" test "$(metric 0 hypermesh_drops_total peer=3,reason=blocked)" -gt 0
check_eq "metrics: replica 0 sent the other replicas one proof against 3" \
  "$(metric 0 hypermesh_equivocation_proofs_total kind=sent,peer=3)" 1
check_eq "status table marks it proven Byzantine and blocked" \
  "$("$repo/build/hmctl" status --table --socket "$(sock 0)" | awk '$1 == 3 {print $2, $8}')" "byzantine BLOCKED"
check_eq "the cluster still serves" "$(cluster exec hmctl put during-block x)" OK

echo "# the 2f+1 floor: a second offender is not blocked"
control 2 inject equivocation >/dev/null
check "replica 0 refuses to block replica 2" \
  wait_for 3 refused 0 2
check_eq "only replica 3 is blocked" "$(blocked 0)" "[3]"
check_eq "refusal counted in metrics" "$(metric 0 hypermesh_block_refusals_total)" 1

echo "# after the cooldown replica 3 is let back in"
check "replica 0 unblocks 3 within the cooldown" wait_for 8 blocked_is 0 '[]'
check "the map entry is gone" not_in_blocklist_map 0 3
acc=$(status 0 '.xdp.node_stats["3"].total_messages')
bench 100
check "replica 3's messages reach replica 0 again" test "$(status 0 '.xdp.node_stats["3"].total_messages')" -gt "$acc"
check_ge "expiry logged" "$(blocks 0 '[.decisions[] | select(.decision == "expired" and .replica == 3)] | length')" 1

echo "# a repeat doubles the cooldown; an operator lifts it"
control 3 inject equivocation >/dev/null
check "blocked again" wait_for 3 blocked_is 0 '[3]'
# (replica 3's own honest COMMIT for the injected seq, once the group gets
# there, is a real second equivocation too: count strikes, not blocks)
last=$(blocks 0 '[.decisions[] | select(.decision == "block" or .decision == "extended")] | last | "\(.strikes) \(.cooldown_s)"')
check_ge "a repeat offence: strike ${last% *}" "${last% *}" 2
check_eq "the cooldown doubled with each strike" "${last#* }" \
  "$(awk -v k="${last% *}" 'BEGIN { c = 6 * 2 ^ (k - 1); print (c > 60 ? 60 : c) }')"
check "hmctl block lift" sh -c "\"$repo/build/hmctl\" block lift 3 --socket $(sock 0) | grep -q 'lifted the block on replica 3'"
check_eq "unblocked at once" "$(blocked 0)" "[]"
check "lifting again is an error" sh -c "! \"$repo/build/hmctl\" block lift 3 --socket $(sock 0) 2>/dev/null"
check "the list shows the lift" sh -c "\"$repo/build/hmctl\" block list --socket $(sock 0) | grep -q 'lifted.*operator'"
check "a client that sends nothing still gets the status" "$PY" -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
sys.exit(0 if json.loads(data)["id"] == 0 else 1)' "$(sock 0)"
check "an unknown request gets an error" sh -c "\"$repo/build/hmctl\" control --socket $(sock 0) frobnicate | grep -q unknown"
echo "# a signature that cannot verify, under a valid link MAC, is proof too"
control 3 inject bad-signature >/dev/null
check "replica 0 blocks replica 3 for it" wait_for 3 blocked_is 0 '[3]'
check_eq "offence: bad_signature" \
  "$(blocks 0 '[.decisions[] | select(.decision == "block")] | last | .offence')" bad_signature
check "counted in XDP as noncanonical_sig" test "$(status 0 '.xdp.node_stats["3"].drops.noncanonical_sig // 0')" -ge 1

echo "# socket mode: the primary equivocates; the others block it and change view"
cluster down >/dev/null 2>&1
HM_ALLOW_INJECT=1 cluster up -n 4 --clients 2 --dataplane socket \
  --set detection.judge_interval_ms=250 --set detection.block_cooldown_s=60 \
  --set consensus.view_change_timeout_ms=1000 >/dev/null ||
  { fail "cluster up (socket)"; finish; exit 1; }
check_eq "serving" "$(cluster exec hmctl put socket-mode x)" OK
check_eq "replica 0 is the primary" "$(status 1 .primary)" 0
proof_checks socket
control 0 inject equivocation >/dev/null
for i in 1 2 3; do
  check "replica $i blocks replica 0" wait_for 3 blocked_is $i '[0]'
done
check_eq "a transferable proof kept (both signed votes)" \
  "$(status 1 '.detection.peers["0"].equivocation_proof | length')" 528
check "its signatures verified" sh -c "\"$repo/build/hmctl\" block list --json --socket $(sock 1) | jq -r '[.decisions[] | select(.replica == 0)][0].evidence' | grep -q 'verified'"
ub=$(status 1 '.peers["0"].drops.blocked // 0')
check_eq "the cluster serves after a view change" "$(cluster exec hmctl put after-primary x)" OK
check "the pre-filter drops the old primary's packets as blocked" \
  test "$(status 1 '.peers["0"].drops.blocked // 0')" -gt "$ub"
check "view changed" test "$(status 1 .view)" -ge 1
check "replica 1 no longer follows replica 0" test "$(status 1 .primary)" -ne 0
check "metrics count the view change" wait_for 2 view_changes_counted 1
echo "# xdp mode: the primary equivocates; blocked in XDP, the others change view"
cluster down >/dev/null 2>&1
HM_ALLOW_INJECT=1 cluster up -n 4 --clients 2 --dataplane xdp \
  --set detection.judge_interval_ms=250 --set detection.block_cooldown_s=60 \
  --set consensus.view_change_timeout_ms=1000 >/dev/null ||
  { fail "cluster up (xdp, primary)"; finish; exit 1; }
check_eq "serving" "$(cluster exec hmctl put xdp-primary x)" OK
proof_checks xdp
control 0 inject equivocation >/dev/null
for i in 1 2 3; do
  check "replica $i blocks the primary" wait_for 3 blocked_is $i '[0]'
done
check_eq "the cluster serves after a view change" "$(cluster exec hmctl put xdp-after-primary x)" OK
for i in 1 2 3; do
  check_eq "replica $i follows replica 1 in view 1" "$(status $i '"\(.view) \(.primary)"')" "1 1"
done
check "XDP drops the old primary's packets" test "$(status 1 '.xdp.node_stats["0"].drops.blocked // 0')" -gt 0
finish
