# lightnvm benchmark (make bench): dm-zoned against rust44-ftl on the same zoned namespace (nsid
# 5 of vm.conf, 128 MiB in 4 MiB zones, 16 open/active). dm-zoned cannot run on a zoned
# device without conventional zones alone: it gets a REG_MB slice of the conventional namespace
# for its metadata and random-write cache, formatted by dmzadm (tools/dmzadm.sh builds it from
# sid's dm-zoned-tools) with its defaults. rust44-ftl runs on the zoned namespace alone, with its
# defaults (4 streams, op 10%, greedy collection).
# Both get the same data: fio's region is the smaller of the two capacities (rounded down to
# MiB), so each holds as much live data on the same zones; what neither writes stays unmapped.
# Each round, for each implementation (which goes first alternates): every zone reset, a fresh
# device, then the steady state: the region written sequentially once (1 MiB, QD8) and once more
# in 4k random writes (QD32), not measured; then, RUNTIME s each: 4k random write QD32, 4k random
# read QD32, 1 MiB sequential write QD8. Write amplification: sectors the devices below took
# (zoned namespace, and for dm-zoned its regular slice) over the sectors written to the target,
# during the run. ROUNDS (3) rounds; a row is the run with the median IOPS, "runs" lists every run.
# Prints Markdown tables on stdout.
. /rust44/ktap.sh
. /rust44/bench.sh
cd /rust44/tests/lightnvm || exit 1
. ./lib.sh

DMZADM=./bin/dmzadm
KO=/rust44/extmod/lightnvm.ko
CONV=$(readlink -f /dev/rust44/nvme-conv)
# dm-zoned's regular device: an eighth of the zoned namespace's size.
REG_MB=${REG_MB:-16}
RUNTIME=${BENCH_RUNTIME:-10}
ROUNDS=${ROUNDS:-3}
IMPLS="dm-zoned rust44-ftl"
OUT=/tmp/ftl-bench.runs
JOBS="4k randwrite QD32 (steady state)|--rw=randwrite --bs=4k --iodepth=32
4k randread QD32|--rw=randread --bs=4k --iodepth=32
1M seqwrite QD8|--rw=write --bs=1M --iodepth=8"
NJOBS=$(echo "$JOBS" | wc -l)

ZNS=$(ns_dev 5) || { echo "no namespace 5 (tests/lightnvm/vm.conf)"; exit 1; }

job_name() { echo "$JOBS" | sed -n "${1}p" | cut -d'|' -f1; }
job_args() { echo "$JOBS" | sed -n "${1}p" | cut -d'|' -f2; }

# written_sectors DEV...: sectors written to these block devices so far (/sys/block/*/stat).
written_sectors() {
	local d total=0
	for d in "$@"; do
		total=$((total + $(awk '{ print $7 }' "/sys/block/$(sysname "$d")/stat")))
	done
	echo $total
}

top_dev() {
	case "$1" in
	dm-zoned) echo /dev/mapper/dmzb ;;
	rust44-ftl) echo /dev/mapper/ftlb ;;
	esac
}

# The block devices whose writes an implementation causes.
below() {
	case "$1" in
	dm-zoned) echo "$ZNS $CONV" ;;
	rust44-ftl) echo "$ZNS" ;;
	esac
}

# sysname DEV: the kernel's name of a block device node (dm-N for /dev/mapper/NAME, which
# dmsetup makes as a node of its own without udev).
sysname() {
	local d
	case "$1" in
	/dev/mapper/*)
		for d in /sys/block/dm-*; do
			[ "$(cat "$d/dm/name" 2>/dev/null)" = "${1#/dev/mapper/}" ] && echo "${d##*/}" && return 0
		done
		return 1
		;;
	*) basename "$(readlink -f "$1")" ;;
	esac
}

sectors_of() {
	cat "/sys/block/$(sysname "$1")/size"
}

teardown() {
	dm remove dmzb 2>/dev/null
	dm remove ftlb 2>/dev/null
	dm remove dmzreg 2>/dev/null
	return 0
}

# create IMPL: a fresh device of IMPL over reset zones.
create() {
	teardown
	$BLKZONE reset "$ZNS" || return 1
	case "$1" in
	dm-zoned)
		dm create dmzreg --table "0 $((REG_MB * 2048)) linear $CONV 0" || return 1
		$BLKDISCARD -f -z /dev/mapper/dmzreg 2>/dev/null
		# dmzadm looks the devices up in sysfs by their node's name: dm-N, not the mapper name.
		reg=/dev/$(sysname /dev/mapper/dmzreg) || return 1
		$DMZADM --format "$reg" "$ZNS" --force --label=dmzb >/tmp/dmzadm.out 2>&1 ||
			{ cat /tmp/dmzadm.out; return 1; }
		$DMZADM --start "$reg" "$ZNS" >/tmp/dmzadm.out 2>&1 || { cat /tmp/dmzadm.out; return 1; }
		;;
	rust44-ftl)
		cap=$(ftl_capacity ftlb "$ZNS") || return 1
		dm create ftlb --table "0 $cap rust44-ftl $ZNS" || return 1
		;;
	esac
	[ -b "$(top_dev "$1")" ]
}

# fio_run IMPL JOB SIZE_MB [timed]: one fio run; prints "IOPS MiB/s WA".
fio_run() {
	local impl=$1 job=$2 size=$3 dev before_dev before_top line wa
	dev=$(top_dev "$impl")
	before_top=$(written_sectors "$dev")
	# shellcheck disable=SC2046
	before_dev=$(written_sectors $(below "$impl"))
	# shellcheck disable=SC2046
	line=$($FIO --name=bench --filename="$dev" --direct=1 --ioengine=libaio --size="${size}M" \
		--time_based --runtime="$RUNTIME" --ramp_time=1 --randrepeat=0 --norandommap \
		--minimal $(job_args "$job") </dev/null 2>/dev/null) || return 1
	[ -n "$line" ] || return 1
	# shellcheck disable=SC2046
	wa=$(awk -v d=$(($(written_sectors $(below "$impl")) - before_dev)) \
		-v h=$(($(written_sectors "$dev") - before_top)) 'BEGIN { if (h > 0) printf "%.2f", d / h; else print "-" }')
	# Terse v3: 7/8 read KiB/s and IOPS, 48/49 write.
	echo "$line" | awk -F';' -v wa="$wa" '{ printf "%.0f %.1f %s\n", $8 + $49, ($7 + $48) / 1024, wa }'
}

# measure IMPL SIZE_MB: one round.
measure() {
	local impl=$1 size=$2 dev j r
	if ! create "$impl" >/tmp/create.out 2>&1; then
		echo "$impl - no-device" >>"$OUT"
		sed "s/^/# $impl: /" /tmp/create.out
		teardown
		return
	fi
	dev=$(top_dev "$impl")
	$FIO --name=pre-seq --filename="$dev" --direct=1 --ioengine=libaio --size="${size}M" --rw=write \
		--bs=1M --iodepth=8 --minimal >/dev/null 2>&1 &&
		$FIO --name=pre-rand --filename="$dev" --direct=1 --ioengine=libaio --size="${size}M" \
			--rw=randwrite --bs=4k --iodepth=32 --randrepeat=0 --norandommap --minimal >/dev/null 2>&1 ||
		echo "# $impl: the preconditioning failed"
	for j in $(seq "$NJOBS"); do
		if r=$(fio_run "$impl" "$j" "$size"); then
			echo "$impl $j ok $r" >>"$OUT"
		else
			echo "$impl $j failed" >>"$OUT"
		fi
	done
	teardown
}

median() { BENCH_NOTE="WA 6" bench_median "$OUT" "$1" "$2"; }

: >"$OUT"
status=0
modprobe dm-zoned || { echo "dm-zoned did not load"; status=1; }
insmod "$KO" || { echo "lightnvm.ko did not load"; status=1; }
[ -x "$DMZADM" ] || { echo "no dmzadm in the image (tools/dmzadm.sh failed on the host): dm-zoned cannot be measured"; exit 1; }

# The common region: the smaller capacity.
caps=""
for impl in $IMPLS; do
	if create "$impl" >/tmp/create.out 2>&1; then
		c=$(sectors_of "$(top_dev "$impl")")
		caps="$caps $impl=$((c / 2048))"
	else
		echo "# $impl: the device could not be created:"
		sed "s/^/#   /" /tmp/create.out
		status=1
	fi
	teardown
done
# shellcheck disable=SC2086
size=$(for c in $caps; do echo "${c#*=}"; done | sort -n | head -n1)
[ -n "$size" ] && [ "$size" -gt 0 ] || { echo "no capacity to measure:$caps"; exit 1; }

reversed=$(echo "$IMPLS" | tr ' ' '\n' | sed -n '1!G;h;$p')
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then order=$IMPLS; else order=$reversed; fi
	for impl in $order; do
		measure "$impl" "$size"
	done
done

echo "Zoned namespace: $ZNS, $(($(sectors_of "$ZNS") / 2048)) MiB in $(cat "/sys/block/${ZNS##*/}/queue/nr_zones") zones."
echo "Capacities (MiB):$caps; fio region: the first $size MiB of each. dm-zoned: a ${REG_MB} MiB"
echo "slice of the conventional namespace for its metadata and cache, dmzadm's defaults. rust44-ftl:"
echo "its defaults. Each round: zones reset, a fresh device, the region written sequentially and then"
echo "in 4k random writes (2x its size, not measured), then ${RUNTIME} s per row after 1 s ramp (libaio,"
echo "O_DIRECT). WA: sectors written below (namespace, and dm-zoned's slice) over sectors written to the"
echo "target. $ROUNDS rounds, which implementation goes first alternates; a row is the median run."
echo
echo "| implementation | workload | IOPS | MiB/s | write amplification | runs (IOPS, WA) |"
echo "|---|---|---:|---:|---:|---|"
for impl in $IMPLS; do
	grep -q "^$impl - no-device" "$OUT" && echo "| $impl | - | creating the device failed in a round | | | |"
	for j in $(seq "$NJOBS"); do
		m=$(median "$impl" "$j")
		if [ -z "$m" ]; then
			echo "| $impl | $(job_name "$j") | failed | | | |"
			status=1
			continue
		fi
		# shellcheck disable=SC2086
		set -- ${m%%|*}
		wa=$6
		[ "$j" = 2 ] && wa="-"
		echo "| $impl | $(job_name "$j") | $4 | $5 | $wa | ${m#*|} |"
	done
done
echo
echo "rust44-ftl / dm-zoned (medians; above 1.00x is more IOPS; WA: below 1.00x is less):"
echo
echo "| workload | IOPS | write amplification |"
echo "|---|---:|---:|"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "" && a != "-") printf "%.3gx", a / b; else print "n/a" }'; }
for j in $(seq "$NJOBS"); do
	c=$(median dm-zoned "$j")
	r=$(median rust44-ftl "$j")
	if [ -z "$c" ] || [ -z "$r" ]; then
		echo "| $(job_name "$j") | n/a | n/a |"
		continue
	fi
	# shellcheck disable=SC2086
	set -- ${c%%|*}
	c_v=$4 c_wa=$6
	# shellcheck disable=SC2086
	set -- ${r%%|*}
	if [ "$j" = 2 ]; then
		echo "| $(job_name "$j") | $(ratio "$4" "$c_v") | - |"
	else
		echo "| $(job_name "$j") | $(ratio "$4" "$c_v") | $(ratio "$6" "$c_wa") |"
	fi
done
exit $status
