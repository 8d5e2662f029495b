// SPDX-License-Identifier: GPL-2.0

//! The on-disk superblock of rust44-raid5 (one per member, in the member's first 4 KiB) and the
//! decision taken when a table is loaded: create a new array, assemble an existing one (and
//! which members to use, rebuild or leave out), or refuse. Only `core`: the kernel module and
//! the host tests (`raid5_journal/host`) build this same file.
//!
//! Format, little-endian, `SIZE` bytes at sector 0 of every member:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"r44raid5"` |
//! | 8 | 4 | version (1) |
//! | 12 | 4 | flags (bit 0: clean; bit 1: journalled, every write since the last clean stop is in the journal) |
//! | 16 | 16 | array UUID |
//! | 32 | 4 | members |
//! | 36 | 4 | chunk sectors |
//! | 40 | 8 | data sectors per member |
//! | 48 | 8 | data offset (sectors) |
//! | 56 | 4 | layout (md's algorithm number, 2 = left-symmetric) |
//! | 60 | 4 | this member's index |
//! | 64 | 8 | event counter |
//! | 72 | 8 | resync checkpoint (member data sector; `NONE` = no resync pending) |
//! | 80 | 8 | rebuild checkpoint (member data sector; `NONE` = no rebuild running) |
//! | 88 | 16 | member states, one byte per member slot (see [`MemberState`]) |
//! | 104 | .. | zero |
//! | 4092 | 4 | CRC-32C of bytes `0..4092` |
//!
//! The CRC is the standard CRC-32C (Castagnoli, reflected, initial value and final XOR all ones;
//! `crc32c(b"123456789") == 0xe3069283`); the kernel's `crc32c(~0, p, len) ^ ~0` gives the same.

use crate::layout::{Layout, ALGORITHM_LEFT_SYMMETRIC, MAX_MEMBERS};
use core::ffi::CStr;

/// Bytes of a superblock.
pub const SIZE: usize = 4096;
/// Sectors of a superblock (the smallest possible data offset).
pub const SECTORS: u64 = (SIZE / 512) as u64;
/// Magic at offset 0.
pub const MAGIC: [u8; 8] = *b"r44raid5";
/// The format version written and understood.
pub const VERSION: u32 = 1;
/// A checkpoint that is not set.
pub const NONE: u64 = u64::MAX;
/// Flag bit: the array was stopped cleanly (parity matches data everywhere).
pub const FLAG_CLEAN: u32 = 1;
/// Flag bit: the array has a journal; after a crash its replay, not a resync, restores parity.
pub const FLAG_JOURNAL: u32 = 2;

const CRC_OFFSET: usize = SIZE - 4;

#[path = "../common/crc32c.rs"]
mod crc;
pub use crc::{crc32c, crc32c_update};

/// The state of one member slot, as recorded in the superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// No member (slots past the array's members).
    Absent,
    /// In the array and in sync.
    Active,
    /// Failed: neither read nor written until replaced.
    Failed,
    /// Being rebuilt: in sync below the rebuild checkpoint.
    Rebuilding,
    /// A replacement device not yet being rebuilt.
    Spare,
}

impl MemberState {
    fn to_byte(self) -> u8 {
        match self {
            Self::Absent => 0,
            Self::Active => 1,
            Self::Failed => 2,
            Self::Rebuilding => 3,
            Self::Spare => 4,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Absent,
            1 => Self::Active,
            2 => Self::Failed,
            3 => Self::Rebuilding,
            4 => Self::Spare,
            _ => return None,
        })
    }
}

/// Why a superblock was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuperblockError {
    /// No rust44-raid5 magic: the device is blank (or holds something else).
    BadMagic,
    /// The checksum does not match: the superblock is damaged.
    BadChecksum,
    /// A version this module does not know.
    BadVersion,
    /// The geometry (members, chunk, sizes, layout) is impossible.
    BadGeometry,
    /// The member index is outside the array.
    BadMemberIndex,
    /// A member state is unknown, or set for a slot past the array's members.
    BadState,
}

impl SuperblockError {
    /// A message suitable for the device-mapper error string.
    pub fn message(&self) -> &'static CStr {
        match self {
            Self::BadMagic => c"no superblock",
            Self::BadChecksum => c"superblock checksum mismatch",
            Self::BadVersion => c"unsupported superblock version",
            Self::BadGeometry => c"superblock geometry invalid",
            Self::BadMemberIndex => c"superblock member index invalid",
            Self::BadState => c"superblock member state invalid",
        }
    }
}

/// One member's superblock, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Identity of the array; the same on every member.
    pub uuid: [u8; 16],
    /// The array's geometry.
    pub layout: Layout,
    /// This member's slot.
    pub member_index: u32,
    /// Incremented on every change of array state; the highest one is the truth.
    pub events: u64,
    /// The array was stopped cleanly: parity matches the data everywhere.
    pub clean: bool,
    /// The array has a journal ([`FLAG_JOURNAL`]).
    pub journal: bool,
    /// Parity is known to match the data below this member data sector ([`NONE`]: everywhere,
    /// no resync pending). Only meaningful in a clean superblock, as md's `resync_offset`: after
    /// a crash (not clean) assembly resyncs from 0 whatever it says.
    pub resync_checkpoint: u64,
    /// The rebuilding member is in sync below this member data sector ([`NONE`]: no rebuild).
    pub rebuild_checkpoint: u64,
    /// State of every member slot; slots `members..16` are [`MemberState::Absent`].
    pub states: [MemberState; MAX_MEMBERS as usize],
}

fn put_u32(buf: &mut [u8; SIZE], at: usize, v: u32) {
    if let Some(d) = buf.get_mut(at..at + 4) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u64(buf: &mut [u8; SIZE], at: usize, v: u64) {
    if let Some(d) = buf.get_mut(at..at + 8) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

fn get_u32(buf: &[u8; SIZE], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

fn get_u64(buf: &[u8; SIZE], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = buf.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

const STATES_OFFSET: usize = 88;

impl Superblock {
    /// Writes the superblock, checksum included, over all of `buf`.
    pub fn encode(&self, buf: &mut [u8; SIZE]) {
        buf.fill(0);
        if let Some(d) = buf.get_mut(0..8) {
            d.copy_from_slice(&MAGIC);
        }
        put_u32(buf, 8, VERSION);
        let flags =
            if self.clean { FLAG_CLEAN } else { 0 } | if self.journal { FLAG_JOURNAL } else { 0 };
        put_u32(buf, 12, flags);
        if let Some(d) = buf.get_mut(16..32) {
            d.copy_from_slice(&self.uuid);
        }
        put_u32(buf, 32, self.layout.members());
        put_u32(buf, 36, self.layout.chunk_sectors());
        put_u64(buf, 40, self.layout.member_data_sectors());
        put_u64(buf, 48, self.layout.data_offset());
        put_u32(buf, 56, ALGORITHM_LEFT_SYMMETRIC);
        put_u32(buf, 60, self.member_index);
        put_u64(buf, 64, self.events);
        put_u64(buf, 72, self.resync_checkpoint);
        put_u64(buf, 80, self.rebuild_checkpoint);
        for (b, s) in buf.iter_mut().skip(STATES_OFFSET).zip(self.states) {
            *b = s.to_byte();
        }
        let crc = crc32c(buf.get(..CRC_OFFSET).unwrap_or(&[]));
        put_u32(buf, CRC_OFFSET, crc);
    }

    /// Reads and checks a superblock.
    pub fn decode(buf: &[u8; SIZE]) -> Result<Self, SuperblockError> {
        if buf.get(0..8) != Some(&MAGIC[..]) {
            return Err(SuperblockError::BadMagic);
        }
        if crc32c(buf.get(..CRC_OFFSET).unwrap_or(&[])) != get_u32(buf, CRC_OFFSET) {
            return Err(SuperblockError::BadChecksum);
        }
        if get_u32(buf, 8) != VERSION {
            return Err(SuperblockError::BadVersion);
        }
        let flags = get_u32(buf, 12);
        if flags & !(FLAG_CLEAN | FLAG_JOURNAL) != 0 {
            return Err(SuperblockError::BadVersion);
        }
        let mut uuid = [0u8; 16];
        if let Some(s) = buf.get(16..32) {
            uuid.copy_from_slice(s);
        }
        let members = get_u32(buf, 32);
        let member_data_sectors = get_u64(buf, 40);
        let layout = Layout::new(
            members,
            get_u32(buf, 36),
            get_u64(buf, 48),
            member_data_sectors,
        )
        .map_err(|_| SuperblockError::BadGeometry)?;
        if layout.member_data_sectors() != member_data_sectors
            || layout.data_offset() < SECTORS
            || get_u32(buf, 56) != ALGORITHM_LEFT_SYMMETRIC
        {
            return Err(SuperblockError::BadGeometry);
        }
        let member_index = get_u32(buf, 60);
        if member_index >= members {
            return Err(SuperblockError::BadMemberIndex);
        }
        let mut states = [MemberState::Absent; MAX_MEMBERS as usize];
        for (i, (s, b)) in (0u32..).zip(states.iter_mut().zip(buf.iter().skip(STATES_OFFSET))) {
            *s = MemberState::from_byte(*b).ok_or(SuperblockError::BadState)?;
            if (i < members) == (*s == MemberState::Absent) {
                return Err(SuperblockError::BadState);
            }
        }
        Ok(Self {
            uuid,
            layout,
            member_index,
            events: get_u64(buf, 64),
            clean: flags & FLAG_CLEAN != 0,
            journal: flags & FLAG_JOURNAL != 0,
            resync_checkpoint: get_u64(buf, 72),
            rebuild_checkpoint: get_u64(buf, 80),
            states,
        })
    }

    /// Reads a member's first `SIZE` bytes: `Ok(None)` when it holds no rust44-raid5 superblock
    /// (no magic: a blank device), `Err` when it holds a damaged or unusable one.
    pub fn probe(buf: &[u8; SIZE]) -> Result<Option<Self>, SuperblockError> {
        match Self::decode(buf) {
            Ok(sb) => Ok(Some(sb)),
            Err(SuperblockError::BadMagic) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What a member slot does in an assembled array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// No member (slots past the array's members).
    Absent,
    /// In sync: read and written.
    InSync,
    /// To be rebuilt (from [`Assembled::rebuild_from`]): written everywhere, read only below
    /// the rebuild position.
    Rebuild,
    /// Failed: neither read nor written (the array runs degraded).
    Failed,
}

/// The array state decided by [`assemble`]: what the kernel side writes into every usable
/// member's superblock (with `events` incremented) before serving I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assembled {
    /// Identity of the array.
    pub uuid: [u8; 16],
    /// The geometry.
    pub layout: Layout,
    /// The highest event counter found.
    pub events: u64,
    /// Whether the array was stopped cleanly.
    pub clean: bool,
    /// Whether it runs with a journal.
    pub journal: bool,
    /// Where a parity resync must (re)start ([`NONE`]: parity is good everywhere): 0 when the
    /// array was not stopped cleanly, the recorded checkpoint when it was. Stripes at or past
    /// it have untrusted parity (plan their writes with `parity_trusted = false`).
    pub resync_from: u64,
    /// Member data sector the rebuild of the [`Role::Rebuild`] member starts (or resumes)
    /// from; [`NONE`] when no member is to be rebuilt.
    pub rebuild_from: u64,
    /// Every slot's role.
    pub roles: [Role; MAX_MEMBERS as usize],
}

impl Assembled {
    /// The member that is not in sync (failed or to rebuild), if any.
    pub fn degraded_member(&self) -> Option<u32> {
        (0u32..)
            .zip(self.roles)
            .find(|(_, r)| matches!(r, Role::Failed | Role::Rebuild))
            .map(|(i, _)| i)
    }

    /// The superblock to write on member `member_index` for this state, with event counter
    /// `events` (the caller passes `self.events + 1`) and the given clean flag.
    pub fn superblock(&self, member_index: u32, events: u64, clean: bool) -> Superblock {
        let mut states = [MemberState::Absent; MAX_MEMBERS as usize];
        for (s, r) in states.iter_mut().zip(self.roles) {
            *s = match r {
                Role::Absent => MemberState::Absent,
                Role::InSync => MemberState::Active,
                Role::Failed => MemberState::Failed,
                Role::Rebuild => MemberState::Rebuilding,
            };
        }
        Superblock {
            uuid: self.uuid,
            layout: self.layout,
            member_index,
            events,
            clean,
            journal: self.journal,
            resync_checkpoint: self.resync_from,
            rebuild_checkpoint: self.rebuild_from,
            states,
        }
    }
}

/// What to do with the devices of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Every device is blank: create a new array of this geometry (the caller picks a UUID,
    /// writes superblocks with every member active, and resyncs parity from the start).
    Create(Layout),
    /// The devices hold an array: run it in this state.
    Assemble(Assembled),
}

/// Why the devices of a table do not make an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssemblyError {
    /// The number of devices given differs from the table's member count.
    WrongDeviceCount,
    /// A device's superblock is damaged or unusable.
    BadSuperblock {
        /// The table position of the device.
        slot: u32,
        /// What is wrong with it.
        error: SuperblockError,
    },
    /// A device belongs to another array.
    ForeignDevice {
        /// The table position of the device.
        slot: u32,
    },
    /// A device's superblock records another geometry than the table's or the array's.
    GeometryMismatch {
        /// The table position of the device.
        slot: u32,
    },
    /// A device is a member of this array, but at another position than the table lists it.
    IndexMismatch {
        /// The table position of the device.
        slot: u32,
        /// The position its superblock records.
        recorded: u32,
    },
    /// A device is smaller than the array needs.
    DeviceTooSmall {
        /// The table position of the device.
        slot: u32,
    },
    /// A blank device stands where the array has an active member: it replaces only a failed
    /// member.
    UnexpectedBlank {
        /// The table position of the device.
        slot: u32,
    },
    /// More than one member is failed or out of date: the data cannot be recovered.
    TooManyFailed,
    /// The array was not stopped cleanly and a member is missing: parity may not match the
    /// data, so the missing member cannot be recomputed (md's dirty degraded array).
    DirtyDegraded,
    /// The geometry cannot be built from the table and device sizes.
    Geometry(crate::layout::GeometryError),
    /// A member is missing (`-`) from a table of blank devices: a new array needs them all.
    MissingInNewArray,
    /// The array has a journal, was not stopped cleanly and the table lists no journal: the
    /// journal may hold writes the members lack.
    JournalNeeded,
}

impl AssemblyError {
    /// A message suitable for the device-mapper error string.
    pub fn message(&self) -> &'static CStr {
        match self {
            Self::WrongDeviceCount => c"number of devices does not match ndevs",
            Self::BadSuperblock { error, .. } => error.message(),
            Self::ForeignDevice { .. } => c"device belongs to another array",
            Self::GeometryMismatch { .. } => c"device superblock geometry does not match the table",
            Self::IndexMismatch { .. } => c"device listed at another position than its array slot",
            Self::DeviceTooSmall { .. } => c"device too small for the array",
            Self::UnexpectedBlank { .. } => c"blank device in place of an active member",
            Self::TooManyFailed => c"more than one member failed, cannot run",
            Self::DirtyDegraded => c"array not stopped cleanly and degraded, cannot run",
            Self::Geometry(e) => e.message(),
            Self::MissingInNewArray => c"a new array cannot start with a member missing",
            Self::JournalNeeded => {
                c"array not stopped cleanly and its journal is not listed: it may hold writes"
            }
        }
    }

    /// The table position of the device the refusal is about, if it is about one.
    pub fn slot(&self) -> Option<u32> {
        match *self {
            Self::BadSuperblock { slot, .. }
            | Self::ForeignDevice { slot }
            | Self::GeometryMismatch { slot }
            | Self::IndexMismatch { slot, .. }
            | Self::DeviceTooSmall { slot }
            | Self::UnexpectedBlank { slot } => Some(slot),
            _ => None,
        }
    }
}

/// What the table and the devices say, for [`assemble`].
#[derive(Clone, Copy, Debug)]
pub struct AssemblyInput<'a> {
    /// `ndevs` of the table.
    pub members: u32,
    /// `chunk_sectors` of the table.
    pub chunk_sectors: u32,
    /// Data offset for a new array (sectors; at least [`SECTORS`], a multiple of 8).
    pub data_offset: u64,
    /// What [`Superblock::probe`] read from each listed device, in table order.
    pub superblocks: &'a [Result<Option<Superblock>, SuperblockError>],
    /// Each listed device's size in sectors, in table order.
    pub device_sectors: &'a [u64],
    /// Run a dirty degraded array anyway (md's `start_dirty_degraded`).
    pub allow_dirty_degraded: bool,
    /// The slot listed as missing (`-`): its entries in `superblocks` and `device_sectors` are
    /// not looked at.
    pub missing: Option<u32>,
    /// The table lists a journal: its replay restores parity after a crash, so a dirty array
    /// needs no resync and may start degraded.
    pub journal: bool,
}

/// How far behind the newest superblock a member's event counter may be and still count as
/// current: 1, as mdadm's `event_margin` (a crash between the superblock writes of one update
/// leaves some members one event behind; no data was written under the newer state yet, since
/// I/O waits for the update to complete on every member).
pub const EVENT_MARGIN: u64 = 1;

/// Decides what to do with the devices of a table: create, assemble, or refuse.
pub fn assemble(input: &AssemblyInput<'_>) -> Result<Decision, AssemblyError> {
    let n = input.members;
    let count = input.superblocks.len();
    if u32::try_from(count).ok() != Some(n) || input.device_sectors.len() != count {
        return Err(AssemblyError::WrongDeviceCount);
    }
    if input.data_offset < SECTORS {
        return Err(AssemblyError::Geometry(
            crate::layout::GeometryError::DataOffset,
        ));
    }

    let mut newest: Option<Superblock> = None;
    for (slot, sb) in (0u32..).zip(input.superblocks) {
        match sb {
            Err(error) => {
                return Err(AssemblyError::BadSuperblock {
                    slot,
                    error: *error,
                })
            }
            Ok(Some(sb)) => {
                if newest.is_none_or(|best| sb.events > best.events) {
                    newest = Some(*sb);
                }
            }
            Ok(None) => {}
        }
    }

    let Some(newest) = newest else {
        if input.missing.is_some() {
            return Err(AssemblyError::MissingInNewArray);
        }
        let smallest = input.device_sectors.iter().copied().min().unwrap_or(0);
        let layout = Layout::for_devices(n, input.chunk_sectors, input.data_offset, smallest)
            .map_err(AssemblyError::Geometry)?;
        return Ok(Decision::Create(layout));
    };

    let layout = newest.layout;
    if layout.members() != n || layout.chunk_sectors() != input.chunk_sectors {
        // Which device: the newest one, found below with the first mismatch.
        let slot = (0u32..)
            .zip(input.superblocks)
            .find(|(_, sb)| matches!(sb, Ok(Some(s)) if s.events == newest.events))
            .map_or(0, |(i, _)| i);
        return Err(AssemblyError::GeometryMismatch { slot });
    }

    let mut roles = [Role::Absent; MAX_MEMBERS as usize];
    let mut out_of_sync = 0u32;
    let mut rebuild_from = NONE;
    for (slot, ((sb, &size), role)) in (0u32..).zip(
        input
            .superblocks
            .iter()
            .zip(input.device_sectors)
            .zip(roles.iter_mut()),
    ) {
        let recorded = newest
            .states
            .get(slot as usize)
            .copied()
            .unwrap_or(MemberState::Absent);
        *role = match sb {
            _ if input.missing == Some(slot) => Role::Failed,
            Ok(Some(sb)) => {
                if sb.uuid != newest.uuid {
                    return Err(AssemblyError::ForeignDevice { slot });
                }
                if sb.layout != layout {
                    return Err(AssemblyError::GeometryMismatch { slot });
                }
                if sb.member_index != slot {
                    return Err(AssemblyError::IndexMismatch {
                        slot,
                        recorded: sb.member_index,
                    });
                }
                if size < layout.member_device_sectors() {
                    return Err(AssemblyError::DeviceTooSmall { slot });
                }
                let current = sb.events.saturating_add(EVENT_MARGIN) >= newest.events;
                match (recorded, current) {
                    (MemberState::Active, true) => Role::InSync,
                    (MemberState::Rebuilding, true) => {
                        rebuild_from = if newest.rebuild_checkpoint == NONE {
                            0
                        } else {
                            newest.rebuild_checkpoint
                        };
                        Role::Rebuild
                    }
                    // Out of date, or a spare: its contents are worthless, rebuild all of it.
                    (MemberState::Active | MemberState::Rebuilding, false)
                    | (MemberState::Spare, _) => {
                        rebuild_from = 0;
                        Role::Rebuild
                    }
                    // Stays failed until replaced by a blank device (or wiped).
                    (MemberState::Failed | MemberState::Absent, _) => Role::Failed,
                }
            }
            Ok(None) => match recorded {
                MemberState::Failed | MemberState::Rebuilding | MemberState::Spare => {
                    if size < layout.member_device_sectors() {
                        return Err(AssemblyError::DeviceTooSmall { slot });
                    }
                    rebuild_from = 0;
                    Role::Rebuild
                }
                MemberState::Active | MemberState::Absent => {
                    return Err(AssemblyError::UnexpectedBlank { slot });
                }
            },
            // Refused in the first loop.
            Err(error) => {
                return Err(AssemblyError::BadSuperblock {
                    slot,
                    error: *error,
                })
            }
        };
        if !matches!(role, Role::InSync) {
            out_of_sync += 1;
        }
    }
    if out_of_sync > 1 {
        return Err(AssemblyError::TooManyFailed);
    }
    if newest.journal && !newest.clean && !input.journal {
        return Err(AssemblyError::JournalNeeded);
    }
    // As md's `resync_offset`: the checkpoint holds when the array was stopped cleanly; after
    // a crash every stripe may have had a write in flight, unless every write went through
    // the journal, whose replay completes them.
    let replayed = newest.journal && input.journal;
    let resync_from = if newest.clean || replayed {
        newest.resync_checkpoint
    } else {
        0
    };
    if out_of_sync > 0 && resync_from != NONE && !input.allow_dirty_degraded && !replayed {
        return Err(AssemblyError::DirtyDegraded);
    }
    Ok(Decision::Assemble(Assembled {
        uuid: newest.uuid,
        layout,
        events: newest.events,
        clean: newest.clean,
        journal: input.journal,
        resync_from,
        rebuild_from,
        roles,
    }))
}
