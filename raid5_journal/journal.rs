// SPDX-License-Identifier: GPL-2.0

//! The on-disk format of rust44-raid5's journal and the rules of its log: what is written,
//! where, and what a replay after a crash may trust. Only `core`: the kernel module and the
//! host tests (`raid5_journal/host`) build this same file.
//!
//! The journal device is cut in 4 KiB blocks. Blocks 0 and 1 hold two copies of the
//! [`JournalSuper`], written in turn (the copy with the higher generation and a good CRC is the
//! truth, so a torn superblock write loses nothing); blocks 2.. are the log, a ring of
//! `log_blocks` blocks addressed by their index in the ring.
//!
//! The log is a sequence of transactions. A transaction is a metadata block followed by its
//! payload blocks (wrapping at the end of the ring): the new contents of whole rows of the
//! array, data and parity, each to be written to one member at one sector. Members are written
//! only once the transaction is stable on the journal, so after a crash every row is either as
//! the members hold it, or complete in the journal: replaying the journal can never leave a
//! row's parity disagreeing with its data, which is the write hole.
//!
//! Superblock, little-endian, one block:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"r44jsupr"` |
//! | 8 | 4 | version (1) |
//! | 12 | 4 | flags (bit 0: write-back mode) |
//! | 16 | 16 | the array's UUID |
//! | 32 | 8 | generation (incremented on every write; copy `generation % 2` is written) |
//! | 40 | 8 | log blocks (ring size) |
//! | 48 | 8 | checkpoint: ring index of the first transaction to replay |
//! | 56 | 8 | checkpoint: that transaction's sequence number |
//! | 64 | .. | zero |
//! | 4092 | 4 | CRC-32C of bytes `0..4092` |
//!
//! Transaction metadata block:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"r44jtxn1"` |
//! | 8 | 4 | version (1) |
//! | 12 | 4 | payload blocks (entries), 1 to [`MAX_ENTRIES`] |
//! | 16 | 16 | the array's UUID |
//! | 32 | 8 | sequence number (one more than the previous transaction's) |
//! | 40 | 8 | ring index of this block |
//! | 48 | 16 | zero |
//! | 64 | 16 each | entries: member device sector (8), member (2), flags (2, bit 0: parity), CRC-32C of the payload block (4) |
//! | 4092 | 4 | CRC-32C of bytes `0..4092` |
//!
//! A transaction is complete when its metadata block decodes (magic, version, UUID, the
//! expected sequence number and position, CRC) and every payload block matches its entry's
//! CRC: the metadata's CRC covers the payload's CRCs, so it covers the whole transaction. The
//! replay takes complete transactions from the checkpoint on, in sequence, and stops at the
//! first one that is not: a torn one, or an older one left from an earlier lap of the ring.

use crate::superblock::crc32c;
use core::ffi::CStr;

/// Bytes of a journal block.
pub const BLOCK: usize = 4096;
/// Sectors of a journal block.
pub const BLOCK_SECTORS: u64 = (BLOCK / 512) as u64;
/// Blocks before the log: the two superblock copies.
pub const SUPER_BLOCKS: u64 = 2;
/// Magic of a superblock copy.
pub const SUPER_MAGIC: [u8; 8] = *b"r44jsupr";
/// Magic of a transaction's metadata block.
pub const TXN_MAGIC: [u8; 8] = *b"r44jtxn1";
/// The format version written and understood.
pub const VERSION: u32 = 1;
/// Superblock flag: write-back mode.
pub const FLAG_WRITEBACK: u32 = 1;
/// Entry flag: the payload is a row's parity.
pub const ENTRY_PARITY: u16 = 1;
/// Entries start here in a metadata block.
const ENTRIES_OFFSET: usize = 64;
/// Bytes of an entry.
const ENTRY_SIZE: usize = 16;
const CRC_OFFSET: usize = BLOCK - 4;
/// Payload blocks of one transaction at most.
pub const MAX_ENTRIES: usize = (CRC_OFFSET - ENTRIES_OFFSET) / ENTRY_SIZE;
/// The smallest log: room for the largest transaction twice over, so that one is always
/// written while the members catch up with another.
pub const MIN_LOG_BLOCKS: u64 = 4 * (1 + MAX_ENTRIES as u64);

/// When writes are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Once the members hold them (and the journal did before).
    WriteThrough,
    /// Once the journal holds them; the members are written after.
    WriteBack,
}

impl Mode {
    /// The table's and the status's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WriteThrough => "writethrough",
            Self::WriteBack => "writeback",
        }
    }

    /// The mode a word names.
    pub fn parse(word: &[u8]) -> Option<Self> {
        match word {
            b"writethrough" => Some(Self::WriteThrough),
            b"writeback" => Some(Self::WriteBack),
            _ => None,
        }
    }
}

/// Why a journal device cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalError {
    /// Neither superblock copy is intact, and they are not blank.
    BadSuperblock,
    /// A version this code does not know.
    UnknownVersion,
    /// The journal belongs to another array.
    Foreign,
    /// The device is too small for a log of [`MIN_LOG_BLOCKS`].
    TooSmall,
    /// The recorded ring does not fit the device, or the checkpoint lies outside it.
    BadGeometry,
}

impl JournalError {
    /// A message suitable for the device-mapper error string.
    pub fn message(&self) -> &'static CStr {
        match self {
            Self::BadSuperblock => c"journal superblock damaged",
            Self::UnknownVersion => c"journal format version unknown",
            Self::Foreign => c"journal belongs to another array",
            Self::TooSmall => c"journal device too small (at least 4 MiB)",
            Self::BadGeometry => c"journal superblock geometry does not fit the device",
        }
    }
}

fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    if let Some(b) = buf.get_mut(at..at + 2) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    if let Some(b) = buf.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    if let Some(b) = buf.get_mut(at..at + 8) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

fn get_u16(buf: &[u8], at: usize) -> u16 {
    let mut b = [0u8; 2];
    if let Some(s) = buf.get(at..at + 2) {
        b.copy_from_slice(s);
    }
    u16::from_le_bytes(b)
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = buf.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

fn seal(buf: &mut [u8; BLOCK]) {
    let crc = crc32c(&buf[..CRC_OFFSET]);
    put_u32(buf, CRC_OFFSET, crc);
}

fn sealed(buf: &[u8; BLOCK]) -> bool {
    crc32c(&buf[..CRC_OFFSET]) == get_u32(buf, CRC_OFFSET)
}

/// A journal superblock (one copy), decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalSuper {
    /// The array the journal belongs to.
    pub uuid: [u8; 16],
    /// The mode the array last ran in.
    pub mode: Mode,
    /// Incremented on every write; the higher of the two copies is the truth.
    pub generation: u64,
    /// Blocks in the ring.
    pub log_blocks: u64,
    /// Where the replay starts: the members hold everything logged before.
    pub checkpoint: LogPosition,
}

/// A place in the log: a ring index and the sequence number of the transaction there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPosition {
    /// Ring index of a metadata block.
    pub index: u64,
    /// Its transaction's sequence number.
    pub seq: u64,
}

/// Log blocks of a journal device of `device_sectors` sectors.
pub fn log_blocks_of(device_sectors: u64) -> Result<u64, JournalError> {
    let blocks = (device_sectors / BLOCK_SECTORS)
        .checked_sub(SUPER_BLOCKS)
        .ok_or(JournalError::TooSmall)?;
    if blocks < MIN_LOG_BLOCKS {
        return Err(JournalError::TooSmall);
    }
    Ok(blocks)
}

/// The device sector of ring index `index`.
pub fn log_sector(index: u64) -> u64 {
    (SUPER_BLOCKS + index) * BLOCK_SECTORS
}

impl JournalSuper {
    /// A fresh journal for array `uuid` on a device of `device_sectors` sectors.
    pub fn new(uuid: [u8; 16], mode: Mode, device_sectors: u64) -> Result<Self, JournalError> {
        Ok(Self {
            uuid,
            mode,
            generation: 0,
            log_blocks: log_blocks_of(device_sectors)?,
            checkpoint: LogPosition { index: 0, seq: 1 },
        })
    }

    /// The device sector of the copy this superblock is written to.
    pub fn sector(&self) -> u64 {
        (self.generation % SUPER_BLOCKS) * BLOCK_SECTORS
    }

    /// Encodes into `buf`, CRC included.
    pub fn encode(&self, buf: &mut [u8; BLOCK]) {
        buf.fill(0);
        buf[0..8].copy_from_slice(&SUPER_MAGIC);
        put_u32(buf, 8, VERSION);
        let flags = match self.mode {
            Mode::WriteThrough => 0,
            Mode::WriteBack => FLAG_WRITEBACK,
        };
        put_u32(buf, 12, flags);
        buf[16..32].copy_from_slice(&self.uuid);
        put_u64(buf, 32, self.generation);
        put_u64(buf, 40, self.log_blocks);
        put_u64(buf, 48, self.checkpoint.index);
        put_u64(buf, 56, self.checkpoint.seq);
        seal(buf);
    }

    /// Decodes one copy: `Ok(None)` when it is blank (all zero).
    pub fn decode(buf: &[u8; BLOCK]) -> Result<Option<Self>, JournalError> {
        if buf.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        if buf[0..8] != SUPER_MAGIC || !sealed(buf) {
            return Err(JournalError::BadSuperblock);
        }
        if get_u32(buf, 8) != VERSION {
            return Err(JournalError::UnknownVersion);
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&buf[16..32]);
        Ok(Some(Self {
            uuid,
            mode: if get_u32(buf, 12) & FLAG_WRITEBACK != 0 {
                Mode::WriteBack
            } else {
                Mode::WriteThrough
            },
            generation: get_u64(buf, 32),
            log_blocks: get_u64(buf, 40),
            checkpoint: LogPosition {
                index: get_u64(buf, 48),
                seq: get_u64(buf, 56),
            },
        }))
    }

    /// The journal two copies make, on a device of `device_sectors` sectors: `Ok(None)` when
    /// both are blank (a new journal), the newer intact one otherwise (a write torn while
    /// updating one copy leaves the other).
    pub fn choose(
        copies: [Result<Option<Self>, JournalError>; 2],
        device_sectors: u64,
    ) -> Result<Option<Self>, JournalError> {
        let [a, b] = copies;
        let best = match (a, b) {
            (Ok(None), Ok(None)) => return Ok(None),
            (Ok(Some(a)), Ok(Some(b))) => {
                if a.uuid != b.uuid {
                    return Err(JournalError::BadSuperblock);
                }
                if a.generation >= b.generation {
                    a
                } else {
                    b
                }
            }
            (Ok(Some(s)), _) | (_, Ok(Some(s))) => s,
            (Err(JournalError::UnknownVersion), _) | (_, Err(JournalError::UnknownVersion)) => {
                return Err(JournalError::UnknownVersion)
            }
            _ => return Err(JournalError::BadSuperblock),
        };
        let fits = log_blocks_of(device_sectors).is_ok_and(|max| best.log_blocks <= max)
            && best.log_blocks >= MIN_LOG_BLOCKS
            && best.checkpoint.index < best.log_blocks;
        if !fits {
            return Err(JournalError::BadGeometry);
        }
        Ok(Some(best))
    }
}

/// One payload block of a transaction: its contents go to `member` at `sector`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The member device sector (a row's, page aligned).
    pub sector: u64,
    /// The member's slot.
    pub member: u16,
    /// [`ENTRY_PARITY`] for a row's parity, 0 for data.
    pub flags: u16,
    /// CRC-32C of the payload block.
    pub crc: u32,
}

/// Why a replay stops at a metadata block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnEnd {
    /// Not a metadata block (or torn: its CRC does not match).
    NotMetadata,
    /// A metadata block of another array.
    Foreign,
    /// Another sequence number or position than expected: left from an earlier lap.
    Stale,
    /// A payload count that cannot be.
    BadCount,
    /// A payload block does not match its entry: the transaction was torn.
    Torn,
}

/// A transaction's metadata, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Txn {
    /// Where it is and its sequence number.
    pub at: LogPosition,
    /// Payload blocks.
    pub entries: usize,
}

impl Txn {
    /// Blocks it takes in the ring.
    pub fn blocks(&self) -> u64 {
        1 + self.entries as u64
    }

    /// Where the next transaction goes in a ring of `log_blocks`.
    pub fn next(&self, log_blocks: u64) -> LogPosition {
        LogPosition {
            index: (self.at.index + self.blocks()) % log_blocks.max(1),
            seq: self.at.seq.wrapping_add(1),
        }
    }
}

/// Ring index of payload block `i` of the transaction at `at` in a ring of `log_blocks`.
pub fn payload_index(at: u64, i: usize, log_blocks: u64) -> u64 {
    (at + 1 + i as u64) % log_blocks.max(1)
}

/// Encodes a transaction's metadata block for array `uuid` at `at`, with `entries` (1 to
/// [`MAX_ENTRIES`]; `None` when out of bounds).
pub fn encode_txn(
    buf: &mut [u8; BLOCK],
    uuid: &[u8; 16],
    at: LogPosition,
    entries: &[Entry],
) -> Option<()> {
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return None;
    }
    buf.fill(0);
    buf[0..8].copy_from_slice(&TXN_MAGIC);
    put_u32(buf, 8, VERSION);
    put_u32(buf, 12, entries.len() as u32);
    buf[16..32].copy_from_slice(uuid);
    put_u64(buf, 32, at.seq);
    put_u64(buf, 40, at.index);
    for (i, e) in entries.iter().enumerate() {
        put_entry(buf, i, e);
    }
    seal(buf);
    Some(())
}

/// Writes entry `i` into a metadata block being built (before it is sealed).
fn put_entry(buf: &mut [u8; BLOCK], i: usize, e: &Entry) {
    let at = ENTRIES_OFFSET + i * ENTRY_SIZE;
    put_u64(buf, at, e.sector);
    put_u16(buf, at + 8, e.member);
    put_u16(buf, at + 10, e.flags);
    put_u32(buf, at + 12, e.crc);
}

/// Decodes the metadata block expected at `at` of array `uuid` in a ring of `log_blocks`.
pub fn decode_txn(
    buf: &[u8; BLOCK],
    uuid: &[u8; 16],
    at: LogPosition,
    log_blocks: u64,
) -> Result<Txn, TxnEnd> {
    if buf[0..8] != TXN_MAGIC || get_u32(buf, 8) != VERSION || !sealed(buf) {
        return Err(TxnEnd::NotMetadata);
    }
    if buf[16..32] != uuid[..] {
        return Err(TxnEnd::Foreign);
    }
    if get_u64(buf, 32) != at.seq || get_u64(buf, 40) != at.index {
        return Err(TxnEnd::Stale);
    }
    let entries = get_u32(buf, 12) as usize;
    if entries == 0 || entries > MAX_ENTRIES || 1 + entries as u64 > log_blocks {
        return Err(TxnEnd::BadCount);
    }
    Ok(Txn { at, entries })
}

/// Entry `i` of a decoded metadata block.
pub fn entry(buf: &[u8; BLOCK], i: usize) -> Entry {
    let at = ENTRIES_OFFSET + i * ENTRY_SIZE;
    Entry {
        sector: get_u64(buf, at),
        member: get_u16(buf, at + 8),
        flags: get_u16(buf, at + 10),
        crc: get_u32(buf, at + 12),
    }
}

/// The writer's view of the ring: where the checkpoint (the oldest transaction the members may
/// still need) and the head (where the next transaction goes) are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    /// Blocks in the ring.
    pub log_blocks: u64,
    /// The oldest transaction kept.
    pub tail: LogPosition,
    /// Where the next transaction goes.
    pub head: LogPosition,
    /// Blocks from tail to head.
    pub used: u64,
}

impl Ring {
    /// An empty ring whose next transaction goes to `at`.
    pub fn empty_at(log_blocks: u64, at: LogPosition) -> Self {
        Self {
            log_blocks,
            tail: at,
            head: at,
            used: 0,
        }
    }

    /// Blocks free.
    pub fn free(&self) -> u64 {
        self.log_blocks.saturating_sub(self.used)
    }

    /// Takes room for a transaction of `entries` payload blocks at the head: its place, or
    /// `None` when the ring lacks the room (the members must catch up: a checkpoint).
    pub fn append(&mut self, entries: usize) -> Option<LogPosition> {
        let blocks = 1 + entries as u64;
        if entries == 0 || entries > MAX_ENTRIES || blocks > self.free() {
            return None;
        }
        let at = self.head;
        self.head = Txn { at, entries }.next(self.log_blocks);
        self.used += blocks;
        Some(at)
    }

    /// Forgets everything logged so far (the members hold it, stably): the tail moves to the
    /// head.
    pub fn checkpoint(&mut self) {
        self.tail = self.head;
        self.used = 0;
    }

    /// Fill in per cent.
    pub fn fill_percent(&self) -> u64 {
        self.used * 100 / self.log_blocks.max(1)
    }
}

/// What [`replay`] needs from its caller: the journal's and the members' I/O.
pub trait Replayer {
    /// What the I/O fails with.
    type Error;
    /// Reads ring block `index` into `meta`.
    fn read_meta(&mut self, index: u64, meta: &mut [u8; BLOCK]) -> Result<(), Self::Error>;
    /// Reads the payload of `txn` (its entries are in `meta`); returns whether every payload
    /// block's CRC-32C is its entry's.
    fn read_payload(&mut self, txn: &Txn, meta: &[u8; BLOCK]) -> Result<bool, Self::Error>;
    /// Writes the payload read last to the members.
    fn apply(&mut self, txn: &Txn, meta: &[u8; BLOCK]) -> Result<(), Self::Error>;
}

/// Replays the log of `sb` from its checkpoint: every complete transaction, in order, until
/// the first incomplete one (or a whole lap). Returns the number applied and where the next
/// transaction goes.
pub fn replay<R: Replayer>(
    sb: &JournalSuper,
    meta: &mut [u8; BLOCK],
    io: &mut R,
) -> Result<(u64, LogPosition), R::Error> {
    let mut at = sb.checkpoint;
    let mut applied = 0;
    let mut scanned = 0u64;
    loop {
        io.read_meta(at.index, meta)?;
        let Ok(txn) = decode_txn(meta, &sb.uuid, at, sb.log_blocks) else {
            break;
        };
        if scanned + txn.blocks() > sb.log_blocks || !io.read_payload(&txn, meta)? {
            break;
        }
        io.apply(&txn, meta)?;
        applied += 1;
        scanned += txn.blocks();
        at = txn.next(sb.log_blocks);
    }
    Ok((applied, at))
}
