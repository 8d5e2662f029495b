// SPDX-License-Identifier: GPL-2.0
/*
 * blk_poll's trace events: the tracepoints, and the rust_do_trace_*() entry points its Rust
 * code calls (Rust compilation units cannot define trace events, nor get BTF).
 */
#define CREATE_TRACE_POINTS
#define CREATE_RUST_TRACE_POINTS
#include "blk_poll_events.h"
