#!/usr/bin/env bash
# make install into a staging tree (DESTDIR): every file in its place with
# its mode, the unit names the installed daemon and passes systemd-analyze
# verify, the man pages render, the sample configuration checks; make
# uninstall removes what install put there.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=selftests/e2e/lib/assert.sh
source "$repo/selftests/e2e/lib/assert.sh"

dest=$(mktemp -d /tmp/hm-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
prefix=/opt/hypermesh

echo "# make install PREFIX=$prefix DESTDIR=$dest"
if ! make -s -C "$repo" install PREFIX="$prefix" DESTDIR="$dest" >"$dest.log" 2>&1; then
  cat "$dest.log"; rm -f "$dest.log"
  fail "make install"; finish; exit 1
fi
rm -f "$dest.log"
pass "make install"

mode_is() { [ "$(stat -c %a "$dest$1")" = "$2" ]; }
for f in sbin/hypermeshd:755 bin/hmctl:755 lib/systemd/system/hypermeshd.service:644 \
  share/man/man8/hypermeshd.8:644 share/man/man8/hmctl.8:644 share/man/man5/hypermesh.yaml.5:644 \
  lib/hypermesh/hm_xdp.bpf.o:644 lib/hypermesh/hm_tc.bpf.o:644 \
  share/doc/hypermesh/deployment.md:644 share/doc/hypermesh/configuration.md:644; do
  check "$prefix/${f%:*} (mode ${f#*:})" mode_is "$prefix/${f%:*}" "${f#*:}"
done
check "/etc/hypermesh/hypermesh.yaml.example" test -s "$dest/etc/hypermesh/hypermesh.yaml.example"
check "no configuration is installed over an operator's" test ! -e "$dest/etc/hypermesh/hypermesh.yaml"
check_eq "the installed daemon runs" "$("$dest$prefix/sbin/hypermeshd" --version | cut -d' ' -f1)" hypermeshd
check "the sample configuration checks" \
  sh -c "'$dest$prefix/sbin/hypermeshd' --check-config '$dest/etc/hypermesh/hypermesh.yaml.example' >/dev/null"

echo "# the unit"
unit=$dest$prefix/lib/systemd/system/hypermeshd.service
check "ExecStart names the installed daemon" grep -q "^ExecStart=$prefix/sbin/hypermeshd -c /etc/hypermesh/hypermesh.yaml$" "$unit"
check "Type=notify" grep -q "^Type=notify$" "$unit"
check "ExecStopPost cleans up after a crash, with full privileges" \
  grep -q "^ExecStopPost=+$prefix/sbin/hypermeshd --cleanup /etc/hypermesh/hypermesh.yaml$" "$unit"
check "ExecStartPre checks the configuration" \
  grep -q "^ExecStartPre=$prefix/sbin/hypermeshd --check-config /etc/hypermesh/hypermesh.yaml$" "$unit"
check "the control socket's runtime directory" grep -q "^RuntimeDirectory=hypermesh$" "$unit"
check "capabilities bounded, no CAP_SYS_ADMIN" \
  sh -c "grep -q '^CapabilityBoundingSet=CAP_NET_ADMIN CAP_BPF CAP_PERFMON CAP_NET_BIND_SERVICE$' '$unit' && ! grep -q '^CapabilityBoundingSet=.*SYS_ADMIN' '$unit'"
check "no @SBINDIR@ left" sh -c "! grep -q @SBINDIR@ '$unit'"
# systemd-analyze verify checks that ExecStart's program exists: a copy of
# the unit pointing into the staging tree (the man pages are checked below).
mkdir -p "$dest/verify"
sed "s|$prefix/sbin/|$dest$prefix/sbin/|g" "$unit" >"$dest/verify/hypermeshd.service"
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify --man=no "$dest/verify/hypermeshd.service" 2>&1); rc=$?
  check_eq "systemd-analyze verify: exit 0" "$rc" 0
  check_eq "systemd-analyze verify: no complaint" "$out" ""
else
  fail "systemd-analyze missing (make deps)"
fi

echo "# the man pages"
for m in man8/hypermeshd.8 man8/hmctl.8 man5/hypermesh.yaml.5; do
  text=$(MANWIDTH=100 man -l "$dest$prefix/share/man/$m" 2>/dev/null)
  check "$m renders" grep -q "^NAME" <<<"$text"
  check "$m carries the release" grep -q "HyperMesh $("$repo/build/hmctl" --version | cut -d' ' -f2)" <<<"$text"
  [ "$m" = man5/hypermesh.yaml.5 ] || check "$m documents the exit status" grep -q "^EXIT STATUS" <<<"$text"
done
text=$(MANWIDTH=200 man -l "$dest$prefix/share/man/man5/hypermesh.yaml.5" 2>/dev/null)
check "hypermesh.yaml(5) is docs/configuration.md: its last key table" grep -q "max_clock_skew_s" <<<"$text"
check "and its error format" grep -q "PATH:LINE: KEY.PATH: message" <<<"$text"

rm -rf "$dest/verify"
echo "# make uninstall"
make -s -C "$repo" uninstall PREFIX="$prefix" DESTDIR="$dest" >/dev/null 2>&1
check_eq "no installed file left" "$(find "$dest" -type f | wc -l)" 0
finish
