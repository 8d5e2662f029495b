// SPDX-License-Identifier: GPL-2.0

//! POSIX capabilities of the current task.
//!
//! C header: [`include/linux/capability.h`](srctree/include/linux/capability.h).

use crate::bindings;

/// A POSIX capability, as checked by `capable()`.
///
/// Only the capabilities that drivers check are listed; add more as drivers need them.
///
/// # Invariants
///
/// The discriminant is a valid `CAP_*` number (at most `CAP_LAST_CAP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Capability {
    /// `CAP_NET_ADMIN`: network administration.
    NetAdmin = bindings::CAP_NET_ADMIN,
    /// `CAP_IPC_LOCK`: lock memory beyond `RLIMIT_MEMLOCK`.
    IpcLock = bindings::CAP_IPC_LOCK,
    /// `CAP_SYS_ADMIN`: the catch-all administration capability.
    SysAdmin = bindings::CAP_SYS_ADMIN,
    /// `CAP_SYS_RAWIO`: raw I/O on devices.
    SysRawIo = bindings::CAP_SYS_RAWIO,
    /// `CAP_BPF`: privileged BPF operations.
    Bpf = bindings::CAP_BPF,
    /// `CAP_PERFMON`: privileged perf operations.
    Perfmon = bindings::CAP_PERFMON,
}

impl Capability {
    /// The `CAP_*` number, as the C API takes it.
    pub const fn as_raw(self) -> u32 {
        self as u32
    }
}

/// Returns whether the current task has `cap` in the initial user namespace.
///
/// Like C's `capable()`, a successful check marks the task as having used a privilege
/// (`PF_SUPERPRIV`) and may be audited, so call it only when the privilege is really needed.
pub fn capable(cap: Capability) -> bool {
    #[cfg(CONFIG_MULTIUSER)]
    {
        // The type invariant makes the number valid; `capable` has no other requirement and may
        // be called from any process context.
        // SAFETY: `cap.as_raw()` is a valid capability number by the invariant of `Capability`.
        unsafe { bindings::capable(cap.as_raw() as i32) }
    }
    // Without user support every task is root, as the C stub says.
    #[cfg(not(CONFIG_MULTIUSER))]
    {
        let _ = cap;
        true
    }
}

/// Returns `Ok(())` when the current task has `cap`, and `EPERM` otherwise.
///
/// This is the common shape of a privileged ioctl: `if (!capable(CAP_SYS_ADMIN)) return -EPERM;`.
pub fn require(cap: Capability) -> crate::error::Result {
    if capable(cap) {
        Ok(())
    } else {
        Err(crate::error::code::EPERM)
    }
}

#[macros::kunit_tests(rust44_capability)]
mod tests {
    use super::*;

    #[test]
    fn raw_numbers_match_uapi() {
        assert_eq!(Capability::SysAdmin.as_raw(), 21);
        assert_eq!(Capability::IpcLock.as_raw(), 14);
        assert_eq!(Capability::NetAdmin.as_raw(), 12);
    }

    #[test]
    fn kunit_runs_with_every_capability() {
        // KUnit runs its suites from a kernel thread, whose credentials are the initial ones.
        assert!(capable(Capability::SysAdmin));
        assert!(require(Capability::IpcLock).is_ok());
    }
}
