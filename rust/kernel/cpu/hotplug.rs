// SPDX-License-Identifier: GPL-2.0

//! CPU hotplug callbacks: objects told as CPUs come online and go offline.
//!
//! A [`State`] is a dynamic multi-instance hotplug state (`CPUHP_AP_ONLINE_DYN`); each
//! [`Registration`] is an instance of it, told of every CPU that is online when it is
//! registered and of every CPU that comes or goes while it is.
//!
//! C header: [`include/linux/cpuhotplug.h`](srctree/include/linux/cpuhotplug.h)

use crate::{
    bindings,
    cpu::CpuId,
    error::{to_result, Error, Result},
    prelude::*,
    str::CStr,
    sync::Arc,
    types::Opaque,
};
use core::{ffi::c_int, marker::PhantomData};

/// What an instance of a [`State`] is told.
///
/// Both run on the CPU concerned, in its hotplug thread (process context, may sleep), with CPU
/// hotplug held off; calls for one instance are serialised.
pub trait Callbacks: Send + Sync {
    /// `cpu` came online, or was online when the instance was registered. An error refuses the
    /// CPU (its bring-up is rolled back) or the registration.
    fn online(&self, cpu: CpuId) -> Result;
    /// `cpu` goes offline, or the instance is unregistered while it is online.
    fn offline(&self, cpu: CpuId);
}

/// A dynamic multi-instance CPU hotplug state, removed when the last reference goes (after
/// every [`Registration`] of it, each of which holds one).
///
/// # Invariants
///
/// `id` is a state set up by `cpuhp_setup_state_multi()` with the callbacks of `T`, not yet
/// removed.
pub struct State<T: Callbacks> {
    id: c_int,
    _t: PhantomData<fn(T)>,
}

impl<T: Callbacks> State<T> {
    /// Sets up a state named `name` (shown in `/sys/devices/system/cpu/hotplug/states`).
    pub fn new(name: &'static CStr) -> Result<Arc<Self>> {
        // SAFETY: `name` lives forever; the callbacks have the multi-instance signature, cast
        // as `cpuhp_setup_state_multi()` does.
        let id = unsafe {
            bindings::__cpuhp_setup_state(
                bindings::cpuhp_state_CPUHP_AP_ONLINE_DYN,
                name.as_char_ptr(),
                false,
                Some(core::mem::transmute::<
                    unsafe extern "C" fn(u32, *mut bindings::hlist_node) -> c_int,
                    unsafe extern "C" fn(u32) -> c_int,
                >(Self::online_callback)),
                Some(core::mem::transmute::<
                    unsafe extern "C" fn(u32, *mut bindings::hlist_node) -> c_int,
                    unsafe extern "C" fn(u32) -> c_int,
                >(Self::offline_callback)),
                true,
            )
        };
        if id < 0 {
            return Err(Error::from_errno(id));
        }
        // INVARIANT: a dynamic state's number is positive and set up as required.
        Ok(Arc::new(
            State {
                id,
                _t: PhantomData,
            },
            GFP_KERNEL,
        )?)
    }

    /// # Safety
    ///
    /// `node` is the `node` of a registered `Registration<T>`.
    unsafe fn registration<'a>(node: *mut bindings::hlist_node) -> &'a Registration<T> {
        // SAFETY: `node` is embedded in a `Registration<T>` (the function's requirement), which
        // stays registered, so alive, for the callback.
        unsafe { &*crate::container_of!(Opaque::cast_from(node).cast_mut(), Registration<T>, node) }
    }

    /// # Safety
    ///
    /// The hotplug core calls it with an online CPU's number and an instance's `node`.
    unsafe extern "C" fn online_callback(cpu: u32, node: *mut bindings::hlist_node) -> c_int {
        // SAFETY: the hotplug core calls with a CPU number below `nr_cpu_ids`.
        let cpu = unsafe { CpuId::from_u32_unchecked(cpu) };
        // SAFETY: the hotplug core passes the node of one of this state's instances, all of
        // them `Registration<T>`s.
        match unsafe { Self::registration(node) }.data.online(cpu) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// As for `online_callback`.
    unsafe extern "C" fn offline_callback(cpu: u32, node: *mut bindings::hlist_node) -> c_int {
        // SAFETY: as in `online_callback`.
        let cpu = unsafe { CpuId::from_u32_unchecked(cpu) };
        // SAFETY: as in `online_callback`.
        unsafe { Self::registration(node) }.data.offline(cpu);
        0
    }
}

impl<T: Callbacks> Drop for State<T> {
    fn drop(&mut self) {
        // SAFETY: the state is set up (invariant) and has no instances left: each holds a
        // reference to `self`. Removing it waits for no callback (none can run without an
        // instance).
        unsafe { bindings::__cpuhp_remove_state(self.id, false) }
    }
}

/// An instance of a [`State`]: `data` is told of CPUs coming and going while this lives.
///
/// # Invariants
///
/// `node` is added to `state` while `added` is true.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Callbacks> {
    #[pin]
    node: Opaque<bindings::hlist_node>,
    state: Arc<State<T>>,
    data: T,
    added: bool,
}

impl<T: Callbacks> Registration<T> {
    /// Registers `data` with `state`: [`Callbacks::online`] is called for each online CPU
    /// before this returns. If one fails, `offline` is called for those that succeeded and the
    /// error is returned.
    pub fn new(state: Arc<State<T>>, data: T) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            node <- Opaque::uninit(),
            state,
            data,
            added: false,
        }? Error)
        .pin_chain(|mut this| {
            // SAFETY: `this` is pinned and fully initialised; the node is ours to link; the
            // callbacks may run (on other CPUs) from here on and find `data` ready.
            to_result(unsafe {
                bindings::__cpuhp_state_add_instance(this.state.id, this.node.get(), true)
            })?;
            // INVARIANT: added just above.
            *this.as_mut().project().added = true;
            Ok(())
        })
    }

    /// The registered object.
    pub fn data(&self) -> &T {
        &self.data
    }
}

#[pinned_drop]
impl<T: Callbacks> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        if !self.added {
            return;
        }
        // SAFETY: the node is added (invariant); removing it calls `offline` for each online
        // CPU and waits for the callbacks, so none runs on `data` after this.
        unsafe { bindings::__cpuhp_state_remove_instance(self.state.id, self.node.get(), true) };
    }
}

#[macros::kunit_tests(rust44_cpu_hotplug)]
mod tests {
    use super::*;
    use crate::sync::atomic::{Atomic, Relaxed};

    struct Count {
        online: Atomic<u32>,
        offline: &'static Atomic<u32>,
        fail_on: Option<u32>,
    }

    impl Callbacks for Count {
        fn online(&self, cpu: CpuId) -> Result {
            if Some(cpu.as_u32()) == self.fail_on {
                return Err(crate::error::code::EIO);
            }
            self.online.fetch_add(1, Relaxed);
            Ok(())
        }

        fn offline(&self, _cpu: CpuId) {
            self.offline.fetch_add(1, Relaxed);
        }
    }

    fn online_cpus() -> u32 {
        crate::cpu::online_cpus().count() as u32
    }

    #[test]
    fn each_online_cpu_comes_and_goes() -> Result {
        static OFFLINE: Atomic<u32> = Atomic::new(0);
        let state = State::<Count>::new(c"rust44:kunit")?;
        let reg = KBox::pin_init(
            Registration::new(
                state.clone(),
                Count {
                    online: Atomic::new(0),
                    offline: &OFFLINE,
                    fail_on: None,
                },
            ),
            GFP_KERNEL,
        )?;
        assert_eq!(reg.data().online.load(Relaxed), online_cpus());
        assert_eq!(OFFLINE.load(Relaxed), 0);
        drop(reg);
        assert_eq!(OFFLINE.load(Relaxed), online_cpus());
        Ok(())
    }

    #[test]
    fn a_failed_online_rolls_back() -> Result {
        static OFFLINE: Atomic<u32> = Atomic::new(0);
        let state = State::<Count>::new(c"rust44:kunit")?;
        // The last online CPU refuses: those before it are told offline again.
        let last = crate::cpu::online_cpus().last().map(|c| c.as_u32());
        let reg = KBox::pin_init(
            Registration::new(
                state,
                Count {
                    online: Atomic::new(0),
                    offline: &OFFLINE,
                    fail_on: last,
                },
            ),
            GFP_KERNEL,
        );
        assert_eq!(reg.err(), Some(crate::error::code::EIO));
        assert_eq!(OFFLINE.load(Relaxed), online_cpus() - 1);
        Ok(())
    }
}
