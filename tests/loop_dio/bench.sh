# loop_dio benchmark (make bench): the C loop driver (loop.ko) and rust44's loop_dio in one boot,
# each with the backing file under direct I/O (dio on) and through the page cache (dio off).
# fio (io_uring, O_DIRECT on the loop device) runs 4k random reads and writes at QD1 and QD32
# and 1 MiB sequential reads against a 256 MiB backing file on ext4 on virtio-blk (vdb).
# Prints Markdown tables on stdout; a driver whose module is not built gets a row saying so.
cd /rust44/tests/loop_dio || exit 1
LOSETUP=/usr/sbin/losetup
FIO=/usr/bin/fio
MKFS=/usr/sbin/mkfs.ext4
DRIVERS=${LOOP_DRIVERS:-loop loop_dio}
RUNTIME=${BENCH_RUNTIME:-10}
SIZE=256M
MNT=/mnt/vdb
FILE=$MNT/bench.img
OUT=/tmp/loop-bench.tsv
# name|fio arguments
JOBS="4k randread QD1|--rw=randread --bs=4k --iodepth=1
4k randread QD32|--rw=randread --bs=4k --iodepth=32
4k randwrite QD1|--rw=randwrite --bs=4k --iodepth=1
4k randwrite QD32|--rw=randwrite --bs=4k --iodepth=32
1M seqread QD8|--rw=read --bs=1M --iodepth=8"

module_built() {
	grep -q "/$1\.ko[.a-z]*:" "/lib/modules/$(uname -r)/modules.dep"
}

# Busy and total jiffies of all CPUs (busy: everything but idle and iowait).
cpu_jiffies() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

# run DRIVER DIO NAME ARGS: one fio job on $DEV; appends a row to $OUT.
run() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	set -- "$1" "$2" "$3" "$4" $(cpu_jiffies)
	# shellcheck disable=SC2086
	line=$($FIO --name=bench --filename="$DEV" --direct=1 --ioengine=io_uring --size=$SIZE \
		--time_based --runtime="$RUNTIME" --ramp_time=1 --randrepeat=0 --norandommap \
		--minimal $4 </dev/null 2>/dev/null)
	rc=$?
	set -- "$1" "$2" "$3" "$4" "$5" "$6" $(cpu_jiffies)
	pages=$(./pagecache "$FILE" | cut -d' ' -f1)
	if [ $rc -ne 0 ] || [ -z "$line" ]; then
		printf '%s\t%s\t%s\tfailed\n' "$1" "$2" "$3" >>"$OUT"
		return
	fi
	# Terse v3: 7/8 read KiB/s and IOPS, 48/49 write, 88/89 fio's usr/sys CPU %.
	echo "$line" | awk -F';' -v drv="$1" -v dio="$2" -v job="$3" -v pages="$pages" \
		-v busy=$(($7 - $5)) -v total=$(($8 - $6)) '{
		usr = $88; sub(/%/, "", usr); sys = $89; sub(/%/, "", sys)
		printf "%s\t%s\t%s\tok\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\n", drv, dio, job, $8 + $49,
			($7 + $48) / 1024, usr, sys, total ? 100 * busy / total : 0, pages * 4 / 1024
	}' >>"$OUT"
}

mkdir -p "$MNT"
$MKFS -q -E nodiscard /dev/vdb && mount -t ext4 /dev/vdb "$MNT" || { echo "cannot set up ext4 on vdb"; exit 1; }
# Written for real (not sparse): reads must reach the disk.
$FIO --name=fill --filename="$FILE" --rw=write --bs=1M --size=$SIZE --direct=1 --ioengine=psync \
	--minimal >/dev/null 2>&1 || { echo "cannot write $FILE"; exit 1; }
: >"$OUT"
status=0
for drv in $DRIVERS; do
	if ! module_built "$drv"; then
		printf '%s\t-\t-\tmissing\n' "$drv" >>"$OUT"
		continue
	fi
	if ! modprobe "$drv"; then
		printf '%s\t-\t-\tno-load\n' "$drv" >>"$OUT"
		status=1
		continue
	fi
	for dio in on off; do
		DEV=$($LOSETUP -f --show --direct-io=$dio "$FILE") || { status=1; continue; }
		want=0
		[ $dio = on ] && want=1
		if [ "$(cat "/sys/block/${DEV#/dev/}/loop/dio")" != $want ]; then
			printf '%s\t%s\t-\tdio-not-%s\n' "$drv" $dio $dio >>"$OUT"
			status=1
		fi
		echo "$JOBS" | while IFS='|' read -r name args; do
			run "$drv" $dio "$name" "$args"
		done
		$LOSETUP -d "$DEV"
	done
	$LOSETUP -D
	rmmod "$drv" || status=1
done
umount "$MNT"

label() {
	case "$1" in
	loop) echo "loop (C)" ;;
	loop_dio) echo "loop_dio (rust44)" ;;
	*) echo "$1" ;;
	esac
}

echo "Backing file: $SIZE on ext4 on virtio-blk (vdb). fio: io_uring, O_DIRECT on the loop device,"
echo "${RUNTIME} s per row (after 1 s ramp), caches dropped before each row. \"fio CPU\" is the submitting"
echo "thread's usr/sys; \"system CPU\" is all CPUs busy (the loop workers included, of 2 CPUs)."
echo "\"Page cache\" is how much of the backing file was resident (mincore) after the row."
echo
echo "| driver | backing dio | workload | IOPS | MiB/s | fio CPU usr % | fio CPU sys % | system CPU % | page cache (MiB) |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
while IFS="$(printf '\t')" read -r drv dio job state iops mibs usr sys busy cache; do
	case "$state" in
	ok) echo "| $(label "$drv") | $dio | $job | $iops | $mibs | $usr | $sys | $busy | $cache |" ;;
	missing) echo "| $(label "$drv") | - | - | module not built: not measured | | | | | |" ;;
	no-load) echo "| $(label "$drv") | - | - | modprobe failed: not measured | | | | | |" ;;
	dio-not-*) echo "| $(label "$drv") | $dio | - | direct I/O was not $dio: rows below are suspect | | | | | |" ;;
	*) echo "| $(label "$drv") | $dio | $job | fio failed | | | | | |" ;;
	esac
done <"$OUT"

echo
echo "rust44 / C (loop_dio divided by loop; above 1.00x is more IOPS, more CPU, more cache):"
echo
echo "| backing dio | workload | IOPS | MiB/s | system CPU | page cache |"
echo "|---|---|---:|---:|---:|---:|"
awk -F'\t' '
	function ratio(r, c) { return (c > 0 && r != "") ? sprintf("%.2fx", r / c) : "n/a" }
	$4 == "ok" && $1 == "loop" { key = $2 "|" $3; order[++n] = key; c_iops[key] = $5; c_bw[key] = $6; c_cpu[key] = $9; c_pc[key] = $10 }
	$4 == "ok" && $1 == "loop_dio" { key = $2 "|" $3; r_iops[key] = $5; r_bw[key] = $6; r_cpu[key] = $9; r_pc[key] = $10 }
	END {
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, p, "|")
			if (!(k in r_iops)) {
				printf "| %s | %s | n/a | n/a | n/a | n/a |\n", p[1], p[2]
				continue
			}
			pc = (c_pc[k] == 0 && r_pc[k] == 0) ? "both 0" : ratio(r_pc[k], c_pc[k])
			printf "| %s | %s | %s | %s | %s | %s |\n", p[1], p[2], ratio(r_iops[k], c_iops[k]),
				ratio(r_bw[k], c_bw[k]), ratio(r_cpu[k], c_cpu[k]), pc
		}
	}' "$OUT"
exit $status
