// SPDX-License-Identifier: GPL-2.0

//! Zoned block devices: zone reports, zone management and the device's zone limits.
//!
//! C headers: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h),
//! [`include/uapi/linux/blkzoned.h`](srctree/include/uapi/linux/blkzoned.h)
//!
//! A zoned device is divided into zones of equal size (the last may be smaller). A sequential
//! zone is written only at its write pointer, up to its capacity (which may be less than its
//! size), and rewritten only after a reset. These calls extend [`Bdev`] for a driver that
//! manages the zones of a device below it, such as a host-side FTL.

use super::bio::Bdev;
use crate::{
    bindings,
    error::{code::*, to_result, Error, Result},
    ffi::{c_int, c_uint, c_void},
};

/// A zone's condition (`enum blk_zone_cond`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneCond {
    /// A conventional zone: no write pointer, written anywhere.
    NotWritePointer,
    /// Empty: the write pointer is at the start.
    Empty,
    /// Opened by a write.
    ImplicitOpen,
    /// Opened by a zone open operation.
    ExplicitOpen,
    /// Partly written and closed.
    Closed,
    /// Full: no more writes until a reset.
    Full,
    /// Readable, never writable again.
    ReadOnly,
    /// Neither readable nor writable.
    Offline,
}

impl ZoneCond {
    fn from_raw(cond: u8) -> Option<Self> {
        Some(match u32::from(cond) {
            bindings::blk_zone_cond_BLK_ZONE_COND_NOT_WP => Self::NotWritePointer,
            bindings::blk_zone_cond_BLK_ZONE_COND_EMPTY => Self::Empty,
            bindings::blk_zone_cond_BLK_ZONE_COND_IMP_OPEN => Self::ImplicitOpen,
            bindings::blk_zone_cond_BLK_ZONE_COND_EXP_OPEN => Self::ExplicitOpen,
            bindings::blk_zone_cond_BLK_ZONE_COND_CLOSED => Self::Closed,
            bindings::blk_zone_cond_BLK_ZONE_COND_FULL => Self::Full,
            bindings::blk_zone_cond_BLK_ZONE_COND_READONLY => Self::ReadOnly,
            bindings::blk_zone_cond_BLK_ZONE_COND_OFFLINE => Self::Offline,
            _ => return None,
        })
    }
}

/// One zone of a report (`struct blk_zone`), in 512-byte sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone {
    /// First sector.
    pub start: u64,
    /// Size.
    pub len: u64,
    /// Sectors that may be written, from the start (at most `len`).
    pub capacity: u64,
    /// The write pointer (a sector of the device); meaningless for conventional, read-only
    /// and offline zones.
    pub wp: u64,
    /// Condition.
    pub cond: ZoneCond,
    /// The device recommends a reset.
    pub reset_recommended: bool,
}

impl Zone {
    /// Sectors written, from the start, as the write pointer says (capacity if full).
    pub fn written(&self) -> u64 {
        match self.cond {
            ZoneCond::Empty => 0,
            ZoneCond::ImplicitOpen | ZoneCond::ExplicitOpen | ZoneCond::Closed => {
                self.wp.saturating_sub(self.start).min(self.capacity)
            }
            _ => self.capacity,
        }
    }
}

/// A zone management operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneOp {
    /// Moves the write pointer back to the start: the data is gone.
    Reset,
    /// Opens the zone explicitly.
    Open,
    /// Closes an open zone (it stops counting as open, still counts as active).
    Close,
    /// Moves the write pointer to the end: full, no longer open or active.
    Finish,
}

impl ZoneOp {
    fn as_raw(self) -> bindings::req_op {
        match self {
            Self::Reset => bindings::req_op_REQ_OP_ZONE_RESET,
            Self::Open => bindings::req_op_REQ_OP_ZONE_OPEN,
            Self::Close => bindings::req_op_REQ_OP_ZONE_CLOSE,
            Self::Finish => bindings::req_op_REQ_OP_ZONE_FINISH,
        }
    }
}

/// A zoned device's geometry and limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneLimits {
    /// Zone size in sectors (a power of two).
    pub zone_sectors: u64,
    /// Number of zones.
    pub nr_zones: u32,
    /// Zones that may be open at once (0: no limit).
    pub max_open: u32,
    /// Zones that may be open or closed at once (0: no limit).
    pub max_active: u32,
    /// Largest zone append in sectors.
    pub max_append_sectors: u32,
}

/// What [`Bdev::report_zones`] passes to its callback through `blkdev_report_zones()`.
struct ReportState<'a> {
    f: &'a mut dyn FnMut(u32, &Zone) -> Result,
    error: Option<Error>,
}

/// The callback of `blkdev_report_zones()` for [`Bdev::report_zones`].
///
/// # Safety
///
/// `zone` is a valid zone and `data` the `ReportState` `report_zones` passed.
unsafe extern "C" fn report_cb(
    zone: *mut bindings::blk_zone,
    idx: c_uint,
    data: *mut c_void,
) -> c_int {
    // SAFETY: As the function's contract says; the state lives for the report's duration.
    let (state, z) = unsafe { (&mut *data.cast::<ReportState<'_>>(), &*zone) };
    let Some(cond) = ZoneCond::from_raw(z.cond) else {
        state.error = Some(EIO);
        return EIO.to_errno();
    };
    let zone = Zone {
        start: z.start,
        len: z.len,
        capacity: z.capacity,
        wp: z.wp,
        cond,
        reset_recommended: z.reset != 0,
    };
    match (state.f)(idx, &zone) {
        Ok(()) => 0,
        Err(e) => {
            state.error = Some(e);
            e.to_errno()
        }
    }
}

impl Bdev {
    /// The device's zone geometry and limits; `None` if it is not zoned.
    pub fn zone_limits(&self) -> Option<ZoneLimits> {
        if !self.is_zoned() {
            return None;
        }
        let b = self.as_raw();
        // SAFETY: By `Bdev`'s invariant the block device is open.
        Some(unsafe {
            ZoneLimits {
                zone_sectors: bindings::bdev_zone_sectors(b),
                nr_zones: bindings::bdev_nr_zones(b),
                max_open: bindings::bdev_max_open_zones(b),
                max_active: bindings::bdev_max_active_zones(b),
                max_append_sectors: bindings::bdev_max_zone_append_sectors(b),
            }
        })
    }

    /// Reports up to `nr_zones` zones from the one holding `sector`, calling `f(index, zone)`
    /// for each (index from 0 in this report); returns how many were reported. An error from `f`
    /// stops the report and is returned. Sleeps (the device is asked).
    ///
    /// Fails with `EOPNOTSUPP` when the device is not zoned, `EINVAL` when `sector` is past it.
    pub fn report_zones(
        &self,
        sector: u64,
        nr_zones: u32,
        mut f: impl FnMut(u32, &Zone) -> Result,
    ) -> Result<u32> {
        crate::task::might_sleep();
        let mut state = ReportState {
            f: &mut f,
            error: None,
        };
        // SAFETY: The device is open; `report_cb` matches the callback type and gets `state`,
        // which outlives the call (the report is synchronous).
        let ret = unsafe {
            bindings::blkdev_report_zones(
                self.as_raw(),
                sector,
                nr_zones,
                Some(report_cb),
                (&raw mut state).cast(),
            )
        };
        if let Some(e) = state.error {
            return Err(e);
        }
        to_result(ret)?;
        Ok(ret as u32)
    }

    /// Applies `op` to the zones from `sector` over `nr_sectors` (zone-aligned) and waits
    /// (`blkdev_zone_mgmt()`).
    ///
    /// Fails with `EOPNOTSUPP` when the device is not zoned or lacks the operation, `EINVAL` for
    /// a range that is not zone-aligned, `EPERM` when the device is read-only, or with the
    /// device's error.
    pub fn zone_mgmt(&self, op: ZoneOp, sector: u64, nr_sectors: u64) -> Result {
        crate::task::might_sleep();
        // SAFETY: The device is open; the function checks the range itself.
        to_result(unsafe {
            bindings::blkdev_zone_mgmt(self.as_raw(), op.as_raw(), sector, nr_sectors)
        })
    }
}
