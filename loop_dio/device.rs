// SPDX-License-Identifier: GPL-2.0

//! One loop device: its configuration, attaching and detaching a backing file, and the ioctls
//! and sysfs files of `/dev/loopN`.

use crate::{
    abi::{self, LoopConfig, LoopInfo64},
    control::{LOOPS, MAX_HW_SECTORS, VALIDATE},
    io::{IoConfig, LoopOps, Unsupported},
    rules::{self, DirectIo, Params, Status},
    to_error,
};
use core::fmt::Write;
use kernel::{
    block::{
        backing_file::{
            BackingCandidate, BackingFile, BackingKind, PageCacheGfpGuard, PolledIos, Retries,
        },
        disk::{
            validate_block_size, BlockDevice, DiskRef, ModuleRef, OpenMode, QueueFreeze,
            QueueLimits, ReleasedDisk, SysfsBuffer, TemporaryClaim,
        },
        mq::Request,
    },
    capability::{self, Capability},
    new_mutex, new_spinlock,
    prelude::*,
    str::{CStr, CString},
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        Arc, Mutex, SpinLock,
    },
    uaccess::{UserPtr, UserSlice},
    workqueue::{impl_has_work, new_work, OwnedQueue, QueueFlags, Work},
};

/// What a bound device holds: its backing file, the page-cache restriction on that file, and a
/// module reference (a bound device keeps the driver loaded, as in C).
struct Binding {
    file: Arc<BackingFile>,
    _gfp: PageCacheGfpGuard,
    _module: ModuleRef,
}

/// Configuration, changed under the device's mutex.
pub(crate) struct State {
    pub(crate) status: Status,
    flags: u32,
    offset: u64,
    sizelimit: u64,
    file_name: [u8; abi::NAME_SIZE],
    binding: Option<Binding>,
    /// Direct I/O alignment of the backing file: offset granule and memory mask.
    min_dio_size: u32,
    dio_mem_align: u32,
}

impl State {
    /// The backing file of a bound device (`ENXIO` when unbound).
    fn bound_file(&self) -> Result<Arc<BackingFile>> {
        self.binding.as_ref().map(|b| b.file.clone()).ok_or(ENXIO)
    }

    fn direct_io(&self) -> bool {
        self.flags & abi::FLAG_DIRECT_IO != 0
    }

    /// `ENXIO` unless a backing file is bound.
    fn bound(&self) -> Result {
        self.status.bound().map_err(to_error)
    }
}

#[pin_data]
pub(crate) struct Loop {
    pub(crate) number: u32,
    /// Every device scans partitions (`max_part` given).
    partitions_always: bool,
    /// The tag set has poll queues.
    has_poll_queues: bool,
    #[pin]
    pub(crate) state: Mutex<State>,
    #[pin]
    pub(crate) io: SpinLock<IoConfig>,
    /// Requests queued by `queue_rq` for the worker. Room for every tag of the tag set (each
    /// request holds one), so queueing never needs memory nor fails.
    #[pin]
    pub(crate) pending: SpinLock<KVVec<ARef<Request<LoopOps>>>>,
    /// The worker's own batch buffer, swapped with `pending` (no allocation on the I/O path), of
    /// the same size.
    #[pin]
    pub(crate) batch: Mutex<KVVec<ARef<Request<LoopOps>>>>,
    #[pin]
    pub(crate) work: Work<Loop>,
    /// Polled I/Os in flight on the backing file, reaped by `poll`.
    #[pin]
    pub(crate) polled_ios: PolledIos<LoopOps>,
    /// The worker's queue (`loopN`): unbound, and frozen for suspend like the tasks that write
    /// the backing file. The registry's entry flushes it once the disk is deleted, so the worker
    /// never holds the last reference to the device (whose drop destroys this queue, which
    /// must not happen on the queue itself).
    pub(crate) wq: OwnedQueue,
    /// [`Unsupported`] modes the bound file refused, and those turned off in the limits already.
    pub(crate) unsupported: Atomic<u32>,
    pub(crate) limits_off: Atomic<u32>,
    /// Direct reads and writes are tried inline from `queue_rq` (`inline_dio`).
    pub(crate) inline_dio: bool,
    /// Inline attempts given back to the block layer (failed after they were queued: `EAGAIN`
    /// from the backing device), owed to the worker.
    pub(crate) retries: Arc<Retries>,
    /// Inline attempts the backing file refused at once (`EAGAIN` and the like), handed to the
    /// worker from `queue_rq`.
    pub(crate) refused: Atomic<u64>,
    /// Requests submitted inline, and requests handed to the worker.
    pub(crate) inline_ios: Atomic<u64>,
    pub(crate) worker_ios: Atomic<u64>,
    /// The device is [`Status::Bound`]: `queue_rq` fails requests otherwise, as C's
    /// `loop_queue_rq()` does (racy by design: a request that raced the change finds the file
    /// it had, or none).
    pub(crate) serving: Atomic<bool>,
}

impl_has_work! {
    impl HasWork<Self> for Loop { self.work }
}

impl Loop {
    pub(crate) fn new(number: u32, params: &Params) -> Result<Arc<Self>> {
        let tags = params.tags();
        let name = CString::try_from_fmt(fmt!("loop{}", number))?;
        Arc::pin_init(
            try_pin_init!(Self {
                number,
                partitions_always: params.partitions_always(),
                has_poll_queues: params.poll_queues() > 0,
                state <- new_mutex!(State {
                    status: Status::Unbound,
                    flags: 0,
                    offset: 0,
                    sizelimit: 0,
                    file_name: [0; abi::NAME_SIZE],
                    binding: None,
                    min_dio_size: rules::SECTOR_SIZE,
                    dio_mem_align: rules::SECTOR_SIZE - 1,
                }),
                io <- new_spinlock!(IoConfig::default()),
                pending <- new_spinlock!(KVVec::with_capacity(tags, GFP_KERNEL)?),
                batch <- new_mutex!(KVVec::with_capacity(tags, GFP_KERNEL)?),
                work <- new_work!("Loop::work"),
                polled_ios <- PolledIos::new(params.poll_tags()),
                wq: OwnedQueue::new(&name, QueueFlags::UNBOUND | QueueFlags::FREEZABLE, 0)?,
                unsupported: Atomic::new(0),
                limits_off: Atomic::new(0),
                inline_dio: params.inline_dio(),
                retries: Arc::new(Retries::new(), GFP_KERNEL)?,
                refused: Atomic::new(0),
                inline_ios: Atomic::new(0),
                worker_ios: Atomic::new(0),
                serving: Atomic::new(false),
            }),
            GFP_KERNEL,
        )
    }

    /// Moves the device to `status`, telling `queue_rq` whether it serves I/O.
    pub(crate) fn enter(&self, state: &mut State, status: Status) {
        state.status = status;
        self.serving.store(status == Status::Bound, Relaxed);
    }

    pub(crate) fn io_snapshot(&self) -> IoConfig {
        self.io.lock().clone()
    }

    /// Nobody may hold the device exclusively while it changes under them: a caller that did
    /// not open it `O_EXCL` claims it for the change (as C's `bd_prepare_to_claim()`).
    fn claim_unless_exclusive(
        bdev: &BlockDevice,
        mode: OpenMode,
    ) -> Result<Option<TemporaryClaim<'_>>> {
        if mode.is_exclusive() {
            Ok(None)
        } else {
            bdev.claim_temporarily().map(Some)
        }
    }

    /// The device's size from its backing file and the configured window.
    fn size_sectors(state: &State) -> u64 {
        let Some(binding) = &state.binding else {
            return 0;
        };
        let file_size = binding.file.size().unwrap_or(0);
        rules::device_sectors(file_size, state.offset, state.sizelimit)
    }

    fn can_use_dio(state: &State, file: &BackingFile, block_size: u32) -> bool {
        rules::can_use_direct_io(
            file.can_direct_io(),
            block_size,
            state.min_dio_size,
            state.offset,
        )
    }

    /// Whether polled I/O goes through to `file`: it needs poll queues here, direct I/O, and a
    /// backing device that polls.
    fn polls(&self, flags: u32, file: &BackingFile) -> bool {
        self.has_poll_queues && flags & abi::FLAG_DIRECT_IO != 0 && file.can_poll()
    }

    fn publish_io(&self, state: &State) {
        let file = state.binding.as_ref().map(|b| b.file.clone());
        let polled = file.as_ref().is_some_and(|f| self.polls(state.flags, f));
        let mut io = self.io.lock();
        io.file = file;
        io.offset = state.offset;
        io.direct = state.direct_io();
        io.polled = polled;
        io.read_only = state.flags & abi::FLAG_READ_ONLY != 0;
    }

    /// Sets the capacity the I/O path allows and then the disk's, under a freeze of the
    /// caller's: no request is in flight while the window changes.
    fn set_window(&self, disk: &DiskRef, _frozen: &QueueFreeze<'_>, sectors: u64) {
        self.io.lock().sectors = sectors;
        disk.set_capacity_and_notify(sectors);
    }

    /// Edits the current limits for `file` and `block_size` (`loop_update_limits()`).
    fn apply_limits(
        &self,
        lim: &mut QueueLimits,
        state: &State,
        file: &BackingFile,
        block_size: u32,
    ) -> Result {
        lim.set_block_size(block_size)?;
        lim.set_max_hw_sectors(MAX_HW_SECTORS);
        lim.set_dma_alignment(rules::dma_alignment(state.direct_io(), state.dio_mem_align));
        lim.set_write_cache(file.can_fsync() && state.flags & abi::FLAG_READ_ONLY == 0);
        lim.set_poll(self.polls(state.flags, file));
        lim.set_rotational(file.is_rotational());
        // Discard and write-zeroes become fallocate(): on a regular file that has it, and on a
        // block device as far as it zeroes (as C mirrors the device's write-zeroes limit; before,
        // loop_dio offered none there: EOPNOTSUPP where C loop discards, found by
        // tests/hardening's fuzzer).
        let (max, granule) = match file.kind() {
            BackingKind::Regular => file
                .fallocate_granularity()
                .map_or((0, 0), |granule| (u32::MAX >> 9, granule)),
            BackingKind::BlockDevice(_) => file.block_device_zeroing().unwrap_or((0, 0)),
        };
        // What the file refused stays off while it is bound.
        let unsupported = self.unsupported.load(Relaxed);
        let unless = |bit: u32| if unsupported & bit != 0 { 0 } else { max };
        lim.set_discard(unless(Unsupported::PUNCH_HOLE), granule);
        lim.set_max_write_zeroes_sectors(unless(Unsupported::ZERO_RANGE));
        Ok(())
    }

    /// The backing-file chain check of `loop_validate_file()`: a loop device may sit on another
    /// one, but not on itself through any chain (`EBADF`), nor on one that is not bound
    /// (`EINVAL`). Run with [`VALIDATE`] held up to the binding, when `file` is a loop device.
    fn validate_chain(&self, file: &BackingFile) -> Result {
        let mut kind = file.kind();
        let mut depth = 0;
        while let BackingKind::BlockDevice(devt) = kind {
            let next = {
                let registry = LOOPS.lock();
                let Some(index) = registry.params.index_of(devt) else {
                    break;
                };
                // Also through a partition of this device.
                if index == self.number {
                    return Err(EBADF);
                }
                registry.find(index).map(|e| e.lo.clone())
            };
            depth += 1;
            if depth > 64 {
                return Err(EINVAL);
            }
            let Some(next) = next else { break };
            let state = next.state.lock();
            if state.status != Status::Bound {
                return Err(EINVAL);
            }
            kind = state.bound_file()?.kind();
        }
        Ok(())
    }

    /// Whether binding `file` makes a chain of loop devices, whose check needs [`VALIDATE`].
    fn is_loop_device(file: &BackingFile) -> bool {
        matches!(file.kind(), BackingKind::BlockDevice(devt) if devt >> rules::MINORBITS == rules::LOOP_MAJOR)
    }

    fn configure(&self, bdev: &BlockDevice, mode: OpenMode, config: &LoopConfig) -> Result<i32> {
        let disk = bdev.disk();
        // SAFETY: We are in the disk's ioctl handler: the ioctl system call holds no
        // `fdget_pos()` on any file.
        let candidate = unsafe { BackingCandidate::from_fd(config.fd) }?;
        let module = ModuleRef::get(kernel::module::this_module::<crate::LocalModule>())?;
        let _claim = Self::claim_unless_exclusive(bdev, mode)?;
        // C's order of errors: a busy device (checked again below, under the locks) before the
        // file's kind.
        self.state.lock().status.may_attach().map_err(to_error)?;
        let file = candidate.into_backing()?;
        let validating = Self::is_loop_device(&file).then(|| VALIDATE.lock());
        self.validate_chain(&file)?;

        let mut state = self.state.lock();
        state.status.may_attach().map_err(to_error)?;
        if config.info.flags & !abi::CONFIGURE_SETTABLE_FLAGS != 0 {
            return Err(EINVAL);
        }
        config.info.validate().map_err(to_error)?;
        let mut flags = config.info.flags;
        if !file.is_writable() || !mode.is_write() {
            flags |= abi::FLAG_READ_ONLY;
        }
        // The block layer's rule, as in C: up to a page, or 64 KiB with large folios
        // (CONFIG_TRANSPARENT_HUGEPAGE). C sets the disk's read-only state before it learns
        // this (the limits' commit refuses the size), so a refused block size leaves the
        // unbound disk read-only or writable as asked: BLKROGET, sysfs and writes (EPERM or
        // ENOSPC) answer as on C's (found by tests/hardening's fuzzer).
        if config.block_size != 0 {
            if let Err(e) = validate_block_size(config.block_size) {
                disk.set_read_only(flags & abi::FLAG_READ_ONLY != 0);
                return Err(e);
            }
        }
        let (min_dio, mem_align) = file.direct_io_alignment();
        state.min_dio_size = min_dio.max(rules::SECTOR_SIZE);
        state.dio_mem_align = mem_align;
        state.offset = config.info.offset;
        state.sizelimit = config.info.sizelimit;
        // A new file: what it can do is learned anew.
        self.unsupported.store(0, Relaxed);
        self.limits_off.store(0, Relaxed);

        let explicit_dio = flags & abi::FLAG_DIRECT_IO != 0;
        let want_dio = explicit_dio || file.opened_direct();
        let block_size =
            rules::block_size_or_default(config.block_size, want_dio, state.min_dio_size);
        let possible = Self::can_use_dio(&state, &file, block_size);
        match rules::direct_io_at_attach(explicit_dio, file.opened_direct(), possible) {
            DirectIo::On => flags |= abi::FLAG_DIRECT_IO,
            DirectIo::Off => flags &= !abi::FLAG_DIRECT_IO,
            DirectIo::Refused => {
                pr_err!(
                    "loop{}: direct I/O needs an O_DIRECT-capable file, blocks of at least {} bytes and an aligned offset\n",
                    self.number,
                    state.min_dio_size
                );
                return Err(EINVAL);
            }
        }
        if self.partitions_always {
            flags |= abi::FLAG_PARTSCAN;
        }
        state.flags = flags;

        disk.update_limits(|lim| self.apply_limits(lim, &state, &file, block_size))?;

        // Switching to direct I/O: what the page cache holds dirty must reach the file first.
        let _ = file.fsync();

        let gfp = file.restrict_page_cache_allocations()?;
        let file = Arc::new(file, GFP_KERNEL)?;
        state.file_name = config.info.terminated_file_name();
        state.binding = Some(Binding {
            file,
            _gfp: gfp,
            _module: module,
        });
        self.publish_io(&state);
        self.enter(&mut state, Status::Bound);

        disk.force_media_change();
        disk.set_read_only(flags & abi::FLAG_READ_ONLY != 0);
        // No freeze (as C): the capacity was 0 until here, so no request can be in flight that
        // the window matters to.
        let sectors = Self::size_sectors(&state);
        self.io.lock().sectors = sectors;
        disk.set_capacity_and_notify(sectors);
        if let Err(e) = disk.show_attributes() {
            pr_warn!("loop{}: no sysfs attributes: {:?}\n", self.number, e);
        }
        let partscan = flags & abi::FLAG_PARTSCAN != 0;
        if partscan {
            disk.set_partition_scan(true);
        }
        drop(state);
        drop(validating);
        if partscan {
            self.reread_partitions(disk);
        }
        Ok(0)
    }

    /// Rereads the partition table (`loop_reread_partitions()`); a failure is only reported.
    fn reread_partitions(&self, disk: &DiskRef) {
        if let Err(e) = disk.rescan_partitions() {
            pr_warn!("loop{}: partition scan failed: {:?}\n", self.number, e);
        }
    }

    /// Detaches the backing file: on the last close after `LOOP_CLR_FD`, or with autoclear
    /// (`__loop_clr_fd()`), with the device in [`Status::Rundown`]: no ioctl changes it (they need
    /// it bound), nobody opens it, and no other detach runs, so most of this needs no lock.
    ///
    /// The device's mutex is not held while the sysfs files go: removing them waits for readers
    /// inside `show`, which take that mutex. Where it is held, the lock order is the device's
    /// mutex, then the queue freeze (as everywhere here): allocations under the mutex may enter
    /// reclaim, which may wait for this queue.
    fn clear(&self, disk: &ReleasedDisk) {
        let (binding, polled) = {
            // No freeze (as C): this is the last close, so nothing is open to send I/O; a request
            // that still comes (through a partition opened before the partitions went) finds no
            // file, or finishes on the one its batch started with.
            let mut state = self.state.lock();
            // The poll limit follows what the I/O path was told (both change together).
            let polled = self.io.lock().polled;
            let binding = state.binding.take();
            state.flags = 0;
            state.offset = 0;
            state.sizelimit = 0;
            state.file_name = [0; abi::NAME_SIZE];
            self.publish_io(&state);
            self.io.lock().sectors = 0;
            (binding, polled)
        };
        // Back to the defaults; committing limits freezes the queue (an RCU grace period, while
        // openers wait for this release), so only when something is to change.
        if polled || disk.logical_block_size() != rules::SECTOR_SIZE {
            if let Err(e) = disk.update_limits(|lim| {
                lim.set_poll(false);
                lim.set_block_size(rules::SECTOR_SIZE)
            }) {
                pr_warn!(
                    "loop{}: cannot reset the queue limits: {:?}\n",
                    self.number,
                    e
                );
            }
        }
        disk.invalidate();
        disk.hide_attributes();
        disk.notify_change();
        disk.force_media_change();
        if let Err(e) = disk.rescan_partitions() {
            pr_warn!("loop{}: partition scan failed: {:?}\n", self.number, e);
        }
        if !self.partitions_always {
            disk.set_partition_scan(false);
        }
        self.enter(&mut self.state.lock(), Status::Unbound);
        // The file (and the module reference) go last, outside the device's lock.
        drop(binding);
    }

    fn clr_fd(&self, disk: &DiskRef) -> Result<i32> {
        // A chain check that found this device bound must not race its run-down.
        let _validating = VALIDATE.lock();
        let mut state = self.state.lock();
        let (status, flags) = state
            .status
            .clear_fd(state.flags, disk.openers())
            .map_err(to_error)?;
        // Run down (the caller is the only opener): its descriptor still sends I/O (e.g.
        // BLKDISCARD), which fails from now on, as on C's.
        self.enter(&mut state, status);
        state.flags = flags;
        Ok(0)
    }

    fn set_status(&self, bdev: &BlockDevice, info: &LoopInfo64) -> Result<i32> {
        let disk = bdev.disk();
        let mut state = self.state.lock();
        state.bound()?;
        info.validate().map_err(to_error)?;
        let window_changed = state.offset != info.offset || state.sizelimit != info.sizelimit;
        if window_changed && state.direct_io() {
            let file = state.bound_file()?;
            let aligned = rules::can_use_direct_io(
                true,
                disk.logical_block_size(),
                state.min_dio_size,
                info.offset,
            );
            if !aligned || !file.can_direct_io() {
                pr_err!(
                    "loop{}: offset {} breaks direct I/O alignment ({} bytes); turn direct I/O off first\n",
                    self.number,
                    info.offset,
                    state.min_dio_size
                );
                return Err(EINVAL);
            }
        }
        if window_changed {
            let _ = bdev.sync();
            bdev.invalidate();
        }
        let partscan =
            state.flags & abi::FLAG_PARTSCAN == 0 && info.flags & abi::FLAG_PARTSCAN != 0;
        {
            // The window and the capacity change together, with no I/O in flight.
            let frozen = disk.freeze();
            state.offset = info.offset;
            state.sizelimit = info.sizelimit;
            state.file_name = info.terminated_file_name();
            state.flags = abi::set_status_flags(state.flags, info.flags);
            self.publish_io(&state);
            if window_changed {
                self.set_window(disk, &frozen, Self::size_sectors(&state));
            }
        }
        if partscan {
            disk.set_partition_scan(true);
        }
        drop(state);
        if partscan {
            self.reread_partitions(disk);
        }
        Ok(0)
    }

    fn get_status(&self) -> Result<LoopInfo64> {
        let (mut info, file) = {
            let state = self.state.lock();
            state.bound()?;
            let file = state.bound_file()?;
            (
                LoopInfo64 {
                    number: self.number,
                    offset: state.offset,
                    sizelimit: state.sizelimit,
                    flags: state.flags,
                    file_name: state.file_name,
                    ..LoopInfo64::default()
                },
                file,
            )
        };
        let id = file.identity()?;
        info.device = abi::encode_dev(id.dev);
        info.inode = id.ino;
        info.rdevice = abi::encode_dev(id.rdev);
        Ok(info)
    }

    fn set_capacity(&self, disk: &DiskRef) -> Result<i32> {
        let state = self.state.lock();
        state.bound()?;
        let sectors = Self::size_sectors(&state);
        self.set_window(disk, &disk.freeze(), sectors);
        Ok(0)
    }

    fn set_direct_io(&self, disk: &DiskRef, on: bool) -> Result<i32> {
        let mut state = self.state.lock();
        state.bound()?;
        if on == state.direct_io() {
            return Ok(0);
        }
        let file = state.bound_file()?;
        if on {
            if !Self::can_use_dio(&state, &file, disk.logical_block_size()) {
                pr_err!(
                    "loop{}: cannot do direct I/O: the file system must support it, blocks must be at least {} bytes and the offset aligned to that\n",
                    self.number,
                    state.min_dio_size
                );
                return Err(EINVAL);
            }
            let _ = file.fsync();
        }
        let flags = if on {
            state.flags | abi::FLAG_DIRECT_IO
        } else {
            state.flags & !abi::FLAG_DIRECT_IO
        };
        let mem_align = rules::dma_alignment(on, state.dio_mem_align);
        let polls = self.polls(flags, &file);
        // The mode and the limits it needs change under one freeze: no request is served in
        // one mode with the alignment of the other.
        let old_flags = state.flags;
        let r = disk.update_limits_frozen(|lim| {
            lim.set_dma_alignment(mem_align);
            lim.set_poll(polls);
            state.flags = flags;
            self.publish_io(&state);
            Ok(())
        });
        if let Err(e) = r {
            // The limits were refused: back to the mode they fit.
            let _frozen = disk.freeze();
            state.flags = old_flags;
            self.publish_io(&state);
            return Err(e);
        }
        Ok(0)
    }

    fn set_block_size(&self, bdev: &BlockDevice, mode: OpenMode, size: usize) -> Result<i32> {
        let disk = bdev.disk();
        let _claim = Self::claim_unless_exclusive(bdev, mode)?;
        let state = self.state.lock();
        state.bound()?;
        // C stores the argument in the queue's unsigned int limit: 2^32 + 512 sets 512, and 2^32
        // the default. The ioctl's users see C's answers (found by tests/hardening's fuzzer).
        let size = size as u32;
        let size = rules::block_size_or_default(size, state.direct_io(), state.min_dio_size);
        if disk.logical_block_size() == size {
            return Ok(0);
        }
        let accepted = validate_block_size(size).is_ok();
        match rules::check_block_size(size, accepted, state.direct_io(), state.min_dio_size) {
            Ok(()) => {}
            Err(rules::BlockSizeError::Invalid) => return Err(EINVAL),
            Err(rules::BlockSizeError::BelowDirectIoGranule) => {
                pr_err!(
                    "loop{}: direct I/O needs blocks of at least {} bytes; turn it off first\n",
                    self.number,
                    state.min_dio_size
                );
                return Err(EINVAL);
            }
        }
        let file = state.bound_file()?;
        let _ = bdev.sync();
        bdev.invalidate();
        disk.update_limits(|lim| self.apply_limits(lim, &state, &file, size))?;
        Ok(0)
    }

    fn change_fd(&self, bdev: &BlockDevice, fd: usize) -> Result<i32> {
        let disk = bdev.disk();
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: We are in the disk's ioctl handler: the ioctl system call holds no
        // `fdget_pos()` on any file.
        let candidate = unsafe { BackingCandidate::from_fd(fd) }?;
        // C's order of errors: the descriptor, the device's state (checked again below, under
        // the locks), then the file's kind.
        {
            let state = self.state.lock();
            state.bound()?;
            if state.flags & abi::FLAG_READ_ONLY == 0 {
                return Err(EINVAL);
            }
        }
        let file = candidate.into_backing()?;
        // Held until the new file is in place: two devices swapped onto each other at once
        // would otherwise both pass the check.
        let validating = Self::is_loop_device(&file).then(|| VALIDATE.lock());
        self.validate_chain(&file)?;
        let old = {
            let mut state = self.state.lock();
            state.bound()?;
            if state.flags & abi::FLAG_READ_ONLY == 0 {
                return Err(EINVAL);
            }
            let old_file = state.bound_file()?;
            let old_size = rules::device_sectors(old_file.size()?, state.offset, state.sizelimit);
            let new_size = rules::device_sectors(file.size()?, state.offset, state.sizelimit);
            if old_size != new_size {
                return Err(EINVAL);
            }
            let _ = file.fsync();
            disk.force_media_change();
            let module = ModuleRef::get(kernel::module::this_module::<crate::LocalModule>())?;
            let gfp = file.restrict_page_cache_allocations()?;
            let (min_dio, mem_align) = file.direct_io_alignment();
            let file = Arc::new(file, GFP_KERNEL)?;
            let _frozen = disk.freeze();
            let old = state.binding.replace(Binding {
                file: file.clone(),
                _gfp: gfp,
                _module: module,
            });
            state.min_dio_size = min_dio.max(rules::SECTOR_SIZE);
            state.dio_mem_align = mem_align;
            if file.opened_direct() {
                state.flags |= abi::FLAG_DIRECT_IO;
            }
            if state.direct_io() && !Self::can_use_dio(&state, &file, disk.logical_block_size()) {
                state.flags &= !abi::FLAG_DIRECT_IO;
            }
            self.publish_io(&state);
            (
                old,
                state.flags & abi::FLAG_PARTSCAN != 0,
                self.polls(state.flags, &file),
            )
        };
        drop(validating);
        let (old_binding, partscan, polls) = old;
        drop(old_binding);
        // The file has changed already: this only follows it. Until it lands, polled requests
        // are submitted unpolled (the queue may still offer polling); they complete all the same.
        if let Err(e) = disk.update_limits(|lim| {
            lim.set_poll(polls);
            Ok(())
        }) {
            pr_warn!(
                "loop{}: polling not updated for the new file: {:?}\n",
                self.number,
                e
            );
        }
        if partscan {
            self.reread_partitions(disk);
        }
        disk.notify_change();
        Ok(0)
    }

    pub(crate) fn loop_ioctl(
        &self,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
    ) -> Result<i32> {
        let may_change = || -> Result {
            if mode.is_write() || capability::capable(Capability::SysAdmin) {
                Ok(())
            } else {
                Err(EPERM)
            }
        };
        let user = |len: usize| UserSlice::new(UserPtr::from_addr(arg), len);
        match cmd {
            abi::LOOP_SET_FD => {
                let config = LoopConfig {
                    fd: u32::try_from(arg).map_err(|_| EBADF)?,
                    ..LoopConfig::default()
                };
                self.configure(bdev, mode, &config)
            }
            abi::LOOP_CONFIGURE => {
                let mut buf = [0u8; abi::config::SIZE];
                user(buf.len()).reader().read_slice(&mut buf)?;
                self.configure(bdev, mode, &LoopConfig::decode(&buf))
            }
            abi::LOOP_CHANGE_FD => self.change_fd(bdev, arg),
            abi::LOOP_CLR_FD => self.clr_fd(bdev.disk()),
            abi::LOOP_SET_STATUS => {
                may_change()?;
                let mut buf = [0u8; abi::info_old::SIZE];
                user(buf.len()).reader().read_slice(&mut buf)?;
                self.set_status(bdev, &abi::info64_from_old(&buf))
            }
            abi::LOOP_SET_STATUS64 => {
                may_change()?;
                let mut buf = [0u8; abi::info64::SIZE];
                user(buf.len()).reader().read_slice(&mut buf)?;
                self.set_status(bdev, &LoopInfo64::decode(&buf))
            }
            abi::LOOP_GET_STATUS => {
                if arg == 0 {
                    return Err(EINVAL);
                }
                let info = self.get_status()?;
                let old = abi::info64_to_old(&info).map_err(to_error)?;
                user(old.len()).writer().write_slice(&old)?;
                Ok(0)
            }
            abi::LOOP_GET_STATUS64 => {
                if arg == 0 {
                    return Err(EINVAL);
                }
                let info = self.get_status()?.encode();
                user(info.len()).writer().write_slice(&info)?;
                Ok(0)
            }
            abi::LOOP_SET_BLOCK_SIZE => {
                may_change()?;
                self.set_block_size(bdev, mode, arg)
            }
            abi::LOOP_SET_CAPACITY => {
                may_change()?;
                self.set_capacity(bdev.disk())
            }
            abi::LOOP_SET_DIRECT_IO => {
                may_change()?;
                self.set_direct_io(bdev.disk(), arg != 0)
            }
            _ => Err(EINVAL),
        }
    }

    /// `lo_open()`: no new opener while the device runs down or goes away.
    pub(crate) fn open(&self) -> Result {
        self.state.lock().status.may_open().map_err(to_error)
    }

    /// `lo_release()`: the last close detaches a device marked for it.
    pub(crate) fn release(&self, disk: &ReleasedDisk) {
        if disk.openers() > 0 {
            return;
        }
        let need_clear = {
            let mut state = self.state.lock();
            let (status, need_clear) = state.status.last_close(state.flags);
            self.enter(&mut state, status);
            need_clear
        };
        if need_clear {
            self.clear(disk);
        }
    }

    pub(crate) fn show(&self, name: &CStr, out: &mut SysfsBuffer<'_>) -> Result {
        let state = self.state.lock();
        let flag = |f: u32| u8::from(state.flags & f != 0);
        // While the files exist, reads succeed as in C: a device being detached shows no file
        // and zeroes.
        let r = match name.to_bytes() {
            b"backing_file" => {
                let Some(binding) = &state.binding else {
                    return Ok(());
                };
                let mut buf = KVec::from_elem(0u8, 4096, GFP_KERNEL)?;
                let path = binding.file.path(&mut buf)?;
                // The bytes as they are, as C prints them: a path need not be UTF-8.
                return out.write_bytes(path).and_then(|()| out.write_bytes(b"\n"));
            }
            b"offset" => writeln!(out, "{}", state.offset),
            b"sizelimit" => writeln!(out, "{}", state.sizelimit),
            b"autoclear" => writeln!(out, "{}", flag(abi::FLAG_AUTOCLEAR)),
            b"partscan" => writeln!(out, "{}", flag(abi::FLAG_PARTSCAN)),
            b"dio" => writeln!(out, "{}", flag(abi::FLAG_DIRECT_IO)),
            b"inline_ios" => writeln!(out, "{}", self.inline_ios.load(Relaxed)),
            b"worker_ios" => writeln!(out, "{}", self.worker_ios.load(Relaxed)),
            b"nowait_retries" => {
                writeln!(out, "{}", self.refused.load(Relaxed) + self.retries.total())
            }
            b"nowait_requeues" => writeln!(out, "{}", self.retries.total()),
            _ => return Err(EINVAL),
        };
        r.map_err(|_| EINVAL)
    }
}
