// SPDX-License-Identifier: GPL-2.0

//! loop_dio: the loop block device in Rust, with direct and asynchronous I/O on the backing
//! file (Linux 4.4), and the same user ABI as `drivers/block/loop.c`: `/dev/loop-control`
//! (misc minor 237) and `/dev/loopN` on block major 7, so util-linux `losetup` works unchanged.
//!
//! With direct I/O, `queue_rq` submits each read and write to the backing file itself with an
//! asynchronous kiocb flagged `IOCB_NOWAIT` (`inline_dio`, on by default): the file and its
//! device refuse, with `EAGAIN`, what would wait (blocks to allocate, a contended lock, times to
//! update through the journal, no tag free), and such a request goes to a per-device worker,
//! where waiting is allowed, as does everything else (buffered I/O, flush, discard,
//! write-zeroes). The worker hands direct reads and writes to the file with the same kind of
//! kiocb, without `IOCB_NOWAIT`, and moves on; the kiocb's completion ends the request. Without
//! direct I/O, I/O goes through the backing file's page cache on the worker.
//!
//! Polled I/O (io_uring IOPOLL) is offered while direct I/O is on and the backing file's device
//! can poll (NVMe with poll queues): such requests are submitted polled themselves
//! (`IOCB_HIPRI`), and `poll` polls the backing device and ends the requests whose I/O it found
//! done, so no interrupt sits on that path. The tag set is blocking while `inline_dio` is on
//! (see `control.rs`): `IOCB_NOWAIT` keeps the submitter from waiting for I/O, a contended lock
//! or a tag (what stalled a first, blocking version inside the queue's SRCU section), not from
//! every sleep.

use kernel::{
    block::disk::BlkdevRegistration, c_str, miscdevice::MiscDeviceRegistration, prelude::*,
};

pub mod abi;
mod control;
mod device;
mod io;
pub mod rules;
mod trace;

use control::{LoopControl, LoopProbe, LOOPS};

module! {
    type: LoopDioModule,
    name: "loop_dio",
    authors: ["rust44"],
    description: "Loop block device with direct and asynchronous I/O (Rust)",
    license: "GPL",
    params: {
        max_loop: u32 {
            default: 8,
            description: "Number of loop devices created at load time",
            perm: 0o444,
        },
        max_part: u32 {
            default: 0,
            description: "Maximum number of partitions per loop device",
            perm: 0o444,
        },
        hw_queue_depth: u32 {
            default: 128,
            description: "Queue depth of each hardware queue",
            perm: 0o444,
        },
        poll_queues: u32 {
            default: 1,
            description: "Poll queues of each device, for polled I/O through to the backing file (0: none)",
            perm: 0o444,
        },
        inline_dio: u32 {
            default: 1,
            description: "Try direct reads and writes inline from queue_rq without waiting (IOCB_NOWAIT), the worker when they cannot (1, the default), or always the worker (0)",
            perm: 0o444,
        },
    },
}

const LOOP_CTRL_MINOR: u32 = kernel::bindings::LOOP_CTRL_MINOR;

// The rules file's constants and the ABI file's layouts must be the kernel's.
const _: () = {
    use core::mem::{offset_of, size_of};
    use kernel::{bindings, uapi};
    assert!(bindings::LOOP_MAJOR == rules::LOOP_MAJOR);
    assert!(bindings::MINORBITS == rules::MINORBITS);
    assert!(bindings::DISK_MAX_PARTS == rules::DISK_MAX_PARTS);
    assert!(bindings::BLK_MQ_MAX_DEPTH == rules::BLK_MQ_MAX_DEPTH);
    assert!(bindings::SECTOR_SIZE == rules::SECTOR_SIZE);
    assert!(bindings::ENXIO as i32 == abi::errno::ENXIO);
    assert!(bindings::EBUSY as i32 == abi::errno::EBUSY);
    assert!(bindings::EINVAL as i32 == abi::errno::EINVAL);
    assert!(bindings::EOVERFLOW as i32 == abi::errno::EOVERFLOW);
    assert!(size_of::<uapi::loop_info64>() == abi::info64::SIZE);
    assert!(offset_of!(uapi::loop_info64, lo_sizelimit) == abi::info64::SIZELIMIT);
    assert!(offset_of!(uapi::loop_info64, lo_flags) == abi::info64::FLAGS);
    assert!(offset_of!(uapi::loop_info64, lo_file_name) == abi::info64::FILE_NAME);
    assert!(offset_of!(uapi::loop_info64, lo_init) == abi::info64::INIT);
    assert!(size_of::<uapi::loop_config>() == abi::config::SIZE);
    assert!(offset_of!(uapi::loop_config, info) == abi::config::INFO);
    assert!(size_of::<uapi::loop_info>() == abi::info_old::SIZE);
    assert!(offset_of!(uapi::loop_info, lo_device) == abi::info_old::DEVICE);
    assert!(offset_of!(uapi::loop_info, lo_offset) == abi::info_old::OFFSET);
    assert!(offset_of!(uapi::loop_info, lo_flags) == abi::info_old::FLAGS);
    assert!(offset_of!(uapi::loop_info, lo_name) == abi::info_old::NAME);
    assert!(uapi::LO_FLAGS_DIRECT_IO == abi::FLAG_DIRECT_IO);
    assert!(uapi::LOOP_CONFIGURE == abi::LOOP_CONFIGURE);
    assert!(uapi::LOOP_CTL_GET_FREE == abi::LOOP_CTL_GET_FREE);
};

/// An error number from the `core`-only files as a kernel error.
fn to_error(e: i32) -> Error {
    Error::from_errno(-e)
}

/// The load parameters, checked (`loop_init()`).
fn checked_params() -> Result<rules::Params> {
    rules::Params::validate(
        module_parameters::max_loop.value(),
        module_parameters::max_part.value(),
        module_parameters::hw_queue_depth.value(),
        module_parameters::poll_queues.value(),
        kernel::cpu::nr_cpu_ids(),
    )
    .map(|p| p.with_inline_dio(module_parameters::inline_dio.value() != 0))
    .map_err(|e| {
        pr_err!("{}\n", format_args!("{e}"));
        to_error(e.errno())
    })
}

#[pin_data(PinnedDrop)]
struct LoopDioModule {
    #[pin]
    control: MiscDeviceRegistration<LoopControl>,
    /// Taken first on unload, so no probe adds a device while the others go.
    major: Option<BlkdevRegistration>,
}

impl kernel::InPlaceModule for LoopDioModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: Called exactly once, before any use of the registry.
        unsafe { LOOPS.init() };
        // SAFETY: Called exactly once, before any device exists.
        unsafe { control::VALIDATE.init() };
        try_pin_init!(Self {
            // The parameters are checked before anything is registered, and in the registry
            // before a probe can add a device.
            major: {
                let params = checked_params()?;
                // Shown rounded, as C exports it, for computing minor numbers.
                module_parameters::max_part.set_at_init(params.max_part());
                LOOPS.lock().params = params;
                Some(
                    BlkdevRegistration::new_with_probe::<LoopProbe>(
                        rules::LOOP_MAJOR,
                        c_str!("loop"),
                    )
                    .inspect_err(|e| {
                        pr_err!(
                            "block major {} is taken ({:?}): unload the C loop driver first (rmmod loop)\n",
                            rules::LOOP_MAJOR,
                            e
                        );
                    })?,
                )
            },
            control <- control::register(LOOP_CTRL_MINOR),
        })
        .pin_chain(|_this| {
            let mut registry = LOOPS.lock();
            let max_loop = registry.params.max_loop();
            for i in 0..max_loop {
                if let Err(e) = registry.add(Some(i)) {
                    pr_err!("cannot add loop{}: {:?}\n", i, e);
                    drop(core::mem::take(&mut registry.entries));
                    return Err(e);
                }
            }
            pr_info!("loaded: {} devices, direct and async I/O\n", max_loop);
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for LoopDioModule {
    fn drop(self: Pin<&mut Self>) {
        drop(self.project().major.take());
        // A bound device holds a module reference, so every device is unbound here.
        // `deleting`'s buffer too: it leaked on every unload (kmemleak, tests/hardening).
        let entries = LOOPS.lock().take_all();
        drop(entries);
    }
}
