// SPDX-License-Identifier: GPL-2.0

//! The configfs interface: `/sys/kernel/config/blk_poll` and a directory per device, whose
//! attributes (rules in `policy::Attr`) configure it and whose `power` creates and deletes it.

use crate::{
    policy::{self, Attr, Params},
    BlkPoll, Device,
};
use core::fmt::Write as _;
use kernel::{
    block::mq::gen_disk::GenDisk,
    c_str,
    configfs::{self, AttributeOperations},
    configfs_attrs,
    page::PAGE_SIZE,
    prelude::*,
    str::{CStr, CString, Formatter},
    sync::{new_mutex, Arc, Mutex},
};

/// The configfs root, `/sys/kernel/config/blk_poll`.
#[pin_data]
pub(crate) struct Root {}

/// The configfs subsystem `blk_poll`.
pub(crate) fn subsystem() -> impl PinInit<configfs::Subsystem<Root>, Error> {
    let item_type = configfs_attrs! {
        container: configfs::Subsystem<Root>,
        data: Root,
        child: DeviceConfig,
        attributes: [
            features: 0,
        ],
    };
    configfs::Subsystem::new(c_str!("blk_poll"), item_type, try_pin_init!(Root {}))
}

#[vtable]
impl AttributeOperations<0> for Root {
    type Data = Root;

    fn show(_this: &Root, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let mut w = Formatter::new(page);
        writeln!(w, "{}", policy::FEATURES)?;
        Ok(w.bytes_written())
    }
}

#[vtable]
impl configfs::GroupOperations for Root {
    type Child = DeviceConfig;

    fn make_group(
        &self,
        name: &CStr,
    ) -> Result<impl PinInit<configfs::Group<DeviceConfig>, Error>> {
        let item_type = configfs_attrs! {
            container: configfs::Group<DeviceConfig>,
            data: DeviceConfig,
            attributes: [
                power: 0,
                size: 1,
                blocksize: 2,
                submit_queues: 3,
                poll_queues: 4,
                hw_queue_depth: 5,
                completion_nsec: 6,
                irqmode: 7,
                poll_mode: 8,
                stats: 9,
            ],
        };
        if !policy::valid_disk_name(name.to_bytes()) {
            pr_err!(
                "device name {} is longer than {} bytes\n",
                name.to_str()?,
                policy::MAX_NAME_LEN
            );
            return Err(EINVAL);
        }
        Ok(configfs::Group::new(
            name.try_into()?,
            item_type,
            try_pin_init!(DeviceConfig {
                inner <- new_mutex!(DeviceInner {
                    name: name.try_into()?,
                    params: Params::default(),
                    disk: None,
                    device: None,
                }),
            }),
        ))
    }
}

/// A device directory, `/sys/kernel/config/blk_poll/NAME`.
#[pin_data]
pub(crate) struct DeviceConfig {
    #[pin]
    inner: Mutex<DeviceInner>,
}

struct DeviceInner {
    name: CString,
    params: Params,
    /// The disk while powered on. Dropped before `device`.
    disk: Option<GenDisk<BlkPoll>>,
    device: Option<Arc<Device>>,
}

impl Drop for DeviceInner {
    fn drop(&mut self) {
        // `rmdir` of a powered-on device: delete the disk (draining its I/O) first.
        drop(self.disk.take());
    }
}

/// The device name for messages.
fn name_of(inner: &DeviceInner) -> &str {
    inner.name.to_str().unwrap_or("?")
}

/// Reports a rejected attribute write.
fn invalid(name: &str, attr: &str, page: &[u8], want: &str) -> Error {
    let text = core::str::from_utf8(page).unwrap_or("(not UTF-8)").trim();
    pr_err!("{}: {}: '{}' is not {}\n", name, attr, text, want);
    EINVAL
}

impl DeviceConfig {
    /// Stores a parameter unless the device is powered on.
    fn store(&self, attr: Attr, page: &[u8]) -> Result {
        let mut inner = self.inner.lock();
        let mut params = inner.params;
        if attr.store(&mut params, page).is_err() {
            return Err(invalid(name_of(&inner), attr.name(), page, attr.expected()));
        }
        if inner.disk.is_some() {
            pr_err!(
                "{}: {} cannot change while the device is powered on\n",
                name_of(&inner),
                attr.name()
            );
            return Err(EBUSY);
        }
        inner.params = params;
        Ok(())
    }

    fn show(&self, attr: Attr, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let params = self.inner.lock().params;
        let mut w = Formatter::new(page);
        attr.show(&params, &mut w)?;
        Ok(w.bytes_written())
    }
}

#[vtable]
impl AttributeOperations<0> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let on = this.inner.lock().disk.is_some();
        let mut w = Formatter::new(page);
        w.write_str(if on { "1\n" } else { "0\n" })?;
        Ok(w.bytes_written())
    }

    fn store(this: &DeviceConfig, page: &[u8]) -> Result {
        let mut inner = this.inner.lock();
        let on = policy::parse_bool(page)
            .map_err(|_| invalid(name_of(&inner), "power", page, "0 or 1"))?;
        match (on, inner.disk.is_some()) {
            (true, false) => {
                let (disk, device) =
                    crate::power_on(&inner.name, inner.params).inspect_err(|e| {
                        pr_err!(
                            "{}: cannot create the disk: error {}\n",
                            name_of(&inner),
                            e.to_errno()
                        )
                    })?;
                inner.disk = Some(disk);
                inner.device = Some(device);
            }
            (false, true) => {
                // Deleting the disk waits for the requests in flight: pollers and timers
                // complete them.
                drop(inner.disk.take());
                drop(inner.device.take());
            }
            _ => {}
        }
        Ok(())
    }
}

/// The attribute with configfs index `$id` is the parameter `$attr`.
macro_rules! param_attr {
    ($id:literal, $attr:expr) => {
        #[vtable]
        impl AttributeOperations<$id> for DeviceConfig {
            type Data = DeviceConfig;

            fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
                this.show($attr, page)
            }

            fn store(this: &DeviceConfig, page: &[u8]) -> Result {
                this.store($attr, page)
            }
        }
    };
}

param_attr!(1, Attr::Size);
param_attr!(2, Attr::BlockSize);
param_attr!(3, Attr::SubmitQueues);
param_attr!(4, Attr::PollQueues);
param_attr!(5, Attr::HwQueueDepth);
param_attr!(6, Attr::CompletionNsec);
param_attr!(7, Attr::IrqMode);
param_attr!(8, Attr::PollMode);

#[vtable]
impl AttributeOperations<9> for DeviceConfig {
    type Data = DeviceConfig;

    fn show(this: &DeviceConfig, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let device = this.inner.lock().device.clone();
        let mut w = Formatter::new(page);
        match device {
            Some(dev) => dev.write_stats(&mut w)?,
            None => w.write_str("powered off\n")?,
        }
        Ok(w.bytes_written())
    }
}
