/* SPDX-License-Identifier: GPL-2.0 */
/*
 * loop_dio's trace events (tracefs events/loop_dio/, perf, BPF). The Rust side fires them
 * through kernel::tracepoint::declare_module_trace! in device.rs/io.rs: keep the prototypes
 * in step with the declarations there.
 */
#undef TRACE_SYSTEM
#undef TRACE_INCLUDE_FILE
#undef TRACE_INCLUDE_PATH
#define TRACE_SYSTEM loop_dio
#define TRACE_INCLUDE_FILE loop_dio_events
#define TRACE_INCLUDE_PATH .

#if !defined(_LOOP_DIO_EVENTS_H) || defined(TRACE_HEADER_MULTI_READ)
#define _LOOP_DIO_EVENTS_H

#include <linux/tracepoint.h>

/* The operation codes of enum req_op that loop_dio serves. */
#define loop_dio_show_op(op)					\
	__print_symbolic(op,					\
		{ 0, "read" }, { 1, "write" }, { 2, "flush" },	\
		{ 3, "discard" }, { 9, "write_zeroes" })

/*
 * A request reached the driver (queue_rq). @direct: served with direct I/O on the backing
 * file; @inline_dio: submitted from queue_rq itself, without the worker.
 */
TRACE_EVENT(loop_dio_submit,
	TP_PROTO(u32 dev, u8 op, u64 sector, u32 bytes, bool direct, bool inline_dio),
	TP_ARGS(dev, op, sector, bytes, direct, inline_dio),

	TP_STRUCT__entry(
		__field(u32, dev)
		__field(u8, op)
		__field(u64, sector)
		__field(u32, bytes)
		__field(bool, direct)
		__field(bool, inline_dio)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->op = op;
		__entry->sector = sector;
		__entry->bytes = bytes;
		__entry->direct = direct;
		__entry->inline_dio = inline_dio;
	),
	TP_printk("dev=%u:%u op=%s sector=%llu bytes=%u direct=%d inline=%d",
		  MAJOR(__entry->dev), MINOR(__entry->dev), loop_dio_show_op(__entry->op),
		  __entry->sector, __entry->bytes, __entry->direct, __entry->inline_dio)
);

/*
 * A request ends. @error: 0 or a negative errno; @latency_ns: since the block layer started
 * the request (0 when the queue keeps no I/O statistics).
 */
TRACE_EVENT(loop_dio_complete,
	TP_PROTO(u32 dev, u8 op, u64 sector, u32 bytes, s32 error, u64 latency_ns),
	TP_ARGS(dev, op, sector, bytes, error, latency_ns),

	TP_STRUCT__entry(
		__field(u32, dev)
		__field(u8, op)
		__field(u64, sector)
		__field(u32, bytes)
		__field(s32, error)
		__field(u64, latency_ns)
	),
	TP_fast_assign(
		__entry->dev = dev;
		__entry->op = op;
		__entry->sector = sector;
		__entry->bytes = bytes;
		__entry->error = error;
		__entry->latency_ns = latency_ns;
	),
	TP_printk("dev=%u:%u op=%s sector=%llu bytes=%u error=%d latency_ns=%llu",
		  MAJOR(__entry->dev), MINOR(__entry->dev), loop_dio_show_op(__entry->op),
		  __entry->sector, __entry->bytes, __entry->error, __entry->latency_ns)
);

#endif /* _LOOP_DIO_EVENTS_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
