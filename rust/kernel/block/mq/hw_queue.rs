// SPDX-License-Identifier: GPL-2.0

//! Hardware queues: how a tag set splits its hardware queues into maps (default, read, poll),
//! which queue a request or a poll runs on, the completion batch a poll fills, and what a
//! timeout handler answers.
//!
//! A blk-mq driver receives polled I/O (`REQ_POLLED`, from io_uring `IORING_SETUP_IOPOLL`) only
//! when its tag set has a poll map with queues ([`QueueMaps::with_poll`]) and it implements
//! [`Operations::poll`]; the queue's `io_poll` sysfs file then reads 1.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use crate::{
    bindings,
    block::mq::{Operations, Request},
    error::{code::EINVAL, Result},
    sync::aref::ARef,
};
use core::marker::PhantomData;

/// The kind of a hardware queue: which map it belongs to (`enum hctx_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwQueueType {
    /// Queues for all I/O the other maps do not take (`HCTX_TYPE_DEFAULT`).
    Default,
    /// Queues for reads only (`HCTX_TYPE_READ`).
    Read,
    /// Queues for polled I/O, which completes only when polled (`HCTX_TYPE_POLL`).
    Poll,
}

impl HwQueueType {
    /// The three kinds, in the order of the tag set's maps.
    pub const ALL: [Self; 3] = [Self::Default, Self::Read, Self::Poll];

    /// Decodes a raw `enum hctx_type`; unknown values read as [`HwQueueType::Default`].
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            bindings::hctx_type_HCTX_TYPE_READ => Self::Read,
            bindings::hctx_type_HCTX_TYPE_POLL => Self::Poll,
            _ => Self::Default,
        }
    }

    /// The index of this kind's map in `blk_mq_tag_set::map`.
    pub const fn index(self) -> usize {
        match self {
            Self::Default => bindings::hctx_type_HCTX_TYPE_DEFAULT as usize,
            Self::Read => bindings::hctx_type_HCTX_TYPE_READ as usize,
            Self::Poll => bindings::hctx_type_HCTX_TYPE_POLL as usize,
        }
    }
}

/// How many hardware queues a tag set has in each map.
///
/// The queues are numbered map after map: first the default queues, then the read queues,
/// then the poll queues. The tag set spreads the CPUs over each map's queues
/// (`blk_mq_map_queues()` with the map's `queue_offset`).
///
/// # Invariants
///
/// `counts[HwQueueType::Default.index()]` is at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueMaps {
    counts: [u32; 3],
}

impl QueueMaps {
    /// `default` queues for all I/O (at least 1), no read or poll queues.
    pub fn new(default: u32) -> Result<Self> {
        if default == 0 {
            return Err(EINVAL);
        }
        // INVARIANT: checked above.
        Ok(Self {
            counts: [default, 0, 0],
        })
    }

    /// Adds `count` queues that only take reads.
    pub fn with_read(mut self, count: u32) -> Self {
        self.counts[HwQueueType::Read.index()] = count;
        self
    }

    /// Adds `count` poll queues: polled I/O goes there and completes only when polled.
    pub fn with_poll(mut self, count: u32) -> Self {
        self.counts[HwQueueType::Poll.index()] = count;
        self
    }

    /// The number of queues in the map of `kind`.
    pub fn nr_queues(&self, kind: HwQueueType) -> u32 {
        self.counts[kind.index()]
    }

    /// The index of the first queue of the map of `kind` (`queue_offset`).
    pub fn queue_offset(&self, kind: HwQueueType) -> u32 {
        self.counts[..kind.index()].iter().sum()
    }

    /// All hardware queues together (`nr_hw_queues`); `EINVAL` when the sum overflows.
    pub fn nr_hw_queues(&self) -> Result<u32> {
        self.counts
            .iter()
            .try_fold(0u32, |sum, &n| sum.checked_add(n))
            .ok_or(EINVAL)
    }

    /// How many maps the tag set needs (`nr_maps`): a map exists when it or a later one has
    /// queues, since the block layer can poll only when `nr_maps` exceeds `HCTX_TYPE_POLL`.
    pub fn nr_maps(&self) -> u32 {
        if self.nr_queues(HwQueueType::Poll) > 0 {
            3
        } else if self.nr_queues(HwQueueType::Read) > 0 {
            2
        } else {
            1
        }
    }

    /// Which map the hardware queue `index` belongs to, or `None` past the last queue.
    pub fn kind_of(&self, index: u32) -> Option<HwQueueType> {
        let mut end = 0u32;
        for kind in HwQueueType::ALL {
            end = end.saturating_add(self.nr_queues(kind));
            if index < end {
                return Some(kind);
            }
        }
        None
    }

    /// Fills the tag set's maps: `nr_queues` and `queue_offset` of each map, CPUs spread over
    /// its queues. Maps without queues are left empty (the block layer sends their I/O to the
    /// default map).
    ///
    /// # Safety
    ///
    /// `set` must be a tag set whose `map[i].mq_map` arrays are allocated for its `nr_maps`
    /// maps, as they are when the block layer calls `blk_mq_ops::map_queues`.
    pub(crate) unsafe fn apply(&self, set: *mut bindings::blk_mq_tag_set) {
        // SAFETY: `set` is valid by the safety requirements.
        let (nr_maps, total) = unsafe { ((*set).nr_maps as usize, (*set).nr_hw_queues) };
        // The block layer may have lowered `nr_hw_queues` (to the number of CPUs when there is
        // a single map): then all queues are default queues.
        let this = if self.nr_hw_queues() == Ok(total) {
            *self
        } else {
            Self {
                counts: [total, 0, 0],
            }
        };
        for kind in HwQueueType::ALL {
            let i = kind.index();
            if i >= nr_maps {
                break;
            }
            // SAFETY: `i < nr_maps <= HCTX_MAX_TYPES`, so the map exists; the block layer does
            // not use it concurrently while it asks for the mapping.
            let map = unsafe { &raw mut (*set).map[i] };
            // SAFETY: As above.
            unsafe {
                (*map).nr_queues = this.nr_queues(kind);
                (*map).queue_offset = this.queue_offset(kind);
                if (*map).nr_queues > 0 {
                    bindings::blk_mq_map_queues(map);
                }
            }
        }
    }
}

/// A hardware queue as seen by the driver: its index in the tag set (`queue_num`) and its
/// kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwQueueId {
    index: u32,
    kind: HwQueueType,
}

impl HwQueueId {
    /// Reads the identity of a hardware context.
    ///
    /// # Safety
    ///
    /// `hctx` must point to a valid, initialised `struct blk_mq_hw_ctx`.
    pub(crate) unsafe fn from_hctx(hctx: *const bindings::blk_mq_hw_ctx) -> Self {
        // SAFETY: `hctx` is valid by the safety requirements; `queue_num` and `type` are set
        // when the context is set up and do not change while requests or polls use it.
        let (index, kind) = unsafe { ((*hctx).queue_num, u32::from((*hctx).type_)) };
        Self {
            index,
            kind: HwQueueType::from_raw(kind),
        }
    }

    /// The queue's index among the tag set's hardware queues (`0..nr_hw_queues`).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The map the queue belongs to.
    pub fn kind(&self) -> HwQueueType {
        self.kind
    }
}

/// The completion batch that [`Operations::poll`] adds the requests it found done to
/// (`struct io_comp_batch`).
///
/// The poller ends the batched requests together after the poll returns
/// (`blk_mq_end_request_batch()`). Requests that cannot be batched (no batch, an error, a
/// request with an `end_io` handler or scheduler tags) are ended at once.
///
/// # Invariants
///
/// `raw` is null or points to a valid `struct io_comp_batch` for `'a`.
pub struct IoCompBatch<'a, T: Operations> {
    raw: *mut bindings::io_comp_batch,
    completed: u32,
    _p: PhantomData<(&'a mut bindings::io_comp_batch, T)>,
}

impl<'a, T: Operations> IoCompBatch<'a, T> {
    /// Wraps the batch a poll was called with.
    ///
    /// # Safety
    ///
    /// `raw` must be null or valid for `'a`, and not used elsewhere during `'a`.
    pub(crate) unsafe fn from_raw(raw: *mut bindings::io_comp_batch) -> Self {
        // INVARIANT: By the safety requirements.
        Self {
            raw,
            completed: 0,
            _p: PhantomData,
        }
    }

    /// Completes `rq` with `result`: adds it to the batch, or ends it now when it cannot be
    /// batched.
    ///
    /// Returns `rq` again, untouched, when another [`ARef`] to it exists.
    pub fn complete(
        &mut self,
        rq: ARef<Request<T>>,
        result: Result,
    ) -> Result<(), ARef<Request<T>>> {
        let status = match result {
            Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
            Err(e) => e.to_blk_status(),
        };
        let ptr = Request::try_set_end(rq)?;
        // SAFETY: `ptr` is the driver's request with no `ARef` left, not yet handed back.
        unsafe { Request::<T>::ending(ptr, result) };
        // SAFETY: `ptr` is a request the driver owned with no `ARef` left (`try_set_end`), so it
        // can be handed back to the block layer; `self.raw` is null or a valid batch by the type
        // invariant. The batch's requests are ended with `blk_mq_end_request_batch`.
        let batched = unsafe {
            bindings::blk_mq_add_to_batch(
                ptr,
                self.raw,
                status != bindings::BLK_STS_OK as bindings::blk_status_t,
                Some(bindings::blk_mq_end_request_batch),
            )
        };
        if !batched {
            // SAFETY: As above, the request is owned and unreferenced.
            unsafe { bindings::blk_mq_end_request(ptr, status) };
        }
        self.completed += 1;
        Ok(())
    }

    /// How many requests this poll completed so far.
    pub fn completed(&self) -> u32 {
        self.completed
    }
}

/// What a timeout handler ([`Operations::timeout`]) decided (`enum blk_eh_timer_return`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutAction {
    /// The driver completed the request or will complete it (`BLK_EH_DONE`).
    Done,
    /// The request is still in progress: start its timer again (`BLK_EH_RESET_TIMER`).
    ResetTimer,
}

impl TimeoutAction {
    pub(crate) fn to_raw(self) -> bindings::blk_eh_timer_return {
        match self {
            Self::Done => bindings::blk_eh_timer_return_BLK_EH_DONE,
            Self::ResetTimer => bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER,
        }
    }
}

#[macros::kunit_tests(rust44_block_hw_queue)]
mod tests {
    use super::*;

    #[test]
    fn maps_number_queues_map_after_map() {
        let maps = QueueMaps { counts: [2, 0, 0] }.with_poll(3);
        assert_eq!(maps.nr_hw_queues(), Ok(5));
        assert_eq!(maps.nr_maps(), 3);
        assert_eq!(maps.queue_offset(HwQueueType::Default), 0);
        assert_eq!(maps.queue_offset(HwQueueType::Read), 2);
        assert_eq!(maps.queue_offset(HwQueueType::Poll), 2);
        assert_eq!(maps.kind_of(1), Some(HwQueueType::Default));
        assert_eq!(maps.kind_of(2), Some(HwQueueType::Poll));
        assert_eq!(maps.kind_of(4), Some(HwQueueType::Poll));
        assert_eq!(maps.kind_of(5), None);
    }

    #[test]
    fn poll_map_only_with_poll_queues() {
        assert_eq!(QueueMaps::new(0), Err(EINVAL));
        let one = QueueMaps { counts: [1, 0, 0] };
        assert_eq!(one.nr_maps(), 1);
        assert_eq!(one.with_read(1).nr_maps(), 2);
        assert_eq!(one.with_poll(1).nr_maps(), 3);
        assert_eq!(one.with_poll(0).nr_maps(), 1);
        assert_eq!(one.with_poll(u32::MAX).nr_hw_queues(), Err(EINVAL));
    }

    #[test]
    fn queue_kinds_decode() {
        for kind in HwQueueType::ALL {
            assert_eq!(HwQueueType::from_raw(kind.index() as u32), kind);
        }
        assert_eq!(
            TimeoutAction::ResetTimer.to_raw(),
            bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER
        );
    }
}
