// SPDX-License-Identifier: GPL-2.0

//! DMA fences: the signal that asynchronous work, usually a device's, is done.
//!
//! A driver creates its fences on a [`Timeline`] of its own (a fence context) and signals each
//! exactly once, with or without an error, when the work behind it has finished: a
//! [`DriverFence`] is that duty, and dropping one unsignalled signals it with `ECANCELED`, so
//! that nobody waits for it forever. Anyone holding a [`Fence`] reference, of this driver or
//! another, may wait for it (with a timeout), ask how it ended, hand it to userspace as a
//! `sync_file` (an out-fence file descriptor) or put it into a buffer's reservation object
//! ([`crate::dma_resv::Resv`]).
//!
//! C header: [`include/linux/dma-fence.h`](srctree/include/linux/dma-fence.h)

use crate::{
    alloc::Flags,
    bindings,
    prelude::*,
    str::{CStrExt, CString},
    sync::{
        aref::{ARef, AlwaysRefCounted},
        atomic::{Atomic, Relaxed},
        Arc,
    },
    task::MAX_SCHEDULE_TIMEOUT,
    time::{msecs_to_jiffies, Delta},
    types::Opaque,
};
use core::ptr::{self, NonNull};

#[cfg(CONFIG_SYNC_FILE)]
use crate::fs::File;

/// A DMA fence (`struct dma_fence`), of any driver.
///
/// # Invariants
///
/// The fence has been initialised (`dma_fence_init()`), and every instance is reference counted
/// through its `refcount`: a `&Fence` is only ever made while someone holds a reference.
#[repr(transparent)]
pub struct Fence(Opaque<bindings::dma_fence>);

// SAFETY: A `struct dma_fence` may be used and released from any thread: its state changes under
// its own spinlock or with atomic bit operations.
unsafe impl Send for Fence {}

// SAFETY: Every method takes `&self` and relies on the C side's synchronisation, so a fence may
// be used from several threads at once.
unsafe impl Sync for Fence {}

// SAFETY: By the type invariants every `Fence` is reference counted, and `dma_fence_get()` and
// `dma_fence_put()` take and drop one reference.
unsafe impl AlwaysRefCounted for Fence {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: The existence of `&self` means the refcount is positive.
        unsafe { bindings::dma_fence_get(self.as_raw()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up the reference it owns. `Fence` is `repr(transparent)` over
        // `struct dma_fence`.
        unsafe { bindings::dma_fence_put(obj.cast().as_ptr()) }
    }
}

/// Converts a wait's timeout to jiffies, the unit of the C side: rounded up, and at least one
/// jiffy short of [`MAX_SCHEDULE_TIMEOUT`] (no timeout at all).
pub(crate) fn timeout_jiffies(timeout: Delta) -> c_long {
    let ms = timeout.as_millis_ceil().clamp(0, i64::from(u32::MAX));
    // The value was clamped to `u32`'s range just above.
    let jiffies = msecs_to_jiffies(ms as u32);
    c_long::try_from(jiffies).map_or(MAX_SCHEDULE_TIMEOUT - 1, |j| {
        j.min(MAX_SCHEDULE_TIMEOUT - 1)
    })
}

/// The result of a C wait that returns the remaining jiffies, `0` on timeout or a negative
/// error: `ETIMEDOUT` when the time ran out.
pub(crate) fn wait_result(ret: c_long) -> Result {
    match ret {
        0 => Err(ETIMEDOUT),
        // Error codes fit in a `c_int`.
        r if r < 0 => Err(Error::from_errno(r as c_int)),
        _ => Ok(()),
    }
}

impl Fence {
    /// Creates a reference to a fence from a pointer to it.
    ///
    /// # Safety
    ///
    /// `ptr` points to an initialised `struct dma_fence` whose refcount stays positive for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::dma_fence) -> &'a Self {
        // SAFETY: The caller guarantees that `ptr` is valid for `'a`; `Fence` is
        // `repr(transparent)` over `struct dma_fence`.
        unsafe { &*ptr.cast() }
    }

    /// Returns a pointer to the C fence.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::dma_fence {
        self.0.get()
    }

    /// The fence's context: the timeline it is ordered on.
    #[inline]
    pub fn context(&self) -> u64 {
        // SAFETY: The fence is initialised (type invariants) and `context` never changes.
        unsafe { (*self.as_raw()).context }
    }

    /// The fence's sequence number on its timeline.
    #[inline]
    pub fn seqno(&self) -> u64 {
        // SAFETY: The fence is initialised (type invariants) and `seqno` never changes.
        unsafe { (*self.as_raw()).seqno }
    }

    /// Whether the fence has been signalled.
    #[inline]
    pub fn is_signaled(&self) -> bool {
        // SAFETY: The fence is valid (type invariants).
        unsafe { bindings::dma_fence_is_signaled(self.as_raw()) }
    }

    /// How the fence ended: `None` while it is not signalled, then `Some(Ok(()))`, or
    /// `Some(Err(e))` when it was signalled with the error `e`.
    pub fn status(&self) -> Option<Result> {
        // SAFETY: The fence is valid (type invariants).
        match unsafe { bindings::dma_fence_get_status(self.as_raw()) } {
            0 => None,
            e if e < 0 => Some(Err(Error::from_errno(e))),
            _ => Some(Ok(())),
        }
    }

    /// Waits until the fence is signalled.
    ///
    /// An interruptible wait returns `ERESTARTSYS` when a signal comes first. The fence's own
    /// error, if any, is [`Fence::status`]'s to tell.
    pub fn wait(&self, interruptible: bool) -> Result {
        // SAFETY: The fence is valid (type invariants), and `&self` keeps a reference for the
        // duration of the wait.
        let ret = unsafe {
            bindings::dma_fence_wait_timeout(self.as_raw(), interruptible, MAX_SCHEDULE_TIMEOUT)
        };
        wait_result(ret)
    }

    /// Waits at most `timeout` for the fence: `ETIMEDOUT` when it is still not signalled then,
    /// `ERESTARTSYS` when an interruptible wait is interrupted. A zero timeout only tests.
    pub fn wait_timeout(&self, interruptible: bool, timeout: Delta) -> Result {
        // SAFETY: As in `wait`.
        let ret = unsafe {
            bindings::dma_fence_wait_timeout(self.as_raw(), interruptible, timeout_jiffies(timeout))
        };
        wait_result(ret)
    }

    /// Whether `self` and `other` are on the same timeline and `self` comes after `other`.
    pub fn is_later(&self, other: &Fence) -> bool {
        self.context() == other.context() && self.seqno() > other.seqno()
    }

    /// Makes a new `sync_file` holding a reference to this fence: the file of an out-fence for
    /// userspace, to be installed with [`FileDescriptorReservation::fd_install`][fd_install].
    ///
    /// [fd_install]: crate::fs::file::FileDescriptorReservation::fd_install
    #[cfg(CONFIG_SYNC_FILE)]
    pub fn to_sync_file(&self) -> Result<ARef<File>> {
        // SAFETY: The fence is valid (type invariants); `sync_file_create()` takes its own
        // reference to it.
        let sync_file = unsafe { bindings::sync_file_create(self.as_raw()) };
        if sync_file.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `sync_file_create()` returned a valid sync_file, which its file owns.
        let file = unsafe { (*sync_file).file };
        // SAFETY: The new file is valid, the one reference to it is ours and passes to the
        // `ARef`, and nobody else has seen it, so no `fdget_pos` is active on it.
        Ok(unsafe { ARef::from_raw(NonNull::from(File::from_raw_file(file))) })
    }

    /// The fence of the `sync_file` that is the calling process's file descriptor `fd`;
    /// `EINVAL` when `fd` is no sync_file.
    #[cfg(CONFIG_SYNC_FILE)]
    pub fn from_sync_file(fd: i32) -> Result<ARef<Self>> {
        // SAFETY: FFI call; `sync_file_get_fence()` checks the file descriptor.
        let fence = NonNull::new(unsafe { bindings::sync_file_get_fence(fd) }).ok_or(EINVAL)?;
        // SAFETY: `sync_file_get_fence()` returned a new reference, which the `ARef` takes.
        Ok(unsafe { ARef::from_raw(fence.cast()) })
    }
}

/// What the fences of a [`Timeline`] share: their context and the names the C side asks for.
struct TimelineShared {
    context: u64,
    next_seqno: Atomic<u64>,
    driver_name: CString,
    timeline_name: CString,
}

/// A fence context of the driver's own: one timeline, whose fences signal in the order of their
/// sequence numbers, that is in the order [`Timeline::new_fence`] made them.
///
/// The fences keep what they need of the timeline (its names): they may outlive it, and the
/// module that made them (their operations are the kernel's, and names are copied).
pub struct Timeline {
    shared: Arc<TimelineShared>,
}

/// The allocation of a fence made by a [`Timeline`].
///
/// # Invariants
///
/// `base` comes first (`repr(C)`), so that the allocation starts with the `struct dma_fence`,
/// which `dma_fence_free()` frees; the fence's operations are [`TIMELINE_FENCE_OPS`].
#[repr(C)]
struct TimelineFence {
    base: Opaque<bindings::dma_fence>,
    timeline: Arc<TimelineShared>,
}

impl TimelineFence {
    /// # Safety
    ///
    /// `fence` is the `base` of a live [`TimelineFence`].
    unsafe fn timeline<'a>(fence: *mut bindings::dma_fence) -> &'a TimelineShared {
        let this = fence.cast::<TimelineFence>();
        // SAFETY: By the type invariants and the caller's guarantee, `this` is the live
        // allocation that starts with `fence`.
        unsafe { &(*this).timeline }
    }

    /// `dma_fence_ops.get_driver_name`.
    ///
    /// # Safety
    ///
    /// `fence` is the `base` of a live [`TimelineFence`].
    unsafe extern "C" fn get_driver_name(fence: *mut bindings::dma_fence) -> *const c_char {
        // SAFETY: The C side calls this only for fences of `TIMELINE_FENCE_OPS`, all of which are
        // the `base` of a `TimelineFence`, and only while it holds a reference.
        unsafe { Self::timeline(fence) }.driver_name.as_char_ptr()
    }

    /// `dma_fence_ops.get_timeline_name`.
    ///
    /// # Safety
    ///
    /// `fence` is the `base` of a live [`TimelineFence`].
    unsafe extern "C" fn get_timeline_name(fence: *mut bindings::dma_fence) -> *const c_char {
        // SAFETY: As in `get_driver_name`.
        unsafe { Self::timeline(fence) }.timeline_name.as_char_ptr()
    }

    /// `dma_fence_ops.release`: frees the fence once its last reference is gone.
    ///
    /// # Safety
    ///
    /// `fence` is the `base` of a [`TimelineFence`] whose last reference was just dropped.
    unsafe extern "C" fn release(fence: *mut bindings::dma_fence) {
        let this = fence.cast::<TimelineFence>();
        // SAFETY: The last reference is gone, so nothing uses the Rust part of the allocation any
        // more: drop it (which may free the timeline's names: `kfree()`, fine in any context).
        unsafe { ptr::drop_in_place(&raw mut (*this).timeline) };
        // SAFETY: By the type invariants the allocation starts with `fence` and came from
        // `KBox` (`kmalloc()`); `dma_fence_free()` frees it after an RCU grace period, as RCU
        // readers of the fence may still look at it.
        unsafe { bindings::dma_fence_free(fence) };
    }
}

/// The operations of every fence a [`Timeline`] makes. They live in the kernel, not in the
/// module of the driver, so a module may go while its (signalled) fences are still referenced.
static TIMELINE_FENCE_OPS: bindings::dma_fence_ops = bindings::dma_fence_ops {
    get_driver_name: Some(TimelineFence::get_driver_name),
    get_timeline_name: Some(TimelineFence::get_timeline_name),
    release: Some(TimelineFence::release),
    // SAFETY: All other members are optional callbacks, for which zero is `None`.
    ..unsafe { core::mem::zeroed() }
};

impl Timeline {
    /// Allocates a new fence context, whose fences report `driver_name` and `timeline_name`
    /// (copied) to the C side (`sync_file` info, debugfs, traces).
    pub fn new(driver_name: &CStr, timeline_name: &CStr) -> Result<Self> {
        let shared = TimelineShared {
            // SAFETY: FFI call without preconditions.
            context: unsafe { bindings::dma_fence_context_alloc(1) },
            next_seqno: Atomic::new(1),
            driver_name: CString::try_from(driver_name)?,
            timeline_name: CString::try_from(timeline_name)?,
        };
        Ok(Self {
            shared: Arc::new(shared, GFP_KERNEL)?,
        })
    }

    /// The timeline's fence context, as [`Fence::context`] reports it for its fences.
    pub fn context(&self) -> u64 {
        self.shared.context
    }

    /// Makes the timeline's next fence, unsignalled. Fences must signal in the order they were
    /// made: a driver that makes them for work it queues makes them under the lock of its queue.
    pub fn new_fence(&self, flags: Flags) -> Result<DriverFence> {
        let alloc = KBox::new(
            TimelineFence {
                base: Opaque::uninit(),
                timeline: self.shared.clone(),
            },
            flags,
        )?;
        let seqno = self.shared.next_seqno.fetch_add(1, Relaxed);
        let this = KBox::into_raw(alloc);
        // SAFETY: `this` is a valid allocation that nothing else uses yet and that is never moved;
        // the operations are static; a NULL lock selects the fence's own (inline) lock.
        // INVARIANT: `base` is the first member of a `TimelineFence` allocated by `KBox`, and its
        // operations are `TIMELINE_FENCE_OPS`.
        let base = unsafe {
            let base = (*this).base.get();
            bindings::dma_fence_init64(
                base,
                &TIMELINE_FENCE_OPS,
                ptr::null_mut(),
                self.shared.context,
                seqno,
            );
            base
        };
        // SAFETY: `base` was just initialised with a refcount of one, which passes to the `ARef`.
        // INVARIANT: `dma_fence_init64()` initialised the fence, and it is reference counted.
        let fence = unsafe { ARef::from_raw(NonNull::new_unchecked(base.cast::<Fence>())) };
        // INVARIANT: Nobody else has this fence yet, so no one else can signal it.
        Ok(DriverFence { fence })
    }
}

/// The duty to signal one fence of a [`Timeline`]: [`DriverFence::signal`] when the work is
/// done, [`DriverFence::signal_error`] when it failed. Dropping it unsignalled signals it with
/// `ECANCELED`. It dereferences to the [`Fence`], of which waiters get references
/// ([`ARef::from`]).
///
/// # Invariants
///
/// Only this object signals `fence`, which a [`Timeline`] made.
pub struct DriverFence {
    fence: ARef<Fence>,
}

impl DriverFence {
    /// Signals the fence: the work behind it has finished. May be called in any context,
    /// interrupt handlers included.
    pub fn signal(self) {
        // SAFETY: The fence is valid; by the type invariants nobody else signals it, so this is
        // its one signal. `drop` then finds it signalled.
        unsafe { bindings::dma_fence_signal(self.fence.as_raw()) };
    }

    /// Signals the fence with an error: the work behind it failed (e.g. `EIO`) or never ran
    /// (`ECANCELED`). May be called in any context.
    pub fn signal_error(self, error: Error) {
        // SAFETY: The fence is valid and not yet signalled (only this object signals it, and it
        // is consumed here); `Error` is a negative errno, as `dma_fence_set_error()` wants.
        unsafe {
            bindings::dma_fence_set_error(self.fence.as_raw(), error.to_errno());
            bindings::dma_fence_signal(self.fence.as_raw());
        }
    }
}

impl core::ops::Deref for DriverFence {
    type Target = Fence;

    fn deref(&self) -> &Fence {
        &self.fence
    }
}

impl Drop for DriverFence {
    fn drop(&mut self) {
        // Only this object signals the fence (type invariants): what it sees here stays true.
        if !self.fence.is_signaled() {
            // SAFETY: The fence is valid and not signalled.
            unsafe {
                bindings::dma_fence_set_error(self.fence.as_raw(), ECANCELED.to_errno());
                bindings::dma_fence_signal(self.fence.as_raw());
            }
        }
    }
}

#[kunit_tests(rust44_dma_fence)]
mod tests {
    use super::*;
    use crate::{time::delay::fsleep, workqueue};

    #[test]
    fn signal_and_status() -> Result {
        let timeline = Timeline::new(c"rust44", c"test")?;
        let a = timeline.new_fence(GFP_KERNEL)?;
        let b = timeline.new_fence(GFP_KERNEL)?;
        assert_eq!(a.context(), timeline.context());
        assert_eq!(b.seqno(), a.seqno() + 1);
        assert!(b.is_later(&a));
        assert!(!a.is_later(&b));
        let a_ref = ARef::from(&*a);
        let b_ref = ARef::from(&*b);
        assert!(!a_ref.is_signaled());
        assert!(a_ref.status().is_none());
        assert_eq!(
            a_ref.wait_timeout(false, Delta::from_millis(10)),
            Err(ETIMEDOUT)
        );
        assert_eq!(a_ref.wait_timeout(false, Delta::ZERO), Err(ETIMEDOUT));
        a.signal();
        assert!(a_ref.is_signaled());
        assert_eq!(a_ref.status(), Some(Ok(())));
        assert_eq!(a_ref.wait(true), Ok(()));
        assert_eq!(a_ref.wait_timeout(true, Delta::ZERO), Ok(()));
        b.signal_error(EIO);
        assert_eq!(b_ref.status(), Some(Err(EIO)));
        // Dropped unsignalled: cancelled, so that no waiter waits forever.
        let c = timeline.new_fence(GFP_KERNEL)?;
        let c_ref = ARef::from(&*c);
        drop(c);
        assert_eq!(c_ref.status(), Some(Err(ECANCELED)));
        // The fences outlive their timeline; another timeline is another context.
        drop(timeline);
        assert_eq!(a_ref.seqno() + 2, c_ref.seqno());
        let other = Timeline::new(c"rust44", c"other")?;
        let d = other.new_fence(GFP_KERNEL)?;
        assert_ne!(d.context(), a_ref.context());
        assert!(!d.is_later(&a_ref));
        Ok(())
    }

    #[test]
    fn wait_for_another_thread() -> Result {
        let timeline = Timeline::new(c"rust44", c"test")?;
        let fence = timeline.new_fence(GFP_KERNEL)?;
        let waiter = ARef::from(&*fence);
        workqueue::system_long().try_spawn(GFP_KERNEL, move || {
            fsleep(Delta::from_millis(20));
            fence.signal_error(ENODATA);
        })?;
        assert_eq!(waiter.wait_timeout(true, Delta::from_millis(5000)), Ok(()));
        assert_eq!(waiter.status(), Some(Err(ENODATA)));
        Ok(())
    }

    #[cfg(CONFIG_SYNC_FILE)]
    #[test]
    fn sync_file_holds_the_fence() -> Result {
        let timeline = Timeline::new(c"rust44", c"sync_file")?;
        let fence = timeline.new_fence(GFP_KERNEL)?;
        let file = fence.to_sync_file()?;
        // SAFETY: A sync_file's file has the sync_file as its private data, and it holds a
        // reference to its fence while the file lives.
        let held = unsafe {
            let sync_file = (*file.as_ptr()).private_data.cast::<bindings::sync_file>();
            (*sync_file).fence
        };
        assert_eq!(held, fence.as_raw());
        let waiter = ARef::from(&*fence);
        drop(fence);
        // The file's reference keeps the cancelled fence alive beside ours.
        drop(waiter);
        // SAFETY: As above: the file still lives.
        let status = unsafe {
            let sync_file = (*file.as_ptr()).private_data.cast::<bindings::sync_file>();
            Fence::from_raw((*sync_file).fence).status()
        };
        assert_eq!(status, Some(Err(ECANCELED)));
        drop(file);
        // No such file descriptor: not a sync_file.
        assert_eq!(Fence::from_sync_file(-1).err(), Some(EINVAL));
        Ok(())
    }
}
