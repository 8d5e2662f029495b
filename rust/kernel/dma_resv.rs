// SPDX-License-Identifier: GPL-2.0

//! Reservation objects: the fences of a buffer's pending users.
//!
//! A buffer shared between drivers, or between a driver and userspace (a GEM object, a
//! dma-buf), has a `struct dma_resv` that holds the fences of the work that reads or writes it;
//! whoever wants the buffer idle waits for them. A driver adds the fence of each job that uses
//! the buffer ([`Resv::add_fence`]).
//!
//! C header: [`include/linux/dma-resv.h`](srctree/include/linux/dma-resv.h)

use crate::{
    bindings,
    dma_fence::{timeout_jiffies, wait_result, Fence},
    error::to_result,
    prelude::*,
    time::Delta,
    types::Opaque,
};
use core::ptr;

/// How a fence uses the buffer (`enum dma_resv_usage`), in the order waiters include them: a
/// wait for [`Usage::Read`] also waits for [`Usage::Write`] and [`Usage::Kernel`] fences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// The kernel's own work on the buffer (e.g. moves): everyone waits for it.
    Kernel,
    /// Work that writes the buffer: readers wait for it.
    Write,
    /// Work that reads the buffer: writers wait for it.
    Read,
    /// Work that nobody implicitly waits for (bookkeeping).
    Bookkeep,
}

impl Usage {
    fn as_raw(self) -> bindings::dma_resv_usage {
        match self {
            Usage::Kernel => bindings::dma_resv_usage_DMA_RESV_USAGE_KERNEL,
            Usage::Write => bindings::dma_resv_usage_DMA_RESV_USAGE_WRITE,
            Usage::Read => bindings::dma_resv_usage_DMA_RESV_USAGE_READ,
            Usage::Bookkeep => bindings::dma_resv_usage_DMA_RESV_USAGE_BOOKKEEP,
        }
    }
}

/// A reservation object (`struct dma_resv`).
///
/// # Invariants
///
/// The reservation object is initialised (`dma_resv_init()`) and stays valid while a `&Resv`
/// exists.
#[repr(transparent)]
pub struct Resv(Opaque<bindings::dma_resv>);

// SAFETY: A `struct dma_resv` is shared between threads by design: changes are made under its
// lock, readers use RCU.
unsafe impl Send for Resv {}

// SAFETY: As above.
unsafe impl Sync for Resv {}

impl Resv {
    /// Creates a reference to a reservation object from a pointer to it, such as the `resv` of a
    /// GEM object.
    ///
    /// # Safety
    ///
    /// `ptr` points to an initialised `struct dma_resv` that stays valid for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::dma_resv) -> &'a Self {
        // SAFETY: The caller guarantees that `ptr` is valid for `'a`; `Resv` is
        // `repr(transparent)` over `struct dma_resv`.
        unsafe { &*ptr.cast() }
    }

    /// Returns a pointer to the C reservation object.
    pub fn as_raw(&self) -> *mut bindings::dma_resv {
        self.0.get()
    }

    /// Adds `fence` to the object, for `usage`. Takes the object's lock for this one object only,
    /// so the caller must not hold the lock of another reservation object. The wait for the lock
    /// is not interruptible: a job's fence is added once the job is submitted, which cannot be
    /// undone (holders keep the lock briefly). A later fence of the same context replaces an
    /// earlier one. `ENOMEM` when there is no room for the fence.
    pub fn add_fence(&self, fence: &Fence, usage: Usage) -> Result {
        let obj = self.as_raw();
        // SAFETY: The object is valid (type invariants). Without an acquire context the lock
        // cannot fail with `EDEADLK`: it returns 0.
        to_result(unsafe { bindings::dma_resv_lock(obj, ptr::null_mut()) })?;
        // SAFETY: The object is locked, as both calls require; `dma_resv_add_fence()` takes its
        // own reference to the fence, in the slot reserved just before.
        let ret = unsafe {
            let ret = bindings::dma_resv_reserve_fences(obj, 1);
            if ret == 0 {
                bindings::dma_resv_add_fence(obj, fence.as_raw(), usage.as_raw());
            }
            bindings::dma_resv_unlock(obj);
            ret
        };
        to_result(ret)
    }

    /// Whether every fence of `usage` (and the usages before it) has signalled.
    pub fn test_signaled(&self, usage: Usage) -> bool {
        // SAFETY: The object is valid (type invariants); this takes no lock.
        unsafe { bindings::dma_resv_test_signaled(self.as_raw(), usage.as_raw()) }
    }

    /// Waits at most `timeout` for every fence of `usage` (and the usages before it):
    /// `ETIMEDOUT` when they have not all signalled by then, `ERESTARTSYS` when an interruptible
    /// wait is interrupted.
    pub fn wait_timeout(&self, usage: Usage, interruptible: bool, timeout: Delta) -> Result {
        // SAFETY: The object is valid (type invariants); this takes no lock.
        let ret = unsafe {
            bindings::dma_resv_wait_timeout(
                self.as_raw(),
                usage.as_raw(),
                interruptible,
                // Never negative.
                timeout_jiffies(timeout).unsigned_abs(),
            )
        };
        wait_result(ret)
    }
}
