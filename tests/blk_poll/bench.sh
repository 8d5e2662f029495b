# blk_poll benchmark: fio io_uring 4k randread QD1, hipri off and on, in one boot. Prints Markdown.
# (a) C null_blk (irqmode=0 poll_queues=1) against blk_poll with the same settings;
# (b) blk_poll with completion_nsec=20000 (and 200 us, 2 ms): timer completion vs classic vs hybrid
#     polling, with fio's CPU figure and the VM's busy time from /proc/stat.
# (c) polled I/O through loop_dio on a file on NVMe (and the NVMe device itself): hipri off and on.
FIO=/usr/bin/fio
CFS=/sys/kernel/config/blk_poll
RUNTIME=${RUNTIME:-3}
# Runs alternate between the devices compared, ROUNDS times; each row is the run with the
# median IOPS (the VM shares a small host, so single runs are noisy).
ROUNDS=${ROUNDS:-3}

# busy_jiffies: the system's non-idle CPU time so far, in USER_HZ ticks (/proc/stat; idle and
# iowait count as idle).
busy_jiffies() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# fio_run DEV HIPRI: prints "iops p50_us p99_us fio_cpu_pct sys_busy_pct iou_wrk_threads".
# The percentiles are of the total latency (submission to completion): a hybrid device sleeps
# inside the submission, which fio's clat would not see.
# fio_cpu_pct is fio's usr+sys (its job's rusage); sys_busy_pct is the whole VM's busy time
# over the run from /proc/stat, in % of one CPU (the VM has two); iou_wrk_threads is how many io-wq workers fio
# had mid-run (0: every request was issued inline by the submitting task).
fio_run() {
	b0=$(busy_jiffies)
	t0=$(awk '{ print int($1 * 100) }' /proc/uptime)
	$FIO --name=b --filename="$1" --direct=1 --ioengine=io_uring --hipri="$2" --rw=randread \
		--bs=4k --iodepth=1 --size=256m --time_based --runtime="$RUNTIME" --ramp_time=1 \
		--clat_percentiles=0 --lat_percentiles=1 \
		--output-format=json --output=/tmp/bench.json >/dev/null 2>&1 &
	fpid=$!
	sleep 2
	wrk=$(cat /proc/$fpid/task/*/comm /proc/[0-9]*/task/*/comm 2>/dev/null | grep -c '^iou-wrk')
	wait $fpid || { echo "0 0 0 0 0 0"; return; }
	b1=$(busy_jiffies)
	t1=$(awk '{ print int($1 * 100) }' /proc/uptime)
	awk -F: -v busy=$((b1 - b0)) -v wall=$((t1 - t0)) -v wrk="$wrk" '
		/"iops" :/ && !iops { gsub(/[ ,]/, "", $2); iops = $2 }
		/"50.000000" :/ && !p50 { gsub(/[ ,]/, "", $2); p50 = $2 }
		/"99.000000" :/ && !p99 { gsub(/[ ,]/, "", $2); p99 = $2 }
		/"usr_cpu" :/ { gsub(/[ ,]/, "", $2); usr = $2 }
		/"sys_cpu" :/ { gsub(/[ ,]/, "", $2); sys = $2 }
		END {
			pct = 0
			if (wall > 0) pct = 100 * busy / wall
			printf("%d %.1f %.1f %.1f %.1f %d\n", iops, p50 / 1000, p99 / 1000, usr + sys, pct, wrk)
		}' /tmp/bench.json
}

mkdev() { # NAME ATTR=VALUE...
	n=$1
	shift
	mkdir "$CFS/$n"
	for kv in "$@"; do echo "${kv#*=}" >"$CFS/$n/${kv%%=*}"; done
	echo 1 >"$CFS/$n/power"
	sleep 0.2
}

rmdev() { echo 0 >"$CFS/$1/power"; rmdir "$CFS/$1"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

# measure TAG DEV HIPRI: one run, appended to /tmp/runs.TAG.
measure() {
	fio_run "$2" "$3" >>"/tmp/runs.$1"
}

# median TAG: the median-IOPS run of TAG, then " | " and every run's IOPS.
median() {
	n=$(wc -l <"/tmp/runs.$1")
	row=$(sort -n "/tmp/runs.$1" | sed -n "$(((n + 1) / 2))p")
	echo "$row | $(cut -d' ' -f1 "/tmp/runs.$1" | tr '\n' ' ')"
}

# runs_of FIELDS...: the IOPS of every run, from median's output.
runs_of() {
	shift 7
	echo "$*"
}

rm -f /tmp/runs.*
modprobe blk_poll

# (a) overhead against C null_blk.
table_a() {
	modprobe null_blk nr_devices=1 queue_mode=2 irqmode=0 poll_queues=1 submit_queues=1 gb=1
	mkdev bpa size=1024 submit_queues=1 poll_queues=1 irqmode=0 completion_nsec=0
	# null_blk keeps no data by default; a memory-backed one does what blk_poll does per request
	# (look up the stored page, copy or zero-fill), for comparison.
	NCFS=/sys/kernel/config/nullb
	mkdir "$NCFS/nullbm"
	for kv in queue_mode=2 irqmode=0 submit_queues=1 poll_queues=1 size=1024 memory_backed=1; do
		echo "${kv#*=}" >"$NCFS/nullbm/${kv%%=*}"
	done
	echo 1 >"$NCFS/nullbm/power"
	sleep 0.2

	echo "### (a) overhead: C null_blk vs blk_poll (irqmode=0, poll_queues=1), 4k randread QD1"
	echo
	echo "Median of $ROUNDS alternating ${RUNTIME} s runs (IOPS of every run in the last column)."
	echo
	echo "| device | hipri | IOPS | p50 (us) | p99 (us) | fio CPU (%) | VM busy (%) | blk_poll / null_blk | blk_poll / null_blk memory_backed | runs |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for hipri in 0 1; do
		for r in $(seq "$ROUNDS"); do
			measure n$hipri /dev/nullb0 $hipri
			measure m$hipri /dev/nullbm $hipri
			measure b$hipri /dev/bpa $hipri
		done
		set -- $(median n$hipri)
		n_iops=$1
		echo "| null_blk | $hipri | $1 | $2 | $3 | $4 | $5 | | | $(runs_of "$@") |"
		set -- $(median m$hipri)
		m_iops=$1
		echo "| null_blk memory_backed=1 | $hipri | $1 | $2 | $3 | $4 | $5 | | | $(runs_of "$@") |"
		set -- $(median b$hipri)
		echo "| blk_poll | $hipri | $1 | $2 | $3 | $4 | $5 | $(ratio "$1" "$n_iops") | $(ratio "$1" "$m_iops") | $(runs_of "$@") |"
	done
	echo
	echo "blk_poll poll queue: \`$(grep type=poll /sys/block/bpa/blk_poll/stats)\`"
	rmdev bpa
	echo 0 >"$NCFS/nullbm/power"
	rmdir "$NCFS/nullbm"
	rmmod null_blk
}

# table_b NSEC: timer completion vs classic vs hybrid polling at completion_nsec=NSEC.
table_b() {
	nsec=$1
	echo
	echo "### (b) completion_nsec=$nsec: interrupt-style vs classic vs hybrid polling (blk_poll)"
	echo
	echo "| completion | hipri | IOPS | p50 (us) | p99 (us) | fio CPU (%) | VM busy (%) | io-wq workers | IOPS vs classic | fio CPU vs classic | VM busy vs classic | runs |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	mkdev bpt size=1024 poll_queues=0 irqmode=2 completion_nsec=$nsec
	mkdev bpc size=1024 poll_queues=1 completion_nsec=$nsec poll_mode=classic
	mkdev bph size=1024 poll_queues=1 completion_nsec=$nsec poll_mode=hybrid
	for r in $(seq "$ROUNDS"); do
		measure t$nsec /dev/bpt 0
		measure c$nsec /dev/bpc 1
		measure h$nsec /dev/bph 1
	done
	stats_c=$(grep type=poll /sys/block/bpc/blk_poll/stats)
	stats_h=$(grep type=poll /sys/block/bph/blk_poll/stats)
	rmdev bpt
	rmdev bpc
	rmdev bph
	set -- $(median c$nsec)
	c_iops=$1 c_cpu=$4 c_busy=$5
	for row in "timer (irqmode=2)|0|t" "classic poll|1|c" "hybrid poll|1|h"; do
		name=${row%%|*}
		rest=${row#*|}
		hipri=${rest%%|*}
		set -- $(median "${rest#*|}$nsec")
		echo "| $name | $hipri | $1 | $2 | $3 | $4 | $5 | $6 | $(ratio "$1" "$c_iops") | $(ratio "$4" "$c_cpu") | $(ratio "$5" "$c_busy") | $(runs_of "$@") |"
	done
	echo
	echo "classic poll queue (all runs): \`$stats_c\`"
	echo
	echo "hybrid poll queue (all runs): \`$stats_h\`"
}

# (c) polled I/O through loop_dio: a file on ext4 on the NVMe namespace (the guest's nvme driver
# has poll queues), direct I/O; the NVMe device itself for scale.
table_c() {
	echo
	echo "### (c) IOPOLL through loop_dio on NVMe vs the same without polling, 4k randread QD1"
	echo
	nvme=${NVME_CONV:+/dev/$NVME_CONV}
	[ -b "${nvme:-/dev/rust44/nvme-conv}" ] || nvme=/dev/rust44/nvme-conv
	mkdir -p /mnt/nvme
	/usr/sbin/mkfs.ext4 -q -E nodiscard "$nvme" && mount -t ext4 "$nvme" /mnt/nvme
	$FIO --name=fill --filename=/mnt/nvme/bench.img --rw=write --bs=1M --size=256m --direct=1 \
		--ioengine=psync >/dev/null
	modprobe loop_dio
	loopdev=$(/usr/sbin/losetup -f --show --direct-io=on /mnt/nvme/bench.img)
	echo "loop_dio: \`$loopdev\` on ext4 on \`$nvme\`, dio=$(cat "/sys/block/${loopdev#/dev/}/loop/dio"), io_poll=$(cat "/sys/block/${loopdev#/dev/}/queue/io_poll"); NVMe io_poll=$(cat "/sys/block/$(basename "$(readlink -f "$nvme")")/queue/io_poll")"
	echo
	echo "| device | hipri | IOPS | p50 (us) | p99 (us) | fio CPU (%) | VM busy (%) | hipri 1 / hipri 0 | runs |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
	for r in $(seq "$ROUNDS"); do
		for hipri in 0 1; do
			measure l$hipri "$loopdev" $hipri
			measure v$hipri "$nvme" $hipri
		done
	done
	for dev in "NVMe (nvme driver)|v" "loop_dio on NVMe|l"; do
		name=${dev%%|*}
		tag=${dev#*|}
		set -- $(median ${tag}0)
		base=$1
		echo "| $name | 0 | $1 | $2 | $3 | $4 | $5 | | $(runs_of "$@") |"
		set -- $(median ${tag}1)
		echo "| $name | 1 | $1 | $2 | $3 | $4 | $5 | $(ratio "$1" "$base") | $(runs_of "$@") |"
	done
	/usr/sbin/losetup -d "$loopdev"
	umount /mnt/nvme
	rmmod loop_dio
}

# TABLES picks tables (a, b, c) when run by hand: tools/vm.sh cmd 'cd /rust44/tests/blk_poll && TABLES=c sh bench.sh'.
for table in ${TABLES:-a b c}; do
	case $table in
	a) table_a ;;
	b)
		table_b 20000
		table_b 200000
		# Where a sleep costs little next to the completion time, even under TCG.
		table_b 2000000
		;;
	c) table_c ;;
	esac
done
