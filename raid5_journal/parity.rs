// SPDX-License-Identifier: GPL-2.0

//! RAID5 parity: a portable XOR (the host tests' reference; the kernel module uses
//! `xor_gen()`), the rebuild of a lost block, and the write planner that decides what a stripe
//! write must read first. Only `core`: the kernel module and the host tests
//! (`raid5_journal/host`) build this same file.
//!
//! The planner works on one *row*: the same range of sectors (a page, a chunk, any run) on every
//! member of one stripe. A write covers some data blocks of the row fully (*overwrite*) and some
//! partly. Like md's `handle_stripe_dirtying`, it counts the blocks each strategy must read:
//!
//! - read-modify-write (rmw): the old contents of every written block and the old parity;
//!   new parity = old parity ^ old data ^ new data,
//! - reconstruct-write (rcw): every data block not fully overwritten; new parity = XOR of all
//!   the new data,
//!
//! and picks the one with fewer reads; on a tie it picks rcw, as md does with its default
//! `rmw_level` (`PARITY_ENABLE_RMW`: rmw only when strictly cheaper). When rcw needs no read the
//! write is a full-stripe write. With a failed member, the plans that would need to read it are
//! out (md counts such a read as `2 * disks`, which rules the plan out whenever another exists).

use crate::layout::{Layout, MAX_MEMBERS};

/// Why blocks cannot be combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XorError {
    /// The blocks are not all the same length.
    LengthMismatch,
}

/// `dst ^= src`, byte by byte. Both must be the same length.
pub fn xor_into(dst: &mut [u8], src: &[u8]) -> Result<(), XorError> {
    if dst.len() != src.len() {
        return Err(XorError::LengthMismatch);
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= *s;
    }
    Ok(())
}

/// `dst` = XOR of `sources` (all zeroes for none). All must be the length of `dst`.
///
/// The parity of a row is the XOR of its data blocks; a lost block (data or parity) is the XOR
/// of all the others, so this also rebuilds one lost block from the surviving ones.
pub fn xor_of(dst: &mut [u8], sources: &[&[u8]]) -> Result<(), XorError> {
    if sources.iter().any(|s| s.len() != dst.len()) {
        return Err(XorError::LengthMismatch);
    }
    dst.fill(0);
    for s in sources {
        xor_into(dst, s)?;
    }
    Ok(())
}

/// Rebuilds a lost block into `dst` from every other block of its row (the surviving data
/// blocks and the parity, in any order). Same as [`xor_of`]; the name says what it is for.
pub fn reconstruct(dst: &mut [u8], survivors: &[&[u8]]) -> Result<(), XorError> {
    xor_of(dst, survivors)
}

/// A set of members (bit `i` for member `i`), as the planner's inputs and outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberSet(pub u16);

impl MemberSet {
    /// No member.
    pub const EMPTY: Self = Self(0);

    /// Members `0..n` (all of them for `n >= 16`).
    pub fn first(n: u32) -> Self {
        if n >= MAX_MEMBERS {
            Self(u16::MAX)
        } else {
            Self((1u16 << n) - 1)
        }
    }

    /// Only `member` (empty when `member >= 16`).
    pub fn single(member: u32) -> Self {
        Self::EMPTY.with(member)
    }

    /// Whether `member` is in the set.
    pub fn contains(self, member: u32) -> bool {
        member < MAX_MEMBERS && self.0 & (1 << member) != 0
    }

    /// The set with `member` added (unchanged when `member >= 16`).
    pub fn with(self, member: u32) -> Self {
        if member < MAX_MEMBERS {
            Self(self.0 | 1 << member)
        } else {
            self
        }
    }

    /// The set without `member`.
    pub fn without(self, member: u32) -> Self {
        if member < MAX_MEMBERS {
            Self(self.0 & !(1 << member))
        } else {
            self
        }
    }

    /// Members in either set.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Members in both sets.
    pub fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Members of `self` not in `other`.
    pub fn minus(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Number of members.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in increasing order.
    pub fn iter(self) -> MemberIter {
        MemberIter(self.0)
    }
}

/// Iterator over the members of a [`MemberSet`].
#[derive(Clone, Debug)]
pub struct MemberIter(u16);

impl Iterator for MemberIter {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let m = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(m)
    }
}

/// What a write covers of one row: the data members whose block it overwrites entirely and
/// those it writes in part. The two sets are disjoint and never contain the parity member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Data blocks written entirely.
    pub full: MemberSet,
    /// Data blocks written in part.
    pub partial: MemberSet,
}

impl Coverage {
    /// Every data block written, entirely or in part.
    pub fn written(&self) -> MemberSet {
        self.full.union(self.partial)
    }
}

/// How a row is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Every data block is overwritten: parity is the XOR of the new data, nothing is read.
    FullStripe,
    /// Read the old written blocks and the old parity; new parity = old parity ^ old data ^ new
    /// data.
    ReadModifyWrite,
    /// Read the data blocks not overwritten; new parity = XOR of all the (merged) new data.
    ReconstructWrite,
    /// The parity member is the failed one: write the data, compute and write no parity.
    DataOnly,
}

/// The plan for writing one row: what to read first, what to compute, what to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritePlan {
    /// The strategy.
    pub strategy: Strategy,
    /// Members whose old block (over the row) must be read before computing.
    pub read: MemberSet,
    /// A failed data member whose old block must be rebuilt (XOR of everything in `read`)
    /// before merging a partial write into it (degraded rows only).
    pub rebuild: Option<u32>,
    /// Members written: the written data blocks and the parity, less the failed member. A data
    /// member needs only its written sectors written; the parity is written over the row.
    pub write: MemberSet,
    /// The parity member of the row.
    pub parity: u32,
}

impl WritePlan {
    /// Number of blocks read.
    pub fn reads(&self) -> u32 {
        self.read.len()
    }
}

/// Why a row cannot be planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The coverage is empty.
    NothingWritten,
    /// The coverage names the parity member, a member outside the array, or a member in both
    /// sets.
    BadCoverage,
    /// More than one failed member (or a failed member outside the array).
    TooManyFailed,
    /// The row's parity is not known to be consistent (resync pending) and a member has
    /// failed: the failed member's contents cannot be trusted to be recomputable, so writing
    /// would make things up.
    UntrustedParity,
}

/// Plans a write of `coverage` into a row of a stripe whose parity is on member `parity`, in an
/// array of `members` members of which those in `failed` (at most one) cannot be read or
/// written. `parity_trusted` is false where the parity may not match the data (an array not yet
/// resynced past this stripe): then, as md does, only reconstruct-write is used, since it does
/// not depend on the old parity.
pub fn plan_write(
    members: u32,
    parity: u32,
    coverage: Coverage,
    failed: MemberSet,
    parity_trusted: bool,
) -> Result<WritePlan, PlanError> {
    let all = MemberSet::first(members.min(MAX_MEMBERS));
    let written = coverage.written();
    if parity >= members.min(MAX_MEMBERS)
        || !written.minus(all).is_empty()
        || written.contains(parity)
        || !coverage.full.intersection(coverage.partial).is_empty()
    {
        return Err(PlanError::BadCoverage);
    }
    if written.is_empty() {
        return Err(PlanError::NothingWritten);
    }
    if failed.len() > 1 || !failed.minus(all).is_empty() {
        return Err(PlanError::TooManyFailed);
    }
    let data = all.without(parity);
    let write = written.with(parity).minus(failed);

    if failed.contains(parity) {
        // No parity to keep: write the data alone.
        return Ok(WritePlan {
            strategy: Strategy::DataOnly,
            read: MemberSet::EMPTY,
            rebuild: None,
            write,
            parity,
        });
    }

    let rcw_read = data.minus(coverage.full);
    let rmw_read = written.with(parity);
    if rcw_read.is_empty() {
        // Everything overwritten: nothing to read, even degraded (the failed data member's new
        // contents live on in the parity).
        return Ok(WritePlan {
            strategy: Strategy::FullStripe,
            read: MemberSet::EMPTY,
            rebuild: None,
            write,
            parity,
        });
    }
    if !failed.intersection(coverage.partial).is_empty() {
        // A failed block written in part: its old contents are needed whichever way, and only
        // a rebuild from all the others gives them; with everything else read, rcw follows.
        if !parity_trusted {
            return Err(PlanError::UntrustedParity);
        }
        let f = failed.iter().next();
        return Ok(WritePlan {
            strategy: Strategy::ReconstructWrite,
            read: all.minus(failed),
            rebuild: f,
            write,
            parity,
        });
    }
    let rmw_possible = parity_trusted && rmw_read.intersection(failed).is_empty();
    let rcw_possible = rcw_read.intersection(failed).is_empty();
    let use_rmw = match (rmw_possible, rcw_possible) {
        (true, true) => rmw_read.len() < rcw_read.len(),
        (true, false) => true,
        (false, true) => false,
        // A failed unwritten data block (rcw would need it) under untrusted parity (rmw would
        // rely on it).
        (false, false) => return Err(PlanError::UntrustedParity),
    };
    Ok(if use_rmw {
        WritePlan {
            strategy: Strategy::ReadModifyWrite,
            read: rmw_read,
            rebuild: None,
            write,
            parity,
        }
    } else {
        WritePlan {
            strategy: Strategy::ReconstructWrite,
            read: rcw_read,
            rebuild: None,
            write,
            parity,
        }
    })
}

/// The members to read to serve a read of `member`'s block in a row when `member` has failed:
/// every other member (their XOR is the lost block). Empty when `member` is outside the array.
pub fn degraded_read_sources(members: u32, member: u32) -> MemberSet {
    if member >= members {
        return MemberSet::EMPTY;
    }
    MemberSet::first(members.min(MAX_MEMBERS)).without(member)
}

/// A sector range `start..end` within a chunk (offsets from the chunk's first sector).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkRange {
    /// First sector.
    pub start: u32,
    /// One past the last sector (`start == end`: nothing).
    pub end: u32,
}

impl ChunkRange {
    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// What an array write covers of one stripe: for each member, the range of its chunk written
/// (empty for the parity and unwritten members).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StripeWrite {
    /// The stripe.
    pub stripe: u64,
    /// The parity member of the stripe.
    pub parity: u32,
    /// Number of members.
    pub members: u32,
    /// Chunk size in sectors.
    pub chunk_sectors: u32,
    /// Per member, the written range of its chunk.
    pub ranges: [ChunkRange; MAX_MEMBERS as usize],
}

impl StripeWrite {
    /// The part of the array write `start .. start + sectors` that falls into `stripe`; `None`
    /// when the write does not touch `stripe` or leaves the array.
    pub fn new(layout: &Layout, stripe: u64, start: u64, sectors: u64) -> Option<Self> {
        let first = layout.stripe_start(stripe)?;
        let last = first.checked_add(layout.stripe_data_sectors())?;
        let end = start.checked_add(sectors)?;
        let lo = start.max(first);
        let hi = end.min(last);
        if lo >= hi {
            return None;
        }
        let mut w = Self {
            stripe,
            parity: layout.parity_member(stripe),
            members: layout.members(),
            chunk_sectors: layout.chunk_sectors(),
            ranges: [ChunkRange::default(); MAX_MEMBERS as usize],
        };
        for piece in layout.pieces(lo, hi - lo)? {
            let l = piece.location;
            let range = w.ranges.get_mut(l.member as usize)?;
            *range = ChunkRange {
                start: l.chunk_offset,
                end: l.chunk_offset + piece.sectors,
            };
        }
        Some(w)
    }

    /// The smallest row (range of chunk offsets) holding every written sector.
    pub fn span(&self) -> ChunkRange {
        let mut span = ChunkRange {
            start: self.chunk_sectors,
            end: 0,
        };
        for r in self.ranges.iter().filter(|r| !r.is_empty()) {
            span.start = span.start.min(r.start);
            span.end = span.end.max(r.end);
        }
        if span.is_empty() {
            ChunkRange::default()
        } else {
            span
        }
    }

    /// What the write covers of the row `row` (chunk offsets): members whose written range
    /// holds the whole row, and members written in some part of it.
    pub fn coverage(&self, row: ChunkRange) -> Coverage {
        let mut c = Coverage::default();
        if row.is_empty() {
            return c;
        }
        for (m, r) in (0u32..).zip(self.ranges.iter()) {
            let lo = r.start.max(row.start);
            let hi = r.end.min(row.end);
            if lo >= hi {
                continue;
            }
            if lo == row.start && hi == row.end {
                c.full = c.full.with(m);
            } else {
                c.partial = c.partial.with(m);
            }
        }
        c
    }
}
