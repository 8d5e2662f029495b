// SPDX-License-Identifier: GPL-2.0

//! The rust44-raid5 table line and status lines. Only `core`: the kernel module and the host
//! tests (`raid5_journal/host`) build this same file.
//!
//! Table: `<chunk_sectors> <ndevs> <dev>... [nosync] [journal <dev> writethrough|writeback]`
//! with exactly `ndevs` devices (3 to 16), each named as `dm_get_device()` takes it, none twice,
//! in array slot order, or `-` for a missing member (dm-raid's word; one at most, an existing
//! array only); `chunk_sectors` is a power of two from 8 (4 KiB) to 2048 (1 MiB). `nosync`
//! (dm-raid's word, md's `--assume-clean`): members of a new array already hold consistent
//! parity (they are zeroed), so it starts without the initial resync; it changes nothing for an
//! existing array. `journal`: every write goes to the journal device first (see `journal.rs`),
//! answered once the members hold it (`writethrough`) or once the journal does (`writeback`).

use crate::journal::Mode;
use crate::layout::{valid_chunk_sectors, valid_members, MAX_MEMBERS};
use core::ffi::CStr;
use core::fmt;

/// One table argument as bytes. Implemented for the usual string types; the kernel side
/// implements it for its own C string type if that is not `core::ffi::CStr`.
pub trait TableArg {
    /// The argument's bytes (without a terminating NUL).
    fn arg_bytes(&self) -> &[u8];
}

impl TableArg for [u8] {
    fn arg_bytes(&self) -> &[u8] {
        self
    }
}

impl TableArg for str {
    fn arg_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl TableArg for core::ffi::CStr {
    fn arg_bytes(&self) -> &[u8] {
        self.to_bytes()
    }
}

impl<T: TableArg + ?Sized> TableArg for &T {
    fn arg_bytes(&self) -> &[u8] {
        (**self).arg_bytes()
    }
}

/// Why a table line is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// Fewer than the two numbers.
    TooFewArgs,
    /// `chunk_sectors` is not a number, not a power of two, or out of bounds.
    ChunkSectors,
    /// `ndevs` is not a number or out of bounds.
    DeviceCount,
    /// The number of devices listed differs from `ndevs`.
    DeviceCountMismatch,
    /// A device is named twice.
    DuplicateDevice {
        /// The later of the two positions (0-based among the devices).
        slot: u32,
    },
    /// A device name is empty.
    EmptyDevice {
        /// Its position (0-based among the devices).
        slot: u32,
    },
    /// More than one member is missing (`-`).
    TooManyMissing,
    /// An option after the devices is not `nosync` or `journal <dev> <mode>`.
    BadOption,
    /// `journal` without a device and a mode, or with a mode that is neither word.
    BadJournal,
}

impl TableError {
    /// A message suitable for the device-mapper error string.
    pub fn message(&self) -> &'static CStr {
        match self {
            Self::TooFewArgs => c"expected <chunk_sectors> <ndevs> <dev>...",
            Self::ChunkSectors => c"chunk_sectors must be a power of two between 8 and 2048",
            Self::DeviceCount => c"ndevs must be between 3 and 16",
            Self::DeviceCountMismatch => c"the number of devices listed does not match ndevs",
            Self::DuplicateDevice { .. } => c"a device is listed twice",
            Self::EmptyDevice { .. } => c"empty device name",
            Self::TooManyMissing => c"more than one member missing",
            Self::BadOption => c"unknown option after the devices (nosync, journal <dev> <mode>)",
            Self::BadJournal => c"expected journal <dev> writethrough|writeback",
        }
    }
}

/// A checked table line. The devices are `args[Table::FIRST_DEVICE..]`, in slot order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    /// Chunk size in sectors.
    pub chunk_sectors: u32,
    /// Number of devices (members).
    pub members: u32,
    /// A new array skips its initial resync.
    pub nosync: bool,
    /// The missing member (`-`), if one is.
    pub missing: Option<u32>,
    /// The journal: the position of its device among the arguments, and the mode.
    pub journal: Option<(usize, Mode)>,
}

/// Parses a decimal `u32`: digits only, no sign, no leading or trailing space.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut v: u32 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(v)
}

impl Table {
    /// Position of the first device among the arguments.
    pub const FIRST_DEVICE: usize = 2;

    /// Checks the table arguments (`argv` of the constructor).
    pub fn parse<T: TableArg>(args: &[T]) -> Result<Self, TableError> {
        let (Some(chunk), Some(ndevs)) = (args.first(), args.get(1)) else {
            return Err(TableError::TooFewArgs);
        };
        let chunk_sectors = parse_u32(chunk.arg_bytes())
            .filter(|&c| valid_chunk_sectors(c))
            .ok_or(TableError::ChunkSectors)?;
        let members = parse_u32(ndevs.arg_bytes())
            .filter(|&n| valid_members(n))
            .ok_or(TableError::DeviceCount)?;
        let rest = args.get(Self::FIRST_DEVICE..).unwrap_or(&[]);
        let (devices, mut options) = rest
            .split_at_checked(members as usize)
            .ok_or(TableError::DeviceCountMismatch)?;
        let mut nosync = false;
        let mut journal = None;
        while let Some((word, more)) = options.split_first() {
            // `options` is a tail of `args`.
            let at = args.len() - options.len();
            match word.arg_bytes() {
                b"nosync" if !nosync => {
                    nosync = true;
                    options = more;
                }
                b"journal" if journal.is_none() => {
                    let [dev, mode, after @ ..] = more else {
                        return Err(TableError::BadJournal);
                    };
                    let mode = Mode::parse(mode.arg_bytes()).ok_or(TableError::BadJournal)?;
                    if dev.arg_bytes().is_empty() || dev.arg_bytes() == b"-" {
                        return Err(TableError::BadJournal);
                    }
                    journal = Some((at + 1, mode));
                    options = after;
                }
                // Without a journal, a word that is not an option (or one given twice) stands
                // for one device too many, the usual mistake.
                _ if journal.is_none() => return Err(TableError::DeviceCountMismatch),
                _ => return Err(TableError::BadOption),
            }
        }
        let mut missing = None;
        for (slot, dev) in (0u32..).zip(devices) {
            let name = dev.arg_bytes();
            if name.is_empty() {
                return Err(TableError::EmptyDevice { slot });
            }
            if name == b"-" {
                if missing.replace(slot).is_some() {
                    return Err(TableError::TooManyMissing);
                }
                continue;
            }
            let same = |other: &T| other.arg_bytes() == name;
            if devices.iter().take(slot as usize).any(same)
                || journal.is_some_and(|(at, _)| args.get(at).is_some_and(same))
            {
                return Err(TableError::DuplicateDevice { slot });
            }
        }
        Ok(Self {
            chunk_sectors,
            members,
            nosync,
            missing,
            journal,
        })
    }

    /// The device arguments of `args`, the arguments this table was parsed from.
    pub fn devices<'a, T>(&self, args: &'a [T]) -> &'a [T] {
        let end = Self::FIRST_DEVICE + self.members as usize;
        args.get(Self::FIRST_DEVICE..end).unwrap_or(&[])
    }
}

/// A member's health, as dm-raid prints it in its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Alive and in sync: `A`.
    InSync,
    /// Alive, not in sync (being rebuilt): `a`.
    Rebuilding,
    /// Dead (failed): `D`.
    Failed,
}

impl Health {
    /// dm-raid's character for it.
    pub fn as_char(self) -> char {
        match self {
            Self::InSync => 'A',
            Self::Rebuilding => 'a',
            Self::Failed => 'D',
        }
    }
}

/// Writes one health character per member (dm-raid's `<health_chars>`).
pub fn write_health(w: &mut impl fmt::Write, members: &[Health]) -> fmt::Result {
    for h in members.iter().take(MAX_MEMBERS as usize) {
        w.write_char(h.as_char())?;
    }
    Ok(())
}

/// The background work a status reports (dm-raid's `<sync_action>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncAction {
    /// Nothing to do.
    Idle,
    /// Parity resync.
    Resync,
    /// Rebuild of a member.
    Recover,
    /// Waiting (a failed member and no replacement, or stopped).
    Frozen,
}

impl SyncAction {
    /// dm-raid's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Resync => "resync",
            Self::Recover => "recover",
            Self::Frozen => "frozen",
        }
    }
}

/// Writes the info status line, dm-raid's shape:
/// `raid5_ls <ndevs> <health_chars> <done>/<total> <sync_action> <mismatch_cnt>`.
/// `done`/`total` are member data sectors of the running resync or rebuild (`total/total` when
/// none runs).
pub fn write_info(
    w: &mut impl fmt::Write,
    members: &[Health],
    done: u64,
    total: u64,
    action: SyncAction,
    mismatches: u64,
) -> fmt::Result {
    write!(w, "raid5_ls {} ", members.len().min(MAX_MEMBERS as usize))?;
    write_health(w, members)?;
    write!(w, " {}/{} {} {}", done, total, action.as_str(), mismatches)
}

/// Writes the start of the table status line, `<chunk_sectors> <ndevs>`; the caller appends
/// ` <major:minor>` for each device, then [`write_table_options`].
pub fn write_table_prefix(w: &mut impl fmt::Write, table: &Table) -> fmt::Result {
    write!(w, "{} {}", table.chunk_sectors, table.members)
}

/// Writes the end of the table status line: ` nosync` when the table has it, then
/// ` journal <major:minor> <mode>` (`journal`: the device and the mode the array runs in now,
/// so that a table read back and loaded again keeps a mode changed by message).
pub fn write_table_options(
    w: &mut impl fmt::Write,
    table: &Table,
    journal: Option<(u32, u32, Mode)>,
) -> fmt::Result {
    if table.nosync {
        w.write_str(" nosync")?;
    }
    if let Some((major, minor, mode)) = journal {
        write!(w, " journal {}:{} {}", major, minor, mode.as_str())?;
    }
    Ok(())
}
