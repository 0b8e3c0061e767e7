#!/usr/bin/env bash
# make demo: HyperMesh doing its job, a DNS resolver whose answers f
# compromised replicas cannot forge, on 4 replicas (f = 1) in network
# namespaces with the XDP dataplane:
#   - an authoritative NSD with a signed, an unsigned and a bogus zone (set
#     up here: scripts/cluster.sh up --dns signs the test zones now);
#   - dig against every replica; replica 3 sits behind a poisoning upstream
#     and is outvoted, and counted (metric shown);
#   - a bogus name gives SERVFAIL with its reason (EDE text and log line);
#   - an answer's certificate of 2f+1 signatures, verified offline;
#   - a forged packet dropped in XDP (the drop counter, by name, in bpftool);
# then the key-value store and a crashed replica reported down.
# Everything it creates is removed at the end.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/hm-demo.XXXXXX)
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
trap 'cluster down >/dev/null 2>&1; rm -rf "$dir"' EXIT INT TERM
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
addr() { printf '198.18.0.%s' "$(($1 + 1))"; }
ask() { cluster exec dig @"$1" +time=6 +tries=1 "${@:2}"; }
metric() { cluster exec curl -s --max-time 5 "http://$(addr "$1"):9100/metrics" | grep -E "$2" || true; }
status() { "$repo/build/hmctl" status --json --socket "$dir/replica-$1/control.sock"; }

say "Start 4 resolver replicas (f=1), XDP dataplane, with an authoritative NSD; replica 3's upstream lies"
HM_READY_TIMEOUT=${HM_READY_TIMEOUT:-30} cluster up --dns --dns-poison 3 --dataplane xdp

say "dig against every replica: the signed zone validates (flag ad), the same answer everywhere"
for i in 0 1 2 3; do
  printf '$ dig @%s www.signed.hmtest A +dnssec\n' "$(addr "$i")"
  ask "$(addr "$i")" www.signed.hmtest A +dnssec | grep -E '^;; flags|^www' | grep -v RRSIG
done

say "The unsigned zone: replica 3's upstream answers 198.18.66.66; f+1 replicas agree on the truth"
printf '$ dig @%s www.unsigned.hmtest A +short   # replica 3, behind the poisoner\n' "$(addr 3)"
ask "$(addr 3)" www.unsigned.hmtest A +short
# replica 3's own (late) observation executes just after the decision
for _ in $(seq 40); do
  metric 0 '^hypermesh_dns_poisoned_observations_total\{replica="3"\} [1-9]' | grep -q . && break
  sleep 0.25
done
printf '$ curl http://%s:9100/metrics | grep poisoned\n' "$(addr 0)"
metric 0 '^hypermesh_dns_poisoned_observations_total'

say "A bogus signature: SERVFAIL, and the reason, in the reply (EDE) and in the log"
printf '$ dig @%s www.bogus.hmtest A\n' "$(addr 0)"
ask "$(addr 0)" www.bogus.hmtest A | grep -E 'status:|EDE'
for _ in $(seq 20); do grep -q 'msg=SERVFAIL' "$dir/replica-0/log" && break; sleep 0.25; done
printf '$ grep msg=SERVFAIL %s\n' "$dir/replica-0/log"
grep -m1 'msg=SERVFAIL' "$dir/replica-0/log" || true

say "A certified answer: 2f+1 replicas signed it; anyone with the public keys checks it offline"
printf '$ hmctl dns query www.signed.hmtest A --cert > cert.json\n'
cluster exec hmctl dns query www.signed.hmtest A --cert >"$dir/cert.json" 2>"$dir/cert.err"
sed 's/^/  /' "$dir/cert.err" | head -6
printf '  certificate: %s signatures\n' "$(jq '.signatures | length' "$dir/cert.json")"
printf '$ hmctl verify cert.json\n'
cluster exec hmctl verify "$dir/cert.json"

say "A forged packet (bad link MAC) is dropped in XDP, before userspace sees it"
run cluster exec hmctl inject bad-mac --replica 0 --count 5
for _ in $(seq 20); do
  [ "$(status 0 | jq '[.xdp.node_stats[].drops.bad_mac // 0] | add')" -ge 5 ] 2>/dev/null && break
  sleep 0.25
done
printf '$ bpftool map dump pinned /sys/fs/bpf/hypermesh/eth0/node_stats   # in replica 0, counters > 0\n'
cluster exec-replica 0 bpftool -j map dump pinned /sys/fs/bpf/hypermesh/eth0/node_stats |
  jq -r '.[] | select(.formatted.value.drops | to_entries | any(.value > 0)) |
         "  from \(if .formatted.key == 16 then "clients" elif .formatted.key == 17 then "unknown senders" else "replica \(.formatted.key)" end): " + ([.formatted.value.drops | to_entries[] | select(.value > 0) | "\(.key)=\(.value)"] | join(" "))'

say "The key-value store runs on the same replicas"
run cluster exec hmctl put greeting "hello, byzantine world"
run cluster exec hmctl get greeting

say "Crash replica 2 (kill -9): the others serve on; replica 0 reports it down, not Byzantine"
run cluster kill 2
ask "$(addr 1)" www.signed.hmtest A +short
for _ in $(seq 60); do
  [ "$(status 0 | jq -r '.detection.peers["2"].state')" = down ] && break
  sleep 0.5
done
printf '$ hmctl status --socket %s   # peers not up\n' "$dir/replica-0/control.sock"
status 0 | jq -r '.detection.peers | to_entries[] | "  peer \(.key): \(.value.state) (\(.value.state_reason))"'
metric 0 '^hypermesh_peer_state\{peer="2",state="(down|byzantine)"\}'

say "Done: tearing the cluster down"
cluster down
