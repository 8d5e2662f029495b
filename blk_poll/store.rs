// SPDX-License-Identifier: GPL-2.0

//! The device's data: 4 KiB chunks in an XArray, allocated as they are first written;
//! absent chunks read as zeroes.

use crate::{
    policy::{self, Piece, CHUNK},
    BlkPoll,
};
use kernel::{
    block::{
        mq::{DataSegment, ReqOp, Request},
        SECTOR_SHIFT,
    },
    prelude::*,
    xarray::{AllocKind, XArray},
};

/// One stored chunk of the device.
#[repr(C, align(8))]
struct Chunk([u8; CHUNK]);

// SAFETY: An all-zero byte array is a valid `Chunk`.
unsafe impl pin_init::Zeroable for Chunk {}

/// The data of a device of `capacity` bytes.
#[pin_data]
pub(crate) struct Store {
    #[pin]
    data: XArray<KBox<Chunk>>,
    capacity: u64,
}

impl Store {
    pub(crate) fn new(capacity: u64) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            data <- XArray::new(AllocKind::Alloc),
            capacity,
        })
    }

    /// Carries out the request's data transfer.
    pub(crate) fn execute(&self, rq: &Request<BlkPoll>) -> Result {
        let pos = rq.sector() << SECTOR_SHIFT;
        let len = u64::from(rq.bytes());
        if !policy::in_range(pos, len, self.capacity) {
            return Err(EIO);
        }
        match rq.op() {
            ReqOp::Read => self.transfer(rq, pos, false),
            ReqOp::Write => self.transfer(rq, pos, true),
            ReqOp::Flush => Ok(()),
            ReqOp::Discard => {
                self.discard(pos, len);
                Ok(())
            }
            _ => Err(EOPNOTSUPP),
        }
    }

    /// Copies between the request's buffer and the stored data, starting at byte `pos`.
    fn transfer(&self, rq: &Request<BlkPoll>, pos: u64, write: bool) -> Result {
        rq.for_each_data_segment(|off, seg| {
            let mut at = 0usize;
            for piece in policy::pieces(pos + off as u64, seg.len() as u64) {
                if write {
                    self.write_piece(piece, seg, at)?;
                } else {
                    self.read_piece(piece, seg, at)?;
                }
                at += piece.len;
            }
            Ok(())
        })
    }

    /// Copies `piece` of the stored data to the segment at `at`.
    fn read_piece(&self, piece: Piece, seg: &mut DataSegment<'_>, at: usize) -> Result {
        let guard = self.data.lock();
        match guard.get(piece.index) {
            Some(chunk) => seg.write_at(at, &chunk.0[piece.offset..piece.offset + piece.len]),
            None => seg.zero_at(at, piece.len),
        }
    }

    /// Copies the segment at `at` into `piece` of the stored data.
    fn write_piece(&self, piece: Piece, seg: &mut DataSegment<'_>, at: usize) -> Result {
        let range = piece.offset..piece.offset + piece.len;
        {
            let mut guard = self.data.lock();
            if let Some(chunk) = guard.get_mut(piece.index) {
                return seg.read_at(at, &mut chunk.0[range]);
            }
        }
        // `queue_rq` must not sleep: allocate without waiting. ENOMEM makes the block layer
        // retry the request later.
        let fresh = KBox::init(pin_init::init_zeroed::<Chunk>(), GFP_NOWAIT)?;
        let mut guard = self.data.lock();
        if guard.get(piece.index).is_none() {
            guard.store(piece.index, fresh, GFP_NOWAIT)?;
        }
        match guard.get_mut(piece.index) {
            Some(chunk) => seg.read_at(at, &mut chunk.0[range]),
            None => Err(ENOMEM),
        }
    }

    /// Discards `[pos, pos + len)` within the capacity: whole chunks are freed, partial ones
    /// zeroed.
    fn discard(&self, pos: u64, len: u64) {
        let len = len.min(self.capacity.saturating_sub(pos));
        for piece in policy::pieces(pos, len) {
            let mut guard = self.data.lock();
            if piece.is_whole() {
                let old = guard.remove(piece.index);
                drop(guard);
                drop(old);
            } else if let Some(chunk) = guard.get_mut(piece.index) {
                chunk.0[piece.offset..piece.offset + piece.len].fill(0);
            }
        }
    }
}
