// SPDX-License-Identifier: GPL-2.0

//! Where RAID5 puts each sector: md's left-symmetric layout (`ALGORITHM_LEFT_SYMMETRIC`,
//! dm-raid's `raid5_ls`), so that an array written by rust44-raid5 reads the same through md.
//! Only `core`: the kernel module and the host tests (`raid5_journal/host`) build this same file.
//!
//! The array is cut into chunks of `chunk_sectors`. Consecutive chunks fill the data slots of a
//! stripe (one chunk per member at the same member offset), `members - 1` of them per stripe; the
//! remaining member of the stripe holds their XOR (parity). For stripe `s` over `n` members:
//!
//! - parity member: `p = (n - 1) - (s % n)` (parity starts on the last member and moves left),
//! - data slot `d` (0-based, in array order) sits on member `(p + 1 + d) % n` (data continues
//!   right after the parity, wrapping around),
//! - every chunk of stripe `s` starts at member data sector `s * chunk_sectors`.
//!
//! Member sectors are relative to the start of the member device: the data area begins at
//! `data_offset` (the sectors before it hold the superblock). md's `raid5_compute_sector` gives
//! the same numbers relative to its `rdev->data_offset`.

use core::ffi::CStr;
use core::num::NonZeroU64;

/// Fewest members of an array.
pub const MIN_MEMBERS: u32 = 3;
/// Most members of an array (the superblock records the state of this many).
pub const MAX_MEMBERS: u32 = 16;
/// Smallest chunk, in sectors (4 KiB: one page, md's `STRIPE_SIZE`).
pub const MIN_CHUNK_SECTORS: u32 = 8;
/// Largest chunk, in sectors (1 MiB; md accepts larger, rust44-raid5 does not need them).
pub const MAX_CHUNK_SECTORS: u32 = 2048;
/// md's number for the left-symmetric algorithm (`ALGORITHM_LEFT_SYMMETRIC`), as recorded in
/// the superblock.
pub const ALGORITHM_LEFT_SYMMETRIC: u32 = 2;

/// Why a geometry cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeometryError {
    /// The number of members is outside `MIN_MEMBERS..=MAX_MEMBERS`.
    Members,
    /// The chunk size is not a power of two within `MIN_CHUNK_SECTORS..=MAX_CHUNK_SECTORS`.
    ChunkSectors,
    /// The data offset is not a multiple of 8 sectors (4 KiB), so data would not be
    /// page-aligned on the members.
    DataOffset,
    /// The members are too small to hold one stripe after the data offset.
    TooSmall,
    /// The sizes overflow 64-bit sector numbers.
    Overflow,
}

impl GeometryError {
    /// A message suitable for the device-mapper error string.
    pub fn message(&self) -> &'static CStr {
        match self {
            Self::Members => c"the number of devices must be between 3 and 16",
            Self::ChunkSectors => c"chunk_sectors must be a power of two between 8 and 2048",
            Self::DataOffset => c"the data offset must be a multiple of 8 sectors",
            Self::TooSmall => c"devices too small to hold one stripe",
            Self::Overflow => c"device sizes overflow",
        }
    }
}

/// Whether `chunk_sectors` is a chunk size rust44-raid5 accepts.
pub fn valid_chunk_sectors(chunk_sectors: u32) -> bool {
    chunk_sectors.is_power_of_two()
        && (MIN_CHUNK_SECTORS..=MAX_CHUNK_SECTORS).contains(&chunk_sectors)
}

/// Whether `members` is a number of members rust44-raid5 accepts.
pub fn valid_members(members: u32) -> bool {
    (MIN_MEMBERS..=MAX_MEMBERS).contains(&members)
}

/// A checked RAID5 left-symmetric geometry: members, chunk size, where data starts on each
/// member and how many stripes there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    members: u32,
    chunk_sectors: u32,
    chunk_shift: u32,
    data_offset: u64,
    stripes: u64,
}

/// Where one array sector lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The stripe (md's `sh->sector / chunk_sectors`).
    pub stripe: u64,
    /// The data slot within the stripe, `0..members - 1`, in array order (md's `dd_idx` before
    /// rotation).
    pub data_index: u32,
    /// The member holding the sector (md's `dd_idx`).
    pub member: u32,
    /// The sector on that member, relative to the member's data area (md's `new_sector`).
    pub data_sector: u64,
    /// The sector on the member device (`data_offset + data_sector`).
    pub device_sector: u64,
    /// The offset of the sector within its chunk.
    pub chunk_offset: u32,
    /// The member holding the stripe's parity (md's `pd_idx`).
    pub parity: u32,
}

impl Layout {
    /// A geometry of `members` devices with chunks of `chunk_sectors`, data starting at
    /// `data_offset` on every member, and `member_data_sectors` sectors of data area per member
    /// (rounded down to whole chunks).
    pub fn new(
        members: u32,
        chunk_sectors: u32,
        data_offset: u64,
        member_data_sectors: u64,
    ) -> Result<Self, GeometryError> {
        if !valid_members(members) {
            return Err(GeometryError::Members);
        }
        if !valid_chunk_sectors(chunk_sectors) {
            return Err(GeometryError::ChunkSectors);
        }
        if data_offset & u64::from(MIN_CHUNK_SECTORS - 1) != 0 {
            return Err(GeometryError::DataOffset);
        }
        let chunk_shift = chunk_sectors.trailing_zeros();
        let stripes = member_data_sectors >> chunk_shift;
        if stripes == 0 {
            return Err(GeometryError::TooSmall);
        }
        let layout = Self {
            members,
            chunk_sectors,
            chunk_shift,
            data_offset,
            stripes,
        };
        // Every sector number the layout hands out must fit: the member's end and the array's.
        layout
            .member_data_sectors()
            .checked_add(data_offset)
            .ok_or(GeometryError::Overflow)?;
        layout
            .stripes
            .checked_mul(layout.stripe_data_sectors())
            .ok_or(GeometryError::Overflow)?;
        Ok(layout)
    }

    /// The geometry that fits on member devices of `device_sectors` sectors each (the smallest
    /// member's size): the data area is what follows `data_offset`.
    pub fn for_devices(
        members: u32,
        chunk_sectors: u32,
        data_offset: u64,
        device_sectors: u64,
    ) -> Result<Self, GeometryError> {
        let data = device_sectors
            .checked_sub(data_offset)
            .ok_or(GeometryError::TooSmall)?;
        Self::new(members, chunk_sectors, data_offset, data)
    }

    /// The number of members, for divisions that cannot be by zero (a `Layout` has at least
    /// [`MIN_MEMBERS`]).
    fn members_nz(&self) -> NonZeroU64 {
        NonZeroU64::new(u64::from(self.members)).unwrap_or(NonZeroU64::MIN)
    }

    /// The number of data members, likewise never zero.
    fn data_members_nz(&self) -> NonZeroU64 {
        NonZeroU64::new(u64::from(self.data_members())).unwrap_or(NonZeroU64::MIN)
    }

    /// Number of members.
    pub fn members(&self) -> u32 {
        self.members
    }

    /// Number of data slots per stripe (`members - 1`).
    pub fn data_members(&self) -> u32 {
        self.members - 1
    }

    /// Chunk size in sectors.
    pub fn chunk_sectors(&self) -> u32 {
        self.chunk_sectors
    }

    /// Where the data area starts on every member, in sectors.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Number of stripes.
    pub fn stripes(&self) -> u64 {
        self.stripes
    }

    /// Sectors of data area used on each member (whole chunks).
    pub fn member_data_sectors(&self) -> u64 {
        self.stripes << self.chunk_shift
    }

    /// Smallest member device that holds this geometry, in sectors.
    pub fn member_device_sectors(&self) -> u64 {
        // Checked in `new`.
        self.data_offset + self.member_data_sectors()
    }

    /// Data sectors of one stripe (`(members - 1) * chunk_sectors`).
    pub fn stripe_data_sectors(&self) -> u64 {
        u64::from(self.data_members()) << self.chunk_shift
    }

    /// Capacity of the array, in sectors.
    pub fn array_sectors(&self) -> u64 {
        // Checked in `new`.
        self.stripes * self.stripe_data_sectors()
    }

    /// The member holding the parity of `stripe`.
    pub fn parity_member(&self, stripe: u64) -> u32 {
        // `stripe % members < members <= 16`: the conversion and the subtraction cannot fail.
        self.data_members() - (stripe % self.members_nz()) as u32
    }

    /// The member holding data slot `data_index` of `stripe`; `None` when `data_index` is not a
    /// data slot.
    pub fn data_member(&self, stripe: u64, data_index: u32) -> Option<u32> {
        if data_index >= self.data_members() {
            return None;
        }
        Some((u64::from(self.parity_member(stripe) + 1 + data_index) % self.members_nz()) as u32)
    }

    /// The data slot `member` holds in `stripe`; `None` for the parity member or a member
    /// outside the array.
    pub fn data_index(&self, stripe: u64, member: u32) -> Option<u32> {
        let parity = self.parity_member(stripe);
        if member >= self.members || member == parity {
            return None;
        }
        // Distance going right from the parity member, minus the parity itself.
        Some((u64::from(member + self.members - parity - 1) % self.members_nz()) as u32)
    }

    /// Where array sector `sector` lives; `None` past the end of the array.
    pub fn locate(&self, sector: u64) -> Option<Location> {
        if sector >= self.array_sectors() {
            return None;
        }
        let chunk = sector >> self.chunk_shift;
        // Lower bits of a u64 below `chunk_sectors` (a u32).
        let chunk_offset = (sector & u64::from(self.chunk_sectors - 1)) as u32;
        let dm = self.data_members_nz();
        let stripe = chunk / dm;
        // `chunk % dm < dm <= 15`.
        let data_index = (chunk % dm) as u32;
        let parity = self.parity_member(stripe);
        let member = (u64::from(parity + 1 + data_index) % self.members_nz()) as u32;
        let data_sector = (stripe << self.chunk_shift) | u64::from(chunk_offset);
        Some(Location {
            stripe,
            data_index,
            member,
            data_sector,
            device_sector: self.data_offset + data_sector,
            chunk_offset,
            parity,
        })
    }

    /// The array sector stored at `data_sector` (relative to the data area) of `member`;
    /// `None` for parity, a member outside the array or a sector past the data area.
    pub fn array_sector_of_data(&self, member: u32, data_sector: u64) -> Option<u64> {
        let stripe = data_sector >> self.chunk_shift;
        if stripe >= self.stripes {
            return None;
        }
        let data_index = self.data_index(stripe, member)?;
        let offset = data_sector & u64::from(self.chunk_sectors - 1);
        let chunk = stripe * u64::from(self.data_members()) + u64::from(data_index);
        Some((chunk << self.chunk_shift) | offset)
    }

    /// The array sector stored at `device_sector` of `member` (counted from the start of the
    /// member device); `None` for the superblock area, parity, a member outside the array or a
    /// sector past the data area.
    pub fn array_sector(&self, member: u32, device_sector: u64) -> Option<u64> {
        let data_sector = device_sector.checked_sub(self.data_offset)?;
        self.array_sector_of_data(member, data_sector)
    }

    /// First array sector of `stripe` (`None` past the last stripe).
    pub fn stripe_start(&self, stripe: u64) -> Option<u64> {
        if stripe >= self.stripes {
            return None;
        }
        Some(stripe * self.stripe_data_sectors())
    }

    /// The pieces of the array range `start .. start + sectors`, one per chunk it touches, in
    /// array order; `None` when the range does not lie within the array.
    pub fn pieces(&self, start: u64, sectors: u64) -> Option<Pieces> {
        let end = start.checked_add(sectors)?;
        if end > self.array_sectors() {
            return None;
        }
        Some(Pieces {
            layout: *self,
            next: start,
            end,
        })
    }
}

/// A run of array sectors within one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// First array sector of the piece.
    pub array_sector: u64,
    /// Length in sectors (at most one chunk).
    pub sectors: u32,
    /// Where its first sector lives; the rest follow on the same member.
    pub location: Location,
}

/// Iterator over the per-chunk pieces of an array range (see [`Layout::pieces`]).
#[derive(Clone, Debug)]
pub struct Pieces {
    layout: Layout,
    next: u64,
    end: u64,
}

impl Iterator for Pieces {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        if self.next >= self.end {
            return None;
        }
        let location = self.layout.locate(self.next)?;
        let left_in_chunk = self.layout.chunk_sectors - location.chunk_offset;
        let left = self.end - self.next;
        let sectors = if left < u64::from(left_in_chunk) {
            // Below a u32.
            left as u32
        } else {
            left_in_chunk
        };
        let piece = Piece {
            array_sector: self.next,
            sectors,
            location,
        };
        self.next += u64::from(sectors);
        Some(piece)
    }
}
