#!/usr/bin/env bash
# The one test command (make check): host cargo tests and lint, then for each kernel (default, then
# debug: KASAN, lockdep, kmemleak) each guest suite tests/*/run.sh in its own QEMU boot, but for
# the small ones of BOOT_GROUPS, which share one (kselftests, with the KUnit results and the splat
# check taken from each suite's part of the kernel log).
# Prints one TAP stream ending in 'N passed, N failed'; exits non-zero on any failure.
#   KERNEL=default|debug checks one kernel only; SUITES="harness ..." limits the guest suites.
set -euo pipefail
requested=${KERNEL:-}
. "$(dirname "$0")/lib.sh"
kernels=${requested:-default debug}

out="$CACHE/check"
rm -rf "$out" && mkdir -p "$out"
args=()
tapsum="$TOP/target/release/tapsum"
kunit_list="$TOP/tests/lib/kunit-suites"

# host_tests DIR: 'cargo test' of each workspace member on its own, --no-fail-fast, so that a crate
# that does not build or a test binary that dies cannot hide the others. Each output ends with
# '# cargo-exit: N' for tapsum (which also fails a binary that stopped before its summary).
# Appends the --cargo arguments to the array named by $2.
host_tests() {
	local dir=$1 member crate rc
	local -n into=$2
	mkdir -p "$dir"
	members=$(sed -n '/^members *=/,/]/p' "$TOP/Cargo.toml" | grep -o '"[^"]*"' | tr -d '"')
	[ -n "$members" ] || die "no workspace members in Cargo.toml"
	for member in $members; do
		crate=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$TOP/$member/Cargo.toml" | head -n1)
		rc=0
		(cd "$TOP" && cargo test --offline --no-fail-fast --manifest-path "$member/Cargo.toml") \
			>"$dir/$crate.txt" 2>&1 || rc=$?
		echo "# cargo-exit: $rc" >>"$dir/$crate.txt"
		into+=(--cargo "host/$crate=$dir/$crate.txt")
	done
}

# Suites that run in one boot, in this order (tools/vm.sh suites), each still with its own results,
# kernel log part, KUnit expectations and dmesg-clean; a boot of the debug kernel costs ~85 s
# (kernel init, userspace, the closing kmemleak scan). A boot takes the union of its suites'
# vm.conf. The harness comes first: the log of the boot before any suite (the built-in KUnit
# suites) is the first suite's. These suites touch none of the shared emulated disks, so none sees
# what another left there (lightnvm writes only the two zoned namespaces its vm.conf adds); loop_dio
# and raid5_journal (both write vdb) boot alone. tcp_listener boots
# alone too: its issue asks for 4 CPUs, which make everything else in a debug boot about twice as
# slow under TCG on two host cores (kernel init, built-in KUnit, the kmemleak scans).
# hardening (issue 17) joins them: it makes its own backing files (tmpfs) and disks (blk_poll).
# virtio_gpu3d boots alone: the GPU (egl-headless, ~20 s a boot) and its Mesa disk are its own;
# virtio_gpu3d_no3d's plain virtio-gpu (no GL) costs the group's boot nothing, and no other suite
# binds it.
BOOT_GROUPS=("harness mm_mlock2 blk_poll lightnvm hardening virtio_gpu3d_no3d")

# boots SUITE...: one line per boot, the suites it runs, in the order of SUITE... (a group where
# its first selected member is); suites not in a BOOT_GROUPS entry boot alone.
boots() {
	local suite group member line done=" "
	for suite in "$@"; do
		[[ "$done" == *" $suite "* ]] && continue
		line=$suite
		for group in "${BOOT_GROUPS[@]}"; do
			[[ " $group " == *" $suite "* ]] || continue
			line=""
			for member in $group; do
				[[ " $* " == *" $member "* ]] && line="$line $member"
			done
		done
		echo $line
		for member in $line; do done="$done$member "; done
	done
}

# kunit_expected GUEST_SUITE: kunit_suites_of (lib.sh), comma-separated for tapsum.
kunit_expected() {
	kunit_suites_of "$1" | paste -sd, -
}

# The list must match the tree: a suite missing from it could go missing from the kernel log
# unnoticed, and a name in it that is no suite would fail every boot.
kunit_list_tap() {
	local suite in_tree listed problems=()
	# In rust44's Rust files, and added by its patches to the kernel crate's files.
	in_tree=$(cd "$TOP" && {
		git ls-files -co --exclude-standard '*.rs' | xargs -r grep -h 'kunit_tests(\w*)' || true
		git ls-files -co --exclude-standard 'rust/patches/*.patch' | xargs -r grep -h '^+.*kunit_tests(\w*)' || true
	} | { grep -o 'kunit_tests(\w*)' || true; } | sed 's/kunit_tests(\(.*\))/\1/' | sort -u)
	grep -qx 'CONFIG_RUST_KERNEL_DOCTESTS=y' "$TOP/config/rust44.config" && in_tree="$in_tree rust_doctests_kernel"
	listed=$(awk '!/^#/ && NF { print $1 }' "$kunit_list")
	for suite in $in_tree; do
		grep -qx "$suite" <<<"$listed" || problems+=("$suite is not listed")
	done
	for suite in $listed; do
		[[ " $(echo $in_tree) " == *" $suite "* ]] || problems+=("$suite is no suite in the tree")
	done
	echo "TAP version 13"
	if [ ${#problems[@]} = 0 ]; then
		echo "ok 1 kunit_suite_list_is_complete"
	else
		echo "not ok 1 kunit_suite_list_is_complete # tests/lib/kunit-suites: $(IFS=,; echo "${problems[*]}")"
	fi
	echo "1..1"
}

# tests_seconds RESULTS: the sum of a suite's test durations (ktap_test's duration lines).
tests_seconds() {
	awk '/^  # duration_ms: [0-9]+$/ { ms += $3 } END { printf "%.0f", ms / 1000 }' "$1" 2>/dev/null
}

# slowest_tests RESULTS: the three longest tests of a suite, from ktap_test's duration lines.
slowest_tests() {
	awk '/^  # duration_ms: [0-9]+$/ { ms = $3; next }
		/^(not )?ok / && ms != "" { name = $0; sub(/^(not )?ok [0-9]+ /, "", name); sub(/ #.*/, "", name)
			printf "%d %s\n", ms, name; ms = "" }' "$1" 2>/dev/null |
		sort -rn | head -n3 | awk '{ printf "%s%s %.0f s", sep, $2, $1 / 1000; sep = ", " }'
}

log "check: host tests (cargo test)"
(cd "$TOP" && cargo build --offline --quiet --release -p tapsum) || die "cannot build tools/tapsum"
host_args=()
host_tests "$out/cargo" host_args
args+=("${host_args[@]}")
kunit_list_tap >"$out/kunit-list.tap"
args+=(--tap "kunit-list=$out/kunit-list.tap")

suites=${SUITES:-$(cd "$TOP/tests" && for s in */run.sh; do printf '%s ' "${s%/run.sh}"; done)}
first=1
for kernel in $kernels; do
	export KERNEL=$kernel
	log "check: $kernel kernel and modules"
	"$TOP/tools/kernel.sh" build
	"$TOP/tools/extmod.sh"

	if [ $first = 1 ]; then
		log "check: rustfmt and clippy"
		"$TOP/tools/lint.sh" --tap >"$out/lint.tap" 2>&1 || true
		args+=(--tap "lint=$out/lint.tap")
	fi

	for suite in $suites; do
		[ -f "$TOP/tests/$suite/run.sh" ] || die "no suite tests/$suite"
	done
	# shellcheck disable=SC2086
	mapfile -t boot_list < <(boots $suites)
	for boot in "${boot_list[@]}"; do
		# shellcheck disable=SC2086
		set -- $boot
		start=$SECONDS
		if [ $# = 1 ] && [ -f "$TOP/tests/$1/trials.conf" ]; then
			# Power-cut trials: several boots over the same disks (tools/vm.sh run_trials).
			"$TOP/tools/vm.sh" trials "$1" "$out/$kernel/$1"
		elif [ $# = 1 ]; then
			"$TOP/tools/vm.sh" suite "$1" "$out/$kernel/$1"
		else
			"$TOP/tools/vm.sh" suites "$out/$kernel" "$@"
		fi
		[ $# = 1 ] || log "check: $kernel/$(IFS=+; echo "$*"): $((SECONDS - start)) s in one boot under $(cat "$out/$kernel/$1/accel")"
		for suite in "$@"; do
			if [ $# = 1 ]; then
				log "check: $kernel/$suite: $((SECONDS - start)) s under $(cat "$out/$kernel/$suite/accel"), slowest: $(slowest_tests "$out/$kernel/$suite/results")"
			else
				log "check: $kernel/$suite: tests $(tests_seconds "$out/$kernel/$suite/results") s, slowest: $(slowest_tests "$out/$kernel/$suite/results")"
			fi
			args+=(--suite "$kernel/$suite=$out/$kernel/$suite/results" --dmesg "$kernel/$suite=$out/$kernel/$suite/dmesg"
				--kunit "$kernel/$suite=$(kunit_expected "$suite")")
		done
	done

	# The harness must count every way a test can fail: the canary runs the host tests and the
	# harness suite again with failures injected, and compares the counts with the normal run's.
	# It also runs without NVMe poll queues, so the harness sees them absent when not asked for.
	if [ $first = 1 ] && [[ " $suites " == *" harness "* ]]; then
		canary="$out/$kernel/canary"
		log "check: canary (injected failures)"
		canary_host=()
		RUST44_INJECT_FAILURE=1 host_tests "$canary/cargo" canary_host
		RUST44_INJECT_FAILURE=1 NVME_POLL_QUEUES=0 "$TOP/tools/vm.sh" suite harness "$canary/harness"
		RUST44_INJECT_FAILURE=early_exit "$TOP/tools/vm.sh" suite harness "$canary/early"
		expected=$(kunit_expected harness)
		normal=$("$tapsum" --summary-only "${host_args[@]}" --suite "h=$out/$kernel/harness/results" \
			--dmesg "h=$out/$kernel/harness/dmesg" --kunit "h=$expected" || true)
		counted=$("$tapsum" --summary-only "${canary_host[@]}" --suite "h=$canary/harness/results" \
			--dmesg "h=$canary/harness/dmesg" --kunit "h=$expected,rust44_injected_absent" \
			--suite "early=$canary/early/results" || true)
		# What each injection changes, against the normal run:
		#   (a) tapsum's injected_abort test binary aborts:    its 1 pass becomes 1 failure
		#   (b) run.sh exits 3 before any TAP (2nd boot):       +1 failure
		#   (c) a program short of its plan (2 of 3 results):   +2 passes, +1 failure
		#       a program with 1 result and no plan:            +1 pass,   +1 failure
		#   (d) an expected KUnit suite that is absent:         +1 failure
		#   (e) kernel reports (a WARNING, an rcu_sched stall): dmesg-clean's pass becomes 1 failure
		#   a test that fails (injected_failure):               +1 failure
		passes=$((-1 + 0 + 2 + 1 + 0 - 1 + 0))
		failures=$((1 + 1 + 1 + 1 + 1 + 1 + 1))
		normal_passed=${normal%% passed*}
		normal_failed=${normal#*passed, }
		normal_failed=${normal_failed%% failed*}
		# Skips stay as they were.
		want="$((normal_passed + passes)) passed, $((normal_failed + failures)) failed${normal#*failed}"
		# Both injected kernel reports are found (one would fail dmesg-clean already).
		reports=$("$tapsum" --dmesg "h=$canary/harness/dmesg" | grep -c -e '^# h: WARNING: CPU: 0 PID: 1 at rust44 injected' \
			-e '^# h: rcu: INFO: rcu_sched detected stalls' || true)
		{
			echo "TAP version 13"
			if [ "$counted" = "$want" ]; then
				echo "ok 1 injected_failures_are_counted"
			else
				echo "not ok 1 injected_failures_are_counted # counted '$counted', want '$want'"
			fi
			if [ "$reports" = 2 ]; then
				echo "ok 2 injected_kernel_reports_are_found"
			else
				echo "not ok 2 injected_kernel_reports_are_found # found $reports of the 2"
			fi
			echo "1..2"
		} >"$canary.tap"
		args+=(--tap "$kernel/harness=$canary.tap")
	fi
	first=0
done

log "check: results in $out"
"$tapsum" "${args[@]}"
