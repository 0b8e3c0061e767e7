#!/usr/bin/env bash
# Run HyperMesh's BPF selftests in a qemu VM on a chosen kernel, as the
# kernel's BPF CI does (tools/testing/selftests/bpf/vmtest.sh, virtme-ng).
#
#   scripts/vmtest.sh                              Debian 12's kernels: 6.1 and 6.12
#   scripts/vmtest.sh --debian-kernel 6.12         the bookworm 6.12 backport
#   scripts/vmtest.sh --debian-kernel 6.1 --debian-kernel 6.12    a matrix
#   scripts/vmtest.sh --kernel path/to/bzImage [--modules INSTALL_MOD_PATH]
#   make vmtest [KERNELS="6.1 6.12"]
#
# Each kernel boots with a small initramfs (busybox-static and the modules
# for 9p, veth, clsact, cls_bpf, bridge); the host's / is the guest's root,
# shared read-only over 9p, so the guest runs the project's build as built
# here, with the host's libraries.  The results directory,
# build/vmtest/results/KERNEL/, is shared read-write: a log per suite,
# console.log, dmesg.log, suites.txt.  The guest runs the BPF selftests and
# prints "N passed, N failed"; this script prints one such line per kernel
# and a total, and exits non-zero when anything failed or did not run.
#
# KVM is used when a probe boot under KVM works, else TCG (slow: see README).
# A boot that does not reach the test runner within --boot-timeout, or a run
# longer than --timeout, is killed and its console log shown.
#
# The packages it needs (qemu-system-x86, busybox-static, kmod, cpio) are
# installed on first use; Debian kernels are downloaded with apt-get
# download and unpacked under build/vmtest/kernels (never installed on the
# host).  Needs root and a build (make all).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
vmdir=${HM_VMTEST_DIR:-$repo/build/vmtest}
boot_timeout=${HM_VMTEST_BOOT_TIMEOUT:-600}
run_timeout=${HM_VMTEST_TIMEOUT:-5400}
suite_timeout=${HM_VMTEST_SUITE_TIMEOUT:-1800}
accel=${HM_VMTEST_ACCEL:-auto}
mem=${HM_VMTEST_MEM:-2048}
smp=${HM_VMTEST_SMP:-2}
tests=${HM_VMTEST_TESTS:-}
kernels=()        # "debian:VERSION" or "path:BZIMAGE:MODDIR"
modules_for_next=""

usage() {
	cat <<'EOF'
usage: scripts/vmtest.sh [options]
  --debian-kernel VERSION   a Debian 12 kernel: 6.1 (bookworm's), 6.12 (the
                            backport), or an exact ABI such as 6.1.0-57 or
                            6.12.118+deb12; repeat for a matrix
  --kernel PATH             a bzImage you built; its modules, if any, with
  --modules DIR             (before --kernel) the INSTALL_MOD_PATH of
                            `make modules_install` (DIR/lib/modules/VERSION)
  --accel auto|kvm|tcg      auto (default): a probe boot under KVM decides
  --tests LIST              comma-separated tests to run instead of the
                            default list (paths relative to the project)
  --timeout S               whole run per kernel (default 5400)
  --boot-timeout S          until the guest's test runner starts (default 600)
  --mem MB, --smp N         guest memory (2048) and CPUs (2)
Default: --debian-kernel 6.1 --debian-kernel 6.12.  Environment: HM_VMTEST_* for the same.
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--debian-kernel) kernels+=("debian:${2:?}"); shift 2 ;;
	--modules) modules_for_next=${2:?}; shift 2 ;;
	--kernel) kernels+=("path:${2:?}:$modules_for_next"); modules_for_next=""; shift 2 ;;
	--accel) accel=${2:?}; shift 2 ;;
	--tests) tests=${2:?}; shift 2 ;;
	--timeout) run_timeout=${2:?}; shift 2 ;;
	--boot-timeout) boot_timeout=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--smp) smp=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "vmtest: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done
[ ${#kernels[@]} -gt 0 ] || kernels=("debian:6.1" "debian:6.12")
case "$accel" in auto|kvm|tcg) ;; *) echo "vmtest: --accel auto|kvm|tcg" >&2; exit 2 ;; esac

say() { echo "vmtest: $*"; }
die() { echo "vmtest: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (the guest's root is the host's /, shared over 9p)"
for t in build/tests/test_xdp_filter build/hm_xdp.bpf.o build/loss_ctl; do
	[ -e "$repo/$t" ] || die "missing $t: run make all first"
done

# --- packages -------------------------------------------------------------
# Installed here rather than by scripts/deps.sh, so `make test` does not
# pay for qemu.
need_pkgs=(qemu-system-x86 busybox-static kmod cpio)
missing=()
for p in "${need_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi

# --- kernels ----------------------------------------------------------------
# debian_package VERSION: the linux-image package for VERSION, following a
# meta-package (linux-image-amd64, linux-image-6.12-amd64) to its image.
debian_package() {
	local v=$1 names c dep
	# Exact names only (apt-cache show would read "6.1" as a regex).
	names=$(apt-cache pkgnames linux-image- 2>/dev/null)
	image_dep() {
		apt-cache depends "$1" 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9][^ ]*-amd64$/ { print $2; exit }'
	}
	for c in "linux-image-$v-amd64" "linux-image-$v+deb12-amd64"; do
		grep -qFx "$c" <<< "$names" || continue
		dep=$(image_dep "$c")
		echo "${dep:-$c}"; return 0
	done
	# Bookworm's own kernel has no versioned meta-package: linux-image-amd64.
	dep=$(image_dep linux-image-amd64)
	case "$dep" in "linux-image-$v".*) echo "$dep"; return 0 ;; esac
	return 1
}

# fetch_debian VERSION: sets kimage, kmodbase (INSTALL_MOD_PATH), klabel.
fetch_debian() {
	local pkg ver kdir deb
	pkg=$(debian_package "$1") || {
		apt-get update -qq >/dev/null 2>&1
		pkg=$(debian_package "$1")
	} || { say "no Debian kernel package for $1 (apt-cache search linux-image-)"; return 1; }
	ver=${pkg#linux-image-}
	kdir=$vmdir/kernels/$ver
	if [ ! -e "$kdir/.unpacked" ]; then
		say "downloading $pkg"
		mkdir -p "$vmdir/debs" && chmod 755 "$vmdir/debs"
		(cd "$vmdir/debs" && apt-get download -q "$pkg" 2>&1 | grep -v "unsandboxed") || true
		deb=$(ls -t "$vmdir/debs/${pkg}_"*.deb 2>/dev/null | head -1)
		[ -n "$deb" ] || { say "apt-get download $pkg failed"; return 1; }
		rm -rf "$kdir" && mkdir -p "$kdir"
		dpkg-deb -x "$deb" "$kdir" || { say "cannot unpack $deb"; return 1; }
		# The package leaves modules.dep to its postinst: make it here.
		depmod -b "$kdir" "$ver" || { say "depmod for $ver failed"; return 1; }
		touch "$kdir/.unpacked"
	fi
	kimage=$kdir/boot/vmlinuz-$ver
	kmodbase=$kdir
	klabel=$ver
	[ -e "$kimage" ] || { say "no $kimage in $pkg"; return 1; }
}

# kernel_release IMAGE: the release string in a bzImage's header.
kernel_release() {
	local off
	off=$(od -An -j 526 -N 2 -t u2 "$1" 2>/dev/null | tr -d ' ')
	[ -n "$off" ] || return 1
	dd if="$1" bs=1 skip=$((off + 512)) count=128 2>/dev/null | tr '\0' '\n' | head -1 | cut -d' ' -f1
}

# --- initramfs ----------------------------------------------------------------
# Modules, in load order with their dependencies first: virtio and 9p to
# mount the root, then what the tests need.
boot_modules=(virtio_pci 9pnet_virtio 9p)
test_modules=(veth sch_ingress cls_bpf act_bpf bridge)

# build_initramfs OUT MODDIR(lib/modules/VERSION, may be empty)
build_initramfs() {
	local out=$1 moddir=$2 stage m dep file
	stage=$(mktemp -d "$vmdir/initramfs.XXXXXX")
	mkdir -p "$stage/bin" "$stage/modules" "$stage/tmp"
	cp /bin/busybox "$stage/bin/busybox"
	install -m 755 "$repo/scripts/vmtest/init" "$stage/init"
	if [ -n "$moddir" ] && [ -f "$moddir/modules.dep" ]; then
		local -A seen=()
		local order=()
		for m in "${boot_modules[@]}" "${test_modules[@]}"; do
			# modules.dep: "kernel/x/m.ko[.xz]: deps...", a module's
			# dependencies listed so that the last one loads first.
			local line
			line=$(grep -E "(^|/)${m//_/[-_]}\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" | head -1)
			if [ -z "$line" ]; then
				grep -qE "/${m//_/[-_]}\.ko" "$moddir/modules.builtin" 2>/dev/null ||
					say "note: module $m is neither in modules.dep nor built in"
				continue
			fi
			local deps=(${line#*:}) i
			for ((i = ${#deps[@]} - 1; i >= 0; i--)); do order+=("${deps[i]}"); done
			order+=("${line%%:*}")
		done
		for file in "${order[@]}"; do
			[ -n "${seen[$file]:-}" ] && continue
			seen[$file]=1
			m=$(basename "$file"); m=${m%%.ko*}
			case "$file" in
			*.xz) xz -dc "$moddir/$file" > "$stage/modules/$m.ko" ;;
			*.zst) zstd -qdc "$moddir/$file" > "$stage/modules/$m.ko" ;;
			*.gz) gzip -dc "$moddir/$file" > "$stage/modules/$m.ko" ;;
			*) cp "$moddir/$file" "$stage/modules/$m.ko" ;;
			esac || { say "cannot copy module $file"; rm -rf "$stage"; return 1; }
			echo "$m" >> "$stage/modules/order"
		done
	fi
	(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp" &&
		mv "$out.tmp" "$out"
	local rc=$?
	rm -rf "$stage"
	return $rc
}

# --- qemu ---------------------------------------------------------------------
qemu_pid=""
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_qemu ACCEL KIMAGE INITRD OUTDIR CONSOLE APPEND: sets qemu_pid.
start_qemu() {
	local acc=$1 kimg=$2 initrd=$3 outdir=$4 console=$5 append=$6 cpu accel_opt
	case "$acc" in
	kvm) accel_opt=kvm; cpu=host ;;
	*) accel_opt=tcg,thread=multi; cpu=max ;;
	esac
	nice -n 19 qemu-system-x86_64 -nodefaults -display none -no-reboot \
		-machine q35 -accel "$accel_opt" -cpu "$cpu" -smp "$smp" -m "$mem" \
		-kernel "$kimg" -initrd "$initrd" -append "$append" \
		-virtfs "local,path=/,mount_tag=hmroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$outdir,mount_tag=hmout,security_model=none" \
		-serial stdio < /dev/null > "$console" 2>&1 &
	qemu_pid=$!
}

# stop_qemu: kill qemu (it is ours: we started it, $qemu_pid).
stop_qemu() {
	[ -n "$qemu_pid" ] || return 0
	kill "$qemu_pid" 2>/dev/null
	for _ in 1 2 3 4 5; do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
	kill -9 "$qemu_pid" 2>/dev/null
	wait "$qemu_pid" 2>/dev/null
	qemu_pid=""
}

base_append="console=ttyS0 panic=-1 no_timer_check tsc=reliable"

# probe_accel KIMAGE INITRD: prints kvm or tcg.  A real boot under KVM
# decides (qemu can start with -accel kvm and still not run a guest).
probe_accel() {
	local kimg=$1 initrd=$2 dir console t0 reason
	dir=$(mktemp -d "$vmdir/probe.XXXXXX"); console=$dir/console.log
	t0=$(date +%s)
	start_qemu kvm "$kimg" "$initrd" "$dir" "$console" "$base_append hm_probe=1"
	while kill -0 "$qemu_pid" 2>/dev/null && [ $(($(date +%s) - t0)) -lt 60 ]; do
		grep -q "hm-vmtest: probe ok" "$console" && break
		sleep 0.5
	done
	if grep -q "hm-vmtest: probe ok" "$console"; then
		stop_qemu
		say "accelerator: kvm (probe boot took $(($(date +%s) - t0)) s)" >&2
		rm -rf "$dir"; echo kvm; return
	fi
	stop_qemu
	reason=$(grep -m1 -iE "kvm|error|could not" "$console" | cut -c1-160)
	say "accelerator: tcg (the probe boot under KVM failed: ${reason:-no boot within 60 s})" >&2
	rm -rf "$dir"; echo tcg
}

# run_kernel LABEL KIMAGE MODBASE: boot, run, collect.  Sets r_passed, r_failed, r_secs, r_note.
run_kernel() {
	local label=$1 kimg=$2 modbase=$3 moddir="" rel initrd outdir console append t0 booted=0 shown=0 n
	r_passed=0 r_failed=0 r_secs=0 r_note=""
	rel=$(kernel_release "$kimg") || rel=$label
	if [ -n "$modbase" ]; then
		moddir=$modbase/lib/modules/$rel
		[ -d "$moddir" ] || moddir=$(ls -d "$modbase"/lib/modules/* 2>/dev/null | head -1)
		[ -f "$moddir/modules.dep" ] || depmod -b "$modbase" "$(basename "$moddir")" || true
	fi
	mkdir -p "$vmdir/initramfs"
	initrd=$vmdir/initramfs/$label.cpio.gz
	# Built afresh each run: a second or two, and never stale.
	build_initramfs "$initrd" "$moddir" || { r_failed=1; r_note="initramfs failed"; return; }
	if [ "$accel" = auto ]; then
		accel=$(probe_accel "$kimg" "$initrd")
	fi
	outdir=$vmdir/results/$label
	rm -rf "$outdir"; mkdir -p "$outdir"
	console=$outdir/console.log
	append="$base_append hm_repo=$repo hm_out=$outdir hm_accel=$accel hm_suite_timeout=$suite_timeout"
	[ -n "$moddir" ] && append+=" hm_moddir=$modbase"
	[ -n "$tests" ] && append+=" hm_tests=$tests"
	say "booting $label ($rel) with $accel, $smp CPUs, $mem MB; results in ${outdir#"$repo"/}"
	t0=$(date +%s)
	start_qemu "$accel" "$kimg" "$initrd" "$outdir" "$console" "$append"
	# Show the guest's own lines as they come (not the kernel's boot log,
	# which stays in console.log); watch the boot and run deadlines.
	shown=0
	while :; do
		local alive=1 now
		kill -0 "$qemu_pid" 2>/dev/null || alive=0
		n=$(wc -l < "$console")
		if [ "$n" -gt "$shown" ]; then
			sed -n "$((shown + 1)),${n}p" "$console" | tr -d '\r' | grep -avE '^\[ *[0-9]+\.[0-9]+\]' | sed 's/^/  | /'
			shown=$n
		fi
		[ "$booted" -eq 0 ] && grep -aq "hm-vmtest: booted" "$console" && booted=1
		[ "$alive" -eq 1 ] || break
		now=$(($(date +%s) - t0))
		if [ "$booted" -eq 0 ] && [ "$now" -ge "$boot_timeout" ]; then
			r_note="boot did not reach the test runner within ${boot_timeout}s"; break
		fi
		if [ "$now" -ge "$run_timeout" ]; then
			r_note="still running after ${run_timeout}s"; break
		fi
		sleep 2
	done
	r_secs=$(($(date +%s) - t0))
	if [ -n "$r_note" ]; then
		stop_qemu
		say "$label: $r_note: killed; the console log's last 60 lines ($console):"
		tail -n 60 "$console" | sed 's/^/  > /'
	fi
	wait "$qemu_pid" 2>/dev/null
	qemu_pid=""
	if [ -s "$outdir/result.txt" ]; then
		read -r r_passed r_failed < "$outdir/result.txt"
	else
		r_failed=$((r_failed + 1))
		if [ -z "$r_note" ]; then
			r_note="the guest wrote no result"
			say "$label: $r_note; the console log's last 60 lines ($console):"
			tail -n 60 "$console" | sed 's/^/  > /'
		fi
	fi
}

# load_failures DIR: each BPF program or map the kernel refused, with the
# verifier's (or libbpf's) reason, from the suites' logs.
load_failures() {
	awk '
	/prog .*: -- BEGIN PROG LOAD LOG --/ {
		match($0, /prog '\''[^'\'']*'\''/); prog = substr($0, RSTART + 6, RLENGTH - 7)
		inlog = 1; last = ""; next
	}
	inlog && /-- END PROG LOAD LOG --/ { inlog = 0; print "program " prog ": " last; next }
	inlog && !/^processed [0-9]+ insns/ && NF { last = $0; next }
	/libbpf: map .*: failed to create/ { sub(/^.*libbpf: /, ""); print }
	' "$1"/*.log 2>/dev/null | tr -d '\r' | sort -u
}

# --- the runs -------------------------------------------------------------------
mkdir -p "$vmdir"
summary=()
total_passed=0 total_failed=0
for k in "${kernels[@]}"; do
	case "$k" in
	debian:*)
		if ! fetch_debian "${k#debian:}"; then
			summary+=("$(printf '%-28s %s' "${k#debian:}" "not run: no kernel")")
			total_failed=$((total_failed + 1)); continue
		fi
		run_kernel "$klabel" "$kimage" "$kmodbase" ;;
	path:*)
		rest=${k#path:}; img=${rest%%:*}; mods=${rest#*:}
		[ -e "$img" ] || { summary+=("$(printf '%-28s %s' "$img" "not run: no such file")"); total_failed=$((total_failed + 1)); continue; }
		img=$(cd "$(dirname "$img")" && pwd)/$(basename "$img")
		[ -n "$mods" ] && mods=$(cd "$mods" && pwd)
		klabel=custom-$(kernel_release "$img" || echo unknown)
		run_kernel "$klabel" "$img" "$mods" ;;
	esac
	total_passed=$((total_passed + r_passed)) total_failed=$((total_failed + r_failed))
	line="$(printf '%-28s %4d passed, %d failed  (%s, %dm%02ds)' "$klabel" "$r_passed" "$r_failed" "$accel" $((r_secs / 60)) $((r_secs % 60)))"
	[ -n "$r_note" ] && line+="  $r_note"
	if [ -s "$vmdir/results/$klabel/suites.txt" ]; then
		fails=$(awk '$3 != 0 { printf "%s%s", sep, $1; sep = " " }' "$vmdir/results/$klabel/suites.txt")
		[ -n "$fails" ] && line+="  failed: $fails"
	fi
	summary+=("$line")
	while IFS= read -r why; do
		summary+=("    BPF load failure: $why")
	done < <(load_failures "$vmdir/results/$klabel")
done

echo
say "results (logs under ${vmdir#"$repo"/}/results/KERNEL/):"
for l in "${summary[@]}"; do echo "  $l"; done
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
