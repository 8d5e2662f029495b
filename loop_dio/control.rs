// SPDX-License-Identifier: GPL-2.0

//! The devices of the module: the registry of `/dev/loopN` (index allocation, creation on open,
//! removal) and `/dev/loop-control`.

use crate::{
    abi,
    device::Loop,
    io::LoopOps,
    rules::{self, Params},
};
use kernel::{
    block::{
        disk::{BlkdevProbe, QueueLimits},
        mq::{gen_disk::GenDisk, gen_disk::GenDiskBuilder, QueueMaps, TagSet, TagSetFlags},
    },
    c_str,
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    str::CStr,
    sync::Arc,
};

/// `lim.max_hw_sectors` of the C driver.
pub(crate) const MAX_HW_SECTORS: u32 = 2560;

/// Attribute files under `/sys/block/loopN/loop/`, read by losetup and lsblk.
const SYSFS_FILES: &[&CStr] = &[
    c_str!("backing_file"),
    c_str!("offset"),
    c_str!("sizelimit"),
    c_str!("autoclear"),
    c_str!("partscan"),
    c_str!("dio"),
    c_str!("inline_ios"),
    c_str!("worker_ios"),
    c_str!("nowait_retries"),
    c_str!("nowait_requeues"),
];

/// Creates `/dev/loopN` when a missing one is opened, as the C driver does.
pub(crate) struct LoopProbe;

impl BlkdevProbe for LoopProbe {
    fn probe(devt: u32) {
        let mut registry = LOOPS.lock();
        let Some(index) = registry.params.index_of(devt) else {
            return;
        };
        // An existing device (e.g. opened twice at once) is not an error here.
        if let Err(e) = registry.add(Some(index)) {
            if e != EEXIST {
                pr_warn!("cannot create loop{} on open: {:?}\n", index, e);
            }
        }
    }
}

/// A device: its disk and its state (shared with the block layer as queue data).
///
/// The fields drop in order: the disk first (`del_gendisk()` drains its queue, so no request
/// and no new work remain), then the device, whose worker is flushed before this reference goes.
pub(crate) struct LoopEntry {
    disk: GenDisk<LoopOps>,
    pub(crate) lo: FlushedLoop,
}

/// A reference to a device that flushes the device's worker when dropped: the worker then holds
/// no reference to the device, so the last one never drops on the worker's own queue.
pub(crate) struct FlushedLoop(Arc<Loop>);

impl core::ops::Deref for FlushedLoop {
    type Target = Arc<Loop>;

    fn deref(&self) -> &Arc<Loop> {
        &self.0
    }
}

impl Drop for FlushedLoop {
    fn drop(&mut self) {
        self.0.wq.flush();
    }
}

/// Every device, and the checked load parameters they are made with (`loop_index_idr`).
pub(crate) struct Registry {
    pub(crate) entries: KVec<KBox<LoopEntry>>,
    /// Indexes of devices being removed: their disks are deleted outside the lock, and until
    /// that is done the name is taken, so the index cannot be added again (as C keeps the index
    /// allocated, hidden, until `loop_remove()` is done).
    deleting: KVec<u32>,
    pub(crate) params: Params,
}

impl Registry {
    const fn new() -> Self {
        Self {
            entries: KVec::new(),
            deleting: KVec::new(),
            params: Params::DEFAULT,
        }
    }

    /// Whether `index` is taken: by a device, or by one being removed.
    fn taken(&self, index: u32) -> bool {
        self.find(index).is_some() || self.deleting.contains(&index)
    }

    pub(crate) fn find(&self, index: u32) -> Option<&LoopEntry> {
        self.entries
            .iter()
            .find(|e| e.lo.number == index)
            .map(|e| &**e)
    }

    /// Adds device `index`, or the lowest free index when `None` (`loop_add()`).
    pub(crate) fn add(&mut self, index: Option<u32>) -> Result<u32> {
        let params = self.params;
        let index = match index {
            Some(i) if i >= params.max_devices() => return Err(EINVAL),
            Some(i) if self.taken(i) => return Err(EEXIST),
            Some(i) => i,
            None => (0..params.max_devices())
                .find(|i| !self.taken(*i))
                .ok_or(ENOSPC)?,
        };
        let lo = Loop::new(index, &params)?;
        let mut flags = TagSetFlags::STACKING | TagSetFlags::NO_SCHED_BY_DEFAULT;
        if params.inline_dio() {
            // Inline submission enters the backing file system, which may still sleep when
            // told not to wait (`IOCB_NOWAIT` waits for no I/O, no contended inode lock, no
            // tag; what made the earlier blocking version stall): freeze protection for every
            // write (`kiocb_start_write()`, a `percpu_down_read()`), ext4's `i_data_sem` and
            // extent-tree reads on an extent-cache miss, the atime update's journal handle,
            // `GFP_KERNEL` bios in iomap and the block device's direct I/O. A non-blocking
            // `queue_rq` runs under `rcu_read_lock()`, where none of that may happen.
            flags = flags | TagSetFlags::BLOCKING;
        }
        let maps = QueueMaps::new(1)?.with_poll(params.poll_queues());
        let tagset = Arc::pin_init(
            TagSet::new_with_maps(maps, params.queue_depth(), flags),
            GFP_KERNEL,
        )?;
        let mut limits = QueueLimits::default();
        limits.set_block_size(rules::SECTOR_SIZE)?;
        limits.set_max_hw_sectors(MAX_HW_SECTORS);
        let (first_minor, minors) = params.minors(index);
        let disk = GenDiskBuilder::new()
            .limits(limits)
            .device_numbers(rules::LOOP_MAJOR, first_minor, minors)
            .partition_scan(params.partitions_always())
            .attribute_group(c_str!("loop"), SYSFS_FILES)
            .build(fmt!("loop{}", index), tagset, lo.clone())?;
        // From here on the disk may have seen I/O (a partition scan): an error drops the entry,
        // which flushes the worker.
        let entry = KBox::new(
            LoopEntry {
                disk,
                lo: FlushedLoop(lo),
            },
            GFP_KERNEL,
        )?;
        // blk-mq offers polling with poll queues; it is on only while bound to a backing device
        // that polls.
        entry.disk.update_limits(|lim| {
            lim.set_poll(false);
            Ok(())
        })?;
        self.entries.push(entry, GFP_KERNEL)?;
        Ok(index)
    }

    /// Removes an unbound, closed device (`LOOP_CTL_REMOVE`); returns it so the caller deletes
    /// the disk outside the registry's lock, then calls [`Registry::removed`].
    fn remove(&mut self, index: u32) -> Result<KBox<LoopEntry>> {
        let pos = self
            .entries
            .iter()
            .position(|e| e.lo.number == index)
            .ok_or(ENODEV)?;
        self.deleting.reserve(1, GFP_KERNEL)?;
        {
            let entry = &self.entries[pos];
            let mut state = entry.lo.state.lock();
            let status = state
                .status
                .remove(entry.disk.openers())
                .map_err(crate::to_error)?;
            entry.lo.enter(&mut state, status);
        }
        let entry = self.entries.remove(pos).map_err(|_| ENODEV)?;
        // Room was reserved above.
        self.deleting
            .push_within_capacity(index)
            .map_err(|_| ENOMEM)?;
        Ok(entry)
    }

    /// The disk of device `index`, removed with [`Registry::remove`], is deleted: the index is
    /// free again.
    fn removed(&mut self, index: u32) {
        self.deleting.retain(|i| *i != index);
    }

    /// Empties the registry at module exit, its vectors' buffers too (they live in a static
    /// that is never dropped): the devices are returned, to be dropped outside the lock.
    pub(crate) fn take_all(&mut self) -> KVec<KBox<LoopEntry>> {
        self.deleting = KVec::new();
        core::mem::take(&mut self.entries)
    }

    fn first_free(&self) -> Option<u32> {
        self.entries
            .iter()
            .filter(|e| e.lo.state.lock().status.is_free())
            .map(|e| e.lo.number)
            .min()
    }
}

kernel::sync::global_lock! {
    // SAFETY: Initialized in the module initializer before first use.
    pub(crate) unsafe(uninit) static LOOPS: Mutex<Registry> = Registry::new();
}

kernel::sync::global_lock! {
    // SAFETY: Initialized in the module initializer before first use.
    /// Serialises the backing-file chain check with the changes that could make it stale
    /// (`loop_validate_mutex`): binding a device to another loop device, and detaching one.
    /// Taken before any device's mutex.
    pub(crate) unsafe(uninit) static VALIDATE: Mutex<()> = ();
}

/// Registers `/dev/loop-control` with its fixed minor.
pub(crate) fn register(minor: u32) -> impl PinInit<MiscDeviceRegistration<LoopControl>, Error> {
    MiscDeviceRegistration::register_with_minor(
        MiscDeviceOptions {
            name: c_str!("loop-control"),
        },
        minor,
    )
}

/// `/dev/loop-control`.
pub(crate) struct LoopControl;

#[vtable]
impl MiscDevice for LoopControl {
    type Ptr = ();

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result {
        Ok(())
    }

    fn ioctl((): (), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        // The C driver takes the argument as an `int`.
        let index = arg as i32;
        match cmd {
            abi::LOOP_CTL_ADD => {
                let index = if index < 0 { None } else { Some(index as u32) };
                Ok(LOOPS.lock().add(index)? as isize)
            }
            abi::LOOP_CTL_REMOVE => {
                if index < 0 {
                    return Err(EINVAL);
                }
                let index = index as u32;
                let entry = LOOPS.lock().remove(index)?;
                // del_gendisk() runs here, outside the registry's lock; until it is done, the
                // name loopN is taken and the index is not handed out again.
                drop(entry);
                LOOPS.lock().removed(index);
                Ok(0)
            }
            abi::LOOP_CTL_GET_FREE => {
                let mut registry = LOOPS.lock();
                match registry.first_free() {
                    Some(i) => Ok(i as isize),
                    None => Ok(registry.add(None)? as isize),
                }
            }
            _ => Err(ENOSYS),
        }
    }

    #[cfg(CONFIG_COMPAT)]
    fn compat_ioctl(device: (), file: &File, cmd: u32, arg: usize) -> Result<isize> {
        Self::ioctl(device, file, cmd, arg)
    }
}
