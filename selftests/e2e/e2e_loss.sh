#!/usr/bin/env bash
# End-to-end suite for the loss and duplication injector (kern/hm_loss.bpf.c)
# on a real veth pair between two namespaces, attached with plain tc and
# driven with build/loss_ctl, as the fault suite would:
#
#   1. egress on the sender, drop 30% + dup 10% for the receiver's address and
#      port: N numbered datagrams are sent; the counters saw exactly N, the
#      drop and dup counts are within 5.3 standard deviations of 30% and 10%
#      (each check fails a correct program with probability < 1.2e-7), and the
#      receiver got exactly the survivors: N - dropped distinct datagrams,
#      `duplicated` of them twice, nothing else;
#   2. ingress on the receiver, drop 10% + dup 20%: the same checks (the
#      clones are injected on the receive path, BPF_F_INGRESS);
#   3. a datagram to another port is left alone, and `loss_ctl ... clear all`
#      turns everything off: N sent, N received once each, no counter moves.
#
# Needs root, build/hm_loss.bpf.o and build/loss_ctl (make).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"
# shellcheck source=scripts/lib/netns.sh
source "$repo/scripts/lib/netns.sh"

obj="$repo/build/hm_loss.bpf.o"
ctl="$repo/build/loss_ctl"
N=${HM_LOSS_E2E_N:-20000}
port=9000
s_addr=198.18.61.1
r_addr=198.18.61.2

hm_require_root || { fail "must run as root"; finish; exit 1; }
for f in "$obj" "$ctl"; do
  [ -e "$f" ] || { fail "missing $f (run make)"; finish; exit 1; }
done
command -v python3 >/dev/null || { fail "python3 missing"; finish; exit 1; }

prefix=$(hm_make_prefix hmloss) || { fail "no namespace prefix"; finish; exit 1; }
dir=$(mktemp -d /tmp/hm-e2e-loss.XXXXXX)
cleanup() {
  hm_cleanup_prefix "$prefix" 1 >/dev/null 2>&1 || hm_cleanup_prefix "$prefix" 1
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

S="$prefix-s"
R="$prefix-r"
echo "# topology $prefix: $S ($s_addr) <-veth-> $R ($r_addr)"
ok=1
hm_ns_create "$S" && hm_ns_create "$R" || ok=0
ip link add eth0 netns "$S" type veth peer name eth0 netns "$R" || ok=0
ip -n "$S" addr add "$s_addr/24" dev eth0 && ip -n "$S" link set eth0 up || ok=0
ip -n "$R" addr add "$r_addr/24" dev eth0 && ip -n "$R" link set eth0 up || ok=0
check_eq "namespaces and veth created" "$ok" 1
# Permanent neighbour entries, so that no datagram waits for ARP.
s_mac=$(ip -n "$S" -br link show dev eth0 | awk '{print $3}')
r_mac=$(ip -n "$R" -br link show dev eth0 | awk '{print $3}')
ip -n "$S" neigh replace "$r_addr" lladdr "$r_mac" dev eth0 nud permanent &&
  ip -n "$R" neigh replace "$s_addr" lladdr "$s_mac" dev eth0 nud permanent ||
  fail "static neighbour entries"

# The traffic: `send ADDR PORT N` sends datagrams "seq" 0..N-1; `recv PORT OUT
# STOP` counts them until STOP exists and nothing arrived for 0.3 s, then
# writes "received distinct twice other".
cat >"$dir/udp.py" <<'EOF'
import os, select, socket, sys, time
if sys.argv[1] == "send":
    addr, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        s.sendto(b"%d" % i, (addr, port))
        if i % 256 == 255:
            time.sleep(0.002)  # stay well below the receiver's backlog
    sys.exit(0)
port, out, stop = int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 16 << 20)
s.bind(("0.0.0.0", port))
open(out + ".ready", "w").close()
seen, total, other, last = {}, 0, 0, time.time()
deadline = time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select([s], [], [], 0.05)
    if r:
        data = s.recv(2048)
        total += 1
        last = time.time()
        try:
            k = int(data)
            seen[k] = seen.get(k, 0) + 1
        except ValueError:
            other += 1
    elif os.path.exists(stop) and time.time() - last > 0.3:
        break
twice = sum(1 for v in seen.values() if v == 2)
more = sum(1 for v in seen.values() if v > 2)
with open(out, "w") as f:
    f.write("%d %d %d %d\n" % (total, len(seen), twice, other + more))
EOF

# round NAME PORT: receive on PORT in R while S sends N datagrams to it;
# sets the globals received distinct twice other.
round() {
  local name=$1 p=$2 pid
  rm -f "$dir/stop" "$dir/$name" "$dir/$name.ready"
  ip netns exec "$R" python3 "$dir/udp.py" recv "$p" "$dir/$name" "$dir/stop" &
  pid=$!
  for _ in $(seq 100); do [ -e "$dir/$name.ready" ] && break; sleep 0.05; done
  ip netns exec "$S" python3 "$dir/udp.py" send "$r_addr" "$p" "$N" || fail "$name: send"
  touch "$dir/stop"
  wait "$pid"
  read -r received distinct twice other <"$dir/$name" 2>/dev/null ||
    { fail "$name: no receiver result"; received=0 distinct=0 twice=0 other=0; }
  echo "# $name: received $received, distinct $distinct, twice $twice, other $other"
}

# counter NS DIR FIELD: counter FIELD of rule 0 of the program on NS's eth0 DIR.
counter() {
  ip netns exec "$1" "$ctl" dev eth0 "$2" show | awk -v f="$3" '$1 == 0 {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }'
}

# within NAME X N P Z: |X - N P| <= Z sqrt(N P (1 - P)).
within() {
  if python3 -c 'import math, sys
x, n, p, z = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
sys.exit(0 if abs(x - n * p) <= z * math.sqrt(n * p * (1 - p)) else 1)' "$2" "$3" "$4" "$5"; then
    pass "$1 ($2 of $3, p = $4)"
  else
    fail "$1: $2 of $3 is not within $5 sd of p = $4"
  fi
}

# check_round NAME NS DIR DROP DUP: the counters and the receiver agree.
check_round() {
  local name=$1 ns=$2 d=$3 seen dropped dup failed
  seen=$(counter "$ns" "$d" seen)
  dropped=$(counter "$ns" "$d" dropped)
  dup=$(counter "$ns" "$d" duplicated)
  failed=$(counter "$ns" "$d" dup_failed)
  echo "# $name counters: seen $seen dropped $dropped duplicated $dup dup_failed $failed"
  check_eq "$name: every datagram seen by the rule" "$seen" "$N"
  within "$name: drop rate" "${dropped:-0}" "$N" "$4" 5.3
  within "$name: dup rate" "${dup:-0}" "$N" "$5" 5.3
  check_eq "$name: no failed clone" "$failed" 0
  check_eq "$name: distinct received = sent - dropped" "$distinct" "$((N - ${dropped:-0}))"
  check_eq "$name: received twice = duplicated" "$twice" "${dup:-x}"
  check_eq "$name: received in all = sent - dropped + duplicated" "$received" \
    "$((N - ${dropped:-0} + ${dup:-0}))"
  check_eq "$name: nothing else received" "$other" 0
}

echo "# 1. egress on the sender: drop 30%, dup 10%"
ip netns exec "$S" tc qdisc add dev eth0 clsact
check "tc filter add dev eth0 egress bpf da obj hm_loss.bpf.o sec tc" \
  ip netns exec "$S" tc filter add dev eth0 egress bpf da obj "$obj" sec tc
check "loss_ctl set (egress)" \
  ip netns exec "$S" "$ctl" dev eth0 egress set 0 "dst=$r_addr,port=$port,drop=30%,dup=10%"
round egress "$port"
check_round egress "$S" egress 0.30 0.10

echo "# 2. ingress on the receiver: drop 10%, dup 20%"
ip netns exec "$S" "$ctl" dev eth0 egress clear all || fail "clear egress rules"
ip netns exec "$R" tc qdisc add dev eth0 clsact
check "tc filter add dev eth0 ingress bpf da obj hm_loss.bpf.o sec tc" \
  ip netns exec "$R" tc filter add dev eth0 ingress bpf da obj "$obj" sec tc
check "loss_ctl set (ingress)" \
  ip netns exec "$R" "$ctl" dev eth0 ingress set 0 "port=$port,drop=10%,dup=20%"
round ingress "$port"
check_round ingress "$R" ingress 0.10 0.20

echo "# 3. other port untouched; then everything off"
round other "$((port + 1))"
check_eq "other port: all received once" "$received $distinct $twice" "$N $N 0"
check_eq "other port: the rule saw nothing more" "$(counter "$R" ingress seen)" "$N"
check "loss_ctl clear all (ingress)" ip netns exec "$R" "$ctl" dev eth0 ingress clear all
check "loss_ctl reset all (ingress)" ip netns exec "$R" "$ctl" dev eth0 ingress reset all
round off "$port"
check_eq "rules cleared: all received once" "$received $distinct $twice $other" "$N $N 0 0"
check_eq "rules cleared: nothing shown" "$(ip netns exec "$R" "$ctl" dev eth0 ingress show)" ""
check "loss_ctl refuses a bad rule" sh -c \
  "! ip netns exec '$R' '$ctl' dev eth0 ingress set 0 drop=150% 2>/dev/null"
check "loss_ctl says when nothing is attached" sh -c \
  "ip netns exec '$R' '$ctl' dev eth0 egress show 2>&1 | grep -q 'no hm_loss program'"

finish
