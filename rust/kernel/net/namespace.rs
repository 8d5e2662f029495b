// SPDX-License-Identifier: GPL-2.0

//! Network namespaces.
//!
//! C header: [`include/net/net_namespace.h`](srctree/include/net/net_namespace.h)

use crate::{
    bindings,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::ptr::NonNull;

/// A network namespace (`struct net`): the interfaces, addresses, routes and ports a socket
/// created in it sees.
///
/// Shared references come from [`Namespace::init`] or an [`ARef<Namespace>`], which holds a
/// reference on the namespace (`get_net()`).
#[repr(transparent)]
pub struct Namespace(Opaque<bindings::net>);

impl Namespace {
    /// The initial network namespace, which lives as long as the kernel.
    pub fn init() -> &'static Namespace {
        // SAFETY: `init_net` is never freed.
        unsafe { Self::from_raw(&raw const bindings::init_net) }
    }

    /// The network namespace of the calling task; `None` once the task is exiting.
    ///
    /// An object configured by a task (a server made by writing to configfs, say) lives in the
    /// namespace of that task, as a socket it created would.
    pub fn current() -> Option<ARef<Namespace>> {
        // SAFETY: the helper reads the calling task's own `nsproxy`, which only the task itself
        // replaces (`unshare()`, `setns()`, exit), and takes a reference on its namespace.
        let net = NonNull::new(unsafe { bindings::current_net_get() })?;
        // SAFETY: the reference just taken is handed to the `ARef`.
        Some(unsafe { ARef::from_raw(net.cast()) })
    }

    /// Borrows a namespace from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` points to a `struct net` that stays alive (referenced) for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *const bindings::net) -> &'a Namespace {
        // SAFETY: `Namespace` is a transparent wrapper of `struct net`; the caller keeps it
        // alive for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct net`.
    pub fn as_raw(&self) -> *mut bindings::net {
        self.0.get()
    }

    /// Whether this is the initial namespace.
    pub fn is_init(&self) -> bool {
        self == Self::init()
    }
}

impl PartialEq for Namespace {
    /// The same namespace (`net_eq()`).
    fn eq(&self, other: &Self) -> bool {
        core::ptr::eq(self.as_raw(), other.as_raw())
    }
}

impl Eq for Namespace {}

// SAFETY: `get_net()` and `put_net()` keep the namespace alive while the count is not zero; the
// last `put_net()` frees it (from a work item, in any context).
unsafe impl AlwaysRefCounted for Namespace {
    fn inc_ref(&self) {
        // SAFETY: a shared reference means the namespace is alive and referenced.
        unsafe { bindings::get_net(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives back a reference it held.
        unsafe { bindings::put_net(obj.cast().as_ptr()) }
    }
}

// SAFETY: a namespace is not tied to a thread; its reference may be dropped on any.
unsafe impl Send for Namespace {}

// SAFETY: what is read through `&Namespace` (its address) never changes.
unsafe impl Sync for Namespace {}

#[macros::kunit_tests(rust44_net_namespace)]
mod tests {
    use super::*;

    #[test]
    fn the_kunit_thread_lives_in_the_initial_namespace() {
        let net = Namespace::current();
        assert!(net.is_some());
        if let Some(net) = net {
            assert!(net.is_init());
            assert!(*net == *Namespace::init());
        }
    }
}
