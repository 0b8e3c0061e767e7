#!/usr/bin/env bash
# End-to-end suite for the TC egress fan-out (kern/hm_tc.bpf.c) on real veths:
# a sender namespace, three peer namespaces and a bystander on a bridge.  The
# sender's eth0 gets the program with tc (clsact egress, as an operator would
# attach it by hand); the maps are filled by `test_tc_fanout --tool fill`,
# which finds them through the attached program's id.  Then:
#
#   1. the sender sends ONE HyperMesh message to the fan-out marker (the
#      subnet broadcast address, port 7000): each peer receives exactly one
#      copy, addressed to it (its address and its own port), with a MAC that
#      verifies under its link key and otherwise the bytes sent; the bystander
#      and the peers' HyperMesh port receive nothing (the original is
#      dropped);
#      the same again as a raw AF_PACKET frame whose UDP checksum is complete
#      (not offloaded), so the receivers check the rewritten checksums;
#   2. point-to-point messages are stamped for their peer on the way out,
#      and a non-HyperMesh datagram to a peer arrives unchanged;
#   3. control: with the filter removed the broadcast reaches every
#      listener's HyperMesh port, so step 1 would have caught a leak.
#
# Needs root, build/hm_tc.bpf.o and build/tests/test_tc_fanout (make).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"
# shellcheck source=scripts/lib/netns.sh
source "$repo/scripts/lib/netns.sh"

obj="$repo/build/hm_tc.bpf.o"
tool=("$repo/build/tests/test_tc_fanout" --tool)
port=7000
net=198.19.7
marker=$net.255
sender_addr=$net.1
peers=(1 2 3)
peer_addr() { echo "$net.$((1 + $1))"; }
peer_port() { echo "$((port + $1))"; }
bystander_addr=$net.9

hm_require_root || { fail "must run as root"; finish; exit 1; }
for f in "$obj" "${tool[0]}"; do
  [ -e "$f" ] || { fail "missing $f (run make)"; finish; exit 1; }
done

prefix=$(hm_make_prefix hmtc) || { fail "no namespace prefix"; finish; exit 1; }
dir=$(mktemp -d /tmp/hm-e2e-tc.XXXXXX)
cleanup() {
  hm_cleanup_prefix "$prefix" 1 >/dev/null 2>&1 || hm_cleanup_prefix "$prefix" 1
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sw="$prefix-sw"
ns_of() { echo "$prefix-$1"; }   # s (sender), r1..r3, x (bystander)

# connect ROLE ADDR: a namespace with eth0 (ADDR/24, broadcast set) on the bridge.
connect() {
  local ns; ns=$(ns_of "$1")
  hm_ns_create "$ns" && hm_ns_connect "$ns" eth0 "$2/24" "$sw" br0 "$prefix-$1"
}

echo "# topology $prefix: sender, peers 1-3 and a bystander on a bridge"
ok=1
hm_ns_create "$sw" && hm_bridge_create "$sw" br0 || ok=0
connect s "$sender_addr" || ok=0
for i in "${peers[@]}"; do connect "r$i" "$(peer_addr "$i")" || ok=0; done
connect x "$bystander_addr" || ok=0
check_eq "namespaces and veths created" "$ok" 1

echo "# attach with tc and fill the maps"
S=$(ns_of s)
ip netns exec "$S" tc qdisc add dev eth0 clsact
check "tc filter add dev eth0 egress bpf da obj hm_tc.bpf.o sec tc" \
  ip netns exec "$S" tc filter add dev eth0 egress bpf da obj "$obj" sec tc
prog_id=$(ip netns exec "$S" tc filter show dev eth0 egress | grep -o ' id [0-9]*' | head -1 | tr -dc 0-9)
check "the attached program has an id" test -n "$prog_id"
"${tool[@]}" keys "$dir" 4 || fail "key generation"
peer_args=()
for i in "${peers[@]}"; do
  mac=$(ip netns exec "$(ns_of "r$i")" cat /sys/class/net/eth0/address)
  peer_args+=("$i,$(peer_addr "$i"),$(peer_port "$i"),$mac")
done
ifindex=$(ip netns exec "$S" cat /sys/class/net/eth0/ifindex)
src_mac=$(ip netns exec "$S" cat /sys/class/net/eth0/address)
check "maps filled (hm_tc_config, hm_peers)" \
  "${tool[@]}" fill "$prog_id" "$dir" "$port" "$marker" "$ifindex" "$src_mac" "${peer_args[@]}"
"${tool[@]}" msg "$dir" "$dir/msg.bin" || fail "build the message"

# The listener: every datagram to the HyperMesh port or to the peer's own
# port, one line "local_port dst_addr src_addr:src_port hex", until the stop
# file appears.
cat >"$dir/listen.py" <<'EOF'
import os, select, socket, sys, time
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value; Python < 3.13 lacks it
out, stop, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
socks = {}
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind(("0.0.0.0", p))
    socks[s] = p
with open(out + ".ready", "w"):
    pass
deadline = time.time() + 30
with open(out, "w") as f:
    while not os.path.exists(stop) and time.time() < deadline:
        r, _, _ = select.select(list(socks), [], [], 0.05)
        for s in r:
            p = socks[s]
            data, anc, _, src = s.recvmsg(65535, 1024)
            dst = "?"
            for lvl, typ, val in anc:
                if lvl == socket.IPPROTO_IP and typ == IP_PKTINFO:
                    dst = socket.inet_ntoa(val[8:12])
            f.write("%d %s %s:%d %s\n" % (p, dst, src[0], src[1], data.hex()))
            f.flush()
EOF

# round NAME CMD...: start the listeners, run CMD in the sender namespace,
# give the copies time to arrive, stop the listeners.
round() {
  local name=$1 role i ports pids=()
  shift
  rm -f "$dir/stop"
  for role in r1 r2 r3 x; do
    case $role in
    r*) i=${role#r}; ports=("$port" "$(peer_port "$i")") ;;
    x) ports=("$port" "$((port + 1))" "$((port + 2))" "$((port + 3))") ;;
    esac
    rm -f "$dir/$name.$role" "$dir/$name.$role.ready"
    ip netns exec "$(ns_of "$role")" python3 "$dir/listen.py" "$dir/$name.$role" "$dir/stop" \
      "${ports[@]}" &
    pids+=($!)
  done
  for role in r1 r2 r3 x; do
    for _ in $(seq 100); do [ -e "$dir/$name.$role.ready" ] && break; sleep 0.05; done
    [ -e "$dir/$name.$role.ready" ] || fail "$name: listener in $role did not start"
  done
  ip netns exec "$S" "$@" || fail "$name: sending failed"
  sleep 1
  touch "$dir/stop"
  wait "${pids[@]}"
}
lines() { if [ -e "$1" ]; then grep -c . "$1"; else echo missing; fi; }
field() { sed -n "${2}p" "$1" | cut -d' ' -f"$3"; }
stats() { "${tool[@]}" stats "$prog_id" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# check_fanout NAME: the listeners of round NAME saw exactly one copy per
# peer, each addressed to it and stamped for it, and nothing else.
check_fanout() {
  local name=$1 i j f n total=0
  for i in "${peers[@]}"; do
    f="$dir/$name.r$i"
    n=$(lines "$f")
    check_eq "$name: peer $i: exactly one copy" "$n" 1
    [ "$n" = 1 ] || continue
    total=$((total + 1))
    check_eq "$name: peer $i: copy to its own port" "$(field "$f" 1 1)" "$(peer_port "$i")"
    check_eq "$name: peer $i: copy addressed to it" "$(field "$f" 1 2)" "$(peer_addr "$i")"
    check_eq "$name: peer $i: copy from the sender" "$(field "$f" 1 3)" "$sender_addr:$port"
    check "$name: peer $i: MAC verifies under its link key, bytes as sent" \
      "${tool[@]}" verify "$dir" "$i" "$dir/msg.bin" "$(field "$f" 1 4)"
    for j in "${peers[@]}"; do
      [ "$j" = "$i" ] && continue
      if "${tool[@]}" verify "$dir" "$j" "$dir/msg.bin" "$(field "$f" 1 4)" 2>/dev/null; then
        fail "$name: peer $i's copy verifies under peer $j's key"
      fi
    done
  done
  check_eq "$name: n-1 = 3 copies in all" "$total" 3
  check_eq "$name: the bystander received nothing (original dropped)" "$(lines "$dir/$name.x")" 0
}

# csum_errors ROLE: UDP InCsumErrors in ROLE's namespace.
csum_errors() {
  # shellcheck disable=SC2016  # awk program
  ip netns exec "$(ns_of "$1")" awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 }
    else print $c["InCsumErrors"] }' /proc/net/snmp
}

echo "# one broadcast to the fan-out marker $marker:$port (UDP socket: checksum offloaded)"
round fan "${tool[@]}" send "$dir/msg.bin" "$marker" "$port"
check_fanout fan
check_eq "stats: one fan-out" "$(stats fanouts)" 1
check_eq "stats: three copies" "$(stats copies)" 3
check_eq "stats: no errors" "$(stats errors)" 0
# Each copy re-enters eth0's egress hook as a point-to-point message to its
# peer and is stamped again, to the same value.
check_eq "stats: each copy passed the program again as point-to-point" "$(stats stamped)" 3

echo "# the same as a raw frame (full checksum in software, checked by the receivers)"
# A packet socket sees the egress verdict: the dropped original (TC_ACT_SHOT,
# NET_XMIT_DROP) is ENOBUFS, which the tool reports as exit status 3.  (A UDP
# socket hides it unless IP_RECVERR is set.)
# shellcheck disable=SC2016  # expanded by the inner sh
round raw sh -c '"$@"; echo $? >"$0"' "$dir/raw.rc" \
  "${tool[@]}" sendraw eth0 ff:ff:ff:ff:ff:ff "$sender_addr" "$marker" "$port" "$dir/msg.bin"
check_eq "raw: the sender is told its original was dropped (ENOBUFS)" "$(cat "$dir/raw.rc")" 3
check_fanout raw
check_eq "stats: two fan-outs" "$(stats fanouts)" 2
check_eq "stats: six copies" "$(stats copies)" 6
for i in "${peers[@]}"; do
  check_eq "peer $i: no UDP checksum errors" "$(csum_errors "r$i")" 0
done

echo "# point-to-point and non-HyperMesh traffic"
printf 'not hypermesh' >"$dir/plain.bin"
# shellcheck disable=SC2016  # expanded by the inner sh
round p2p sh -c '"$1" --tool send "$2" "$3" "$4" && "$1" --tool send "$2" "$5" "$6" &&
                 "$1" --tool send "$7" "$8" "$9"' sh "${tool[0]}" "$dir/msg.bin" \
  "$(peer_addr 2)" "$(peer_port 2)" "$(peer_addr 3)" "$port" \
  "$dir/plain.bin" "$(peer_addr 1)" "$(peer_port 1)"
check_eq "peer 2: one message to its port" "$(lines "$dir/p2p.r2")" 1
check "peer 2: stamped for peer 2" \
  "${tool[@]}" verify "$dir" 2 "$dir/msg.bin" "$(field "$dir/p2p.r2" 1 4)"
check_eq "peer 3: one message to the HyperMesh port" "$(lines "$dir/p2p.r3")" 1
check_eq "peer 3: on port $port" "$(field "$dir/p2p.r3" 1 1)" "$port"
check "peer 3: stamped for peer 3" \
  "${tool[@]}" verify "$dir" 3 "$dir/msg.bin" "$(field "$dir/p2p.r3" 1 4)"
check_eq "peer 1: the plain datagram arrives" "$(lines "$dir/p2p.r1")" 1
check_eq "peer 1: unchanged" "$(field "$dir/p2p.r1" 1 4)" "$(od -An -tx1 "$dir/plain.bin" | tr -d ' \n')"
check_eq "bystander: nothing" "$(lines "$dir/p2p.x")" 0
check_eq "stats: two more stamped" "$(stats stamped)" 8
check_eq "stats: still two fan-outs" "$(stats fanouts)" 2
check_eq "stats: still no errors" "$(stats errors)" 0
for i in "${peers[@]}"; do
  check_eq "peer $i: still no UDP checksum errors" "$(csum_errors "r$i")" 0
done

# Control: without the program the same broadcast reaches everyone's
# HyperMesh port unstamped, so the listeners above would have seen a leak.
echo "# control: filter removed, the broadcast goes out as sent"
ip netns exec "$S" tc filter del dev eth0 egress
round ctl "${tool[@]}" send "$dir/msg.bin" "$marker" "$port"
check_eq "control: the bystander receives the broadcast" "$(field "$dir/ctl.x" 1 2)" "$marker"
for i in "${peers[@]}"; do
  check_eq "control: peer $i receives it on port $port only" \
    "$(lines "$dir/ctl.r$i") $(field "$dir/ctl.r$i" 1 1)" "1 $port"
done

finish
