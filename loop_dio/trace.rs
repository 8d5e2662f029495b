// SPDX-License-Identifier: GPL-2.0

//! The trace events of `loop_dio_events.h` (tracefs `events/loop_dio/`, perf, BPF).

kernel::tracepoint::declare_module_trace! {
    // SAFETY: As the `TP_PROTO`s of `loop_dio_submit` and `loop_dio_complete` in
    // `loop_dio_events.h`.
    unsafe extern {
        /// A request goes to the backing file: from `queue_rq` (`inline_dio`) or the worker.
        pub(crate) fn loop_dio_submit(
            dev: u32,
            op: u8,
            sector: u64,
            bytes: u32,
            direct: bool,
            inline_dio: bool,
        );
        /// A request ends; `latency_ns` since the block layer started it.
        pub(crate) fn loop_dio_complete(
            dev: u32,
            op: u8,
            sector: u64,
            bytes: u32,
            error: i32,
            latency_ns: u64,
        );
    }
}
