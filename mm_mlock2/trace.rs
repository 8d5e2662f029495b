// SPDX-License-Identifier: GPL-2.0

//! The trace events of `mm_mlock2_events.h` (tracefs `events/lockedmem/`, perf, BPF).

kernel::tracepoint::declare_module_trace! {
    // SAFETY: As the `TP_PROTO`s of `lockedmem_create`, `lockedmem_map` and `lockedmem_wipe` in
    // `mm_mlock2_events.h`.
    unsafe extern {
        /// A region got its size, or failed to (`error`).
        pub(crate) fn lockedmem_create(size: u64, error: i32);
        /// `pages` of a region were mapped, or failed to be (`error`).
        pub(crate) fn lockedmem_map(size: u64, pages: u64, error: i32);
        /// A region is gone, its `pages` zeroed.
        pub(crate) fn lockedmem_wipe(size: u64, pages: u64, error: i32);
    }
}
