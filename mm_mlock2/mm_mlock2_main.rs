// SPDX-License-Identifier: GPL-2.0

//! Lock-on-fault memory from `mmap()`: `/dev/lockedmem`.
//!
//! Linux 4.4 added `mlock2(MLOCK_ONFAULT)`: memory locked page by page as it is first touched.
//! This device hands out such memory directly. Each open file of `/dev/lockedmem` is one region
//! (share it by passing the file descriptor):
//!
//! 1. size it once with the [`LOCKEDMEM_SET_SIZE`] ioctl (a `__u64` byte count, rounded up to
//!    whole pages; `EBUSY` if the region already has a size; [`LOCKEDMEM_GET_SIZE`] reads it
//!    back). A character device cannot be `ftruncate()`d, hence the ioctl.
//! 2. `mmap(MAP_SHARED)` any page-aligned part of it. The mapping is lock-on-fault (`VM_LOCKED |
//!    VM_LOCKONFAULT`): untouched pages use no memory, touched pages are locked and counted in
//!    `VmLck`. `RLIMIT_MEMLOCK` is enforced as `mlock2()` enforces it (`EPERM` when the caller
//!    may not lock at all, `ENOMEM` past the limit without `CAP_IPC_LOCK`). The mapping is not
//!    inherited across `fork()` (`VM_DONTCOPY`) and left out of core dumps (`VM_DONTDUMP`);
//!    `MAP_PRIVATE`, a region without a size and a range past its end get `EINVAL`.
//!    `munlock()` works on it as on memory locked with `mlock2(MLOCK_ONFAULT)`.
//! 3. When the file is closed and no mapping of it is left, every page of the region is zeroed
//!    with volatile writes, then freed.
//!
//! The pages are those of an unlinked tmpfs file per region (`kernel::mm::shmem`), so the core mm
//! faults, locks and unlocks them as any shared file page. Counters (`regions`, `pages_held`,
//! `pages_wiped`) are in `/sys/kernel/debug/mm_mlock2/stats`. Every open region and every mapping
//! of one holds the module, so it unloads only when no region is left.

use kernel::{
    debugfs,
    fs::File,
    ioctl::{_IOR, _IOW},
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    mm::{
        mlock,
        shmem::ShmemFile,
        virt::{flags, VmaNew},
    },
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, ArcBorrow, Mutex,
    },
    uaccess::{UserPtr, UserSlice},
};

mod trace;

/// The errno of `result`, 0 for success (for trace events).
fn errno(result: &Result) -> i32 {
    result.as_ref().err().map_or(0, |e| e.to_errno())
}

/// `_IOW('L', 1, __u64)`: sets the size of the region in bytes (once).
pub const LOCKEDMEM_SET_SIZE: u32 = _IOW::<u64>('L' as u32, 1);
/// `_IOR('L', 2, __u64)`: reads the size of the region in bytes (0 before it is set).
pub const LOCKEDMEM_GET_SIZE: u32 = _IOR::<u64>('L' as u32, 2);

module! {
    type: LockedMemModule,
    name: "mm_mlock2",
    authors: ["rust44 developers"],
    description: "Lock-on-fault memory device (mlock2(MLOCK_ONFAULT) memory from mmap)",
    license: "GPL",
}

kernel::sync::global_lock! {
    // SAFETY: Initialized in the module initializer, before the device exists.
    unsafe(uninit) static REGIONS: Mutex<KVec<Arc<Region>>> = KVec::new();
}

/// Pages zeroed by regions that are gone.
static PAGES_WIPED: Atomic<u64> = Atomic::new(0);

#[pin_data(PinnedDrop)]
struct LockedMemModule {
    #[pin]
    _misc: MiscDeviceRegistration<Region>,
    #[pin]
    _stats: debugfs::File<Stats>,
    _debugfs: debugfs::Dir,
}

impl kernel::InPlaceModule for LockedMemModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: Called once, before anything can use `REGIONS`.
        unsafe { REGIONS.init() };
        let dir = debugfs::Dir::new(c"mm_mlock2");
        try_pin_init!(Self {
            _misc <- MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"lockedmem",
            }),
            _stats <- dir.read_only_file(c"stats", Stats),
            _debugfs: dir,
        })
    }
}

#[pinned_drop]
impl PinnedDrop for LockedMemModule {
    fn drop(self: Pin<&mut Self>) {
        // Every region holds the module, so none is left; statics are not dropped, so free the
        // list's buffer here. The device cannot be opened any more while the module goes away.
        drop(core::mem::take(&mut *REGIONS.lock()));
    }
}

/// The module's counters, as `/sys/kernel/debug/mm_mlock2/stats` shows them.
struct Stats;

impl core::fmt::Debug for Stats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let regions = REGIONS.lock();
        let held: usize = regions.iter().map(|r| r.resident_pages()).sum();
        write!(
            f,
            "regions: {}\npages_held: {}\npages_wiped: {}",
            regions.len(),
            held,
            PAGES_WIPED.load(Relaxed)
        )
    }
}

/// One open file of `/dev/lockedmem`: a region of lock-on-fault memory.
#[pin_data]
struct Region {
    /// The pages, once the region has a size.
    #[pin]
    shmem: Mutex<Option<ShmemFile>>,
}

impl Region {
    fn resident_pages(&self) -> usize {
        self.shmem
            .lock()
            .as_ref()
            .map_or(0, ShmemFile::resident_pages)
    }

    fn set_size(&self, size: u64) -> Result {
        let size = usize::try_from(size).map_err(|_| EINVAL)?;
        let mut shmem = self.shmem.lock();
        if shmem.is_some() {
            pr_err!("the region already has a size\n");
            return Err(EBUSY);
        }
        let file = ShmemFile::new(c"lockedmem", size)
            .inspect_err(|e| pr_err!("cannot make a region of {size} bytes: {e:?}\n"))?;
        *shmem = Some(file);
        Ok(())
    }

    fn size(&self) -> u64 {
        self.shmem.lock().as_ref().map_or(0, |s| s.size() as u64)
    }

    /// Maps `pages` of `shmem` into `vma`, lock-on-fault, within the task's lock limit.
    fn map(shmem: &ShmemFile, file: &File, vma: &VmaNew, pages: usize) -> Result {
        mlock::may_lock(vma.mm(), pages)
            .inspect_err(|e| pr_err!("locking {pages} more pages is not allowed: {e:?}\n"))?;
        vma.set_dontcopy();
        vma.set_dontdump();
        mlock::set_lock_on_fault(vma);
        shmem
            .mmap_for(vma, file)
            .inspect_err(|e| pr_err!("mapping past the end of the region: {e:?}\n"))
    }
}

#[vtable]
impl MiscDevice for Region {
    type Ptr = Arc<Region>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Region>> {
        let region = Arc::pin_init(
            pin_init!(Region {
                shmem <- new_mutex!(None),
            }),
            GFP_KERNEL,
        )?;
        REGIONS.lock().push(region.clone(), GFP_KERNEL)?;
        Ok(region)
    }

    /// Runs when the file is closed and no mapping holds it any more: the region's pages are
    /// mapped nowhere, so they are zeroed and freed.
    fn release(region: Arc<Region>, _file: &File) {
        REGIONS.lock().retain(|r| !Arc::ptr_eq(r, &region));
        let shmem = region.shmem.lock().take();
        if let Some(shmem) = shmem {
            let size = shmem.size() as u64;
            match shmem.wipe() {
                Ok(pages) => {
                    PAGES_WIPED.fetch_add(pages as u64, Relaxed);
                    trace::lockedmem_wipe(size, pages as u64, 0);
                }
                Err(e) => {
                    pr_err!("zeroing the region failed: {e:?}\n");
                    trace::lockedmem_wipe(size, 0, e.to_errno());
                }
            }
        }
    }

    fn mmap(region: ArcBorrow<'_, Region>, file: &File, vma: &VmaNew) -> Result {
        if vma.flags() & flags::SHARED == 0 {
            pr_err!("only MAP_SHARED mappings are supported\n");
            return Err(EINVAL);
        }
        let shmem = region.shmem.lock();
        let Some(shmem) = shmem.as_ref() else {
            pr_err!("mmap of a region without a size: set it with LOCKEDMEM_SET_SIZE first\n");
            return Err(EINVAL);
        };
        let pages = (vma.end() - vma.start()) / PAGE_SIZE;
        let size = shmem.size() as u64;
        let result = Self::map(shmem, file, vma, pages);
        trace::lockedmem_map(size, pages as u64, errno(&result));
        result
    }

    fn ioctl(region: ArcBorrow<'_, Region>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<u64>());
        match cmd {
            LOCKEDMEM_SET_SIZE => {
                let size = user.reader().read::<u64>()?;
                let result = region.set_size(size);
                trace::lockedmem_create(size, errno(&result));
                result.map(|()| 0)
            }
            LOCKEDMEM_GET_SIZE => {
                user.writer().write(&region.size())?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}

#[kunit_tests(rust44_mm_mlock2)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_are_stable() {
        // Userspace (tests/mm_mlock2/lockedmem.h) hard-codes these numbers.
        assert_eq!(LOCKEDMEM_SET_SIZE, 0x4008_4c01);
        assert_eq!(LOCKEDMEM_GET_SIZE, 0x8008_4c02);
    }
}
