# virtio_gpu3d benchmark (make bench): the C virtio_gpu and rust44's virtio_gpu3d on the same
# virtio-gpu in one boot, each bound in turn (unbind, rmmod, load), which one goes first
# alternating, ROUNDS (5) times: the EXECBUFFER+WAIT round trip of a small virgl stream (median
# of 300; a stream that renders nothing, and one with a clear, see src/vgpu_bench.c), the
# EXECBUFFER ioctl alone, TRANSFER_TO_HOST bandwidth of a 4 MiB texture (median of 20) and the
# frames per second of a fixed Mesa scene (gltest fps: 256x256, 64 textured triangles, each frame
# read back; 5 s).
# Under QEMU the guest CPU a process runs on changes the timings (the share of round trips that
# wait for QEMU's 10 ms fence poll differs between the CPUs, a different CPU in each boot, for
# both drivers): vgpu_bench alternates the CPU between its timed iterations, and each round runs
# on the next CPU, so where the scheduler happens to put a process decides nothing.
# Prints a Markdown table on stdout: per driver the median of the rounds, and every round.
. /rust44/ktap.sh
cd /rust44/tests/virtio_gpu3d || exit 1
. ./lib.sh
ROUNDS=${ROUNDS:-5}
UNBIND_WHILE_RENDERING=0
OUT=/tmp/gpu-bench.runs
: >"$OUT"
MESA=0
mesa_mount && MESA=1
DRIVERS=virtio_gpu
if virtio_gpu3d_built; then
	DRIVERS="virtio_gpu virtio_gpu3d"
fi

NCPU=$(grep -c '^processor' /proc/cpuinfo)

# measure DRIVER: binds it, runs the three measurements on guest CPU $CPU (vgpu_bench then
# alternates), unbinds it; lines "DRIVER METRIC VALUE".
measure() {
	[ "$NCPU" -gt 1 ] && taskset -p $((1 << CPU)) $$ >/dev/null
	bind_driver "$1" "$1" >/tmp/bind.log 2>&1 || { cat /tmp/bind.log >&2; return 1; }
	VGPU_NODE=$NODE ./vgpu_bench roundtrip 300 | sed "s/^/$1 /" >>"$OUT"
	VGPU_NODE=$NODE ./vgpu_bench transfer 20 | sed "s/^/$1 /" >>"$OUT"
	if [ "$MESA" = 1 ]; then
		gl fps 5 | awk -v d="$1" '/^fps:/ { print d, "fps", $2 }' >>"$OUT"
	fi
	unbind_driver "$1" "$1" >/tmp/unbind.log 2>&1 || { cat /tmp/unbind.log >&2; return 1; }
}

failed=0
for r in $(seq 1 "$ROUNDS"); do
	CPU=$(((r - 1) % NCPU))
	order=$DRIVERS
	[ $((r % 2)) = 0 ] && order=$(echo "$DRIVERS" | awk '{ for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "") }')
	for d in $order; do
		measure "$d" || failed=1
	done
done

# row METRIC LABEL BETTER: the medians of the rounds, rust44 against C (BETTER: higher or lower).
row() {
	awk -v m="$1" -v label="$2" -v better="$3" '
		function med(d,   n, i, j, t, v) {
			n = split(runs[d], v, " ")
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
			return n ? v[int((n + 1) / 2)] : ""
		}
		$2 == m { runs[$1] = runs[$1] (runs[$1] == "" ? "" : " ") $3 }
		END {
			c = med("virtio_gpu"); r = med("virtio_gpu3d")
			ratio = "n/a"
			if (c != "" && r != "" && c > 0 && r > 0) ratio = sprintf("%.2fx", better == "higher" ? r / c : c / r)
			printf "| %s | %s | %s | %s |\n", label, c == "" ? "failed" : c " (" runs["virtio_gpu"] ")",
				r == "" ? "not built" : r " (" runs["virtio_gpu3d"] ")", ratio
		}' "$OUT"
}

echo "One boot, $ROUNDS rounds, the drivers alternating; median (every round). rust44/C: rust44's"
echo "speed against C's (>1 is faster; goal >= 0.95x)."
echo
echo "| measurement | C virtio_gpu | rust44 virtio_gpu3d | rust44/C |"
echo "| --- | --- | --- | --- |"
row nop_roundtrip_us "EXECBUFFER+WAIT round trip, a stream rendering nothing (us)" lower
row nop_roundtrip_slow_pct "those over 2 ms (%)" lower
row roundtrip_us "EXECBUFFER+WAIT round trip, a stream with a clear (us)" lower
row roundtrip_p10_us "round trip, 10th percentile (us)" lower
row roundtrip_slow_pct "round trips over 2 ms (%)" lower
row submit_us "EXECBUFFER ioctl alone (us)" lower
row transfer_mibps "TRANSFER_TO_HOST 4 MiB (MiB/s)" higher
if [ "$MESA" = 1 ]; then
	row fps "Mesa scene (frames/s)" higher
else
	echo "| Mesa scene (frames/s) | no Mesa image | | |"
fi
exit $failed
