// SPDX-License-Identifier: GPL-2.0

//! blk_poll: a memory-backed block device that emulates a fast device, for block polling
//! (Linux 4.4) and hybrid polling (Linux 4.10).
//!
//! Devices are made in configfs, like null_blk's: `mkdir /sys/kernel/config/blk_poll/NAME`,
//! set the attributes, `echo 1 > power` adds `/dev/NAME`. Requests on the submit queues
//! complete at once (`irqmode` 0), in the completion softirq (1), or from a timer
//! `completion_nsec` after submission (2). Requests on the poll queues (`poll_queues`; only
//! io_uring `IORING_SETUP_IOPOLL` sends them) complete only when polled, and only once
//! `completion_nsec` has passed since submission. In the `hybrid` `poll_mode` the submitter
//! sleeps for half the queue's mean completion time before it goes on to poll (spin). Data is
//! kept in memory: reads return what was written.
//!
//! Hybrid polling sleeps in `queue_rq`, not in `poll`: on 7.3 `->poll` runs under
//! `rcu_read_lock()` (`iocb_bio_iopoll` -> `bio_poll` -> `blk_mq_poll`) and must not sleep,
//! while a tag set with `BLK_MQ_F_BLOCKING` (what a hybrid device gets) has `queue_rq` called
//! under SRCU, where it may. io_uring's IOPOLL task submits and then polls at once, so a sleep
//! at submission is the sleep before the spin; the request stays due `completion_nsec` after
//! submission whatever the sleep, so latency does not change while the CPU is given up.
//!
//! Per-queue counters: `/sys/block/NAME/blk_poll/stats` (and the device's configfs `stats`).

pub mod policy;

use core::fmt::Write as _;
use kernel::{
    block::{
        disk::{QueueLimits, SysfsBuffer},
        mq::{
            gen_disk::{GenDisk, GenDiskBuilder},
            DataSegment, HwQueueId, HwQueueType, IoCompBatch, Operations, QueueMaps, ReqOp,
            Request, TagSet, TagSetFlags, TimeoutAction,
        },
        SECTOR_SHIFT,
    },
    c_str,
    configfs::{self, AttributeOperations},
    configfs_attrs, impl_has_hr_timer,
    page::PAGE_SIZE,
    prelude::*,
    str::{CStr, CString},
    sync::{
        aref::ARef, atomic::Atomic, atomic::Relaxed, new_mutex, new_spinlock_irq, Arc, ArcBorrow,
        Mutex, SpinLockIrq,
    },
    time::{
        delay,
        hrtimer::{
            AbsoluteMode, ArcHrTimerHandle, HasHrTimer, HrTimer, HrTimerCallback,
            HrTimerCallbackContext, HrTimerHandle, HrTimerPointer, HrTimerRestart,
        },
        Delta, Instant, Monotonic,
    },
    xarray::{AllocKind, XArray},
};
use policy::{CompletionEstimator, Invalid, IrqMode, PollMode, Ring};

module! {
    type: BlkPollModule,
    name: "blk_poll",
    authors: ["rust44"],
    description: "Memory-backed block device with poll queues and hybrid polling (Rust)",
    license: "GPL",
}

#[pin_data]
struct BlkPollModule {
    #[pin]
    subsystem: configfs::Subsystem<Root>,
}

impl kernel::InPlaceModule for BlkPollModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let item_type = configfs_attrs! {
            container: configfs::Subsystem<Root>,
            data: Root,
            child: DeviceConfig,
            attributes: [
                features: 0,
            ],
        };
        try_pin_init!(Self {
            subsystem <- configfs::Subsystem::new(c_str!("blk_poll"), item_type, try_pin_init!(Root {})),
        })
    }
}

/// Bytes per unit of stored data.
const CHUNK: usize = 4096;

/// One stored 4 KiB piece of the device; absent pieces read as zeroes.
#[repr(C, align(8))]
struct Chunk([u8; CHUNK]);

// SAFETY: An all-zero byte array is a valid `Chunk`.
unsafe impl pin_init::Zeroable for Chunk {}

/// The configuration a device is created with (a snapshot of its attributes).
#[derive(Clone, Copy)]
struct Params {
    size_mib: u64,
    block_size: u32,
    submit_queues: u32,
    poll_queues: u32,
    queue_depth: u32,
    completion_nsec: u64,
    irq_mode: IrqMode,
    poll_mode: PollMode,
}

impl Params {
    /// Whether the tag set is `BLK_MQ_F_BLOCKING`: only for hybrid polling, whose sleep at
    /// submission needs it. Classic devices keep the cheaper non-blocking dispatch.
    fn blocking(&self) -> bool {
        self.poll_mode == PollMode::Hybrid && self.poll_queues > 0
    }
}

impl Default for Params {
    fn default() -> Self {
        Self {
            size_mib: 256,
            block_size: 512,
            submit_queues: 1,
            poll_queues: 1,
            queue_depth: 64,
            completion_nsec: 0,
            irq_mode: IrqMode::None,
            poll_mode: PollMode::Classic,
        }
    }
}

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

#[derive(Default, Clone, Copy)]
struct QueueStats {
    requests: u64,
    completed: u64,
    polls: u64,
    empty_polls: u64,
    sleeps: u64,
    sleep_ns: u64,
    timeouts: u64,
}

/// The state of a hardware queue, under its lock.
///
/// # Invariants
///
/// The slots that `ring` reports in use hold `Some`, the others `None`.
struct QueueState {
    ring: Ring,
    slots: KVec<Option<Pending>>,
    /// The timer is started, or its callback will restart it.
    armed: bool,
    /// Keeps the timer's `Arc` and cancels the timer when dropped (at teardown).
    timer_handle: Option<ArcHrTimerHandle<HwQueue>>,
    estimator: CompletionEstimator,
    stats: QueueStats,
}

impl QueueState {
    fn push(&mut self, p: Pending) -> core::result::Result<(), Pending> {
        match self.ring.push() {
            Some(slot) => {
                self.slots[slot] = Some(p);
                Ok(())
            }
            None => Err(p),
        }
    }

    fn front(&self) -> Option<&Pending> {
        self.ring.front().and_then(|slot| self.slots[slot].as_ref())
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
#[pin_data]
struct HwQueue {
    #[pin]
    state: SpinLockIrq<QueueState>,
    #[pin]
    timer: HrTimer<HwQueue>,
    kind: HwQueueType,
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for HwQueue {
        mode: AbsoluteMode<Monotonic>,
        field: self.timer
    }
}

impl HrTimerCallback for HwQueue {
    type Pointer<'a> = Arc<HwQueue>;

    fn run(this: ArcBorrow<'_, Self>, mut ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
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

impl HwQueue {
    fn new(kind: HwQueueType, depth: u32) -> Result<Arc<Self>> {
        let depth = depth as usize;
        let mut slots = KVec::with_capacity(depth, GFP_KERNEL)?;
        for _ in 0..depth {
            slots.push(None, GFP_KERNEL)?;
        }
        let q = Arc::pin_init(
            pin_init!(Self {
                // INVARIANT: the ring is empty and every slot `None`.
                state <- new_spinlock_irq!(QueueState {
                    ring: Ring::new(depth),
                    slots,
                    armed: false,
                    timer_handle: None,
                    estimator: CompletionEstimator::default(),
                    stats: QueueStats::default(),
                }),
                timer <- HrTimer::new(),
                kind,
            }),
            GFP_KERNEL,
        )?;
        // A handle that keeps the queue alive while its timer may run, so that later starts
        // need no handle; the timer is cancelled at once and started again on demand.
        let mut handle = Arc::clone(&q).start(Instant::now() + Delta::from_secs(3600));
        handle.cancel();
        q.state.lock().timer_handle = Some(handle);
        Ok(q)
    }

    /// Queues `rq` to complete when due: from the timer, or (poll queues) when polled. Counts
    /// the request. Returns how long a hybrid poller should sleep now (0: do not sleep).
    fn defer(&self, rq: ARef<Request<BlkPoll>>, params: &Params, use_timer: bool) -> u64 {
        // Without latency a polled request needs no clock; a timer needs its expiry.
        let times = (params.completion_nsec > 0 || use_timer).then(|| {
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
        let sleep = if params.poll_mode == PollMode::Hybrid && !use_timer && times.is_some() {
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
            // SAFETY: `timer_handle` holds an `Arc` to `self` until the device is torn down,
            // which cancels the timer first (`Device::drop`), so `self` outlives the timer.
            unsafe { <Self as HasHrTimer<Self>>::start(self, t.due) };
        }
        sleep
    }

    /// The hybrid sleep: gives up the CPU for `ns` on an hrtimer and records how long it took.
    ///
    /// Must be called where the task may sleep: from `queue_rq` of a `BLK_MQ_F_BLOCKING` tag set.
    fn hybrid_sleep(&self, ns: u64) {
        let asked = Delta::from_nanos(ns as i64);
        let start = Instant::<Monotonic>::now();
        delay::usleep_range(asked, asked);
        let slept = start.elapsed().as_nanos().max(0) as u64;
        let mut state = self.state.lock();
        state.stats.sleeps += 1;
        state.stats.sleep_ns += slept;
        state.estimator.record_sleep(ns, slept);
    }

    /// Completes the requests due at the front into `batch`; returns how many.
    ///
    /// One lock round and at most one clock read per call (none without latency); the
    /// requests are completed after the lock is dropped.
    fn poll(&self, timed: bool, batch: &mut IoCompBatch<'_, BlkPoll>) -> u32 {
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
}

/// Counts a request of `q` that completes without being deferred.
fn count_done(q: &HwQueue) {
    let mut state = q.state.lock();
    state.stats.requests += 1;
    state.stats.completed += 1;
}

/// Ends a request the driver holds the only reference to.
fn end_request(rq: ARef<Request<BlkPoll>>, result: Result) {
    if Request::end(rq, result).is_err() {
        pr_err!("a request to end is still referenced\n");
    }
}

/// A powered-on device: its queues and its data.
#[pin_data(PinnedDrop)]
struct Device {
    params: Params,
    capacity: u64,
    queues: KVec<Arc<HwQueue>>,
    #[pin]
    data: XArray<KBox<Chunk>>,
    timeouts: Atomic<u64>,
    /// The tag set is `BLK_MQ_F_BLOCKING`: `queue_rq` may sleep.
    blocking: bool,
}

#[pinned_drop]
impl PinnedDrop for Device {
    fn drop(self: Pin<&mut Self>) {
        for q in self.queues.iter() {
            let handle = q.state.lock().timer_handle.take();
            // Cancels the timer, waiting for a running callback, and drops its `Arc`.
            drop(handle);
        }
    }
}

impl Device {
    fn new(params: Params) -> Result<Arc<Self>> {
        let mut queues = KVec::new();
        let total = params.submit_queues + params.poll_queues;
        for i in 0..total {
            let kind = if i < params.submit_queues {
                HwQueueType::Default
            } else {
                HwQueueType::Poll
            };
            queues.push(HwQueue::new(kind, params.queue_depth)?, GFP_KERNEL)?;
        }
        Arc::pin_init(
            try_pin_init!(Self {
                params,
                capacity: params.size_mib << 20,
                queues,
                data <- XArray::new(AllocKind::Alloc),
                timeouts: Atomic::new(0),
                blocking: params.blocking(),
            }),
            GFP_KERNEL,
        )
    }

    fn queue(&self, id: HwQueueId) -> Result<&Arc<HwQueue>> {
        self.queues.get(id.index() as usize).ok_or(EIO)
    }

    /// Copies between the request's buffer and the stored data, starting at byte `pos`.
    fn transfer(&self, rq: &Request<BlkPoll>, pos: u64, write: bool) -> Result {
        rq.for_each_data_segment(|off, seg| {
            let mut done = 0usize;
            while done < seg.len() {
                let at = pos + (off + done) as u64;
                let index = (at / CHUNK as u64) as usize;
                let in_chunk = (at % CHUNK as u64) as usize;
                let n = core::cmp::min(seg.len() - done, CHUNK - in_chunk);
                if write {
                    self.write_chunk(index, in_chunk, seg, done, n)?;
                } else {
                    self.read_chunk(index, in_chunk, seg, done, n)?;
                }
                done += n;
            }
            Ok(())
        })
    }

    fn read_chunk(
        &self,
        index: usize,
        in_chunk: usize,
        seg: &mut DataSegment<'_>,
        at: usize,
        n: usize,
    ) -> Result {
        let guard = self.data.lock();
        match guard.get(index) {
            Some(chunk) => seg.write_at(at, &chunk.0[in_chunk..in_chunk + n]),
            None => seg.zero_at(at, n),
        }
    }

    fn write_chunk(
        &self,
        index: usize,
        in_chunk: usize,
        seg: &mut DataSegment<'_>,
        at: usize,
        n: usize,
    ) -> Result {
        {
            let mut guard = self.data.lock();
            if let Some(chunk) = guard.get_mut(index) {
                return seg.read_at(at, &mut chunk.0[in_chunk..in_chunk + n]);
            }
        }
        // `queue_rq` must not sleep: allocate without waiting. ENOMEM makes the block layer
        // retry the request later.
        let fresh = KBox::init(pin_init::init_zeroed::<Chunk>(), GFP_NOWAIT)?;
        let mut guard = self.data.lock();
        if guard.get(index).is_none() {
            guard.store(index, fresh, GFP_NOWAIT)?;
        }
        match guard.get_mut(index) {
            Some(chunk) => seg.read_at(at, &mut chunk.0[in_chunk..in_chunk + n]),
            None => Err(ENOMEM),
        }
    }

    /// Discards `[pos, pos + len)`: whole chunks are freed, partial ones zeroed.
    fn discard(&self, pos: u64, len: u64) {
        let end = pos.saturating_add(len).min(self.capacity);
        let mut at = pos;
        while at < end {
            let index = (at / CHUNK as u64) as usize;
            let in_chunk = (at % CHUNK as u64) as usize;
            let n = core::cmp::min(end - at, (CHUNK - in_chunk) as u64) as usize;
            let mut guard = self.data.lock();
            if n == CHUNK {
                let old = guard.remove(index);
                drop(guard);
                drop(old);
            } else if let Some(chunk) = guard.get_mut(index) {
                chunk.0[in_chunk..in_chunk + n].fill(0);
            }
            at += n as u64;
        }
    }

    /// Carries out the request's data transfer.
    fn execute(&self, rq: &Request<BlkPoll>) -> Result {
        let pos = rq.sector() << SECTOR_SHIFT;
        let len = u64::from(rq.bytes());
        if pos.checked_add(len).is_none_or(|end| end > self.capacity) {
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

    fn write_stats(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        writeln!(
            w,
            "poll_mode={} irqmode={} completion_nsec={} timeouts={}",
            self.params.poll_mode.name(),
            self.params.irq_mode.as_u32(),
            self.params.completion_nsec,
            self.timeouts.load(Relaxed)
        )?;
        for (i, q) in self.queues.iter().enumerate() {
            let (s, est, inflight) = {
                let state = q.state.lock();
                (state.stats, state.estimator, state.ring.len())
            };
            writeln!(
                w,
                "queue={} type={} requests={} completed={} inflight={} polls={} empty_polls={} \
                 sleeps={} sleep_ns={} mean_ns={} oversleep_ns={} timeouts={}",
                i,
                if q.kind == HwQueueType::Poll {
                    "poll"
                } else {
                    "default"
                },
                s.requests,
                s.completed,
                inflight,
                s.polls,
                s.empty_polls,
                s.sleeps,
                s.sleep_ns,
                est.mean_ns(),
                est.oversleep_ns(),
                s.timeouts
            )?;
        }
        Ok(())
    }
}

struct BlkPoll;

#[vtable]
impl Operations for BlkPoll {
    type QueueData = Arc<Device>;

    const OWNER: Option<&'static ThisModule> = Some(kernel::module::this_module::<LocalModule>());

    fn queue_rq(dev: ArcBorrow<'_, Device>, rq: ARef<Request<Self>>, _is_last: bool) -> Result {
        let id = rq.hw_queue();
        let q = dev.queue(id)?;
        let result = dev.execute(&rq);
        if result == Err(ENOMEM) {
            // Retried by the block layer (BLK_STS_RESOURCE).
            return Err(ENOMEM);
        }
        if result.is_ok() && id.kind() == HwQueueType::Poll {
            let polled = rq.is_polled();
            let sleep = q.defer(rq, &dev.params, false);
            // Only a hybrid device's tag set is `BLOCKING` (`power_on`), and only a hybrid
            // device plans sleeps: here the task may sleep.
            if sleep > 0 && polled && dev.blocking {
                q.hybrid_sleep(sleep);
            }
            return Ok(());
        }
        match (result, dev.params.irq_mode) {
            (Ok(()), IrqMode::Timer) => {
                q.defer(rq, &dev.params, true);
            }
            (Ok(()), IrqMode::Softirq) => {
                count_done(q);
                Request::complete(rq);
            }
            (result, _) => {
                count_done(q);
                end_request(rq, result);
            }
        }
        Ok(())
    }

    fn commit_rqs(_dev: ArcBorrow<'_, Device>) {}

    fn complete(rq: ARef<Request<Self>>) {
        end_request(rq, Ok(()));
    }

    fn poll(dev: ArcBorrow<'_, Device>, hctx: HwQueueId, batch: &mut IoCompBatch<'_, Self>) -> u32 {
        // Never sleeps: `->poll` runs under `rcu_read_lock()`. Hybrid polling slept in
        // `queue_rq` already.
        match dev.queue(hctx) {
            Ok(q) => q.poll(dev.params.completion_nsec > 0, batch),
            Err(_) => 0,
        }
    }

    fn timeout(dev: ArcBorrow<'_, Device>, rq: &Request<Self>) -> TimeoutAction {
        // Only deferred requests can time out, and all of them are due long before the block
        // layer's timeout: complete whatever is due on the queue (nobody polled it).
        dev.timeouts.fetch_add(1, Relaxed);
        let Ok(q) = dev.queue(rq.hw_queue()) else {
            return TimeoutAction::ResetTimer;
        };
        let mut mine = false;
        loop {
            let mut state = q.state.lock();
            let Some(p) = state.pop_due(Some(Instant::now())) else {
                break;
            };
            state.stats.timeouts += 1;
            drop(state);
            mine |= core::ptr::eq(&*p.rq, rq);
            end_request(p.rq, Ok(()));
        }
        if mine {
            TimeoutAction::Done
        } else {
            TimeoutAction::ResetTimer
        }
    }

    fn show_attribute(
        dev: ArcBorrow<'_, Device>,
        name: &CStr,
        out: &mut SysfsBuffer<'_>,
    ) -> Result {
        if name != c_str!("stats") {
            return Err(EINVAL);
        }
        dev.write_stats(out).map_err(|_| EINVAL)
    }
}

/// The files of the disk's `blk_poll` sysfs directory.
const SYSFS_FILES: &[&CStr] = &[c_str!("stats")];

/// The configfs root, `/sys/kernel/config/blk_poll`.
#[pin_data]
struct Root {}

#[vtable]
impl AttributeOperations<0> for Root {
    type Data = Root;

    fn show(_this: &Root, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_str(
            page,
            "size,blocksize,submit_queues,poll_queues,hw_queue_depth,completion_nsec,irqmode,\
             poll_mode,power,stats\n",
        )
    }
}

#[vtable]
impl configfs::GroupOperations for Root {
    type Child = DeviceConfig;

    fn make_group(
        &self,
        name: &CStr,
    ) -> Result<impl PinInit<configfs::Group<DeviceConfig>, Error>> {
        let item_type = configfs_attrs! {
            container: configfs::Group<DeviceConfig>,
            data: DeviceConfig,
            attributes: [
                power: 0,
                size: 1,
                blocksize: 2,
                submit_queues: 3,
                poll_queues: 4,
                hw_queue_depth: 5,
                completion_nsec: 6,
                irqmode: 7,
                poll_mode: 8,
                stats: 9,
            ],
        };
        // Disk names are at most 31 bytes (`DISK_NAME_LEN`).
        if name.to_bytes().len() >= 32 {
            pr_err!("device name {} is longer than 31 bytes\n", name.to_str()?);
            return Err(EINVAL);
        }
        Ok(configfs::Group::new(
            name.try_into()?,
            item_type,
            try_pin_init!(DeviceConfig {
                inner <- new_mutex!(DeviceInner {
                    name: name.try_into()?,
                    params: Params::default(),
                    disk: None,
                    device: None,
                }),
            }),
        ))
    }
}

/// A device directory, `/sys/kernel/config/blk_poll/NAME`.
#[pin_data]
struct DeviceConfig {
    #[pin]
    inner: Mutex<DeviceInner>,
}

struct DeviceInner {
    name: CString,
    params: Params,
    /// The disk while powered on. Dropped before `device`.
    disk: Option<GenDisk<BlkPoll>>,
    device: Option<Arc<Device>>,
}

impl Drop for DeviceInner {
    fn drop(&mut self) {
        // `rmdir` of a powered-on device: delete the disk (draining its I/O) first.
        drop(self.disk.take());
    }
}

fn show_str(page: &mut [u8; PAGE_SIZE], s: &str) -> Result<usize> {
    let mut w = kernel::str::Formatter::new(page);
    w.write_str(s)?;
    Ok(w.bytes_written())
}

fn show_fmt(page: &mut [u8; PAGE_SIZE], args: core::fmt::Arguments<'_>) -> Result<usize> {
    let mut w = kernel::str::Formatter::new(page);
    w.write_fmt(args)?;
    Ok(w.bytes_written())
}

/// Reports a rejected attribute write.
fn invalid(name: &CString, attr: &str, page: &[u8], want: &str) -> Error {
    let text = core::str::from_utf8(page).unwrap_or("(not UTF-8)").trim();
    pr_err!(
        "{}: {}: '{}' is not {}\n",
        name.to_str().unwrap_or("?"),
        attr,
        text,
        want
    );
    EINVAL
}

impl DeviceConfig {
    /// Stores a parameter unless the device is powered on.
    fn set(
        &self,
        attr: &str,
        page: &[u8],
        want: &str,
        f: impl FnOnce(&mut Params, &[u8]) -> core::result::Result<(), Invalid>,
    ) -> Result {
        let mut inner = self.inner.lock();
        let mut params = inner.params;
        if f(&mut params, page).is_err() {
            return Err(invalid(&inner.name, attr, page, want));
        }
        if inner.disk.is_some() {
            pr_err!(
                "{}: {} cannot change while the device is powered on\n",
                inner.name.to_str().unwrap_or("?"),
                attr
            );
            return Err(EBUSY);
        }
        inner.params = params;
        Ok(())
    }

    fn params(&self) -> Params {
        self.inner.lock().params
    }
}

fn power_on(name: &CStr, p: Params) -> Result<(GenDisk<BlkPoll>, Arc<Device>)> {
    let device = Device::new(p)?;
    let maps = QueueMaps::new(p.submit_queues)?.with_poll(p.poll_queues);
    let tagset = Arc::pin_init(
        TagSet::new_with_maps(
            maps,
            p.queue_depth,
            if p.blocking() {
                TagSetFlags::BLOCKING
            } else {
                TagSetFlags::empty()
            },
        ),
        GFP_KERNEL,
    )?;
    let mut limits = QueueLimits::default();
    limits.set_block_size(p.block_size)?;
    limits.set_discard(1 << 20, CHUNK as u32);
    limits.set_write_cache(true);
    let disk = GenDiskBuilder::new()
        .capacity_sectors(p.size_mib << (20 - SECTOR_SHIFT))
        .limits(limits)
        .partition_scan(false)
        .attribute_group(c_str!("blk_poll"), SYSFS_FILES)
        .build(fmt!("{}", name.to_str()?), tagset, device.clone())?;
    disk.show_attributes()?;
    Ok((disk, device))
}

#[vtable]
impl AttributeOperations<0> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let on = this.inner.lock().disk.is_some();
        show_str(page, if on { "1\n" } else { "0\n" })
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        let mut inner = this.inner.lock();
        let on =
            policy::parse_bool(page).map_err(|_| invalid(&inner.name, "power", page, "0 or 1"))?;
        match (on, inner.disk.is_some()) {
            (true, false) => {
                let (disk, device) = power_on(&inner.name, inner.params).inspect_err(|e| {
                    pr_err!(
                        "{}: cannot create the disk: error {}\n",
                        inner.name.to_str().unwrap_or("?"),
                        e.to_errno()
                    )
                })?;
                inner.disk = Some(disk);
                inner.device = Some(device);
            }
            (false, true) => {
                // Deleting the disk waits for the requests in flight: pollers and timers
                // complete them.
                drop(inner.disk.take());
                drop(inner.device.take());
            }
            _ => {}
        }
        Ok(())
    }
}

macro_rules! param_attr {
    ($id:literal, $attr:literal, $want:literal, |$p:ident| $show:expr, |$q:ident, $page:ident| $store:expr) => {
        #[vtable]
        impl AttributeOperations<$id> for DeviceConfig {
            type Data = DeviceConfig;

            fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
                let $p = this.params();
                show_fmt(page, format_args!("{}\n", $show))
            }

            fn store(this: &DeviceConfig, page: &[u8]) -> Result {
                this.set($attr, page, $want, |$q, $page| {
                    $store;
                    Ok(())
                })
            }
        }
    };
}

param_attr!(
    1,
    "size",
    "a size in MiB in 1..=65536",
    |p| p.size_mib,
    |q, page| { q.size_mib = policy::parse_in_range(page, 1, policy::MAX_SIZE_MIB)? }
);
param_attr!(
    2,
    "blocksize",
    "a power of two in 512..=4096",
    |p| p.block_size,
    |q, page| { q.block_size = policy::parse_block_size(page)? }
);
param_attr!(
    3,
    "submit_queues",
    "a number in 1..=64",
    |p| p.submit_queues,
    |q, page| { q.submit_queues = policy::parse_u32_in_range(page, 1, policy::MAX_QUEUES)? }
);
param_attr!(
    4,
    "poll_queues",
    "a number in 0..=64",
    |p| p.poll_queues,
    |q, page| { q.poll_queues = policy::parse_u32_in_range(page, 0, policy::MAX_QUEUES)? }
);
param_attr!(
    5,
    "hw_queue_depth",
    "a number in 1..=4096",
    |p| p.queue_depth,
    |q, page| { q.queue_depth = policy::parse_u32_in_range(page, 1, policy::MAX_QUEUE_DEPTH)? }
);
param_attr!(
    6,
    "completion_nsec",
    "a number of ns in 0..=1000000000",
    |p| p.completion_nsec,
    |q, page| { q.completion_nsec = policy::parse_in_range(page, 0, policy::MAX_COMPLETION_NSEC)? }
);
param_attr!(
    7,
    "irqmode",
    "0, 1 or 2",
    |p| p.irq_mode.as_u32(),
    |q, page| { q.irq_mode = IrqMode::parse(page)? }
);
param_attr!(
    8,
    "poll_mode",
    "classic or hybrid",
    |p| p.poll_mode.name(),
    |q, page| { q.poll_mode = PollMode::parse(page)? }
);

#[vtable]
impl AttributeOperations<9> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let device = this.inner.lock().device.clone();
        let mut w = kernel::str::Formatter::new(page);
        match device {
            Some(dev) => dev.write_stats(&mut w)?,
            None => w.write_str("powered off\n")?,
        }
        Ok(w.bytes_written())
    }
}
