// SPDX-License-Identifier: GPL-2.0

//! Regular files opened beneath a directory, as `openat2(RESOLVE_BENEATH)` does: path lookup
//! itself refuses `..` above the directory and symlinks that leave it (absolute ones included),
//! so a server can open names it got from a client without resolving them first.
//!
//! C headers: [`include/linux/namei.h`](srctree/include/linux/namei.h),
//! [`include/linux/fs.h`](srctree/include/linux/fs.h)

use crate::{
    bindings,
    error::{from_err_ptr, to_result, Result},
    fs::File,
    prelude::*,
    str::CStr,
    sync::aref::ARef,
};
use core::ptr::NonNull;

/// What [`RegularFile::stat`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// The size in bytes.
    pub size: u64,
    /// The last modification, in seconds since the epoch (negative before 1970).
    pub mtime: i64,
}

/// A directory that files are opened beneath.
///
/// Files are opened with the credentials of the task that opened the directory; path lookup
/// checks permissions with those of the task that opens the file.
///
/// # Invariants
///
/// `dir` is an `O_PATH` file of a directory.
pub struct RootedDir {
    dir: ARef<File>,
}

/// Owns a reference to a `struct path` and drops it with `path_put()`.
struct PathRef(bindings::path);

impl Drop for PathRef {
    fn drop(&mut self) {
        // SAFETY: By construction (`vfs_path_lookup()` succeeded) we hold a reference.
        unsafe { bindings::path_put(&self.0) }
    }
}

impl RootedDir {
    /// Opens the directory `name` (an absolute path; symlinks in it are followed).
    ///
    /// Fails with `ENOTDIR` when it is not a directory, as lookup reports.
    pub fn open(name: &CStr) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated string valid for the call; `O_PATH` opens no file
        // system object for I/O, only a reference to the path.
        let file = from_err_ptr(unsafe {
            bindings::filp_open(
                name.as_char_ptr(),
                (bindings::O_PATH | bindings::O_DIRECTORY) as i32,
                0,
            )
        })?;
        let file = NonNull::new(file).ok_or(ENOENT)?;
        // SAFETY: `filp_open()` returned a file with one reference, now owned by the `ARef`;
        // `File` is a transparent wrapper of `struct file`.
        let dir = unsafe { ARef::from_raw(file.cast::<File>()) };
        // INVARIANT: `O_PATH | O_DIRECTORY` opened a directory.
        Ok(Self { dir })
    }

    /// Opens `rel` read-only, a path relative to the directory that must stay beneath it (a
    /// leading `/` is the directory itself, as for `vfs_path_lookup()`).
    ///
    /// Fails with `EXDEV` for a path that leaves the directory (`..` above it, a symlink out of
    /// it), `EISDIR` for a directory, `EACCES` for other files that are not regular (devices,
    /// FIFOs and sockets are never opened), and as lookup does otherwise (`ENOENT`, `ENOTDIR`,
    /// `ELOOP`, `ENAMETOOLONG`, `EACCES`).
    pub fn open_file(&self, rel: &CStr) -> Result<RegularFile> {
        let dir = self.dir.as_ptr();
        let mut path = bindings::path::default();
        // SAFETY: `dir` is a valid file while we hold `self.dir`, so is its path; `rel` is
        // NUL-terminated; `path` is a valid place for the result.
        to_result(unsafe {
            let root = &raw const (*dir).__bindgen_anon_1.f_path;
            bindings::vfs_path_lookup(
                (*root).dentry,
                (*root).mnt,
                rel.as_char_ptr(),
                bindings::LOOKUP_FOLLOW | bindings::LOOKUP_BENEATH,
                &mut path,
            )
        })?;
        let path = PathRef(path);
        // SAFETY: A successful lookup gives a positive dentry (a negative one is `ENOENT`),
        // whose inode lives as long as the reference we hold.
        let mode = u32::from(unsafe { (*(*path.0.dentry).d_inode).i_mode }) & bindings::S_IFMT;
        match mode {
            bindings::S_IFREG => {}
            bindings::S_IFDIR => return Err(EISDIR),
            _ => return Err(EACCES),
        }
        // SAFETY: `path` is a valid path we hold; the credentials are those of `self.dir`,
        // valid while we hold it; `dentry_open()` takes its own references.
        let file = from_err_ptr(unsafe {
            bindings::dentry_open(
                &path.0,
                (bindings::O_RDONLY | bindings::O_LARGEFILE) as i32,
                (*dir).f_cred,
            )
        })?;
        let file = NonNull::new(file).ok_or(ENOENT)?;
        // SAFETY: `dentry_open()` returned a file with one reference, now owned by the `ARef`.
        let file = unsafe { ARef::from_raw(file.cast::<File>()) };
        // INVARIANT: The inode was checked to be a regular file.
        Ok(RegularFile { file })
    }
}

/// A regular file opened read-only by [`RootedDir::open_file`].
///
/// # Invariants
///
/// `file` is a regular file opened for reading.
pub struct RegularFile {
    file: ARef<File>,
}

impl RegularFile {
    /// The file's size and modification time (`vfs_getattr()`).
    pub fn stat(&self) -> Result<FileStat> {
        let mut st = bindings::kstat::default();
        // SAFETY: The file, and so its path, is valid while we hold it; `st` is writable.
        to_result(unsafe {
            bindings::vfs_getattr(
                &raw const (*self.file.as_ptr()).__bindgen_anon_1.f_path,
                &mut st,
                bindings::STATX_SIZE | bindings::STATX_MTIME,
                bindings::AT_STATX_SYNC_AS_STAT,
            )
        })?;
        Ok(FileStat {
            size: u64::try_from(st.size).unwrap_or(0),
            mtime: st.mtime.tv_sec,
        })
    }

    /// The page of the file's page cache that holds bytes `index * PAGE_SIZE..`, read in if it
    /// was not cached, up to date: to send without copying (`Socket::send_pages`).
    ///
    /// Fails with `EOPNOTSUPP` for a file without a page cache to read through (such as a
    /// DAX file, or one of a pseudo file system): read it with [`RegularFile::read_at`].
    /// A page past the end of the file reads as zeros or fails (`EIO`, `EFBIG`), depending on the
    /// file system: check the size.
    pub fn cached_page(&self, index: u64) -> Result<CachedPage> {
        let index = usize::try_from(index).map_err(|_| EFBIG)?;
        let file = self.file.as_ptr();
        // SAFETY: The file is valid (invariant), so is its mapping, whose operations table is
        // static.
        let (mapping, shmem, read_folio) = unsafe {
            let mapping = (*file).f_mapping;
            (
                mapping,
                bindings::shmem_mapping(mapping),
                (*(*mapping).a_ops).read_folio.is_some(),
            )
        };
        let folio = if shmem {
            // SAFETY: `mapping` is a tmpfs mapping alive while the file is.
            unsafe { bindings::shmem_read_folio(mapping, index) }
        } else if read_folio {
            // SAFETY: `mapping` is alive while `file` is; it reads folios itself.
            unsafe { bindings::read_mapping_folio(mapping, index, file) }
        } else {
            return Err(EOPNOTSUPP);
        };
        let folio = NonNull::new(from_err_ptr(folio)?).ok_or(EIO)?;
        // SAFETY: `folio` is a referenced folio of the mapping that holds `index`.
        let page = unsafe { bindings::folio_file_page(folio.as_ptr(), index) };
        let Some(page) = NonNull::new(page) else {
            // SAFETY: we own the reference taken above.
            unsafe { bindings::folio_put(folio.as_ptr()) };
            return Err(EIO);
        };
        // INVARIANT: the read returned an up-to-date folio with a reference now ours, and its
        // page for `index`.
        Ok(CachedPage { folio, page })
    }

    /// Reads into `buf` from byte `pos` (through the page cache): the number of bytes read,
    /// short at the end of the file, 0 past it.
    pub fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<usize> {
        let mut pos = i64::try_from(pos).map_err(|_| EINVAL)?;
        // SAFETY: The file is valid and open for reading (invariant); `buf` is writable for its
        // length; `kernel_read()` reads into kernel memory.
        let n = unsafe {
            bindings::kernel_read(
                self.file.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut pos,
            )
        };
        if n < 0 {
            // A negative `ssize_t` is an errno.
            return Err(Error::from_errno(n as i32));
        }
        Ok(n as usize)
    }
}

/// A page of a file's page cache, up to date when it was got, held with a reference on its
/// folio ([`RegularFile::cached_page`]).
///
/// # Invariants
///
/// We own a reference on `folio`, which is not a slab page; `page` is one of its pages.
pub struct CachedPage {
    folio: NonNull<bindings::folio>,
    page: NonNull<bindings::page>,
}

// SAFETY: A folio reference may be dropped from any task.
unsafe impl Send for CachedPage {}

// SAFETY: The methods taking `&self` only read fixed pointers.
unsafe impl Sync for CachedPage {}

impl CachedPage {
    /// The page, valid while `self` is.
    pub fn as_page_ptr(&self) -> *mut bindings::page {
        self.page.as_ptr()
    }
}

impl Drop for CachedPage {
    fn drop(&mut self) {
        // SAFETY: We own the reference (invariant).
        unsafe { bindings::folio_put(self.folio.as_ptr()) }
    }
}
