// SPDX-License-Identifier: GPL-2.0

//! Shared memory files (tmpfs), and drivers that map them.
//!
//! A [`ShmemFile`] is an unlinked tmpfs file, as `shmem_file_setup()` makes them for SysV shared
//! memory or a `MAP_SHARED` mapping of `/dev/zero`. Its pages are ordinary page-cache pages: a
//! driver that maps them with [`ShmemFile::mmap_for`] gets memory that the core mm faults in,
//! reclaims, migrates and `mlock()`s like any other shared file mapping, with nothing of it
//! allocated before it is touched.
//!
//! C header: [`include/linux/shmem_fs.h`](srctree/include/linux/shmem_fs.h).

use crate::{
    bindings,
    error::{code::*, from_err_ptr, to_result, Result},
    fs::File,
    mm::virt::VmaNew,
    page::{PAGE_SHIFT, PAGE_SIZE},
    str::{CStr, CStrExt},
    sync::aref::ARef,
};
use core::{
    ptr::{self, NonNull},
    sync::atomic::{compiler_fence, Ordering},
};

/// An unlinked tmpfs file of a fixed size.
///
/// The pages of the file are allocated as they are first touched (through a mapping made with
/// [`ShmemFile::mmap_for`]), and freed when the last reference to the file is gone. Before that,
/// [`ShmemFile::wipe`] can zero them.
///
/// # Invariants
///
/// `file` is a file of the kernel's internal tmpfs mount made by `shmem_file_setup()`, and `size`
/// is the size it was made with, a multiple of `PAGE_SIZE`.
///
/// The file has no path, so only the kernel and mappings use it (a task with `CAP_SYS_ADMIN` could
/// still open it through `/proc/PID/map_files` and truncate it; faults past the new end then get
/// `SIGBUS`, which is safe).
pub struct ShmemFile {
    file: ARef<File>,
    size: usize,
}

impl ShmemFile {
    /// Creates a tmpfs file of `size` bytes (rounded up to whole pages), shown as `name` in
    /// `/proc/PID/maps`.
    ///
    /// No memory is committed up front (`VM_NORESERVE`): pages are charged as they are
    /// allocated. Fails with `EINVAL` for a size of zero or past the largest file size.
    pub fn new(name: &CStr, size: usize) -> Result<Self> {
        if size == 0 {
            return Err(EINVAL);
        }
        let size = size.checked_next_multiple_of(PAGE_SIZE).ok_or(EINVAL)?;
        let len = bindings::loff_t::try_from(size).map_err(|_| EINVAL)?;
        let mut flags: bindings::vma_flags_t = pin_init::zeroed();
        let bit = bindings::VMA_NORESERVE_BIT as usize;
        let bits_per_word = 8 * core::mem::size_of::<core::ffi::c_ulong>();
        flags.__vma_flags[bit / bits_per_word] |= 1 << (bit % bits_per_word);

        // SAFETY: `name` is a valid NUL-terminated string for the duration of the call (the
        // function copies it), and `flags` is a valid set of VMA flags.
        let file =
            from_err_ptr(unsafe { bindings::shmem_file_setup(name.as_char_ptr(), len, flags) })?;
        // INVARIANT: `shmem_file_setup()` made a tmpfs file of `size` bytes.
        Ok(Self {
            // SAFETY: On success `shmem_file_setup()` returns a non-null file with one reference,
            // which is now owned by the `ARef`. `File` is a transparent wrapper of `struct file`.
            file: unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) },
            size,
        })
    }

    /// The size of the file in bytes, a multiple of `PAGE_SIZE`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The underlying file.
    pub fn file(&self) -> &File {
        &self.file
    }

    fn inode(&self) -> *mut bindings::inode {
        // SAFETY: The file is valid while we hold a reference to it, and `f_inode` never changes
        // for an open file.
        unsafe { (*self.file.as_ptr()).f_inode }
    }

    /// The number of pages of the file in memory (its page-cache pages).
    ///
    /// Pages swapped out after a `munlock()` are not counted.
    pub fn resident_pages(&self) -> usize {
        // SAFETY: The file and its mapping are valid while we hold a reference to the file.
        // `nrpages` is updated under the mapping's lock; a volatile read is C's `READ_ONCE()`.
        unsafe {
            let mapping = (*self.file.as_ptr()).f_mapping;
            ptr::addr_of!((*mapping).nrpages).read_volatile()
        }
    }

    /// Zeroes every page of the file that holds data (in memory, or swapped out: those are read
    /// back first), with volatile writes the compiler cannot drop. Returns the number of pages
    /// zeroed.
    ///
    /// Call it when no mapping of the file is left and before the last reference is dropped, so
    /// that the pages go back to the allocator without their contents. All pages are attempted;
    /// the first error (`ENOMEM` reading a swapped-out page) is returned after that.
    ///
    /// May sleep.
    pub fn wipe(&self) -> Result<usize> {
        let inode = self.inode();
        let pages = self.size >> PAGE_SHIFT;
        let mut zeroed = 0;
        let mut first_error = Ok(());
        let mut index = 0;
        while index < pages {
            // Skip the holes: find the next index that has a page-cache entry, a folio or the swap
            // entry of a page swapped out.
            let mut found = index;
            // SAFETY: The mapping is alive while we hold the file, and `xa_find()` takes the RCU
            // read lock itself. The entry is only tested, never dereferenced.
            let entry = unsafe {
                let mapping = (*self.file.as_ptr()).f_mapping;
                bindings::xa_find(
                    ptr::addr_of_mut!((*mapping).i_pages),
                    &mut found,
                    pages - 1,
                    bindings::XA_PRESENT,
                )
            };
            if entry.is_null() {
                break;
            }
            // A multi-index entry may start before `index`; never go back.
            index = index.max(found);
            if zeroed % 64 == 63 {
                // SAFETY: `wipe` may sleep, and holds no lock here.
                unsafe { bindings::cond_resched() };
            }
            let mut folio: *mut bindings::folio = ptr::null_mut();
            // SAFETY: `inode` is a tmpfs inode kept alive by our file reference, and `folio` is a
            // valid place for the result. `SGP_READ` never allocates: it returns NULL for a hole
            // and reads a swapped-out page back in.
            let ret = unsafe {
                bindings::shmem_get_folio(inode, index, 0, &mut folio, bindings::sgp_type_SGP_READ)
            };
            if let Err(e) = to_result(ret) {
                first_error = first_error.and(Err(e));
            } else if !folio.is_null() {
                // SAFETY: `shmem_get_folio()` returned the folio holding `index`, locked and with
                // a reference that we own until the `folio_put()` below.
                unsafe {
                    zero_page_explicit(bindings::folio_file_page(folio, index));
                    bindings::folio_unlock(folio);
                    bindings::folio_put(folio);
                }
                zeroed += 1;
            }
            index += 1;
        }
        first_error.map(|()| zeroed)
    }

    /// Maps this file into `vma`, which the `mmap` hook of `owner` is setting up.
    ///
    /// The VMA's file becomes this tmpfs file (as for a `MAP_SHARED` mapping of `/dev/zero`), so
    /// the page cache, reverse mapping, `mlock()`, reclaim and migration treat it as the shared
    /// file mapping it is. Faults allocate zeroed pages of the file as they are touched.
    ///
    /// The VMA, and every VMA later made from it (split, `mremap()`, or `fork()` where allowed),
    /// holds a reference to `owner`: `owner` is released (and its module may be unloaded) only
    /// after the last of them is unmapped. That gives the driver one place, its `release`, to
    /// act once the memory is mapped nowhere.
    ///
    /// Fails with `EINVAL` when the VMA reaches past the end of the file.
    pub fn mmap_for(&self, vma: &VmaNew, owner: &File) -> Result {
        let len = vma.end() - vma.start();
        // SAFETY: By the invariants of `VmaNew` we may read the VMA being set up.
        let pgoff: usize = unsafe { (*vma.as_ptr()).vm_pgoff };
        let fits = pgoff
            .checked_mul(PAGE_SIZE)
            .and_then(|offset| offset.checked_add(len))
            .is_some_and(|end| end <= self.size);
        if !fits {
            return Err(EINVAL);
        }
        let owner: ARef<File> = owner.into();
        // SAFETY: By the invariants of `VmaNew`, the VMA is being set up in an `mmap` hook and is
        // ours to change. `vma_set_file()` takes a reference to the new file and drops the one to
        // the old. The operations table lives in the kernel image and only relies on what is set
        // here: `vm_file` is a tmpfs file and `vm_private_data` holds a reference to a `File`,
        // which `close` gives back.
        unsafe {
            bindings::vma_set_file(vma.as_ptr(), self.file.as_ptr());
            (*vma.as_ptr()).vm_ops = &SHMEM_OWNED_VM_OPS;
            (*vma.as_ptr()).vm_private_data = ARef::into_raw(owner).as_ptr().cast();
        }
        Ok(())
    }
}

/// Zeroes a page through its kernel mapping with volatile writes, which the compiler may not drop
/// even when the page is freed right after.
///
/// # Safety
///
/// `page` must be a valid page that the caller may write (for a page-cache page: locked).
unsafe fn zero_page_explicit(page: *mut bindings::page) {
    // SAFETY: The caller guarantees that `page` is valid; `kmap_local_page()` maps it for this
    // thread until `kunmap_local()`.
    let addr = unsafe { bindings::kmap_local_page(page) }.cast::<u64>();
    for i in 0..PAGE_SIZE / core::mem::size_of::<u64>() {
        // SAFETY: `addr` maps `PAGE_SIZE` bytes, page-aligned, and the caller may write them.
        unsafe { addr.add(i).write_volatile(0) };
    }
    compiler_fence(Ordering::SeqCst);
    // SAFETY: `addr` was returned by `kmap_local_page()` above, in this thread.
    unsafe { bindings::kunmap_local(addr.cast()) };
}

/// The operations of a VMA set up by [`ShmemFile::mmap_for`]: faults from the tmpfs file's page
/// cache, and a reference on the owner file per VMA.
const SHMEM_OWNED_VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
    open: Some(shmem_owned_open),
    close: Some(shmem_owned_close),
    fault: Some(shmem_owned_fault),
    map_pages: Some(bindings::filemap_map_pages),
    ..pin_init::zeroed()
};

/// Called when a VMA is duplicated (split, `mremap()`, `fork()`): takes a reference on the owner.
///
/// # Safety
///
/// `vma` must be a valid VMA set up by [`ShmemFile::mmap_for`].
unsafe extern "C" fn shmem_owned_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: `vm_private_data` holds a reference to a file (set by `mmap_for` and copied with
    // the VMA), so the file is valid and one more reference may be taken.
    unsafe { bindings::get_file((*vma).vm_private_data.cast()) };
}

/// Called when a VMA goes away: drops its reference on the owner.
///
/// # Safety
///
/// `vma` must be a valid VMA set up by [`ShmemFile::mmap_for`] or duplicated from one.
unsafe extern "C" fn shmem_owned_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: `vm_private_data` holds the reference this VMA took in `mmap_for` or `open`; it is
    // given back exactly once, here. `fput()` defers the final release, so the owner's code runs
    // after this function has returned.
    unsafe { bindings::fput((*vma).vm_private_data.cast()) };
}

/// Faults a page of the tmpfs file in: finds or allocates (zeroed) the page at `pgoff`.
///
/// # Safety
///
/// `vmf` must be a valid fault on a VMA set up by [`ShmemFile::mmap_for`].
unsafe extern "C" fn shmem_owned_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: The caller provides a valid fault; its VMA's file is the tmpfs file (`mmap_for`),
    // kept alive by the VMA.
    let (inode, index) = unsafe {
        let f = &(*vmf).__bindgen_anon_1;
        ((*(*f.vma).vm_file).f_inode, f.pgoff)
    };
    let mut folio: *mut bindings::folio = ptr::null_mut();
    // SAFETY: `inode` is a live tmpfs inode and `folio` a valid place for the result. `SGP_CACHE`
    // allocates a zeroed folio for a hole and fails past the end of the file.
    let ret = unsafe {
        bindings::shmem_get_folio(inode, index, 0, &mut folio, bindings::sgp_type_SGP_CACHE)
    };
    if ret != 0 || folio.is_null() {
        return if ret == ENOMEM.to_errno() {
            bindings::vm_fault_reason_VM_FAULT_OOM
        } else {
            bindings::vm_fault_reason_VM_FAULT_SIGBUS
        };
    }
    // SAFETY: The folio holds `index` and is locked with a reference, which `VM_FAULT_LOCKED`
    // hands to the core mm together with the page, as `->fault` requires.
    unsafe { (*vmf).page = bindings::folio_file_page(folio, index) };
    bindings::vm_fault_reason_VM_FAULT_LOCKED
}

#[macros::kunit_tests(rust44_mm_shmem)]
mod tests {
    use super::*;

    #[test]
    fn size_is_rounded_to_pages() {
        let file = ShmemFile::new(c"rust44-kunit", PAGE_SIZE + 1);
        assert!(file.is_ok());
        if let Ok(file) = file {
            assert_eq!(file.size(), 2 * PAGE_SIZE);
            assert_eq!(file.resident_pages(), 0);
        }
    }

    #[test]
    fn bad_sizes_are_einval() {
        assert_eq!(ShmemFile::new(c"rust44-kunit", 0).err(), Some(EINVAL));
        assert_eq!(
            ShmemFile::new(c"rust44-kunit", usize::MAX).err(),
            Some(EINVAL)
        );
    }

    /// Runs `f` on the kernel mapping of page `index` of `file`, allocating it if `alloc`.
    /// Returns `false` when the page is not there.
    fn with_page(file: &ShmemFile, index: usize, alloc: bool, f: impl FnOnce(*mut u8)) -> bool {
        let sgp = if alloc {
            bindings::sgp_type_SGP_CACHE
        } else {
            bindings::sgp_type_SGP_READ
        };
        let mut folio: *mut bindings::folio = ptr::null_mut();
        // SAFETY: The inode is alive while `file` is, and `folio` is a valid place for the result.
        let ret = unsafe { bindings::shmem_get_folio(file.inode(), index, 0, &mut folio, sgp) };
        if ret != 0 || folio.is_null() {
            return false;
        }
        // SAFETY: The folio is locked and referenced until `folio_put()`; the mapping of its page
        // is valid until `kunmap_local()`.
        unsafe {
            let addr = bindings::kmap_local_page(bindings::folio_file_page(folio, index));
            f(addr.cast());
            bindings::kunmap_local(addr);
            bindings::folio_mark_dirty(folio);
            bindings::folio_unlock(folio);
            bindings::folio_put(folio);
        }
        true
    }

    #[test]
    fn wipe_zeroes_the_pages_that_hold_data() {
        let file = ShmemFile::new(c"rust44-kunit", 8 * PAGE_SIZE);
        assert!(file.is_ok());
        let Ok(file) = file else { return };
        let fill = |p: *mut u8| {
            // SAFETY: `with_page` hands out a mapping of `PAGE_SIZE` writable bytes.
            unsafe { ptr::write_bytes(p, 0xa5, PAGE_SIZE) }
        };
        assert!(with_page(&file, 3, true, fill));
        assert!(with_page(&file, 5, true, fill));
        // The last page too: the search for pages holding data must reach it.
        assert!(with_page(&file, 7, true, fill));
        assert_eq!(file.resident_pages(), 3);
        assert_eq!(file.wipe(), Ok(3));
        for index in [3, 5, 7] {
            let mut nonzero = usize::MAX;
            assert!(with_page(&file, index, false, |p| {
                // SAFETY: `with_page` hands out a mapping of `PAGE_SIZE` readable bytes.
                let bytes = unsafe { core::slice::from_raw_parts(p, PAGE_SIZE) };
                nonzero = bytes.iter().filter(|&&b| b != 0).count();
            }));
            assert_eq!(nonzero, 0);
        }
        // Holes stay holes.
        assert!(!with_page(&file, 4, false, |_| ()));
    }

    #[test]
    fn wiping_an_untouched_file_allocates_nothing() {
        if let Ok(file) = ShmemFile::new(c"rust44-kunit", 64 * PAGE_SIZE) {
            assert_eq!(file.wipe(), Ok(0));
            assert_eq!(file.resident_pages(), 0);
        }
    }
}
