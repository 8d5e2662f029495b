// SPDX-License-Identifier: GPL-2.0

//! Bios: the block layer's unit of I/O below the request queue.
//!
//! C header: [`include/linux/bio.h`](srctree/include/linux/bio.h)
//!
//! Three things a stacking driver (a device-mapper target) does with bios:
//!
//! - [`Bio`]: a bio it was handed and owes an answer: it reads its operation, position and
//!   data, then ends it ([`Bio::end`]) or gives it back remapped. A `Bio` dropped unanswered ends
//!   with an I/O error, so a request is never lost.
//! - [`IoBatch`]: I/O of its own to the devices below, into and out of [`IoBuffer`]s, submitted
//!   together and waited for together. The batch is scoped (like `std::thread::scope`): every bio
//!   has completed before [`IoBatch::run`] returns, so buffers are borrowed, not given away.
//! - [`Bdev`]: the block devices below, as the driver opened them.

use super::mq::ReqOp;
use crate::{
    alloc::{AllocError, Flags, KBox},
    bindings,
    error::{code::*, to_result, Error, Result},
    ffi::c_void,
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Full, Relaxed},
        Completion,
    },
    types::Opaque,
};
use core::{marker::PhantomData, ptr::NonNull};

/// The size of an [`IoBuffer`] made by [`IoBuffer::new`]: one page.
pub const IO_BUFFER_SIZE: usize = bindings::PAGE_SIZE;
/// The largest [`IoBuffer`].
pub const IO_BUFFER_MAX: usize = 1 << 20;

const SECTOR_SHIFT: u32 = 9;

/// An open block device below the driver.
///
/// # Invariants
///
/// `self.0` is a valid `struct block_device` that stays open for as long as the reference to
/// this `Bdev` is valid.
#[repr(transparent)]
pub struct Bdev(Opaque<bindings::block_device>);

impl Bdev {
    /// # Safety
    ///
    /// `ptr` must be a block device that stays open for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::block_device) -> &'a Self {
        // SAFETY: Transparent wrapper; the caller promises validity for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct block_device`.
    pub fn as_raw(&self) -> *mut bindings::block_device {
        self.0.get()
    }

    /// The device's capacity in 512-byte sectors (`bdev_nr_sectors()`).
    pub fn sectors(&self) -> u64 {
        // SAFETY: By the type invariant the block device is open.
        unsafe { bindings::bdev_nr_sectors(self.as_raw()) }
    }

    /// The device's logical block size in bytes.
    pub fn logical_block_size(&self) -> u32 {
        // SAFETY: By the type invariant the block device is open.
        unsafe { bindings::bdev_logical_block_size(self.as_raw()) }
    }

    /// The device number (`bd_dev`).
    pub fn devt(&self) -> u32 {
        // SAFETY: By the type invariant the block device is valid; `bd_dev` never changes.
        unsafe { (*self.as_raw()).bd_dev }
    }

    /// The most segments one request to the device carries (`bdev_max_segments()`).
    pub fn max_segments(&self) -> u32 {
        // SAFETY: By the type invariant the block device is open.
        unsafe { bindings::bdev_max_segments(self.as_raw()) }
    }

    /// Whether the device is zoned (writes must go to a zone's write pointer).
    pub fn is_zoned(&self) -> bool {
        // SAFETY: By the type invariant the block device is open.
        unsafe { bindings::bdev_is_zoned(self.as_raw()) }
    }

    /// Flushes the device's volatile write cache and waits (`blkdev_issue_flush()`).
    pub fn flush(&self) -> Result {
        crate::task::might_sleep();
        // SAFETY: By the type invariant the block device is open.
        to_result(unsafe { bindings::blkdev_issue_flush(self.as_raw()) })
    }
}

pub(crate) fn status_of(result: Result) -> bindings::blk_status_t {
    match result {
        Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
        Err(e) => e.to_blk_status(),
    }
}

pub(crate) fn result_of(status: bindings::blk_status_t) -> Result {
    if status == bindings::BLK_STS_OK as bindings::blk_status_t {
        return Ok(());
    }
    // SAFETY: Pure conversion function.
    let errno = unsafe { bindings::blk_status_to_errno(status) };
    Err(Error::from_errno(errno))
}

/// A bio the driver was handed and has to answer.
///
/// # Invariants
///
/// `self.ptr` is a valid bio that the block layer handed to the driver and that nobody else
/// ends: it stays valid until this `Bio` ends it or gives it back.
pub struct Bio {
    ptr: NonNull<bindings::bio>,
}

// SAFETY: A bio may be ended or remapped from any thread.
unsafe impl Send for Bio {}
// SAFETY: `&Bio` only reads fields that do not change while the driver owns the bio.
unsafe impl Sync for Bio {}

impl Bio {
    /// Takes over a bio.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid bio handed to the caller to answer, and nothing else may end it.
    pub unsafe fn from_raw(ptr: NonNull<bindings::bio>) -> Self {
        // INVARIANT: The caller hands the bio over.
        Self { ptr }
    }

    /// Gives the bio back without ending it; the caller answers it.
    pub fn into_raw(self) -> NonNull<bindings::bio> {
        let ptr = self.ptr;
        core::mem::forget(self);
        ptr
    }

    pub(crate) fn ptr(&self) -> *mut bindings::bio {
        self.ptr.as_ptr()
    }

    fn raw(&self) -> &bindings::bio {
        // SAFETY: By the type invariant the bio is valid and owned by `self`.
        unsafe { self.ptr.as_ref() }
    }

    fn raw_mut(&mut self) -> &mut bindings::bio {
        // SAFETY: By the type invariant the bio is valid and owned by `self`.
        unsafe { self.ptr.as_mut() }
    }

    /// The operation (`bio_op()`; the encoding is a request's).
    pub fn op(&self) -> ReqOp {
        ReqOp::from_cmd_flags(self.raw().bi_opf)
    }

    fn has_flag(&self, bit: u32) -> bool {
        self.raw().bi_opf & (1 << bit) != 0
    }

    /// Whether the bio carries `REQ_FUA`: the data must be on stable storage when it ends.
    pub fn is_fua(&self) -> bool {
        self.has_flag(bindings::req_flag_bits___REQ_FUA)
    }

    /// Whether the bio carries `REQ_PREFLUSH`: earlier writes must be stable before it runs.
    pub fn is_preflush(&self) -> bool {
        self.has_flag(bindings::req_flag_bits___REQ_PREFLUSH)
    }

    /// The first sector.
    pub fn sector(&self) -> u64 {
        self.raw().bi_iter.bi_sector
    }

    /// The size in bytes.
    pub fn size(&self) -> u32 {
        self.raw().bi_iter.bi_size
    }

    /// The size in sectors.
    pub fn sectors(&self) -> u32 {
        self.size() >> SECTOR_SHIFT
    }

    /// Points the bio at `bdev` from `sector`, to be given back to the block layer and sent on
    /// there (a remap).
    ///
    /// `bdev` must stay open until the bio ends; a device-mapper target's devices do.
    pub fn remap(mut self, bdev: &Bdev, sector: u64) -> Remapped {
        // SAFETY: The bio is owned by `self`; `bdev` is open.
        unsafe { bindings::bio_set_dev(self.ptr.as_ptr(), bdev.as_raw()) };
        self.raw_mut().bi_iter.bi_sector = sector;
        Remapped(self.into_raw())
    }

    /// Calls `f(bio_bytes, slice_offset, len)` for each part of the bio's data from byte `offset`
    /// for `len` bytes, mapped (at most a page at a time). Fails with `EINVAL` when the range is
    /// past the bio's size.
    ///
    /// Goes straight to `offset` (`bio_advance_iter()`) and stops at its end: a driver copying a
    /// large bio a page at a time does not walk the whole bio for each page.
    fn for_each_range(
        &self,
        offset: usize,
        len: usize,
        mut f: impl FnMut(*mut u8, usize, usize),
    ) -> Result {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if end > self.size() as usize {
            return Err(EINVAL);
        }
        let mut iter = self.raw().bi_iter;
        // SAFETY: The bio is valid and `offset` is within its size (checked above).
        unsafe { bindings::bio_advance_iter(self.ptr.as_ptr(), &mut iter, offset as u32) };
        let mut at = offset;
        while at < end {
            // SAFETY: The bio is valid and `iter` is within it, with `end - at` bytes or more left.
            let bv = unsafe { bindings::bio_iter_iovec(self.ptr.as_ptr(), iter) };
            let piece = (bv.bv_len as usize).min(end - at);
            if piece == 0 {
                break;
            }
            // SAFETY: `bv_page` is a page of the bio, valid until the bio ends.
            let addr = unsafe { bindings::kmap_local_page(bv.bv_page) }.cast::<u8>();
            // SAFETY: The piece lies within the mapped page (`bio_iter_iovec` splits at pages).
            f(
                unsafe { addr.add(bv.bv_offset as usize) },
                at - offset,
                piece,
            );
            // SAFETY: Mapped just above, unmapped in reverse order.
            unsafe { bindings::kunmap_local(addr.cast()) };
            at += piece;
            // SAFETY: `piece` is at most what remains of the current vector in `iter`.
            unsafe {
                bindings::bio_advance_iter_single(self.ptr.as_ptr(), &mut iter, piece as u32)
            };
        }
        Ok(())
    }

    /// Copies the bio's data from byte `offset` into `dst` (a write's payload).
    ///
    /// Fails with `EINVAL` when `offset + dst.len()` is past the bio's size.
    pub fn copy_to_slice(&self, offset: usize, dst: &mut [u8]) -> Result {
        let dst_ptr = dst.as_mut_ptr();
        self.for_each_range(offset, dst.len(), |bio_bytes, at, len| {
            // SAFETY: `bio_bytes` maps `len` bytes of the bio and `at + len <= dst.len()`. The
            // bytes may be changed concurrently (as in C, where a writer's buffer is not
            // locked); they are only copied.
            unsafe { core::ptr::copy_nonoverlapping(bio_bytes, dst_ptr.add(at), len) };
        })
    }

    /// Copies `src` into the bio's data from byte `offset` (a read's answer).
    ///
    /// Fails with `EINVAL` when `offset + src.len()` is past the bio's size.
    pub fn copy_from_slice(&mut self, offset: usize, src: &[u8]) -> Result {
        self.for_each_range(offset, src.len(), |bio_bytes, at, len| {
            // SAFETY: As in `copy_to_slice`, with the bio's pages as the destination; the driver
            // owns the bio, so the block layer does not read them yet.
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr().add(at), bio_bytes, len) };
        })
    }

    /// Whether the bio carries `REQ_ATOMIC` (must not be split).
    pub fn is_atomic(&self) -> bool {
        self.has_flag(bindings::req_flag_bits___REQ_ATOMIC)
    }

    /// The device the bio is addressed to.
    pub fn bdev(&self) -> &Bdev {
        // SAFETY: A bio handed to a driver names an open device, which stays open while the bio
        // is in flight, and the returned reference borrows the bio.
        unsafe { Bdev::from_raw(self.raw().bi_bdev) }
    }

    /// Notes where the bio stands (device, position, flags, chain count, completion), so that
    /// [`Bio::restore`] can put it back there after a device below consumed or moved it: how a
    /// stacking driver retries a failed bio elsewhere (`drivers/md/dm-bio-record.h`).
    pub fn record(&self) -> BioRecord {
        let raw = self.raw();
        BioRecord {
            bio: self.ptr,
            bdev: raw.bi_bdev,
            flags: raw.bi_flags,
            iter: raw.bi_iter,
            // SAFETY: The bio is ours: nobody changes its count while we read it.
            remaining: unsafe { core::ptr::addr_of!(raw.__bi_remaining.counter).read_volatile() },
            end_io: raw.bi_end_io,
            #[cfg(CONFIG_BLK_DEV_INTEGRITY)]
            integrity: raw.bi_integrity,
        }
    }

    /// Puts the bio back where `record` found it. Fails with `EINVAL`, changing nothing, when
    /// `record` was taken of another bio.
    ///
    /// The bio's data vectors must not have changed since (no driver changes those of a bio it
    /// was handed; it clones or splits instead).
    pub fn restore(&mut self, record: &BioRecord) -> Result {
        if record.bio != self.ptr {
            return Err(EINVAL);
        }
        let raw = self.raw_mut();
        raw.bi_bdev = record.bdev;
        raw.bi_flags = record.flags;
        raw.bi_iter = record.iter;
        // SAFETY: The bio is ours: nobody reads its count while we set it.
        unsafe {
            core::ptr::addr_of_mut!(raw.__bi_remaining.counter).write_volatile(record.remaining)
        };
        raw.bi_end_io = record.end_io;
        #[cfg(CONFIG_BLK_DEV_INTEGRITY)]
        {
            raw.bi_integrity = record.integrity;
        }
        Ok(())
    }

    /// Ends the bio with `result` (`bio_endio()`).
    pub fn end(self, result: Result) {
        let ptr = self.into_raw();
        // SAFETY: The bio is ours to end, once: `into_raw` gave up ownership.
        unsafe {
            (*ptr.as_ptr()).bi_status = status_of(result);
            bindings::bio_endio(ptr.as_ptr());
        }
    }
}

impl Drop for Bio {
    fn drop(&mut self) {
        // An unanswered bio fails rather than hangs its submitter.
        // SAFETY: The bio is ours to end and is not used again.
        unsafe {
            (*self.ptr.as_ptr()).bi_status = EIO.to_blk_status();
            bindings::bio_endio(self.ptr.as_ptr());
        }
    }
}

/// Where a bio stood when [`Bio::record`] noted it.
///
/// # Invariants
///
/// The fields are `bio`'s as they were when recorded; [`Bio::restore`] writes them back only to
/// `bio`, so the position stays within that bio's own data.
#[derive(Clone, Copy)]
pub struct BioRecord {
    bio: NonNull<bindings::bio>,
    bdev: *mut bindings::block_device,
    flags: u16,
    iter: bindings::bvec_iter,
    remaining: i32,
    end_io: bindings::bio_end_io_t,
    #[cfg(CONFIG_BLK_DEV_INTEGRITY)]
    integrity: *mut bindings::bio_integrity_payload,
}

// SAFETY: A record is plain data; its pointers are only compared and written back to the bio
// they came from, by whoever owns that bio.
unsafe impl Send for BioRecord {}
// SAFETY: As above; `&BioRecord` only reads.
unsafe impl Sync for BioRecord {}

/// A queue of bios the driver owns, in order (`struct bio_list`, linked through the bios
/// themselves, so queueing never allocates).
///
/// # Invariants
///
/// Every bio on `list` is owned by the list, as a [`Bio`] would own it.
pub struct BioList {
    list: bindings::bio_list,
}

// SAFETY: The list owns its bios, which may be ended from any thread.
unsafe impl Send for BioList {}

impl Default for BioList {
    fn default() -> Self {
        Self::new()
    }
}

impl BioList {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            list: bindings::bio_list {
                head: core::ptr::null_mut(),
                tail: core::ptr::null_mut(),
            },
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.list.head.is_null()
    }

    /// Queues `bio` at the tail.
    pub fn push(&mut self, bio: Bio) {
        // SAFETY: The list is valid; the bio's ownership moves into it (type invariant).
        unsafe { bindings::bio_list_add(&mut self.list, bio.into_raw().as_ptr()) };
    }

    /// Takes the bio at the head.
    pub fn pop(&mut self) -> Option<Bio> {
        // SAFETY: The list is valid.
        let bio = NonNull::new(unsafe { bindings::bio_list_pop(&mut self.list) })?;
        // SAFETY: The list owned the bio (type invariant) and hands it over.
        Some(unsafe { Bio::from_raw(bio) })
    }

    /// Takes the bio at the head if `take`, shown it, agrees.
    pub fn pop_if(&mut self, take: impl FnOnce(&Bio) -> bool) -> Option<Bio> {
        let head = NonNull::new(self.list.head)?;
        // SAFETY: The list owns the bio at its head (type invariant). The view is only lent to
        // `take` and never dropped or ended: the list keeps the bio.
        let view = core::mem::ManuallyDrop::new(unsafe { Bio::from_raw(head) });
        if take(&view) {
            self.pop()
        } else {
            None
        }
    }

    /// Moves every bio of `self` to a new list, leaving `self` empty.
    pub fn take(&mut self) -> BioList {
        core::mem::take(self)
    }
}

impl Drop for BioList {
    fn drop(&mut self) {
        // Bios still queued end with an error, as a dropped `Bio` does.
        while self.pop().is_some() {}
    }
}

/// A bio pointed at another device by [`Bio::remap`], ready to be given back.
pub struct Remapped(NonNull<bindings::bio>);

impl Remapped {
    /// The bio, for the block layer to send on.
    pub fn into_raw(self) -> NonNull<bindings::bio> {
        self.0
    }
}

/// Memory for I/O: naturally aligned, physically contiguous, in the kernel's linear mapping (so
/// one bio vector can point at all of it), and at least 64-byte aligned (so XOR can run on it).
///
/// # Invariants
///
/// `self.0` was allocated by kmalloc with its length as size, a power of two from 512 to
/// [`IO_BUFFER_MAX`] bytes (kmalloc aligns such a size to itself), and never grows.
pub struct IoBuffer(KVec<u8>);

impl IoBuffer {
    /// A zeroed page.
    pub fn new(flags: Flags) -> Result<Self, AllocError> {
        // INVARIANT: A page is a power of two within the bounds; `from_elem` allocates exactly
        // its length.
        Ok(Self(KVec::from_elem(0, IO_BUFFER_SIZE, flags)?))
    }

    /// A zeroed buffer of `len` bytes: `EINVAL` unless `len` is a power of two from 512 to
    /// [`IO_BUFFER_MAX`].
    pub fn with_len(len: usize, flags: Flags) -> Result<Self> {
        if !len.is_power_of_two() || !(512..=IO_BUFFER_MAX).contains(&len) {
            return Err(EINVAL);
        }
        // INVARIANT: Checked above; `from_elem` allocates exactly its length.
        Ok(Self(KVec::from_elem(0, len, flags)?))
    }

    fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
}

impl core::ops::Deref for IoBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl core::ops::DerefMut for IoBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// A pool the driver allocates its own bios from (`struct bio_set`), so that I/O makes progress
/// under memory pressure.
///
/// # Invariants
///
/// `self.inner` was initialised by `bioset_init()` and is exited on drop.
#[pin_data(PinnedDrop)]
pub struct BioSet {
    #[pin]
    inner: Opaque<bindings::bio_set>,
}

// SAFETY: A bio_set is used from any thread; its mempools lock internally.
unsafe impl Send for BioSet {}
// SAFETY: As above.
unsafe impl Sync for BioSet {}

/// What a bio of a [`BioSet`] carries in front of it (`front_pad`): who to tell when it ends.
#[repr(C)]
struct BioPad {
    /// The batch's state.
    owner: *const c_void,
    /// The bio's tag in its batch (below [`IoBatch::TAGS`]).
    tag: u32,
    /// For a zone append of a batch: where to store the sector the data landed at; else null.
    landed: *const Atomic<u64>,
}

const PAD: usize = core::mem::size_of::<BioPad>();

/// The pad in front of `bio`.
///
/// # Safety
///
/// `bio` must have been allocated from a [`BioSet`] (which reserves the pad).
unsafe fn pad_of(bio: *mut bindings::bio) -> *mut BioPad {
    // SAFETY: The bio set places `PAD` bytes, aligned like the bio, right before each bio.
    unsafe { bio.cast::<u8>().sub(PAD).cast() }
}

impl BioSet {
    /// A pool that keeps `pool_size` bios in reserve.
    pub fn new(pool_size: u32) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(|slot: *mut bindings::bio_set| {
                let flags = bindings::BIOSET_NEED_BVECS as i32;
                // SAFETY: `slot` is valid for writes; bioset_init() expects it zeroed.
                to_result(unsafe {
                    slot.write_bytes(0, 1);
                    bindings::bioset_init(slot, pool_size, PAD as u32, flags)
                })
            }),
        })
    }

    fn as_raw(&self) -> *mut bindings::bio_set {
        self.inner.get()
    }
}

#[pinned_drop]
impl PinnedDrop for BioSet {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Initialised by `new`; every bio of the set was freed (batches wait for theirs).
        unsafe { bindings::bioset_exit(self.as_raw()) };
    }
}

/// What a batch counts while its bios are in flight.
///
/// # Invariants
///
/// `pending` counts the bios submitted and not yet completed, plus one held by the batch until
/// it waits; `done` is completed when it drops to zero.
#[pin_data]
struct BatchState {
    pending: Atomic<u32>,
    tally: IoTally,
    #[pin]
    done: Completion,
}

/// What went wrong in a batch's or flight's bios: the first error, and the tags that failed.
struct IoTally {
    first_error: Atomic<i32>,
    failed: Atomic<u64>,
}

impl IoTally {
    const fn new() -> Self {
        Self {
            first_error: Atomic::new(0),
            failed: Atomic::new(0),
        }
    }

    /// Records a failed bio with tag `tag` (below [`IoBatch::TAGS`], as `submit` checks).
    fn note(&self, tag: u32, e: Error) {
        let _ = self.first_error.cmpxchg(0, e.to_errno(), Relaxed);
        let bit = 1u64.checked_shl(tag).unwrap_or(0);
        let mut seen = self.failed.load(Relaxed);
        while let Err(now) = self.failed.cmpxchg(seen, seen | bit, Relaxed) {
            seen = now;
        }
    }

    /// How the bios went, once they have all completed.
    fn outcome(&self) -> BatchOutcome {
        let errno = self.first_error.load(Relaxed);
        BatchOutcome {
            result: if errno == 0 {
                Ok(())
            } else {
                Err(Error::from_errno(errno))
            },
            failed: self.failed.load(Relaxed),
        }
    }
}

/// The operation of a read (`write` is `None`) or a write, FUA when `write` is `Some(true)`.
fn io_opf(write: Option<bool>) -> u32 {
    match write {
        None => bindings::req_op_REQ_OP_READ,
        Some(false) => bindings::req_op_REQ_OP_WRITE,
        Some(true) => bindings::req_op_REQ_OP_WRITE | (1 << bindings::req_flag_bits___REQ_FUA),
    }
}

/// A bio of `set` for all of `buf`, from or to `sector` of `bdev`, with `pad` in front of it and
/// `end_io` as its completion; not submitted yet.
///
/// # Safety
///
/// `bdev` must be open and `set` initialised. `buf`, and what `pad.owner` points to, must stay
/// valid, with nothing else writing `buf`, until `end_io` has run for the bio, and `end_io` must
/// expect such a pad.
unsafe fn io_bio(
    set: &BioSet,
    bdev: &Bdev,
    opf: u32,
    sector: u64,
    buf: &IoBuffer,
    pad: BioPad,
    end_io: unsafe extern "C" fn(*mut bindings::bio),
) -> Result<NonNull<bindings::bio>> {
    // SAFETY: The caller's promise, for the one buffer.
    unsafe { io_bio_of(set, bdev, opf, sector, core::iter::once(buf), pad, end_io) }
}

/// [`io_bio`] for several buffers, one after the other on the device: one bio vector each.
/// Fails with `EINVAL` for none or more than `BIO_MAX_VECS`.
///
/// # Safety
///
/// As [`io_bio`], for every buffer.
unsafe fn io_bio_of<'a>(
    set: &BioSet,
    bdev: &Bdev,
    opf: u32,
    sector: u64,
    bufs: impl ExactSizeIterator<Item = &'a IoBuffer>,
    pad: BioPad,
    end_io: unsafe extern "C" fn(*mut bindings::bio),
) -> Result<NonNull<bindings::bio>> {
    let vecs = bufs.len();
    if vecs == 0 || vecs > bindings::BIO_MAX_VECS as usize {
        return Err(EINVAL);
    }
    // SAFETY: `bdev` is open and the set initialised (the caller's promise; the set has bio
    // vector pools, `BIOSET_NEED_BVECS`); GFP_NOIO may sleep, we may too.
    let bio = unsafe {
        bindings::bio_alloc_bioset(
            bdev.as_raw(),
            vecs as u16,
            opf,
            GFP_NOIO.as_raw(),
            set.as_raw(),
        )
    };
    let bio = NonNull::new(bio).ok_or(ENOMEM)?;
    // SAFETY: A fresh bio with a vector for each buffer. Each is an `IoBuffer` (physically
    // contiguous: one vector holds it, and at most 1 MiB, so `vecs` of them stay far below the
    // 4 GiB a bio's size can count) that outlives the bio, as `pad`'s owner does (the caller's
    // promise); the set reserved room for the pad.
    unsafe {
        let raw = bio.as_ptr();
        (*raw).bi_iter.bi_sector = sector;
        for buf in bufs {
            bindings::bio_add_virt_nofail(raw, buf.as_ptr().cast_mut().cast(), buf.len() as u32);
        }
        pad_of(raw).write(pad);
        (*raw).bi_end_io = Some(end_io);
    }
    Ok(bio)
}

/// I/O to devices below, submitted together and waited for together.
///
/// Only [`IoBatch::run`] makes one, and it waits for every bio before it returns: the buffers and
/// devices a batch borrows for `'env` outlive its I/O.
///
/// # Invariants
///
/// `plug`, when `Some`, is the plug [`IoBatch::run`] started on its stack frame for the current
/// task, not finished yet. (The pointer also keeps the batch on its task: it is not `Send`.)
pub struct IoBatch<'env> {
    state: Pin<KBox<BatchState>>,
    set: &'env BioSet,
    plug: Option<NonNull<bindings::blk_plug>>,
    _env: PhantomData<&'env mut &'env ()>,
}

/// How a batch's I/O went.
#[derive(Clone, Copy, Debug)]
pub struct BatchOutcome {
    /// The first error of any bio of the batch.
    pub result: Result,
    /// Bit `t` is set when a bio submitted with tag `t` failed.
    pub failed: u64,
}

impl<'env> IoBatch<'env> {
    /// Tags are below this: each is a bit of [`BatchOutcome::failed`].
    ///
    /// A tag is the caller's name for what a bio's failure means (a RAID member, say), so that a
    /// batch of any size reports failures by what failed, not by which bio.
    pub const TAGS: u32 = u64::BITS;

    /// Runs `f` with a new batch, then waits for all I/O it submitted. Returns what `f` returned
    /// and how the I/O went.
    ///
    /// Fails with `ENOMEM` (without calling `f`) when the batch's state cannot be allocated.
    pub fn run<T>(
        set: &'env BioSet,
        f: impl FnOnce(&mut IoBatch<'env>) -> T,
    ) -> Result<(T, BatchOutcome)> {
        crate::task::might_sleep();
        let state = KBox::pin_init(
            pin_init!(BatchState {
                pending: Atomic::new(1),
                tally: IoTally::new(),
                done <- Completion::new(),
            }),
            GFP_NOIO,
        )?;
        // Plugged: the bios of a batch reach each device's queue together, so that adjacent
        // ones merge into one request.
        let plug = core::pin::pin!(Opaque::<bindings::blk_plug>::uninit());
        // SAFETY: `plug` is pinned on this stack frame and finished, by this task, before the
        // frame goes (below, or by `unplug`). A plug of the caller's, if any, stays the task's
        // (this one is unused).
        unsafe { bindings::blk_start_plug(plug.get()) };
        // INVARIANT: The plug was just started, on this frame, for this task.
        let mut batch = IoBatch {
            state,
            set,
            plug: NonNull::new(plug.get()),
            _env: PhantomData,
        };
        let value = f(&mut batch);
        batch.unplug();
        batch.put();
        batch.state.done.wait_for_completion();
        Ok((value, batch.state.tally.outcome()))
    }

    /// Sends the bios submitted so far on to their devices now, and those submitted later as
    /// they come, instead of together when `run`'s closure returns: their I/O goes on while the
    /// closure does more (prepares the next batch, say). `run` still waits for all of it.
    pub fn unplug(&mut self) {
        if let Some(plug) = self.plug.take() {
            // SAFETY: By the type invariant `run` started this plug for this task and nobody has
            // finished it; `take` makes this the only finish.
            unsafe { bindings::blk_finish_plug(plug.as_ptr()) };
        }
    }

    fn put(&self) {
        if self.state.pending.fetch_sub(1, Full) == 1 {
            self.state.done.complete_all();
        }
    }

    /// Reads `buf.len()` bytes from `bdev` at `sector` into `buf`; a failure sets bit `tag` of
    /// [`BatchOutcome::failed`].
    ///
    /// Fails with `EINVAL` (submitting nothing) for a tag of [`IoBatch::TAGS`] or more.
    pub fn read(
        &mut self,
        bdev: &'env Bdev,
        sector: u64,
        buf: &'env mut IoBuffer,
        tag: u32,
    ) -> Result {
        self.submit(bdev, io_opf(None), sector, buf, tag)
    }

    /// Writes `buf` to `bdev` at `sector`; with `fua`, stable when the batch ends. A failure sets
    /// bit `tag` of [`BatchOutcome::failed`].
    ///
    /// Fails with `EINVAL` (submitting nothing) for a tag of [`IoBatch::TAGS`] or more.
    pub fn write(
        &mut self,
        bdev: &'env Bdev,
        sector: u64,
        buf: &'env IoBuffer,
        fua: bool,
        tag: u32,
    ) -> Result {
        self.submit(bdev, io_opf(Some(fua)), sector, buf, tag)
    }

    /// Writes `bufs`, one after the other, to `bdev` from `sector` in one bio (at most
    /// `BIO_MAX_VECS` buffers: `EINVAL` otherwise, or for none); with `fua`, stable when the batch
    /// ends. A failure sets bit `tag` of [`BatchOutcome::failed`].
    pub fn write_gather<I>(
        &mut self,
        bdev: &'env Bdev,
        sector: u64,
        bufs: I,
        fua: bool,
        tag: u32,
    ) -> Result
    where
        I: IntoIterator<Item = &'env IoBuffer>,
        I::IntoIter: ExactSizeIterator,
    {
        self.submit_of(bdev, io_opf(Some(fua)), sector, bufs.into_iter(), tag)
    }

    /// Reads into `bufs`, one after the other, from `bdev` at `sector` in one bio (at most
    /// `BIO_MAX_VECS` buffers: `EINVAL` otherwise, or for none). A failure sets bit `tag` of
    /// [`BatchOutcome::failed`].
    pub fn read_scatter<I>(&mut self, bdev: &'env Bdev, sector: u64, bufs: I, tag: u32) -> Result
    where
        I: IntoIterator<Item = &'env mut IoBuffer>,
        I::IntoIter: ExactSizeIterator,
    {
        // Shared from here: the bio is the only writer until the batch ends.
        let bufs = bufs.into_iter().map(|b| &*b);
        self.submit_of(bdev, io_opf(None), sector, bufs, tag)
    }

    /// Appends `bufs`, one after the other, to the zone of `bdev` that starts at sector
    /// `zone_start`, in one zone append (`REQ_OP_ZONE_APPEND`): the device writes them at the
    /// zone's write pointer, wherever that is when the bio reaches it. When the batch has ended,
    /// `landed` holds the first sector written, or `u64::MAX` if the append failed (which also
    /// sets bit `tag` of [`BatchOutcome::failed`]). Appends to one zone in flight together land
    /// in any order, each in one piece; with `fua`, stable when the batch ends.
    ///
    /// Fails with `EINVAL` (submitting nothing) when `bdev` is not zoned, `zone_start` is not
    /// the start of a zone, the buffers are none, more than the device takes in one request
    /// (segments), or longer than its largest zone append
    /// ([`ZoneLimits::max_append_sectors`](super::zoned::ZoneLimits)), or for a bad tag: the
    /// block layer never splits an append, it would fail it.
    pub fn append_gather<I>(
        &mut self,
        bdev: &'env Bdev,
        zone_start: u64,
        bufs: I,
        fua: bool,
        landed: &'env Atomic<u64>,
        tag: u32,
    ) -> Result
    where
        I: IntoIterator<Item = &'env IoBuffer>,
        I::IntoIter: ExactSizeIterator + Clone,
    {
        let bufs = bufs.into_iter();
        let limits = bdev.zone_limits().ok_or(EINVAL)?;
        let bytes: usize = bufs.clone().map(|b| b.len()).sum();
        let sectors = (bytes >> SECTOR_SHIFT) as u64;
        // No segment is shorter than a page: a page each is the most segments they can take.
        let segments: usize = bufs.clone().map(|b| b.len().div_ceil(IO_BUFFER_SIZE)).sum();
        let max_segments = bdev.max_segments() as usize;
        if zone_start & limits.zone_sectors.wrapping_sub(1) != 0
            || zone_start >= bdev.sectors()
            || segments > max_segments
            || sectors > u64::from(limits.max_append_sectors)
        {
            return Err(EINVAL);
        }
        let mut opf = bindings::req_op_REQ_OP_ZONE_APPEND;
        if fua {
            opf |= 1 << bindings::req_flag_bits___REQ_FUA;
        }
        landed.store(u64::MAX, Relaxed);
        self.submit_landing(bdev, opf, zone_start, bufs, tag, Some(landed))
    }

    fn submit(
        &mut self,
        bdev: &'env Bdev,
        opf: u32,
        sector: u64,
        buf: &'env IoBuffer,
        tag: u32,
    ) -> Result {
        self.submit_of(bdev, opf, sector, core::iter::once(buf), tag)
    }

    fn submit_of(
        &mut self,
        bdev: &'env Bdev,
        opf: u32,
        sector: u64,
        bufs: impl ExactSizeIterator<Item = &'env IoBuffer>,
        tag: u32,
    ) -> Result {
        self.submit_landing(bdev, opf, sector, bufs, tag, None)
    }

    fn submit_landing(
        &mut self,
        bdev: &'env Bdev,
        opf: u32,
        sector: u64,
        bufs: impl ExactSizeIterator<Item = &'env IoBuffer>,
        tag: u32,
        landed: Option<&'env Atomic<u64>>,
    ) -> Result {
        if tag >= Self::TAGS {
            return Err(EINVAL);
        }
        let state: *const BatchState = &*self.state;
        let pad = BioPad {
            owner: state.cast(),
            tag,
            landed: landed.map_or(core::ptr::null(), core::ptr::from_ref),
        };
        // SAFETY: `bdev` is open and the set initialised. The buffers are borrowed for `'env`
        // (reads' mutably: nothing else touches them), which outlives the bio (`run` waits for
        // it), and the batch state and `landed` outlive it for the same reason; `batch_end_io`
        // expects a batch state as the pad's owner.
        let bio = unsafe { io_bio_of(self.set, bdev, opf, sector, bufs, pad, batch_end_io) }?;
        self.state.pending.fetch_add(1, Relaxed);
        // SAFETY: The bio is complete; it is the block layer's until `batch_end_io`.
        unsafe { bindings::submit_bio(bio.as_ptr()) };
        Ok(())
    }
}

/// The completion (`bi_end_io`) of the bios an [`IoBatch`] submits.
///
/// # Safety
///
/// Called by the block layer only, once, for a bio `IoBatch::submit` set up.
unsafe extern "C" fn batch_end_io(bio: *mut bindings::bio) {
    // SAFETY: Set up by `IoBatch::submit`: the pad names the batch state, alive until the batch's
    // count reaches zero, which this bio's completion is part of.
    let (state, tag, status, landed) = unsafe {
        let pad = &*pad_of(bio);
        (
            &*pad.owner.cast::<BatchState>(),
            pad.tag,
            (*bio).bi_status,
            pad.landed,
        )
    };
    let result = result_of(status);
    if !landed.is_null() {
        // The block layer has set the position of a completed zone append to where its data
        // landed.
        let sector = match result {
            // SAFETY: Our bio, not put yet.
            Ok(()) => unsafe { (*bio).bi_iter.bi_sector },
            Err(_) => u64::MAX,
        };
        // SAFETY: `submit_landing` took `landed` for `'env`, which the batch outlives, and the
        // batch waits for this bio.
        unsafe { &*landed }.store(sector, Relaxed);
    }
    if let Err(e) = result {
        state.tally.note(tag, e);
    }
    // SAFETY: Our bio, done with.
    unsafe { bindings::bio_put(bio) };
    if state.pending.fetch_sub(1, Full) == 1 {
        state.done.complete_all();
    }
}

/// What a [`Flight`] needs from its owner, which it owns (an `Arc` of the driver's device, say):
/// the bio set its bios come from, the devices its I/O goes to, and whom to tell when all of it
/// has landed. Owning them, the flight keeps them alive for its I/O even if it is leaked.
pub trait FlightOwner: Send + Sync + 'static {
    /// The bio set the flight's bios are allocated from.
    fn bio_set(&self) -> &BioSet;

    /// The device for I/O tagged `tag`.
    fn device(&self, tag: u32) -> Option<&Bdev>;

    /// Called once, when the flight's last bio has completed, in that bio's completion context
    /// (an interrupt, maybe): it must not sleep. [`Flight::has_landed`] is true by then; the
    /// buffers are the driver's again once [`Flight::wait`] has returned.
    fn landed(&self);
}

/// One I/O of a [`Flight`]: buffer `buf` of the flight from or to `sector` of the device
/// tagged `tag` (see [`FlightOwner::device`]).
#[derive(Clone, Copy, Debug)]
pub struct FlightIo {
    /// The device's tag; a failure sets this bit of [`BatchOutcome::failed`].
    pub tag: u32,
    /// Where on the device.
    pub sector: u64,
    /// The flight's buffer.
    pub buf: usize,
    /// `None`: read into the buffer; `Some(fua)`: write it.
    pub write: Option<bool>,
}

/// A flight's state, shared with its bios.
///
/// # Invariants
///
/// `pending` counts the bios submitted and not completed, plus one until the flight is launched;
/// `done` is completed, after `owner.landed()` returned, when it drops to zero.
#[pin_data]
struct FlightState<T> {
    owner: T,
    bufs: KVec<IoBuffer>,
    pending: Atomic<u32>,
    tally: IoTally,
    #[pin]
    done: Completion,
}

/// I/O into and out of buffers it owns, sent to the devices below while the driver goes on:
/// not waited for (unlike an [`IoBatch`]), it tells its owner when it has landed.
///
/// The buffers and the owner are the driver's again once the flight has landed (or before it is
/// launched); dropping a flight in the air waits for it.
///
/// # Invariants
///
/// Once `launched`, bios of the flight may point into `state.bufs` and at `state` until `done`
/// is completed: until then nothing else writes `bufs`, and `owner` is only shared.
pub struct Flight<T: FlightOwner> {
    state: Pin<KBox<FlightState<T>>>,
    launched: bool,
}

impl<T: FlightOwner> Flight<T> {
    /// A flight of `owner`'s, with `bufs` for its I/O.
    pub fn new(owner: T, bufs: KVec<IoBuffer>, flags: Flags) -> Result<Self> {
        let state = KBox::pin_init(
            pin_init!(FlightState {
                owner,
                bufs,
                pending: Atomic::new(1),
                tally: IoTally::new(),
                done <- Completion::new(),
            }),
            flags,
        )?;
        Ok(Self {
            state,
            launched: false,
        })
    }

    /// The owner.
    pub fn owner(&self) -> &T {
        &self.state.owner
    }

    /// The number of buffers the flight has.
    pub fn buffers(&self) -> usize {
        self.state.bufs.len()
    }

    /// Whether every bio of the launched flight has completed: [`Flight::wait`] returns at once,
    /// or nearly (the owner may still be being told).
    pub fn has_landed(&self) -> bool {
        self.launched && self.state.pending.load(Acquire) == 0
    }

    /// Waits for the flight to land (at once if it has, or was never launched).
    pub fn wait(&mut self) {
        if self.launched {
            self.state.done.wait_for_completion();
        }
    }

    /// The owner and the buffers, once the flight has landed (see [`Flight::wait`]) or before
    /// it is launched; `EBUSY` while it is in the air.
    pub fn parts_mut(&mut self) -> Result<(&mut T, &mut KVec<IoBuffer>)> {
        if self.launched && !self.state.done.is_done() {
            return Err(EBUSY);
        }
        // SAFETY: Neither field is structurally pinned. No bio points into them any more (the
        // flight landed, `done` says) or yet (it was not launched): type invariant.
        let state = unsafe { self.state.as_mut().get_unchecked_mut() };
        Ok((&mut state.owner, &mut state.bufs))
    }

    /// How the flight's I/O went, once it has landed.
    pub fn outcome(&self) -> Option<BatchOutcome> {
        if !self.launched || !self.state.done.is_done() {
            return None;
        }
        Some(self.state.tally.outcome())
    }

    /// Sends on its way, together, the I/O that `ios` passes to `send` (looking at the owner),
    /// and launches the flight: the owner is told when it has landed. Fails with `EBUSY` if it
    /// was launched before, `EINVAL` for a bad tag, buffer or device, and `ENOMEM`, or with what
    /// `ios` returns; after a failure the I/O sent so far still flies (the flight is launched all
    /// the same, and lands).
    pub fn launch(
        &mut self,
        ios: impl FnOnce(&T, &mut dyn FnMut(FlightIo) -> Result) -> Result,
    ) -> Result {
        if self.launched {
            return Err(EBUSY);
        }
        // INVARIANT: From here bios may point into the state; it is launched even on failure.
        self.launched = true;
        let plug = core::pin::pin!(Opaque::<bindings::blk_plug>::uninit());
        // SAFETY: `plug` is pinned on this stack frame and finished below, by this task.
        unsafe { bindings::blk_start_plug(plug.get()) };
        let state: *const FlightState<T> = &*self.state;
        let sent = ios(&self.state.owner, &mut |io| self.submit(io, state));
        // SAFETY: Started above, on this frame.
        unsafe { bindings::blk_finish_plug(plug.get()) };
        // SAFETY: The state outlives every bio (`done` is waited for before it goes).
        unsafe { flight_put::<T>(state) };
        sent
    }

    fn submit(&self, io: FlightIo, state: *const FlightState<T>) -> Result {
        if io.tag >= IoBatch::TAGS {
            return Err(EINVAL);
        }
        let owner = &self.state.owner;
        let bdev = owner.device(io.tag).ok_or(EINVAL)?;
        let buf = self.state.bufs.get(io.buf).ok_or(EINVAL)?;
        let pad = BioPad {
            owner: state.cast(),
            tag: io.tag,
            landed: core::ptr::null(),
        };
        // SAFETY: `bdev` is open and the set initialised (the owner keeps both, and the flight
        // keeps the owner). `buf` is in the flight's state, which nothing else writes until the
        // flight lands and which outlives the bio: type invariant. `flight_end_io::<T>` expects
        // this flight's state as the pad's owner.
        let bio = unsafe {
            io_bio(
                owner.bio_set(),
                bdev,
                io_opf(io.write),
                io.sector,
                buf,
                pad,
                flight_end_io::<T>,
            )
        }?;
        self.state.pending.fetch_add(1, Relaxed);
        // SAFETY: The bio is complete; it is the block layer's until `flight_end_io`.
        unsafe { bindings::submit_bio(bio.as_ptr()) };
        Ok(())
    }
}

impl<T: FlightOwner> Drop for Flight<T> {
    fn drop(&mut self) {
        // The bios point into the state: it stays until they have all completed.
        self.wait();
    }
}

/// Drops one count of a flight; the last tells the owner, then completes `done`.
///
/// # Safety
///
/// `state` is a live flight state and the caller holds one of its counts.
unsafe fn flight_put<T: FlightOwner>(state: *const FlightState<T>) {
    // SAFETY: Live while the caller's count is held; after the last one is dropped, until `done`
    // is completed, as the flight waits for that before the state goes.
    let state = unsafe { &*state };
    if state.pending.fetch_sub(1, Full) == 1 {
        state.owner.landed();
        state.done.complete_all();
    }
}

/// The completion (`bi_end_io`) of the bios a [`Flight`] submits.
///
/// # Safety
///
/// Called by the block layer only, once, for a bio `Flight::submit` set up.
unsafe extern "C" fn flight_end_io<T: FlightOwner>(bio: *mut bindings::bio) {
    // SAFETY: Set up by `Flight::submit`: the pad names the flight's state, live while this bio's
    // count is held.
    let (state, tag, status) = unsafe {
        let pad = &*pad_of(bio);
        (
            pad.owner.cast::<FlightState<T>>(),
            pad.tag,
            (*bio).bi_status,
        )
    };
    if let Err(e) = result_of(status) {
        // SAFETY: As above.
        unsafe { &*state }.tally.note(tag, e);
    }
    // SAFETY: Our bio, done with.
    unsafe { bindings::bio_put(bio) };
    // SAFETY: This bio held a count.
    unsafe { flight_put::<T>(state) };
}

#[macros::kunit_tests(rust44_bio)]
mod tests {
    use super::*;

    /// A bio of `set` with no device and no data, standing at `sector` for `size` bytes.
    fn bare_bio(set: &BioSet, sector: u64, size: u32) -> Result<Bio> {
        let opf = bindings::req_op_REQ_OP_READ;
        // SAFETY: The set is initialised; a bio may have no device until it is submitted.
        let raw = unsafe {
            bindings::bio_alloc_bioset(
                core::ptr::null_mut(),
                0,
                opf,
                GFP_KERNEL.as_raw(),
                set.as_raw(),
            )
        };
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: A fresh bio, ours; the tests give it back with `put` and never submit it.
        let mut bio = unsafe { Bio::from_raw(raw) };
        bio.raw_mut().bi_iter.bi_sector = sector;
        bio.raw_mut().bi_iter.bi_size = size;
        Ok(bio)
    }

    fn put(bio: Bio) {
        // SAFETY: Never submitted: the last reference, dropped without ending it.
        unsafe { bindings::bio_put(bio.into_raw().as_ptr()) };
    }

    #[test]
    fn copies_reach_any_range_of_a_bio_of_several_pages() -> Result {
        let set = KBox::pin_init(BioSet::new(2), GFP_KERNEL)?;
        let pages = [
            IoBuffer::new(GFP_KERNEL)?,
            IoBuffer::new(GFP_KERNEL)?,
            IoBuffer::new(GFP_KERNEL)?,
        ];
        let total = 3 * IO_BUFFER_SIZE;
        // SAFETY: The set is initialised; the bio is never submitted.
        let raw = unsafe {
            bindings::bio_alloc_bioset(
                core::ptr::null_mut(),
                3,
                bindings::req_op_REQ_OP_READ,
                GFP_KERNEL.as_raw(),
                set.as_raw(),
            )
        };
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        for page in &pages {
            // SAFETY: Three vectors were allocated; each page outlives the bio (put below).
            unsafe {
                bindings::bio_add_virt_nofail(raw.as_ptr(), page.as_ptr().cast_mut().cast(), 4096)
            };
        }
        // SAFETY: A fresh bio, ours; given back with `put`.
        let mut bio = unsafe { Bio::from_raw(raw) };
        assert_eq!(bio.size() as usize, total);
        let mut pattern = KVec::with_capacity(total, GFP_KERNEL)?;
        for i in 0..total {
            pattern.push((i * 7 % 251) as u8, GFP_KERNEL)?;
        }
        bio.copy_from_slice(0, &pattern)?;
        for (i, page) in pages.iter().enumerate() {
            assert!(page[..] == pattern[i * 4096..(i + 1) * 4096]);
        }
        let mut out = KVec::from_elem(0u8, total, GFP_KERNEL)?;
        for (offset, len) in [(0, 1), (4095, 2), (4000, 4200), (8191, 4097), (12287, 1)] {
            bio.copy_to_slice(offset, &mut out[..len])?;
            assert!(out[..len] == pattern[offset..offset + len]);
        }
        assert_eq!(bio.copy_to_slice(total - 10, &mut out[..11]), Err(EINVAL));
        // A write into the middle lands on both pages it straddles, and nowhere else.
        bio.copy_from_slice(4090, &[0xa5; 12])?;
        assert!(pages[0][4090..] == [0xa5; 6] && pages[1][..6] == [0xa5; 6]);
        assert!(pages[0][4089] == pattern[4089] && pages[1][6] == pattern[4102]);
        put(bio);
        Ok(())
    }

    #[test]
    fn a_record_puts_its_own_bio_back_and_no_other() -> Result {
        let set = KBox::pin_init(BioSet::new(2), GFP_KERNEL)?;
        let mut first = bare_bio(&set, 8, 4096)?;
        let mut second = bare_bio(&set, 64, 512)?;
        let record = first.record();
        // What a device below does to a bio it completes: moves it on, to its own device.
        first.raw_mut().bi_iter.bi_sector = 16;
        first.raw_mut().bi_iter.bi_size = 0;
        first.raw_mut().bi_flags |= 1 << bindings::BIO_REMAPPED;
        assert_eq!(second.restore(&record), Err(EINVAL));
        assert_eq!((second.sector(), second.size()), (64, 512));
        assert_eq!(first.restore(&record), Ok(()));
        assert_eq!((first.sector(), first.size()), (8, 4096));
        assert_eq!(first.raw().bi_flags & (1 << bindings::BIO_REMAPPED), 0);
        put(first);
        put(second);
        Ok(())
    }
}
