#!/usr/bin/env bash
# The XDP dataplane's controller on real namespaces and veths: attach, pins
# with BTF, votes consumed in XDP, forged votes dropped in the kernel, TC
# fan-out, detach on SIGTERM, adopting programs attached by hand, and a
# clear refusal when the attach is impossible.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"

dir=$(mktemp -d /tmp/hm-xdpc.XXXXXX)
pin=/sys/fs/bpf/hypermesh/eth0
keeper=""
cluster() { bash "$repo/scripts/cluster.sh" --dir "$dir" "$@"; }
cleanup() {
  [ -n "$keeper" ] && kill "$keeper" 2>/dev/null
  cluster down >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

status() { "$repo/build/hmctl" status --socket "$dir/replica-$1/control.sock" | jq -r "$2"; }
# in replica I's namespace (and, while it runs, its mount namespace: the pins)
on() { local i=$1; shift; cluster exec-replica "$i" "$@"; }
ns_of() { . "$dir/state.env"; echo "$HM_PREFIX-r$1"; }
bench_ops() { grep -o '"ops":[0-9]*' <<<"$1" | cut -d: -f2; }

echo "# 4 replicas, xdp dataplane"
cluster up -n 4 --clients 4 --dataplane xdp >/dev/null || { fail "cluster up"; finish; exit 1; }

for m in hm_config hm_members hm_clients hm_blocklist node_stats hm_votes hm_events \
  hm_progress hm_tc_config hm_peers hm_tc_stats; do
  check "$m pinned in $pin" on 1 test -e "$pin/$m"
done
check "bpftool shows node_stats with field names" \
  sh -c "bash '$repo/scripts/cluster.sh' --dir '$dir' exec-replica 1 bpftool map dump pinned $pin/node_stats | grep -q '\"total_messages\"'"
check "bpftool names each drop counter by its reason (BTF)" \
  sh -c "bash '$repo/scripts/cluster.sh' --dir '$dir' exec-replica 1 bpftool map dump pinned $pin/node_stats | grep -q '\"bad_mac\": [0-9]'"

prog=$(on 1 ip link show dev eth0 | grep -o 'prog/xdp id [0-9]* name [a-z_]*' | awk '{print $NF}')
case "$prog" in
  hm_xdp) check_eq "status says the program runs alone" "$(status 1 .xdp.attach)" \
            "single program (kernel refused the libxdp dispatcher)" ;;
  xdp_dispatcher) check_eq "status says libxdp's dispatcher runs it" "$(status 1 .xdp.attach)" \
            "libxdp dispatcher" ;;
  *) fail "eth0 runs '$prog', neither hm_xdp nor xdp_dispatcher" ;;
esac

# Every replica resolves its peers (libnl) within moments of starting.
for i in 0 1 2 3; do
  want=$((15 & ~(1 << i)))
  for _ in $(seq 100); do [ "$(status $i .xdp.fanout_peers)" = "$want" ] && break; sleep 0.1; done
done
out=$(cluster exec hmctl bench --clients 4 --duration 60 --op put --ops 500)
check_eq "500 operations complete in xdp mode" "$(bench_ops "$out")" 500
kernel=$(status 1 '.xdp.node_stats["2"].total_messages')
user=$(status 1 '.peers["2"].accepted')
batches=$(status 1 .core.batches_executed)
# at least one vote of replica 2's per batch (a slow replica 2 may still be
# sending the rest)
check_ge "XDP saw replica 2's PREPAREs and COMMITs" "$kernel" "$batches"
check_ge "the controller reads how far the peers got (hm_progress)" \
  "$(status 1 .xdp.peers_progress)" "$batches"
check "votes were consumed in XDP: the controller got under half ($user of $kernel)" \
  test "$((2 * user))" -lt "$kernel"
check_ge "the TC program fanned broadcasts out" "$(status 1 .xdp.tc_stats.fanouts)" 1
check_ge "three copies per fan-out" "$(status 1 .xdp.tc_stats.copies)" \
  "$((3 * $(status 1 .xdp.tc_stats.fanouts)))"
check_eq "no fan-out errors" "$(status 1 .xdp.tc_stats.errors)" 0
check_eq "replica 1 fans out to 0, 2 and 3 (libnl resolved them)" "$(status 1 .xdp.fanout_peers)" 13

echo "# a link going down is a partition event"
ip -n "$(ns_of 1)" link set dev eth0 down
partitioned='[.xdp.partitions["0"], .xdp.partitions["2"], .xdp.partitions["3"]] | map(. // 0) | min'
for _ in $(seq 50); do [ "$(status 1 "$partitioned")" -ge 1 ] && break; sleep 0.1; done
check_eq "partition events for each peer behind eth0" \
  "$(status 1 "$partitioned")" 1
check_eq "no fan-out to peers it cannot reach" "$(status 1 .xdp.fanout_peers)" 0
ip -n "$(ns_of 1)" link set dev eth0 up
for _ in $(seq 50); do [ "$(status 1 .xdp.fanout_peers)" = 13 ] && break; sleep 0.2; done
check_eq "the fan-out resumes when the link is back" "$(status 1 .xdp.fanout_peers)" 13
check_eq "and the cluster serves" "$(cluster exec hmctl put after partition)" OK

echo "# forged votes are dropped in the kernel"
before=$(status 1 .drops.bad_address)
kbefore=$(status 1 '.xdp.node_stats["2"].drops.bad_address // 0')
seen=$(status 1 '.peers["2"].drops.bad_address // 0')
cluster exec hmctl inject forged-vote --replica 1 --count 1000 >/dev/null
for _ in $(seq 50); do
  [ "$(status 1 .drops.bad_address)" -ge "$((before + 1000))" ] && break
  sleep 0.1
done
check_eq "1000 forged votes counted as bad_address" "$(status 1 .drops.bad_address)" "$((before + 1000))"
check_eq "in XDP, against the replica they claim to be" \
  "$(status 1 '.xdp.node_stats["2"].drops.bad_address')" "$((kbefore + 1000))"
check_eq "the controller saw none of them" "$(status 1 '.peers["2"].drops.bad_address // 0')" "$seen"
check_eq "still serving" "$(cluster exec hmctl put after forged)" OK

echo "# SIGTERM detaches and unpins"
pid=$(cat "$dir/replica-1/pid")
# A process that keeps the daemon's mount namespace (and bpffs) alive.
nsenter --target "$pid" --mount --net -- sleep 600 &
keeper=$!
sleep 0.2
cluster stop 1 >/dev/null
check "no XDP program left on eth0" sh -c "! ip -n $(ns_of 1) link show dev eth0 | grep -q prog/xdp"
check "no TC filter left on eth0" sh -c "! tc -n $(ns_of 1) filter show dev eth0 egress | grep -q bpf"
check "pins removed" nsenter --target "$keeper" --mount -- test ! -e "$pin"
kill "$keeper" 2>/dev/null; keeper=""

echo "# programs attached by hand are adopted"
ns=$(ns_of 1)
ip -n "$ns" link set dev eth0 xdp obj "$repo/build/hm_xdp.bpf.o" sec xdp
tc -n "$ns" qdisc add dev eth0 clsact
tc -n "$ns" filter add dev eth0 egress prio 1 handle 1 bpf da obj "$repo/build/hm_tc.bpf.o" sec tc
cluster start 1 >/dev/null
check_eq "status says adopted" "$(status 1 .xdp.attach)" "adopted (attached by hand)"
check_eq "TC filter adopted" "$(status 1 .xdp.tc)" adopted
out=$(cluster exec hmctl bench --clients 4 --duration 60 --op put --ops 300)
check_eq "300 operations with the adopted programs" "$(bench_ops "$out")" 300
check_ge "the adopted program counted votes" "$(status 1 '.xdp.node_stats["2"].total_messages')" 100
cluster stop 1 >/dev/null
check "the hand-attached XDP program stays on exit" sh -c "ip -n $ns link show dev eth0 | grep -q 'name hm_xdp'"
check "the hand-attached TC filter stays on exit" sh -c "tc -n $ns filter show dev eth0 egress | grep -q hm_tc_egress"
ip -n "$ns" link set dev eth0 xdp off
tc -n "$ns" qdisc del dev eth0 clsact

echo "# an impossible attach is refused with the reason"
ip -n "$ns" link set dev eth0 xdp obj "$repo/build/hm_probe.bpf.o" sec xdp
cluster start 1 >/dev/null 2>&1
check "the daemon did not start beside a foreign XDP program" sh -c "! test -s '$dir/replica-1/pid' || ! kill -0 \$(cat '$dir/replica-1/pid') 2>/dev/null"
check "it says why" grep -q "dataplane xdp: cannot attach XDP to eth0" "$dir/replica-1/log"
ip -n "$ns" link set dev eth0 xdp off
sed 's/interface: eth0/interface: hm-no-such-if/' "$dir/cluster.yaml" >"$dir/noif.yaml"
err=$(ip netns exec "$ns" "$repo/build/hypermeshd" -c "$dir/noif.yaml" --id 1 \
  --key "$dir/keys/replica-1.key" 2>&1); rc=$?
check_eq "a missing interface stops the daemon" "$rc" 1
check "and it names the interface" grep -q "dataplane xdp: no interface hm-no-such-if" <<<"$err"
finish
