#!/usr/bin/env bash
# A replica's life as systemd runs it, in xdp mode on namespaces: the
# capabilities bounded to the unit's CapabilityBoundingSet
# (dist/hypermeshd.service.in), NOTIFY_SOCKET bound by the test (the
# service manager's side of sd_notify), RUNTIME_DIRECTORY a fresh
# /run/hypermesh.  READY=1 arrives only once the replica serves, and never
# from a start that fails; hmctl finds the control socket with no --socket;
# SIGHUP never stops it (a valid and a broken file on disk); SIGTERM and a
# fatal error after the XDP attach leave no XDP or TC program and no pin;
# after kill -9, `hypermeshd --cleanup` (the unit's ExecStopPost) removes
# what was left and the replica starts again.
#
# systemd itself is not PID 1 here, so the unit is checked by
# systemd-analyze verify (selftests/dist/test_install.sh) and its
# environment is recreated by hand.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$here/lib/assert.sh"
# shellcheck source=scripts/lib/netns.sh
source "$repo/scripts/lib/netns.sh"

for t in setpriv nsenter python3 jq; do
  command -v "$t" >/dev/null || { echo "e2e_lifecycle: $t missing (make deps)"; fail "tools"; finish; exit 1; }
done
hm_require_root || { fail root; finish; exit 1; }

dir=$(mktemp -d /tmp/hm-e2e-life.XXXXXX)
cdir=$dir/cluster
listener="" holder="" keeper=""
cluster() { bash "$repo/scripts/cluster.sh" --dir "$cdir" "$@"; }
cleanup() {
  [ -n "$listener" ] && kill "$listener" 2>/dev/null
  [ -n "$holder" ] && kill "$holder" 2>/dev/null
  [ -n "$keeper" ] && kill "$keeper" 2>/dev/null
  [ -s "$dir/daemon.pid" ] && kill -TERM "$(cat "$dir/daemon.pid")" 2>/dev/null
  cluster down >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The unit's capabilities, as setpriv wants them: "+net_admin,+bpf,...".
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$repo/dist/hypermeshd.service.in" |
  tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
[ -n "$caps" ] || { fail "the unit's CapabilityBoundingSet"; finish; exit 1; }

echo "# 4 replicas in xdp mode; replica 0 then runs as the unit runs it (caps $caps)"
cluster up -n 4 --clients 2 --dataplane xdp >/dev/null || { fail "cluster up"; finish; exit 1; }
# shellcheck source=/dev/null
. "$cdir/state.env"
ns=$HM_PREFIX-r0
cp "$cdir/cluster.yaml" "$cdir/r0.yaml"
cluster stop 0 >/dev/null

# What systemd sets up, in replica 0's namespace (ip netns exec gives it a
# mount namespace of its own: the bpffs and the tmpfs stay there), then the
# daemon; after it exits, its status and whether its pins are still there.
cat >"$dir/run0.sh" <<'SH'
d=$1 caps=$2; shift 2
mount -t bpf bpf /sys/fs/bpf
mkdir -p /run/hypermesh && mount -t tmpfs hm-e2e-run /run/hypermesh || exit 90
RUNTIME_DIRECTORY=/run/hypermesh NOTIFY_SOCKET=$d/notify.sock \
  setpriv --bounding-set=-all,"$caps" --inh-caps=-all "$@" &
echo $! >"$d/daemon.pid.tmp" && mv "$d/daemon.pid.tmp" "$d/daemon.pid"
wait $!
echo $? >"$d/daemon.rc"
if [ -e /sys/fs/bpf/hypermesh/eth0 ]; then echo left; else echo none; fi >"$d/pins"
SH

python3 "$here/lib/notify_listen.py" "$dir/notify.sock" "$dir/notify.log" &
listener=$!
for _ in $(seq 100); do grep -q listening "$dir/notify.log" 2>/dev/null && break; sleep 0.05; done

start_r0() {
  rm -f "$dir/daemon.rc" "$dir/pins" "$dir/daemon.pid"
  echo "run $1" >>"$dir/notify.log"
  setsid ip netns exec "$ns" sh "$dir/run0.sh" "$dir" "$caps" "$repo/build/hypermeshd" \
    -c "$cdir/r0.yaml" --id 0 --key "$cdir/keys/replica-0.key" --data-dir "$cdir/replica-0" \
    >>"$dir/r0.log" 2>&1 </dev/null &
}
# wait_for SECONDS CMD...: poll CMD until it succeeds or the time is up.
wait_for() {
  local end; end=$(hm_deadline "$1"); shift
  until "$@"; do hm_before "$end" || return 1; sleep 0.05; done
}
pid() { cat "$dir/daemon.pid"; }
in_r0() { nsenter --target "$(pid)" --mount -- "$@"; }
# (the output first, then grep: with pipefail, grep -q ending the pipe early
# would fail it through the writer's SIGPIPE)
has_xdp() { local l; l=$(ip -n "$ns" link show dev eth0); grep -q prog/xdp <<<"$l"; }
has_tc() { local f; f=$(tc -n "$ns" filter show dev eth0 egress 2>/dev/null); grep -q bpf <<<"$f"; }
put_ok() { [ "$(cluster exec hmctl put "$1" v 2>&1)" = OK ]; }
not() { ! "$@"; }

echo "# READY=1 once it serves"
start_r0 serve
check "READY=1 arrives" wait_for 30 sh -c "sed -n '/^run serve\$/,\$p' '$dir/notify.log' | grep -q READY=1"
check "it was logged ready before READY=1 was sent" grep -q "ready: replica 0 of 4" "$dir/r0.log"
check "STATUS=starting came first" sh -c "sed -n '/^run serve\$/,\$p' '$dir/notify.log' | sed -n '2p' | grep -q 'STATUS=starting: replica 0'"
check "READY=1 says what it serves" sh -c "sed -n '/^run serve\$/,\$p' '$dir/notify.log' | grep READY=1 | grep -q 'STATUS=serving: replica 0 of 4 (f=1) on 198.18.0.1 port 7000, dataplane xdp'"
check "XDP attached with the unit's capabilities only" has_xdp
check "TC attached" has_tc
check "maps pinned" in_r0 test -e /sys/fs/bpf/hypermesh/eth0/hm_config
check "the cluster serves with it" put_ok a

echo "# hmctl finds the control socket with no --socket"
out=$(in_r0 env -u HM_CONTROL_SOCKET "$repo/build/hmctl" status --json 2>&1)
check_eq "hmctl status (no --socket): replica 0" "$(jq -r .id <<<"$out" 2>/dev/null)" 0
check "the socket is in the runtime directory" in_r0 test -S /run/hypermesh/control.sock
check "not in the data dir" test ! -e "$cdir/replica-0/control.sock"
check "the daemon logged where" grep -q "control socket: /run/hypermesh/control.sock" "$dir/r0.log"
check_eq "status carries the release" "$(jq -r .version <<<"$out")" "$("$repo/build/hmctl" --version | cut -d' ' -f2)"

echo "# SIGHUP never stops it"
kill -HUP "$(pid)"
check "SIGHUP logged: the file is valid, applies at the next restart" \
  wait_for 10 grep -q "SIGHUP: nothing is reloaded at run time.*r0.yaml is valid" "$dir/r0.log"
check "still running" kill -0 "$(pid)"
check_eq "status counts it" "$(in_r0 "$repo/build/hmctl" status --json | jq -r .sighups)" 1
check "XDP still attached" has_xdp
check "still serving" put_ok b
printf 'bogus_key: 1\n' >>"$cdir/r0.yaml"
kill -HUP "$(pid)"
check "a broken file on disk: logged with file:line:key" \
  wait_for 10 grep -qE "SIGHUP: .*r0.yaml:[0-9]+: bogus_key: unknown key.*still running" "$dir/r0.log"
check "still running after it" kill -0 "$(pid)"
check "still serving after it" put_ok c
cp "$cdir/cluster.yaml" "$cdir/r0.yaml"

echo "# SIGTERM: exit 0, nothing left attached or pinned"
kill -TERM "$(pid)"
check "it exits" wait_for 15 test -s "$dir/pins"
check_eq "exit status 0" "$(cat "$dir/daemon.rc")" 0
check_eq "no pins left" "$(cat "$dir/pins")" none
check "no XDP program on eth0" not has_xdp
check "no TC filter on eth0" not has_tc
check "STOPPING=1 sent" sh -c "sed -n '/^run serve\$/,\$p' '$dir/notify.log' | grep -q STOPPING=1"
check "the signal logged" grep -q "Terminated from pid .*: stopping" "$dir/r0.log"

echo "# kill -9: what it left, removed by --cleanup (the unit's ExecStopPost)"
start_r0 crash
check "READY=1 again" wait_for 30 sh -c "sed -n '/^run crash\$/,\$p' '$dir/notify.log' | grep -q READY=1"
# a process that keeps the daemon's mount namespace (its bpffs) alive
nsenter --target "$(pid)" --mount --net -- sleep 600 &
keeper=$!
same_mnt() { [ "$(readlink "/proc/$keeper/ns/mnt")" = "$(readlink "/proc/$(pid)/ns/mnt")" ]; }
check "a process keeps its mount namespace" wait_for 10 same_mnt
kill -KILL "$(pid)"
check "it dies" wait_for 15 test -s "$dir/pins"
check_eq "its pins are left" "$(cat "$dir/pins")" left
check "its XDP program is left" has_xdp
check "its TC filter is left" has_tc
out=$(nsenter --target "$keeper" --mount --net -- env SERVICE_RESULT=success \
  "$repo/build/hypermeshd" --cleanup "$cdir/r0.yaml" 2>&1)
check "after a clean stop (SERVICE_RESULT=success) --cleanup says it keeps all" grep -q "stopped cleanly" <<<"$out"
check "and keeps the program" has_xdp
out=$(nsenter --target "$keeper" --mount --net -- env SERVICE_RESULT=signal \
  "$repo/build/hypermeshd" --cleanup "$cdir/r0.yaml" 2>&1); rc=$?
check_eq "--cleanup after the kill: exit 0" "$rc" 0
check "it says what it removed" grep -q "eth0: removed our XDP program, the TC filter hm_tc_egress, 11 pins" <<<"$out"
check "no XDP program left" not has_xdp
check "no TC filter left" not has_tc
check "no pins left" nsenter --target "$keeper" --mount -- test ! -e /sys/fs/bpf/hypermesh/eth0
kill "$keeper" 2>/dev/null; keeper=""
out=$(ip netns exec "$ns" "$repo/build/hypermeshd" --cleanup "$cdir/r0.yaml" 2>&1)
check "a second --cleanup finds nothing" grep -q "eth0: nothing left behind" <<<"$out"
start_r0 again
check "the replica starts again under the unit's capabilities" \
  wait_for 30 sh -c "sed -n '/^run again\$/,\$p' '$dir/notify.log' | grep -q READY=1"
check "and serves" put_ok d
kill -TERM "$(pid)"
check "and stops" wait_for 15 test -s "$dir/pins"

echo "# a fatal error after the XDP attach (its UDP port taken)"
setsid ip netns exec "$ns" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.1", 7000))
print("bound", flush=True)
time.sleep(120)' >"$dir/holder.out" 2>&1 &
holder=$!
wait_for 10 grep -q bound "$dir/holder.out" || fail "the port holder"
before=$(grep -c "xdp: " "$dir/r0.log")
start_r0 fatal
check "it exits" wait_for 30 test -s "$dir/pins"
check_eq "exit status 1" "$(cat "$dir/daemon.rc")" 1
check "it had attached XDP first" test "$(grep -c "xdp: " "$dir/r0.log")" -gt "$before"
check "it says why" grep -q "cannot bind 198.18.0.1 port 7000" "$dir/r0.log"
check_eq "no pins left" "$(cat "$dir/pins")" none
check "no XDP program on eth0" not has_xdp
check "no TC filter on eth0" not has_tc
check "no READY=1 from the failed start" not sh -c "sed -n '/^run fatal\$/,\$p' '$dir/notify.log' | grep -q READY=1"
kill "$holder" 2>/dev/null; holder=""
finish
