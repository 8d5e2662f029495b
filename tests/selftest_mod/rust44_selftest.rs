// SPDX-License-Identifier: GPL-2.0

//! Harness self-test: proves that a rust44 module builds against the patched kernel crate, loads,
//! answers from userspace and unloads.
//!
//! `/dev/rust44_selftest` answers one ioctl, [`RUST44_SELFTEST_CAPABLE`], with 1 when the caller
//! has `CAP_SYS_ADMIN` and 0 otherwise, through `kernel::capability` (a rust44 addition).

use kernel::{
    capability::{self, Capability},
    fs::File,
    ioctl::_IO,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
};

/// `_IO('r', 0x44)`: returns whether the caller is capable of `CAP_SYS_ADMIN`.
const RUST44_SELFTEST_CAPABLE: u32 = _IO('r' as u32, 0x44);

module! {
    type: SelftestModule,
    name: "rust44_selftest",
    authors: ["rust44 developers"],
    description: "rust44 harness self-test",
    license: "GPL",
}

#[pin_data(PinnedDrop)]
struct SelftestModule {
    #[pin]
    _misc: MiscDeviceRegistration<SelftestDevice>,
}

impl kernel::InPlaceModule for SelftestModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!("loaded\n");
        try_pin_init!(Self {
            _misc <- MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"rust44_selftest",
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for SelftestModule {
    fn drop(self: Pin<&mut Self>) {
        pr_info!("unloaded\n");
    }
}

struct SelftestDevice;

#[vtable]
impl MiscDevice for SelftestDevice {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        KBox::new(SelftestDevice, GFP_KERNEL).map_err(Into::into)
    }

    fn ioctl(_device: &SelftestDevice, _file: &File, cmd: u32, _arg: usize) -> Result<isize> {
        match cmd {
            RUST44_SELFTEST_CAPABLE => Ok(isize::from(capability::capable(Capability::SysAdmin))),
            _ => Err(ENOTTY),
        }
    }
}

#[kunit_tests(rust44_selftest)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number_is_stable() {
        // Userspace (tests/kselftest/harness.c) hard-codes this number.
        assert_eq!(RUST44_SELFTEST_CAPABLE, 0x7244);
    }

    #[test]
    fn kunit_thread_is_privileged() {
        // KUnit runs suites from a kernel thread with the initial credentials.
        assert!(capability::capable(Capability::SysAdmin));
    }
}
