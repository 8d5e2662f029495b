// SPDX-License-Identifier: GPL-2.0

//! The canary's aborting host test (tools/check.sh): with `RUST44_INJECT_FAILURE=1` this test
//! binary dies by `SIGABRT` before libtest can print a result or a summary, as a test that hits an
//! `abort()`, a stack overflow or a double panic does. `tapsum` must count that binary as failed,
//! and the crates tested after it must still report. Without the variable it passes.

#[test]
fn aborts_when_injected() {
    if std::env::var_os("RUST44_INJECT_FAILURE").is_some_and(|v| v == "1") {
        std::process::abort();
    }
}
