// SPDX-License-Identifier: GPL-2.0

//! Memory locking: the permission and `RLIMIT_MEMLOCK` checks of `mlock2()`, and lock-on-fault
//! VMAs.
//!
//! A driver that hands out memory which is locked as it is faulted in (what
//! `mlock2(MLOCK_ONFAULT)` does to an existing range) sets [`VM_LOCKED`] and [`VM_LOCKONFAULT`]
//! in its `mmap` hook with [`set_lock_on_fault`]. `mmap()` checks `RLIMIT_MEMLOCK` only for
//! `MAP_LOCKED`, so such a driver makes the check of `mlock2()` itself with [`may_lock`].
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h); the rules are those of
//! [`mm/mlock.c`](srctree/mm/mlock.c).
//!
//! [`VM_LOCKED`]: LOCKED
//! [`VM_LOCKONFAULT`]: super::virt::flags::LOCKONFAULT

use crate::{
    bindings,
    capability::{capable, Capability},
    error::{code::*, Result},
    mm::{
        virt::{flags, vm_flags_t, VmaNew},
        MmWithUser,
    },
    page::PAGE_SHIFT,
};

/// `VM_LOCKED`: the pages of the VMA are locked in memory (`mlock()`).
///
/// Together with [`flags::LOCKONFAULT`] they are locked as they are faulted in, rather than
/// populated at once.
pub const LOCKED: vm_flags_t = bindings::VM_LOCKED as vm_flags_t;

/// Returns whether the current task may lock memory at all, as C's `can_do_mlock()`.
///
/// That is the case when it has `CAP_IPC_LOCK` or a non-zero `RLIMIT_MEMLOCK`.
pub fn can_do_mlock() -> bool {
    // SAFETY: `can_do_mlock()` only reads the credentials and limits of the current task, which
    // is always valid in process context.
    unsafe { bindings::can_do_mlock() }
}

/// The current task's `RLIMIT_MEMLOCK` soft limit, in pages (`usize::MAX >> PAGE_SHIFT` for
/// `RLIM_INFINITY`).
pub fn memlock_limit_pages() -> usize {
    // SAFETY: `rlimit()` reads `current->signal`, which is valid for as long as the task runs.
    let bytes: usize = unsafe { bindings::rlimit(bindings::RLIMIT_MEMLOCK) };
    bytes >> PAGE_SHIFT
}

/// The limit rule of `mlock2()` (`do_mlock()` in `mm/mlock.c`), without side effects.
///
/// Locking `pages` more pages in an address space that has `locked` pages locked is allowed when
/// the total stays within `limit` pages, or else when `privileged()` says the caller has
/// `CAP_IPC_LOCK`; otherwise it fails with `ENOMEM`. `privileged` is only called when the limit is
/// exceeded, because `capable()` marks the task as having used a privilege.
pub fn check_lock_limit(
    locked: usize,
    pages: usize,
    limit: usize,
    privileged: impl FnOnce() -> bool,
) -> Result {
    match locked.checked_add(pages) {
        Some(total) if total <= limit => Ok(()),
        _ if privileged() => Ok(()),
        _ => Err(ENOMEM),
    }
}

/// Returns the number of pages locked in `mm` (its `locked_vm`).
///
/// The count only changes under the mmap write lock; without that lock the value can be stale.
pub fn locked_pages(mm: &MmWithUser) -> usize {
    // SAFETY: `mm` is a valid `mm_struct` for the lifetime of the reference. `locked_vm` is a
    // plain `unsigned long` written under the mmap write lock; a volatile read is C's
    // `READ_ONCE()` and cannot tear.
    unsafe { core::ptr::addr_of!((*mm.as_raw()).__bindgen_anon_1.locked_vm).read_volatile() }
}

/// Checks that the current task may lock `pages` more pages in `mm`, as `mlock2()` checks it.
///
/// Fails with `EPERM` when the task cannot lock memory at all ([`can_do_mlock`] is false), and with
/// `ENOMEM` when the pages would take `mm` over `RLIMIT_MEMLOCK` and the task lacks
/// `CAP_IPC_LOCK`: the same errors, for the same reasons, as `mlock2()`.
///
/// `mm` should be the current task's address space, with the mmap lock held for writing (as in an
/// `mmap` hook), so that `locked_vm` cannot change between the check and the mapping.
pub fn may_lock(mm: &MmWithUser, pages: usize) -> Result {
    if !can_do_mlock() {
        return Err(EPERM);
    }
    check_lock_limit(locked_pages(mm), pages, memlock_limit_pages(), || {
        capable(Capability::IpcLock)
    })
}

/// Makes `vma` lock-on-fault: sets [`LOCKED`] and [`flags::LOCKONFAULT`] on it.
///
/// Pages are then locked (put on the unevictable list, counted in `VmLck` and shown as `Locked`
/// in `/proc/PID/smaps`) as they are first faulted in, exactly as after `mlock2(MLOCK_ONFAULT)`,
/// and `munlock()` undoes it. When the mapping is complete the core mm adds the size of the VMA to
/// the address space's `locked_vm`, or drops both flags again for a VMA that cannot be locked
/// (`VM_IO`, `VM_PFNMAP`, `VM_MIXEDMAP`, `VM_DONTEXPAND`, hugetlb, DAX). It does not check
/// `RLIMIT_MEMLOCK`: call [`may_lock`] first.
pub fn set_lock_on_fault(vma: &VmaNew) {
    let new = vma.flags() | LOCKED | flags::LOCKONFAULT;
    // SAFETY: By the invariants of `VmaNew` the VMA is being set up by an `mmap` hook and is not
    // yet visible to anyone else, so this write is not a data race (`VmaNew` is `!Sync`).
    // `VM_LOCKED | VM_LOCKONFAULT` is a valid combination on any VMA: `__mmap_complete()` either
    // accounts it or clears it.
    unsafe { (*vma.as_ptr()).__bindgen_anon_2.vm_flags = new };
}

#[macros::kunit_tests(rust44_mm_mlock)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_the_c_ones() {
        assert_eq!(LOCKED, 1 << bindings::VMA_LOCKED_BIT);
        assert_eq!(flags::LOCKONFAULT, 1 << bindings::VMA_LOCKONFAULT_BIT);
    }

    #[test]
    fn within_the_limit_is_allowed() {
        assert!(check_lock_limit(0, 16, 16, || false).is_ok());
        assert!(check_lock_limit(10, 6, 16, || false).is_ok());
        assert!(check_lock_limit(0, 0, 0, || false).is_ok());
    }

    #[test]
    fn over_the_limit_is_enomem_unless_privileged() {
        assert_eq!(check_lock_limit(10, 7, 16, || false), Err(ENOMEM));
        assert!(check_lock_limit(10, 7, 16, || true).is_ok());
        assert_eq!(
            check_lock_limit(usize::MAX, 1, usize::MAX, || false),
            Err(ENOMEM)
        );
    }

    #[test]
    fn privilege_is_asked_only_over_the_limit() {
        let asked = core::cell::Cell::new(false);
        assert!(check_lock_limit(1, 1, 2, || {
            asked.set(true);
            false
        })
        .is_ok());
        assert!(!asked.get());
    }

    #[test]
    fn kunit_thread_may_lock() {
        // KUnit runs from a kernel thread with the initial credentials (CAP_IPC_LOCK).
        assert!(can_do_mlock());
    }
}
