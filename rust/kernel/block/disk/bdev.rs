// SPDX-License-Identifier: GPL-2.0

//! The block device handed to `ioctl`, how it was opened, and temporary exclusive claims.

use super::DiskRef;
use crate::{
    bindings,
    error::{to_result, Result},
    ffi,
    types::Opaque,
};

/// How a block device was opened (`blk_mode_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenMode(u32);

impl OpenMode {
    /// Wraps a raw `blk_mode_t`.
    pub fn from_raw(mode: u32) -> Self {
        Self(mode)
    }

    /// Opened for writing (`BLK_OPEN_WRITE`).
    pub fn is_write(self) -> bool {
        self.0 & bindings::BLK_OPEN_WRITE != 0
    }

    /// Opened exclusively (`BLK_OPEN_EXCL`).
    pub fn is_exclusive(self) -> bool {
        self.0 & bindings::BLK_OPEN_EXCL != 0
    }
}

/// A block device (a whole disk or a partition), as handed to `ioctl`.
///
/// # Invariants
///
/// `self.0` is a valid, open `struct block_device` of a disk built by `GenDiskBuilder`.
#[repr(transparent)]
pub struct BlockDevice(Opaque<bindings::block_device>);

impl BlockDevice {
    /// # Safety
    ///
    /// `ptr` must be an open block device of a `GenDiskBuilder` disk, valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::block_device) -> &'a Self {
        // SAFETY: Transparent wrapper; validity is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    fn as_raw(&self) -> *mut bindings::block_device {
        self.0.get()
    }

    /// The disk this block device belongs to.
    pub fn disk(&self) -> &DiskRef {
        // SAFETY: An open block device's disk is valid and outlives it.
        unsafe { DiskRef::from_raw((*self.as_raw()).bd_disk) }
    }

    /// The device number (`dev_t`).
    pub fn devt(&self) -> u32 {
        // SAFETY: By the type invariant the block device is valid.
        unsafe { (*self.as_raw()).bd_dev }
    }

    /// Writes back the block device's dirty page cache.
    pub fn sync(&self) -> Result {
        // SAFETY: By the type invariant the block device is valid.
        to_result(unsafe { bindings::sync_blockdev(self.as_raw()) })
    }

    /// Drops the block device's clean page cache.
    pub fn invalidate(&self) {
        // SAFETY: By the type invariant the block device is valid.
        unsafe { bindings::invalidate_bdev(self.as_raw()) };
    }

    /// Claims the device exclusively while the returned guard lives, so nobody else can open it
    /// exclusively meanwhile (`bd_prepare_to_claim()`): `EBUSY` when someone already has. For
    /// configuration changes made through a non-exclusive open.
    pub fn claim_temporarily(&self) -> Result<TemporaryClaim<'_>> {
        // SAFETY: By the type invariant the block device is valid; the holder is a static
        // address, and no holder operations are given.
        to_result(unsafe {
            bindings::bd_prepare_to_claim(
                self.as_raw(),
                TemporaryClaim::holder(),
                core::ptr::null(),
            )
        })?;
        // INVARIANT: the claim was prepared just above.
        Ok(TemporaryClaim { bdev: self })
    }
}

/// A prepared exclusive claim on a block device, abandoned on drop (see
/// [`BlockDevice::claim_temporarily`]).
///
/// # Invariants
///
/// `bd_prepare_to_claim()` succeeded on `bdev` with the holder of temporary claims (`holder()`).
pub struct TemporaryClaim<'a> {
    bdev: &'a BlockDevice,
}

/// The address that identifies temporary claims as their holder.
static TEMPORARY_CLAIM_HOLDER: u8 = 0;

impl TemporaryClaim<'_> {
    fn holder() -> *mut ffi::c_void {
        core::ptr::from_ref(&TEMPORARY_CLAIM_HOLDER)
            .cast_mut()
            .cast()
    }
}

impl Drop for TemporaryClaim<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the claim was prepared with this holder.
        unsafe { bindings::bd_abort_claiming(self.bdev.as_raw(), Self::holder()) };
    }
}
