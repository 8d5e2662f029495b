// SPDX-License-Identifier: GPL-2.0

//! Hardware queues: the requests waiting for their completion time, the timer that completes
//! them (`irqmode` 2), polling, and the hybrid sleep.
//!
//! A queue is owned by its device (`Pin<KBox<HwQueue>>`) and owns its timer: the timer holds
//! no reference to the queue, and the queue's drop cancels it (waiting for a running callback)
//! before the memory goes. Dropping a device therefore frees every queue on every path,
//! including a creation that fails half way.

use crate::{
    policy::{CompletionEstimator, Params, QueueStats, Ring},
    BlkPoll,
};
use kernel::{
    block::mq::{HwQueueType, IoCompBatch, Request},
    impl_has_hr_timer,
    prelude::*,
    sync::{aref::ARef, new_spinlock_irq, SpinLockIrq},
    time::{
        delay,
        hrtimer::{
            AbsoluteMode, HasHrTimer, HrTimer, HrTimerCallback, HrTimerCallbackContext,
            HrTimerRestart, ScopedHrTimerPointer,
        },
        Delta, Instant, Monotonic,
    },
};

/// When a deferred request was submitted and when it is due.
#[derive(Clone, Copy)]
struct Times {
    submitted: Instant<Monotonic>,
    due: Instant<Monotonic>,
}

/// A request waiting for its completion time.
struct Pending {
    rq: ARef<Request<BlkPoll>>,
    /// `None` when the device has no latency (`completion_nsec` 0): due at once, and the clock
    /// is not read.
    times: Option<Times>,
}

/// The state of a hardware queue, under its lock.
///
/// # Invariants
///
/// The slots that `ring` reports in use hold `Some`, the others `None`.
pub(crate) struct QueueState {
    ring: Ring,
    slots: KVec<Option<Pending>>,
    /// The timer is started, or its callback will restart it.
    armed: bool,
    pub(crate) estimator: CompletionEstimator,
    pub(crate) stats: QueueStats,
}

impl QueueState {
    fn push(&mut self, p: Pending) -> core::result::Result<(), Pending> {
        match self.ring.push() {
            Some(slot) => {
                // INVARIANT: the slot the ring just took holds `Some`.
                self.slots[slot] = Some(p);
                Ok(())
            }
            None => Err(p),
        }
    }

    fn front(&self) -> Option<&Pending> {
        self.ring.front().and_then(|slot| self.slots[slot].as_ref())
    }

    /// Requests waiting.
    pub(crate) fn inflight(&self) -> usize {
        self.ring.len()
    }

    /// Takes the front request if it is due at `now` (`None`: the device has no latency, and
    /// every request is due), and records its completion time in the mean.
    ///
    /// The completion time is the device's: from submission until the request became due,
    /// not until it was found. A request is found late when the poller overslept in a hybrid
    /// sleep or lost the CPU; counting that would feed the delay into the mean, and the mean
    /// into the next, longer, sleep.
    fn pop_due(&mut self, now: Option<Instant<Monotonic>>) -> Option<Pending> {
        if let (Some(now), Some(t)) = (now, self.front()?.times) {
            if (t.due - now).as_nanos() > 0 {
                return None;
            }
        }
        let slot = self.ring.pop()?;
        // INVARIANT: the ring released the slot; it holds `None` again.
        let p = self.slots[slot].take()?;
        if let (Some(now), Some(t)) = (now, p.times) {
            let done = if (t.due - now).as_nanos() < 0 {
                t.due
            } else {
                now
            };
            self.estimator
                .record((done - t.submitted).as_nanos().max(0) as u64);
        }
        self.stats.completed += 1;
        Some(p)
    }
}

/// A hardware queue of a device.
#[pin_data(PinnedDrop)]
pub(crate) struct HwQueue {
    #[pin]
    pub(crate) state: SpinLockIrq<QueueState>,
    #[pin]
    timer: HrTimer<HwQueue>,
    pub(crate) kind: HwQueueType,
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for HwQueue {
        mode: AbsoluteMode<Monotonic>,
        field: self.timer
    }
}

impl HrTimerCallback for HwQueue {
    type Pointer<'a> = Pin<&'a HwQueue>;

    fn run(this: Pin<&HwQueue>, mut ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        loop {
            let now = Instant::<Monotonic>::now();
            let Some(p) = this.state.lock().pop_due(Some(now)) else {
                break;
            };
            end_request(p.rq, Ok(()));
        }
        let mut state = this.state.lock();
        match state.front().and_then(|next| next.times) {
            Some(next) => {
                let interval = next.due - this.timer.expires();
                ctx.forward(Instant::now(), interval);
                HrTimerRestart::Restart
            }
            None => {
                state.armed = false;
                HrTimerRestart::NoRestart
            }
        }
    }
}

#[pinned_drop]
impl PinnedDrop for HwQueue {
    fn drop(self: Pin<&mut Self>) {
        // The kernel crate cancels a timer only through a handle: a scoped start an hour
        // ahead gives one, and its end cancels the timer, waiting for a callback still running
        // (which may have restarted it). After this nothing refers to the queue.
        self.into_ref()
            .start_scoped(Instant::now() + Delta::from_secs(3600), || ());
    }
}

impl HwQueue {
    pub(crate) fn new(kind: HwQueueType, depth: u32) -> Result<Pin<KBox<Self>>> {
        let depth = depth as usize;
        let mut slots = KVec::with_capacity(depth, GFP_KERNEL)?;
        for _ in 0..depth {
            slots.push(None, GFP_KERNEL)?;
        }
        KBox::pin_init(
            pin_init!(Self {
                // INVARIANT: the ring is empty and every slot `None`.
                state <- new_spinlock_irq!(QueueState {
                    ring: Ring::new(depth),
                    slots,
                    armed: false,
                    estimator: CompletionEstimator::default(),
                    stats: QueueStats::default(),
                }),
                timer <- HrTimer::new(),
                kind,
            }),
            GFP_KERNEL,
        )
    }

    /// Queues `rq` to complete when due: from the timer, or (poll queues) when polled. Counts
    /// the request. Returns how long a hybrid poller should sleep now (0: do not sleep).
    pub(crate) fn defer(
        self: Pin<&Self>,
        rq: ARef<Request<BlkPoll>>,
        params: &Params,
        use_timer: bool,
    ) -> u64 {
        let times = params.timed(use_timer).then(|| {
            let submitted = Instant::now();
            Times {
                submitted,
                due: submitted + Delta::from_nanos(params.completion_nsec as i64),
            }
        });
        let mut state = self.state.lock();
        state.stats.requests += 1;
        let pending = Pending { rq, times };
        if let Err(p) = state.push(pending) {
            state.stats.completed += 1;
            drop(state);
            // Cannot happen: the ring has a slot per tag of the queue.
            pr_err!("no free slot on a hardware queue\n");
            end_request(p.rq, Err(EIO));
            return 0;
        }
        let sleep = if params.hybrid_sleeps() && !use_timer {
            state.estimator.plan_sleep(0)
        } else {
            0
        };
        let start = use_timer && !state.armed;
        if start {
            state.armed = true;
        }
        drop(state);
        if let (true, Some(t)) = (start, times) {
            let this: *const Self = self.get_ref();
            // SAFETY: `this` comes from a pinned reference, so the queue stays at this address
            // until it is dropped, and its drop cancels the timer and waits for the callback
            // first (`PinnedDrop`): the queue outlives the timer.
            unsafe { <Self as HasHrTimer<Self>>::start(this, t.due) };
        }
        sleep
    }

    /// The hybrid sleep: gives up the CPU for `ns` on an hrtimer and records how long it took;
    /// returns that, in nanoseconds.
    ///
    /// Must be called where the task may sleep: from `queue_rq` of a `BLK_MQ_F_BLOCKING` tag set.
    pub(crate) fn hybrid_sleep(&self, ns: u64) -> u64 {
        let asked = Delta::from_nanos(ns as i64);
        let start = Instant::<Monotonic>::now();
        delay::usleep_range(asked, asked);
        let slept = start.elapsed().as_nanos().max(0) as u64;
        let mut state = self.state.lock();
        state.stats.sleeps += 1;
        state.stats.sleep_ns += slept;
        state.estimator.record_sleep(ns, slept);
        slept
    }

    /// Completes the requests due at the front into `batch`; returns how many.
    ///
    /// One lock round and at most one clock read per call (none without latency); the
    /// requests are completed after the lock is dropped.
    pub(crate) fn poll(&self, timed: bool, batch: &mut IoCompBatch<'_, BlkPoll>) -> u32 {
        const MAX: usize = 8;
        let mut found = 0u32;
        loop {
            let mut done: [Option<Pending>; MAX] = [const { None }; MAX];
            let mut n = 0;
            {
                let mut state = self.state.lock();
                if found == 0 {
                    state.stats.polls += 1;
                }
                let now = if timed { Some(Instant::now()) } else { None };
                while n < MAX {
                    match state.pop_due(now) {
                        Some(p) => {
                            done[n] = Some(p);
                            n += 1;
                        }
                        None => break,
                    }
                }
                if n == 0 && found == 0 {
                    state.stats.empty_polls += 1;
                }
            }
            for p in done.into_iter().flatten() {
                if let Err(rq) = batch.complete(p.rq, Ok(())) {
                    pr_err!("a polled request is still referenced\n");
                    drop(rq);
                }
            }
            found += n as u32;
            if n < MAX {
                return found;
            }
        }
    }

    /// Ends the requests due now, from the block layer's timeout handler; returns whether
    /// `rq` was one of them.
    pub(crate) fn complete_due(&self, rq: &Request<BlkPoll>) -> bool {
        let mut mine = false;
        loop {
            let mut state = self.state.lock();
            let Some(p) = state.pop_due(Some(Instant::now())) else {
                break;
            };
            state.stats.timeouts += 1;
            drop(state);
            mine |= core::ptr::eq(&*p.rq, rq);
            end_request(p.rq, Ok(()));
        }
        mine
    }

    /// Counts a request that completes without being deferred.
    pub(crate) fn count_done(&self) {
        let mut state = self.state.lock();
        state.stats.requests += 1;
        state.stats.completed += 1;
    }
}

/// Ends a request the driver holds the only reference to.
pub(crate) fn end_request(rq: ARef<Request<BlkPoll>>, result: Result) {
    if Request::end(rq, result).is_err() {
        pr_err!("a request to end is still referenced\n");
    }
}
