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
    block::mq::{Operations, ReqOp, Request, RequestSegments},
    error::{code::*, to_result, Error, Result},
    ffi,
    fs::{file::LocalFile, File},
    new_spinlock,
    prelude::*,
    str::CStrExt,
    sync::{
        aref::ARef,
        atomic::{Acquire, Atomic, Full, Relaxed, Release},
        SpinLock,
    },
};

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
    pub fn from_fd(fd: u32) -> Result<Self> {
        let local = LocalFile::fget(fd).map_err(|_| EBADF)?;
        // SAFETY: Called from an ioctl on another file, so no `fdget_pos` is active on this file
        // in this thread.
        let file = unsafe { LocalFile::assume_no_fdget_pos(local) };
        let raw = file.as_ptr();
        // SAFETY: `raw` is a valid file, so its operations and mapping host are valid.
        let (has_read, has_write, mode, writable) = unsafe {
            let fop = (*raw).f_op;
            let inode = (*(*raw).f_mapping).host;
            (
                (*fop).read_iter.is_some(),
                (*fop).write_iter.is_some(),
                u32::from((*inode).i_mode),
                (*raw).f_mode & bindings::FMODE_WRITE != 0,
            )
        };
        let kind = mode & bindings::S_IFMT;
        if !has_read || (writable && !has_write) {
            return Err(EINVAL);
        }
        if kind != bindings::S_IFREG && kind != bindings::S_IFBLK {
            return Err(EINVAL);
        }
        // INVARIANT: checked just above.
        Ok(Self { file })
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

    /// The queue of the block device under the file: the device itself, or the one holding its
    /// file system (none for file systems without one, e.g. tmpfs).
    fn backing_queue(&self) -> Option<*mut bindings::request_queue> {
        let inode = self.inode();
        // SAFETY: The inode and its super block are valid while we hold the file; a block
        // device file's inode belongs to that device (`file_bdev()`), which stays open while its
        // file is, and an open block device has a valid queue.
        unsafe {
            let bdev = if u32::from((*inode).i_mode) & bindings::S_IFMT == bindings::S_IFBLK {
                bindings::file_bdev(self.raw())
            } else {
                (*(*inode).i_sb).s_bdev
            };
            if bdev.is_null() {
                None
            } else {
                Some((*bdev).bd_queue)
            }
        }
    }

    /// Whether direct I/O on the file can be polled for (`IOCB_HIPRI`): the file has
    /// `iopoll` and its block device offers polled I/O (`io_poll`, e.g. NVMe with poll queues).
    pub fn can_poll(&self) -> bool {
        // SAFETY: The file is valid while we hold it.
        let has_iopoll = unsafe { (*(*self.raw()).f_op).iopoll.is_some() };
        has_iopoll
            && self.backing_queue().is_some_and(|q| {
                // SAFETY: See `backing_queue`; reading a limits word is a plain load.
                unsafe { (*q).limits.features & bindings::BLK_FEAT_POLL != 0 }
            })
    }

    /// Whether the file's storage is rotational (a spinning disk).
    pub fn is_rotational(&self) -> bool {
        self.backing_queue().is_some_and(|q| {
            // SAFETY: See `backing_queue`; reading a limits word is a plain load.
            unsafe { (*q).limits.features & bindings::BLK_FEAT_ROTATIONAL != 0 }
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
        match self.backing_queue() {
            Some(q) => {
                // SAFETY: See `backing_queue`.
                let (lbs, dma) =
                    unsafe { ((*q).limits.logical_block_size, (*q).limits.dma_alignment) };
                (lbs, dma)
            }
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
    /// writes it while serving its own I/O); the previous mask comes back when the guard drops.
    pub fn restrict_page_cache_allocations(&self) -> PageCacheGfpGuard {
        // SAFETY: The mapping is valid while the file is; the guard holds a file reference.
        // Like `mapping_set_gfp_mask()`, a plain store that allocations read racily.
        let old = unsafe {
            let mapping = (*self.raw()).f_mapping;
            let old = (*mapping).gfp_mask;
            (*mapping).gfp_mask = old & !(bindings::__GFP_IO | bindings::__GFP_FS);
            old
        };
        PageCacheGfpGuard {
            file: self.file.clone(),
            old,
        }
    }

    /// Carries out a read or write request on the file at byte `pos`, as `mode` says.
    ///
    /// The request ends when the I/O does: with an error for a failed or short write, and for a
    /// short read (whose buffers are zeroed).
    pub fn submit<T: Operations>(
        &self,
        rq: ARef<Request<T>>,
        pos: u64,
        mode: IoMode<'_, T>,
    ) -> Result<(), (ARef<Request<T>>, Error)> {
        let write = match rq.op() {
            ReqOp::Read => false,
            ReqOp::Write => true,
            _ => return Err((rq, EINVAL)),
        };
        let pos = match i64::try_from(pos) {
            Ok(pos) => pos,
            Err(_) => return Err((rq, EINVAL)),
        };
        let segments = match rq.segments(GFP_KERNEL) {
            Ok(s) => s,
            Err(e) => return Err((rq, e)),
        };
        let slot = match KBox::<FileIo<T>>::new_uninit(GFP_KERNEL) {
            Ok(slot) => slot,
            Err(_) => return Err((rq, ENOMEM)),
        };
        let io = slot.write(FileIo::<T> {
            iocb: pin_init::zeroed(),
            // SAFETY: `iov_iter` is plain data; `iov_iter_bvec` initialises it below.
            iter: unsafe { core::mem::zeroed() },
            segments,
            rq: Some(rq),
            file: self.file.clone(),
            refs: Atomic::new(2),
            done: Atomic::new(false),
            result: 0,
            write,
        });
        let io = KBox::into_raw(io);
        let (direct, polled) = match mode {
            IoMode::Buffered => (false, false),
            IoMode::Direct => (true, false),
            // SAFETY: `io` is valid and not yet submitted; its completion is asynchronous.
            IoMode::Polled(ios) => (true, unsafe { ios.track(io) }),
        };
        // SAFETY: `io` is a valid, exclusively owned allocation until both references (ours and
        // the completion's) are dropped in `FileIo::put`. The file outlives the I/O: `io` holds
        // a reference on it. The segments stay valid: the request is not ended before `put`.
        unsafe {
            let iocb = &raw mut (*io).iocb;
            (*iocb).ki_filp = (*io).file.as_ptr();
            (*iocb).ki_pos = pos;
            (*iocb).ki_ioprio = (*io).rq.as_ref().map_or(0, |rq| rq.ioprio());
            if direct {
                (*iocb).ki_flags = bindings::IOCB_DIRECT as ffi::c_int;
                (*iocb).ki_complete = Some(FileIo::<T>::complete_callback);
            }
            if polled {
                (*iocb).ki_flags |= bindings::IOCB_HIPRI;
            }
            let seg = &(*io).segments;
            bindings::iov_iter_bvec(
                &raw mut (*io).iter,
                if write {
                    bindings::ITER_SOURCE
                } else {
                    bindings::ITER_DEST
                },
                seg.as_ptr(),
                seg.len() as ffi::c_ulong,
                seg.bytes(),
            );
            let fop = (*(*io).file.as_ptr()).f_op;
            let ret = if write {
                bindings::kiocb_start_write(iocb);
                match (*fop).write_iter {
                    Some(f) => f(iocb, &raw mut (*io).iter),
                    None => -(bindings::EINVAL as isize),
                }
            } else {
                match (*fop).read_iter {
                    Some(f) => f(iocb, &raw mut (*io).iter),
                    None => -(bindings::EINVAL as isize),
                }
            };
            FileIo::<T>::put(io);
            if ret != -(bindings::EIOCBQUEUED as isize) {
                FileIo::<T>::complete_callback(iocb, ret as ffi::c_long);
            }
        }
        Ok(())
    }
}

/// How [`BackingFile::submit`] carries out a read or write.
pub enum IoMode<'a, T: Operations> {
    /// Through the page cache: done when `submit` returns.
    Buffered,
    /// Direct I/O (`IOCB_DIRECT`), bypassing the page cache and completing asynchronously: no
    /// thread waits for it.
    Direct,
    /// Direct I/O submitted for polling (`IOCB_HIPRI`, for requests that arrived polled): the
    /// backing device completes it only when polled, and the request ends when
    /// [`PolledIos::poll`] on this set finds it done.
    Polled(&'a PolledIos<T>),
}

/// How many in-flight polled I/Os one [`PolledIos::poll`] call handles at most.
const POLL_CHUNK: usize = 16;

/// The polled direct I/Os in flight on backing files, for a driver's `Operations::poll` to
/// poll the backing files' devices for (`file_operations.iopoll`) and end the requests whose I/O
/// completed.
///
/// A completion may run in interrupt context, so it only marks its I/O done; the next `poll`
/// removes it and ends the request. Whoever submits polled I/O polls until it completes (the
/// block layer's contract for `REQ_POLLED`), so every entry is reaped.
///
/// # Invariants
///
/// Each entry of `inflight` is a live `FileIo<T>` allocated by `BackingFile::submit` on which
/// the entry owns one reference.
#[pin_data]
pub struct PolledIos<T: Operations> {
    #[pin]
    inflight: SpinLock<KVec<PolledIo<T>>>,
}

struct PolledIo<T: Operations>(*mut FileIo<T>);

// SAFETY: A `FileIo` is reference counted and may be used from any thread: its request and file
// are `Send`, and its fields are only changed by their owner as documented there.
unsafe impl<T: Operations> Send for PolledIo<T> {}

impl<T: Operations> PolledIos<T> {
    /// An empty set with room for `capacity` I/Os: the driver's number of tags on its poll
    /// queues, since each polled request is at most one I/O.
    pub fn new(capacity: usize) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inflight <- new_spinlock!(KVec::with_capacity(capacity, GFP_KERNEL)?, "PolledIos"),
        })
    }

    /// Adds `io` to the set, with a reference of the set's; false when the set is full (the I/O
    /// is then not polled).
    ///
    /// # Safety
    ///
    /// `io` is a valid `FileIo<T>` allocated by `BackingFile::submit`, not yet submitted.
    unsafe fn track(&self, io: *mut FileIo<T>) -> bool {
        // SAFETY: `io` is valid (the caller's guarantee); the reference is taken before the
        // entry can be seen, and given back if it cannot be added.
        unsafe { (*io).refs.fetch_add(1, Relaxed) };
        let added = self.inflight.lock().push_within_capacity(PolledIo(io));
        if added.is_ok() {
            // INVARIANT: the entry owns the reference taken above.
            return true;
        }
        // SAFETY: As above; the submitter's and completion's references remain.
        unsafe { (*io).refs.fetch_sub(1, Relaxed) };
        false
    }

    /// Polls the backing devices for the I/Os in flight (never sleeps: `Operations::poll` runs
    /// under `rcu_read_lock()`), then ends the requests of the ones that completed; returns how
    /// many ended.
    pub fn poll(&self) -> u32 {
        let mut batch = [core::ptr::null_mut::<FileIo<T>>(); POLL_CHUNK];
        let pending = self.take_some(&mut batch, false);
        for &io in &batch[..pending] {
            // SAFETY: `take_some` took a reference on each I/O of `batch[..pending]`, which keeps
            // it alive until dropped here. (Usually the set's reference outlives ours; if another
            // poller reaped the I/O meanwhile, ours is the last and `put` ends the request.)
            unsafe {
                FileIo::iopoll(io);
                FileIo::put(io);
            }
        }
        let done = self.take_some(&mut batch, true);
        for &io in &batch[..done] {
            // SAFETY: `take_some` removed these from the set and gave us the set's references.
            unsafe { FileIo::put(io) };
        }
        done as u32
    }

    /// Fills `batch` with I/Os of the set: with `done`, completed ones, removed from the set
    /// with its reference; else ones in flight, each with a new reference.
    fn take_some(&self, batch: &mut [*mut FileIo<T>; POLL_CHUNK], done: bool) -> usize {
        let mut list = self.inflight.lock();
        let mut taken = 0;
        let mut i = 0;
        while i < list.len() && taken < POLL_CHUNK {
            let io = list[i].0;
            // SAFETY: By the type invariant the entry is live.
            let is_done = unsafe { (*io).done.load(Acquire) };
            if is_done != done {
                i += 1;
                continue;
            }
            batch[taken] = io;
            taken += 1;
            if done {
                let last = list.len() - 1;
                list.swap(i, last);
                list.pop();
            } else {
                // SAFETY: The set's reference keeps `io` alive while we take ours.
                unsafe { (*io).refs.fetch_add(1, Relaxed) };
                i += 1;
            }
        }
        taken
    }
}

/// Restores a backing file's page cache allocation mask on drop (see
/// [`BackingFile::restrict_page_cache_allocations`]).
pub struct PageCacheGfpGuard {
    file: ARef<File>,
    old: bindings::gfp_t,
}

impl Drop for PageCacheGfpGuard {
    fn drop(&mut self) {
        // SAFETY: We hold a reference on the file, so its mapping is valid.
        unsafe { (*(*self.file.as_ptr()).f_mapping).gfp_mask = self.old };
    }
}

/// One read or write in flight on a backing file.
///
/// Two references: the submitter's, dropped once `read_iter`/`write_iter` has returned (it may
/// still walk `iter` after the I/O completed), and the completion's. The last one ends the
/// request and frees this.
struct FileIo<T: Operations> {
    iocb: bindings::kiocb,
    iter: bindings::iov_iter,
    segments: RequestSegments,
    rq: Option<ARef<Request<T>>>,
    file: ARef<File>,
    refs: Atomic<u32>,
    /// Set by the completion, for [`PolledIos`].
    done: Atomic<bool>,
    result: isize,
    write: bool,
}

impl<T: Operations> FileIo<T> {
    /// `ki_complete`, also called directly for I/O that completed synchronously.
    ///
    /// # Safety
    ///
    /// `iocb` is the `iocb` of a live `FileIo<T>` whose completion reference is unused.
    unsafe extern "C" fn complete_callback(iocb: *mut bindings::kiocb, ret: ffi::c_long) {
        // SAFETY: `iocb` is embedded in a `FileIo<T>` allocated by `BackingFile::submit`.
        let io = unsafe { crate::container_of!(iocb, FileIo<T>, iocb) };
        // SAFETY: The completion reference is still held, so `io` is alive; only the completion
        // writes `result`, and `put` reads it after the last reference is dropped.
        unsafe { (*io).result = ret };
        // SAFETY: As above.
        unsafe { (*io).done.store(true, Release) };
        // SAFETY: This drops the completion reference.
        unsafe { Self::put(io) };
    }

    /// Polls the backing file's device once for `io` (`file_operations.iopoll`); completions it
    /// finds run `complete_callback` from here.
    ///
    /// # Safety
    ///
    /// The caller owns a reference on `io`.
    unsafe fn iopoll(io: *mut Self) {
        // SAFETY: `io` is alive (the caller's reference), so are its file and `iocb`; `iopoll`
        // reads the bio the file stored in `iocb.private` under RCU and never sleeps with
        // `BLK_POLL_ONESHOT`.
        unsafe {
            let file = (*io).file.as_ptr();
            if let Some(iopoll) = (*(*file).f_op).iopoll {
                iopoll(
                    &raw mut (*io).iocb,
                    core::ptr::null_mut(),
                    bindings::BLK_POLL_ONESHOT,
                );
            }
        }
    }

    /// Drops one reference; the last one ends the request and frees `io`.
    ///
    /// # Safety
    ///
    /// `io` came from `KBox::into_raw` in `BackingFile::submit` and the caller owns one of its
    /// references.
    unsafe fn put(io: *mut Self) {
        // SAFETY: The caller owns a reference, so `io` is alive.
        if unsafe { (*io).refs.fetch_sub(1, Full) } != 1 {
            return;
        }
        // SAFETY: This was the last reference: we own the allocation.
        let mut io = unsafe { KBox::from_raw(io) };
        if io.write {
            // SAFETY: Paired with `kiocb_start_write` in `submit`.
            unsafe { bindings::kiocb_end_write(&mut io.iocb) };
        }
        let Some(rq) = io.rq.take() else { return };
        let bytes = io.segments.bytes() as isize;
        let status = if io.result == bytes {
            Ok(())
        } else if io.result < 0 {
            Err(Error::from_errno(io.result as i32))
        } else {
            // A short transfer: the rest of a read would be stale, the rest of a write is lost.
            if !io.write {
                rq.zero_fill();
            }
            Err(EIO)
        };
        drop(io);
        // The request has a single reference here: nothing else could have cloned it.
        let _ = Request::end(rq, status);
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
