// SPDX-License-Identifier: GPL-2.0

//! Virtqueues.
//!
//! A driver finds its device's queues once, in probe, with [`Virtqueues::new`]. Each buffer
//! chain it places on a queue is a [`Buffer`] in a [`KBox`]: the box is the token the virtio
//! core hands back when the device has used the chain, so the memory the device reads and
//! writes stays owned by the queue until then. Used chains are given to the driver's [`Handler`]
//! from the queue's interrupt; chains the device never used are dropped when the queues are
//! dropped, after the device has been reset.
//!
//! C header: [`include/linux/virtio.h`](srctree/include/linux/virtio.h)

use super::Device;
use crate::{
    alloc::Flags,
    bindings, device,
    error::to_result,
    new_spinlock_irq,
    prelude::*,
    sync::{aref::ARef, SpinLockIrq},
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    mem::MaybeUninit,
    ptr::{self, NonNull},
};

/// The most segments one buffer chain can have.
pub const MAX_SEGMENTS: usize = 8;

/// A buffer chain: memory the device reads, then memory it writes.
///
/// The driver's request type implements this; it is placed on a queue in a [`KBox`] with
/// [`Virtqueue::add`] and comes back from [`Handler::used`] (or is dropped on teardown).
pub trait Buffer: Send + Sized + 'static {
    /// Describes the chain: every device-readable segment with [`Segments::readable`], then
    /// every device-writable one with [`Segments::writable`].
    ///
    /// Segments must be memory of `self` (or memory `self` owns, such as a [`KVec`]'s
    /// elements) in the kernel's linear mapping: `kmalloc` memory qualifies, `vmalloc` memory and
    /// stacks do not and are refused with `EINVAL`.
    fn segments<'a>(&'a mut self, sg: &mut Segments<'a>) -> Result;
}

/// The segments of one buffer chain, as [`Buffer::segments`] describes them.
///
/// # Invariants
///
/// The first `readable + writable` entries of `entries` are initialised single-entry
/// scatterlists over memory in the linear mapping that lives for `'a`; the first `readable` are
/// device-readable.
pub struct Segments<'a> {
    entries: [MaybeUninit<bindings::scatterlist>; MAX_SEGMENTS],
    readable: usize,
    writable: usize,
    _memory: PhantomData<&'a mut [u8]>,
}

impl<'a> Segments<'a> {
    fn new() -> Self {
        Self {
            entries: [const { MaybeUninit::uninit() }; MAX_SEGMENTS],
            readable: 0,
            writable: 0,
            _memory: PhantomData,
        }
    }

    fn push(&mut self, ptr: *const u8, len: usize) -> Result {
        let index = self.readable + self.writable;
        if index == MAX_SEGMENTS {
            return Err(E2BIG);
        }
        let len32 = u32::try_from(len).map_err(|_| EINVAL)?;
        if len32 == 0 {
            return Err(EINVAL);
        }
        // The device addresses a segment by the physical address of its first page, so the
        // memory must be physically contiguous: the linear mapping is.
        // SAFETY: `virt_addr_valid` only computes on the addresses.
        let valid = unsafe {
            bindings::virt_addr_valid(ptr.cast())
                && bindings::virt_addr_valid(ptr.add(len - 1).cast())
        };
        if !valid {
            return Err(EINVAL);
        }
        // SAFETY: `entries[index]` is writable memory for one scatterlist; `ptr..ptr + len` is
        // linear-mapped memory valid for `'a` (the caller's borrow).
        unsafe { bindings::sg_init_one(self.entries[index].as_mut_ptr(), ptr.cast(), len32) };
        Ok(())
    }

    /// Adds a segment the device reads. All readable segments come before writable ones.
    pub fn readable(&mut self, buf: &'a [u8]) -> Result {
        if self.writable != 0 {
            return Err(EINVAL);
        }
        self.push(buf.as_ptr(), buf.len())?;
        // INVARIANT: `push` initialised the entry over `buf`, which lives for `'a`.
        self.readable += 1;
        Ok(())
    }

    /// Adds a segment the device writes.
    pub fn writable(&mut self, buf: &'a mut [u8]) -> Result {
        self.push(buf.as_ptr(), buf.len())?;
        // INVARIANT: `push` initialised the entry over `buf`, which lives for `'a` and is not
        // otherwise accessed while the chain is on the queue (it is borrowed mutably).
        self.writable += 1;
        Ok(())
    }
}

/// What a driver does with used buffers.
///
/// Each queue of a [`Virtqueues`] calls [`Handler::used`] from its interrupt for every chain the
/// device has used, in the order the device used them, with no queue lock held (so the handler
/// may add to the queue again).
pub trait Handler<B: Buffer>: Send + Sync + 'static {
    /// The device used `buf` on queue `index`, writing `written` bytes to its writable
    /// segments.
    ///
    /// Called in interrupt context: the handler must not sleep. Whatever needs to sleep
    /// (dropping objects whose release sleeps, for instance) is deferred to process context.
    fn used(&self, index: usize, buf: KBox<B>, written: u32);
}

/// One virtqueue.
///
/// Reached through the lock [`Virtqueues::queue`] returns: the virtio core requires the driver to
/// serialise every operation on a queue.
///
/// # Invariants
///
/// `vq` is a valid virtqueue of a device that is not reset until the owning [`Virtqueues`] is
/// dropped; the token of every chain on it is a `KBox<B>` turned into a raw pointer.
pub struct Virtqueue<B: Buffer> {
    vq: NonNull<bindings::virtqueue>,
    _buffers: PhantomData<KBox<B>>,
}

// SAFETY: A virtqueue may be used from any thread as long as its operations are serialised, which
// `&mut self` (through the queue's lock) ensures; the tokens are `Send`.
unsafe impl<B: Buffer> Send for Virtqueue<B> {}

impl<B: Buffer> Virtqueue<B> {
    /// Places `buf` on the queue (the device sees it after [`Virtqueue::kick`]).
    ///
    /// `flags` applies to the descriptor table the core may allocate; under the queue's lock
    /// this must be an atomic allocation such as [`GFP_ATOMIC`]. On failure the buffer is given
    /// back: `ENOSPC` when the queue is full (wait for used buffers), or the error of
    /// [`Buffer::segments`].
    pub fn add(&mut self, mut buf: KBox<B>, flags: Flags) -> Result<(), (Error, KBox<B>)> {
        let mut segments = Segments::new();
        if let Err(e) = buf.segments(&mut segments) {
            return Err((e, buf));
        }
        let (readable, writable) = (segments.readable, segments.writable);
        let total = readable + writable;
        if total == 0 {
            return Err((EINVAL, buf));
        }
        let mut lists = [ptr::null_mut::<bindings::scatterlist>(); MAX_SEGMENTS];
        for (list, entry) in lists
            .iter_mut()
            .zip(segments.entries.iter_mut())
            .take(total)
        {
            *list = entry.as_mut_ptr();
        }
        // The segments borrow `buf`'s memory; from here the box is owned through the token.
        let token = KBox::into_raw(buf);
        // SAFETY: By the type invariant `self.vq` is valid and `&mut self` serialises the
        // operation; by the invariant of `Segments` the first `total` lists are initialised
        // single-entry scatterlists over memory `token` owns, which stays allocated and
        // unaccessed until the token is returned by `get_buf` or `detach_unused_buf`.
        let ret = unsafe {
            bindings::virtqueue_add_sgs(
                self.vq.as_ptr(),
                lists.as_mut_ptr(),
                readable as u32,
                writable as u32,
                token.cast::<c_void>(),
                flags.as_raw(),
            )
        };
        if ret < 0 {
            // SAFETY: The core did not take the token; it came from `KBox::into_raw` above.
            return Err((Error::from_errno(ret), unsafe { KBox::from_raw(token) }));
        }
        Ok(())
    }

    /// Whether the device wants to be told about the chains added since the last kick; if so,
    /// tell it with [`Virtqueues::notify`], best once the queue's lock is dropped: the
    /// notification may exit to the hypervisor, and meanwhile the queue's interrupt, on another
    /// CPU, would spin on the lock (C drivers do the same).
    pub fn kick_prepare(&mut self) -> bool {
        // SAFETY: By the type invariant `self.vq` is valid; `&mut self` serialises the call.
        unsafe { bindings::virtqueue_kick_prepare(self.vq.as_ptr()) }
    }

    /// Tells the device about the chains added since the last kick, under the queue's lock
    /// ([`Virtqueue::kick_prepare`] and [`Virtqueues::notify`] do it in two steps).
    ///
    /// Returns `false` if the device is broken (the notification failed).
    pub fn kick(&mut self) -> bool {
        // SAFETY: By the type invariant `self.vq` is valid; `&mut self` serialises the call.
        unsafe { bindings::virtqueue_kick(self.vq.as_ptr()) }
    }

    /// Takes the next chain the device has used, with the number of bytes it wrote.
    fn get_buf(&mut self) -> Option<(KBox<B>, u32)> {
        let mut written = 0u32;
        // SAFETY: By the type invariant `self.vq` is valid; `&mut self` serialises the call.
        let token = unsafe { bindings::virtqueue_get_buf(self.vq.as_ptr(), &mut written) };
        // SAFETY: By the type invariant every token on the queue is a `KBox<B>` turned into a raw
        // pointer, and the core returns each exactly once.
        NonNull::new(token).map(|t| (unsafe { KBox::from_raw(t.cast::<B>().as_ptr()) }, written))
    }

    /// Number of free descriptors: a chain of `n` segments fits when this is at least `n`.
    pub fn num_free(&self) -> u32 {
        // SAFETY: By the type invariant `self.vq` is valid; reading `num_free` is what the C
        // drivers do to wait for room.
        unsafe { (*self.vq.as_ptr()).num_free }
    }

    /// The number of descriptors of the queue.
    pub fn size(&self) -> u32 {
        // SAFETY: By the type invariant `self.vq` is valid.
        unsafe { bindings::virtqueue_get_vring_size(self.vq.as_ptr()) }
    }

    fn disable_cb(&mut self) {
        // SAFETY: By the type invariant `self.vq` is valid; `&mut self` serialises the call.
        unsafe { bindings::virtqueue_disable_cb(self.vq.as_ptr()) }
    }

    /// Returns `false` if chains were used meanwhile (the caller looks again).
    fn enable_cb(&mut self) -> bool {
        // SAFETY: By the type invariant `self.vq` is valid; `&mut self` serialises the call.
        unsafe { bindings::virtqueue_enable_cb(self.vq.as_ptr()) }
    }

    /// Drops every chain still on the queue.
    ///
    /// # Safety
    ///
    /// The device must have been reset: it no longer reads or writes any chain.
    unsafe fn detach_all(&mut self) {
        loop {
            // SAFETY: By the type invariant `self.vq` is valid; `&mut self` serialises the call.
            let token = unsafe { bindings::virtqueue_detach_unused_buf(self.vq.as_ptr()) };
            let Some(token) = NonNull::new(token) else {
                break;
            };
            // SAFETY: Every token is a `KBox<B>` turned into a raw pointer (type invariant); the
            // device is reset (safety requirement), so nothing uses its memory any more.
            drop(unsafe { KBox::from_raw(token.cast::<B>().as_ptr()) });
        }
    }
}

/// What the queue callbacks reach through the device's `priv` pointer.
struct Shared<B: Buffer, H: Handler<B>> {
    handler: H,
    queues: KVec<Pin<KBox<SpinLockIrq<Virtqueue<B>>>>>,
}

/// The virtqueues of a device, found in probe.
///
/// Dropping it resets the device (so it stops using every queue), drops the chains still on the
/// queues and deletes them. A driver keeps it in its bus device data, or in data whose lifetime
/// is bound to the device binding, so that it is gone before the device can be bound again.
///
/// # Invariants
///
/// - `shared` is the device's `priv` pointer, set after the queues were found and cleared after
///   they were deleted; the device has one set of queues, these.
/// - `shared.queues[i]` wraps the queue of index `i`, created with [`Self::callback`] as its
///   callback.
pub struct Virtqueues<B: Buffer, H: Handler<B>> {
    vdev: ARef<Device>,
    shared: Pin<KBox<Shared<B, H>>>,
    notifiers: KVec<Notifier>,
}

/// A queue's notification, sent without the queue's lock ([`Virtqueues::notify`]).
///
/// # Invariants
///
/// The pointer is a valid virtqueue until the [`Virtqueues`] holding this is dropped.
struct Notifier(NonNull<bindings::virtqueue>);

// SAFETY: `virtqueue_notify()` may be called from any thread, at the same time as any other
// operation on the queue: the virtio core asks for no serialisation of it.
unsafe impl Send for Notifier {}

// SAFETY: As above.
unsafe impl Sync for Notifier {}

impl<B: Buffer, H: Handler<B>> Virtqueues<B, H> {
    /// Finds the device's queues, one per name, in index order; every queue's used chains go to
    /// `handler`.
    ///
    /// Fails with `EBUSY` if the device's queues were already found.
    pub fn new(
        dev: &Device<device::Core<'_>>,
        names: &[&'static CStr],
        handler: H,
    ) -> Result<Self> {
        let vdev = dev.as_raw();
        let count = names.len();
        let nvqs = u32::try_from(count).map_err(|_| EINVAL)?;
        if count == 0 {
            return Err(EINVAL);
        }
        // `priv` is not looked at: a driver bound before may have left it set.
        // SAFETY: `vdev` is valid (type invariant of `Device`); we are in probe, where nothing
        // else changes the queue list.
        let busy = unsafe {
            let list = &raw mut (*vdev).vqs;
            (*list).next != list
        };
        if busy {
            return Err(EBUSY);
        }

        let mut infos = KVec::with_capacity(count, GFP_KERNEL)?;
        for name in names {
            infos.push(
                bindings::virtqueue_info {
                    name: name.as_char_ptr(),
                    callback: Some(Self::callback),
                    ctx: false,
                },
                GFP_KERNEL,
            )?;
        }
        let mut raw = KVec::from_elem(ptr::null_mut::<bindings::virtqueue>(), count, GFP_KERNEL)?;
        let mut queues = KVec::with_capacity(count, GFP_KERNEL)?;
        let mut notifiers = KVec::with_capacity(count, GFP_KERNEL)?;

        // SAFETY: `vdev` is valid and in probe; `raw` and `infos` have `nvqs` entries.
        to_result(unsafe {
            bindings::virtio_find_vqs(
                vdev,
                nvqs,
                raw.as_mut_ptr(),
                infos.as_mut_ptr(),
                ptr::null_mut(),
            )
        })?;
        let deleter = DeleteOnError(vdev);

        for vq in raw.iter() {
            let vq = NonNull::new(*vq).ok_or(EINVAL)?;
            // INVARIANT: `vq` was just found on this device, which is not reset before the
            // `Virtqueues` holding it is dropped; nothing is on it yet.
            let queue = KBox::pin_init(
                new_spinlock_irq!(
                    Virtqueue {
                        vq,
                        _buffers: PhantomData,
                    },
                    "virtqueue"
                ),
                GFP_KERNEL,
            )?;
            queues.push(queue, GFP_KERNEL)?;
            // INVARIANT: As for the queue: valid until the `Virtqueues` is dropped.
            notifiers.push(Notifier(vq), GFP_KERNEL)?;
        }
        let shared = KBox::pin(Shared { handler, queues }, GFP_KERNEL)?;
        core::mem::forget(deleter);

        // No callback runs before a chain is on a queue, and none can be added before this
        // function returns the queues, so the callbacks always see `priv` set.
        // SAFETY: `vdev` is valid; `priv` belongs to the bound driver, which is us.
        unsafe { (*vdev).priv_ = ptr::from_ref(&*shared).cast_mut().cast() };

        // INVARIANT: `priv` now points at `shared`, whose queues are the ones found above in
        // index order, each with `Self::callback`.
        Ok(Self {
            vdev: dev.into(),
            shared,
            notifiers,
        })
    }

    /// Notifies the device of new chains on queue `index`, after [`Virtqueue::kick_prepare`]
    /// said it wants that; needs no lock. Returns `false` if there is no such queue or the
    /// device is broken (the notification failed).
    pub fn notify(&self, index: usize) -> bool {
        let Some(notifier) = self.notifiers.get(index) else {
            return false;
        };
        // SAFETY: The pointer is valid while `self` is (type invariant of `Notifier`); the call
        // needs no serialisation.
        unsafe { bindings::virtqueue_notify(notifier.0.as_ptr()) }
    }

    /// The queue of index `index`, to be locked for [`Virtqueue::add`] and [`Virtqueue::kick`].
    pub fn queue(&self, index: usize) -> Option<&SpinLockIrq<Virtqueue<B>>> {
        self.shared.queues.get(index).map(|q| &**q)
    }

    /// The handler the queues' used chains go to.
    pub fn handler(&self) -> &H {
        &self.shared.handler
    }

    /// The device these queues belong to.
    pub fn device(&self) -> &Device {
        &self.vdev
    }

    extern "C" fn callback(vq: *mut bindings::virtqueue) {
        // SAFETY: The virtio core calls this with a valid virtqueue of a live device.
        let (vdev, index) = unsafe { ((*vq).vdev, (*vq).index as usize) };
        // SAFETY: `vdev` is valid; by the invariant of `Virtqueues` a non-null `priv` points at
        // the `Shared` of the queues whose callback this is, alive until after the queues are
        // deleted (which waits for running callbacks).
        let shared = unsafe { (*vdev).priv_.cast::<Shared<B, H>>().cast_const().as_ref() };
        let Some(shared) = shared else {
            return;
        };
        let Some(queue) = shared.queues.get(index) else {
            return;
        };
        loop {
            queue.lock().disable_cb();
            loop {
                // The lock is released before the handler runs, which may add to the queue.
                let used = queue.lock().get_buf();
                let Some((buf, written)) = used else {
                    break;
                };
                shared.handler.used(index, buf, written);
            }
            if queue.lock().enable_cb() {
                break;
            }
        }
    }
}

impl<B: Buffer, H: Handler<B>> Drop for Virtqueues<B, H> {
    fn drop(&mut self) {
        let vdev = self.vdev.as_raw();
        // SAFETY: `vdev` is valid (we hold a reference); after the reset the device no longer
        // uses any queue.
        unsafe { bindings::virtio_reset_device(vdev) };
        // A callback still running takes the queue lock too: each chain goes either to the
        // handler (still alive) or is dropped here, never both.
        for queue in self.shared.queues.iter() {
            // SAFETY: The device was reset above.
            unsafe { queue.lock().detach_all() };
        }
        // SAFETY: `vdev` is valid and its queues are ours (type invariant); deleting them frees
        // their interrupts, which waits for running callbacks. `del_vqs` is always set.
        unsafe {
            if let Some(del_vqs) = (*(*vdev).config).del_vqs {
                del_vqs(vdev);
            }
            (*vdev).priv_ = ptr::null_mut();
        }
    }
}

/// Deletes a device's queues if [`Virtqueues::new`] fails after finding them.
struct DeleteOnError(*mut bindings::virtio_device);

impl Drop for DeleteOnError {
    fn drop(&mut self) {
        // SAFETY: `self.0` is the valid device in probe whose queues were found and are not yet
        // used (no chain was added, the device is not live).
        unsafe {
            if let Some(del_vqs) = (*(*self.0).config).del_vqs {
                del_vqs(self.0);
            }
        }
    }
}
