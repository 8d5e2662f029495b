// SPDX-License-Identifier: GPL-2.0

//! The flash translation layer of rust44-ftl: the logical-to-physical map at 4 KiB, placement
//! over several open zones, valid-block counts, garbage collection, and the metadata that makes
//! the map durable (see `format.rs`). Only `core`: the kernel module and the host tests
//! (`lightnvm/host`) build this same file. The device is reached through [`Io`].
//!
//! One task (the target's worker) changes the FTL. The map is also read, without a lock, by the
//! target's read path: it holds atomics, and a reader pins the zone it reads from
//! ([`pin_read`]) so that the garbage collector does not reset that zone under it.
//!
//! Durability: a map change reaches the metadata only after the data it points to is stable
//! (a device flush comes first), so a power cut leaves every logical block either as it was at
//! the last commit or with a value written since; a zone is reset only once every move out of
//! it is stable.

use crate::format::{self, Checkpoint, BLOCK, LOG_PER_BLOCK, MAP_PER_BLOCK, UNMAPPED};
use core::num::NonZeroU32;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering::SeqCst};

/// The most write streams (open user zones).
pub const MAX_STREAMS: u32 = 8;
/// Free zones only the garbage collector may take: enough to finish moving one victim.
pub const GC_RESERVE: u32 = 2;
/// Log blocks a metadata zone must hold besides a checkpoint.
pub const MIN_LOG_BLOCKS: u32 = 8;

/// An errno from the device (negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoError(pub i32);

/// Why an FTL could not be built or loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The device cannot hold the metadata and any data with these options.
    TooSmall,
    /// Too many streams for the device's open or active zone limits.
    TooManyStreams,
    /// The metadata zones hold data but no intact checkpoint.
    NoCheckpoint,
    /// The metadata was made for another geometry or other options.
    Mismatch,
    /// A containers given to [`Ftl::open`] has the wrong length.
    BadTables,
    /// A metadata zone (the first two) is offline or read-only.
    MetaZoneFailed,
    /// Reading or writing the metadata failed.
    Io(IoError),
}

impl OpenError {
    /// What was wrong, for the table's error.
    pub fn message(&self) -> &'static core::ffi::CStr {
        match self {
            Self::TooSmall => c"the zoned device is too small for the FTL with these options",
            Self::TooManyStreams => c"more streams than the device's open/active zone limits allow",
            Self::NoCheckpoint => c"the metadata zones hold no intact checkpoint",
            Self::Mismatch => c"the metadata was made for another geometry or other options",
            Self::BadTables => c"internal: map sizes do not match",
            Self::MetaZoneFailed => c"a metadata zone (zone 0 or 1) is offline or read-only",
            Self::Io(_) => c"cannot read or write the metadata zones",
        }
    }
}

/// How the garbage collector picks its victim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The full zone with the fewest valid blocks.
    Greedy,
    /// The best ratio of space gained times age over cost (LFS's cost-benefit).
    CostBenefit,
}

/// The options of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Open user zones writes are striped over.
    pub streams: u32,
    /// Over-provisioning: percent of the data space not offered to users.
    pub op_percent: u32,
    /// Zones kept out of the capacity besides the over-provisioning.
    pub reserved: u32,
    /// Victim selection.
    pub policy: Policy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            streams: 4,
            op_percent: 10,
            reserved: 0,
            policy: Policy::Greedy,
        }
    }
}

/// A zone as the device reports it, at load time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// Empty (write pointer at the start).
    Empty,
    /// Written up to `wp` blocks, open or closed.
    Partial(u32),
    /// Full.
    Full,
    /// Read-only: readable, never written again.
    ReadOnly,
    /// Offline: neither read nor written.
    Offline,
}

/// What the FTL does with a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Empty, available.
    Free,
    /// Being filled by a stream.
    Open,
    /// No more writes: holds data (a garbage-collection candidate).
    Full,
    /// A metadata zone.
    Meta,
    /// Out of use (offline, or read-only and emptied).
    Retired,
}

/// The FTL's view of a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone {
    /// What it is used for.
    pub role: Role,
    /// Usable blocks (the zone's capacity).
    pub cap: u32,
    /// Blocks written (or given out) from the start.
    pub wp: u32,
    /// Blocks the map points to.
    pub valid: u32,
    /// When it was last filled, for cost-benefit.
    pub stamp: u64,
    /// Read-only: its data is moved out and it is retired.
    pub read_only: bool,
}

impl Zone {
    /// A zone as reported: `cap` usable blocks, in condition `cond`.
    pub fn reported(cond: Cond, cap: u32) -> Self {
        let (role, wp, read_only) = match cond {
            Cond::Empty => (Role::Free, 0, false),
            Cond::Partial(wp) => (Role::Full, wp.min(cap), false),
            Cond::Full => (Role::Full, cap, false),
            Cond::ReadOnly => (Role::Full, cap, true),
            Cond::Offline => (Role::Retired, cap, true),
        };
        Self {
            role,
            cap,
            wp,
            valid: 0,
            stamp: 0,
            read_only,
        }
    }

    fn writable(&self) -> bool {
        !self.read_only && self.role != Role::Retired
    }
}

/// Counters for `dmsetup status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Blocks users wrote.
    pub host_blocks: u64,
    /// Blocks written to the device: user data, moved data and metadata.
    pub device_blocks: u64,
    /// Zones the garbage collector emptied.
    pub gc_runs: u64,
    /// Blocks it moved.
    pub gc_moved: u64,
    /// Log commits made durable.
    pub commits: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
}

/// The device, as the FTL uses it. Addresses are physical blocks: `zone * zone_blocks + offset`.
pub trait Io {
    /// Reads `buf.len()` bytes (whole blocks) from block `pba`.
    fn read(&mut self, pba: u32, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `buf` (whole blocks) at block `pba`, a zone's write pointer; `fua`: stable when
    /// this returns.
    fn write(&mut self, pba: u32, buf: &[u8], fua: bool) -> Result<(), IoError>;
    /// Makes every completed write stable.
    fn flush(&mut self) -> Result<(), IoError>;
    /// Resets zone `zone` (its write pointer back to the start).
    fn reset(&mut self, zone: u32) -> Result<(), IoError>;
    /// Finishes zone `zone` (full: it no longer counts as open or active).
    fn finish(&mut self, zone: u32) -> Result<(), IoError>;
    /// Waits until no read pinned in `zone` ([`pin_read`]) is in flight.
    fn wait_reads(&mut self, zone: u32);
    /// Blocks the staging area holds: the collector's blocks in transit.
    fn stage_blocks(&self) -> u32;
    /// Blocks the device takes in one zone append (at least 1).
    fn append_blocks(&self) -> u32;
    /// Reads `runs` (first block, length) into the staging area, one after the other from its
    /// start, all in flight together.
    fn stage(&mut self, runs: &[(u32, u32)]) -> Result<(), IoError>;
    /// Appends `chunks` of the staging area (first staged block, length; each at most
    /// [`Io::append_blocks`]) to zone `zone`, all in flight together: the device puts each at
    /// the zone's write pointer when it gets there, in any order. `landed[i]` is set to the
    /// block where chunk `i` starts.
    fn append_staged(
        &mut self,
        zone: u32,
        chunks: &[(u32, u32)],
        landed: &mut [u32],
    ) -> Result<(), IoError>;
}

/// Runs of valid blocks the collector reads in one go.
const GC_RUNS: usize = 32;
/// Zone appends the collector has in flight at once.
pub const GC_CHUNKS: usize = 16;

/// The block staged block `staged` was read from, `runs` having been staged one after another.
fn staged_source(runs: &[(u32, u32)], staged: u32) -> Option<u32> {
    let mut at = 0;
    for &(pba, len) in runs {
        if staged < at + len {
            return Some(pba + (staged - at));
        }
        at += len;
    }
    None
}

/// What a read of logical blocks finds at its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRun {
    /// `len` blocks stored from `pba` on, in `zone`, which stays pinned until the caller unpins
    /// it (`pins[zone] -= 1`) when the read has ended.
    Mapped {
        /// First physical block.
        pba: u32,
        /// Blocks in the run.
        len: u32,
        /// The pinned zone.
        zone: u32,
    },
    /// `len` blocks never written or discarded: they read as zeroes.
    Unmapped {
        /// Blocks in the run.
        len: u32,
    },
}

/// Finds the run of at most `max` logical blocks from `lba` that one read of the device can
/// serve, pinning its zone. `map` is the FTL's map ([`Ftl::map`]), `pins` one counter per zone.
///
/// The pin is taken before the run is read back from the map: the collector changes the map
/// before it looks at the pins, so either it sees this pin or this reader sees the new map.
pub fn pin_read(
    map: &[AtomicU32],
    pins: &[AtomicU32],
    zone_blocks: u32,
    lba: u32,
    max: u32,
) -> ReadRun {
    let lba = lba as usize;
    let end = map.len().min(lba + max as usize);
    loop {
        let Some(first) = map.get(lba).map(|e| e.load(SeqCst)) else {
            return ReadRun::Unmapped { len: 0 };
        };
        if first == UNMAPPED {
            let len = map[lba..end]
                .iter()
                .take_while(|e| e.load(SeqCst) == UNMAPPED)
                .count();
            return ReadRun::Unmapped {
                len: (len as u32).max(1),
            };
        }
        let Some(zone) = first.checked_div(zone_blocks) else {
            return ReadRun::Unmapped { len: 1 };
        };
        let Some(pin) = pins.get(zone as usize) else {
            return ReadRun::Unmapped { len: 1 };
        };
        pin.fetch_add(1, SeqCst);
        let zone_end = (zone + 1).saturating_mul(zone_blocks);
        let len = map[lba..end]
            .iter()
            .zip(first..zone_end)
            .take_while(|(e, pba)| e.load(SeqCst) == *pba)
            .count() as u32;
        if len > 0 {
            return ReadRun::Mapped {
                pba: first,
                len,
                zone,
            };
        }
        // Moved meanwhile: look again.
        pin.fetch_sub(1, SeqCst);
    }
}

/// The FTL: map, reverse map, zones, streams and the pending log.
///
/// `M` holds the map (shared with readers), `V` the reverse map and the pending log, `Z` the
/// zones: a kernel's or a host's vectors.
pub struct Ftl<M, V, Z> {
    map: M,
    rmap: V,
    pending: V,
    pending_len: usize,
    /// Changes were made that the pending log had no room for: the next commit writes a
    /// checkpoint (the whole map), so that they are not lost at the next load.
    log_overflow: bool,
    zones: Z,
    /// Blocks per zone (its size, not its capacity): never 0, so dividing by it cannot fail.
    zone_blocks: NonZeroU32,
    zone_sectors: u64,
    lbas: u32,
    config: Config,
    streams: [u32; MAX_STREAMS as usize],
    next_stream: u32,
    gc_zone: u32,
    meta: [u32; 2],
    /// Index into `meta` of the zone the log goes to.
    meta_cur: usize,
    seq: u64,
    free: u32,
    clock: u64,
    next_free: u32,
    stats: Stats,
}

const NONE: u32 = u32::MAX;

/// The logical blocks the FTL offers over `zones` with `config`, and the two metadata zones.
///
/// The metadata zones are the first two. The capacity counts every other zone, failed or not,
/// so that it stays what the metadata says when zones fail later: failed zones take from the
/// over-provisioning.
pub fn capacity(zones: &[Zone], config: &Config) -> Result<(u32, [u32; 2]), OpenError> {
    let meta = [0, 1];
    if zones.len() < 3 {
        return Err(OpenError::TooSmall);
    }
    if !zones[0].writable() || !zones[1].writable() {
        return Err(OpenError::MetaZoneFailed);
    }
    let data = &zones[2..];
    let total: u64 = data.iter().map(|z| u64::from(z.cap)).sum();
    let max_cap = data.iter().map(|z| u64::from(z.cap)).max().unwrap_or(0);
    let held = u64::from(config.streams + GC_RESERVE + 1 + config.reserved) * max_cap;
    let room = total.saturating_sub(held) * u64::from(100 - config.op_percent.min(99)) / 100;
    let lbas = u32::try_from(room).unwrap_or(u32::MAX - 1);
    if lbas == 0 {
        return Err(OpenError::TooSmall);
    }
    let need = 1 + format::map_blocks(lbas) + MIN_LOG_BLOCKS;
    if meta.iter().any(|&m| zones[m as usize].cap < need) {
        return Err(OpenError::TooSmall);
    }
    Ok((lbas, meta))
}

impl<M, V, Z> Ftl<M, V, Z>
where
    M: Deref<Target = [AtomicU32]>,
    V: DerefMut<Target = [u32]>,
    Z: DerefMut<Target = [Zone]>,
{
    /// Loads the FTL from the device, or formats it when both metadata zones are empty.
    ///
    /// `zones` is the device as reported ([`Zone::reported`]), `zone_blocks` the zone size in
    /// blocks; `map` must have [`capacity`]'s entries, `rmap` one per physical block and
    /// `pending` an even length. `buf` (whole blocks, at least one) is scratch for the metadata.
    /// `max_open` bounds the zones written at a time (0: no limit). Zones left partly written
    /// are finished; a fresh checkpoint is written before this returns.
    #[allow(clippy::too_many_arguments)]
    pub fn open<I: Io>(
        io: &mut I,
        buf: &mut [u8],
        config: Config,
        zone_blocks: u32,
        max_open: u32,
        map: M,
        rmap: V,
        pending: V,
        mut zones: Z,
    ) -> Result<Self, OpenError> {
        if config.streams == 0 || config.streams > MAX_STREAMS {
            return Err(OpenError::TooManyStreams);
        }
        // Streams, the collector's zone and both metadata zones may be open at once.
        if max_open != 0 && config.streams + 3 > max_open {
            return Err(OpenError::TooManyStreams);
        }
        let (lbas, meta) = capacity(&zones, &config)?;
        let zone_blocks = NonZeroU32::new(zone_blocks).ok_or(OpenError::BadTables)?;
        let nzones = zones.len();
        if map.len() != lbas as usize
            || rmap.len() != nzones * zone_blocks.get() as usize
            || pending.len() < 2 * LOG_PER_BLOCK
            || buf.len() < BLOCK
        {
            return Err(OpenError::BadTables);
        }
        for &m in &meta {
            zones[m as usize].role = Role::Meta;
        }
        let mut ftl = Self {
            map,
            rmap,
            pending,
            pending_len: 0,
            log_overflow: false,
            zones,
            zone_blocks,
            zone_sectors: u64::from(zone_blocks.get()) * format::BLOCK_SECTORS,
            lbas,
            config,
            streams: [NONE; MAX_STREAMS as usize],
            next_stream: 0,
            gc_zone: NONE,
            meta,
            meta_cur: 0,
            seq: 0,
            free: 0,
            clock: 0,
            next_free: 0,
            stats: Stats::default(),
        };
        for e in ftl.map.iter() {
            e.store(UNMAPPED, SeqCst);
        }
        ftl.rmap.fill(UNMAPPED);
        ftl.load(io, buf)?;
        ftl.rebuild(io)?;
        ftl.checkpoint(io, buf).map_err(OpenError::Io)?;
        Ok(ftl)
    }

    /// Reads the newest intact checkpoint and replays its log into the map.
    fn load<I: Io>(&mut self, io: &mut I, buf: &mut [u8]) -> Result<(), OpenError> {
        let block = &mut buf[..BLOCK];
        let mut found: [Option<Checkpoint>; 2] = [None, None];
        let mut written = false;
        for (k, &m) in self.meta.iter().enumerate() {
            if self.zones[m as usize].wp == 0 {
                continue;
            }
            written = true;
            io.read(m * self.zone_blocks.get(), block)
                .map_err(OpenError::Io)?;
            found[k] = format::decode_checkpoint(block);
        }
        // The newer checkpoint first; the older one if the newer was cut short (its header
        // stable, not all of its map).
        let newer = match found {
            [Some(a), Some(b)] if b.seq > a.seq => 1,
            [None, Some(_)] => 1,
            _ => 0,
        };
        for k in [newer, 1 - newer] {
            let Some(c) = found[k] else {
                continue;
            };
            if c.lbas != self.lbas
                || c.zone_sectors != self.zone_sectors
                || c.zones as usize != self.zones.len()
            {
                return Err(OpenError::Mismatch);
            }
            if self.load_from(io, block, k, &c)? {
                return Ok(());
            }
            for e in self.map.iter() {
                e.store(UNMAPPED, SeqCst);
            }
            for z in self.zones.iter_mut() {
                z.stamp = 0;
            }
        }
        // A fresh device (or one whose first checkpoint was cut short): nothing to load.
        // Metadata zones without an intact checkpoint beside written data zones are not ours,
        // or lost: refused rather than overwritten.
        let data_written = self
            .zones
            .iter()
            .any(|z| z.role == Role::Full && !z.read_only && z.wp > 0);
        if written && data_written {
            Err(OpenError::NoCheckpoint)
        } else {
            Ok(())
        }
    }

    /// Reads checkpoint `c` of metadata zone `k` into the map and replays its log; false if the
    /// map's CRC is wrong.
    fn load_from<I: Io>(
        &mut self,
        io: &mut I,
        block: &mut [u8],
        k: usize,
        c: &Checkpoint,
    ) -> Result<bool, OpenError> {
        let m = self.meta[k];
        let wp = self.zones[m as usize].wp;
        let mut at = m * self.zone_blocks.get() + 1;
        let mut crc = !0u32;
        let map_blocks = c.map_blocks() as usize;
        let nzones = self.zones.len();
        for index in 0..map_blocks + c.age_blocks() as usize {
            io.read(at, block).map_err(OpenError::Io)?;
            crc = format::crc32c_update(crc, block);
            let (map, zones) = (&self.map, &mut self.zones);
            if index < map_blocks {
                format::decode_map_block(block, self.lbas as usize, index, |lba, pba| {
                    map[lba].store(pba, SeqCst)
                });
            } else {
                format::decode_age_block(block, nzones, index - map_blocks, |z, age| {
                    zones[z].stamp = age
                });
            }
            at += 1;
        }
        if !crc != c.map_crc {
            return Ok(false);
        }
        self.meta_cur = k;
        self.seq = c.seq;
        self.clock = c.clock.unwrap_or(0);
        let since = self.clock;
        let end = m * self.zone_blocks.get() + wp;
        while at < end {
            io.read(at, block).map_err(OpenError::Io)?;
            let (map, zones, clock) = (&self.map, &mut self.zones, &mut self.clock);
            let (lbas, zone_blocks) = (self.lbas, self.zone_blocks);
            if !format::decode_log(block, self.seq + 1, |lba, pba| {
                if lba < lbas {
                    map[lba as usize].store(pba, SeqCst);
                }
                // A zone written since the checkpoint was filled after every zone it dates:
                // the youngest, in the order the log first names them.
                if let Some(z) = zones.get_mut((pba / zone_blocks) as usize) {
                    if pba != UNMAPPED && z.stamp <= since {
                        *clock += 1;
                        z.stamp = *clock;
                    }
                }
            }) {
                break;
            }
            self.seq += 1;
            at += 1;
        }
        Ok(true)
    }

    /// Derives the reverse map, valid counts and zone roles from the map and the write
    /// pointers; finishes partly written data zones.
    fn rebuild<I: Io>(&mut self, io: &mut I) -> Result<(), OpenError> {
        for lba in 0..self.lbas as usize {
            let pba = self.map[lba].load(SeqCst);
            if pba == UNMAPPED {
                continue;
            }
            let zone = (pba / self.zone_blocks) as usize;
            // A zone offline since (retired at load) keeps its entries: reads of what it held
            // fail with an I/O error instead of reading as zeroes, until they are written again.
            let ok = self.zones.get(zone).is_some_and(|z| {
                matches!(z.role, Role::Full | Role::Free | Role::Retired)
                    && pba % self.zone_blocks < z.wp
                    && self.rmap[pba as usize] == UNMAPPED
            });
            if !ok {
                // Points where no stable data can be (a torn metadata write): never written.
                self.map[lba].store(UNMAPPED, SeqCst);
                continue;
            }
            self.rmap[pba as usize] = lba as u32;
            self.zones[zone].valid += 1;
        }
        for i in 0..self.zones.len() {
            let z = self.zones[i];
            match z.role {
                Role::Full if !z.read_only && z.wp < z.cap => {
                    if z.valid == 0 {
                        io.reset(i as u32).map_err(OpenError::Io)?;
                        self.zones[i].role = Role::Free;
                        self.zones[i].wp = 0;
                    } else {
                        io.finish(i as u32).map_err(OpenError::Io)?;
                        // Full from now: the youngest zone.
                        self.clock += 1;
                        self.zones[i].wp = z.cap;
                        self.zones[i].stamp = self.clock;
                    }
                }
                Role::Full if !z.read_only && z.valid == 0 => {
                    io.reset(i as u32).map_err(OpenError::Io)?;
                    self.zones[i].role = Role::Free;
                    self.zones[i].wp = 0;
                }
                // Read-only and holding nothing (emptied before this load): retired now, not
                // when the collector gets to it.
                Role::Full if z.read_only && z.valid == 0 => self.zones[i].role = Role::Retired,
                _ => {}
            }
            if self.zones[i].role == Role::Free {
                self.free += 1;
            }
        }
        Ok(())
    }

    /// The map, for readers ([`pin_read`]).
    pub fn map(&self) -> &[AtomicU32] {
        &self.map
    }

    /// Logical blocks offered.
    pub fn lbas(&self) -> u32 {
        self.lbas
    }

    /// The zones.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The options in use.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Free zones.
    pub fn free_zones(&self) -> u32 {
        self.free
    }

    /// Valid blocks of all zones, and blocks of the zones holding data (full or open).
    pub fn valid_ratio(&self) -> (u64, u64) {
        let mut valid = 0;
        let mut used = 0;
        for z in self.zones.iter() {
            if matches!(z.role, Role::Full | Role::Open) {
                valid += u64::from(z.valid);
                used += u64::from(z.wp);
            }
        }
        (valid, used)
    }

    /// Whether the collector should run now, with no writes waiting: free space is low and the
    /// victim is at least a quarter garbage (or read-only). Below that, collecting in the
    /// background would move nearly full zones around for little space; writes that find no
    /// space collect anyway ([`Ftl::place`] returns `None`).
    pub fn wants_gc(&self) -> bool {
        if self.free >= self.config.streams + GC_RESERVE + 2 {
            return false;
        }
        self.victim().is_some_and(|v| {
            let z = &self.zones[v as usize];
            z.read_only || z.cap - z.valid >= z.cap / 4
        })
    }

    /// Whether the pending log has room for `n` more changes. A caller holding placements not
    /// yet [`Ftl::written`] counts their blocks in `n`.
    pub fn log_room(&self, n: usize) -> bool {
        self.pending_len + n <= self.pending.len() / 2
    }

    fn take_free(&mut self, user: bool) -> Option<u32> {
        if self.free == 0 || (user && self.free <= GC_RESERVE) {
            return None;
        }
        let n = self.zones.len() as u32;
        for k in 0..n {
            let i = (self.next_free + k) % n;
            let z = &mut self.zones[i as usize];
            if z.role == Role::Free && z.writable() {
                z.role = Role::Open;
                z.wp = 0;
                z.valid = 0;
                self.free -= 1;
                self.next_free = (i + 1) % n;
                return Some(i);
            }
        }
        None
    }

    /// Gives out up to `n` blocks of `zone`; it is full once its capacity is given out.
    fn give(&mut self, zone: u32, n: u32) -> (u32, u32) {
        let z = &mut self.zones[zone as usize];
        let len = n.min(z.cap - z.wp);
        let pba = zone * self.zone_blocks.get() + z.wp;
        z.wp += len;
        if z.wp == z.cap {
            z.role = Role::Full;
            self.clock += 1;
            z.stamp = self.clock;
        }
        (pba, len)
    }

    /// Whether the next [`Ftl::place`] opens a zone: its stream's zone is full (or it has none).
    /// A caller that writes placements in batches writes the ones it holds first, so that the
    /// zone a stream fills is full on the device before the stream opens the next: the device's
    /// active zones stay within streams + 3.
    pub fn needs_zone(&self) -> bool {
        let zone = self.streams[self.next_stream as usize % MAX_STREAMS as usize];
        zone == NONE || self.zones[zone as usize].role != Role::Open
    }

    /// Places up to `n` blocks of a user write: returns the first physical block and how many
    /// blocks go there (the rest is placed by another call), or `None` when no stream has room
    /// and only the collector's reserve is free (collect, then try again). Streams take turns,
    /// so consecutive writes go to different zones.
    pub fn place(&mut self, n: u32) -> Option<(u32, u32)> {
        let streams = self.config.streams;
        for k in 0..streams {
            let s = ((self.next_stream + k) % streams) as usize;
            let mut zone = self.streams[s];
            if zone == NONE || self.zones[zone as usize].role != Role::Open {
                let Some(z) = self.take_free(true) else {
                    continue;
                };
                self.streams[s] = z;
                zone = z;
            }
            self.next_stream = (s as u32 + 1) % streams;
            return Some(self.give(zone, n));
        }
        None
    }

    fn place_gc(&mut self, n: u32) -> Option<(u32, u32)> {
        if self.gc_zone == NONE || self.zones[self.gc_zone as usize].role != Role::Open {
            self.gc_zone = self.take_free(false)?;
        }
        Some(self.give(self.gc_zone, n))
    }

    fn log(&mut self, lba: u32, pba: u32) {
        let at = 2 * self.pending_len;
        if at + 1 < self.pending.len() {
            self.pending[at] = lba;
            self.pending[at + 1] = pba;
            self.pending_len += 1;
        } else {
            self.log_overflow = true;
        }
    }

    fn unmap_old(&mut self, old: u32) {
        if old == UNMAPPED {
            return;
        }
        self.rmap[old as usize] = UNMAPPED;
        let zone = (old / self.zone_blocks) as usize;
        self.zones[zone].valid = self.zones[zone].valid.saturating_sub(1);
    }

    /// Points logical block `lba` at physical block `pba` (written and complete): the block
    /// it pointed at before stops being valid, and the change is logged.
    fn remap(&mut self, lba: u32, pba: u32) {
        let old = self.map[lba as usize].swap(pba, SeqCst);
        self.unmap_old(old);
        self.rmap[pba as usize] = lba;
        self.zones[(pba / self.zone_blocks) as usize].valid += 1;
        self.log(lba, pba);
    }

    /// Records that `n` logical blocks from `lba` were written (and the write completed) at the
    /// physical blocks from `pba`, which [`Ftl::place`] gave out. The caller checked
    /// [`Ftl::log_room`] for `n` first; logical blocks past the end are ignored.
    pub fn written(&mut self, lba: u32, pba: u32, n: u32) {
        for i in 0..n {
            let (l, p) = (lba + i, pba + i);
            if l >= self.lbas {
                break;
            }
            self.remap(l, p);
        }
        self.stats.host_blocks += u64::from(n);
        self.stats.device_blocks += u64::from(n);
    }

    /// Forgets the blocks of a write that failed at `pba`: they hold nothing valid, and the zone
    /// takes no more writes (its data is moved out and it is retired).
    pub fn write_failed(&mut self, pba: u32) {
        let zone = pba / self.zone_blocks;
        let z = &mut self.zones[zone as usize];
        z.read_only = true;
        if z.role == Role::Open {
            z.role = Role::Full;
            z.wp = z.cap;
        }
    }

    /// Unmaps up to `n` logical blocks from `lba` (discard, write-zeroes); returns how many it
    /// did: fewer when the pending log is full (commit, then go on).
    pub fn discard(&mut self, lba: u32, n: u32) -> u32 {
        let mut done = 0;
        while done < n {
            let l = lba + done;
            if l >= self.lbas {
                return n;
            }
            if self.map[l as usize].load(SeqCst) != UNMAPPED {
                if !self.log_room(1) {
                    break;
                }
                let old = self.map[l as usize].swap(UNMAPPED, SeqCst);
                self.unmap_old(old);
                self.log(l, UNMAPPED);
            }
            done += 1;
        }
        done
    }

    /// Makes every map change so far durable: a flush (the data they point to becomes stable
    /// first), then the pending log, written with FUA. Writes a checkpoint instead when the
    /// metadata zone is full or the log overflowed.
    pub fn commit<I: Io>(&mut self, io: &mut I, buf: &mut [u8]) -> Result<(), IoError> {
        if self.pending_len == 0 && !self.log_overflow {
            return Ok(());
        }
        let blocks = self.pending_len.div_ceil(LOG_PER_BLOCK) as u32;
        let m = self.meta[self.meta_cur];
        let z = self.zones[m as usize];
        if self.log_overflow || z.cap - z.wp < blocks {
            return self.checkpoint(io, buf);
        }
        io.flush()?;
        let per_write = buf.len() / BLOCK;
        let mut done = 0usize;
        let mut at = m * self.zone_blocks.get() + z.wp;
        while done < self.pending_len {
            let mut k = 0;
            while k < per_write && done < self.pending_len {
                let n = (self.pending_len - done).min(LOG_PER_BLOCK);
                let entries = &self.pending[2 * done..2 * (done + n)];
                format::encode_log(&mut buf[k * BLOCK..(k + 1) * BLOCK], self.seq + 1, entries);
                self.seq += 1;
                done += n;
                k += 1;
            }
            io.write(at, &buf[..k * BLOCK], true)?;
            at += k as u32;
            self.zones[m as usize].wp += k as u32;
            self.stats.device_blocks += k as u64;
        }
        self.pending_len = 0;
        self.stats.commits += 1;
        Ok(())
    }

    /// Writes the whole map as a checkpoint into the other metadata zone (reset first), which
    /// the log then continues in; the zone it leaves is finished.
    pub fn checkpoint<I: Io>(&mut self, io: &mut I, buf: &mut [u8]) -> Result<(), IoError> {
        // What the map points to is stable before the map is.
        io.flush()?;
        let next = 1 - self.meta_cur;
        let m = self.meta[next];
        io.reset(m)?;
        self.zones[m as usize].wp = 0;
        let lbas = self.lbas as usize;
        let map_blocks = format::map_blocks(self.lbas) as usize;
        let nzones = self.zones.len();
        let blocks = map_blocks + format::age_blocks(nzones as u32) as usize;
        let map = &self.map;
        // Block `index` of what follows the header: the map, then the zones' ages.
        let encode = |b: &mut [u8], index: usize, zones: &[Zone]| {
            if index < map_blocks {
                format::encode_map_block(b, |lba| map[lba].load(SeqCst), lbas, index);
            } else {
                format::encode_age_block(b, |z| zones[z].stamp, nzones, index - map_blocks);
            }
        };
        // The header carries the CRC of what follows: one pass to compute it, one to write.
        let mut crc = !0u32;
        for index in 0..blocks {
            let b = &mut buf[..BLOCK];
            encode(b, index, &self.zones);
            crc = format::crc32c_update(crc, b);
        }
        // Entries changed between the passes would make the CRC wrong: only this task writes
        // the map, so none do.
        let c = Checkpoint {
            seq: self.seq + 1,
            lbas: self.lbas,
            zone_sectors: self.zone_sectors,
            zones: nzones as u32,
            map_crc: !crc,
            clock: Some(self.clock),
        };
        let per_write = buf.len() / BLOCK;
        let mut at = m * self.zone_blocks.get();
        let mut index = 0usize;
        let mut first = true;
        while first || index < blocks {
            let mut k = 0;
            if first {
                format::encode_checkpoint(&mut buf[..BLOCK], &c);
                k = 1;
                first = false;
            }
            while k < per_write && index < blocks {
                encode(&mut buf[k * BLOCK..(k + 1) * BLOCK], index, &self.zones);
                index += 1;
                k += 1;
            }
            io.write(at, &buf[..k * BLOCK], false)?;
            at += k as u32;
            self.zones[m as usize].wp += k as u32;
            self.stats.device_blocks += k as u64;
        }
        io.flush()?;
        self.seq = c.seq;
        let old = self.meta[self.meta_cur];
        self.meta_cur = next;
        self.pending_len = 0;
        self.log_overflow = false;
        self.stats.checkpoints += 1;
        // The old zone stays readable (an older checkpoint) but stops counting as open.
        if self.zones[old as usize].wp > 0
            && self.zones[old as usize].wp < self.zones[old as usize].cap
        {
            io.finish(old)?;
            self.zones[old as usize].wp = self.zones[old as usize].cap;
        }
        Ok(())
    }

    /// The zone the collector empties next: a read-only zone holding data first, then by the
    /// policy among full zones that have invalid blocks.
    pub fn victim(&self) -> Option<u32> {
        let mut best: Option<(u32, u64)> = None;
        for (i, z) in self.zones.iter().enumerate() {
            if z.role != Role::Full {
                continue;
            }
            if z.read_only {
                return Some(i as u32);
            }
            if z.valid >= z.cap {
                continue;
            }
            let free = u64::from(z.cap - z.valid);
            let score = match self.config.policy {
                // Fewest valid blocks: most space for the least copying.
                Policy::Greedy => free,
                // (1 - u) * age / (1 + u), scaled to integers.
                Policy::CostBenefit => {
                    let age = self.clock.saturating_sub(z.stamp) + 1;
                    free * age * 1024 / (u64::from(z.cap) + u64::from(z.valid))
                }
            };
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i as u32, score));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Appends staged blocks `first..first + n` to the collector's blocks `to..to + n` (given
    /// out by [`Ftl::place_gc`]) in chunks of at most `chunk` blocks, and maps each block where
    /// its chunk landed. `runs` are where the staged blocks came from. A chunk the device says
    /// it put outside those blocks, or over another, fails the move (nothing is mapped: the
    /// blocks stay valid where they were).
    fn move_staged<I: Io>(
        &mut self,
        io: &mut I,
        runs: &[(u32, u32)],
        first: u32,
        to: u32,
        n: u32,
        chunk: u32,
    ) -> Result<(), IoError> {
        let zone = to / self.zone_blocks;
        let mut chunks = [(0u32, 0u32); GC_CHUNKS];
        let mut nchunks = 0;
        let mut at = 0;
        while at < n {
            let len = chunk.min(n - at);
            if nchunks == GC_CHUNKS {
                return Err(IoError(-22));
            }
            chunks[nchunks] = (first + at, len);
            nchunks += 1;
            at += len;
        }
        let mut landed = [0u32; GC_CHUNKS];
        if let Err(e) = io.append_staged(zone, &chunks[..nchunks], &mut landed[..nchunks]) {
            self.write_failed(to);
            return Err(e);
        }
        let chunks = &chunks[..nchunks];
        let landed = &landed[..nchunks];
        let inside = |i: usize| landed[i] >= to && landed[i] - to <= n - chunks[i].1;
        let apart = |i: usize, j: usize| {
            landed[i] + chunks[i].1 <= landed[j] || landed[j] + chunks[j].1 <= landed[i]
        };
        if !(0..nchunks).all(|i| inside(i) && (0..i).all(|j| apart(i, j))) {
            self.write_failed(to);
            return Err(IoError(-5));
        }
        for (&(staged, len), &dest) in chunks.iter().zip(landed) {
            for k in 0..len {
                let Some(old) = staged_source(runs, staged + k) else {
                    continue;
                };
                let lba = self.rmap[old as usize];
                if lba != UNMAPPED {
                    // The map points at `old` (the reverse map says so): `remap` unmaps it.
                    self.remap(lba, dest + k);
                }
            }
        }
        Ok(())
    }

    /// Empties one victim zone: moves its valid blocks to the collector's zone, commits, waits
    /// for reads pinned in it, and resets it (or retires it, if read-only). Returns the zone,
    /// or `None` when no zone is worth collecting. `buf` is scratch for the metadata.
    ///
    /// The moves go in batches: up to [`GC_RUNS`] runs of valid blocks are read into the
    /// staging area together, then appended to the collector's zone in chunks, together; each
    /// block is mapped where the device says its chunk landed.
    pub fn collect<I: Io>(&mut self, io: &mut I, buf: &mut [u8]) -> Result<Option<u32>, IoError> {
        let Some(victim) = self.victim() else {
            return Ok(None);
        };
        let base = victim * self.zone_blocks.get();
        let wp = self.zones[victim as usize].wp;
        let chunk = io.append_blocks().max(1);
        let stage = io
            .stage_blocks()
            .min(chunk.saturating_mul(GC_CHUNKS as u32));
        if stage == 0 {
            return Err(IoError(-22));
        }
        let mut off = 0;
        while off < wp {
            let mut runs = [(0u32, 0u32); GC_RUNS];
            let mut nruns = 0;
            let mut total = 0;
            while off < wp && nruns < GC_RUNS && total < stage {
                if self.rmap[(base + off) as usize] == UNMAPPED {
                    off += 1;
                    continue;
                }
                let mut len = 1;
                while off + len < wp
                    && total + len < stage
                    && self.rmap[(base + off + len) as usize] != UNMAPPED
                {
                    len += 1;
                }
                runs[nruns] = (base + off, len);
                nruns += 1;
                total += len;
                off += len;
            }
            if total == 0 {
                break;
            }
            if !self.log_room(total as usize) {
                self.commit(io, buf)?;
            }
            io.stage(&runs[..nruns])?;
            let mut done = 0;
            while done < total {
                let Some((to, n)) = self.place_gc(total - done) else {
                    return Err(IoError(-28));
                };
                self.move_staged(io, &runs[..nruns], done, to, n, chunk)?;
                self.stats.device_blocks += u64::from(n);
                self.stats.gc_moved += u64::from(n);
                done += n;
            }
        }
        // The moves are stable before the zone they came from is gone.
        self.commit(io, buf)?;
        io.wait_reads(victim);
        let z = &mut self.zones[victim as usize];
        if z.read_only {
            z.role = Role::Retired;
        } else {
            io.reset(victim)?;
            let z = &mut self.zones[victim as usize];
            z.role = Role::Free;
            z.wp = 0;
            z.valid = 0;
            self.free += 1;
        }
        self.stats.gc_runs += 1;
        Ok(Some(victim))
    }
}

const _: () = assert!(MAP_PER_BLOCK == 1024);
