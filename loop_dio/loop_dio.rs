// SPDX-License-Identifier: GPL-2.0

//! loop_dio: the loop block device in Rust, with direct and asynchronous I/O on the backing
//! file (Linux 4.4), and the same user ABI as `drivers/block/loop.c`: `/dev/loop-control`
//! (misc minor 237) and `/dev/loopN` on block major 7, so util-linux `losetup` works unchanged.
//!
//! Requests go to a per-device worker (the submitter may hold locks or sit in writeback). With
//! direct I/O the worker hands each request to the backing file with an asynchronous kiocb and
//! moves on; the kiocb's completion ends the request. Without it, I/O goes through the backing
//! file's page cache.
//!
//! Polled I/O (io_uring IOPOLL) is offered while direct I/O is on and the backing file's device
//! can poll (NVMe with poll queues): the worker submits such requests polled themselves
//! (`IOCB_HIPRI`), and `poll` polls the backing device and ends the requests whose I/O it found
//! done, so no interrupt sits on that path. They are not submitted inline from `queue_rq`: that
//! would need a blocking tag set, and a submitter that sleeps in the backing file system (e.g.
//! writing back the block device's dirty pages) inside its SRCU section stalls the queue's
//! timeout handling and the polled I/O behind it.

use kernel::{
    block::{
        backing_file::{
            BackingFile, BackingKind, FallocMode, IoMode, NoIoScope, PageCacheGfpGuard, PolledIos,
        },
        disk::{
            BlkdevProbe, BlkdevRegistration, BlockDevice, DiskRef, ModuleRef, OpenMode,
            QueueLimits, ReleasedDisk, SysfsBuffer, TemporaryClaim,
        },
        mq::{
            gen_disk::GenDisk, gen_disk::GenDiskBuilder, HwQueueId, IoCompBatch, Operations,
            QueueMaps, ReqOp, Request, TagSet, TagSetFlags,
        },
    },
    c_str,
    capability::{self, Capability},
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    str::CStr,
    sync::{aref::ARef, new_mutex, new_spinlock, Arc, ArcBorrow, Mutex, SpinLock},
    uaccess::{UserPtr, UserSlice},
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

pub mod abi;

use abi::{LoopConfig, LoopInfo64};
use core::fmt::Write;

module! {
    type: LoopDioModule,
    name: "loop_dio",
    authors: ["rust44"],
    description: "Loop block device with direct and asynchronous I/O (Rust)",
    license: "GPL",
    params: {
        max_loop: u32 {
            default: 8,
            description: "Number of loop devices created at load time",
        },
        max_part: u32 {
            default: 0,
            description: "Maximum number of partitions per loop device",
        },
        hw_queue_depth: u32 {
            default: 128,
            description: "Queue depth of each device",
        },
        poll_queues: u32 {
            default: 1,
            description: "Poll queues of each device, for polled I/O through to the backing file (0: none)",
        },
    },
}

const LOOP_MAJOR: u32 = kernel::bindings::LOOP_MAJOR;
const LOOP_CTRL_MINOR: u32 = kernel::bindings::LOOP_CTRL_MINOR;
const MINORBITS: u32 = 20;
/// `lim.max_hw_sectors` of the C driver.
const MAX_HW_SECTORS: u32 = 2560;
/// Attribute files under `/sys/block/loopN/loop/`, read by losetup and lsblk.
const SYSFS_FILES: &[&CStr] = &[
    c_str!("backing_file"),
    c_str!("offset"),
    c_str!("sizelimit"),
    c_str!("autoclear"),
    c_str!("partscan"),
    c_str!("dio"),
];

// The ABI file's layouts must be the kernel's.
const _: () = {
    use core::mem::{offset_of, size_of};
    use kernel::uapi;
    assert!(size_of::<uapi::loop_info64>() == abi::info64::SIZE);
    assert!(offset_of!(uapi::loop_info64, lo_sizelimit) == abi::info64::SIZELIMIT);
    assert!(offset_of!(uapi::loop_info64, lo_flags) == abi::info64::FLAGS);
    assert!(offset_of!(uapi::loop_info64, lo_file_name) == abi::info64::FILE_NAME);
    assert!(offset_of!(uapi::loop_info64, lo_init) == abi::info64::INIT);
    assert!(size_of::<uapi::loop_config>() == abi::config::SIZE);
    assert!(offset_of!(uapi::loop_config, info) == abi::config::INFO);
    assert!(size_of::<uapi::loop_info>() == abi::info_old::SIZE);
    assert!(offset_of!(uapi::loop_info, lo_device) == abi::info_old::DEVICE);
    assert!(offset_of!(uapi::loop_info, lo_offset) == abi::info_old::OFFSET);
    assert!(offset_of!(uapi::loop_info, lo_flags) == abi::info_old::FLAGS);
    assert!(offset_of!(uapi::loop_info, lo_name) == abi::info_old::NAME);
    assert!(uapi::LO_FLAGS_DIRECT_IO == abi::FLAG_DIRECT_IO);
    assert!(uapi::LOOP_CONFIGURE == abi::LOOP_CONFIGURE);
    assert!(uapi::LOOP_CTL_GET_FREE == abi::LOOP_CTL_GET_FREE);
};

fn to_error(e: i32) -> Error {
    Error::from_errno(-e)
}

fn part_shift() -> u32 {
    let max_part = module_parameters::max_part.value();
    if max_part == 0 {
        0
    } else {
        32 - max_part.leading_zeros()
    }
}

/// Where a device is in its life (`Lo_*` in C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Unbound,
    Bound,
    /// Being detached on last close; no new opens.
    Rundown,
    /// Being removed; no new opens.
    Deleting,
}

/// What a bound device holds: its backing file, the page-cache restriction on that file, and a
/// module reference (a bound device keeps the driver loaded, as in C).
struct Binding {
    file: Arc<BackingFile>,
    _gfp: PageCacheGfpGuard,
    _module: ModuleRef,
}

/// Configuration, changed under the device's mutex.
struct State {
    status: Status,
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
}

/// What the I/O path reads per batch: changed only with the queue frozen (no request in
/// flight), so a snapshot stays right for the requests it serves.
#[derive(Clone)]
struct IoConfig {
    file: Option<Arc<BackingFile>>,
    offset: u64,
    direct: bool,
    /// Polled requests are submitted polled to the backing file.
    polled: bool,
    read_only: bool,
}

#[pin_data]
struct Loop {
    number: u32,
    #[pin]
    state: Mutex<State>,
    #[pin]
    io: SpinLock<IoConfig>,
    /// Requests queued by `queue_rq` for the worker.
    #[pin]
    pending: SpinLock<KVec<ARef<Request<LoopOps>>>>,
    /// The worker's own batch buffer, swapped with `pending` (no allocation on the I/O path).
    #[pin]
    batch: Mutex<KVec<ARef<Request<LoopOps>>>>,
    #[pin]
    work: Work<Loop>,
    /// Polled I/Os in flight on the backing file, reaped by `poll`.
    #[pin]
    polled_ios: PolledIos<LoopOps>,
}

impl_has_work! {
    impl HasWork<Self> for Loop { self.work }
}

impl Loop {
    fn new(number: u32, depth: usize, poll_queues: usize) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                number,
                state <- new_mutex!(State {
                    status: Status::Unbound,
                    flags: 0,
                    offset: 0,
                    sizelimit: 0,
                    file_name: [0; abi::NAME_SIZE],
                    binding: None,
                    min_dio_size: 512,
                    dio_mem_align: 511,
                }),
                io <- new_spinlock!(IoConfig {
                    file: None,
                    offset: 0,
                    direct: false,
                    polled: false,
                    read_only: false,
                }),
                pending <- new_spinlock!(KVec::with_capacity(depth, GFP_KERNEL)?),
                batch <- new_mutex!(KVec::with_capacity(depth, GFP_KERNEL)?),
                work <- new_work!("Loop::work"),
                polled_ios <- PolledIos::new(depth * poll_queues),
            }),
            GFP_KERNEL,
        )
    }

    fn io_snapshot(&self) -> IoConfig {
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

    /// Serves one request on the worker.
    fn handle(&self, rq: ARef<Request<LoopOps>>, io: &IoConfig) {
        let Some(file) = io.file.as_ref() else {
            let _ = Request::end(rq, Err(EIO));
            return;
        };
        let op = rq.op();
        if op.is_write() && io.read_only {
            let _ = Request::end(rq, Err(EIO));
            return;
        }
        let pos = (rq.sector() << 9) + io.offset;
        let result = match op {
            ReqOp::Read | ReqOp::Write => {
                let mode = if io.polled && rq.is_polled() {
                    IoMode::Polled(&self.polled_ios)
                } else if io.direct {
                    IoMode::Direct
                } else {
                    IoMode::Buffered
                };
                match file.submit(rq, pos, mode) {
                    Ok(()) => return,
                    Err((rq, e)) => {
                        let _ = Request::end(rq, Err(e));
                        return;
                    }
                }
            }
            ReqOp::Flush => match file.fsync() {
                Err(e) if e != EINVAL => Err(EIO),
                _ => Ok(()),
            },
            ReqOp::Discard => Self::fallocate(file, FallocMode::PunchHole, pos, &rq),
            ReqOp::WriteZeroes => {
                let mode = if rq.is_nounmap() {
                    FallocMode::ZeroRange
                } else {
                    FallocMode::PunchHole
                };
                Self::fallocate(file, mode, pos, &rq)
            }
            ReqOp::Other(_) => Err(EIO),
        };
        let _ = Request::end(rq, result);
    }

    fn fallocate(file: &BackingFile, mode: FallocMode, pos: u64, rq: &Request<LoopOps>) -> Result {
        match file.fallocate(mode, pos, u64::from(rq.bytes())) {
            Ok(()) => Ok(()),
            Err(e) if e == EOPNOTSUPP || e == EINVAL => Err(e),
            Err(_) => Err(EIO),
        }
    }

    /// The device's size from its backing file and the configured window.
    fn size_sectors(state: &State) -> u64 {
        let Some(binding) = &state.binding else {
            return 0;
        };
        let file_size = binding.file.size().unwrap_or(0);
        abi::device_sectors(file_size, state.offset, state.sizelimit)
    }

    fn can_use_dio(state: &State, file: &BackingFile, block_size: u32) -> bool {
        abi::can_use_direct_io(
            file.can_direct_io(),
            block_size,
            state.min_dio_size,
            state.offset,
        )
    }

    /// Whether polled I/O goes through to `file`: it needs poll queues here, direct I/O, and a
    /// backing device that polls.
    fn polls(flags: u32, file: &BackingFile) -> bool {
        module_parameters::poll_queues.value() > 0
            && flags & abi::FLAG_DIRECT_IO != 0
            && file.can_poll()
    }

    fn publish_io(&self, state: &State) {
        let mut io = self.io.lock();
        io.file = state.binding.as_ref().map(|b| b.file.clone());
        io.offset = state.offset;
        io.direct = state.flags & abi::FLAG_DIRECT_IO != 0;
        io.polled = io
            .file
            .as_ref()
            .is_some_and(|f| Self::polls(state.flags, f));
        io.read_only = state.flags & abi::FLAG_READ_ONLY != 0;
    }

    /// Edits the current limits for `file` and `block_size` (`loop_update_limits()`).
    fn apply_limits(
        lim: &mut QueueLimits,
        state: &State,
        file: &BackingFile,
        block_size: u32,
    ) -> Result {
        lim.set_block_size(block_size)?;
        lim.set_max_hw_sectors(MAX_HW_SECTORS);
        lim.set_dma_alignment(if state.flags & abi::FLAG_DIRECT_IO != 0 {
            state.dio_mem_align.max(511)
        } else {
            511
        });
        lim.set_write_cache(file.can_fsync() && state.flags & abi::FLAG_READ_ONLY == 0);
        lim.set_poll(Self::polls(state.flags, file));
        lim.set_rotational(file.is_rotational());
        // Discard and write-zeroes become fallocate() on regular files.
        let granule = match file.kind() {
            BackingKind::Regular => file.fallocate_granularity(),
            BackingKind::BlockDevice(_) => None,
        };
        let max = if granule.is_some() { u32::MAX >> 9 } else { 0 };
        lim.set_discard(max, granule.unwrap_or(0));
        lim.set_max_write_zeroes_sectors(max);
        Ok(())
    }

    /// The backing-file chain check of `loop_validate_file()`: a loop device may sit on another
    /// one, but not on itself through any chain, nor on an unbound one.
    fn validate_chain(file: &BackingFile, own_devt: u32) -> Result {
        let mut kind = file.kind();
        let mut depth = 0;
        while let BackingKind::BlockDevice(devt) = kind {
            if devt >> MINORBITS != LOOP_MAJOR {
                break;
            }
            if devt == own_devt {
                return Err(EBADF);
            }
            depth += 1;
            if depth > 64 {
                return Err(EINVAL);
            }
            let index = (devt & ((1 << MINORBITS) - 1)) >> part_shift();
            let next = {
                let registry = LOOPS.lock();
                registry.find(index).map(|e| e.lo.clone())
            };
            let Some(next) = next else { break };
            let io = next.io_snapshot();
            match io.file {
                Some(f) => kind = f.kind(),
                None => return Err(EINVAL),
            }
        }
        Ok(())
    }

    fn configure(&self, bdev: &BlockDevice, mode: OpenMode, config: &LoopConfig) -> Result<i32> {
        let disk = bdev.disk();
        let file = BackingFile::from_fd(config.fd)?;
        let module = ModuleRef::get(kernel::module::this_module::<LocalModule>())?;
        let _claim = Self::claim_unless_exclusive(bdev, mode)?;
        Self::validate_chain(&file, bdev.devt())?;

        let mut state = self.state.lock();
        if state.status != Status::Unbound {
            return Err(EBUSY);
        }
        if config.info.flags & !abi::CONFIGURE_SETTABLE_FLAGS != 0 {
            return Err(EINVAL);
        }
        config.info.validate().map_err(to_error)?;
        if config.block_size != 0 && !abi::valid_block_size(config.block_size) {
            return Err(EINVAL);
        }

        let mut flags = config.info.flags;
        if !file.is_writable() || !mode.is_write() {
            flags |= abi::FLAG_READ_ONLY;
        }
        let (min_dio, mem_align) = file.direct_io_alignment();
        state.min_dio_size = min_dio.max(512);
        state.dio_mem_align = mem_align;
        state.offset = config.info.offset;
        state.sizelimit = config.info.sizelimit;

        // Direct I/O asked for explicitly must be honoured; from an O_DIRECT descriptor it is
        // taken when possible.
        let explicit_dio = flags & abi::FLAG_DIRECT_IO != 0;
        let want_dio = explicit_dio || file.opened_direct();
        let block_size = match config.block_size {
            0 if want_dio => state.min_dio_size,
            0 => 512,
            bs => bs,
        };
        if want_dio && Self::can_use_dio(&state, &file, block_size) {
            flags |= abi::FLAG_DIRECT_IO;
        } else if explicit_dio {
            pr_err!(
                "loop{}: direct I/O needs an O_DIRECT-capable file, blocks of at least {} bytes and an aligned offset\n",
                self.number,
                state.min_dio_size
            );
            return Err(EINVAL);
        } else {
            flags &= !abi::FLAG_DIRECT_IO;
        }
        if part_shift() != 0 {
            flags |= abi::FLAG_PARTSCAN;
        }
        state.flags = flags;

        disk.update_limits(|lim| Self::apply_limits(lim, &state, &file, block_size))?;

        // Switching to direct I/O: what the page cache holds dirty must reach the file first.
        let _ = file.fsync();

        let gfp = file.restrict_page_cache_allocations();
        let file = Arc::new(file, GFP_KERNEL)?;
        state.file_name = config.info.terminated_file_name();
        state.binding = Some(Binding {
            file,
            _gfp: gfp,
            _module: module,
        });
        self.publish_io(&state);
        state.status = Status::Bound;

        disk.force_media_change();
        disk.set_read_only(flags & abi::FLAG_READ_ONLY != 0);
        disk.set_capacity_and_notify(Self::size_sectors(&state));
        if let Err(e) = disk.show_attributes() {
            pr_warn!("loop{}: no sysfs attributes: {:?}\n", self.number, e);
        }
        let partscan = flags & abi::FLAG_PARTSCAN != 0;
        if partscan {
            disk.set_partition_scan(true);
        }
        drop(state);
        if partscan {
            if let Err(e) = disk.rescan_partitions() {
                pr_warn!("loop{}: partition scan failed: {:?}\n", self.number, e);
            }
        }
        Ok(0)
    }

    /// Detaches the backing file: on the last close after `LOOP_CLR_FD`, or with autoclear.
    /// The lock order is the device's mutex, then the queue freeze (as everywhere here):
    /// allocations under the mutex may enter reclaim, which may wait for this queue.
    fn clear(&self, disk: &ReleasedDisk) {
        let mut state = self.state.lock();
        let binding = {
            let _frozen = disk.freeze();
            let binding = state.binding.take();
            self.publish_io(&state);
            binding
        };
        let _ = disk.update_limits(|lim| {
            lim.set_poll(false);
            lim.set_block_size(512)
        });
        disk.invalidate();
        disk.hide_attributes();
        disk.notify_change();
        disk.force_media_change();
        if let Err(e) = disk.rescan_partitions() {
            pr_warn!("loop{}: partition scan failed: {:?}\n", self.number, e);
        }
        state.flags = 0;
        state.offset = 0;
        state.sizelimit = 0;
        state.file_name = [0; abi::NAME_SIZE];
        if part_shift() == 0 {
            disk.set_partition_scan(false);
        }
        state.status = Status::Unbound;
        drop(state);
        // The file (and the module reference) go last, outside the device's lock.
        drop(binding);
    }

    fn clr_fd(&self, disk: &DiskRef) -> Result<i32> {
        let mut state = self.state.lock();
        if state.status != Status::Bound {
            return Err(ENXIO);
        }
        // Detached on the last close; if we are the only opener, no new opener may come.
        state.flags |= abi::FLAG_AUTOCLEAR;
        if disk.openers() == 1 {
            state.status = Status::Rundown;
        }
        Ok(0)
    }

    fn set_status(&self, bdev: &BlockDevice, info: &LoopInfo64) -> Result<i32> {
        let disk = bdev.disk();
        let mut state = self.state.lock();
        if state.status != Status::Bound {
            return Err(ENXIO);
        }
        info.validate().map_err(to_error)?;
        let window_changed = state.offset != info.offset || state.sizelimit != info.sizelimit;
        if window_changed && state.flags & abi::FLAG_DIRECT_IO != 0 {
            let file = state.bound_file()?;
            let aligned = abi::can_use_direct_io(
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
            let _frozen = disk.freeze();
            state.offset = info.offset;
            state.sizelimit = info.sizelimit;
            state.file_name = info.terminated_file_name();
            state.flags = abi::set_status_flags(state.flags, info.flags);
            self.publish_io(&state);
        }
        if partscan {
            disk.set_partition_scan(true);
        }
        if window_changed {
            disk.set_capacity_and_notify(Self::size_sectors(&state));
        }
        drop(state);
        if partscan {
            let _ = disk.rescan_partitions();
        }
        Ok(0)
    }

    fn get_status(&self) -> Result<LoopInfo64> {
        let (mut info, file) = {
            let state = self.state.lock();
            if state.status != Status::Bound {
                return Err(ENXIO);
            }
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
        if state.status != Status::Bound {
            return Err(ENXIO);
        }
        disk.set_capacity_and_notify(Self::size_sectors(&state));
        Ok(0)
    }

    fn set_direct_io(&self, disk: &DiskRef, on: bool) -> Result<i32> {
        let mut state = self.state.lock();
        if state.status != Status::Bound {
            return Err(ENXIO);
        }
        if on == (state.flags & abi::FLAG_DIRECT_IO != 0) {
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
        let mem_align = state.dio_mem_align.max(511);
        let flags = if on {
            state.flags | abi::FLAG_DIRECT_IO
        } else {
            state.flags & !abi::FLAG_DIRECT_IO
        };
        disk.update_limits(|lim| {
            lim.set_dma_alignment(if on { mem_align } else { 511 });
            lim.set_poll(Self::polls(flags, &file));
            Ok(())
        })?;
        let _frozen = disk.freeze();
        state.flags = flags;
        self.publish_io(&state);
        Ok(0)
    }

    fn set_block_size(&self, bdev: &BlockDevice, mode: OpenMode, size: usize) -> Result<i32> {
        let disk = bdev.disk();
        let _claim = Self::claim_unless_exclusive(bdev, mode)?;
        let state = self.state.lock();
        if state.status != Status::Bound {
            return Err(ENXIO);
        }
        let size = u32::try_from(size).map_err(|_| EINVAL)?;
        // 0 picks the default: the direct I/O granule with direct I/O on, else a sector.
        let size = match size {
            0 if state.flags & abi::FLAG_DIRECT_IO != 0 => state.min_dio_size,
            0 => 512,
            size => size,
        };
        if disk.logical_block_size() == size {
            return Ok(0);
        }
        if !abi::valid_block_size(size) {
            return Err(EINVAL);
        }
        if state.flags & abi::FLAG_DIRECT_IO != 0 && size < state.min_dio_size {
            pr_err!(
                "loop{}: direct I/O needs blocks of at least {} bytes; turn it off first\n",
                self.number,
                state.min_dio_size
            );
            return Err(EINVAL);
        }
        let file = state.bound_file()?;
        let _ = bdev.sync();
        bdev.invalidate();
        disk.update_limits(|lim| Self::apply_limits(lim, &state, &file, size))?;
        Ok(0)
    }

    fn change_fd(&self, bdev: &BlockDevice, fd: usize) -> Result<i32> {
        let disk = bdev.disk();
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        let file = BackingFile::from_fd(fd)?;
        Self::validate_chain(&file, bdev.devt())?;
        let old = {
            let mut state = self.state.lock();
            if state.status != Status::Bound {
                return Err(ENXIO);
            }
            if state.flags & abi::FLAG_READ_ONLY == 0 {
                return Err(EINVAL);
            }
            let old_file = state.bound_file()?;
            let old_size = abi::device_sectors(old_file.size()?, state.offset, state.sizelimit);
            let new_size = abi::device_sectors(file.size()?, state.offset, state.sizelimit);
            if old_size != new_size {
                return Err(EINVAL);
            }
            let _ = file.fsync();
            disk.force_media_change();
            let module = ModuleRef::get(kernel::module::this_module::<LocalModule>())?;
            let gfp = file.restrict_page_cache_allocations();
            let (min_dio, mem_align) = file.direct_io_alignment();
            let file = Arc::new(file, GFP_KERNEL)?;
            let _frozen = disk.freeze();
            let old = state.binding.replace(Binding {
                file: file.clone(),
                _gfp: gfp,
                _module: module,
            });
            state.min_dio_size = min_dio.max(512);
            state.dio_mem_align = mem_align;
            if file.opened_direct() {
                state.flags |= abi::FLAG_DIRECT_IO;
            }
            if state.flags & abi::FLAG_DIRECT_IO != 0
                && !Self::can_use_dio(&state, &file, disk.logical_block_size())
            {
                state.flags &= !abi::FLAG_DIRECT_IO;
            }
            self.publish_io(&state);
            (
                old,
                state.flags & abi::FLAG_PARTSCAN != 0,
                Self::polls(state.flags, &file),
            )
        };
        let (old_binding, partscan, polls) = old;
        drop(old_binding);
        // The file has changed already: this only follows it. Until it lands, polled requests
        // are submitted unpolled (the queue may still offer polling); they complete all the same.
        let _ = disk.update_limits(|lim| {
            lim.set_poll(polls);
            Ok(())
        });
        if partscan {
            let _ = disk.rescan_partitions();
        }
        disk.notify_change();
        Ok(0)
    }

    fn loop_ioctl(&self, bdev: &BlockDevice, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32> {
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

    fn show(&self, name: &CStr, out: &mut SysfsBuffer<'_>) -> Result {
        let state = self.state.lock();
        let Some(binding) = &state.binding else {
            return Err(ENXIO);
        };
        let flag = |f: u32| u8::from(state.flags & f != 0);
        let r = match name.to_bytes() {
            b"backing_file" => {
                let mut buf = KVec::from_elem(0u8, 4096, GFP_KERNEL)?;
                let path = binding.file.path(&mut buf)?;
                let path = core::str::from_utf8(path).map_err(|_| EINVAL)?;
                writeln!(out, "{path}")
            }
            b"offset" => writeln!(out, "{}", state.offset),
            b"sizelimit" => writeln!(out, "{}", state.sizelimit),
            b"autoclear" => writeln!(out, "{}", flag(abi::FLAG_AUTOCLEAR)),
            b"partscan" => writeln!(out, "{}", flag(abi::FLAG_PARTSCAN)),
            b"dio" => writeln!(out, "{}", flag(abi::FLAG_DIRECT_IO)),
            _ => return Err(EINVAL),
        };
        r.map_err(|_| EINVAL)
    }
}

impl WorkItem for Loop {
    type Pointer = Arc<Loop>;

    fn run(this: Arc<Loop>) {
        // The worker writes the backing file while serving block I/O: no allocation may recurse
        // into I/O.
        let _noio = NoIoScope::enter();
        let mut batch = this.batch.lock();
        loop {
            core::mem::swap(&mut *this.pending.lock(), &mut *batch);
            if batch.is_empty() {
                break;
            }
            let io = this.io_snapshot();
            for rq in batch.drain_all() {
                this.handle(rq, &io);
            }
        }
    }
}

struct LoopOps;

#[vtable]
impl Operations for LoopOps {
    type QueueData = Arc<Loop>;

    const OWNER: Option<&'static ThisModule> = Some(kernel::module::this_module::<LocalModule>());

    fn queue_rq(lo: ArcBorrow<'_, Loop>, rq: ARef<Request<LoopOps>>, _is_last: bool) -> Result {
        // Capacity is the queue depth, and every queued request holds a tag.
        if let Err(e) = lo.pending.lock().push_within_capacity(rq) {
            let _ = Request::end(e.0, Err(EIO));
            return Ok(());
        }
        let _ = workqueue::system_unbound().enqueue(Arc::<Loop>::from(lo));
        Ok(())
    }

    fn commit_rqs(_lo: ArcBorrow<'_, Loop>) {}

    fn complete(rq: ARef<Request<LoopOps>>) {
        let _ = Request::end(rq, Ok(()));
    }

    fn poll(lo: ArcBorrow<'_, Loop>, _hctx: HwQueueId, _batch: &mut IoCompBatch<'_, Self>) -> u32 {
        lo.polled_ios.poll()
    }

    fn open(lo: ArcBorrow<'_, Loop>, _disk: &DiskRef, _mode: OpenMode) -> Result {
        match lo.state.lock().status {
            Status::Deleting | Status::Rundown => Err(ENXIO),
            _ => Ok(()),
        }
    }

    fn release(lo: ArcBorrow<'_, Loop>, disk: &ReleasedDisk) {
        if disk.openers() > 0 {
            return;
        }
        let need_clear = {
            let mut state = lo.state.lock();
            if state.status == Status::Bound && state.flags & abi::FLAG_AUTOCLEAR != 0 {
                state.status = Status::Rundown;
            }
            state.status == Status::Rundown
        };
        if need_clear {
            lo.clear(disk);
        }
    }

    fn ioctl(
        lo: ArcBorrow<'_, Loop>,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
    ) -> Result<i32> {
        lo.loop_ioctl(bdev, mode, cmd, arg)
    }

    fn compat_ioctl(
        lo: ArcBorrow<'_, Loop>,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
    ) -> Result<i32> {
        match cmd {
            // The old status structure has another layout for 32-bit tasks.
            abi::LOOP_SET_STATUS | abi::LOOP_GET_STATUS => Err(EINVAL),
            abi::LOOP_SET_CAPACITY
            | abi::LOOP_CLR_FD
            | abi::LOOP_GET_STATUS64
            | abi::LOOP_SET_STATUS64
            | abi::LOOP_CONFIGURE
            | abi::LOOP_SET_FD
            | abi::LOOP_CHANGE_FD
            | abi::LOOP_SET_BLOCK_SIZE
            | abi::LOOP_SET_DIRECT_IO => lo.loop_ioctl(bdev, mode, cmd, arg & 0xffff_ffff),
            _ => Err(ENOIOCTLCMD),
        }
    }

    fn show_attribute(lo: ArcBorrow<'_, Loop>, name: &CStr, out: &mut SysfsBuffer<'_>) -> Result {
        lo.show(name, out)
    }
}

/// Creates `/dev/loopN` when a missing one is opened, as the C driver does.
struct LoopProbe;

impl BlkdevProbe for LoopProbe {
    fn probe(devt: u32) {
        let index = (devt & ((1 << MINORBITS) - 1)) >> part_shift();
        // An existing device (e.g. opened twice at once) is not an error here.
        if let Err(e) = LOOPS.lock().add(Some(index)) {
            if e != EEXIST {
                pr_warn!("cannot create loop{} on open: {:?}\n", index, e);
            }
        }
    }
}

/// A device: its state (shared with the block layer as queue data) and its disk.
struct LoopEntry {
    lo: Arc<Loop>,
    disk: GenDisk<LoopOps>,
}

struct Registry {
    entries: KVec<KBox<LoopEntry>>,
}

impl Registry {
    const fn new() -> Self {
        Self {
            entries: KVec::new(),
        }
    }

    fn find(&self, index: u32) -> Option<&LoopEntry> {
        self.entries
            .iter()
            .find(|e| e.lo.number == index)
            .map(|e| &**e)
    }

    fn max_devices() -> u32 {
        1 << (MINORBITS - part_shift())
    }

    /// Adds device `index`, or the lowest free index when `None` (`loop_add()`).
    fn add(&mut self, index: Option<u32>) -> Result<u32> {
        let index = match index {
            Some(i) if i >= Self::max_devices() => return Err(EINVAL),
            Some(i) if self.find(i).is_some() => return Err(EEXIST),
            Some(i) => i,
            None => (0..Self::max_devices())
                .find(|i| self.find(*i).is_none())
                .ok_or(ENOSPC)?,
        };
        let depth = module_parameters::hw_queue_depth.value();
        if depth == 0 {
            return Err(EINVAL);
        }
        let poll_queues = module_parameters::poll_queues.value();
        let lo = Loop::new(index, depth as usize, poll_queues as usize)?;
        let flags = TagSetFlags::STACKING | TagSetFlags::NO_SCHED_BY_DEFAULT;
        let maps = QueueMaps::new(1)?.with_poll(poll_queues);
        let tagset = Arc::pin_init(TagSet::new_with_maps(maps, depth, flags), GFP_KERNEL)?;
        let mut limits = QueueLimits::default();
        limits.set_block_size(512)?;
        limits.set_max_hw_sectors(MAX_HW_SECTORS);
        let shift = part_shift();
        let disk = GenDiskBuilder::new()
            .limits(limits)
            .device_numbers(LOOP_MAJOR, index << shift, 1 << shift)
            .partition_scan(shift != 0)
            .attribute_group(c_str!("loop"), SYSFS_FILES)
            .build(fmt!("loop{}", index), tagset, lo.clone())?;
        // blk-mq offers polling with poll queues; it is on only while bound to a backing device
        // that polls.
        disk.update_limits(|lim| {
            lim.set_poll(false);
            Ok(())
        })?;
        self.entries
            .push(KBox::new(LoopEntry { lo, disk }, GFP_KERNEL)?, GFP_KERNEL)?;
        Ok(index)
    }

    /// Removes an unbound, closed device (`LOOP_CTL_REMOVE`); returns it so the caller deletes
    /// the disk outside the registry's lock.
    fn remove(&mut self, index: u32) -> Result<KBox<LoopEntry>> {
        let pos = self
            .entries
            .iter()
            .position(|e| e.lo.number == index)
            .ok_or(ENODEV)?;
        {
            let entry = &self.entries[pos];
            let mut state = entry.lo.state.lock();
            if state.status != Status::Unbound || entry.disk.openers() > 0 {
                return Err(EBUSY);
            }
            state.status = Status::Deleting;
        }
        self.entries.remove(pos).map_err(|_| ENODEV)
    }

    fn first_free(&self) -> Option<u32> {
        self.entries
            .iter()
            .filter(|e| e.lo.state.lock().status == Status::Unbound)
            .map(|e| e.lo.number)
            .min()
    }
}

kernel::sync::global_lock! {
    // SAFETY: Initialized in the module initializer before first use.
    unsafe(uninit) static LOOPS: Mutex<Registry> = Registry::new();
}

/// `/dev/loop-control`.
struct LoopControl;

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
                let entry = LOOPS.lock().remove(index as u32)?;
                // del_gendisk() runs here, outside the registry's lock.
                drop(entry);
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

#[pin_data(PinnedDrop)]
struct LoopDioModule {
    #[pin]
    control: MiscDeviceRegistration<LoopControl>,
    /// Taken first on unload, so no probe adds a device while the others go.
    major: Option<BlkdevRegistration>,
}

impl kernel::InPlaceModule for LoopDioModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: Called exactly once, before any use of the registry.
        unsafe { LOOPS.init() };
        let major = BlkdevRegistration::new_with_probe::<LoopProbe>(LOOP_MAJOR, c_str!("loop"))
            .inspect_err(|e| {
                pr_err!(
                    "block major {} is taken ({:?}): unload the C loop driver first (rmmod loop)\n",
                    LOOP_MAJOR,
                    e
                );
            });
        try_pin_init!(Self {
            major: Some(major?),
            control <- MiscDeviceRegistration::register_with_minor(
                MiscDeviceOptions { name: c_str!("loop-control") },
                LOOP_CTRL_MINOR,
            ),
        })
        .pin_chain(|_this| {
            let poll_queues = module_parameters::poll_queues.value();
            if poll_queues > kernel::cpu::nr_cpu_ids() {
                pr_err!(
                    "poll_queues={} is more than the {} CPUs\n",
                    poll_queues,
                    kernel::cpu::nr_cpu_ids()
                );
                return Err(EINVAL);
            }
            let max_loop = module_parameters::max_loop.value();
            if 1u64 << (MINORBITS - part_shift()) < u64::from(max_loop) {
                pr_err!("max_loop={} does not fit the minor numbers\n", max_loop);
                return Err(EINVAL);
            }
            let mut registry = LOOPS.lock();
            for i in 0..max_loop {
                if let Err(e) = registry.add(Some(i)) {
                    pr_err!("cannot add loop{}: {:?}\n", i, e);
                    drop(core::mem::take(&mut registry.entries));
                    return Err(e);
                }
            }
            pr_info!("loaded: {} devices, direct and async I/O\n", max_loop);
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for LoopDioModule {
    fn drop(self: Pin<&mut Self>) {
        drop(self.project().major.take());
        // A bound device holds a module reference, so every device is unbound here.
        let entries = core::mem::take(&mut LOOPS.lock().entries);
        drop(entries);
    }
}
