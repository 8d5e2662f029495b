#!/usr/bin/env bash
# Boots the rust44 kernel in QEMU with the emulated hardware attached.
#   tools/vm.sh shell                 interactive root shell on the serial console
#   tools/vm.sh cmd 'COMMAND'         runs COMMAND in the guest; exits with its status
#   tools/vm.sh suite NAME OUTDIR     runs tests/NAME/run.sh; TAP in OUTDIR/results, kernel log in
#                                     OUTDIR/dmesg, console in OUTDIR/console.log
#                                     (SCRIPT=bench.sh runs tests/NAME/bench.sh instead); the guest's
#                                     exit status (124 hung, 125 silent) in OUTDIR/status
#   tools/vm.sh suites OUT NAME...    one boot that runs each tests/NAME/run.sh in turn; each suite's
#                                     own results, dmesg, status (and the boot's console) in
#                                     OUT/NAME, the whole boot's in OUT/NAME+NAME...
#   tools/vm.sh trials NAME OUTDIR    power-cut trials: TRIALS+1 boots of tests/NAME/run.sh over the
#                                     same disks, each cut by SIGKILL to QEMU but the last (see
#                                     run_trials); the last boot's TAP in OUTDIR/results, every
#                                     boot's kernel log in OUTDIR/dmesg, each boot in OUTDIR/bootK
# Environment: KERNEL=default|debug, VM_TIMEOUT (seconds), VM_ACCEL=kvm|tcg (skips the KVM probe),
# RUST44_INJECT_FAILURE=1 (the harness suite adds failures of each kind tools/check.sh's canary
# must count), RUST44_INJECT_FAILURE=early_exit (its run.sh exits before printing TAP).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KVER=$(cat "$BUILD/include/config/kernel.release" 2>/dev/null) || die "no kernel built in $BUILD: run 'make kernel'"
BZIMAGE="$BUILD/arch/x86/boot/bzImage"
# RUST44_VMDIR lets two sessions boot side by side without sharing an initramfs build.
VMDIR="${RUST44_VMDIR:-$CACHE/vm-$KERNEL}"
# Emulated NVMe zoned namespace: ZNS_SIZE_MB / ZNS_ZONE_MB zones.
ZNS_SIZE_MB=512
ZNS_ZONE_MB=16
# A suite's vm.conf (or the environment) may turn NVMe poll queues off.
NVME_POLL_QUEUES=${NVME_POLL_QUEUES:-1}

# Copies a host program and every library it loads into the initramfs tree.
copy_host_program() {
	local root=$1 prog=$2 lib
	[ -x "$prog" ] || die "host program $prog is missing: run 'make deps'"
	mkdir -p "$root$(dirname "$prog")"
	cp -L "$prog" "$root$prog"
	for lib in $(ldd "$prog" 2>/dev/null | grep -o '/[^ ]*' || true); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# The initramfs shared by every boot: busybox, modules, test programs and the host tools the
# suites list in tests/*/host-programs. Rebuilt when any input is newer.
build_initramfs() {
	local root="$VMDIR/root" base="$VMDIR/base.cpio" inputs
	inputs=$(find "$TOP/tests" "$TOP/tools/vm.sh" "$BUILD/staging" "$CACHE/extmod-$KERNEL" -newer "$base" 2>/dev/null | head -n1 || true)
	if [ -f "$base" ] && [ -z "$inputs" ]; then
		return 0
	fi
	log "vm: building the initramfs"
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,root,mnt,run,lib/modules,rust44/tests,rust44/extmod}
	cp /bin/busybox "$root/bin/busybox"
	# ldd fails on a static binary, which is what we need.
	if ldd "$root/bin/busybox" >/dev/null 2>&1; then die "/bin/busybox is not static: install busybox-static"; fi
	cp "$TOP/tests/lib/init.sh" "$root/init"
	chmod +x "$root/init"
	cp "$TOP/tests/lib/ktap.sh" "$TOP/tests/lib/bench.sh" "$TOP/tests/lib/leaks.sh" "$root/rust44/"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	cp -a "$BUILD/staging/lib/modules/$KVER" "$root/lib/modules/"
	rm -f "$root/lib/modules/$KVER"/{build,source}
	[ -d "$CACHE/extmod-$KERNEL" ] && find "$CACHE/extmod-$KERNEL" -name '*.ko' -exec cp {} "$root/rust44/extmod/" \;
	local suite prog
	for suite in "$TOP"/tests/*/run.sh; do
		suite=$(dirname "$suite")
		cp -r "$suite" "$root/rust44/tests/"
		# Test programs: every tests/<suite>/*.c is a kselftest built static for the guest.
		for prog in "$suite"/*.c; do
			[ -e "$prog" ] || continue
			gcc -static -O2 -Wall -Werror -I"$TOP/tests/lib" -I"$SRC/tools/testing/selftests" \
				-I"$SRC/usr/include" \
				-o "$root/rust44/tests/$(basename "$suite")/$(basename "$prog" .c)" "$prog" ||
				die "building $prog failed"
		done
		# More test programs (e.g. upstream kselftests from the tree): tests/<suite>/build.sh runs
		# on the host with SRC (the prepared tree), OUT (the suite's directory in the image) and
		# ROOT (the image's tree, for the libraries of programs it brings, at their host paths).
		if [ -f "$suite/build.sh" ]; then
			SRC="$SRC" OUT="$root/rust44/tests/$(basename "$suite")" ROOT="$root" sh "$suite/build.sh" ||
				die "$suite/build.sh failed"
		fi
		if [ -f "$suite/host-programs" ]; then
			while read -r prog; do
				case "$prog" in '' | '#'*) continue ;; esac
				copy_host_program "$root" "$prog"
			done <"$suite/host-programs"
		fi
	done
	(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$base.tmp"
	mv "$base.tmp" "$base"
}

# /dev/kvm may exist and still be unable to run a guest: boot once with KVM and believe it only
# when the guest answers. The answer is kept for this host boot.
choose_accel() {
	if [ -n "${VM_ACCEL:-}" ]; then
		echo "$VM_ACCEL"
		return
	fi
	local state
	state="$CACHE/kvm-$(cat /proc/sys/kernel/random/boot_id)"
	if [ ! -f "$state" ]; then
		echo tcg >"$state"
		if [ -w /dev/kvm ]; then
			local probe="$VMDIR/probe"
			rm -rf "$probe" && mkdir -p "$probe"
			if (ACCEL=kvm MODE=probe VM_TIMEOUT=60 boot "$probe" >/dev/null 2>&1) &&
				grep -q '^# rust44-exit: 0' "$probe/results"; then
				echo kvm >"$state"
			fi
		fi
	fi
	cat "$state"
}

# kunit_filter_glob SUITE...: a kunit.filter_glob that matches the KUnit suite of the module the
# guest suites load (kunit_suites_of, lib.sh) and no built-in one; empty (no filter) for guest
# suites with several, or with the harness (whose boot runs the built-in ones).
kunit_filter_glob() {
	local names="" s
	for s in "$@"; do
		[ "$s" = harness ] && return 0
		names="$names$(kunit_suites_of "$s")
"
	done
	case $(printf '%s' "$names" | grep -c .) in
	0) echo "kunit.filter_glob=no_kunit_suite_in_this_boot" ;;
	1) echo "kunit.filter_glob=$(printf '%s' "$names" | grep .)" ;;
	esac
}

# suite_conf SUITE...: the settings of one boot that runs these suites in turn, from their
# tests/<suite>/vm.conf, into boot's locals: the most CPUs any asks for (smp), every extra device
# (extra) and kernel argument (kargs), the sum of their timeouts (600 s each unless set; a
# VM_TIMEOUT from the environment is the whole boot's). Memory and NVMe poll queues must agree.
suite_conf() {
	local s env_timeout=${VM_TIMEOUT:-} env_smp=${VM_SMP:-2} env_memory=${VM_MEMORY:-2G} sum=0 first=1
	smp=0
	for s in "$@"; do
		# A suite may add devices (QEMU_EXTRA=(...)), kernel arguments (KERNEL_ARGS="..."), set
		# NVME_POLL_QUEUES, the guest's CPU count (VM_SMP, 2 by default) and memory (VM_MEMORY),
		# and add -drive options to vdb (VDB_DRIVE_OPTS, e.g. throttling: a slower disk).
		local VM_SMP=$env_smp VM_MEMORY=$env_memory VM_TIMEOUT=$env_timeout KERNEL_ARGS="" NVME_POLL_QUEUES=$polls VDB_DRIVE_OPTS=""
		local -a QEMU_EXTRA=()
		if [ -f "$TOP/tests/$s/vm.conf" ]; then
			# shellcheck disable=SC1090
			. "$TOP/tests/$s/vm.conf"
		fi
		[ "$VM_SMP" -gt "$smp" ] && smp=$VM_SMP
		if [ $first = 1 ]; then
			memory=$VM_MEMORY polls_wanted=$NVME_POLL_QUEUES
		elif [ "$memory" != "$VM_MEMORY" ] || [ "$polls_wanted" != "$NVME_POLL_QUEUES" ]; then
			die "suites $* cannot share a boot: their VM_MEMORY or NVME_POLL_QUEUES differ"
		fi
		kargs="$kargs${KERNEL_ARGS:+ $KERNEL_ARGS}"
		vdb_opts="$vdb_opts${VDB_DRIVE_OPTS:+,$VDB_DRIVE_OPTS}"
		extra+=("${QEMU_EXTRA[@]}")
		sum=$((sum + ${VM_TIMEOUT:-600}))
		first=0
	done
	polls=$polls_wanted
	timeout=${env_timeout:-$sum}
}

# boot OUTDIR: one guest boot with MODE, CMD, SUITE and ACCEL from the environment (and, for a
# trial boot, TRIAL_DISKS, TRIAL_IN and the TRIAL_* settings: see run_trials).
boot() {
	local out=$1 overlay="$1/overlay" cpio="$1/initramfs.cpio" console=(-serial "file:$1/console.log")
	local extra=() smp=${VM_SMP:-2} memory=${VM_MEMORY:-2G} timeout=${VM_TIMEOUT:-600} kargs="" polls=$NVME_POLL_QUEUES polls_wanted vdb_opts=""
	# shellcheck disable=SC2086 # SUITE: the names of the suites this boot runs
	[ -n "${SUITE:-}" ] && suite_conf $SUITE
	# Built-in KUnit suites give the same results in every boot of a kernel: they run in the
	# harness suite's boot only (some 20 s of each debug boot). Other suites' boots run their
	# modules' KUnit suites alone (tests/lib/kunit-suites; the filter also applies to modules).
	local kunit_args=""
	if [ "$MODE" = suite ]; then
		# shellcheck disable=SC2086
		kunit_args=$(kunit_filter_glob $SUITE)
	fi
	mkdir -p "$overlay/rust44"
	{
		printf 'MODE=%q\nSUITE=%q\nACCEL=%q\nKVER_WANTED=%q\n' "$MODE" "${SUITE:-}" "$ACCEL" "$(cat "$CACHE/kernel.version")"
		printf 'CMD=%q\nZNS_ZONES=%q\nPOLL_QUEUES=%q\n' "${CMD:-}" $((ZNS_SIZE_MB / ZNS_ZONE_MB)) "$polls"
		printf 'INJECT_FAILURE=%q\nKERNEL_FLAVOUR=%q\nSCRIPT=%q\n' "${RUST44_INJECT_FAILURE:-0}" "$KERNEL" "${SCRIPT:-run.sh}"
		printf 'CHECK_FULL=%q\n' "${RUST44_CHECK_FULL:-0}"
		# The hardening suite: make soak's long run and its length, a seed to replay.
		printf 'SOAK=%q\nSOAK_SECONDS=%q\nSOAK_SEEDS=%q\nHARD_SEED=%q\n' "${RUST44_SOAK:-0}" \
			"${SOAK_SECONDS:-}" "${SOAK_SEEDS:-}" "${RUST44_HARD_SEED:-}"
		if [ -n "${TRIAL_DISKS:-}" ]; then
			printf 'TRIAL_PHASE=%q\nTRIAL_LAST=%q\nTRIAL_SEED=%q\nTRIAL_CUT=%q\nTRIAL_CUT_MS=%q\n' \
				"$TRIAL_PHASE" "$TRIAL_LAST" "$TRIAL_SEED" "$TRIAL_CUT" "$TRIAL_CUT_MS"
		fi
	} >"$overlay/rust44/run.conf"
	[ -n "${TRIAL_IN:-}" ] && cp -r "$TRIAL_IN" "$overlay/rust44/trial"
	(cd "$overlay" && find . -print0 | cpio --null -o -H newc --quiet) | cat "$VMDIR/base.cpio" - >"$cpio"

	# Fresh sparse disks each boot: no test sees another's leftovers. A trial's boots share theirs
	# (truncate leaves a file of that size as it is), and the guest's acknowledgements of writes
	# come out on a fourth serial port, ttyS3.
	local disk disks=$out trial_serial=()
	if [ -n "${TRIAL_DISKS:-}" ]; then
		disks=$TRIAL_DISKS
		trial_serial=(-serial "file:$out/acks")
	else
		for disk in vda vdb nvme-conv nvme-zns; do
			rm -f "$disks/$disk.img"
		done
	fi
	truncate -s 1G "$disks/vda.img" "$disks/vdb.img"
	truncate -s 512M "$disks/nvme-conv.img"
	truncate -s "${ZNS_SIZE_MB}M" "$disks/nvme-zns.img"

	[ "$MODE" = shell ] && console=(-serial mon:stdio)
	local accel_args=(-accel tcg -cpu max) accel_kargs=" tsc=unstable"
	[ "$ACCEL" = kvm ] && accel_args=(-accel kvm -cpu host) accel_kargs=""
	# tsc=unstable under TCG: the kernel then never switches sched_clock to stable nor the
	# clocksource to the TSC once every CPU runs. Both are static keys on paths all CPUs run all
	# the time, and with JUMP_LABEL QEMU 7.2's multi-threaded TCG sometimes let a CPU execute
	# text_poke_bp's int3 after the patch was done ("Oops: int3" in sched_clock_cpu and in
	# ktime_get_ts64 during boot, 2 boots in ~30). The TSC is no reliable clock under TCG anyway.
	# no5lvl: under TCG '-cpu max' offers 5-level paging, with which the KASAN kernel once reported
	# a wild access in a timer interrupt during start_kernel (identify_boot_cpu), before any
	# module exists; 4-level paging booted clean every time.
	local qemu=(qemu-system-x86_64 -machine q35 "${accel_args[@]}" -smp "$smp" -m "$memory"
		-display none -vga none -no-reboot
		-kernel "$BZIMAGE" -initrd "$cpio"
		-append "console=ttyS0 panic=-1 oops=panic loglevel=4 log_buf_len=4M no5lvl nvme.poll_queues=$polls $kunit_args$kargs$accel_kargs"
		"${console[@]}" -serial "file:$out/results" -serial "file:$out/dmesg" "${trial_serial[@]}"
		-drive "file=$disks/vda.img,if=none,id=vda,format=raw,cache=unsafe" -device virtio-blk-pci,drive=vda
		-drive "file=$disks/vdb.img,if=none,id=vdb,format=raw,cache=unsafe$vdb_opts" -device virtio-blk-pci,drive=vdb
		-drive "file=$disks/nvme-conv.img,if=none,id=nvmeconv,format=raw,cache=unsafe"
		-drive "file=$disks/nvme-zns.img,if=none,id=nvmezns,format=raw,cache=unsafe"
		-device nvme,serial=rust44nvme,id=nvme0
		-device nvme-ns,drive=nvmeconv,bus=nvme0,nsid=1
		-device "nvme-ns,drive=nvmezns,bus=nvme0,nsid=2,logical_block_size=4096,physical_block_size=4096,zoned=true,zoned.zone_size=${ZNS_ZONE_MB}M,zoned.zone_capacity=${ZNS_ZONE_MB}M,zoned.max_open=16,zoned.max_active=16"
		"${extra[@]}")
	local rc=0
	if [ "$MODE" = shell ]; then
		"${qemu[@]}" || rc=$?
	elif [ "${TRIAL_CUT:-}" = host ]; then
		cut_power "$out" "$timeout" "${qemu[@]}" || rc=$?
	else
		timeout -k 5 "$timeout" "${qemu[@]}" </dev/null >"$out/qemu.log" 2>&1 || rc=$?
	fi
	[ -n "${TRIAL_DISKS:-}" ] || rm -f "$out"/*.img
	rm -f "$cpio"
	return $rc
}

# cut_power OUTDIR TIMEOUT QEMU...: runs QEMU and kills it (SIGKILL: no device model finishes or
# drains anything) TRIAL_CUT_MS after the guest printed '# rust44-trial: load running' on its
# results port; the delay the cut came after goes to OUTDIR/cut. Returns 0 when it cut, QEMU's
# status when the guest ended first, 124 at TIMEOUT.
cut_power() {
	local out=$1 timeout=$2 pid start=$SECONDS rc=0
	shift 2
	"$@" </dev/null >"$out/qemu.log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if grep -aq '^# rust44-trial: load running' "$out/results" 2>/dev/null; then
			sleep "$((TRIAL_CUT_MS / 1000)).$(printf %03d $((TRIAL_CUT_MS % 1000)))"
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			echo "$TRIAL_CUT_MS" >"$out/cut"
			return 0
		fi
		if [ $((SECONDS - start)) -ge "$timeout" ]; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 124
		fi
		sleep 0.05
	done
	wait "$pid" || rc=$?
	return $rc
}

# run_trials SUITE OUT: power-cut trials. tests/SUITE/trials.conf sets TRIALS (the environment's
# wins), the cut's window TRIAL_CUT_MIN_MS..TRIAL_CUT_MAX_MS and TRIAL_CUT (host: SIGKILL to QEMU;
# guest: the guest's own 'echo b >/proc/sysrq-trigger', which lets QEMU finish what it has in
# flight). Boot K (0..TRIALS) runs tests/SUITE/run.sh over the disks of boot K-1 with TRIAL_PHASE=K,
# TRIAL_LAST=TRIALS, TRIAL_SEED (TRIAL_SEED from the environment, else random; recorded) and, in
# /rust44/trial, 'acks' (what boot K-1 wrote on ttyS3) and 'history' (the '# trial' lines of every
# earlier boot's results, and the host's '# trial-boot: K cut|ended ...' line for each). Every
# boot but the last is cut TRIAL_CUT_MS (seeded, in the window) after it says its load runs.
run_trials() {
	local suite=$1 out=$2 n seed k bout rc status cut_min cut_max cut_ms mode start
	read -r n cut_min cut_max mode < <(
		TRIALS=${TRIALS:-} TRIAL_CUT=${TRIAL_CUT:-}
		# shellcheck disable=SC1090 # the suite's settings
		. "$TOP/tests/$suite/trials.conf"
		echo "${TRIALS:-3} ${TRIAL_CUT_MIN_MS:-500} ${TRIAL_CUT_MAX_MS:-3000} ${TRIAL_CUT:-host}"
	)
	seed=${TRIAL_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
	rm -rf "$out" && mkdir -p "$out/disks" "$out/in"
	: >"$out/in/history"
	: >"$out/in/acks"
	: >"$out/dmesg"
	log "vm: $suite: $n power-cut trials in $((n + 1)) boots, seed $seed, cut by $mode"
	echo "seed=$seed trials=$n cut=$mode window_ms=$cut_min-$cut_max" >"$out/trials"
	for k in $(seq 0 "$n"); do
		bout="$out/boot$k"
		mkdir -p "$bout"
		RANDOM=$((seed * 1000 + k))
		cut_ms=$((cut_min + (RANDOM * 32768 + RANDOM) % (cut_max - cut_min + 1)))
		local cut=$mode
		[ "$k" = "$n" ] && cut=none
		rc=0
		start=$SECONDS
		MODE=suite SUITE=$suite TRIAL_DISKS="$out/disks" TRIAL_IN="$out/in" TRIAL_PHASE=$k \
			TRIAL_LAST=$n TRIAL_SEED=$seed TRIAL_CUT=$cut TRIAL_CUT_MS=$cut_ms boot "$bout" || rc=$?
		{
			echo "# rust44-trial: boot $k"
			cat "$bout/dmesg" 2>/dev/null
		} >>"$out/dmesg"
		[ "$k" = "$n" ] && break
		status=$(guest_status "$bout" "$rc")
		# The guest's own cut (sysrq b): its load ran and it never said it finished.
		if [ "$cut" = guest ] && grep -aq '^# rust44-trial: load running' "$bout/results" &&
			! grep -aq '^# rust44-exit: ' "$bout/results"; then
			echo "$cut_ms" >"$bout/cut"
		fi
		if [ -f "$bout/cut" ]; then
			echo "# trial-boot: $k cut after_ms=$cut_ms seconds=$((SECONDS - start))" >>"$out/in/history"
		else
			echo "# trial-boot: $k ended status=$status seconds=$((SECONDS - start))" >>"$out/in/history"
			log "vm: $suite: boot $k ended (status $status) before its cut; console: $bout/console.log"
		fi
		grep -a '^# trial' "$bout/results" | tr -d '\r' >>"$out/in/history" || true
		cp "$bout/acks" "$out/in/acks" 2>/dev/null || : >"$out/in/acks"
		log "vm: $suite: boot $k: $((SECONDS - start)) s, $([ -f "$bout/cut" ] && echo "cut ${cut_ms} ms into the load" || echo "not cut")"
	done
	cp "$bout/results" "$out/results"
	cp "$bout/console.log" "$out/console.log" 2>/dev/null || true
	cp "$out/in/history" "$out/history"
	rm -rf "$out/disks"
	guest_status "$bout" "$rc"
}

# Exit status the guest reported, or 124 after a timeout, or 125 when it said nothing.
guest_status() {
	local out=$1 qemu_rc=$2 line
	line=$(grep -a '^# rust44-exit: ' "$out/results" | tail -n1 | tr -d '\r' || true)
	if [ -n "$line" ]; then
		echo "${line#\# rust44-exit: }"
	elif [ "$qemu_rc" = 124 ]; then
		echo 124
	else
		echo 125
	fi
}

# split_boot WHOLE BASE NAME...: a boot's results and kernel log, cut at the guest's marks (the
# results' '# rust44-suite: NAME' lines, the log's 'rust44: suite NAME starts') into BASE/NAME.
# The log before the first mark (the boot, built-in KUnit) is the first suite's; after a suite come
# its kmemleak scan's reports, and the last one's the guest's closing scan.
split_boot() {
	local whole=$1 base=$2 name
	shift 2
	for name in "$@"; do
		rm -rf "${base:?}/$name" && mkdir -p "$base/$name"
		: >"$base/$name/results"
		: >"$base/$name/dmesg"
		cp "$whole/console.log" "$base/$name/console.log" 2>/dev/null || true
	done
	awk -v base="$base" -v first="$1" '
		{ line = $0; sub(/\r$/, "", line) }
		line ~ /^# rust44-suite: [^ ]+$/ { cur = substr(line, 17); next }
		{ print > (base "/" (cur == "" ? first : cur) "/results") }' "$whole/results"
	awk -v base="$base" -v first="$1" '
		/rust44: suite [^ ]+ starts$/ { cur = $(NF - 1) }
		{ print > (base "/" (cur == "" ? first : cur) "/dmesg") }' "$whole/dmesg"
}

main() {
	local mode=${1:-shell}
	mkdir -p "$VMDIR"
	build_initramfs
	ACCEL=$(choose_accel)
	export ACCEL
	case "$mode" in
	shell)
		log "vm: Linux $KVER, $ACCEL; the shell's 'exit' powers the guest off"
		MODE=shell boot "$VMDIR/shell"
		;;
	cmd)
		local out="$VMDIR/cmd" rc=0 status
		rm -rf "$out" && mkdir -p "$out"
		log "vm: Linux $KVER, $ACCEL"
		MODE=cmd CMD=${2:?usage: vm.sh cmd COMMAND} boot "$out" || rc=$?
		status=$(guest_status "$out" "$rc")
		grep -a '^# status: ' "$out/results" | sed 's/^# status: /rust44: guest: /' >&2 || true
		grep -av -e '^# status: ' -e '^# rust44-exit: ' "$out/results" || true
		if [ "$status" -ge 124 ]; then
			tail -n 40 "$out/console.log" >&2
			log "vm: the guest did not finish (status $status); console: $out/console.log"
		elif [ "$status" != 0 ]; then
			log "vm: the command exited with status $status"
		fi
		return "$status"
		;;
	suite)
		local suite=${2:?usage: vm.sh suite NAME OUTDIR} out=${3:?usage: vm.sh suite NAME OUTDIR} rc=0 status
		rm -rf "$out" && mkdir -p "$out"
		MODE=suite SUITE=$suite boot "$out" || rc=$?
		status=$(guest_status "$out" "$rc")
		echo "$ACCEL" >"$out/accel"
		echo "$status" >"$out/status"
		if [ "$status" -ge 124 ]; then
			# A hung or crashed guest: its results lack the '# rust44-exit' line, which tapsum
			# counts as the suite's failure; the console may hold the kernel's last words.
			log "vm: $suite: the guest did not finish (status $status); console: $out/console.log"
			cat "$out/console.log" >>"$out/dmesg"
		fi
		return 0
		;;
	suites)
		local base=${2:?usage: vm.sh suites OUT NAME...} rc=0 status name unfinished=""
		shift 2
		[ $# -gt 0 ] || die "usage: vm.sh suites OUT NAME..."
		local whole
		whole="$base/$(IFS=+; echo "$*")"
		rm -rf "$whole" && mkdir -p "$whole"
		MODE=suite SUITE="$*" boot "$whole" || rc=$?
		echo "$ACCEL" >"$whole/accel"
		split_boot "$whole" "$base" "$@"
		for name in "$@"; do
			status=$(guest_status "$base/$name" "$rc")
			echo "$ACCEL" >"$base/$name/accel"
			echo "$status" >"$base/$name/status"
			# The kernel's last words belong to the suite that was running.
			if [ "$status" -ge 124 ] && [ -z "$unfinished" ]; then
				unfinished=$name
				log "vm: $name: the guest did not finish (status $status); console: $whole/console.log"
				cat "$whole/console.log" >>"$base/$name/dmesg"
			fi
		done
		return 0
		;;
	trials)
		local suite=${2:?usage: vm.sh trials NAME OUTDIR} out=${3:?usage: vm.sh trials NAME OUTDIR} status
		[ -f "$TOP/tests/$suite/trials.conf" ] || die "tests/$suite has no trials.conf"
		status=$(run_trials "$suite" "$out")
		echo "$ACCEL" >"$out/accel"
		echo "$status" >"$out/status"
		if [ "$status" -ge 124 ]; then
			log "vm: $suite: the last boot did not finish (status $status); console: $out/console.log"
			cat "$out/console.log" >>"$out/dmesg"
		fi
		return 0
		;;
	*) die "usage: vm.sh shell | cmd COMMAND | suite NAME OUTDIR | suites OUT NAME... | trials NAME OUTDIR" ;;
	esac
}

main "$@"
