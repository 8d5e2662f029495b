// SPDX-License-Identifier: GPL-2.0

//! `rust44-ftl`: a host-side flash translation layer over a zoned device, as a device-mapper
//! target (Linux 4.4's LightNVM, on today's zoned namespaces).
//!
//! `dmsetup create ftl --table "0 <sectors> rust44-ftl <zoned_dev> [options]"` gives a plain
//! random-write block device with 4 KiB blocks over a host-managed zoned device. The map, the
//! placement, the garbage collector and the metadata are in `ftl.rs` and `format.rs` (pure
//! logic, tested on the host); this file is the glue: reads are remapped straight to where the
//! map says, everything else goes to one worker that writes, collects and commits.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use kernel::{
    alloc::KVVec,
    block::{
        bio::{Bdev, Bio, BioList, BioSet, IoBatch, IoBuffer, IO_BUFFER_SIZE},
        disk::QueueLimits,
        mq::ReqOp,
        zoned::{ZoneCond, ZoneOp},
    },
    device_mapper::{
        Ctr, CtrError, DeviceVisitor, DmDev, EndIo, EndingBio, MapResult, Registration, StatusType,
        StatusWriter, Target, TargetBio, TargetFeatures, VisitStop,
    },
    new_mutex, new_spinlock, new_spinlock_irq,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex, SpinLock, SpinLockIrq,
    },
    time::{delay::fsleep, Delta},
    workqueue::{impl_has_work, new_work, OwnedQueue, QueueFlags, Work, WorkItem},
};

pub mod format;
pub mod ftl;
pub mod table;

use format::{BLOCK, BLOCK_SECTORS};
use ftl::{Cond, Config, Ftl, Io, IoError, OpenError, ReadRun, Role, Stats, Zone};

module! {
    type: FtlModule,
    name: "lightnvm",
    authors: ["rust44"],
    description: "Host-side FTL over a zoned device, as a device-mapper target (rust44-ftl)",
    license: "GPL",
}

/// Blocks one batch of user writes carries at most.
const BATCH_BLOCKS: usize = 256;
/// The worker's pool of pages for user writes: each placement is copied into the next free
/// pages and written from them as one bio. The collector stages the blocks it moves in the same
/// pages (never while they hold user writes: it runs between batches).
const POOL_PAGES: usize = BATCH_BLOCKS;
/// The largest bio the target gets, in sectors: 128 KiB.
const MAX_IO_SECTORS: u32 = 256;
/// Bounce buffers for metadata: 4 KiB to 64 KiB.
const BOUNCE_SIZES: usize = 5;
/// The scratch the FTL encodes metadata in: 64 KiB.
const SCRATCH: usize = 16 * BLOCK;
/// Pending log entries: 16 log blocks.
const PENDING_ENTRIES: usize = 16 * format::LOG_PER_BLOCK;

/// The map, shared by the FTL (which changes it) and the read path (which reads it).
#[derive(Clone)]
struct SharedMap(Arc<KVVec<AtomicU32>>);

impl core::ops::Deref for SharedMap {
    type Target = [AtomicU32];

    fn deref(&self) -> &[AtomicU32] {
        &self.0
    }
}

type KernelFtl = Ftl<SharedMap, KVVec<u32>, KVVec<Zone>>;

/// What the FTL needs before it is loaded (at the first resume).
struct Parts {
    rmap: KVVec<u32>,
    pending: KVVec<u32>,
    zones: KVVec<Zone>,
}

/// The worker's state.
struct Engine {
    ftl: Option<KernelFtl>,
    parts: Option<Parts>,
    scratch: KVec<u8>,
    bounce: KVec<IoBuffer>,
    pool: KVec<IoBuffer>,
}

/// What `dmsetup status` shows, as the worker last saw it.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    stats: Stats,
    free: u32,
    open: u32,
    full: u32,
    retired: u32,
    valid: u64,
    used: u64,
}

#[pin_data]
struct Device {
    dev: DmDev,
    config: Config,
    begin: u64,
    zone_blocks: u32,
    zone_sectors: u64,
    max_open: u32,
    /// Blocks in one zone append (see `DevIo::append_blocks`).
    append_blocks: u32,
    lbas: u32,
    map: SharedMap,
    /// Reads in flight per zone: a zone is reset only when its count is 0.
    pins: KVVec<AtomicU32>,
    bio_set: Pin<KBox<BioSet>>,
    /// Background collection runs only while the table is live.
    running: Atomic<bool>,
    loaded: Atomic<bool>,
    #[pin]
    pending: SpinLockIrq<BioList>,
    #[pin]
    engine: Mutex<Engine>,
    #[pin]
    snapshot: SpinLock<Snapshot>,
    #[pin]
    work: Work<Device>,
    wq: OwnedQueue,
}

impl_has_work! {
    impl HasWork<Self> for Device { self.work }
}

/// The device as the FTL reaches it: synchronous I/O through bounce buffers, and the
/// collector's moves through the staging pages, in batches.
struct DevIo<'a> {
    bdev: &'a Bdev,
    set: &'a BioSet,
    bounce: &'a mut KVec<IoBuffer>,
    staging: &'a mut [IoBuffer],
    /// Blocks in one zone append: the device's limit, in whole pages and segments.
    append_blocks: u32,
    pins: &'a [AtomicU32],
    zone_sectors: u64,
}

fn io_err(e: Error) -> IoError {
    IoError(e.to_errno())
}

impl DevIo<'_> {
    /// The largest bounce buffer not longer than `len` bytes.
    fn pick(&self, len: usize) -> usize {
        let mut k = 0;
        while k + 1 < self.bounce.len() && (BLOCK << (k + 1)) <= len {
            k += 1;
        }
        k
    }
}

impl Io for DevIo<'_> {
    fn read(&mut self, pba: u32, buf: &mut [u8]) -> Result<(), IoError> {
        if buf.len() % BLOCK != 0 {
            return Err(io_err(EINVAL));
        }
        let mut off = 0;
        while off < buf.len() {
            let k = self.pick(buf.len() - off);
            let sector = (u64::from(pba) + (off / BLOCK) as u64) * BLOCK_SECTORS;
            let (bdev, set) = (self.bdev, self.set);
            let b = &mut self.bounce[k];
            let (sent, outcome) =
                IoBatch::run(set, |batch| batch.read(bdev, sector, b, 0)).map_err(io_err)?;
            sent.and(outcome.result).map_err(io_err)?;
            let len = self.bounce[k].len();
            buf[off..off + len].copy_from_slice(&self.bounce[k]);
            off += len;
        }
        Ok(())
    }

    fn write(&mut self, pba: u32, buf: &[u8], fua: bool) -> Result<(), IoError> {
        if buf.len() % BLOCK != 0 {
            return Err(io_err(EINVAL));
        }
        let mut off = 0;
        while off < buf.len() {
            let k = self.pick(buf.len() - off);
            let len = self.bounce[k].len();
            self.bounce[k].copy_from_slice(&buf[off..off + len]);
            let sector = (u64::from(pba) + (off / BLOCK) as u64) * BLOCK_SECTORS;
            let (bdev, set) = (self.bdev, self.set);
            let b = &self.bounce[k];
            let (sent, outcome) =
                IoBatch::run(set, |batch| batch.write(bdev, sector, b, fua, 0)).map_err(io_err)?;
            sent.and(outcome.result).map_err(io_err)?;
            off += len;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.bdev.flush().map_err(io_err)
    }

    fn reset(&mut self, zone: u32) -> Result<(), IoError> {
        let start = u64::from(zone) * self.zone_sectors;
        self.bdev
            .zone_mgmt(ZoneOp::Reset, start, self.zone_sectors)
            .map_err(io_err)
    }

    fn finish(&mut self, zone: u32) -> Result<(), IoError> {
        let start = u64::from(zone) * self.zone_sectors;
        self.bdev
            .zone_mgmt(ZoneOp::Finish, start, self.zone_sectors)
            .map_err(io_err)
    }

    fn wait_reads(&mut self, zone: u32) {
        let Some(pin) = self.pins.get(zone as usize) else {
            return;
        };
        // Reads in flight end quickly; the collector is not in a hurry.
        while pin.load(SeqCst) != 0 {
            fsleep(Delta::from_micros(200));
        }
    }

    fn stage_blocks(&self) -> u32 {
        self.staging.len() as u32
    }

    fn append_blocks(&self) -> u32 {
        self.append_blocks
    }

    fn stage(&mut self, runs: &[(u32, u32)]) -> Result<(), IoError> {
        let (bdev, set) = (self.bdev, self.set);
        let mut rest = &mut self.staging[..];
        let (sent, outcome) = IoBatch::run(set, |batch| {
            for &(pba, len) in runs {
                let sector = u64::from(pba) * BLOCK_SECTORS;
                let (run, tail) = core::mem::take(&mut rest)
                    .split_at_mut_checked(len as usize)
                    .ok_or(EINVAL)?;
                rest = tail;
                batch.read_scatter(bdev, sector, run.iter_mut(), 0)?;
            }
            Ok(())
        })
        .map_err(io_err)?;
        sent.and(outcome.result).map_err(io_err)
    }

    fn append_staged(
        &mut self,
        zone: u32,
        chunks: &[(u32, u32)],
        landed: &mut [u32],
    ) -> Result<(), IoError> {
        let (bdev, set, staging) = (self.bdev, self.set, &*self.staging);
        let zone_start = u64::from(zone) * self.zone_sectors;
        let slots: [Atomic<u64>; ftl::GC_CHUNKS] =
            [const { Atomic::new(u64::MAX) }; ftl::GC_CHUNKS];
        if chunks.len() > slots.len() || landed.len() != chunks.len() {
            return Err(io_err(EINVAL));
        }
        let (sent, outcome) = IoBatch::run(set, |batch| {
            for (k, (&(first, len), slot)) in chunks.iter().zip(&slots).enumerate() {
                let bufs = staging
                    .get(first as usize..(first + len) as usize)
                    .ok_or(EINVAL)?;
                batch.append_gather(bdev, zone_start, bufs, false, slot, k as u32)?;
            }
            Ok(())
        })
        .map_err(io_err)?;
        sent.and(outcome.result).map_err(io_err)?;
        for (at, slot) in landed.iter_mut().zip(&slots) {
            let sector = slot.load(Relaxed);
            if sector % BLOCK_SECTORS != 0 {
                return Err(io_err(EIO));
            }
            *at = u32::try_from(sector / BLOCK_SECTORS).map_err(|_| io_err(EIO))?;
        }
        Ok(())
    }
}

/// A user write placed on the device: `len` blocks of bio `bio` from its block `at`, written at
/// `pba` from the pool's pages from `page` on.
#[derive(Clone, Copy)]
struct Placed {
    bio: usize,
    at: u32,
    lba: u32,
    pba: u32,
    len: u32,
    page: usize,
}

fn refuse(e: Error, msg: &'static CStr) -> CtrError {
    CtrError::new(e, msg)
}

fn oom<E>(_: E) -> CtrError {
    CtrError::new(ENOMEM, c"out of memory")
}

impl Device {
    fn io<'a>(&'a self, bounce: &'a mut KVec<IoBuffer>, staging: &'a mut [IoBuffer]) -> DevIo<'a> {
        DevIo {
            bdev: self.dev.bdev(),
            set: &self.bio_set,
            bounce,
            staging,
            append_blocks: self.append_blocks,
            pins: &self.pins,
            zone_sectors: self.zone_sectors,
        }
    }

    fn queue(this: &Arc<Self>, bio: Bio) {
        this.pending.lock().push(bio);
        Self::kick(this);
    }

    fn kick(this: &Arc<Self>) {
        // Already queued is fine: the worker takes every pending bio before it finishes.
        let _ = this.wq.enqueue(this.clone());
    }

    /// Loads (or formats) the FTL from the device: at the first resume, once any table before
    /// this one over the device is suspended and has committed.
    fn load(&self) -> Result {
        let mut guard = self.engine.lock();
        let eng = &mut *guard;
        if eng.ftl.is_some() {
            return Ok(());
        }
        let Some(parts) = eng.parts.take() else {
            return Err(EINVAL);
        };
        let mut io = self.io(&mut eng.bounce, &mut eng.pool);
        let opened = Ftl::open(
            &mut io,
            &mut eng.scratch,
            self.config,
            self.zone_blocks,
            self.max_open,
            self.map.clone(),
            parts.rmap,
            parts.pending,
            parts.zones,
        );
        match opened {
            Ok(f) => {
                pr_info!(
                    "rust44-ftl: {}: {} blocks of 4 KiB, {} zones free\n",
                    self.dev.name().to_str().unwrap_or("?"),
                    f.lbas(),
                    f.free_zones()
                );
                eng.ftl = Some(f);
                self.loaded.store(true, Relaxed);
                drop(guard);
                self.snap();
                Ok(())
            }
            Err(e) => {
                let code = match e {
                    OpenError::Io(IoError(errno)) => Error::from_errno(errno),
                    _ => EINVAL,
                };
                pr_err!(
                    "rust44-ftl: {}: cannot load: {}\n",
                    self.dev.name().to_str().unwrap_or("?"),
                    e.message().to_str().unwrap_or("?")
                );
                Err(code)
            }
        }
    }

    /// Copies the FTL's figures for `dmsetup status`.
    fn snap(&self) {
        let eng = self.engine.lock();
        let Some(f) = eng.ftl.as_ref() else {
            return;
        };
        let mut s = Snapshot {
            stats: f.stats(),
            ..Snapshot::default()
        };
        for z in f.zones() {
            match z.role {
                Role::Free => s.free += 1,
                Role::Open => s.open += 1,
                Role::Full => s.full += 1,
                Role::Retired => s.retired += 1,
                Role::Meta => {}
            }
        }
        (s.valid, s.used) = f.valid_ratio();
        drop(eng);
        *self.snapshot.lock() = s;
    }

    /// Serves the queued bios in order: writes in batches; a flush, discard or write-zeroes
    /// after the writes queued before it.
    fn serve(&self, eng: &mut Engine, mut list: BioList) {
        let mut writes = KVec::new();
        let mut blocks = 0usize;
        while let Some(bio) = list.pop() {
            match bio.op() {
                ReqOp::Write => {
                    let n = (u64::from(bio.sectors()) / BLOCK_SECTORS) as usize;
                    if blocks + n > BATCH_BLOCKS {
                        self.write_batch(eng, &mut writes);
                        blocks = 0;
                    }
                    blocks += n;
                    // On failure the bio is dropped, which ends it with an error.
                    let _ = writes.push(bio, GFP_NOIO);
                }
                op => {
                    self.write_batch(eng, &mut writes);
                    blocks = 0;
                    let result = match op {
                        ReqOp::Flush => self.commit(eng),
                        ReqOp::Discard | ReqOp::WriteZeroes => self.discard(eng, &bio),
                        _ => Err(EOPNOTSUPP),
                    };
                    // A flush with data: the data goes after the commit (device-mapper sends
                    // these separately, so this is for completeness).
                    bio.end(result);
                }
            }
        }
        self.write_batch(eng, &mut writes);
    }

    /// Runs `op` on the loaded FTL with the device and the metadata scratch; `what` names it in
    /// the log when the device fails it. `EIO` when the FTL is not loaded.
    fn with_io<T>(
        &self,
        eng: &mut Engine,
        what: &str,
        op: impl FnOnce(&mut KernelFtl, &mut DevIo<'_>, &mut [u8]) -> Result<T, IoError>,
    ) -> Result<T> {
        let Engine {
            ftl,
            scratch,
            bounce,
            pool,
            ..
        } = eng;
        let f = ftl.as_mut().ok_or(EIO)?;
        op(f, &mut self.io(bounce, pool), scratch).map_err(|IoError(e)| {
            pr_err!("rust44-ftl: {} failed: {}\n", what, e);
            Error::from_errno(e)
        })
    }

    fn commit(&self, eng: &mut Engine) -> Result {
        self.with_io(eng, "metadata commit", |f, io, scratch| {
            f.commit(io, scratch)
        })
    }

    fn collect(&self, eng: &mut Engine) -> Result<bool> {
        self.with_io(eng, "garbage collection", |f, io, scratch| {
            f.collect(io, scratch).map(|v| v.is_some())
        })
    }

    fn lba_range(&self, bio: &Bio) -> Option<(u32, u32)> {
        let sector = bio.sector().checked_sub(self.begin)?;
        let lba = u32::try_from(sector / BLOCK_SECTORS).ok()?;
        let n = u32::try_from(u64::from(bio.sectors()) / BLOCK_SECTORS).ok()?;
        (sector % BLOCK_SECTORS == 0 && lba.checked_add(n)? <= self.lbas).then_some((lba, n))
    }

    fn discard(&self, eng: &mut Engine, bio: &Bio) -> Result {
        let (lba, n) = self.lba_range(bio).ok_or(EIO)?;
        let mut done = 0;
        while done < n {
            let f = eng.ftl.as_mut().ok_or(EIO)?;
            done += f.discard(lba + done, n - done);
            if done < n {
                self.commit(eng)?;
            }
        }
        Ok(())
    }

    /// Places, writes and maps a batch of user writes, then ends them; FUA writes after a
    /// commit. When the space runs out, what is placed so far is written before collecting
    /// (a collection must not see zones given out but not written yet).
    fn write_batch(&self, eng: &mut Engine, bios: &mut KVec<Bio>) {
        if bios.is_empty() {
            return;
        }
        let Ok(mut failed) = KVec::from_elem(false, bios.len(), GFP_NOIO) else {
            for bio in bios.drain_all() {
                bio.end(Err(ENOMEM));
            }
            return;
        };
        let mut placed = KVec::<Placed>::new();
        // The next free page of the pool.
        let mut page = 0usize;
        let mut fua = false;
        for i in 0..bios.len() {
            let Some((lba, n)) = self.lba_range(&bios[i]) else {
                failed[i] = true;
                continue;
            };
            fua |= bios[i].is_fua() || bios[i].is_preflush();
            let mut at = 0;
            while at < n {
                let opens = eng.ftl.as_ref().is_some_and(|f| f.needs_zone());
                if page + (n - at) as usize > POOL_PAGES || (opens && !placed.is_empty()) {
                    self.write_placed(eng, bios, &mut placed, &mut failed);
                    page = 0;
                }
                // The placements held (`page` blocks) are logged only once written: without
                // them, each could pass alone and the log overflow.
                let room = eng
                    .ftl
                    .as_ref()
                    .is_some_and(|f| f.log_room(page + (n - at) as usize));
                if !room {
                    self.write_placed(eng, bios, &mut placed, &mut failed);
                    page = 0;
                    if self.commit(eng).is_err() {
                        failed[i] = true;
                        break;
                    }
                }
                let Some(f) = eng.ftl.as_mut() else {
                    failed[i] = true;
                    break;
                };
                let Some((pba, len)) = f.place(n - at) else {
                    // Out of space: write what is placed, collect, try again.
                    self.write_placed(eng, bios, &mut placed, &mut failed);
                    page = 0;
                    match self.collect(eng) {
                        Ok(true) => continue,
                        _ => {
                            pr_err!("rust44-ftl: no space and nothing to collect\n");
                            failed[i] = true;
                            break;
                        }
                    }
                };
                let p = Placed {
                    bio: i,
                    at,
                    lba: lba + at,
                    pba,
                    len,
                    page,
                };
                page += len as usize;
                if placed.push(p, GFP_NOIO).is_err() {
                    // Given out, never written: the zone takes no more writes.
                    f.write_failed(pba);
                    failed[i] = true;
                    break;
                }
                at += len;
            }
        }
        self.write_placed(eng, bios, &mut placed, &mut failed);
        let result = if fua { self.commit(eng) } else { Ok(()) };
        for (i, bio) in bios.drain_all().enumerate() {
            let r = if failed.get(i).copied().unwrap_or(true) {
                Err(EIO)
            } else {
                result
            };
            bio.end(r);
        }
    }

    /// Writes the placed blocks (copied into the pool), then maps them.
    fn write_placed(
        &self,
        eng: &mut Engine,
        bios: &KVec<Bio>,
        placed: &mut KVec<Placed>,
        failed: &mut KVec<bool>,
    ) {
        if placed.is_empty() {
            return;
        }
        for p in placed.iter() {
            let pages = eng.pool.get_mut(p.page..p.page + p.len as usize);
            let copied = pages.is_some_and(|pages| {
                pages.iter_mut().enumerate().all(|(j, dst)| {
                    let offset = (p.at as usize + j) * BLOCK;
                    bios[p.bio].copy_to_slice(offset, dst).is_ok()
                })
            });
            if !copied {
                failed[p.bio] = true;
            }
        }
        let bdev = self.dev.bdev();
        let pool = &eng.pool;
        // One tag per placement (up to 64): a failure names the placements that failed.
        let ran = IoBatch::run(&self.bio_set, |batch| {
            for (k, p) in placed.iter().enumerate() {
                let tag = (k as u32).min(IoBatch::TAGS - 1);
                let sector = u64::from(p.pba) * BLOCK_SECTORS;
                let sent = pool
                    .get(p.page..p.page + p.len as usize)
                    .ok_or(EINVAL)
                    .and_then(|pages| batch.write_gather(bdev, sector, pages, false, tag));
                if sent.is_err() {
                    return Err(k);
                }
            }
            Ok(())
        });
        let (sent, outcome) = match ran {
            Ok((sent, outcome)) => (sent, outcome),
            Err(_) => {
                // Nothing was written: the blocks given out are lost to their zones, which take
                // no more writes (their write pointers are behind the FTL's now).
                for p in placed.iter() {
                    failed[p.bio] = true;
                    if let Some(f) = eng.ftl.as_mut() {
                        f.write_failed(p.pba);
                    }
                }
                placed.clear();
                return;
            }
        };
        let Some(f) = eng.ftl.as_mut() else {
            placed.clear();
            return;
        };
        for (k, p) in placed.iter().enumerate() {
            let tag = (k as u32).min(IoBatch::TAGS - 1);
            let not_sent = matches!(sent, Err(s) if s <= k);
            let bad = not_sent || outcome.failed & (1u64 << tag) != 0;
            if bad || failed[p.bio] {
                if bad {
                    pr_err!(
                        "rust44-ftl: write failed in zone {}: retiring it\n",
                        p.pba.checked_div(self.zone_blocks).unwrap_or(0)
                    );
                    f.write_failed(p.pba);
                }
                failed[p.bio] = true;
            } else {
                f.written(p.lba, p.pba, p.len);
            }
        }
        placed.clear();
    }
}

impl WorkItem for Device {
    type Pointer = Arc<Device>;

    fn run(this: Arc<Device>) {
        let mut guard = this.engine.lock();
        loop {
            let list = this.pending.lock().take();
            if list.is_empty() {
                break;
            }
            this.serve(&mut guard, list);
        }
        // One zone of background collection at a time, so that new bios wait for at most that.
        let more = this.running.load(Relaxed)
            && guard.ftl.as_ref().is_some_and(|f| f.wants_gc())
            && matches!(this.collect(&mut guard), Ok(true));
        drop(guard);
        this.snap();
        if more {
            Device::kick(&this);
        }
    }
}

struct FtlTarget {
    dev: Arc<Device>,
}

impl FtlTarget {
    fn build(ctr: &mut Ctr<'_>, args: &[&CStr]) -> Result<Arc<Device>, CtrError> {
        let mut raw = KVec::new();
        for a in args {
            raw.push(a.to_bytes(), GFP_KERNEL)
                .map_err(|_| refuse(ENOMEM, c"out of memory"))?;
        }
        let config = table::parse(&raw).map_err(|e| CtrError::invalid(e.message()))?;
        let path = args
            .first()
            .ok_or(CtrError::invalid(c"expected <zoned_dev>"))?;
        let dev = ctr
            .get_device(path)
            .map_err(|e| refuse(e, c"cannot open the zoned device"))?;
        let bdev = dev.bdev();
        let Some(limits) = bdev.zone_limits() else {
            return Err(CtrError::invalid(
                c"the device is not zoned (host-managed zones needed)",
            ));
        };
        if bdev.logical_block_size() as usize > BLOCK
            || limits.zone_sectors % BLOCK_SECTORS != 0
            || limits.zone_sectors == 0
        {
            return Err(CtrError::invalid(
                c"the device's blocks or zones are not a multiple of 4 KiB",
            ));
        }
        let zone_blocks = u32::try_from(limits.zone_sectors / BLOCK_SECTORS)
            .map_err(|_| CtrError::invalid(c"zones too large"))?;
        let mut zones = KVVec::with_capacity(limits.nr_zones as usize, GFP_KERNEL)
            .map_err(|_| refuse(ENOMEM, c"out of memory"))?;
        let mut conventional = false;
        bdev.report_zones(0, limits.nr_zones, |_, z| {
            // A smaller last zone is left out.
            if z.len != limits.zone_sectors {
                return Ok(());
            }
            let cap = (z.capacity / BLOCK_SECTORS) as u32;
            let written = (z.written() / BLOCK_SECTORS) as u32;
            let cond = match z.cond {
                ZoneCond::NotWritePointer => {
                    conventional = true;
                    Cond::Offline
                }
                ZoneCond::Empty => Cond::Empty,
                ZoneCond::Full => Cond::Full,
                ZoneCond::ReadOnly => Cond::ReadOnly,
                ZoneCond::Offline => Cond::Offline,
                _ => Cond::Partial(written),
            };
            zones.push(Zone::reported(cond, cap), GFP_KERNEL)?;
            Ok(())
        })
        .map_err(|e| refuse(e, c"cannot report the device's zones"))?;
        if conventional {
            return Err(CtrError::invalid(
                c"conventional zones are not supported (a zoned namespace is needed)",
            ));
        }
        let (lbas, _) =
            ftl::capacity(&zones, &config).map_err(|e| CtrError::invalid(e.message()))?;
        // The collector's moves are zone appends of whole pages, one segment each.
        let append_blocks = (u64::from(limits.max_append_sectors) / BLOCK_SECTORS) as u32;
        let append_blocks = append_blocks
            .min(bdev.max_segments())
            .min(POOL_PAGES as u32);
        if append_blocks == 0 {
            return Err(refuse(
                EINVAL,
                c"the zoned device takes no zone appends of 4 KiB",
            ));
        }
        if limits.max_open != 0 && config.streams + 3 > limits.max_open
            || limits.max_active != 0 && config.streams + 3 > limits.max_active
        {
            return Err(CtrError::invalid(OpenError::TooManyStreams.message()));
        }
        let len = ctr.len();
        if len == 0 || len % BLOCK_SECTORS != 0 || len > u64::from(lbas) * BLOCK_SECTORS {
            pr_err!(
                "rust44-ftl: {}: the table's length {} must be a multiple of 8 and at most {} sectors\n",
                dev.name().to_str().unwrap_or("?"),
                len,
                u64::from(lbas) * BLOCK_SECTORS
            );
            return Err(CtrError::invalid(
                c"the table is longer than the FTL's capacity (see the kernel log)",
            ));
        }
        let nz = zones.len();
        let mut map = KVVec::with_capacity(lbas as usize, GFP_KERNEL).map_err(oom)?;
        for _ in 0..lbas {
            map.push(AtomicU32::new(format::UNMAPPED), GFP_KERNEL)
                .map_err(oom)?;
        }
        let map = SharedMap(Arc::new(map, GFP_KERNEL).map_err(oom)?);
        let rmap = KVVec::from_elem(0u32, nz * zone_blocks as usize, GFP_KERNEL).map_err(oom)?;
        let log = KVVec::from_elem(0u32, 2 * PENDING_ENTRIES, GFP_KERNEL).map_err(oom)?;
        let mut pins = KVVec::with_capacity(nz, GFP_KERNEL).map_err(oom)?;
        for _ in 0..nz {
            pins.push(AtomicU32::new(0), GFP_KERNEL).map_err(oom)?;
        }
        let mut bounce = KVec::new();
        for k in 0..BOUNCE_SIZES {
            let b = IoBuffer::with_len(BLOCK << k, GFP_KERNEL)
                .map_err(|e| refuse(e, c"out of memory"))?;
            bounce.push(b, GFP_KERNEL).map_err(oom)?;
        }
        let mut pool = KVec::new();
        for _ in 0..POOL_PAGES {
            pool.push(IoBuffer::new(GFP_KERNEL).map_err(oom)?, GFP_KERNEL)
                .map_err(oom)?;
        }
        let scratch = KVec::from_elem(0u8, SCRATCH, GFP_KERNEL).map_err(oom)?;
        let bio_set =
            KBox::pin_init(BioSet::new(64), GFP_KERNEL).map_err(|e| refuse(e, c"out of memory"))?;
        // It carries writes: a rescuer keeps it going under memory pressure.
        let wq = OwnedQueue::new(
            c"rust44-ftl",
            QueueFlags::UNBOUND | QueueFlags::MEM_RECLAIM,
            1,
        )
        .map_err(|e| refuse(e, c"cannot allocate a workqueue"))?;
        let begin = ctr.begin();
        let device = Arc::pin_init(
            try_pin_init!(Device {
                dev,
                config,
                begin,
                zone_blocks,
                zone_sectors: limits.zone_sectors,
                max_open: limits.max_open,
                append_blocks,
                lbas,
                map,
                pins,
                bio_set,
                running: Atomic::new(false),
                loaded: Atomic::new(false),
                pending <- new_spinlock_irq!(BioList::new()),
                engine <- new_mutex!(Engine {
                    ftl: None,
                    parts: Some(Parts {
                        rmap,
                        pending: log,
                        zones
                    }),
                    scratch,
                    bounce,
                    pool,
                }),
                snapshot <- new_spinlock!(Snapshot::default()),
                work <- new_work!("Device::work"),
                wq,
            }),
            GFP_KERNEL,
        )
        .map_err(|e| refuse(e, c"out of memory"))?;
        ctr.set_max_io_len(MAX_IO_SECTORS)
            .map_err(|e| refuse(e, c"cannot set the I/O size"))?;
        ctr.set_num_flush_bios(1);
        ctr.set_flush_supported();
        ctr.set_num_discard_bios(1);
        ctr.set_discards_supported();
        ctr.set_num_write_zeroes_bios(1);
        Ok(device)
    }

    fn info(&self, out: &mut StatusWriter<'_>) -> core::fmt::Result {
        let d = &self.dev;
        if !d.loaded.load(Relaxed) {
            return write!(out, "not_loaded");
        }
        let s = *d.snapshot.lock();
        let wa100 = (s.stats.device_blocks * 100)
            .checked_div(s.stats.host_blocks)
            .unwrap_or(0);
        let valid100 = (s.valid * 100).checked_div(s.used).unwrap_or(100);
        write!(
            out,
            "capacity={} zones={} free={} open={} full={} retired={} valid={}/{} valid_pct={} \
             gc_runs={} gc_moved={} host_blocks={} device_blocks={} wa={}.{:02} commits={} \
             checkpoints={}",
            u64::from(d.lbas) * BLOCK_SECTORS,
            d.pins.len(),
            s.free,
            s.open,
            s.full,
            s.retired,
            s.valid,
            s.used,
            valid100,
            s.stats.gc_runs,
            s.stats.gc_moved,
            s.stats.host_blocks,
            s.stats.device_blocks,
            wa100 / 100,
            wa100 % 100,
            s.stats.commits,
            s.stats.checkpoints
        )
    }

    fn table_line(&self, out: &mut StatusWriter<'_>) -> core::fmt::Result {
        let d = &self.dev;
        let c = d.config;
        write!(
            out,
            "{} streams={} op={} reserved={} gc={}",
            d.dev.name().to_str().unwrap_or("?"),
            c.streams,
            c.op_percent,
            c.reserved,
            table::policy_name(c.policy)
        )
    }
}

impl Device {
    /// Stops background collection and waits until no work is queued or running: a run that
    /// saw it running may queue one more, which the second flush waits for.
    fn stop(&self) {
        self.running.store(false, Relaxed);
        self.wq.flush();
        self.wq.flush();
    }
}

impl Drop for FtlTarget {
    fn drop(&mut self) {
        // Device-mapper suspended a live table first (postsuspend committed), and no bio is in
        // flight; no work may run once the module can go.
        self.dev.stop();
    }
}

#[vtable]
impl Target for FtlTarget {
    const NAME: &'static CStr = c"rust44-ftl";
    const VERSION: [u32; 3] = [1, 0, 0];
    // The table is built on a zoned device and offers a conventional one, as dm-zoned does.
    const FEATURES: TargetFeatures = TargetFeatures::MIXED_ZONED_MODEL;

    /// The zone a remapped read pinned, plus one (0: none).
    type PerBio = u32;

    fn new(ctr: &mut Ctr<'_>, args: &[&CStr]) -> Result<Pin<KBox<Self>>, CtrError> {
        let dev = Self::build(ctr, args)?;
        KBox::pin(Self { dev }, GFP_KERNEL).map_err(|_| refuse(ENOMEM, c"out of memory"))
    }

    fn map(&self, mut bio: TargetBio<u32>) -> MapResult {
        let d = &self.dev;
        match bio.op() {
            ReqOp::Read => {
                let Some((lba, n)) = d.lba_range(&bio) else {
                    return MapResult::Kill(bio.into_bio());
                };
                if n == 0 {
                    bio.into_bio().end(Ok(()));
                    return MapResult::Submitted;
                }
                match ftl::pin_read(&d.map, &d.pins, d.zone_blocks, lba, n) {
                    ReadRun::Mapped { pba, len, zone } => {
                        if len < n && bio.accept_partial(len * BLOCK_SECTORS as u32).is_err() {
                            if let Some(pin) = d.pins.get(zone as usize) {
                                pin.fetch_sub(1, SeqCst);
                            }
                            return MapResult::Kill(bio.into_bio());
                        }
                        *bio.per_bio() = zone + 1;
                        let sector = u64::from(pba) * BLOCK_SECTORS;
                        MapResult::Remapped(bio.remap(d.dev.bdev(), sector))
                    }
                    ReadRun::Unmapped { len } => {
                        if len < n && bio.accept_partial(len * BLOCK_SECTORS as u32).is_err() {
                            return MapResult::Kill(bio.into_bio());
                        }
                        let mut bio = bio.into_bio();
                        let zero = [0u8; 512];
                        let mut off = 0usize;
                        let mut result = Ok(());
                        while off < bio.size() as usize && result.is_ok() {
                            result = bio.copy_from_slice(off, &zero);
                            off += zero.len();
                        }
                        bio.end(result);
                        MapResult::Submitted
                    }
                }
            }
            ReqOp::Write | ReqOp::Flush | ReqOp::Discard | ReqOp::WriteZeroes => {
                Device::queue(d, bio.into_bio());
                MapResult::Submitted
            }
            _ => MapResult::Kill(bio.into_bio()),
        }
    }

    fn end_io<'a>(&self, mut bio: EndingBio<'a, u32>) -> EndIo<'a> {
        let pinned = *bio.per_bio();
        if let Some(pin) = pinned
            .checked_sub(1)
            .and_then(|z| self.dev.pins.get(z as usize))
        {
            pin.fetch_sub(1, SeqCst);
        }
        bio.done()
    }

    fn status(&self, kind: StatusType, out: &mut StatusWriter<'_>) {
        let _ = match kind {
            StatusType::Info => self.info(out),
            StatusType::Table => self.table_line(out),
            StatusType::Ima => write!(out, "ftl=rust44-ftl"),
        };
    }

    fn message(&self, args: &[&CStr], _out: &mut StatusWriter<'_>) -> Result {
        let d = &self.dev;
        let verb: &[u8] = match args {
            [verb] => verb.to_bytes(),
            _ => b"",
        };
        let r = match verb {
            b"gc" | b"checkpoint" => {
                let mut guard = d.engine.lock();
                let eng = &mut *guard;
                if eng.ftl.is_none() {
                    pr_err!("rust44-ftl: not loaded yet (resume the device first)\n");
                    return Err(EBUSY);
                }
                if verb == b"gc" {
                    d.collect(eng).map(|_| ())
                } else {
                    d.with_io(eng, "checkpoint", |f, io, scratch| {
                        f.checkpoint(io, scratch)
                    })
                }
            }
            _ => {
                pr_err!("rust44-ftl: unknown message (expected: gc, checkpoint)\n");
                return Err(EINVAL);
            }
        };
        d.snap();
        r
    }

    fn iterate_devices(&self, visitor: &mut DeviceVisitor<'_>) -> Result<(), VisitStop> {
        let d = &self.dev;
        // The whole zones it uses (a smaller last zone is left out).
        let len = d.pins.len() as u64 * d.zone_sectors;
        visitor.visit(&d.dev, 0, len)
    }

    fn io_hints(&self, limits: &mut QueueLimits) {
        // The zoned device's limits were stacked in: what users see is a random-write device.
        limits.set_zoned(false);
        let _ = limits.set_block_size(BLOCK as u32);
        limits.set_discard(MAX_IO_SECTORS * 64, BLOCK as u32);
        limits.set_max_write_zeroes_sectors(MAX_IO_SECTORS * 64);
    }

    fn preresume(&self) -> Result {
        if self.dev.loaded.load(Relaxed) {
            return Ok(());
        }
        self.dev.load()
    }

    fn postsuspend(&self) {
        let d = &self.dev;
        // No bio is in flight; the worker may still be collecting: wait for it.
        d.stop();
        let mut guard = d.engine.lock();
        if guard.ftl.is_some() {
            let _ = d.commit(&mut guard);
        }
    }

    fn resume(&self) {
        self.dev.running.store(true, Relaxed);
        Device::kick(&self.dev);
    }
}

#[pin_data]
struct FtlModule {
    #[pin]
    registration: Registration<FtlTarget>,
}

impl kernel::InPlaceModule for FtlModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            registration <- Registration::new(module),
        })
    }
}

const _: () = assert!(BLOCK == IO_BUFFER_SIZE);
