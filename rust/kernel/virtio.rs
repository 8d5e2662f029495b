// SPDX-License-Identifier: GPL-2.0

//! Virtio drivers.
//!
//! A virtio driver implements [`Driver`]: the device IDs it binds ([`DeviceId`], declared with
//! [`virtio_device_table!`]), the feature bits it supports, `probe` and `unbind`, and optionally
//! a reaction to configuration changes. Feature negotiation is done by the virtio core before
//! `probe`: the driver sees the negotiated set through [`Device::has_feature`]. Virtqueues are
//! found with [`virtqueue::Virtqueues::new`].
//!
//! C headers: [`include/linux/virtio.h`](srctree/include/linux/virtio.h) and
//! [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h)

use crate::{
    bindings, device,
    device_id::RawDeviceId,
    driver,
    error::{from_result, to_result, VTABLE_DEFAULT_ERROR},
    prelude::*,
    types::Opaque,
    ThisModule,
};
use core::{marker::PhantomData, mem::offset_of, ptr::NonNull};

pub mod virtqueue;

/// An adapter for the registration of virtio drivers.
pub struct Adapter<T: Driver>(T);

// SAFETY:
// - `bindings::virtio_driver` is a C type declared as `repr(C)`.
// - `T::Data` is the type of the driver's device private data.
// - `struct virtio_driver` embeds a `struct device_driver`.
// - `DEVICE_DRIVER_OFFSET` is the correct byte offset to the embedded `struct device_driver`.
unsafe impl<T: Driver> driver::DriverLayout for Adapter<T> {
    type DriverType = bindings::virtio_driver;
    type DriverData<'bound> = T::Data<'bound>;
    const DEVICE_DRIVER_OFFSET: usize = offset_of!(Self::DriverType, driver);
}

// SAFETY: A call to `unregister` for a given instance of `DriverType` is guaranteed to be valid if
// a preceding call to `register` has been successful.
unsafe impl<T: Driver> driver::RegistrationOps for Adapter<T> {
    unsafe fn register(
        vdrv: &Opaque<Self::DriverType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        let features = T::FEATURES;
        let nr_features = u32::try_from(features.len()).map_err(|_| EINVAL)?;

        // SAFETY: It's safe to set the fields of `struct virtio_driver` on initialization.
        unsafe {
            let drv = vdrv.get();
            (*drv).driver.name = name.as_char_ptr();
            (*drv).id_table = T::ID_TABLE.as_ptr();
            (*drv).feature_table = features.as_ptr();
            (*drv).feature_table_size = nr_features;
            (*drv).probe = Some(Self::probe_callback);
            (*drv).remove = Some(Self::remove_callback);
            if T::HAS_CONFIG_CHANGED {
                (*drv).config_changed = Some(Self::config_changed_callback);
            }
        }

        // SAFETY: `vdrv` is guaranteed to be a valid `DriverType`, `module` outlives it.
        to_result(unsafe { bindings::__register_virtio_driver(vdrv.get(), module.as_ptr()) })
    }

    unsafe fn unregister(vdrv: &Opaque<Self::DriverType>) {
        // SAFETY: `vdrv` is guaranteed to be a valid, registered `DriverType`.
        unsafe { bindings::unregister_virtio_driver(vdrv.get()) }
    }
}

impl<T: Driver> Adapter<T> {
    extern "C" fn probe_callback(vdev: *mut bindings::virtio_device) -> c_int {
        // SAFETY: The virtio core only calls probe with a valid pointer to a `struct
        // virtio_device`.
        //
        // INVARIANT: `vdev` is valid for the duration of `probe_callback()`.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        from_result(|| {
            let data = T::probe(vdev);

            vdev.as_ref().set_drvdata(data)?;
            Ok(0)
        })
    }

    extern "C" fn remove_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: The virtio core only calls remove with a valid pointer to a `struct
        // virtio_device`.
        //
        // INVARIANT: `vdev` is valid for the duration of `remove_callback()`.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        // SAFETY: `remove_callback` is only ever called after a successful call to
        // `probe_callback`, hence it's guaranteed that `Device::set_drvdata()` has been called
        // and stored a `Pin<KBox<T::Data<'_>>>`.
        let data = unsafe { vdev.as_ref().drvdata_borrow::<T::Data<'_>>() };

        T::unbind(vdev, data);

        // The virtio core requires the device to be reset when remove returns; the driver's data
        // (and with it its virtqueues) is dropped after this.
        //
        // SAFETY: `vdev.as_raw()` is a valid `struct virtio_device`.
        unsafe { bindings::virtio_reset_device(vdev.as_raw()) };
    }

    extern "C" fn config_changed_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: The virtio core only calls `config_changed` with a valid pointer to a bound
        // `struct virtio_device` (between the end of probe and the start of remove).
        let vdev = unsafe { &*vdev.cast::<Device<device::BoundInternal>>() };

        // SAFETY: `config_changed` is only called between a successful probe and remove, so the
        // driver data set by `probe_callback` is there.
        let data = unsafe { vdev.as_ref().drvdata_borrow::<T::Data<'_>>() };

        T::config_changed(vdev, data);
    }
}

/// Declares a kernel module that exposes a single virtio driver.
///
/// # Examples
///
/// ```ignore
/// kernel::module_virtio_driver! {
///     type: MyDriver,
///     name: "my_virtio_driver",
///     authors: ["Me"],
///     description: "My virtio driver",
///     license: "GPL v2",
/// }
/// ```
#[macro_export]
macro_rules! module_virtio_driver {
    ($($f:tt)*) => {
        $crate::module_driver!(<T>, $crate::virtio::Adapter<T>, { $($f)* });
    };
}

/// Abstraction for `bindings::virtio_device_id`.
///
/// The C structure has no driver data, so a virtio ID table carries no per-ID information; a
/// driver looks at [`Device::device_id`] when it binds several device types.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::virtio_device_id);

impl DeviceId {
    /// Matches any vendor (`VIRTIO_DEV_ANY_ID`).
    pub const ANY_VENDOR: u32 = bindings::VIRTIO_DEV_ANY_ID;

    /// A device ID (`VIRTIO_ID_*`) from any vendor.
    pub const fn new(device: u32) -> Self {
        Self(bindings::virtio_device_id {
            device,
            vendor: Self::ANY_VENDOR,
        })
    }
}

// SAFETY: `DeviceId` is a `#[repr(transparent)]` wrapper of `virtio_device_id` and does not add
// additional invariants, so it's safe to transmute to `RawType`.
unsafe impl RawDeviceId for DeviceId {
    type RawType = bindings::virtio_device_id;
}

/// IdTable type for virtio drivers.
pub type IdTable = &'static dyn kernel::device_id::IdTable<DeviceId, ()>;

/// Creates a virtio `IdTable` with its alias for modpost.
///
/// # Examples
///
/// ```ignore
/// kernel::virtio_device_table!(
///     VIRTIO_TABLE,
///     [virtio::DeviceId::new(kernel::bindings::VIRTIO_ID_GPU)]
/// );
/// ```
#[macro_export]
macro_rules! virtio_device_table {
    ($table_name:ident, [$($id:expr),* $(,)?]) => {
        $crate::module_device_table!(
            "virtio", $crate::virtio::DeviceId, $table_name, @none, [$($id),*]
        );
    };
}

/// The virtio driver trait.
///
/// Drivers must implement this trait in order to get a virtio driver registered.
#[vtable]
pub trait Driver {
    /// The type of the driver's bus device private data.
    type Data<'bound>: Send + 'bound;

    /// The table of device ids supported by the driver.
    const ID_TABLE: IdTable;

    /// The feature bits the driver supports (`VIRTIO_*_F_*`).
    ///
    /// The virtio core offers the device the intersection of these and the device's features
    /// before [`Driver::probe`]; [`Device::has_feature`] tells what was negotiated. Transport
    /// features (such as `VIRTIO_F_VERSION_1`) are negotiated by the core and need not be
    /// listed.
    const FEATURES: &'static [u32];

    /// Virtio driver probe.
    ///
    /// Called when a virtio device matches the driver, after feature negotiation. The device
    /// becomes live (`DRIVER_OK`) when probe returns unless the driver calls
    /// [`Device::ready`] earlier to use its virtqueues in probe.
    fn probe<'bound>(
        dev: &'bound Device<device::Core<'_>>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound;

    /// Virtio driver unbind.
    ///
    /// Called when the device is unbound from the driver, while the device still runs: the last
    /// point where the driver can talk to it. The adapter resets the device after this returns;
    /// the driver data (and with it any [`virtqueue::Virtqueues`]) is dropped after that.
    fn unbind<'bound>(dev: &'bound Device<device::Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        let _ = (dev, this);
    }

    /// The device's configuration space changed.
    ///
    /// Called in atomic context (under the virtio core's configuration spinlock, interrupts off),
    /// only between the end of a successful probe and the start of unbind. Drivers that need to
    /// sleep schedule work from here.
    fn config_changed(dev: &Device<device::Bound>, this: Pin<&Self::Data<'_>>) {
        let _ = (dev, this);
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The virtio device representation.
///
/// This structure represents the Rust abstraction for a C `struct virtio_device`. The
/// implementation abstracts the usage of an already existing C `struct virtio_device` within Rust
/// code that we get passed from the C side.
///
/// # Invariants
///
/// A [`Device`] instance represents a valid `struct virtio_device` created by the C portion of the
/// kernel.
#[repr(transparent)]
pub struct Device<Ctx: device::DeviceContext = device::Normal>(
    Opaque<bindings::virtio_device>,
    PhantomData<Ctx>,
);

/// A value in a device's configuration space.
///
/// Implemented for the widths the virtio core reads and writes with the device's endianness
/// conversion (`virtio_cread8/16/32/64`).
pub trait ConfigValue: Copy + private::Sealed {
    /// Reads the value at `offset`.
    ///
    /// # Safety
    ///
    /// `vdev` must be a valid `struct virtio_device` bound to a driver.
    #[doc(hidden)]
    unsafe fn read(vdev: *mut bindings::virtio_device, offset: u32) -> Self;
}

mod private {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

macro_rules! impl_config_value {
    ($($ty:ty => $read:ident),* $(,)?) => {$(
        impl ConfigValue for $ty {
            unsafe fn read(vdev: *mut bindings::virtio_device, offset: u32) -> Self {
                // SAFETY: The caller guarantees that `vdev` is valid and bound.
                unsafe { bindings::$read(vdev, offset) }
            }
        }
    )*};
}

impl_config_value!(u8 => virtio_cread8, u16 => virtio_cread16, u32 => virtio_cread32,
                   u64 => virtio_cread64);

impl<Ctx: device::DeviceContext> Device<Ctx> {
    pub(crate) fn as_raw(&self) -> *mut bindings::virtio_device {
        self.0.get()
    }

    /// Returns the virtio device type (`VIRTIO_ID_*`).
    pub fn device_id(&self) -> u32 {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`; the
        // ID is set before the device is registered and never changes.
        unsafe { (*self.as_raw()).id.device }
    }

    /// Returns the vendor ID the transport reported.
    pub fn vendor_id(&self) -> u32 {
        // SAFETY: As in `device_id`.
        unsafe { (*self.as_raw()).id.vendor }
    }
}

impl Device<device::Bound> {
    /// Returns whether feature bit `bit` was negotiated with the device.
    ///
    /// Driver features are the ones listed in [`Driver::FEATURES`]; transport features (such as
    /// `VIRTIO_F_VERSION_1`) are the ones the core negotiated.
    pub fn has_feature(&self, bit: u32) -> bool {
        if bit >= bindings::VIRTIO_FEATURES_BITS {
            return false;
        }
        // SAFETY: By the type invariant `self.as_raw()` is valid; the features are fixed once a
        // driver is bound; `bit` is in range.
        unsafe { bindings::virtio_has_feature(self.as_raw(), bit) }
    }

    /// Reads a value of the device's configuration space, converted from the device's
    /// endianness.
    ///
    /// `offset` is the byte offset of the field in the device type's configuration structure.
    /// The field must exist on this device: either the device type always has it, or it is gated
    /// by a feature that [`Device::has_feature`] reports. The transport checks that the access
    /// lies within the configuration space it mapped (on PCI a violation is a `BUG`), so an
    /// offset past the structure the device type's specification defines is a driver bug.
    pub fn read_config<T: ConfigValue>(&self, offset: u32) -> T {
        // SAFETY: By the type invariant `self.as_raw()` is valid, and the device is bound.
        unsafe { T::read(self.as_raw(), offset) }
    }

    /// Returns the transport's device (the PCI function of a virtio-pci device).
    ///
    /// The device's DMA goes through it: memory the device reads or writes outside the
    /// virtqueues (such as buffers whose addresses a command carries) is mapped for this device.
    pub fn parent(&self) -> Option<&device::Device<device::Bound>> {
        let parent = self.as_ref().parent()?;
        // SAFETY: A transport registers a virtio device while bound to its own device and
        // unregisters it before it unbinds, so the parent of a bound virtio device is bound.
        Some(unsafe { parent.as_bound() })
    }

    /// Writes a 32-bit value of the device's configuration space, converted to the device's
    /// endianness. `offset` is as for [`Device::read_config`].
    pub fn write_config_u32(&self, offset: u32, value: u32) {
        // SAFETY: By the type invariant `self.as_raw()` is valid, and the device is bound.
        unsafe { bindings::virtio_cwrite32(self.as_raw(), offset, value) }
    }
}

impl Device<device::Core<'_>> {
    /// Sets the device live (`DRIVER_OK`) so the driver can use its virtqueues during probe.
    ///
    /// Without this the virtio core does it when probe returns. Calling it again does nothing.
    pub fn ready(&self) {
        let vdev = self.as_raw();
        // SAFETY: By the type invariant `vdev` is valid; the transport's `get_status` is always
        // set.
        let status = unsafe { (*(*vdev).config).get_status.map(|get| get(vdev)) };
        if status.is_some_and(|s| s & bindings::VIRTIO_CONFIG_S_DRIVER_OK as u8 != 0) {
            return;
        }
        // SAFETY: `vdev` is valid and in probe, where the device may be set live once.
        unsafe { bindings::virtio_device_ready(vdev) }
    }
}

// SAFETY: `virtio::Device` is a transparent wrapper of `struct virtio_device`.
// The offset is guaranteed to point to a valid device field inside `virtio::Device`.
unsafe impl<Ctx: device::DeviceContext> device::AsBusDevice<Ctx> for Device<Ctx> {
    const OFFSET: usize = offset_of!(bindings::virtio_device, dev);
}

// SAFETY: `Device` is a transparent wrapper of a type that doesn't depend on `Device`'s generic
// argument.
kernel::impl_device_context_deref!(unsafe { Device });
kernel::impl_device_context_into_aref!(Device);

// SAFETY: Instances of `Device` are always reference-counted.
unsafe impl crate::sync::aref::AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference guarantees that the refcount is non-zero.
        unsafe { bindings::get_device(self.as_ref().as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // CAST: `Self` a transparent wrapper of `bindings::virtio_device`.
        let vdev: *mut bindings::virtio_device = obj.cast().as_ptr();

        // SAFETY: By the type invariant of `Self`, `vdev` is a pointer to a valid
        // `struct virtio_device`.
        let dev = unsafe { &raw mut (*vdev).dev };

        // SAFETY: The safety requirements guarantee that the refcount is non-zero.
        unsafe { bindings::put_device(dev) }
    }
}

impl<Ctx: device::DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: By the type invariant of `Self`, `self.as_raw()` is a pointer to a valid
        // `struct virtio_device`.
        let dev = unsafe { &raw mut (*self.as_raw()).dev };

        // SAFETY: `dev` points to a valid `struct device`.
        unsafe { device::Device::from_raw(dev) }
    }
}

// SAFETY: A `Device` is always reference-counted and can be released from any thread.
unsafe impl Send for Device {}

// SAFETY: `Device` can be shared among threads because all methods of `Device`
// (i.e. `Device<Normal>) are thread safe.
unsafe impl Sync for Device {}

// SAFETY: Same as `Device<Normal>`: `Bound` is a zero-sized type-state marker that does not
// affect thread safety, and every `Bound` method is thread safe.
unsafe impl Sync for Device<device::Bound> {}
