// SPDX-License-Identifier: GPL-2.0
/*
 * rust44's trace events seen from BPF, each the way a BPF user would attach to it:
 *   tp_btf/loop_dio_submit, tp_btf/loop_dio_complete  BTF-typed arguments (the module's BTF
 *                                                     holds btf_trace_<event>), latency histogram
 *   raw_tp/loop_dio_complete                          the same event, untyped u64 arguments
 *   tracepoint/loop_dio/loop_dio_complete             the perf-event path: the trace entry as
 *                                                     tracefs' format file lays it out
 *   raw_tp/blk_poll_poll, tp_btf/lockedmem_create     the other modules' events
 * Counters go to one array map ('counts', indexed by enum slot), the latency histogram (log2 of
 * latency_ns, from the tp_btf program) to 'lat_hist'. The tool pins both and reads them.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

enum slot {
	SUBMITS,		/* tp_btf loop_dio_submit */
	SUBMIT_BYTES,
	COMPLETES,		/* tp_btf loop_dio_complete */
	COMPLETE_BYTES,
	COMPLETE_ERRORS,
	LATENCY_NS,		/* sum, tp_btf */
	RAW_COMPLETES,		/* raw_tp loop_dio_complete */
	RAW_LATENCY_NS,
	TP_COMPLETES,		/* tracepoint loop_dio/loop_dio_complete */
	TP_LATENCY_NS,
	POLLS,			/* raw_tp blk_poll_poll */
	POLL_FOUND,
	LOCKEDMEM_CREATES,	/* tp_btf lockedmem_create */
	LOCKEDMEM_REFUSED,	/* ... with an error */
	NR_SLOTS,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

#define HIST_SLOTS 64
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HIST_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} lat_hist SEC(".maps");

static __always_inline void add(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &slot);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	/* Bounded for the verifier: 64 steps at most. */
	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

SEC("tp_btf/loop_dio_submit")
int BPF_PROG(dio_submit, __u32 dev, __u8 op, __u64 sector, __u32 bytes, _Bool direct,
	     _Bool inline_dio)
{
	add(SUBMITS, 1);
	add(SUBMIT_BYTES, bytes);
	return 0;
}

SEC("tp_btf/loop_dio_complete")
int BPF_PROG(dio_complete, __u32 dev, __u8 op, __u64 sector, __u32 bytes, __s32 error,
	     __u64 latency_ns)
{
	__u32 bucket = log2_u64(latency_ns);
	__u64 *v;

	add(COMPLETES, 1);
	add(COMPLETE_BYTES, bytes);
	if (error)
		add(COMPLETE_ERRORS, 1);
	add(LATENCY_NS, latency_ns);
	v = bpf_map_lookup_elem(&lat_hist, &bucket);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

/* raw_tp: the arguments as u64s, in TP_PROTO's order. */
SEC("raw_tp/loop_dio_complete")
int dio_complete_raw(struct bpf_raw_tracepoint_args *ctx)
{
	add(RAW_COMPLETES, 1);
	add(RAW_LATENCY_NS, ctx->args[5]);
	return 0;
}

/* events/loop_dio/loop_dio_complete/format: the common fields, then TP_STRUCT__entry's. */
struct loop_dio_complete_entry {
	__u64 common;
	__u32 dev;
	__u8 op;
	__u64 sector;
	__u32 bytes;
	__s32 error;
	__u64 latency_ns;
};

SEC("tracepoint/loop_dio/loop_dio_complete")
int dio_complete_tp(struct loop_dio_complete_entry *e)
{
	add(TP_COMPLETES, 1);
	add(TP_LATENCY_NS, e->latency_ns);
	/* Non-zero: perf still gets the event (0 would hide it from perf_event_open's users). */
	return 1;
}

SEC("raw_tp/blk_poll_poll")
int poll_raw(struct bpf_raw_tracepoint_args *ctx)
{
	add(POLLS, 1);
	add(POLL_FOUND, (__u32)ctx->args[1]);
	return 0;
}

SEC("tp_btf/lockedmem_create")
int BPF_PROG(lockedmem_create, __u64 size, __s32 error)
{
	add(error ? LOCKEDMEM_REFUSED : LOCKEDMEM_CREATES, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
