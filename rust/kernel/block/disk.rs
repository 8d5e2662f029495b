// SPDX-License-Identifier: GPL-2.0

//! Disk-level operations: queue limits, runtime changes to a live disk (capacity, read-only,
//! partitions, limits), the block device handed to `ioctl`, fixed major numbers, and sysfs
//! attribute groups.
//!
//! C headers: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h),
//! [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KBox, KVec},
    bindings,
    block::mq::Operations,
    error::{code::*, to_result, Error, Result},
    ffi,
    str::{CStr, CStrExt},
    sync::atomic::{Atomic, Relaxed},
    types::{ForeignOwnable, Opaque},
};
use core::{fmt, marker::PhantomData};

/// The limits a request queue places on I/O (`struct queue_limits`).
///
/// Starts from zeroes, which the block layer replaces with its defaults when the limits are
/// committed.
#[derive(Clone)]
pub struct QueueLimits(bindings::queue_limits);

impl Default for QueueLimits {
    fn default() -> Self {
        Self(pin_init::zeroed())
    }
}

/// Checks a block size: a power of two from 512 bytes to a page.
pub fn validate_block_size(size: u32) -> Result {
    if (512..=bindings::PAGE_SIZE as u32).contains(&size) && size.is_power_of_two() {
        Ok(())
    } else {
        Err(EINVAL)
    }
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

    fn set_feature(&mut self, feature: bindings::blk_features_t, on: bool) {
        if on {
            self.0.features |= feature;
        } else {
            self.0.features &= !feature;
        }
    }

    pub(crate) fn as_raw_mut(&mut self) -> &mut bindings::queue_limits {
        &mut self.0
    }
}

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

/// A live `struct gendisk`, as seen from the callbacks of its driver.
///
/// # Invariants
///
/// `self.0` is a valid `struct gendisk` that has been added to the system, and whose queue data
/// and private data were set up by [`GenDiskBuilder`](super::mq::gen_disk::GenDiskBuilder).
#[repr(transparent)]
pub struct DiskRef(Opaque<bindings::gendisk>);

impl DiskRef {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a disk built by `GenDiskBuilder` that stays added and valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::gendisk) -> &'a Self {
        // SAFETY: `DiskRef` is a transparent wrapper; validity is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::gendisk {
        self.0.get()
    }

    fn queue(&self) -> *mut bindings::request_queue {
        // SAFETY: By the type invariant the disk, and its queue, are valid.
        unsafe { (*self.as_raw()).queue }
    }

    fn kobj(&self) -> *mut bindings::kobject {
        // SAFETY: By the type invariant `part0` (the whole-disk block device) is valid.
        unsafe { &raw mut (*(*self.as_raw()).part0).bd_device.kobj }
    }

    /// The disk's name, e.g. `loop0`.
    pub fn name(&self) -> &CStr {
        // SAFETY: `disk_name` is a NUL-terminated array set before the disk was added.
        unsafe { CStr::from_char_ptr((*self.as_raw()).disk_name.as_ptr()) }
    }

    /// How many times the whole disk is open (`disk_openers()`).
    pub fn openers(&self) -> u32 {
        // SAFETY: By the type invariant the disk is valid.
        unsafe { bindings::disk_openers(self.as_raw()) }
    }

    /// The capacity in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        // SAFETY: By the type invariant the disk is valid.
        unsafe { bindings::get_capacity(self.as_raw()) }
    }

    /// Changes the capacity and tells userspace, with a change uevent even when the size stayed.
    pub fn set_capacity_and_notify(&self, sectors: u64) {
        // SAFETY: By the type invariant the disk is valid; the callee locks as needed.
        if !unsafe { bindings::set_capacity_and_notify(self.as_raw(), sectors) } {
            self.notify_change();
        }
    }

    /// Sends a `KOBJ_CHANGE` uevent for the disk.
    pub fn notify_change(&self) {
        // SAFETY: The disk's device kobject is valid while the disk is.
        unsafe { bindings::kobject_uevent(self.kobj(), bindings::kobject_action_KOBJ_CHANGE) };
    }

    /// Marks the whole disk read-only or writable.
    pub fn set_read_only(&self, read_only: bool) {
        // SAFETY: By the type invariant the disk is valid.
        unsafe { bindings::set_disk_ro(self.as_raw(), read_only) };
    }

    /// Reports a media change, so openers see the medium (e.g. a loop's file) was replaced.
    pub fn force_media_change(&self) {
        // SAFETY: By the type invariant the disk is valid.
        unsafe { bindings::disk_force_media_change(self.as_raw()) };
    }

    /// Drops cached data and sets the capacity to 0 (`invalidate_disk()`).
    pub fn invalidate(&self) {
        // SAFETY: By the type invariant the disk is valid.
        unsafe { bindings::invalidate_disk(self.as_raw()) };
    }

    /// Allows or suppresses partition scanning on the next rescan.
    pub fn set_partition_scan(&self, scan: bool) {
        // SAFETY: `state` is a bitmap that the block layer updates with atomic bit operations.
        unsafe {
            let state = &raw mut (*self.as_raw()).state;
            if scan {
                bindings::clear_bit(bindings::GD_SUPPRESS_PART_SCAN as usize, state);
            } else {
                bindings::set_bit(bindings::GD_SUPPRESS_PART_SCAN as usize, state);
            }
        }
    }

    /// Rereads the partition table (or drops all partitions when scanning is suppressed).
    ///
    /// Takes the disk's `open_mutex`: must not be called from `release`, which runs with it
    /// held (use [`ReleasedDisk::rescan_partitions`] there).
    pub fn rescan_partitions(&self) -> Result {
        // SAFETY: By the type invariant the disk is valid; `open_mutex` is initialised with it.
        unsafe {
            let disk = self.as_raw();
            bindings::mutex_lock(&raw mut (*disk).open_mutex);
            let ret = bindings::bdev_disk_changed(disk, false);
            bindings::mutex_unlock(&raw mut (*disk).open_mutex);
            to_result(ret)
        }
    }

    /// The queue's logical block size.
    pub fn logical_block_size(&self) -> u32 {
        // SAFETY: The queue is valid while the disk is; a racy read of a `u32` is harmless.
        unsafe { (*self.queue()).limits.logical_block_size }
    }

    /// Changes the queue limits: `f` edits the current limits, then the queue is frozen (all
    /// requests in flight drain) and the new limits are validated and applied.
    pub fn update_limits(&self, f: impl FnOnce(&mut QueueLimits) -> Result) -> Result {
        let q = self.queue();
        // SAFETY: The queue is valid. `queue_limits_start_update` takes `limits_lock`, which
        // every path below releases: commit on success, cancel on error.
        let mut lim = QueueLimits(unsafe { bindings::queue_limits_start_update(q) });
        if let Err(e) = f(&mut lim) {
            // SAFETY: `limits_lock` is held since `queue_limits_start_update`.
            unsafe { bindings::queue_limits_cancel_update(q) };
            return Err(e);
        }
        // SAFETY: `limits_lock` is held; the callee freezes the queue, commits and unlocks.
        to_result(unsafe { bindings::queue_limits_commit_update_frozen(q, &mut lim.0) })
    }

    /// Freezes the queue: waits until no request is in flight and holds new ones back until the
    /// returned guard is dropped.
    pub fn freeze(&self) -> QueueFreeze<'_> {
        // SAFETY: The queue is valid; the guard unfreezes it exactly once.
        let memflags = unsafe { bindings::blk_mq_freeze_queue(self.queue()) };
        QueueFreeze {
            disk: self,
            memflags,
        }
    }

    fn private(&self) -> Option<&DiskAttributes> {
        // SAFETY: `private_data` is null or points to the `DiskAttributes` that the `GenDisk`
        // owning this disk keeps alive until after `del_gendisk()`.
        unsafe {
            (*self.as_raw())
                .private_data
                .cast::<DiskAttributes>()
                .as_ref()
        }
    }

    /// Shows the disk's attribute group (set with `GenDiskBuilder::attribute_group`) in sysfs.
    pub fn show_attributes(&self) -> Result {
        let attrs = self.private().ok_or(EINVAL)?;
        if attrs.shown.xchg(1, Relaxed) == 1 {
            return Ok(());
        }
        // SAFETY: The kobject and the group, which lives as long as the disk, are valid.
        let ret = unsafe { bindings::sysfs_create_group(self.kobj(), &attrs.group) };
        if ret != 0 {
            attrs.shown.store(0, Relaxed);
        }
        to_result(ret)
    }

    /// Removes the disk's attribute group from sysfs again.
    pub fn hide_attributes(&self) {
        if let Some(attrs) = self.private() {
            if attrs.shown.xchg(0, Relaxed) == 1 {
                // SAFETY: The group was created on this kobject by `show_attributes`.
                unsafe { bindings::sysfs_remove_group(self.kobj(), &attrs.group) };
            }
        }
    }
}

/// A frozen request queue (see [`DiskRef::freeze`]); unfrozen on drop.
pub struct QueueFreeze<'a> {
    disk: &'a DiskRef,
    memflags: u32,
}

impl Drop for QueueFreeze<'_> {
    fn drop(&mut self) {
        // SAFETY: The queue was frozen by `DiskRef::freeze` with these `memflags`.
        unsafe { bindings::blk_mq_unfreeze_queue(self.disk.queue(), self.memflags) };
    }
}

/// The disk passed to [`Operations::release`], which runs with the disk's `open_mutex` held.
#[repr(transparent)]
pub struct ReleasedDisk(DiskRef);

impl ReleasedDisk {
    /// Rereads (or drops) the partitions; `open_mutex` is already held by the caller of
    /// `release`.
    pub fn rescan_partitions(&self) -> Result {
        // SAFETY: The disk is valid and `open_mutex` is held during `release`.
        to_result(unsafe { bindings::bdev_disk_changed(self.0.as_raw(), false) })
    }
}

impl core::ops::Deref for ReleasedDisk {
    type Target = DiskRef;

    fn deref(&self) -> &DiskRef {
        &self.0
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
/// `bd_prepare_to_claim()` succeeded on `bdev` with [`TemporaryClaim::holder`].
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

/// Creates devices on demand: called when a device number of a registered major is opened
/// (`mknod` + `open`) but no disk has it (`CONFIG_BLOCK_LEGACY_AUTOLOAD`).
pub trait BlkdevProbe {
    /// Creates the disk for `devt` if the driver wants to; errors are the driver's to report.
    fn probe(devt: u32);
}

/// `probe` of a block major registered with [`BlkdevRegistration::new_with_probe`].
///
/// # Safety
///
/// Called by the block layer only, with the device number being opened.
unsafe extern "C" fn probe_callback<P: BlkdevProbe>(devt: bindings::dev_t) {
    P::probe(devt);
}

/// A block major number registered for a driver (`register_blkdev()`), released on drop.
///
/// # Invariants
///
/// `major` is registered under `name` until drop.
pub struct BlkdevRegistration {
    major: u32,
    name: &'static CStr,
}

impl BlkdevRegistration {
    /// Registers the fixed major `major` under `name`: `EBUSY` when another driver holds it.
    pub fn new(major: u32, name: &'static CStr) -> Result<Self> {
        Self::register(major, name, None)
    }

    /// As [`BlkdevRegistration::new`], with `P` creating devices when a missing one is opened.
    pub fn new_with_probe<P: BlkdevProbe>(major: u32, name: &'static CStr) -> Result<Self> {
        Self::register(major, name, Some(probe_callback::<P>))
    }

    fn register(
        major: u32,
        name: &'static CStr,
        probe: Option<unsafe extern "C" fn(bindings::dev_t)>,
    ) -> Result<Self> {
        if major == 0 {
            return Err(EINVAL);
        }
        // SAFETY: `name` is a static NUL-terminated string; `probe`, if any, is a function that
        // may be called until `unregister_blkdev()` in `drop`.
        let ret = unsafe { bindings::__register_blkdev(major, name.as_char_ptr(), probe) };
        if ret != 0 {
            return Err(if ret < 0 {
                Error::from_errno(ret)
            } else {
                EBUSY
            });
        }
        // INVARIANT: registered just above.
        Ok(Self { major, name })
    }

    /// The registered major.
    pub fn major(&self) -> u32 {
        self.major
    }
}

impl Drop for BlkdevRegistration {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the major is registered under this name.
        unsafe { bindings::unregister_blkdev(self.major, self.name.as_char_ptr()) };
    }
}

/// A page-sized sysfs output buffer for [`Operations::show_attribute`].
pub struct SysfsBuffer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for SysfsBuffer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        // sysfs needs room for a trailing NUL after the text.
        let room = self.buf.len().saturating_sub(self.len + 1);
        if bytes.len() > room {
            return Err(fmt::Error);
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }
}

/// A named sysfs attribute group of read-only files under the disk's directory.
///
/// # Invariants
///
/// `group.attrs` points into `ptrs`, whose entries point into `attrs` and end with null; both
/// vectors are never resized after construction, so the pointers stay valid.
pub(crate) struct DiskAttributes {
    attrs: KVec<bindings::device_attribute>,
    ptrs: KVec<*mut bindings::attribute>,
    group: bindings::attribute_group,
    shown: Atomic<i32>,
}

impl DiskAttributes {
    pub(crate) fn new<T: Operations>(
        name: &'static CStr,
        files: &'static [&'static CStr],
    ) -> Result<KBox<Self>> {
        if !T::HAS_SHOW_ATTRIBUTE {
            return Err(EINVAL);
        }
        let mut attrs = KVec::with_capacity(files.len(), GFP_KERNEL)?;
        for file in files {
            let mut attr: bindings::device_attribute = pin_init::zeroed();
            attr.attr.name = file.as_char_ptr();
            attr.attr.mode = 0o444;
            attr.__bindgen_anon_1.show = DiskVTable::<T>::SHOW;
            // Attributes in allocated memory need a static lockdep key (`sysfs_attr_init()`).
            #[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
            {
                attr.attr.key = crate::static_lock_class!().as_ptr();
            }
            attrs.push(attr, GFP_KERNEL)?;
        }
        let mut this = KBox::new(
            Self {
                attrs,
                ptrs: KVec::with_capacity(files.len() + 1, GFP_KERNEL)?,
                group: pin_init::zeroed(),
                shown: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        for i in 0..this.attrs.len() {
            let p = &raw mut this.attrs[i].attr;
            this.ptrs.push(p, GFP_KERNEL)?;
        }
        this.ptrs.push(core::ptr::null_mut(), GFP_KERNEL)?;
        this.group.name = name.as_char_ptr();
        // INVARIANT: `ptrs` is complete and null-terminated; neither vector grows again.
        this.group.__bindgen_anon_2.attrs = this.ptrs.as_mut_ptr();
        Ok(this)
    }
}

/// `device_attribute::show` for the attributes of a `GenDiskBuilder` disk.
///
/// # Safety
///
/// Called by sysfs for an attribute of a `DiskAttributes` group on a disk built for `T`, with
/// `buf` a page.
unsafe extern "C" fn show_callback<T: Operations>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut ffi::c_char,
) -> isize {
    // SAFETY: The attribute belongs to a disk's device: `dev` is the `bd_device` of its `part0`.
    let bdev = unsafe { crate::container_of!(dev, bindings::block_device, bd_device) };
    // SAFETY: The disk is alive while its sysfs files exist.
    let disk = unsafe { (*bdev).bd_disk };
    // SAFETY: `queuedata` was set by `GenDiskBuilder::build` with `into_foreign`; it is released
    // only after `del_gendisk()`, which removes (and drains) this file.
    let data = unsafe { T::QueueData::borrow((*(*disk).queue).queuedata) };
    // SAFETY: The attribute's name is the static string given to `DiskAttributes::new`.
    let name = unsafe { CStr::from_char_ptr((*attr).attr.name) };
    let mut out = SysfsBuffer {
        // SAFETY: sysfs passes a zeroed page-sized buffer.
        buf: unsafe { core::slice::from_raw_parts_mut(buf.cast(), bindings::PAGE_SIZE) },
        len: 0,
    };
    match T::show_attribute(data, name, &mut out) {
        Ok(()) => out.len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// [`Operations::ioctl`] or [`Operations::compat_ioctl`] of `T`.
type IoctlHandler<T> = fn(
    <<T as Operations>::QueueData as ForeignOwnable>::Borrowed<'_>,
    &BlockDevice,
    OpenMode,
    u32,
    usize,
) -> Result<i32>;

/// The `block_device_operations` of a `GenDiskBuilder` disk, built from `T`'s hooks.
pub(crate) struct DiskVTable<T: Operations>(PhantomData<T>);

impl<T: Operations> DiskVTable<T> {
    /// # Safety
    ///
    /// `disk` must be a disk built for `T` whose `queuedata` is live.
    unsafe fn queue_data<'a>(
        disk: *mut bindings::gendisk,
    ) -> <T::QueueData as ForeignOwnable>::Borrowed<'a> {
        // SAFETY: `queuedata` came from `into_foreign` in `GenDiskBuilder::build` and is released
        // only when the `GenDisk` drops, after `del_gendisk()`; an opener pins the module (the
        // table's `owner`), so the `GenDisk` outlives every callback below.
        unsafe { T::QueueData::borrow((*(*disk).queue).queuedata) }
    }

    /// `block_device_operations::open`.
    ///
    /// # Safety
    ///
    /// Called by the block layer only, on a live disk built for `T`.
    unsafe extern "C" fn open_callback(disk: *mut bindings::gendisk, mode: u32) -> ffi::c_int {
        // SAFETY: The block layer calls `open` on a live disk.
        let (data, disk_ref) = unsafe { (Self::queue_data(disk), DiskRef::from_raw(disk)) };
        match T::open(data, disk_ref, OpenMode(mode)) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// `block_device_operations::release`.
    ///
    /// # Safety
    ///
    /// Called by the block layer only, on a live disk built for `T`, with `open_mutex` held.
    unsafe extern "C" fn release_callback(disk: *mut bindings::gendisk) {
        // SAFETY: The block layer calls `release` on a live disk with `open_mutex` held.
        let (data, released) = unsafe {
            (
                Self::queue_data(disk),
                &*core::ptr::from_ref(DiskRef::from_raw(disk)).cast::<ReleasedDisk>(),
            )
        };
        T::release(data, released);
    }

    /// `block_device_operations::ioctl`.
    ///
    /// # Safety
    ///
    /// Called by the block layer only, on an open block device of a disk built for `T`.
    unsafe extern "C" fn ioctl_callback(
        bdev: *mut bindings::block_device,
        mode: u32,
        cmd: ffi::c_uint,
        arg: ffi::c_ulong,
    ) -> ffi::c_int {
        // SAFETY: As this function requires.
        unsafe { Self::dispatch_ioctl(bdev, mode, cmd, arg, T::ioctl) }
    }

    /// `block_device_operations::compat_ioctl`.
    ///
    /// # Safety
    ///
    /// As for `ioctl_callback`.
    unsafe extern "C" fn compat_ioctl_callback(
        bdev: *mut bindings::block_device,
        mode: u32,
        cmd: ffi::c_uint,
        arg: ffi::c_ulong,
    ) -> ffi::c_int {
        // SAFETY: As this function requires.
        unsafe { Self::dispatch_ioctl(bdev, mode, cmd, arg, T::compat_ioctl) }
    }

    /// Calls `handler` with the disk's queue data and the block device.
    ///
    /// # Safety
    ///
    /// `bdev` is an open block device of a live disk built for `T`.
    unsafe fn dispatch_ioctl(
        bdev: *mut bindings::block_device,
        mode: u32,
        cmd: ffi::c_uint,
        arg: ffi::c_ulong,
        handler: IoctlHandler<T>,
    ) -> ffi::c_int {
        // SAFETY: `bdev` is open, so its disk is live (this function's requirement).
        let (data, bdev) = unsafe {
            (
                Self::queue_data((*bdev).bd_disk),
                BlockDevice::from_raw(bdev),
            )
        };
        match handler(data, bdev, OpenMode(mode), cmd, arg) {
            Ok(ret) => ret,
            Err(e) => e.to_errno(),
        }
    }

    const TABLE: bindings::block_device_operations = bindings::block_device_operations {
        submit_bio: None,
        open: if T::HAS_OPEN {
            Some(Self::open_callback)
        } else {
            None
        },
        release: if T::HAS_RELEASE {
            Some(Self::release_callback)
        } else {
            None
        },
        ioctl: if T::HAS_IOCTL {
            Some(Self::ioctl_callback)
        } else {
            None
        },
        compat_ioctl: if T::HAS_COMPAT_IOCTL {
            Some(Self::compat_ioctl_callback)
        } else {
            None
        },
        check_events: None,
        unlock_native_capacity: None,
        getgeo: None,
        set_read_only: None,
        swap_slot_free_notify: None,
        report_zones: None,
        devnode: None,
        alternative_gpt_sector: None,
        get_unique_id: None,
        owner: match T::OWNER {
            Some(module) => module.as_ptr(),
            None => core::ptr::null_mut(),
        },
        pr_ops: core::ptr::null_mut(),
        free_disk: None,
        poll_bio: None,
    };

    /// The `show` of the disk's attributes; a constant, so drivers without attributes do not
    /// instantiate it.
    #[allow(clippy::type_complexity)]
    const SHOW: Option<
        unsafe extern "C" fn(
            *mut bindings::device,
            *mut bindings::device_attribute,
            *mut ffi::c_char,
        ) -> isize,
    > = if T::HAS_SHOW_ATTRIBUTE {
        Some(show_callback::<T>)
    } else {
        None
    };

    pub(crate) const fn build() -> &'static bindings::block_device_operations {
        &Self::TABLE
    }
}

/// A reference on a module that keeps it loaded (`try_module_get()` / `module_put()`), e.g.
/// while a device is configured, as the C loop driver does while bound.
///
/// # Invariants
///
/// Holds one reference on `module` until drop.
pub struct ModuleRef {
    module: *mut bindings::module,
}

// SAFETY: Module references may be dropped on any thread.
unsafe impl Send for ModuleRef {}
// SAFETY: `ModuleRef` has no `&self` methods that touch the module.
unsafe impl Sync for ModuleRef {}

impl ModuleRef {
    /// Takes a reference; fails with `ENODEV` once the module is being unloaded.
    pub fn get(module: &'static crate::ThisModule) -> Result<Self> {
        let module = module.as_ptr();
        // SAFETY: `try_module_get` accepts any module pointer, including null (built-in).
        if unsafe { bindings::try_module_get(module) } {
            // INVARIANT: the reference was taken above.
            Ok(Self { module })
        } else {
            Err(ENODEV)
        }
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold a reference.
        unsafe { bindings::module_put(self.module) };
    }
}

#[macros::kunit_tests(rust44_block_disk)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_are_powers_of_two_up_to_a_page() {
        for ok in [512, 1024, 2048, 4096] {
            assert!(validate_block_size(ok).is_ok());
        }
        for bad in [0, 256, 768, 1000, 8192] {
            assert_eq!(validate_block_size(bad), Err(EINVAL));
        }
    }

    #[test]
    fn limits_set_sizes_and_features() {
        let mut lim = QueueLimits::default();
        assert_eq!(lim.set_block_size(1000), Err(EINVAL));
        // A refused size changes nothing.
        assert_eq!(lim.logical_block_size(), 0);
        assert!(lim.set_block_size(4096).is_ok());
        assert_eq!(lim.0.physical_block_size, 4096);
        assert_eq!(lim.0.io_min, 4096);
        lim.set_write_cache(true);
        lim.set_fua(true);
        assert_eq!(
            lim.0.features & (bindings::BLK_FEAT_WRITE_CACHE | bindings::BLK_FEAT_FUA),
            bindings::BLK_FEAT_WRITE_CACHE | bindings::BLK_FEAT_FUA
        );
        lim.set_write_cache(false);
        assert_eq!(lim.0.features & bindings::BLK_FEAT_WRITE_CACHE, 0);
        lim.set_discard(0, 4096);
        // No granularity without discard.
        assert_eq!(lim.0.discard_granularity, 0);
        lim.set_discard(1 << 20, 4096);
        assert_eq!(
            (lim.0.max_hw_discard_sectors, lim.0.discard_granularity),
            (1 << 20, 4096)
        );
    }

    #[test]
    fn open_mode_bits() {
        let mode = OpenMode::from_raw(bindings::BLK_OPEN_WRITE);
        assert!(mode.is_write() && !mode.is_exclusive());
        assert!(OpenMode::from_raw(bindings::BLK_OPEN_EXCL).is_exclusive());
        assert!(!OpenMode::from_raw(0).is_write());
    }

    #[test]
    fn sysfs_buffer_keeps_room_for_the_nul() {
        use core::fmt::Write;
        let mut page = [0u8; 8];
        let mut out = SysfsBuffer {
            buf: &mut page,
            len: 0,
        };
        assert!(write!(out, "1234567").is_ok());
        // The eighth byte belongs to the NUL.
        assert!(write!(out, "8").is_err());
        assert_eq!(out.len, 7);
        assert_eq!(&page[..7], b"1234567");
    }

    #[test]
    fn fixed_major_is_exclusive() {
        // Major 0 asks for a dynamic major, which this type does not hand out.
        assert!(BlkdevRegistration::new(0, c"rust44_kunit").is_err());
        // 240 is in the range devices.txt keeps for local/experimental use.
        let first = BlkdevRegistration::new(240, c"rust44_kunit");
        assert!(first.is_ok());
        assert_eq!(
            BlkdevRegistration::new(240, c"rust44_kunit2").err(),
            Some(EBUSY)
        );
        drop(first);
        assert!(BlkdevRegistration::new(240, c"rust44_kunit").is_ok());
    }
}
