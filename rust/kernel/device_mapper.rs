// SPDX-License-Identifier: GPL-2.0

//! Device-mapper targets.
//!
//! C header: [`include/linux/device-mapper.h`](srctree/include/linux/device-mapper.h)
//!
//! A target is a type that implements [`Target`]; a [`Registration`] makes it known to
//! device-mapper under [`Target::NAME`], so `dmsetup create dev --table "0 <len> <name> <args>"`
//! builds one with [`Target::new`] from the table's arguments. It is destroyed (`dtr`) by `Drop`
//! once device-mapper no longer sends it I/O. The devices it opens with [`Ctr::get_device`] are
//! put back by device-mapper's rules after the target is dropped.
//!
//! A target may keep data of its own with every bio it maps ([`Target::PerBio`], device-mapper's
//! per-bio data), set in [`Target::map`] through [`TargetBio::per_bio`] and read again when the
//! bio ends, in [`Target::end_io`]: there a target can take a failed bio back
//! ([`EndingBio::take`]) and answer it another way, e.g. a RAID target reading it again from the
//! other members.
//!
//! Registering sets the target's module as its owner: device-mapper holds a reference on the
//! module while any table uses the target, so it cannot be unloaded under one.

use crate::{
    alloc::{KBox, KVec},
    bindings,
    block::{
        bio::{Bdev, Bio, BioRecord, Remapped},
        disk::QueueLimits,
        mq::ReqOp,
    },
    error::{code::*, from_result, to_result, Error, Result, VTABLE_DEFAULT_ERROR},
    ffi::{c_char, c_int, c_uint, c_void},
    prelude::*,
    str::CStr,
    sync::atomic::{Atomic, Relaxed},
    types::Opaque,
    ThisModule,
};
use core::{fmt, marker::PhantomData, ptr::NonNull};

/// What [`Target::new`] returns on failure: the error and the message device-mapper logs with
/// it (`ti->error`, shown as `device-mapper: table: <dev>: <target>: <message>`).
#[derive(Debug)]
pub struct CtrError {
    /// The error returned to `dmsetup`.
    pub error: Error,
    /// What was wrong.
    pub message: &'static CStr,
}

impl CtrError {
    /// An `EINVAL` with `message`: a table the target does not accept.
    pub fn invalid(message: &'static CStr) -> Self {
        Self {
            error: EINVAL,
            message,
        }
    }

    /// `error` with `message`.
    pub fn new(error: Error, message: &'static CStr) -> Self {
        Self { error, message }
    }
}

/// What [`Target::map`] did with a bio.
pub enum MapResult {
    /// Sent on to a device below.
    Remapped(Remapped),
    /// The target took the bio and will end it itself.
    Submitted,
    /// Device-mapper should send the bio again later.
    Requeue(Bio),
    /// Device-mapper should fail the bio with an I/O error.
    Kill(Bio),
}

/// A bio device-mapper hands to [`Target::map`], with the target's data for it (`D`, its
/// [`Target::PerBio`]).
///
/// Reading the bio goes through `Deref`; [`TargetBio::into_bio`] takes it to answer later.
///
/// # Invariants
///
/// `bio` is a bio device-mapper passed to the `map` of a target whose per-bio data is a `D`,
/// initialised: device-mapper keeps `size_of::<D>()` bytes for it right in front of the bio's
/// `struct dm_target_io`, for as long as the bio lives.
pub struct TargetBio<D> {
    bio: Bio,
    _data: PhantomData<D>,
}

impl<D> TargetBio<D> {
    /// The target's data for this bio (`dm_per_bio_data()`); [`Target::end_io`] sees what is
    /// left here.
    pub fn per_bio(&mut self) -> &mut D {
        // SAFETY: By the type invariant, the data is there and initialised; `&mut self` owns the
        // bio, and device-mapper does not touch the data.
        unsafe { &mut *per_bio_data::<D>(self.bio.ptr()) }
    }

    /// Keeps the first `sectors` of the bio for this call of `map`; device-mapper sends the rest
    /// to the target again as another bio (`dm_accept_partial_bio()`). This splits I/O at
    /// boundaries that depend on where the bio starts (a chunk, a zone); fixed boundaries are
    /// [`Ctr::set_max_io_len`]'s.
    ///
    /// Fails with `EINVAL`, changing nothing, unless the bio is a read, or a write to a device
    /// that is not zoned, without `REQ_PREFLUSH` or `REQ_ATOMIC`, and `sectors` is from 1 to its
    /// size.
    pub fn accept_partial(&mut self, sectors: u32) -> Result {
        let bio = &self.bio;
        let splittable = match bio.op() {
            ReqOp::Read => true,
            ReqOp::Write => !bio.bdev().is_zoned(),
            _ => false,
        };
        if !splittable
            || bio.is_preflush()
            || bio.is_atomic()
            || sectors == 0
            || sectors > bio.sectors()
        {
            return Err(EINVAL);
        }
        // SAFETY: A bio in `map` (type invariant); the checks above are the function's
        // conditions for a bio split by device-mapper's own path (never a duplicate: those are
        // flushes, discards and write-zeroes).
        unsafe { bindings::dm_accept_partial_bio(self.bio.ptr(), sectors) };
        Ok(())
    }

    /// Points the bio at `bdev` from `sector` ([`Bio::remap`]).
    pub fn remap(self, bdev: &Bdev, sector: u64) -> Remapped {
        self.bio.remap(bdev, sector)
    }

    /// The bio, to keep and answer later; its data stays for [`Target::end_io`].
    pub fn into_bio(self) -> Bio {
        self.bio
    }
}

impl<D> core::ops::Deref for TargetBio<D> {
    type Target = Bio;

    fn deref(&self) -> &Bio {
        &self.bio
    }
}

/// The target's data in front of `bio`.
///
/// # Safety
///
/// `bio` must be a bio device-mapper made for a target whose `per_io_data_size` is
/// `size_of::<D>()`.
unsafe fn per_bio_data<D>(bio: *mut bindings::bio) -> *mut D {
    const {
        // Device-mapper places the data right before a structure aligned to 8 bytes.
        assert!(core::mem::align_of::<D>() <= core::mem::align_of::<u64>());
    }
    if core::mem::size_of::<D>() == 0 {
        return NonNull::dangling().as_ptr();
    }
    // SAFETY: As promised by the caller.
    unsafe { bindings::dm_per_bio_data(bio, core::mem::size_of::<D>()).cast() }
}

/// A bio that ended below the target, given to [`Target::end_io`] with its result and the
/// target's data for it.
///
/// Answered by [`EndingBio::done`] (device-mapper ends it) or taken by [`EndingBio::take`]
/// (the target ends it later, and `end_io` runs again then). Reading the bio goes through
/// `Deref`.
///
/// # Invariants
///
/// `bio` is the ended bio of a target whose per-bio data is a `D`; `status` is device-mapper's
/// status for it, valid for `'a`.
pub struct EndingBio<'a, D> {
    bio: core::mem::ManuallyDrop<Bio>,
    status: &'a mut bindings::blk_status_t,
    _data: PhantomData<D>,
}

/// What [`Target::end_io`] decided; only an [`EndingBio`] of the same call makes one.
pub struct EndIo<'a> {
    code: c_int,
    // Invariant in `'a`: an answer cannot be kept for another call.
    _call: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl<'a> EndIo<'a> {
    fn new(code: u32) -> Self {
        Self {
            code: code as c_int,
            _call: PhantomData,
        }
    }
}

impl<'a, D> EndingBio<'a, D> {
    /// How the I/O below went.
    pub fn result(&self) -> Result {
        crate::block::bio::result_of(*self.status)
    }

    /// The data [`Target::map`] left for this bio.
    pub fn per_bio(&mut self) -> &mut D {
        // SAFETY: By the type invariant, the data is there; the ended bio is the target's until
        // it answers.
        unsafe { &mut *per_bio_data::<D>(self.bio.ptr()) }
    }

    /// Puts the bio back where `record` (taken in `map`) found it ([`Bio::restore`]).
    pub fn restore(&mut self, record: &BioRecord) -> Result {
        self.bio.restore(record)
    }

    /// Lets device-mapper end the bio with its result.
    pub fn done(self) -> EndIo<'a> {
        EndIo::new(bindings::DM_ENDIO_DONE)
    }

    /// Lets device-mapper end the bio, with `result` instead.
    pub fn done_with(self, result: Result) -> EndIo<'a> {
        *self.status = crate::block::bio::status_of(result);
        EndIo::new(bindings::DM_ENDIO_DONE)
    }

    /// Takes the bio: the target ends it later (`DM_ENDIO_INCOMPLETE`), after which
    /// [`Target::end_io`] sees it again with that result.
    pub fn take(self) -> (Bio, EndIo<'a>) {
        (
            core::mem::ManuallyDrop::into_inner(self.bio),
            EndIo::new(bindings::DM_ENDIO_INCOMPLETE),
        )
    }
}

impl<D> core::ops::Deref for EndingBio<'_, D> {
    type Target = Bio;

    fn deref(&self) -> &Bio {
        &self.bio
    }
}

/// Which status `dmsetup` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusType {
    /// `dmsetup status`: the target's state.
    Info,
    /// `dmsetup table`: the arguments that would build the target again.
    Table,
    /// The integrity-measurement summary (IMA).
    Ima,
}

/// What a target type declares about itself to device-mapper (`DM_TARGET_*` features).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetFeatures(u64);

impl TargetFeatures {
    /// Nothing special.
    pub const NONE: Self = Self(0);
    /// The target accepts zoned devices below it whatever the table's zoned model: it manages
    /// their zones itself and offers another model (`DM_TARGET_MIXED_ZONED_MODEL`; no effect
    /// without `CONFIG_BLK_DEV_ZONED`).
    pub const MIXED_ZONED_MODEL: Self = Self(bindings::DM_TARGET_MIXED_ZONED_MODEL as u64);
}

impl core::ops::BitOr for TargetFeatures {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// A device-mapper target.
///
/// # Examples
///
/// A target that sends every bio on to one device at the same sector, as `linear` with offset 0
/// does in a table of one target (bio sectors count from the start of the mapped device):
///
/// ```
/// use kernel::device_mapper::{Ctr, CtrError, DmDev, MapResult, Target, TargetBio};
///
/// struct PassThrough {
///     dev: DmDev,
/// }
///
/// #[vtable]
/// impl Target for PassThrough {
///     const NAME: &'static CStr = c"passthrough";
///     const VERSION: [u32; 3] = [1, 0, 0];
///
///     fn new(ctr: &mut Ctr<'_>, args: &[&CStr]) -> Result<Pin<KBox<Self>>, CtrError> {
///         let [path] = args else {
///             return Err(CtrError::invalid(c"expected <device>"));
///         };
///         let dev = ctr
///             .get_device(path)
///             .map_err(|e| CtrError::new(e, c"cannot open the device"))?;
///         KBox::pin(Self { dev }, GFP_KERNEL)
///             .map_err(|_| CtrError::new(ENOMEM, c"out of memory"))
///     }
///
///     type PerBio = ();
///
///     fn map(&self, bio: TargetBio<()>) -> MapResult {
///         let sector = bio.sector();
///         MapResult::Remapped(bio.remap(self.dev.bdev(), sector))
///     }
/// }
/// ```
#[vtable]
pub trait Target: Sized + Send + Sync + 'static {
    /// The name tables use (e.g. `c"linear"`).
    const NAME: &'static CStr;
    /// The target's version, reported by `dmsetup targets`.
    const VERSION: [u32; 3];

    /// What the target declares about itself.
    const FEATURES: TargetFeatures = TargetFeatures::NONE;

    /// What the target keeps with each bio from [`Target::map`] to [`Target::end_io`]
    /// (device-mapper's per-bio data); `()` for none. Set to its default before `map`.
    type PerBio: Default + Copy + Send;

    /// Builds a target from a table line's arguments (after `<start> <len> <name>`).
    fn new(ctr: &mut Ctr<'_>, args: &[&CStr]) -> Result<Pin<KBox<Self>>, CtrError>;

    /// Maps one bio: remaps it, keeps it (and ends it later), or hands it back.
    fn map(&self, bio: TargetBio<Self::PerBio>) -> MapResult;

    /// Called when a bio the target remapped or kept has ended, from the completion context of
    /// the device below (possibly an interrupt: no sleeping). Not called for bios `map` handed
    /// back (requeue, kill).
    fn end_io<'a>(&self, _bio: EndingBio<'a, Self::PerBio>) -> EndIo<'a> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Writes the status `kind` into `out` (`dmsetup status` / `dmsetup table`).
    fn status(&self, _kind: StatusType, _out: &mut StatusWriter<'_>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Handles `dmsetup message <dev> <sector> <args>...`; may answer through `out`.
    fn message(&self, _args: &[&CStr], _out: &mut StatusWriter<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Names each device the target uses, with the range of it that it uses: calls
    /// [`DeviceVisitor::visit`] for each and passes a stop back with `?`.
    fn iterate_devices(&self, _visitor: &mut DeviceVisitor<'_>) -> Result<(), VisitStop> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Adjusts the limits device-mapper stacked from the devices below.
    fn io_hints(&self, _limits: &mut QueueLimits) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called when a suspend starts, before I/O is drained.
    fn presuspend(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called once the device is suspended: no I/O is in flight in the target.
    fn postsuspend(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called before the table goes live (or back to live); an error refuses the resume.
    fn preresume(&self) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called once the device is live again.
    fn resume(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// Source of the identities that tie a [`DmDev`] to the target that opened it.
static NEXT_TARGET_ID: Atomic<u64> = Atomic::new(1);

/// What device-mapper's `ti->private` holds for a target.
struct TargetBox<T> {
    target: Pin<KBox<T>>,
    id: u64,
    devices: KVec<NonNull<bindings::dm_dev>>,
}

/// A target being built: its place in the table, and what it asks of device-mapper.
///
/// # Invariants
///
/// `ti` is the `struct dm_target` being constructed, valid for `'a`.
pub struct Ctr<'a> {
    ti: NonNull<bindings::dm_target>,
    id: u64,
    devices: KVec<NonNull<bindings::dm_dev>>,
    _ti: PhantomData<&'a mut bindings::dm_target>,
}

impl Ctr<'_> {
    fn ti(&self) -> &bindings::dm_target {
        // SAFETY: By the type invariant `ti` is valid; the constructor's caller owns it.
        unsafe { self.ti.as_ref() }
    }

    fn ti_mut(&mut self) -> &mut bindings::dm_target {
        // SAFETY: By the type invariant `ti` is valid; the constructor's caller owns it.
        unsafe { self.ti.as_mut() }
    }

    /// The target's first sector in the mapped device.
    pub fn begin(&self) -> u64 {
        self.ti().begin
    }

    /// The target's length in sectors.
    pub fn len(&self) -> u64 {
        self.ti().len
    }

    /// Whether the target has no length.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the table is loaded read-only.
    pub fn is_read_only(&self) -> bool {
        // SAFETY: `ti->table` is valid while the target is built.
        let mode = unsafe { bindings::dm_table_get_mode(self.ti().table) };
        mode & bindings::BLK_OPEN_WRITE == 0
    }

    /// Opens `path` (a device path or `major:minor`) with the table's mode for the target.
    ///
    /// Fails as `dm_get_device()` does, e.g. `ENODEV` for no such device, or `EBUSY` when it is
    /// held exclusively by someone else.
    pub fn get_device(&mut self, path: &CStr) -> Result<DmDev> {
        let ti = self.ti.as_ptr();
        let mut dev: *mut bindings::dm_dev = core::ptr::null_mut();
        self.devices.reserve(1, GFP_KERNEL)?;
        // SAFETY: `ti` is being constructed, `path` is NUL-terminated, `dev` is written on
        // success.
        to_result(unsafe {
            bindings::dm_get_device(
                ti,
                path.as_char_ptr(),
                bindings::dm_table_get_mode((*ti).table),
                &mut dev,
            )
        })?;
        let dev = NonNull::new(dev).ok_or(ENODEV)?;
        // Reserved above, so this cannot fail; the device is put in `dtr` (or when `new` fails).
        self.devices.push(dev, GFP_KERNEL)?;
        // SAFETY: `dm_get_device()` succeeded: `dev` is valid and open until `dm_put_device()`.
        let (file, bdev, name) = unsafe {
            let d = dev.as_ref();
            (d.bdev_file, d.bdev, d.name)
        };
        // SAFETY: `file` is the open block device file; this reference keeps it open for the
        // `DmDev`, whatever happens to the table.
        unsafe { bindings::get_file(file) };
        // INVARIANT: `file` is referenced by the new `DmDev`, which keeps `bdev` open.
        Ok(DmDev {
            dev,
            file,
            bdev,
            name,
            owner: self.id,
        })
    }

    /// Splits I/O so that no bio crosses a multiple of `sectors` (`dm_set_target_max_io_len()`).
    pub fn set_max_io_len(&mut self, sectors: u32) -> Result {
        // SAFETY: `ti` is being constructed.
        to_result(unsafe { bindings::dm_set_target_max_io_len(self.ti.as_ptr(), sectors.into()) })
    }

    /// How many empty flush bios the target gets for each flush (0: it gets none).
    pub fn set_num_flush_bios(&mut self, count: u32) {
        self.ti_mut().num_flush_bios = count;
    }

    /// How many discard bios the target gets for each discard (0: discard is not offered).
    pub fn set_num_discard_bios(&mut self, count: u32) {
        self.ti_mut().num_discard_bios = count;
    }

    /// How many write-zeroes bios the target gets for each one (0: it is emulated by writes).
    pub fn set_num_write_zeroes_bios(&mut self, count: u32) {
        self.ti_mut().num_write_zeroes_bios = count;
    }

    /// Asks for flushes even when no device below has a volatile cache.
    pub fn set_flush_supported(&mut self) {
        self.ti_mut().set_flush_supported(true);
    }

    /// Offers discards whatever the devices below support: the target serves them itself
    /// (with [`Ctr::set_num_discard_bios`] above 0).
    pub fn set_discards_supported(&mut self) {
        self.ti_mut().set_discards_supported(true);
    }
}

/// A device a target opened (`struct dm_dev`).
///
/// # Invariants
///
/// `file` is a counted reference to the open block device file of `bdev`, so `bdev` stays open
/// while the `DmDev` exists. `dev` is valid while the target with identity `owner` exists (it is
/// put in that target's `dtr`); it is only read through [`DeviceVisitor`], which checks the owner.
pub struct DmDev {
    dev: NonNull<bindings::dm_dev>,
    file: *mut bindings::file,
    bdev: *mut bindings::block_device,
    name: [c_char; 16],
    owner: u64,
}

// SAFETY: A `DmDev` is a counted reference to an open block device, usable from any thread.
unsafe impl Send for DmDev {}
// SAFETY: Only `&self` methods that read immutable fields or call thread-safe C functions.
unsafe impl Sync for DmDev {}

impl DmDev {
    /// The block device.
    pub fn bdev(&self) -> &Bdev {
        // SAFETY: By the type invariant the block device stays open while `self` exists.
        unsafe { Bdev::from_raw(self.bdev) }
    }

    /// The device's name as device-mapper prints it (`major:minor`).
    pub fn name(&self) -> &CStr {
        // SAFETY: `dm_get_device()` wrote a NUL-terminated name of at most 16 bytes.
        unsafe { CStr::from_char_ptr(self.name.as_ptr()) }
    }
}

impl Drop for DmDev {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `file` holds the reference taken in `get_device`.
        unsafe { bindings::fput(self.file) };
    }
}

/// Hands the devices of a target to device-mapper (`iterate_devices`).
pub struct DeviceVisitor<'a> {
    ti: *mut bindings::dm_target,
    id: u64,
    callout: bindings::iterate_devices_callout_fn,
    data: *mut c_void,
    _p: PhantomData<&'a ()>,
}

impl DeviceVisitor<'_> {
    /// Names `dev`, of which the target uses `len` sectors from `start`. A non-zero answer from
    /// device-mapper (an error, or "found, stop") ends the walk: pass it back with `?`.
    ///
    /// A device opened by another target is refused with `EINVAL`.
    pub fn visit(&mut self, dev: &DmDev, start: u64, len: u64) -> Result<(), VisitStop> {
        if dev.owner != self.id {
            return Err(VisitStop(EINVAL.to_errno()));
        }
        let Some(callout) = self.callout else {
            return Ok(());
        };
        // SAFETY: `dev` belongs to this target (checked above), which is alive, so `dev.dev` is
        // valid; `ti` and `data` are what device-mapper passed to `iterate_devices`.
        let ret = unsafe { callout(self.ti, dev.dev.as_ptr(), start, len, self.data) };
        if ret == 0 {
            Ok(())
        } else {
            Err(VisitStop(ret))
        }
    }
}

/// Device-mapper's answer that ends an `iterate_devices` walk (not necessarily an error).
#[derive(Debug)]
pub struct VisitStop(c_int);

/// The buffer a status or message answer is written into (`DMEMIT`): output that does not fit
/// is cut, and the buffer always holds a NUL-terminated string.
pub struct StatusWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
    truncated: bool,
}

impl<'a> StatusWriter<'a> {
    /// # Safety
    ///
    /// `ptr` must be valid for writes of `len` bytes for `'a`.
    unsafe fn from_raw(ptr: *mut c_char, len: c_uint) -> Self {
        let buf: &'a mut [u8] = if ptr.is_null() || len == 0 {
            &mut []
        } else {
            // SAFETY: The caller promises `len` writable bytes.
            unsafe { core::slice::from_raw_parts_mut(ptr.cast(), len as usize) }
        };
        if let Some(first) = buf.first_mut() {
            *first = 0;
        }
        Self {
            buf,
            pos: 0,
            truncated: false,
        }
    }

    /// Whether some output did not fit.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Write for StatusWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Room for the NUL.
        let room = self.buf.len().saturating_sub(self.pos + 1);
        let n = s.len().min(room);
        self.buf[self.pos..self.pos + n].copy_from_slice(&s.as_bytes()[..n]);
        self.pos += n;
        if let Some(nul) = self.buf.get_mut(self.pos) {
            *nul = 0;
        }
        if n < s.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

/// A registered target type.
///
/// # Invariants
///
/// `tt` is registered with device-mapper from `new` until drop.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Target> {
    #[pin]
    tt: Opaque<bindings::target_type>,
    _t: PhantomData<T>,
}

// SAFETY: Registration is only created and dropped; device-mapper serialises its list.
unsafe impl<T: Target> Send for Registration<T> {}
// SAFETY: No `&self` methods.
unsafe impl<T: Target> Sync for Registration<T> {}

impl<T: Target> Registration<T> {
    /// Registers `T` as a target owned by `module` (`dm_register_target()`).
    pub fn new(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            tt <- Opaque::try_ffi_init(|slot: *mut bindings::target_type| {
                // SAFETY: `slot` is valid for writes; every field is written here.
                unsafe {
                    slot.write(Self::target_type(module));
                    to_result(bindings::dm_register_target(slot))
                }
            }),
            _t: PhantomData,
        })
    }

    fn target_type(module: &'static ThisModule) -> bindings::target_type {
        // SAFETY: All-zero is a valid `target_type` (no features, no callbacks).
        let mut tt: bindings::target_type = unsafe { core::mem::zeroed() };
        tt.name = T::NAME.as_char_ptr();
        tt.module = module.as_ptr();
        tt.version = T::VERSION;
        tt.features = T::FEATURES.0;
        tt.ctr = Some(Self::ctr);
        tt.dtr = Some(Self::dtr);
        tt.map = Some(Self::map);
        if T::HAS_END_IO {
            tt.end_io = Some(Self::end_io);
        }
        if T::HAS_STATUS {
            tt.status = Some(Self::status);
        }
        if T::HAS_MESSAGE {
            tt.message = Some(Self::message);
        }
        if T::HAS_ITERATE_DEVICES {
            tt.iterate_devices = Some(Self::iterate_devices);
        }
        if T::HAS_IO_HINTS {
            tt.io_hints = Some(Self::io_hints);
        }
        if T::HAS_PRESUSPEND {
            tt.presuspend = Some(Self::presuspend);
        }
        if T::HAS_POSTSUSPEND {
            tt.postsuspend = Some(Self::postsuspend);
        }
        if T::HAS_PRERESUME {
            tt.preresume = Some(Self::preresume);
        }
        if T::HAS_RESUME {
            tt.resume = Some(Self::resume);
        }
        tt
    }

    /// The target built by `ctr`.
    ///
    /// # Safety
    ///
    /// `ti` must be a target whose `ctr` succeeded and whose `dtr` has not run.
    unsafe fn target_box<'a>(ti: *mut bindings::dm_target) -> &'a TargetBox<T> {
        // SAFETY: `ctr` stored a `TargetBox<T>` in `private`; `dtr` frees it.
        unsafe { &*(*ti).private.cast::<TargetBox<T>>() }
    }

    /// Puts the devices a target opened (in the order opened, like the C targets' `dtr`s).
    ///
    /// # Safety
    ///
    /// `ti` is a valid target and every device in `devices` was got for it and not yet put.
    unsafe fn put_devices(ti: *mut bindings::dm_target, devices: &KVec<NonNull<bindings::dm_dev>>) {
        for dev in devices.iter() {
            // SAFETY: As promised by the caller.
            unsafe { bindings::dm_put_device(ti, dev.as_ptr()) };
        }
    }

    /// Device-mapper's `ctr` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn ctr(
        ti: *mut bindings::dm_target,
        argc: c_uint,
        argv: *mut *mut c_char,
    ) -> c_int {
        let mut args = KVec::new();
        for i in 0..argc as usize {
            // SAFETY: device-mapper passes `argc` NUL-terminated arguments.
            let arg = unsafe { CStr::from_char_ptr(*argv.add(i)) };
            if args.push(arg, GFP_KERNEL).is_err() {
                // SAFETY: `ti` is being constructed.
                unsafe { (*ti).error = c"out of memory".as_char_ptr().cast_mut() };
                return ENOMEM.to_errno();
            }
        }
        // SAFETY: `ti` is being constructed.
        unsafe { (*ti).per_io_data_size = core::mem::size_of::<T::PerBio>() as c_uint };
        let mut ctr = Ctr {
            // SAFETY: device-mapper passes the target being constructed.
            ti: unsafe { NonNull::new_unchecked(ti) },
            id: NEXT_TARGET_ID.fetch_add(1, Relaxed),
            devices: KVec::new(),
            _ti: PhantomData,
        };
        let built = T::new(&mut ctr, &args);
        let Ctr { id, devices, .. } = ctr;
        let target = match built {
            Ok(target) => target,
            Err(e) => {
                // SAFETY: The devices were got for `ti` and nothing put them.
                unsafe {
                    Self::put_devices(ti, &devices);
                    (*ti).error = e.message.as_char_ptr().cast_mut();
                }
                return e.error.to_errno();
            }
        };
        match KBox::new(
            TargetBox {
                target,
                id,
                devices,
            },
            GFP_KERNEL,
        ) {
            Ok(b) => {
                // SAFETY: `ti` is being constructed; `dtr` takes the box back.
                unsafe { (*ti).private = KBox::into_raw(b).cast() };
                0
            }
            Err(_) => {
                // The target's devices are put after the target is dropped: it may use them in
                // its `Drop`.
                // SAFETY: `ti` is being constructed; the error string is static.
                unsafe { (*ti).error = c"out of memory".as_char_ptr().cast_mut() };
                ENOMEM.to_errno()
            }
        }
    }

    /// Device-mapper's `dtr` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn dtr(ti: *mut bindings::dm_target) {
        // SAFETY: `ctr` succeeded (device-mapper calls `dtr` only then), so `private` is our box;
        // this is its last use.
        let b = unsafe { KBox::from_raw((*ti).private.cast::<TargetBox<T>>()) };
        let TargetBox {
            target, devices, ..
        } = KBox::into_inner(b);
        drop(target);
        // SAFETY: The devices were got for `ti` in `ctr`; the target that used them is gone.
        unsafe { Self::put_devices(ti, &devices) };
    }

    /// Device-mapper's `map` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn map(ti: *mut bindings::dm_target, bio: *mut bindings::bio) -> c_int {
        // SAFETY: `map` is called only between a successful `ctr` and `dtr`.
        let target = unsafe { &Self::target_box(ti).target };
        // SAFETY: device-mapper made the bio for this target, whose `per_io_data_size` `ctr` set
        // to a `T::PerBio`'s size.
        unsafe { per_bio_data::<T::PerBio>(bio).write(T::PerBio::default()) };
        // INVARIANT: The per-bio data was initialised just above.
        let bio = TargetBio {
            // SAFETY: device-mapper hands the bio to the target to map; `MapResult` gives it back
            // or the target ends it.
            bio: unsafe { Bio::from_raw(NonNull::new_unchecked(bio)) },
            _data: PhantomData,
        };
        let ret = match target.map(bio) {
            MapResult::Remapped(bio) => {
                bio.into_raw();
                bindings::DM_MAPIO_REMAPPED
            }
            MapResult::Submitted => bindings::DM_MAPIO_SUBMITTED,
            MapResult::Requeue(bio) => {
                bio.into_raw();
                bindings::DM_MAPIO_REQUEUE
            }
            MapResult::Kill(bio) => {
                bio.into_raw();
                bindings::DM_MAPIO_KILL
            }
        };
        ret as c_int
    }

    /// Device-mapper's `end_io` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn end_io(
        ti: *mut bindings::dm_target,
        bio: *mut bindings::bio,
        status: *mut bindings::blk_status_t,
    ) -> c_int {
        // SAFETY: Called between `ctr` and `dtr`.
        let target = unsafe { &Self::target_box(ti).target };
        // INVARIANT: device-mapper passes a bio of this target that went through `map` (which
        // initialised its data), and the status it will end it with.
        let ending = EndingBio {
            // SAFETY: The ended bio is the target's until it answers; `ManuallyDrop` leaves the
            // answer to `EndingBio`.
            bio: core::mem::ManuallyDrop::new(unsafe {
                Bio::from_raw(NonNull::new_unchecked(bio))
            }),
            // SAFETY: device-mapper's status outlives the call.
            status: unsafe { &mut *status },
            _data: PhantomData,
        };
        target.end_io(ending).code
    }

    /// Device-mapper's `status` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn status(
        ti: *mut bindings::dm_target,
        kind: bindings::status_type_t,
        _flags: c_uint,
        result: *mut c_char,
        maxlen: c_uint,
    ) {
        // SAFETY: Called between `ctr` and `dtr`.
        let target = unsafe { &Self::target_box(ti).target };
        // SAFETY: device-mapper passes a buffer of `maxlen` bytes.
        let mut out = unsafe { StatusWriter::from_raw(result, maxlen) };
        let kind = match kind {
            bindings::status_type_t_STATUSTYPE_INFO => StatusType::Info,
            bindings::status_type_t_STATUSTYPE_TABLE => StatusType::Table,
            _ => StatusType::Ima,
        };
        target.status(kind, &mut out);
    }

    /// Device-mapper's `message` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn message(
        ti: *mut bindings::dm_target,
        argc: c_uint,
        argv: *mut *mut c_char,
        result: *mut c_char,
        maxlen: c_uint,
    ) -> c_int {
        from_result(|| {
            // SAFETY: Called between `ctr` and `dtr`.
            let target = unsafe { &Self::target_box(ti).target };
            let mut args = KVec::new();
            for i in 0..argc as usize {
                // SAFETY: device-mapper passes `argc` NUL-terminated arguments.
                args.push(unsafe { CStr::from_char_ptr(*argv.add(i)) }, GFP_KERNEL)?;
            }
            // SAFETY: device-mapper passes a buffer of `maxlen` bytes.
            let mut out = unsafe { StatusWriter::from_raw(result, maxlen) };
            target.message(&args, &mut out)?;
            // A message that wrote an answer returns 1 (device-mapper then copies it out).
            Ok(i32::from(out.pos > 0))
        })
    }

    /// Device-mapper's `iterate_devices` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn iterate_devices(
        ti: *mut bindings::dm_target,
        callout: bindings::iterate_devices_callout_fn,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: Called between `ctr` and `dtr`.
        let b = unsafe { Self::target_box(ti) };
        let mut visitor = DeviceVisitor {
            ti,
            id: b.id,
            callout,
            data,
            _p: PhantomData,
        };
        match b.target.iterate_devices(&mut visitor) {
            Ok(()) => 0,
            Err(VisitStop(answer)) => answer,
        }
    }

    /// Device-mapper's `io_hints` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn io_hints(
        ti: *mut bindings::dm_target,
        limits: *mut bindings::queue_limits,
    ) {
        // SAFETY: Called between `ctr` and `dtr`.
        let target = unsafe { &Self::target_box(ti).target };
        // SAFETY: device-mapper hands the limits being stacked to this call only.
        target.io_hints(unsafe { QueueLimits::from_raw_mut(limits) });
    }

    /// Device-mapper's `presuspend` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn presuspend(ti: *mut bindings::dm_target) {
        // SAFETY: Called between `ctr` and `dtr`.
        unsafe { Self::target_box(ti) }.target.presuspend();
    }

    /// Device-mapper's `postsuspend` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn postsuspend(ti: *mut bindings::dm_target) {
        // SAFETY: Called between `ctr` and `dtr`.
        unsafe { Self::target_box(ti) }.target.postsuspend();
    }

    /// Device-mapper's `preresume` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn preresume(ti: *mut bindings::dm_target) -> c_int {
        // SAFETY: Called between `ctr` and `dtr`.
        match unsafe { Self::target_box(ti) }.target.preresume() {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// Device-mapper's `resume` callback of targets of type `T`.
    ///
    /// # Safety
    ///
    /// Called by device-mapper only, for a target of the type this registration registered
    /// (after `ctr` succeeded for it, but for `ctr` itself).
    unsafe extern "C" fn resume(ti: *mut bindings::dm_target) {
        // SAFETY: Called between `ctr` and `dtr`.
        unsafe { Self::target_box(ti) }.target.resume();
    }
}

#[pinned_drop]
impl<T: Target> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered in `new` (type invariant). Device-mapper holds a module reference
        // while a table uses the target, so none does when the module drops this.
        unsafe { bindings::dm_unregister_target(self.tt.get()) };
    }
}

#[macros::kunit_tests(rust44_device_mapper)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn status_output_is_cut_and_stays_nul_terminated() {
        let mut buf = [0xffu8; 8];
        // SAFETY: `buf` is 8 writable bytes for the writer's life.
        let mut out = unsafe { StatusWriter::from_raw(buf.as_mut_ptr().cast(), 8) };
        assert_eq!(out.write_str("A A"), Ok(()));
        assert!(!out.is_truncated());
        assert_eq!(write!(out, " {}/{}", 12, 345), Ok(()));
        assert!(out.is_truncated());
        assert_eq!(&buf, b"A A 12/\0");
    }

    #[test]
    fn an_empty_status_buffer_takes_nothing() {
        // SAFETY: A null buffer of length zero is never written.
        let mut out = unsafe { StatusWriter::from_raw(core::ptr::null_mut(), 0) };
        assert_eq!(out.write_str("x"), Ok(()));
        assert!(out.is_truncated());
    }

    struct Nothing;

    #[vtable]
    impl Target for Nothing {
        const NAME: &'static CStr = c"rust44-kunit-nothing";
        const VERSION: [u32; 3] = [1, 0, 0];

        fn new(_ctr: &mut Ctr<'_>, _args: &[&CStr]) -> Result<Pin<KBox<Self>>, CtrError> {
            Err(CtrError::invalid(c"refuses every table"))
        }

        type PerBio = ();

        fn map(&self, bio: TargetBio<()>) -> MapResult {
            MapResult::Kill(bio.into_bio())
        }
    }

    // The kernel crate is built in: no module to own the target.
    static BUILT_IN: ThisModule = <crate::LocalModule as crate::ModuleMetadata>::THIS_MODULE;

    #[test]
    fn a_name_registers_once_and_is_free_again_after_drop() {
        let module = &BUILT_IN;
        let first = KBox::pin_init(Registration::<Nothing>::new(module), GFP_KERNEL);
        assert!(first.is_ok());
        let second = KBox::pin_init(Registration::<Nothing>::new(module), GFP_KERNEL);
        // dm_register_target() answers EBUSY for a name in use.
        assert_eq!(second.err(), Some(EBUSY));
        drop(first);
        let again = KBox::pin_init(Registration::<Nothing>::new(module), GFP_KERNEL);
        assert!(again.is_ok());
    }
}
