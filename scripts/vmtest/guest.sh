#!/bin/bash
# PID 1 inside the vmtest guest, after the initramfs (scripts/vmtest/init)
# switched to the host's root shared read-only over 9p.  Runs the BPF
# selftests against the guest's kernel, writes each suite's log and the
# result into the results directory (hm_out, shared read-write), prints
# "N passed, N failed" and powers the VM off.
#
# Environment (from the kernel command line): hm_repo, hm_out, hm_moddir,
# hm_tests (comma-separated, empty for the default list), hm_suite_timeout.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
repo=$hm_repo
out=$hm_out
suite_timeout=${hm_suite_timeout:-1200}

say() { echo "hm-vmtest: $*"; }
poweroff_now() {
	sync
	echo o > /proc/sysrq-trigger
	sleep 60
}
trap poweroff_now EXIT

# Filesystems a BPF loader and the namespace suites expect.
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mkdir -p /run/netns /run/lock /run/hm-vmtest
# Modules the kernel asks for (request_module: a qdisc, a link type) come
# from the kernel package's tree on the host, through kmod's modprobe -d.
if [ -n "${hm_moddir:-}" ]; then
	echo "$hm_moddir" > /run/hm-vmtest/moddir
	echo "$repo/scripts/vmtest/modprobe" > /proc/sys/kernel/modprobe
fi
ip link set lo up
hostname hm-vmtest 2>/dev/null
ulimit -l unlimited
# Kernel messages of warning level and above still reach the console.
dmesg -n 4 2>/dev/null

cd "$repo" || { say "FATAL: no $repo"; exit 1; }
read -r up _ < /proc/uptime
say "booted $(uname -r) in ${up}s; accel ${hm_accel:-?}; $(nproc) CPUs"

default_tests=(
	build/tests/test_xdp_filter
	build/tests/test_xdp_quorum
	build/tests/test_xdp_probe
	build/tests/test_tc_fanout
	build/tests/test_loss
	selftests/e2e/e2e_tc_fanout.sh
	selftests/e2e/e2e_loss.sh
)
if [ -n "${hm_tests:-}" ]; then
	IFS=, read -r -a tests <<< "$hm_tests"
else
	tests=("${default_tests[@]}")
fi

total_passed=0 total_failed=0
failed_suites=()
: > "$out/suites.txt"
for t in "${tests[@]}"; do
	name=$(basename "$t")
	log="$out/$name.log"
	case "$t" in
	*.sh) cmd=(bash "$t") ;;
	*) cmd=("$t") ;;
	esac
	echo "=== $name"
	start=$(date +%s)
	timeout --signal=TERM --kill-after=30 "$suite_timeout" "${cmd[@]}" > "$log" 2>&1 &
	pid=$!
	# Follow the log on the console while the suite runs.
	tail -n +1 -f --pid="$pid" "$log" &
	tailpid=$!
	wait "$pid"
	rc=$?
	wait "$tailpid" 2>/dev/null
	secs=$(($(date +%s) - start))
	[ "$rc" -eq 124 ] && echo "FAIL $name: still running after ${suite_timeout}s, stopped" | tee -a "$log"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	if [ -z "$line" ]; then
		echo "FAIL $name: no result line (exit $rc)"
		p=0 f=1
	else
		p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			echo "FAIL $name: exit $rc"
			f=1
		fi
	fi
	total_passed=$((total_passed + p)) total_failed=$((total_failed + f))
	[ "$f" -ne 0 ] && failed_suites+=("$name")
	printf '%s %s %s %s\n' "$name" "$p" "$f" "$secs" >> "$out/suites.txt"
done

dmesg > "$out/dmesg.log" 2>&1
echo
[ ${#failed_suites[@]} -gt 0 ] && say "failed suites: ${failed_suites[*]}"
echo "$total_passed $total_failed" > "$out/result.txt"
say "done on $(uname -r)"
echo "$total_passed passed, $total_failed failed"
exit 0
