// SPDX-License-Identifier: GPL-2.0

//! A disk's sysfs attribute group of read-only files.

use super::DiskVTable;
use crate::{
    alloc::{flags::GFP_KERNEL, KBox, KVec},
    bindings,
    block::mq::Operations,
    error::{code::*, Result},
    ffi,
    str::{CStr, CStrExt},
    sync::atomic::Atomic,
};
use core::fmt;

/// A page-sized sysfs output buffer for [`Operations::show_attribute`].
pub struct SysfsBuffer<'a> {
    pub(super) buf: &'a mut [u8],
    pub(super) len: usize,
}

impl SysfsBuffer<'_> {
    /// Appends raw bytes, which need not be UTF-8 (a path, say, as the C side prints it with
    /// `%s`); `EOVERFLOW` when they do not fit, and then nothing is written.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result {
        // sysfs needs room for a trailing NUL after the text.
        let room = self.buf.len().saturating_sub(self.len + 1);
        if bytes.len() > room {
            return Err(EOVERFLOW);
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }
}

impl fmt::Write for SysfsBuffer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes()).map_err(|_| fmt::Error)
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
    pub(super) group: bindings::attribute_group,
    pub(super) shown: Atomic<i32>,
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
pub(super) unsafe extern "C" fn show_callback<T: Operations>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut ffi::c_char,
) -> isize {
    // SAFETY: The attribute belongs to a disk's device: `dev` is the `bd_device` of its `part0`.
    let bdev = unsafe { crate::container_of!(dev, bindings::block_device, bd_device) };
    // SAFETY: The disk is alive while its sysfs files exist.
    let disk = unsafe { (*bdev).bd_disk };
    // SAFETY: sysfs holds a reference to the disk's device while `show` runs, and
    // `del_gendisk()` removes (and drains) this file before the disk can be released.
    let data = unsafe { DiskVTable::<T>::queue_data(disk) };
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
