// SPDX-License-Identifier: GPL-2.0

//! The trace events of `blk_poll_events.h` (tracefs `events/blk_poll/`, perf, BPF).

kernel::tracepoint::declare_module_trace! {
    // SAFETY: As the `TP_PROTO`s of `blk_poll_poll` and `blk_poll_hybrid_sleep` in
    // `blk_poll_events.h`.
    unsafe extern {
        /// One poll of hardware queue `hctx` completed `found` requests.
        pub(crate) fn blk_poll_poll(hctx: u32, found: u32);
        /// A hybrid poller slept `slept_ns` of the `planned_ns` it asked for.
        pub(crate) fn blk_poll_hybrid_sleep(dev: u32, hctx: u32, planned_ns: u64, slept_ns: u64);
    }
}
