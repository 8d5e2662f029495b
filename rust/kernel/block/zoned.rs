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

#[macros::kunit_tests(rust44_block_zoned)]
mod tests {
    use super::*;

    fn raw_zone(start: u64, len: u64, capacity: u64, wp: u64, cond: u32) -> bindings::blk_zone {
        // SAFETY: `blk_zone` is plain old data; all zeroes is a valid value.
        let mut z: bindings::blk_zone = unsafe { core::mem::zeroed() };
        z.start = start;
        z.len = len;
        z.capacity = capacity;
        z.wp = wp;
        z.cond = cond as u8;
        z
    }

    /// Runs `report_cb` on `zone` as `blkdev_report_zones()` would, with `f` as the closure.
    fn report_one(
        zone: &mut bindings::blk_zone,
        f: &mut dyn FnMut(u32, &Zone) -> Result,
    ) -> (c_int, Option<Error>) {
        let mut state = ReportState { f, error: None };
        // SAFETY: A valid zone and the `ReportState` the callback expects, both outliving it.
        let ret = unsafe { report_cb(zone, 3, (&raw mut state).cast()) };
        (ret, state.error)
    }

    #[test]
    fn every_zone_condition_maps_and_others_are_refused() {
        let all = [
            (
                bindings::blk_zone_cond_BLK_ZONE_COND_NOT_WP,
                ZoneCond::NotWritePointer,
            ),
            (bindings::blk_zone_cond_BLK_ZONE_COND_EMPTY, ZoneCond::Empty),
            (
                bindings::blk_zone_cond_BLK_ZONE_COND_IMP_OPEN,
                ZoneCond::ImplicitOpen,
            ),
            (
                bindings::blk_zone_cond_BLK_ZONE_COND_EXP_OPEN,
                ZoneCond::ExplicitOpen,
            ),
            (
                bindings::blk_zone_cond_BLK_ZONE_COND_CLOSED,
                ZoneCond::Closed,
            ),
            (bindings::blk_zone_cond_BLK_ZONE_COND_FULL, ZoneCond::Full),
            (
                bindings::blk_zone_cond_BLK_ZONE_COND_READONLY,
                ZoneCond::ReadOnly,
            ),
            (
                bindings::blk_zone_cond_BLK_ZONE_COND_OFFLINE,
                ZoneCond::Offline,
            ),
        ];
        for (raw, cond) in all {
            assert_eq!(ZoneCond::from_raw(raw as u8), Some(cond));
        }
        // 0x5 to 0xc are reserved by ZBC/ZAC; 0xee is no condition at all.
        for raw in [0x5u8, 0x6, 0x9, 0xc, 0xee] {
            assert_eq!(ZoneCond::from_raw(raw), None);
        }
    }

    #[test]
    fn written_follows_the_write_pointer_up_to_the_capacity() {
        let zone = |wp, cond| Zone {
            start: 1 << 20,
            len: 4096,
            capacity: 3072,
            wp,
            cond,
            reset_recommended: false,
        };
        assert_eq!(zone(1 << 20, ZoneCond::Empty).written(), 0);
        assert_eq!(zone((1 << 20) + 8, ZoneCond::ImplicitOpen).written(), 8);
        assert_eq!(
            zone((1 << 20) + 1024, ZoneCond::ExplicitOpen).written(),
            1024
        );
        assert_eq!(zone((1 << 20) + 2048, ZoneCond::Closed).written(), 2048);
        // A write pointer past the capacity (a device's quirk) counts as the capacity.
        assert_eq!(zone((1 << 20) + 4000, ZoneCond::Closed).written(), 3072);
        // Full, read-only and offline zones: the whole capacity, whatever the write pointer says.
        for cond in [ZoneCond::Full, ZoneCond::ReadOnly, ZoneCond::Offline] {
            assert_eq!(zone(u64::MAX, cond).written(), 3072);
        }
        assert_eq!(zone(0, ZoneCond::NotWritePointer).written(), 3072);
    }

    #[test]
    fn zone_operations_map_to_their_request_ops() {
        assert_eq!(ZoneOp::Reset.as_raw(), bindings::req_op_REQ_OP_ZONE_RESET);
        assert_eq!(ZoneOp::Open.as_raw(), bindings::req_op_REQ_OP_ZONE_OPEN);
        assert_eq!(ZoneOp::Close.as_raw(), bindings::req_op_REQ_OP_ZONE_CLOSE);
        assert_eq!(ZoneOp::Finish.as_raw(), bindings::req_op_REQ_OP_ZONE_FINISH);
    }

    #[test]
    fn the_report_callback_passes_zones_and_stops_on_errors() {
        let closed = bindings::blk_zone_cond_BLK_ZONE_COND_CLOSED;
        let mut raw = raw_zone(4096, 4096, 2048, 4096 + 512, closed);
        raw.reset = 1;
        let mut seen = None;
        let (ret, error) = report_one(&mut raw, &mut |idx, z| {
            seen = Some((idx, *z));
            Ok(())
        });
        assert_eq!((ret, error), (0, None));
        let want = Zone {
            start: 4096,
            len: 4096,
            capacity: 2048,
            wp: 4096 + 512,
            cond: ZoneCond::Closed,
            reset_recommended: true,
        };
        assert_eq!(seen, Some((3, want)));

        // The closure's error stops the report: returned to C, and kept for the caller.
        let (ret, error) = report_one(&mut raw, &mut |_, _| Err(ENOSPC));
        assert_eq!((ret, error), (ENOSPC.to_errno(), Some(ENOSPC)));

        // A condition the kernel crate does not know is the device's error, not a zone.
        let mut odd = raw_zone(0, 4096, 4096, 0, 0xee);
        let mut called = false;
        let (ret, error) = report_one(&mut odd, &mut |_, _| {
            called = true;
            Ok(())
        });
        assert_eq!((ret, error, called), (EIO.to_errno(), Some(EIO), false));
    }
}
