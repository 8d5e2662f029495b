// SPDX-License-Identifier: GPL-2.0

//! The on-disk metadata of rust44-ftl. Only `core`: the kernel module and the host tests
//! (`lightnvm/host`) build this same file.
//!
//! The first two usable zones of the device are metadata zones, used in turn. Each starts with a
//! map checkpoint (a header block, then the logical-to-physical map, 1024 little-endian `u32`s a
//! block, then, since version 2, the zones' ages: when each was last filled, on the collector's
//! clock, 512 little-endian `u64`s a block), followed by reverse-map log blocks, each a list of `(lba, pba)` pairs appended since
//! the checkpoint (`pba` [`UNMAPPED`]: a discard). Every block carries the sequence number that
//! follows the one before it in its zone (the checkpoint's is the first), so a torn or stale
//! block ends the log. When a metadata zone is full the next checkpoint goes to the other zone,
//! which is reset first; the older checkpoint stays until the new one is complete.
//!
//! Block layout (4096 bytes, little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"r44ftl\0\0"` |
//! | 8 | 4 | kind (1: checkpoint, 2: log) |
//! | 12 | 4 | version (2; 1 is read too: a checkpoint without ages) |
//! | 16 | 8 | sequence number |
//! | 24 | 4 | log: entries in this block; checkpoint: logical blocks (map entries) |
//! | 28 | 4 | checkpoint: map and age blocks that follow |
//! | 32 | .. | log: `(lba, pba)` pairs; checkpoint: the fields of [`Checkpoint`] (zone size at
//! 32, zones at 40, CRC of the blocks that follow at 44, the clock at 48) |
//! | 4092 | 4 | CRC-32C of bytes `0..4092` |
//!
//! The CRC is the standard CRC-32C (`crc32c(b"123456789") == 0xe3069283`).

/// Bytes of a block (the FTL's mapping unit and metadata unit).
pub const BLOCK: usize = 4096;
/// Sectors of a block.
pub const BLOCK_SECTORS: u64 = (BLOCK / 512) as u64;
/// A map entry (or log target) that names no physical block.
pub const UNMAPPED: u32 = u32::MAX;
/// Map entries in one checkpoint map block.
pub const MAP_PER_BLOCK: usize = BLOCK / 4;
/// Zone ages in one checkpoint age block.
pub const AGES_PER_BLOCK: usize = BLOCK / 8;
/// `(lba, pba)` pairs in one log block.
pub const LOG_PER_BLOCK: usize = (CRC_OFFSET - HEADER) / 8;

const MAGIC: [u8; 8] = *b"r44ftl\0\0";
const VERSION: u32 = 2;
/// Checkpoints without zone ages, still read.
const VERSION_NO_AGES: u32 = 1;
const KIND_CHECKPOINT: u32 = 1;
const KIND_LOG: u32 = 2;
const HEADER: usize = 32;
const CRC_OFFSET: usize = BLOCK - 4;

#[path = "../common/crc32c.rs"]
mod crc;
pub use crc::{crc32c, crc32c_update};

fn get32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn get64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// What a checkpoint records besides the map: what the map was made for, so that a table with
/// other options is refused rather than misread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number of the checkpoint (its log continues from `seq + 1`).
    pub seq: u64,
    /// Logical blocks (entries of the map).
    pub lbas: u32,
    /// The device's zone size, in sectors.
    pub zone_sectors: u64,
    /// The device's zones.
    pub zones: u32,
    /// CRC-32C of the blocks that follow the header (map, then ages), in order.
    pub map_crc: u32,
    /// The collector's clock (zones filled so far); `None`: a version 1 checkpoint, without
    /// ages.
    pub clock: Option<u64>,
}

impl Checkpoint {
    /// Blocks of map that follow the header.
    pub fn map_blocks(&self) -> u32 {
        map_blocks(self.lbas)
    }

    /// Blocks of zone ages that follow the map.
    pub fn age_blocks(&self) -> u32 {
        if self.clock.is_some() {
            age_blocks(self.zones)
        } else {
            0
        }
    }
}

/// Blocks of ages for `zones` zones.
pub fn age_blocks(zones: u32) -> u32 {
    zones.div_ceil(AGES_PER_BLOCK as u32)
}

/// Blocks of map for `lbas` logical blocks.
pub fn map_blocks(lbas: u32) -> u32 {
    lbas.div_ceil(MAP_PER_BLOCK as u32)
}

fn header(b: &mut [u8], kind: u32, seq: u64, count: u32, extra: u32) {
    b.fill(0);
    b[..8].copy_from_slice(&MAGIC);
    put32(b, 8, kind);
    put32(b, 12, VERSION);
    put64(b, 16, seq);
    put32(b, 24, count);
    put32(b, 28, extra);
}

fn seal(b: &mut [u8]) {
    let crc = crc32c(&b[..CRC_OFFSET]);
    put32(b, CRC_OFFSET, crc);
}

/// Whether `b` is an intact block of `kind`: returns its sequence number and version.
fn check(b: &[u8], kind: u32) -> Option<(u64, u32)> {
    let version = get32(b.get(..16)?, 12);
    if b.len() != BLOCK
        || b[..8] != MAGIC
        || get32(b, 8) != kind
        || !(VERSION_NO_AGES..=VERSION).contains(&version)
        || get32(b, CRC_OFFSET) != crc32c(&b[..CRC_OFFSET])
    {
        return None;
    }
    Some((get64(b, 16), version))
}

/// Writes the header block of checkpoint `c` into `b` (one block).
pub fn encode_checkpoint(b: &mut [u8], c: &Checkpoint) {
    header(
        b,
        KIND_CHECKPOINT,
        c.seq,
        c.lbas,
        c.map_blocks() + c.age_blocks(),
    );
    put64(b, 32, c.zone_sectors);
    put32(b, 40, c.zones);
    put32(b, 44, c.map_crc);
    match c.clock {
        Some(clock) => put64(b, 48, clock),
        None => put32(b, 12, VERSION_NO_AGES),
    }
    seal(b);
}

/// Reads a checkpoint header block; `None` if it is not an intact one.
pub fn decode_checkpoint(b: &[u8]) -> Option<Checkpoint> {
    let (seq, version) = check(b, KIND_CHECKPOINT)?;
    let c = Checkpoint {
        seq,
        lbas: get32(b, 24),
        zone_sectors: get64(b, 32),
        zones: get32(b, 40),
        map_crc: get32(b, 44),
        clock: (version >= 2).then(|| get64(b, 48)),
    };
    (u64::from(get32(b, 28)) == u64::from(c.map_blocks()) + u64::from(c.age_blocks())).then_some(c)
}

/// Writes age block `index` of the ages of `zones` zones into `b` (past the last zone: 0).
pub fn encode_age_block(b: &mut [u8], age: impl Fn(usize) -> u64, zones: usize, index: usize) {
    for i in 0..AGES_PER_BLOCK {
        let zone = index * AGES_PER_BLOCK + i;
        put64(b, i * 8, if zone < zones { age(zone) } else { 0 });
    }
}

/// Calls `set(zone, age)` for the ages in age block `index` (of `zones` zones).
pub fn decode_age_block(b: &[u8], zones: usize, index: usize, mut set: impl FnMut(usize, u64)) {
    for i in 0..AGES_PER_BLOCK {
        let zone = index * AGES_PER_BLOCK + i;
        if zone >= zones {
            break;
        }
        set(zone, get64(b, i * 8));
    }
}

/// Writes map block `index` of `map` into `b` (entries past the map's end are [`UNMAPPED`]).
pub fn encode_map_block(b: &mut [u8], map: impl Fn(usize) -> u32, lbas: usize, index: usize) {
    for i in 0..MAP_PER_BLOCK {
        let lba = index * MAP_PER_BLOCK + i;
        let v = if lba < lbas { map(lba) } else { UNMAPPED };
        put32(b, i * 4, v);
    }
}

/// Calls `set(lba, pba)` for the entries of map block `index` (of a map of `lbas` entries).
pub fn decode_map_block(b: &[u8], lbas: usize, index: usize, mut set: impl FnMut(usize, u32)) {
    for i in 0..MAP_PER_BLOCK {
        let lba = index * MAP_PER_BLOCK + i;
        if lba >= lbas {
            break;
        }
        set(lba, get32(b, i * 4));
    }
}

/// Writes log block `seq` holding `entries` (at most [`LOG_PER_BLOCK`], as `lba, pba` pairs
/// flattened) into `b`.
pub fn encode_log(b: &mut [u8], seq: u64, entries: &[u32]) {
    let n = (entries.len() / 2).min(LOG_PER_BLOCK);
    header(b, KIND_LOG, seq, n as u32, 0);
    for i in 0..n {
        put32(b, HEADER + i * 8, entries[2 * i]);
        put32(b, HEADER + i * 8 + 4, entries[2 * i + 1]);
    }
    seal(b);
}

/// Reads log block `b` if it is intact and numbered `seq`: calls `apply(lba, pba)` for each of
/// its entries in order and returns true.
pub fn decode_log(b: &[u8], seq: u64, mut apply: impl FnMut(u32, u32)) -> bool {
    if check(b, KIND_LOG).map(|(s, _)| s) != Some(seq) {
        return false;
    }
    let n = get32(b, 24) as usize;
    if n > LOG_PER_BLOCK {
        return false;
    }
    for i in 0..n {
        apply(get32(b, HEADER + i * 8), get32(b, HEADER + i * 8 + 4));
    }
    true
}

const _: () = assert!(HEADER + LOG_PER_BLOCK * 8 <= CRC_OFFSET);
const _: () = assert!(LOG_PER_BLOCK == 507);
