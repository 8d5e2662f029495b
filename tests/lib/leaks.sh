# kmemleak for the fault-injection tests of blk_poll and hardening (at /rust44/leaks.sh in the
# guest; the debug kernel has kmemleak). POSIX sh (busybox ash).
KMEMLEAK=/sys/kernel/debug/kmemleak

# leak_scan OUT: kmemleak scans now; OUT lists the unreferenced objects it knows of (after a
# first line that is never one: busybox grep -f matches nothing with an empty file). Two scans:
# kmemleak does not report an object whose contents changed since the previous scan (its
# checksum), so an object leaked since the last scan is reported by the second one only.
leak_scan() {
	echo scan >"$KMEMLEAK" && echo scan >"$KMEMLEAK" || return 1
	{
		echo "kmemleak list"
		grep -o '^unreferenced object 0x[0-9a-f]*' "$KMEMLEAK" | sort
	} >"$1"
}

# The known C blk-mq leak (not ours): with poll queues a software queue (ctx) maps to the default
# and to a poll hardware queue, and blk_mq_register_hctx() adds its "cpuN" kobject under each.
# When fail-nth fails that add ("kobject_add_internal failed for cpuN ... parent: 1" in the log),
# the error path leaves hardware queue 0 with a reference nobody drops (most likely: the failed
# kobject_add_internal() clears ctx->kobj.parent while the ctx is still in sysfs under hctx 0,
# so the later kobject_del() of the ctx puts no parent). C null_blk with poll queues leaks the
# same; loop_dio's devices have a poll queue, so LOOP_CTL_ADD's sweep meets it too. Leaked: hctx 0
# (allocated in blk_mq_alloc_and_init_hctx: the 1024-byte struct blk_mq_hw_ctx, its ctxs array,
# its ctx_map sbitmap) and its kobject name "0" (kvasprintf from kobject_add in
# blk_mq_register_hctx). Each object is known by the first frames of its backtrace (function
# names, from the allocator down to blk-mq's caller): all C blk-mq code, the driver only further
# down. A leak of the driver's own (a queue, the device, the tag set, the disk or its private
# data) has a module or Rust frame among these first ones. tools/tapsum accepts kmemleak's report
# of an object in the kernel log only when its backtrace starts with a prefix that the suite
# declared (rust44: known-leak: FRAMES REASON, written by leak_report); any other leak still
# fails dmesg-clean.
HCTX_LEAK_ALLOC="blk_mq_alloc_and_init_hctx,__blk_mq_realloc_hw_ctxs,blk_mq_init_allocated_queue,__blk_mq_alloc_disk"
HCTX_LEAK="__kmalloc_cache_node_noprof,$HCTX_LEAK_ALLOC
__kmalloc_node_noprof,$HCTX_LEAK_ALLOC
__kvmalloc_node_noprof,sbitmap_init_node,$HCTX_LEAK_ALLOC
__kmalloc_node_track_caller_noprof,kvasprintf,kobject_set_name_vargs,kobject_add,blk_mq_register_hctx,blk_mq_sysfs_register,blk_register_queue,__add_disk,add_disk_fwnode"
HCTX_LEAK_REASON="C blk-mq leaks hctx 0 when a cpuN kobject_add under a poll hctx fails (blk_mq_register_hctx; C null_blk too)"

# leak_report NEW: prints kmemleak's report of each object listed in NEW (leak_scan lines) and
# classifies it by its backtrace; declares to the kernel log (for tapsum) each known backtrace it
# found. Returns 1 when an object is not of the known C blk-mq leak above.
leak_report() {
	# shellcheck disable=SC2086
	_leak_out=$(awk -v new="$1" -v known_list="$(echo $HCTX_LEAK)" -v reason="$HCTX_LEAK_REASON" '
		BEGIN {
			while ((getline l < new) > 0) { split(l, w, " "); if (w[3] != "") want[w[3]] = 1 }
			nknown = split(known_list, sigs, " ")
		}
		# The backtrace starts with the signature and goes on in a driver: a module frame, a
		# Rust one, or the bare address of a module unloaded since.
		function is(sig,  after) {
			if (index(frames ",", sig ",") != 1) return 0
			after = substr(frames, length(sig) + 2)
			sub(/,.*/, "", after)
			return after ~ /\]$/ || after ~ /^_R/ || after ~ /^0xffffffff/
		}
		function flush(  i) {
			if (block == "") return
			for (i = 1; i <= nknown; i++)
				if (is(sigs[i])) { found[i]++; known++; block = ""; return }
			ours++
			printf "%s", block
			block = ""
		}
		/^unreferenced object / { flush(); keep = ($3 in want); frames = ""; bt = 0 }
		!keep { next }
		{ block = block $0 "\n" }
		/^  backtrace/ { bt = 1; next }
		bt && /^    / {
			f = $1
			sub(/\+0x.*/, "", f)
			# A frame in a module keeps its module, so that it matches no signature.
			if (NF > 1) f = f $2
			frames = frames (frames == "" ? "" : ",") f
		}
		END {
			flush()
			printf "kmemleak: %d new objects of the known C blk-mq hctx leak, %d others\n", known, ours
			for (i = 1; i <= nknown; i++)
				if (found[i]) print "known-leak: " sigs[i] " " reason
			if (ours > 0) exit 1
		}' "$KMEMLEAK")
	_leak_rc=$?
	printf '%s\n' "$_leak_out" | grep -v '^known-leak: '
	# One write per line: /dev/kmsg takes one record per write(2), of 1024 bytes at most.
	printf '%s\n' "$_leak_out" | grep '^known-leak: ' | while read -r line; do
		echo "rust44: $line" >/dev/kmsg
	done
	return $_leak_rc
}
