// SPDX-License-Identifier: GPL-2.0

//! Polled direct I/O in flight on backing files.

use super::FileIo;
use crate::{
    alloc::{flags::GFP_KERNEL, KVec},
    block::mq::Operations,
    error::Error,
    new_spinlock,
    prelude::*,
    sync::{
        atomic::{Acquire, Relaxed},
        SpinLock,
    },
};

/// How many in-flight polled I/Os one [`PolledIos::poll`] call handles at most.
const POLL_CHUNK: usize = 16;

/// The polled direct I/Os in flight on backing files, for a driver's `Operations::poll` to
/// poll the backing files' devices for (`file_operations.iopoll`) and end the requests whose I/O
/// completed.
///
/// A completion may run in interrupt context, so it only marks its I/O done; the next `poll`
/// removes it and ends the request. Whoever submits polled I/O polls until it completes (the
/// block layer's contract for `REQ_POLLED`), so every entry is reaped.
///
/// # Invariants
///
/// Each entry of `inflight` is a live `FileIo<T>` allocated by `BackingFile::submit` on which
/// the entry owns one reference.
#[pin_data]
pub struct PolledIos<T: Operations> {
    #[pin]
    inflight: SpinLock<KVec<PolledIo<T>>>,
}

struct PolledIo<T: Operations>(*mut FileIo<T>);

// SAFETY: A `FileIo` is reference counted and may be used from any thread: its request and file
// are `Send`, and its fields are only changed by their owner as documented there.
unsafe impl<T: Operations> Send for PolledIo<T> {}

impl<T: Operations> PolledIos<T> {
    /// An empty set with room for `capacity` I/Os: the driver's number of tags on its poll
    /// queues, since each polled request is at most one I/O.
    pub fn new(capacity: usize) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inflight <- new_spinlock!(KVec::with_capacity(capacity, GFP_KERNEL)?, "PolledIos"),
        })
    }

    /// Adds `io` to the set, with a reference of the set's; false when the set is full (the I/O
    /// is then not polled).
    ///
    /// # Safety
    ///
    /// `io` is a valid `FileIo<T>` allocated by `BackingFile::submit`, not yet submitted.
    pub(super) unsafe fn track(&self, io: *mut FileIo<T>) -> bool {
        // SAFETY: `io` is valid (the caller's guarantee); the reference is taken before the
        // entry can be seen, and given back if it cannot be added.
        unsafe { (*io).refs.fetch_add(1, Relaxed) };
        let added = self.inflight.lock().push_within_capacity(PolledIo(io));
        if added.is_ok() {
            // INVARIANT: the entry owns the reference taken above.
            return true;
        }
        // SAFETY: As above; the submitter's and completion's references remain.
        unsafe { (*io).refs.fetch_sub(1, Relaxed) };
        false
    }

    /// Polls the backing devices for the I/Os in flight (never sleeps: `Operations::poll` runs
    /// under `rcu_read_lock()`), then ends the requests of the ones that completed; returns how
    /// many ended.
    pub fn poll(&self) -> u32 {
        let mut batch = [core::ptr::null_mut::<FileIo<T>>(); POLL_CHUNK];
        let pending = self.take_some(&mut batch, false);
        for &io in &batch[..pending] {
            // SAFETY: `take_some` took a reference on each I/O of `batch[..pending]`, which keeps
            // it alive until dropped here. (Usually the set's reference outlives ours; if another
            // poller reaped the I/O meanwhile, ours is the last and `put` ends the request.)
            unsafe {
                FileIo::iopoll(io);
                FileIo::put(io);
            }
        }
        let done = self.take_some(&mut batch, true);
        for &io in &batch[..done] {
            // SAFETY: `take_some` removed these from the set and gave us the set's references.
            unsafe { FileIo::put(io) };
        }
        done as u32
    }

    /// Fills `batch` with I/Os of the set: with `done`, completed ones, removed from the set
    /// with its reference; else ones in flight, each with a new reference.
    fn take_some(&self, batch: &mut [*mut FileIo<T>; POLL_CHUNK], done: bool) -> usize {
        let mut list = self.inflight.lock();
        let mut taken = 0;
        let mut i = 0;
        while i < list.len() && taken < POLL_CHUNK {
            let io = list[i].0;
            // SAFETY: By the type invariant the entry is live.
            let is_done = unsafe { (*io).done.load(Acquire) };
            if is_done != done {
                i += 1;
                continue;
            }
            batch[taken] = io;
            taken += 1;
            if done {
                let last = list.len() - 1;
                list.swap(i, last);
                list.pop();
            } else {
                // SAFETY: The set's reference keeps `io` alive while we take ours.
                unsafe { (*io).refs.fetch_add(1, Relaxed) };
                i += 1;
            }
        }
        taken
    }
}
