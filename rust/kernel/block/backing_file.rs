// SPDX-License-Identifier: GPL-2.0

//! File-backed block I/O: a file taken from a user's file descriptor, and requests carried out
//! on it with `read_iter`/`write_iter` through a kiocb whose completion ends the request, plus
//! flush (fsync) and discard/write-zeroes (fallocate).
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/uio.h`](srctree/include/linux/uio.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KBox, KVec},
    bindings,
    error::{code::*, to_result, Result},
    ffi,
    fs::{file::LocalFile, File},
    new_mutex,
    prelude::*,
    str::CStrExt,
    sync::{aref::ARef, Mutex, SetOnce},
};
use core::pin::Pin;

mod kiocb;
mod poll;

use kiocb::FileIo;
pub use kiocb::{IoMode, Retries};
pub use poll::PolledIos;

/// What kind of object a backing file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackingKind {
    /// A regular file.
    Regular,
    /// A block device, with its device number.
    BlockDevice(u32),
}

/// Identity of a backing file as `stat` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileIdentity {
    /// Device of the file system holding the file.
    pub dev: u32,
    /// Inode number.
    pub ino: u64,
    /// Device number the file stands for (block devices).
    pub rdev: u32,
}

/// How `fallocate` changes a range of a backing file; the file size never changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallocMode {
    /// Deallocate the range: it reads back as zeroes (`FALLOC_FL_PUNCH_HOLE`).
    PunchHole,
    /// Make the range read back as zeroes, keeping it allocated (`FALLOC_FL_ZERO_RANGE`).
    ZeroRange,
}

/// Whether `stat` runs the security hook (`vfs_getattr()`) or not (`vfs_getattr_nosec()`, as the
/// C loop driver does for the size it reads on every capacity change).
#[derive(Clone, Copy)]
enum Getattr {
    Checked,
    NoSecurity,
}

/// A file taken from a descriptor, with the operations a backing file needs (`read_iter`, and
/// `write_iter` when open for writing), whose kind is not checked yet.
///
/// For drivers that must refuse in C's order: the C loop driver checks a descriptor and those
/// operations, then the device's own state (`EBUSY`, `ENXIO`), and only then what kind of file
/// it is; [`BackingFile::from_fd`] does both steps at once.
///
/// # Invariants
///
/// `file`'s file operations have `read_iter`, and `write_iter` when the file is open for writing.
pub struct BackingCandidate {
    file: ARef<File>,
}

impl BackingCandidate {
    /// Takes the file behind the caller's descriptor `fd`: `EBADF` when there is none, `EINVAL`
    /// when it cannot be read (or written, though open for writing) with iterators.
    ///
    /// # Safety
    ///
    /// The calling thread must not be inside an `fdget_pos()` on the file behind `fd` (as in a
    /// `read`/`write` system call on that very file). An `ioctl` handler meets this: the ioctl
    /// system call takes no `fdget_pos()`.
    pub unsafe fn from_fd(fd: u32) -> Result<Self> {
        let local = LocalFile::fget(fd).map_err(|_| EBADF)?;
        // SAFETY: No `fdget_pos` is active on this file in this thread (the function's
        // requirement), and the file is shared with other threads only as an `ARef<File>`.
        let file = unsafe { LocalFile::assume_no_fdget_pos(local) };
        let raw = file.as_ptr();
        // SAFETY: `raw` is a valid file, so its operations are valid.
        let (has_read, has_write, writable) = unsafe {
            let fop = (*raw).f_op;
            (
                (*fop).read_iter.is_some(),
                (*fop).write_iter.is_some(),
                (*raw).f_mode & bindings::FMODE_WRITE != 0,
            )
        };
        if !has_read || (writable && !has_write) {
            return Err(EINVAL);
        }
        // INVARIANT: checked just above.
        Ok(Self { file })
    }

    /// The backing file, or `EINVAL` when it is neither a regular file nor a block device.
    pub fn into_backing(self) -> Result<BackingFile> {
        let raw = self.file.as_ptr();
        // SAFETY: `raw` is a valid file, so its mapping host (the inode) is valid.
        let mode = u32::from(unsafe { (*(*(*raw).f_mapping).host).i_mode });
        let kind = mode & bindings::S_IFMT;
        if kind != bindings::S_IFREG && kind != bindings::S_IFBLK {
            return Err(EINVAL);
        }
        // INVARIANT: the operations by `Self`'s invariant, the kind checked just above.
        Ok(BackingFile { file: self.file })
    }
}

/// A regular file or block device that a block driver stores its data in.
///
/// # Invariants
///
/// `file` refers to a regular file or a block device whose file operations have `read_iter`,
/// and `write_iter` when the file is open for writing.
pub struct BackingFile {
    file: ARef<File>,
}

impl BackingFile {
    /// Takes the file behind the caller's descriptor `fd`: `EBADF` when there is none, `EINVAL`
    /// when it is neither a regular file nor a block device or cannot be read (or written,
    /// though open for writing) with iterators.
    ///
    /// # Safety
    ///
    /// The calling thread must not be inside an `fdget_pos()` on the file behind `fd` (as in a
    /// `read`/`write` system call on that very file). An `ioctl` handler meets this: the ioctl
    /// system call takes no `fdget_pos()`.
    pub unsafe fn from_fd(fd: u32) -> Result<Self> {
        // SAFETY: The caller's guarantee is the one `BackingCandidate::from_fd` needs.
        unsafe { BackingCandidate::from_fd(fd) }?.into_backing()
    }

    fn raw(&self) -> *mut bindings::file {
        self.file.as_ptr()
    }

    fn inode(&self) -> *mut bindings::inode {
        // SAFETY: A valid file has a valid mapping whose host is its inode.
        unsafe { (*(*self.raw()).f_mapping).host }
    }

    /// The file as a VFS file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Regular file or block device.
    pub fn kind(&self) -> BackingKind {
        let inode = self.inode();
        // SAFETY: The inode is valid while we hold the file.
        unsafe {
            if u32::from((*inode).i_mode) & bindings::S_IFMT == bindings::S_IFBLK {
                BackingKind::BlockDevice((*inode).i_rdev)
            } else {
                BackingKind::Regular
            }
        }
    }

    /// Whether the file was opened for writing and can be written.
    pub fn is_writable(&self) -> bool {
        // SAFETY: The file is valid while we hold it.
        unsafe {
            (*self.raw()).f_mode & bindings::FMODE_WRITE != 0
                && (*(*self.raw()).f_op).write_iter.is_some()
        }
    }

    /// Whether the descriptor was opened with `O_DIRECT`.
    pub fn opened_direct(&self) -> bool {
        self.file.flags() & bindings::O_DIRECT != 0
    }

    /// Whether the file system can do direct I/O on this file (`FMODE_CAN_ODIRECT`).
    pub fn can_direct_io(&self) -> bool {
        // SAFETY: The file is valid while we hold it.
        unsafe { (*self.raw()).f_mode & bindings::FMODE_CAN_ODIRECT != 0 }
    }

    /// For a regular file that supports `fallocate`, the granule that punching holes works in
    /// (the file system's block size).
    pub fn fallocate_granularity(&self) -> Option<u32> {
        // SAFETY: The file is valid while we hold it.
        let has_fallocate = unsafe { (*(*self.raw()).f_op).fallocate.is_some() };
        if self.kind() != BackingKind::Regular || !has_fallocate {
            return None;
        }
        let st = self
            .stat(Getattr::NoSecurity, bindings::STATX_BASIC_STATS, 0)
            .ok()?;
        (st.blksize != 0).then_some(st.blksize)
    }

    /// For a block device, the zeroing it offers: its write-zeroes limit in sectors and its
    /// discard granularity (`bdev_write_zeroes_sectors()`, `bdev_discard_granularity()`). The C
    /// loop driver mirrors them as its own discard and write-zeroes limits: `fallocate` on a
    /// block device zeroes (`blkdev_issue_zeroout()`). `None` for a regular file.
    pub fn block_device_zeroing(&self) -> Option<(u32, u32)> {
        if !matches!(self.kind(), BackingKind::BlockDevice(_)) {
            return None;
        }
        let bdev = self.backing_bdev()?;
        // SAFETY: See `backing_bdev`: the device, and so its queue, is valid while we hold the
        // file; the limits are plain words, read as C's inline accessors do.
        unsafe {
            let lim = &raw const (*(*bdev).bd_queue).limits;
            Some(((*lim).max_write_zeroes_sectors, (*lim).discard_granularity))
        }
    }

    /// `stat` of the file's path: only the fields in `mask` are guaranteed.
    fn stat(&self, how: Getattr, mask: u32, flags: u32) -> Result<bindings::kstat> {
        let mut st: bindings::kstat = pin_init::zeroed();
        // SAFETY: The file, and so its path, is valid while we hold it; `st` is a writable kstat.
        let ret = unsafe {
            let path = &raw const (*self.raw()).__bindgen_anon_1.f_path;
            match how {
                Getattr::Checked => bindings::vfs_getattr(path, &mut st, mask, flags),
                Getattr::NoSecurity => bindings::vfs_getattr_nosec(path, &mut st, mask, flags),
            }
        };
        to_result(ret).map(|()| st)
    }

    /// Whether the file can be synced (`f_op->fsync`).
    pub fn can_fsync(&self) -> bool {
        // SAFETY: The file is valid while we hold it.
        unsafe { (*(*self.raw()).f_op).fsync.is_some() }
    }

    /// The block device under the file: the device itself, or the one holding its file system
    /// (none for file systems without one, e.g. tmpfs). It stays valid while we hold the file.
    fn backing_bdev(&self) -> Option<*mut bindings::block_device> {
        let inode = self.inode();
        // SAFETY: The inode and its super block are valid while we hold the file; a block
        // device file's inode belongs to that device (`file_bdev()`), which stays open while its
        // file is, and a mounted file system keeps its device open.
        let bdev = unsafe {
            if u32::from((*inode).i_mode) & bindings::S_IFMT == bindings::S_IFBLK {
                bindings::file_bdev(self.raw())
            } else {
                (*(*inode).i_sb).s_bdev
            }
        };
        (!bdev.is_null()).then_some(bdev)
    }

    /// Whether direct I/O on the file can be polled for (`IOCB_HIPRI`): the file has
    /// `iopoll` and its block device offers polled I/O (`io_poll`, e.g. NVMe with poll queues).
    pub fn can_poll(&self) -> bool {
        // SAFETY: The file is valid while we hold it.
        let has_iopoll = unsafe { (*(*self.raw()).f_op).iopoll.is_some() };
        has_iopoll
            && self.backing_bdev().is_some_and(|bdev| {
                // SAFETY: See `backing_bdev`; the helper reads the limits word once.
                unsafe { bindings::bdev_features(bdev) & bindings::BLK_FEAT_POLL != 0 }
            })
    }

    /// Whether the file's storage is rotational (a spinning disk).
    pub fn is_rotational(&self) -> bool {
        self.backing_bdev().is_some_and(|bdev| {
            // SAFETY: See `backing_bdev`.
            unsafe { bindings::bdev_rot(bdev) }
        })
    }

    /// The smallest offset alignment, in bytes, that direct I/O on the file needs, and the
    /// memory alignment mask for its buffers (from `statx(STATX_DIOALIGN)`, else the block
    /// device's logical block size, else a sector).
    pub fn direct_io_alignment(&self) -> (u32, u32) {
        if let Ok(st) = self.stat(Getattr::Checked, bindings::STATX_DIOALIGN, 0) {
            if st.result_mask & bindings::STATX_DIOALIGN != 0 && st.dio_mem_align != 0 {
                let mem = core::cmp::min(st.dio_mem_align - 1, bindings::PAGE_SIZE as u32 - 1);
                return (st.dio_offset_align, mem);
            }
        }
        match self.backing_bdev() {
            // SAFETY: See `backing_bdev`.
            Some(bdev) => unsafe {
                (
                    bindings::bdev_logical_block_size(bdev),
                    bindings::bdev_dma_alignment(bdev),
                )
            },
            None => (bindings::SECTOR_SIZE, bindings::SECTOR_SIZE - 1),
        }
    }

    /// The file's size in bytes (for a block device, the device's size).
    pub fn size(&self) -> Result<u64> {
        if let BackingKind::BlockDevice(_) = self.kind() {
            // SAFETY: The inode is valid while we hold the file.
            return Ok(unsafe { bindings::i_size_read(self.inode()) }.max(0) as u64);
        }
        let st = self.stat(Getattr::NoSecurity, bindings::STATX_SIZE, 0)?;
        Ok(st.size.max(0) as u64)
    }

    /// Device and inode numbers, as `stat` gives them.
    pub fn identity(&self) -> Result<FileIdentity> {
        let st = self.stat(
            Getattr::Checked,
            bindings::STATX_INO,
            bindings::AT_STATX_SYNC_AS_STAT,
        )?;
        Ok(FileIdentity {
            dev: st.dev,
            ino: st.ino,
            rdev: st.rdev,
        })
    }

    /// Whether `other` is the same open file description.
    pub fn is_same(&self, other: &BackingFile) -> bool {
        core::ptr::eq(self.raw(), other.raw())
    }

    /// Writes the file's path into `buf` and returns it (without a NUL).
    pub fn path<'a>(&self, buf: &'a mut [u8]) -> Result<&'a [u8]> {
        let len = ffi::c_int::try_from(buf.len()).map_err(|_| EINVAL)?;
        // SAFETY: `buf` is writable for `len` bytes; the file is valid.
        let p = crate::error::from_err_ptr(unsafe {
            bindings::file_path(self.raw(), buf.as_mut_ptr().cast(), len)
        })?;
        // SAFETY: On success `file_path` returns a NUL-terminated string inside `buf`.
        let s = unsafe { crate::str::CStr::from_char_ptr(p) };
        let start = (p as usize) - (buf.as_ptr() as usize);
        let end = start + s.to_bytes().len();
        Ok(&buf[start..end])
    }

    /// Writes dirty data and metadata back (`vfs_fsync()`).
    pub fn fsync(&self) -> Result {
        // SAFETY: The file is valid while we hold it.
        to_result(unsafe { bindings::vfs_fsync(self.raw(), 0) })
    }

    /// Changes the allocation of `len` bytes at `offset`; the file's size stays.
    pub fn fallocate(&self, mode: FallocMode, offset: u64, len: u64) -> Result {
        let mode = match mode {
            FallocMode::PunchHole => bindings::FALLOC_FL_PUNCH_HOLE,
            FallocMode::ZeroRange => bindings::FALLOC_FL_ZERO_RANGE,
        } | bindings::FALLOC_FL_KEEP_SIZE;
        let offset = i64::try_from(offset).map_err(|_| EINVAL)?;
        let len = i64::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: The file is valid while we hold it.
        to_result(unsafe { bindings::vfs_fallocate(self.raw(), mode as ffi::c_int, offset, len) })
    }

    /// Keeps the file's page cache from recursing into I/O or file system reclaim (the driver
    /// writes it while serving its own I/O). The mask the page cache had before the first guard
    /// comes back when the last guard on the same page cache drops, so devices sharing a backing
    /// file (or two files of one inode) do not undo each other's restriction.
    pub fn restrict_page_cache_allocations(&self) -> Result<PageCacheGfpGuard> {
        // SAFETY: The file is valid while we hold it, and so is its mapping.
        let mapping = unsafe { (*self.raw()).f_mapping };
        let mut restrictions = gfp_restrictions()?.lock();
        let key = mapping as usize;
        if let Some(entry) = restrictions.iter_mut().find(|e| e.mapping == key) {
            entry.guards += 1;
        } else {
            restrictions.reserve(1, GFP_KERNEL)?;
            // SAFETY: The mapping is valid (see above); the accessors are the C ones.
            let saved = unsafe {
                let saved = bindings::mapping_gfp_mask(mapping);
                bindings::mapping_set_gfp_mask(
                    mapping,
                    saved & !(bindings::__GFP_IO | bindings::__GFP_FS),
                );
                saved
            };
            restrictions
                .push_within_capacity(GfpRestriction {
                    mapping: key,
                    guards: 1,
                    saved,
                })
                .map_err(|_| ENOMEM)?;
        }
        Ok(PageCacheGfpGuard {
            file: self.file.clone(),
        })
    }
}

/// One page cache whose allocation mask [`PageCacheGfpGuard`]s restrict.
struct GfpRestriction {
    /// The `struct address_space`, as an address (only compared, never followed).
    mapping: usize,
    /// Live guards on it.
    guards: usize,
    /// Its mask before the first guard.
    saved: bindings::gfp_t,
}

/// Every page cache restricted by a guard. Allocated on first use: a lock in a `static` would
/// need an init call that the kernel crate has no place for.
static GFP_RESTRICTIONS: SetOnce<Pin<KBox<Mutex<KVec<GfpRestriction>>>>> = SetOnce::new();

fn gfp_restrictions() -> Result<&'static Mutex<KVec<GfpRestriction>>> {
    if GFP_RESTRICTIONS.as_ref().is_none() {
        let lock = KBox::pin_init(new_mutex!(KVec::new(), "gfp_restrictions"), GFP_KERNEL)?;
        // The loser of a race drops its own lock and uses the winner's.
        GFP_RESTRICTIONS.populate(lock);
    }
    loop {
        if let Some(lock) = GFP_RESTRICTIONS.as_ref() {
            return Ok(lock);
        }
        // Another thread is between claiming and publishing the lock: a few instructions.
        core::hint::spin_loop();
    }
}

/// Restores a backing file's page cache allocation mask when the last guard on that page cache
/// drops (see [`BackingFile::restrict_page_cache_allocations`]).
pub struct PageCacheGfpGuard {
    file: ARef<File>,
}

impl Drop for PageCacheGfpGuard {
    fn drop(&mut self) {
        // SAFETY: We hold a reference on the file, so its mapping is valid.
        let mapping = unsafe { (*self.file.as_ptr()).f_mapping };
        // A guard exists, so the registry does.
        let Some(lock) = GFP_RESTRICTIONS.as_ref() else {
            return;
        };
        let mut restrictions = lock.lock();
        let Some(i) = restrictions
            .iter()
            .position(|e| e.mapping == mapping as usize)
        else {
            return;
        };
        restrictions[i].guards -= 1;
        if restrictions[i].guards == 0 {
            let saved = restrictions[i].saved;
            // SAFETY: The mapping is valid (see above).
            unsafe { bindings::mapping_set_gfp_mask(mapping, saved) };
            restrictions.retain(|e| e.guards != 0);
        }
    }
}

/// A scope in which every allocation of the current task behaves as `GFP_NOIO`
/// (`memalloc_noio_save()`), as block drivers need while serving I/O.
pub struct NoIoScope(u32);

impl NoIoScope {
    /// Enters the scope; it ends when the value drops.
    pub fn enter() -> Self {
        // SAFETY: Always safe; restored in `drop` on the same task.
        Self(unsafe { bindings::memalloc_noio_save() })
    }
}

impl Drop for NoIoScope {
    fn drop(&mut self) {
        // SAFETY: Restores the flags saved by `enter` on this task.
        unsafe { bindings::memalloc_noio_restore(self.0) };
    }
}

#[macros::kunit_tests(rust44_block_backing_file)]
mod tests {
    use super::*;
    use crate::mm::shmem::ShmemFile;

    const RESTRICTED: bindings::gfp_t = bindings::__GFP_IO | bindings::__GFP_FS;

    fn mask(file: &BackingFile) -> bindings::gfp_t {
        // SAFETY: The file, and so its mapping, is valid while we hold it.
        unsafe { bindings::mapping_gfp_mask((*file.raw()).f_mapping) }
    }

    #[test]
    fn page_cache_restriction_lasts_until_the_last_guard() -> Result {
        let shm = ShmemFile::new(c"rust44_kunit_gfp", 4096)?;
        // Two devices bound to one backing file.
        let first = BackingFile {
            file: shm.file().into(),
        };
        let second = BackingFile {
            file: shm.file().into(),
        };
        let before = mask(&first);
        assert_eq!(before & RESTRICTED, RESTRICTED);

        let first_guard = first.restrict_page_cache_allocations()?;
        assert_eq!(mask(&first) & RESTRICTED, 0);
        let second_guard = second.restrict_page_cache_allocations()?;
        assert_eq!(mask(&second) & RESTRICTED, 0);

        // The first device detaches: the second one still writes the page cache.
        drop(first_guard);
        assert_eq!(mask(&second) & RESTRICTED, 0);

        drop(second_guard);
        assert_eq!(mask(&first), before);
        Ok(())
    }

    #[test]
    fn other_page_caches_are_untouched() -> Result {
        let a = ShmemFile::new(c"rust44_kunit_gfp_a", 4096)?;
        let b = ShmemFile::new(c"rust44_kunit_gfp_b", 4096)?;
        let a = BackingFile {
            file: a.file().into(),
        };
        let b = BackingFile {
            file: b.file().into(),
        };
        let b_before = mask(&b);
        let guard = a.restrict_page_cache_allocations()?;
        assert_eq!(mask(&b), b_before);
        drop(guard);
        Ok(())
    }
}
