// SPDX-License-Identifier: GPL-2.0

//! What a driver reads off a request to carry it out: its operation, position, length and flags,
//! and its data as a table of `bio_vec`s that an `iov_iter` can walk.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use crate::time::{Instant, Monotonic};
use crate::{
    alloc::{Flags, KVec},
    bindings,
    block::{
        disk::DiskRef,
        mq::{HwQueueId, Operations, Request},
    },
    error::{code::EINVAL, Result},
    sync::aref::ARef,
};
use core::marker::PhantomData;

/// The operation a request asks for (`req_op()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqOp {
    /// Read data.
    Read,
    /// Write data.
    Write,
    /// Flush the volatile write cache.
    Flush,
    /// Discard a range: its contents become undefined.
    Discard,
    /// Write zeroes to a range, without a data buffer.
    WriteZeroes,
    /// Any other operation (zone management, driver private, ...), as its raw value.
    Other(u32),
}

impl ReqOp {
    /// Decodes the operation part of a request's `cmd_flags`.
    pub fn from_cmd_flags(cmd_flags: u32) -> Self {
        let op = cmd_flags & ((1 << bindings::REQ_OP_BITS) - 1);
        match op {
            bindings::req_op_REQ_OP_READ => Self::Read,
            bindings::req_op_REQ_OP_WRITE => Self::Write,
            bindings::req_op_REQ_OP_FLUSH => Self::Flush,
            bindings::req_op_REQ_OP_DISCARD => Self::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Self::WriteZeroes,
            other => Self::Other(other),
        }
    }

    /// The C `enum req_op` value (for trace events).
    pub fn raw(self) -> u32 {
        match self {
            Self::Read => bindings::req_op_REQ_OP_READ,
            Self::Write => bindings::req_op_REQ_OP_WRITE,
            Self::Flush => bindings::req_op_REQ_OP_FLUSH,
            Self::Discard => bindings::req_op_REQ_OP_DISCARD,
            Self::WriteZeroes => bindings::req_op_REQ_OP_WRITE_ZEROES,
            Self::Other(op) => op,
        }
    }

    /// Whether the operation changes the medium (`op_is_write()`: odd operations write).
    pub fn is_write(self) -> bool {
        self.raw() & 1 == 1
    }
}

impl<T: Operations> Request<T> {
    fn raw(&self) -> *mut bindings::request {
        // `Request<T>` is a transparent wrapper of `struct request`.
        core::ptr::from_ref(self).cast_mut().cast()
    }

    fn cmd_flags(&self) -> u32 {
        // SAFETY: By the type invariant `self` wraps a valid request; the driver owns it while it
        // holds an `ARef`, so the block layer does not change `cmd_flags` underneath.
        unsafe { (*self.raw()).cmd_flags }
    }

    fn has_flag(&self, bit: u32) -> bool {
        self.cmd_flags() & (1 << bit) != 0
    }

    /// The operation this request asks for.
    pub fn op(&self) -> ReqOp {
        ReqOp::from_cmd_flags(self.cmd_flags())
    }

    /// The first sector (512 bytes) the request addresses (`blk_rq_pos()`).
    pub fn sector(&self) -> u64 {
        // SAFETY: As in `cmd_flags`.
        unsafe { (*self.raw()).__sector }
    }

    /// The number of bytes left in the request (`blk_rq_bytes()`).
    pub fn bytes(&self) -> u32 {
        // SAFETY: As in `cmd_flags`.
        unsafe { (*self.raw()).__data_len }
    }

    /// When the block layer started the request (`rq->start_time_ns`, monotonic time); `None`
    /// when it did not stamp it (the queue keeps no I/O statistics).
    pub fn start_time(&self) -> Option<Instant<Monotonic>> {
        // SAFETY: As in `cmd_flags`.
        let ns = unsafe { (*self.raw()).start_time_ns };
        // `ktime_get_ns()` values are at most `KTIME_MAX`; one out of range is no stamp either.
        let ns = i64::try_from(ns).ok().filter(|&ns| ns > 0)?;
        // SAFETY: `ns` is in `1..=KTIME_MAX`.
        Some(unsafe { Instant::from_ktime(ns) })
    }

    /// The I/O priority the submitter asked for (`req_get_ioprio()`).
    pub fn ioprio(&self) -> u16 {
        // SAFETY: As in `cmd_flags`; the first bio, if any, is valid while the request is owned.
        unsafe {
            let bio = (*self.raw()).bio;
            if bio.is_null() {
                0
            } else {
                (*bio).bi_ioprio
            }
        }
    }

    /// Forced unit access: the data must be on stable media before completion (`REQ_FUA`).
    pub fn is_fua(&self) -> bool {
        self.has_flag(bindings::req_flag_bits___REQ_FUA)
    }

    /// The volatile cache must be flushed before this request runs (`REQ_PREFLUSH`).
    pub fn is_preflush(&self) -> bool {
        self.has_flag(bindings::req_flag_bits___REQ_PREFLUSH)
    }

    /// A write-zeroes request that must not deallocate the range (`REQ_NOUNMAP`).
    pub fn is_nounmap(&self) -> bool {
        self.has_flag(bindings::req_flag_bits___REQ_NOUNMAP)
    }

    /// The submitter polls for this request's completion (`REQ_POLLED`).
    pub fn is_polled(&self) -> bool {
        self.has_flag(bindings::req_flag_bits___REQ_POLLED)
    }

    /// Copies the request's data segments, in order, into a table of `bio_vec`s.
    ///
    /// Bios may start in the middle of a `bio_vec` (after splitting), so the table is built from
    /// each bio's iterator rather than copied from `bi_io_vec`. The pages stay owned by the
    /// request: the table must not be used after the request ends.
    pub fn segments(&self, flags: Flags) -> Result<RequestSegments> {
        let mut count = 0usize;
        self.for_each_segment(|_| count += 1);
        let mut table = KVec::with_capacity(count, flags)?;
        self.for_each_segment(|bvec| {
            // Cannot fail: the capacity was reserved for exactly `count` entries.
            let _ = table.push_within_capacity(bvec);
        });
        Ok(RequestSegments {
            table,
            bytes: self.bytes() as usize,
        })
    }

    fn for_each_segment(&self, mut f: impl FnMut(bindings::bio_vec)) {
        // SAFETY: The driver owns the request, so its bio chain is stable. Each bio's `bi_iter`
        // describes `bi_size` bytes starting `bi_bvec_done` bytes into `bi_io_vec[bi_idx]`; the
        // loop stays inside the `bio_vec`s that `bi_size` covers.
        unsafe {
            let mut bio = (*self.raw()).bio;
            while !bio.is_null() {
                let iter = (*bio).bi_iter;
                let mut left = iter.bi_size;
                let mut idx = iter.bi_idx as usize;
                let mut done = iter.bi_offset;
                while left > 0 {
                    let bv = *(*bio).bi_io_vec.add(idx);
                    let len = core::cmp::min(bv.bv_len - done, left);
                    f(bindings::bio_vec {
                        bv_page: bv.bv_page,
                        bv_len: len,
                        bv_offset: bv.bv_offset + done,
                    });
                    left -= len;
                    done = 0;
                    idx += 1;
                }
                bio = (*bio).bi_next;
            }
        }
    }

    /// The hardware queue the request was queued on (`rq->mq_hctx`): its index and whether it
    /// is a poll queue.
    pub fn hw_queue(&self) -> HwQueueId {
        // SAFETY: A request owned by the driver has been dispatched on a hardware context,
        // which stays valid while the request is in flight.
        unsafe { HwQueueId::from_hctx((*self.raw()).mq_hctx) }
    }

    /// Calls `f` for each piece of the request's data buffer, in order, with the piece's
    /// offset from the start of the request. A piece never crosses a page boundary of the
    /// buffer. Stops at the first error `f` returns.
    pub fn for_each_data_segment(
        &self,
        mut f: impl FnMut(usize, &mut DataSegment<'_>) -> Result,
    ) -> Result {
        let mut result = Ok(());
        let mut pos = 0usize;
        let page_size = bindings::PAGE_SIZE;
        self.for_each_segment(|bvec| {
            if result.is_err() {
                return;
            }
            let mut off = bvec.bv_offset as usize;
            let mut left = bvec.bv_len as usize;
            while left > 0 {
                let in_page = off % page_size;
                let len = core::cmp::min(left, page_size - in_page);
                // SAFETY: A `bio_vec` covers `bv_len` bytes of physically contiguous pages
                // starting `bv_offset` into `bv_page`, so the page `off / PAGE_SIZE` after it
                // is part of the same buffer (`struct page`s of contiguous memory are
                // contiguous with SPARSEMEM_VMEMMAP and FLATMEM).
                let page = unsafe { bvec.bv_page.add(off / page_size) };
                // SAFETY: The page belongs to the request's buffer, which the driver owns until
                // it ends the request; the mapping is undone before the segment goes away.
                let base = unsafe { bindings::kmap_local_page(page) }.cast::<u8>();
                let mut seg = DataSegment {
                    // SAFETY: `in_page + len <= PAGE_SIZE`: inside the mapped page.
                    ptr: unsafe { base.add(in_page) },
                    len,
                    _p: PhantomData,
                };
                let ret = f(pos, &mut seg);
                // SAFETY: `base` was returned by `kmap_local_page` above, and mappings are
                // undone in reverse order (this is the only one open).
                unsafe { bindings::kunmap_local(base.cast()) };
                if let Err(e) = ret {
                    result = Err(e);
                    return;
                }
                pos += len;
                off += len;
                left -= len;
            }
        });
        result
    }

    /// The disk the request was queued on.
    pub fn disk(&self) -> &DiskRef {
        // SAFETY: A request in flight belongs to a live queue of an added disk, which stays
        // alive at least as long as the request does (`del_gendisk()` drains requests first).
        unsafe { DiskRef::from_raw((*(*self.raw()).q).disk) }
    }

    /// Zero-fills every data buffer of the request, so a failed read hands out no stale data.
    pub fn zero_fill(&self) {
        // SAFETY: The driver owns the request and its bio chain.
        unsafe {
            let mut bio = (*self.raw()).bio;
            while !bio.is_null() {
                bindings::zero_fill_bio(bio);
                bio = (*bio).bi_next;
            }
        }
    }

    /// Gives the whole request back to the block layer, which dispatches it to `queue_rq` again
    /// (`blk_mq_requeue_request()`): for a driver whose attempt that must not wait
    /// (`IOCB_NOWAIT`) was refused. Safe from any context.
    ///
    /// Gives the request back unchanged if `this` is not the only [`ARef`] to it.
    pub fn requeue(this: ARef<Self>) -> Result<(), ARef<Self>> {
        let rq = Self::try_set_end(this)?;
        // SAFETY: `try_set_end` handed us the started request with no `ARef` left to it; the
        // driver still owns it, so it may give it back.
        unsafe { bindings::blk_mq_requeue_request(rq, true) };
        Ok(())
    }

    /// Completes the first `bytes` of the request and gives the rest back to the block layer,
    /// which dispatches it to `queue_rq` again (`blk_update_request()`, then
    /// `blk_mq_requeue_request()`): for a driver that could do only part of a request, as the C
    /// loop driver does after a short read.
    ///
    /// Gives the request back unchanged if `this` is not the only [`ARef`] to it, or if `bytes`
    /// would not leave part of it to do.
    pub fn requeue_remainder(this: ARef<Self>, bytes: u32) -> Result<(), ARef<Self>> {
        if bytes == 0 || bytes >= this.bytes() {
            return Err(this);
        }
        let rq = Self::try_set_end(this)?;
        // SAFETY: `try_set_end` handed us the started request with no `ARef` left to it; it has
        // more than `bytes` left, so `blk_update_request()` completes part of it and the rest,
        // still owned by the driver, may be requeued.
        unsafe {
            bindings::blk_update_request(rq, bindings::BLK_STS_OK as bindings::blk_status_t, bytes);
            bindings::blk_mq_requeue_request(rq, true);
        }
        Ok(())
    }
}

/// A mapped piece of a request's data buffer, handed out by
/// [`Request::for_each_data_segment`].
///
/// The buffer may be shared with user space (direct I/O), so it is only copied to and from,
/// never borrowed as a Rust slice.
///
/// # Invariants
///
/// `ptr` is valid for reads and writes of `len` bytes for `'a`.
pub struct DataSegment<'a> {
    ptr: *mut u8,
    len: usize,
    _p: PhantomData<&'a mut [u8]>,
}

impl DataSegment<'_> {
    /// The length of the piece in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the piece is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `src` into the piece at `offset` (e.g. the data a read returns); `EINVAL` when it
    /// does not fit.
    pub fn write_at(&mut self, offset: usize, src: &[u8]) -> Result {
        self.check(offset, src.len())?;
        // SAFETY: `offset + src.len() <= len` (checked), so the destination is inside the
        // piece, valid for writes by the type invariant; `src` cannot overlap it (the piece
        // is not a Rust slice).
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(offset), src.len()) };
        Ok(())
    }

    /// Copies the piece's bytes from `offset` into `dst` (e.g. the data a write carries);
    /// `EINVAL` when they are not all there.
    pub fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result {
        self.check(offset, dst.len())?;
        // SAFETY: As in `write_at`, the source is inside the piece and valid for reads.
        unsafe {
            core::ptr::copy_nonoverlapping(self.ptr.add(offset), dst.as_mut_ptr(), dst.len())
        };
        Ok(())
    }

    /// Fills `len` bytes of the piece from `offset` with zeroes.
    pub fn zero_at(&mut self, offset: usize, len: usize) -> Result {
        self.check(offset, len)?;
        // SAFETY: As in `write_at`.
        unsafe { core::ptr::write_bytes(self.ptr.add(offset), 0, len) };
        Ok(())
    }

    fn check(&self, offset: usize, len: usize) -> Result {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(EINVAL),
        }
    }
}

/// The data segments of a request as a `bio_vec` table (see [`Request::segments`]).
pub struct RequestSegments {
    table: KVec<bindings::bio_vec>,
    bytes: usize,
}

impl RequestSegments {
    /// The number of segments.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the request carries no data.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The number of data bytes the segments hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn as_ptr(&self) -> *const bindings::bio_vec {
        self.table.as_ptr()
    }
}

#[macros::kunit_tests(rust44_block_request)]
mod tests {
    use super::*;

    #[test]
    fn operations_decode_from_cmd_flags() {
        let fua = 1 << bindings::req_flag_bits___REQ_FUA;
        assert_eq!(
            ReqOp::from_cmd_flags(bindings::req_op_REQ_OP_READ),
            ReqOp::Read
        );
        assert_eq!(
            ReqOp::from_cmd_flags(bindings::req_op_REQ_OP_WRITE | fua),
            ReqOp::Write
        );
        assert_eq!(
            ReqOp::from_cmd_flags(bindings::req_op_REQ_OP_FLUSH),
            ReqOp::Flush
        );
        assert_eq!(
            ReqOp::from_cmd_flags(bindings::req_op_REQ_OP_DISCARD),
            ReqOp::Discard
        );
        assert_eq!(
            ReqOp::from_cmd_flags(bindings::req_op_REQ_OP_WRITE_ZEROES),
            ReqOp::WriteZeroes
        );
        assert_eq!(
            ReqOp::from_cmd_flags(bindings::req_op_REQ_OP_ZONE_RESET),
            ReqOp::Other(bindings::req_op_REQ_OP_ZONE_RESET)
        );
    }

    #[test]
    fn write_operations_are_the_odd_ones() {
        assert!(!ReqOp::Read.is_write());
        assert!(ReqOp::Write.is_write());
        assert!(!ReqOp::Flush.is_write());
        assert!(ReqOp::Discard.is_write());
        assert!(ReqOp::WriteZeroes.is_write());
        assert!(ReqOp::Other(bindings::req_op_REQ_OP_ZONE_RESET).is_write());
        assert!(!ReqOp::Other(bindings::req_op_REQ_OP_DRV_IN).is_write());
    }
}
