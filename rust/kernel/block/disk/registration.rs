// SPDX-License-Identifier: GPL-2.0

//! Block major numbers (`register_blkdev()`) with an optional probe, and module references.

use crate::{
    bindings,
    error::{code::*, Error, Result},
    str::{CStr, CStrExt},
};

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
