// SPDX-License-Identifier: GPL-2.0

//! Queue limits (`struct queue_limits`).

use crate::{
    bindings,
    error::{to_result, Result},
};

/// The limits a request queue places on I/O (`struct queue_limits`).
///
/// Starts from zeroes, which the block layer replaces with its defaults when the limits are
/// committed.
///
/// # Examples
///
/// The limits of a device with 4 KiB blocks, a volatile write cache that honours FUA, and discard
/// in 4 KiB units, as a driver hands them to `GenDiskBuilder::limits`:
///
/// ```
/// use kernel::block::disk::QueueLimits;
///
/// let mut lim = QueueLimits::default();
/// lim.set_block_size(4096)?;
/// lim.set_write_cache(true);
/// lim.set_fua(true);
/// lim.set_discard(u32::MAX >> 9, 4096);
/// assert_eq!(lim.logical_block_size(), 4096);
///
/// // A block size the block layer would refuse is refused here, and changes nothing.
/// assert_eq!(lim.set_block_size(1000), Err(EINVAL));
/// assert_eq!(lim.logical_block_size(), 4096);
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
#[repr(transparent)]
pub struct QueueLimits(pub(super) bindings::queue_limits);

impl Default for QueueLimits {
    fn default() -> Self {
        Self(pin_init::zeroed())
    }
}

/// Checks a block size as the block layer does (`blk_validate_block_size()`): a power of two
/// from 512 bytes to a page, or to 64 KiB where the page cache has large folios.
pub fn validate_block_size(size: u32) -> Result {
    // SAFETY: A pure check of a number.
    to_result(unsafe { bindings::blk_validate_block_size(size as usize) })
}

impl QueueLimits {
    /// Sets the logical and physical block size and the minimum I/O size to `size`.
    pub fn set_block_size(&mut self, size: u32) -> Result {
        validate_block_size(size)?;
        self.0.logical_block_size = size;
        self.0.physical_block_size = size;
        self.0.io_min = size;
        Ok(())
    }

    /// The logical block size.
    pub fn logical_block_size(&self) -> u32 {
        self.0.logical_block_size
    }

    /// Sets the largest request, in sectors.
    pub fn set_max_hw_sectors(&mut self, sectors: u32) {
        self.0.max_hw_sectors = sectors;
    }

    /// Sets how large a discard may be (0: no discard) and its granularity in bytes.
    pub fn set_discard(&mut self, max_sectors: u32, granularity: u32) {
        self.0.max_hw_discard_sectors = max_sectors;
        self.0.discard_granularity = if max_sectors != 0 { granularity } else { 0 };
    }

    /// Sets how large a write-zeroes request may be (0: not supported).
    pub fn set_max_write_zeroes_sectors(&mut self, sectors: u32) {
        self.0.max_write_zeroes_sectors = sectors;
    }

    /// Sets the alignment mask data buffers must satisfy (e.g. 511).
    pub fn set_dma_alignment(&mut self, mask: u32) {
        self.0.dma_alignment = mask;
    }

    /// Declares a volatile write cache, so the block layer sends flushes.
    pub fn set_write_cache(&mut self, on: bool) {
        self.set_feature(bindings::BLK_FEAT_WRITE_CACHE, on);
    }

    /// Declares forced-unit-access support, so FUA writes arrive as such.
    pub fn set_fua(&mut self, on: bool) {
        self.set_feature(bindings::BLK_FEAT_FUA, on);
    }

    /// Declares rotational media.
    pub fn set_rotational(&mut self, on: bool) {
        self.set_feature(bindings::BLK_FEAT_ROTATIONAL, on);
    }

    /// Offers polled I/O (`io_poll`). blk-mq turns it on for every tag set with a poll queue
    /// map; a driver whose polling depends on what it is bound to turns it off until then, so
    /// polled I/O fails with `EOPNOTSUPP` before it reaches the driver.
    pub fn set_poll(&mut self, on: bool) {
        self.set_feature(bindings::BLK_FEAT_POLL, on);
    }

    /// Declares a zoned device (`BLK_FEAT_ZONED`), or not: a stacking driver that manages the
    /// zones of the devices below itself (a flash translation layer) clears what their limits
    /// brought, and offers random writes.
    pub fn set_zoned(&mut self, on: bool) {
        self.set_feature(bindings::BLK_FEAT_ZONED, on);
    }

    fn set_feature(&mut self, feature: bindings::blk_features_t, on: bool) {
        if on {
            self.0.features |= feature;
        } else {
            self.0.features &= !feature;
        }
    }

    /// Sets the minimum I/O size (`io_min`) in bytes: smaller I/O costs a read-modify-write.
    pub fn set_io_min(&mut self, bytes: u32) {
        self.0.io_min = bytes;
    }

    /// Sets the optimal I/O size (`io_opt`) in bytes, e.g. a RAID array's full stripe.
    pub fn set_io_opt(&mut self, bytes: u32) {
        self.0.io_opt = bytes;
    }

    /// The limits behind a raw pointer, as a stacking driver is handed them to adjust.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads and writes and not accessed otherwise for `'a`.
    pub(crate) unsafe fn from_raw_mut<'a>(ptr: *mut bindings::queue_limits) -> &'a mut Self {
        // SAFETY: `QueueLimits` is a transparent wrapper; the caller promises exclusive access.
        unsafe { &mut *ptr.cast() }
    }

    pub(crate) fn as_raw_mut(&mut self) -> &mut bindings::queue_limits {
        &mut self.0
    }
}
