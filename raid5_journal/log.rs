// SPDX-License-Identifier: GPL-2.0

//! The journal device's I/O: its superblock, the replay of its log onto the members when a
//! table is loaded, and the transactions the engine commits before the members see a row.
//! The format and the replay's rules are `journal.rs`'s.

use crate::journal::{self, Entry, JournalSuper, LogPosition, Mode, Replayer, Ring, Txn, BLOCK};
use crate::layout::Layout;
use crate::parity::MemberSet;
use kernel::{
    block::bio::{Bdev, BioSet, IoBatch, IoBuffer},
    crc::crc32c,
    device_mapper::DmDev,
    prelude::*,
};

/// Transactions of one window at most: a window's rows hold 256 pages at most, a transaction
/// `MAX_ENTRIES` (251).
pub(crate) const MAX_TXNS: usize = 2;

/// The standard CRC-32C of a block, as `journal.rs` records it.
pub(crate) fn block_crc(data: &[u8]) -> u32 {
    !crc32c(!0, data)
}

/// The journal as the engine keeps it.
pub(crate) struct Log {
    /// As last written.
    pub(crate) sb: JournalSuper,
    pub(crate) ring: Ring,
    /// A metadata block for each transaction of a window, and the superblock's.
    pub(crate) metas: KVec<IoBuffer>,
    sb_buf: IoBuffer,
    /// A transaction's entries while it is built.
    pub(crate) entries: KVec<Entry>,
}

impl Log {
    /// The journal of superblock `sb`, empty from its checkpoint on.
    pub(crate) fn new(sb: JournalSuper) -> Result<Self> {
        let mut metas = KVec::with_capacity(MAX_TXNS, GFP_KERNEL)?;
        for _ in 0..MAX_TXNS {
            metas.push(IoBuffer::new(GFP_KERNEL)?, GFP_KERNEL)?;
        }
        Ok(Self {
            ring: Ring::empty_at(sb.log_blocks, sb.checkpoint),
            sb,
            metas,
            sb_buf: IoBuffer::new(GFP_KERNEL)?,
            entries: KVec::with_capacity(journal::MAX_ENTRIES, GFP_KERNEL)?,
        })
    }

    /// Writes the superblock with the ring's tail as its checkpoint and `mode`, one generation
    /// newer, to the copy that is not the newest (stable when this returns).
    pub(crate) fn write_super(&mut self, set: &BioSet, dev: &Bdev, mode: Mode) -> Result {
        let mut sb = self.sb;
        sb.generation += 1;
        sb.checkpoint = self.ring.tail;
        sb.mode = mode;
        write_super(set, dev, &sb, &mut self.sb_buf)?;
        self.sb = sb;
        Ok(())
    }
}

fn block_of(buf: &IoBuffer) -> Result<&[u8; BLOCK]> {
    buf.get(..BLOCK)
        .and_then(|b| b.try_into().ok())
        .ok_or(EINVAL)
}

/// The first block of `buf`, as the format's functions take it.
pub(crate) fn block_of_mut(buf: &mut IoBuffer) -> Result<&mut [u8; BLOCK]> {
    buf.get_mut(..BLOCK)
        .and_then(|b| b.try_into().ok())
        .ok_or(EINVAL)
}

/// Writes `sb` to its copy, FUA.
fn write_super(set: &BioSet, dev: &Bdev, sb: &JournalSuper, buf: &mut IoBuffer) -> Result {
    sb.encode(block_of_mut(buf)?);
    let buf = &*buf;
    let (submitted, outcome) =
        IoBatch::run(set, |batch| batch.write(dev, sb.sector(), buf, true, 0))?;
    submitted.and(outcome.result)
}

/// Reads both superblock copies: `Ok(None)` for a blank journal.
pub(crate) fn read_super(
    set: &BioSet,
    dev: &Bdev,
) -> Result<Result<Option<JournalSuper>, journal::JournalError>> {
    let mut bufs = [IoBuffer::new(GFP_KERNEL)?, IoBuffer::new(GFP_KERNEL)?];
    let (submitted, outcome) = IoBatch::run(set, |batch| -> Result {
        for (copy, buf) in (0u64..).zip(bufs.iter_mut()) {
            batch.read(dev, copy * journal::BLOCK_SECTORS, buf, 0)?;
        }
        Ok(())
    })?;
    submitted.and(outcome.result)?;
    let copies = [
        JournalSuper::decode(block_of(&bufs[0])?),
        JournalSuper::decode(block_of(&bufs[1])?),
    ];
    Ok(JournalSuper::choose(copies, dev.sectors()))
}

/// Formats a blank journal for array `uuid`: its first superblock copy.
pub(crate) fn format(
    set: &BioSet,
    dev: &Bdev,
    uuid: [u8; 16],
    mode: Mode,
) -> Result<Result<JournalSuper, journal::JournalError>> {
    let sb = match JournalSuper::new(uuid, mode, dev.sectors()) {
        Ok(sb) => sb,
        Err(e) => return Ok(Err(e)),
    };
    let mut buf = IoBuffer::new(GFP_KERNEL)?;
    write_super(set, dev, &sb, &mut buf)?;
    Ok(Ok(sb))
}

/// Replays the log onto the members (see [`journal::replay`]).
struct MemberReplay<'a> {
    set: &'a BioSet,
    journal: &'a Bdev,
    members: &'a [Option<DmDev>],
    /// The members written: the others are failed or missing.
    alive: MemberSet,
    layout: &'a Layout,
    log_blocks: u64,
    /// A metadata block as read.
    meta: [IoBuffer; 1],
    payload: KVec<IoBuffer>,
}

/// Reads ring blocks from `index` on into `bufs` (a block each), in one or two runs (the ring of
/// `log_blocks` wraps).
fn read_run(
    set: &BioSet,
    dev: &Bdev,
    log_blocks: u64,
    index: u64,
    bufs: &mut [IoBuffer],
) -> Result {
    let before_end = (log_blocks.saturating_sub(index) as usize).min(bufs.len());
    let (head, tail) = bufs.split_at_mut(before_end);
    let (submitted, outcome) = IoBatch::run(set, |batch| -> Result {
        batch.read_scatter(dev, journal::log_sector(index), head.iter_mut(), 0)?;
        if !tail.is_empty() {
            batch.read_scatter(dev, journal::log_sector(0), tail.iter_mut(), 0)?;
        }
        Ok(())
    })?;
    submitted.and(outcome.result)
}

impl Replayer for MemberReplay<'_> {
    type Error = Error;

    fn read_meta(&mut self, index: u64, meta: &mut [u8; BLOCK]) -> Result {
        read_run(
            self.set,
            self.journal,
            self.log_blocks,
            index,
            &mut self.meta,
        )?;
        meta.copy_from_slice(block_of(&self.meta[0])?);
        Ok(())
    }

    fn read_payload(&mut self, txn: &Txn, meta: &[u8; BLOCK]) -> Result<bool> {
        let bufs = self.payload.get_mut(..txn.entries).ok_or(EINVAL)?;
        let at = journal::payload_index(txn.at.index, 0, self.log_blocks);
        read_run(self.set, self.journal, self.log_blocks, at, bufs)?;
        Ok(bufs
            .iter()
            .enumerate()
            .all(|(i, buf)| block_crc(buf) == journal::entry(meta, i).crc))
    }

    fn apply(&mut self, txn: &Txn, meta: &[u8; BLOCK]) -> Result {
        let n = self.layout.members();
        let first = self.layout.data_offset();
        let end = self.layout.member_device_sectors();
        for i in 0..txn.entries {
            let e = journal::entry(meta, i);
            if u32::from(e.member) >= n
                || e.sector < first
                || e.sector + journal::BLOCK_SECTORS > end
                || e.sector % journal::BLOCK_SECTORS != 0
            {
                pr_err!(
                    "rust44-raid5: journal transaction {} names member {} sector {}, outside the array\n",
                    txn.at.seq,
                    e.member,
                    e.sector
                );
                return Err(EINVAL);
            }
        }
        let (submitted, outcome) = IoBatch::run(self.set, |batch| -> Result {
            for (i, buf) in self.payload.iter().take(txn.entries).enumerate() {
                let e = journal::entry(meta, i);
                let m = u32::from(e.member);
                if !self.alive.contains(m) {
                    continue;
                }
                let dev = self
                    .members
                    .get(m as usize)
                    .and_then(Option::as_ref)
                    .ok_or(EINVAL)?;
                batch.write(dev.bdev(), e.sector, buf, false, m)?;
            }
            Ok(())
        })?;
        submitted.and(outcome.result)
    }
}

/// Replays `sb`'s log onto the `alive` members and moves the checkpoint past what it replayed
/// (recording `mode`): the journal from there on, and the number of transactions replayed.
pub(crate) fn recover(
    set: &BioSet,
    dev: &Bdev,
    sb: JournalSuper,
    members: &[Option<DmDev>],
    alive: MemberSet,
    layout: &Layout,
    mode: Mode,
) -> Result<(Log, u64)> {
    let done = replay(set, dev, &sb, members, alive, layout)?;
    if done.transactions > 0 {
        pr_info!(
            "rust44-raid5: journal replayed: {} transactions written to the members\n",
            done.transactions
        );
    }
    let mut log = Log::new(JournalSuper {
        checkpoint: done.next,
        ..sb
    })?;
    log.write_super(set, dev, mode)?;
    Ok((log, done.transactions))
}

/// What a replay did.
struct Replayed {
    /// Transactions written to the members.
    transactions: u64,
    /// Where the next transaction goes.
    next: LogPosition,
}

/// Replays `sb`'s log onto the `alive` members and makes it stable (the members flushed); the
/// caller then moves the checkpoint to `next`.
fn replay(
    set: &BioSet,
    journal_dev: &Bdev,
    sb: &JournalSuper,
    members: &[Option<DmDev>],
    alive: MemberSet,
    layout: &Layout,
) -> Result<Replayed> {
    let mut payload = KVec::with_capacity(journal::MAX_ENTRIES, GFP_KERNEL)?;
    for _ in 0..journal::MAX_ENTRIES {
        payload.push(IoBuffer::new(GFP_KERNEL)?, GFP_KERNEL)?;
    }
    let mut io = MemberReplay {
        set,
        journal: journal_dev,
        members,
        alive,
        layout,
        log_blocks: sb.log_blocks,
        meta: [IoBuffer::new(GFP_KERNEL)?],
        payload,
    };
    let mut meta = KBox::new([0u8; BLOCK], GFP_KERNEL)?;
    let (transactions, next) = journal::replay(sb, &mut meta, &mut io)?;
    if transactions > 0 {
        for (m, dev) in (0u32..).zip(members.iter()) {
            if let Some(dev) = dev.as_ref().filter(|_| alive.contains(m)) {
                dev.bdev().flush()?;
            }
        }
    }
    Ok(Replayed { transactions, next })
}
