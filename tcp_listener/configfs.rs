// SPDX-License-Identifier: GPL-2.0

//! The configfs interface: `/sys/kernel/config/tcp_listener` and a directory per instance,
//! whose attributes configure it and whose `enable` starts and stops it.

use crate::{
    params::{self, Params},
    Running,
};
use core::fmt::Write as _;
use kernel::{
    c_str,
    configfs::{self, AttributeOperations},
    configfs_attrs,
    fs::rooted::RootedDir,
    net::namespace::Namespace,
    page::PAGE_SIZE,
    prelude::*,
    str::{CStr, CString, Formatter},
    sync::{aref::ARef, new_mutex, Mutex},
};

/// The configfs root, `/sys/kernel/config/tcp_listener`.
#[pin_data]
pub(crate) struct Root {}

/// The configfs subsystem `tcp_listener`.
pub(crate) fn subsystem() -> impl PinInit<configfs::Subsystem<Root>, Error> {
    let item_type = configfs_attrs! {
        container: configfs::Subsystem<Root>,
        data: Root,
        child: Instance,
        attributes: [],
    };
    configfs::Subsystem::new(c_str!("tcp_listener"), item_type, try_pin_init!(Root {}))
}

#[vtable]
impl configfs::GroupOperations for Root {
    type Child = Instance;

    fn make_group(&self, name: &CStr) -> Result<impl PinInit<configfs::Group<Instance>, Error>> {
        let item_type = configfs_attrs! {
            container: configfs::Group<Instance>,
            data: Instance,
            attributes: [
                enable: 0,
                address: 1,
                port: 2,
                root: 3,
                workers: 4,
                max_connections: 5,
                timeout_ms: 6,
                stats: 7,
            ],
        };
        // The instance listens in its creator's network namespace.
        let net = Namespace::current().ok_or(ESRCH)?;
        Ok(configfs::Group::new(
            name.try_into()?,
            item_type,
            try_pin_init!(Instance {
                net,
                inner <- new_mutex!(Inner {
                    name: name.try_into()?,
                    params: Params::default(),
                    root_path: None,
                    running: None,
                }),
            }),
        ))
    }
}

/// An instance directory, `/sys/kernel/config/tcp_listener/NAME`.
#[pin_data]
pub(crate) struct Instance {
    /// The network namespace of the task that made the instance.
    net: ARef<Namespace>,
    #[pin]
    inner: Mutex<Inner>,
}

struct Inner {
    name: CString,
    params: Params,
    /// The document root as written (absolute).
    root_path: Option<CString>,
    /// While enabled. Dropping it (also at `rmdir`) stops the server and waits for it.
    running: Option<Running>,
}

fn name_of(inner: &Inner) -> &str {
    inner.name.to_str().unwrap_or("?")
}

/// Reports a rejected attribute write.
fn invalid(inner: &Inner, attr: &str, page: &[u8], want: &str) -> Error {
    let text = core::str::from_utf8(params::trim(page)).unwrap_or("(not UTF-8)");
    pr_err!("{}: {}: '{}' is not {}\n", name_of(inner), attr, text, want);
    EINVAL
}

impl Instance {
    /// Locks the instance for a parameter change: refused while enabled.
    fn edit(&self, attr: &str) -> Result<kernel::sync::MutexGuard<'_, Inner>> {
        let inner = self.inner.lock();
        if inner.running.is_some() {
            pr_err!(
                "{}: {} cannot change while the instance is enabled\n",
                name_of(&inner),
                attr
            );
            return Err(EBUSY);
        }
        Ok(inner)
    }

    fn show_with(
        &self,
        page: &mut [u8; PAGE_SIZE],
        f: impl FnOnce(&Inner, &mut Formatter<'_>) -> Result,
    ) -> Result<usize> {
        let inner = self.inner.lock();
        let mut w = Formatter::new(page);
        f(&inner, &mut w)?;
        Ok(w.bytes_written())
    }

    /// Stores a number attribute in `min..=max`.
    fn store_u32(
        &self,
        attr: &str,
        page: &[u8],
        min: u32,
        max: u32,
        set: impl FnOnce(&mut Params, u32),
    ) -> Result {
        let mut inner = self.edit(attr)?;
        let Some(v) = params::parse_u32(page, min, max) else {
            pr_err!(
                "{}: {}: '{}' is not a number from {} to {}\n",
                name_of(&inner),
                attr,
                core::str::from_utf8(params::trim(page)).unwrap_or("(not UTF-8)"),
                min,
                max
            );
            return Err(EINVAL);
        };
        set(&mut inner.params, v);
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<0> for Instance {
    type Data = Instance;

    fn show(this: &Instance, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        this.show_with(page, |i, w| {
            writeln!(w, "{}", u8::from(i.running.is_some()))?;
            Ok(())
        })
    }

    fn store(this: &Instance, page: &[u8]) -> Result {
        let mut inner = this.inner.lock();
        let Some(on) = params::parse_bool(page) else {
            return Err(invalid(&inner, "enable", page, "0 or 1"));
        };
        match (on, inner.running.is_some()) {
            (true, false) => {
                if inner.params.port == 0 {
                    pr_err!("{}: enable: no port set\n", name_of(&inner));
                    return Err(EINVAL);
                }
                let Some(path) = inner.root_path.as_ref() else {
                    pr_err!("{}: enable: no document root set\n", name_of(&inner));
                    return Err(EINVAL);
                };
                let root = RootedDir::open(path).inspect_err(|e| {
                    pr_err!(
                        "{}: enable: cannot open the document root: error {}\n",
                        name_of(&inner),
                        e.to_errno()
                    )
                })?;
                let running = crate::start(&inner.name, &this.net, inner.params, root)?;
                inner.running = Some(running);
            }
            (false, true) => {
                // Stops the listeners and connections and waits for the workers.
                drop(inner.running.take());
            }
            _ => {}
        }
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<1> for Instance {
    type Data = Instance;

    fn show(this: &Instance, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        this.show_with(page, |i, w| {
            params::write_addr(w, &i.params.addr)?;
            w.write_char('\n')?;
            Ok(())
        })
    }

    fn store(this: &Instance, page: &[u8]) -> Result {
        let mut inner = this.edit("address")?;
        let Some(addr) = params::parse_addr(page) else {
            return Err(invalid(&inner, "address", page, "an IPv4 or IPv6 address"));
        };
        inner.params.addr = addr;
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<2> for Instance {
    type Data = Instance;

    fn show(this: &Instance, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        this.show_with(page, |i, w| {
            writeln!(w, "{}", i.params.port)?;
            Ok(())
        })
    }

    fn store(this: &Instance, page: &[u8]) -> Result {
        this.store_u32("port", page, 1, 65535, |p, v| p.port = v as u16)
    }
}

#[vtable]
impl AttributeOperations<3> for Instance {
    type Data = Instance;

    fn show(this: &Instance, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        this.show_with(page, |i, w| {
            if let Some(p) = &i.root_path {
                writeln!(w, "{}", p.to_str().unwrap_or("?"))?;
            }
            Ok(())
        })
    }

    fn store(this: &Instance, page: &[u8]) -> Result {
        let mut inner = this.edit("root")?;
        let Some(path) = params::parse_root(page) else {
            return Err(invalid(
                &inner,
                "root",
                page,
                "an absolute path without . or .. segments",
            ));
        };
        let mut bytes = KVec::with_capacity(path.len() + 1, GFP_KERNEL)?;
        bytes.extend_from_slice(path, GFP_KERNEL)?;
        bytes.push(0, GFP_KERNEL)?;
        let path = CString::try_from(CStr::from_bytes_with_nul(&bytes).map_err(|_| EINVAL)?)?;
        // Refuse what is not a directory now rather than at `enable`.
        if let Err(e) = RootedDir::open(&path) {
            pr_err!(
                "{}: root: '{}' is not a directory that can be opened: error {}\n",
                name_of(&inner),
                path.to_str().unwrap_or("?"),
                e.to_errno()
            );
            return Err(EINVAL);
        }
        inner.root_path = Some(path);
        Ok(())
    }
}

macro_rules! number_attr {
    ($id:literal, $name:literal, $field:ident, $min:expr, $max:expr) => {
        #[vtable]
        impl AttributeOperations<$id> for Instance {
            type Data = Instance;

            fn show(this: &Instance, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
                this.show_with(page, |i, w| {
                    writeln!(w, "{}", i.params.$field)?;
                    Ok(())
                })
            }

            fn store(this: &Instance, page: &[u8]) -> Result {
                this.store_u32($name, page, $min, $max, |p, v| p.$field = v)
            }
        }
    };
}

number_attr!(4, "workers", workers, 1, params::MAX_WORKERS);
number_attr!(
    5,
    "max_connections",
    max_connections,
    1,
    params::MAX_CONNECTIONS
);
number_attr!(6, "timeout_ms", timeout_ms, 1, params::MAX_TIMEOUT_MS);

#[vtable]
impl AttributeOperations<7> for Instance {
    type Data = Instance;

    fn show(this: &Instance, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        this.show_with(page, |i, w| match &i.running {
            Some(r) => r.server.write_stats(w),
            None => {
                w.write_str("disabled\n")?;
                Ok(())
            }
        })
    }
}
