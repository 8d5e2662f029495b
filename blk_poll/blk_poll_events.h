/* SPDX-License-Identifier: GPL-2.0 */
/*
 * blk_poll's trace events (tracefs events/blk_poll/, perf, BPF). The Rust side fires them
 * through kernel::tracepoint::declare_module_trace! in trace.rs: keep the prototypes in step.
 */
#undef TRACE_SYSTEM
#undef TRACE_INCLUDE_FILE
#undef TRACE_INCLUDE_PATH
#define TRACE_SYSTEM blk_poll
#define TRACE_INCLUDE_FILE blk_poll_events
#define TRACE_INCLUDE_PATH .

#if !defined(_BLK_POLL_EVENTS_H) || defined(TRACE_HEADER_MULTI_READ)
#define _BLK_POLL_EVENTS_H

#include <linux/tracepoint.h>

/* One ->poll of hardware queue @hctx: @found requests completed (0: the poller spins on). */
TRACE_EVENT(blk_poll_poll,
	TP_PROTO(u32 hctx, u32 found),
	TP_ARGS(hctx, found),

	TP_STRUCT__entry(
		__field(u32, hctx)
		__field(u32, found)
	),
	TP_fast_assign(
		__entry->hctx = hctx;
		__entry->found = found;
	),
	TP_printk("hctx=%u found=%u", __entry->hctx, __entry->found)
);

/* A hybrid poller's sleep before it polls: asked for @planned_ns, slept @slept_ns. */
TRACE_EVENT(blk_poll_hybrid_sleep,
	TP_PROTO(u32 dev, u32 hctx, u64 planned_ns, u64 slept_ns),
	TP_ARGS(dev, hctx, planned_ns, slept_ns),

	TP_STRUCT__entry(
		__field(u32, dev)
		__field(u32, hctx)
		__field(u64, planned_ns)
		__field(u64, slept_ns)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->hctx = hctx;
		__entry->planned_ns = planned_ns;
		__entry->slept_ns = slept_ns;
	),
	TP_printk("dev=%u:%u hctx=%u planned_ns=%llu slept_ns=%llu",
		  MAJOR(__entry->dev), MINOR(__entry->dev), __entry->hctx,
		  __entry->planned_ns, __entry->slept_ns)
);

#endif /* _BLK_POLL_EVENTS_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
