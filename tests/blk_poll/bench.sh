# blk_poll benchmark: fio io_uring 4k randread QD1, hipri off and on, in one boot. Prints Markdown.
# (a) C null_blk (irqmode=0 poll_queues=1) against blk_poll with the same settings;
# (b) blk_poll with completion_nsec=20000: timer completion vs classic vs hybrid polling.
FIO=/usr/bin/fio
CFS=/sys/kernel/config/blk_poll
RUNTIME=${RUNTIME:-5}

# fio_run DEV HIPRI: prints "iops p50_us p99_us cpu_pct".
fio_run() {
	$FIO --name=b --filename="$1" --direct=1 --ioengine=io_uring --hipri="$2" --rw=randread \
		--bs=4k --iodepth=1 --size=256m --time_based --runtime="$RUNTIME" --ramp_time=1 \
		--output-format=json --output=/tmp/bench.json >/dev/null 2>&1 || { echo "0 0 0 0"; return; }
	awk -F: '
		/"iops" :/ && !iops { gsub(/[ ,]/, "", $2); iops = $2 }
		/"50.000000" :/ && !p50 { gsub(/[ ,]/, "", $2); p50 = $2 }
		/"99.000000" :/ && !p99 { gsub(/[ ,]/, "", $2); p99 = $2 }
		/"usr_cpu" :/ { gsub(/[ ,]/, "", $2); usr = $2 }
		/"sys_cpu" :/ { gsub(/[ ,]/, "", $2); sys = $2 }
		END { printf "%d %.1f %.1f %.1f\n", iops, p50 / 1000, p99 / 1000, usr + sys }' /tmp/bench.json
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

modprobe null_blk nr_devices=1 queue_mode=2 irqmode=0 poll_queues=1 submit_queues=1 gb=1
modprobe blk_poll
mkdev bpa size=1024 submit_queues=1 poll_queues=1 irqmode=0 completion_nsec=0

echo "### (a) overhead: C null_blk vs blk_poll (irqmode=0, poll_queues=1), 4k randread QD1"
echo
echo "| device | hipri | IOPS | p50 (us) | p99 (us) | CPU (%) | blk_poll / null_blk |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for hipri in 0 1; do
	set -- $(fio_run /dev/nullb0 $hipri)
	n_iops=$1
	echo "| null_blk | $hipri | $1 | $2 | $3 | $4 | |"
	set -- $(fio_run /dev/bpa $hipri)
	echo "| blk_poll | $hipri | $1 | $2 | $3 | $4 | $(ratio "$1" "$n_iops") |"
done
rmdev bpa
rmmod null_blk

echo
echo "### (b) completion_nsec=20000: interrupt-style vs classic vs hybrid polling (blk_poll)"
echo
echo "| completion | hipri | IOPS | p50 (us) | p99 (us) | CPU (%) | IOPS vs classic | CPU vs classic |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
mkdev bpt size=1024 poll_queues=0 irqmode=2 completion_nsec=20000
set -- $(fio_run /dev/bpt 0)
t="$*"
rmdev bpt
mkdev bpc size=1024 poll_queues=1 completion_nsec=20000 poll_mode=classic
set -- $(fio_run /dev/bpc 1)
c_iops=$1 c_cpu=$4
c="$*"
stats_c=$(grep type=poll /sys/block/bpc/blk_poll/stats)
rmdev bpc
mkdev bph size=1024 poll_queues=1 completion_nsec=20000 poll_mode=hybrid
set -- $(fio_run /dev/bph 1)
h="$*"
stats_h=$(grep type=poll /sys/block/bph/blk_poll/stats)
rmdev bph
set -- $t
echo "| timer (irqmode=2) | 0 | $1 | $2 | $3 | $4 | $(ratio "$1" "$c_iops") | $(ratio "$4" "$c_cpu") |"
set -- $c
echo "| classic poll | 1 | $1 | $2 | $3 | $4 | 1.00x | 1.00x |"
set -- $h
echo "| hybrid poll | 1 | $1 | $2 | $3 | $4 | $(ratio "$1" "$c_iops") | $(ratio "$4" "$c_cpu") |"
echo
echo "classic poll queue: \`$stats_c\`"
echo
echo "hybrid poll queue: \`$stats_h\`"
