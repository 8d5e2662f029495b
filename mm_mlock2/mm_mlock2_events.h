/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mm_mlock2's trace events (tracefs events/lockedmem/, perf, BPF). The Rust side fires them
 * through kernel::tracepoint::declare_module_trace! in trace.rs: keep the prototypes in step.
 * Faults on a region are shmem's (its vm_ops serve them): the mm's own events cover them.
 */
#undef TRACE_SYSTEM
#undef TRACE_INCLUDE_FILE
#undef TRACE_INCLUDE_PATH
#define TRACE_SYSTEM lockedmem
#define TRACE_INCLUDE_FILE mm_mlock2_events
#define TRACE_INCLUDE_PATH .

#if !defined(_MM_MLOCK2_EVENTS_H) || defined(TRACE_HEADER_MULTI_READ)
#define _MM_MLOCK2_EVENTS_H

#include <linux/tracepoint.h>

/* A region got its size (LOCKEDMEM_SET_SIZE); @error: 0 or the negative errno it failed with. */
TRACE_EVENT(lockedmem_create,
	TP_PROTO(u64 size, s32 error),
	TP_ARGS(size, error),

	TP_STRUCT__entry(
		__field(u64, size)
		__field(s32, error)
	),
	TP_fast_assign(
		__entry->size = size;
		__entry->error = error;
	),
	TP_printk("size=%llu error=%d", __entry->size, __entry->error)
);

/* @pages of a region of @size bytes were mapped lock-on-fault. */
TRACE_EVENT(lockedmem_map,
	TP_PROTO(u64 size, u64 pages, s32 error),
	TP_ARGS(size, pages, error),

	TP_STRUCT__entry(
		__field(u64, size)
		__field(u64, pages)
		__field(s32, error)
	),
	TP_fast_assign(
		__entry->size = size;
		__entry->pages = pages;
		__entry->error = error;
	),
	TP_printk("size=%llu pages=%llu error=%d", __entry->size, __entry->pages, __entry->error)
);

/* A region is gone: @pages resident pages were zeroed before they were freed. */
TRACE_EVENT(lockedmem_wipe,
	TP_PROTO(u64 size, u64 pages, s32 error),
	TP_ARGS(size, pages, error),

	TP_STRUCT__entry(
		__field(u64, size)
		__field(u64, pages)
		__field(s32, error)
	),
	TP_fast_assign(
		__entry->size = size;
		__entry->pages = pages;
		__entry->error = error;
	),
	TP_printk("size=%llu pages=%llu error=%d", __entry->size, __entry->pages, __entry->error)
);

#endif /* _MM_MLOCK2_EVENTS_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
