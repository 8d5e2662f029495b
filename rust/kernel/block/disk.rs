// SPDX-License-Identifier: GPL-2.0

//! Disk-level operations: queue limits, runtime changes to a live disk (capacity, read-only,
//! partitions, limits), the block device handed to `ioctl`, fixed major numbers, and sysfs
//! attribute groups.
//!
//! C headers: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h),
//! [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use crate::{
    alloc::KBox,
    bindings,
    block::mq::Operations,
    error::{code::*, to_result, Result},
    ffi,
    str::{CStr, CStrExt},
    sync::atomic::Relaxed,
    types::{ForeignOwnable, Opaque},
};
use core::marker::PhantomData;

mod bdev;
mod limits;
mod registration;
mod sysfs;

pub use bdev::{BlockDevice, OpenMode, TemporaryClaim};
pub use limits::{validate_block_size, QueueLimits};
pub use registration::{BlkdevProbe, BlkdevRegistration, ModuleRef};
use sysfs::show_callback;
pub(crate) use sysfs::DiskAttributes;
pub use sysfs::SysfsBuffer;

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

    /// The whole disk's device number (`disk_devt()`), as the kernel's `dev_t`.
    pub fn devt(&self) -> u32 {
        // SAFETY: By the type invariant the disk is valid; its numbers are set before it is added.
        let (major, minor) = unsafe { ((*self.as_raw()).major, (*self.as_raw()).first_minor) };
        ((major as u32) << bindings::MINORBITS) | minor as u32
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

    /// Like [`DiskRef::update_limits`], but `f` runs with the queue frozen and the limits are
    /// committed before it unfreezes, so that driver state the I/O path reads changes under the
    /// same freeze as the limits (the C drivers' `queue_limits_start_update()`,
    /// `blk_mq_freeze_queue()`, change, `queue_limits_commit_update()`, unfreeze). An error from
    /// `f` cancels the update.
    pub fn update_limits_frozen(&self, f: impl FnOnce(&mut QueueLimits) -> Result) -> Result {
        let q = self.queue();
        // SAFETY: The queue is valid. `queue_limits_start_update` takes `limits_lock` (before the
        // freeze, the block layer's lock order), which every path below releases.
        let mut lim = QueueLimits(unsafe { bindings::queue_limits_start_update(q) });
        let frozen = self.freeze();
        if let Err(e) = f(&mut lim) {
            // SAFETY: `limits_lock` is held since `queue_limits_start_update`.
            unsafe { bindings::queue_limits_cancel_update(q) };
            drop(frozen);
            return Err(e);
        }
        // SAFETY: `limits_lock` is held and the queue frozen; the callee commits and unlocks.
        let ret = to_result(unsafe { bindings::queue_limits_commit_update(q, &mut lim.0) });
        drop(frozen);
        ret
    }

    /// Turns discard and/or write-zeroes off without freezing the queue, for a driver that learns
    /// from a request in flight that its backing store cannot do them (C `loop_clear_limits()`).
    ///
    /// Only turns features off, which requests in flight tolerate, so no freeze is needed; and it
    /// could not wait for one: the caller's own request holds the queue. For the same reason it
    /// only tries `limits_lock`: an update that holds it may be freezing the queue, waiting for
    /// the caller's request. `EBUSY` when it is held; the caller may try again later.
    pub fn try_disable_discard_write_zeroes(&self, discard: bool, write_zeroes: bool) -> Result {
        let q = self.queue();
        // SAFETY: The queue and its `limits_lock` are valid.
        if unsafe { bindings::mutex_trylock(&raw mut (*q).limits_lock) } == 0 {
            return Err(EBUSY);
        }
        // SAFETY: `limits_lock` is held, so the limits are stable: this is what
        // `queue_limits_start_update()` does, but without waiting for the lock.
        let mut lim = QueueLimits(unsafe { (*q).limits });
        if discard {
            lim.set_discard(0, 0);
        }
        if write_zeroes {
            lim.set_max_write_zeroes_sectors(0);
        }
        // SAFETY: `limits_lock` is held; the callee commits and unlocks.
        to_result(unsafe { bindings::queue_limits_commit_update(q, &mut lim.0) })
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
        // SAFETY: `private_data` points to the `DiskPrivate` that `GenDiskBuilder::build` gave
        // the disk; it is freed only by `release_disk_data`, when nothing can reach the disk.
        let private = unsafe { &*(*self.as_raw()).private_data.cast::<DiskPrivate>() };
        private.attributes.as_deref()
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
    ///
    /// This waits for every reader inside [`Operations::show_attribute`] to leave: calling it
    /// with a lock held that `show_attribute` takes is a deadlock.
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

/// What a disk built by `GenDiskBuilder` owns, at `gendisk->private_data`: its queue data
/// (also at `queue->queuedata`, for the I/O path) and its attribute group.
///
/// `free_disk` cannot use `queue->queuedata`: the disk's reference on the request queue is
/// dropped just before it runs.
pub(crate) struct DiskPrivate {
    /// From `T::QueueData::into_foreign()`; converted back once, by `release_disk_data`.
    pub(crate) queue_data: *mut ffi::c_void,
    pub(crate) attributes: Option<KBox<DiskAttributes>>,
}

/// Frees the queue data and the attribute group of a disk built by `GenDiskBuilder::build`.
///
/// # Safety
///
/// `disk` is a valid disk built for `T`, whose queue data and files nothing can reach any more
/// (no callback runs or will run), and this is called once for it.
pub(crate) unsafe fn release_disk_data<T: Operations>(disk: *mut bindings::gendisk) {
    // SAFETY: `private_data` holds the `DiskPrivate` from `KBox::into_raw` in `build`, freed only
    // here, once (the function's requirement).
    let private = unsafe { KBox::from_raw((*disk).private_data.cast::<DiskPrivate>()) };
    // SAFETY: `queue_data` came from `T::QueueData::into_foreign()`; nothing borrows it any more.
    drop(unsafe { T::QueueData::from_foreign(private.queue_data) });
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
    /// `disk` must be a disk built for `T`, and the caller must hold a reference to it for `'a`.
    unsafe fn queue_data<'a>(
        disk: *mut bindings::gendisk,
    ) -> <T::QueueData as ForeignOwnable>::Borrowed<'a> {
        // SAFETY: The queue data came from `into_foreign` in `GenDiskBuilder::build`. A driver
        // with callbacks has an `OWNER` (asserted in `TABLE`), so its queue data is freed by
        // `free_disk`, which runs only once the last reference to the disk is gone: not while
        // the block layer calls `open`, `release` or `ioctl` (it holds a reference for each) nor
        // while a sysfs `show` runs (`del_gendisk()` drains those first). `private_data` is used
        // rather than `queue->queuedata` so this also holds on the release path.
        unsafe {
            let private = &*(*disk).private_data.cast::<DiskPrivate>();
            T::QueueData::borrow(private.queue_data)
        }
    }

    /// `block_device_operations::free_disk`: the last reference to the disk is gone.
    ///
    /// # Safety
    ///
    /// Called by the block layer only, once, for a disk built for `T` that was added.
    unsafe extern "C" fn free_disk_callback(disk: *mut bindings::gendisk) {
        // SAFETY: No reference to the disk is left, so no callback runs or will run; the block
        // layer calls this once.
        unsafe { release_disk_data::<T>(disk) };
    }

    /// Whether `T` has a callback that reaches the queue data outside the I/O path.
    const HAS_HOOKS: bool = T::HAS_OPEN
        || T::HAS_RELEASE
        || T::HAS_IOCTL
        || T::HAS_COMPAT_IOCTL
        || T::HAS_SHOW_ATTRIBUTE;

    /// `block_device_operations::open`.
    ///
    /// # Safety
    ///
    /// Called by the block layer only, on a live disk built for `T`.
    unsafe extern "C" fn open_callback(disk: *mut bindings::gendisk, mode: u32) -> ffi::c_int {
        // SAFETY: The block layer calls `open` on a live disk.
        let (data, disk_ref) = unsafe { (Self::queue_data(disk), DiskRef::from_raw(disk)) };
        match T::open(data, disk_ref, OpenMode::from_raw(mode)) {
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
        match handler(data, bdev, OpenMode::from_raw(mode), cmd, arg) {
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
        // The module must stay loaded while an opener can call back into it, and until its
        // `free_disk` has run; a driver without callbacks frees its data in `GenDisk::drop`.
        owner: match T::OWNER {
            Some(module) => module.as_ptr(),
            None if Self::HAS_HOOKS => {
                panic!("a block driver with open, release, ioctl or attributes must set OWNER")
            }
            None => core::ptr::null_mut(),
        },
        pr_ops: core::ptr::null_mut(),
        free_disk: if T::OWNER.is_some() {
            Some(Self::free_disk_callback)
        } else {
            None
        },
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

#[macros::kunit_tests(rust44_block_disk)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_are_powers_of_two_up_to_a_page() {
        for ok in [512, 1024, 2048, 4096] {
            assert!(validate_block_size(ok).is_ok());
        }
        for bad in [0, 256, 768, 1000, 4096 * 3, 128 * 1024] {
            assert_eq!(validate_block_size(bad), Err(EINVAL));
        }
        // Above a page only where the page cache has large folios, as in C.
        assert_eq!(
            validate_block_size(8192).is_ok(),
            cfg!(CONFIG_TRANSPARENT_HUGEPAGE)
        );
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
    fn sysfs_buffer_takes_bytes_that_are_not_utf8() {
        let mut page = [0u8; 8];
        let mut out = SysfsBuffer {
            buf: &mut page,
            len: 0,
        };
        assert_eq!(out.write_bytes(b"/a\xff\xfe"), Ok(()));
        // Four bytes do not fit in the three left before the NUL: refused whole.
        assert_eq!(out.write_bytes(b"wxyz"), Err(EOVERFLOW));
        assert_eq!(out.len, 4);
        assert_eq!(&page[..4], b"/a\xff\xfe");
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
