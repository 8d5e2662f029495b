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
//!
//! Files: this one (the module, the device and its blk-mq operations), `configfs.rs` (the
//! configfs interface), `queue.rs` (hardware queues and their timers), `store.rs` (the data),
//! `policy.rs` (the kernel-free rules, tested on the host by `host/`).

mod configfs;
pub mod policy;
mod queue;
mod store;
mod trace;

use kernel::{
    block::{
        disk::{QueueLimits, SysfsBuffer},
        mq::{
            gen_disk::{GenDisk, GenDiskBuilder},
            HwQueueId, HwQueueType, IoCompBatch, Operations, QueueMaps, Request, TagSet,
            TagSetFlags, TimeoutAction,
        },
    },
    c_str,
    prelude::*,
    str::CStr,
    sync::{aref::ARef, atomic::Atomic, atomic::Relaxed, Arc, ArcBorrow},
};
use policy::{IrqMode, Params, CHUNK};
use queue::{end_request, HwQueue};
use store::Store;

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
    subsystem: kernel::configfs::Subsystem<configfs::Root>,
}

impl kernel::InPlaceModule for BlkPollModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            subsystem <- configfs::subsystem(),
        })
    }
}

/// A powered-on device: its queues and its data.
#[pin_data]
struct Device {
    params: Params,
    /// The submit queues, then the poll queues (`Params::is_poll_queue`).
    queues: KVec<Pin<KBox<HwQueue>>>,
    #[pin]
    store: Store,
    timeouts: Atomic<u64>,
}

impl Device {
    fn new(params: Params) -> Result<Arc<Self>> {
        let total = params.hw_queues();
        let mut queues = KVec::with_capacity(total as usize, GFP_KERNEL)?;
        for i in 0..total {
            let kind = if params.is_poll_queue(i) {
                HwQueueType::Poll
            } else {
                HwQueueType::Default
            };
            // On an error the queues made so far are dropped with `queues`: a queue owns its
            // timer and nothing else holds it.
            queues.push(HwQueue::new(kind, params.queue_depth)?, GFP_KERNEL)?;
        }
        Arc::pin_init(
            try_pin_init!(Self {
                params,
                queues,
                store <- Store::new(params.capacity_bytes()),
                timeouts: Atomic::new(0),
            }),
            GFP_KERNEL,
        )
    }

    fn queue(&self, id: HwQueueId) -> Result<Pin<&HwQueue>> {
        self.queues
            .get(id.index() as usize)
            .map(|q| q.as_ref())
            .ok_or(EIO)
    }

    fn write_stats(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        policy::write_device_stats(w, &self.params, self.timeouts.load(Relaxed))?;
        for (i, q) in self.queues.iter().enumerate() {
            let (s, est, inflight) = {
                let state = q.state.lock();
                (state.stats, state.estimator, state.inflight())
            };
            policy::write_queue_stats(w, i, q.kind == HwQueueType::Poll, &s, inflight, &est)?;
        }
        Ok(())
    }
}

/// Creates a device and its disk.
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
        .capacity_sectors(p.capacity_sectors())
        .limits(limits)
        .partition_scan(false)
        .attribute_group(c_str!("blk_poll"), SYSFS_FILES)
        .build(fmt!("{}", name.to_str()?), tagset, device.clone())?;
    disk.show_attributes()?;
    Ok((disk, device))
}

/// The files of the disk's `blk_poll` sysfs directory.
const SYSFS_FILES: &[&CStr] = &[c_str!("stats")];

struct BlkPoll;

#[vtable]
impl Operations for BlkPoll {
    type QueueData = Arc<Device>;

    const OWNER: Option<&'static ThisModule> = Some(kernel::module::this_module::<LocalModule>());

    fn queue_rq(dev: ArcBorrow<'_, Device>, rq: ARef<Request<Self>>, _is_last: bool) -> Result {
        let id = rq.hw_queue();
        let q = dev.queue(id)?;
        let result = dev.store.execute(&rq);
        if result == Err(ENOMEM) {
            // Retried by the block layer (BLK_STS_RESOURCE).
            return Err(ENOMEM);
        }
        if result.is_ok() && id.kind() == HwQueueType::Poll {
            let polled = rq.is_polled();
            let devt = rq.disk().devt();
            let sleep = q.defer(rq, &dev.params, false);
            // Only a hybrid device's tag set is `BLOCKING` (`power_on`), and only a hybrid
            // device plans sleeps: here the task may sleep.
            if sleep > 0 && polled && dev.params.blocking() {
                let slept = q.hybrid_sleep(sleep);
                trace::blk_poll_hybrid_sleep(devt, id.index(), sleep, slept);
            }
            return Ok(());
        }
        match (result, dev.params.irq_mode) {
            (Ok(()), IrqMode::Timer) => {
                q.defer(rq, &dev.params, true);
            }
            (Ok(()), IrqMode::Softirq) => {
                q.count_done();
                Request::complete(rq);
            }
            (result, _) => {
                q.count_done();
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
        let found = match dev.queue(hctx) {
            Ok(q) => q.poll(dev.params.timed(false), batch),
            Err(_) => 0,
        };
        trace::blk_poll_poll(hctx.index(), found);
        found
    }

    fn timeout(dev: ArcBorrow<'_, Device>, rq: &Request<Self>) -> TimeoutAction {
        // Only deferred requests can time out, and all of them are due long before the block
        // layer's timeout: complete whatever is due on the queue (nobody polled it).
        dev.timeouts.fetch_add(1, Relaxed);
        match dev.queue(rq.hw_queue()) {
            Ok(q) if q.complete_due(rq) => TimeoutAction::Done,
            _ => TimeoutAction::ResetTimer,
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
