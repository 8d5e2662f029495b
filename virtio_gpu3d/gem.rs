// SPDX-License-Identifier: GPL-2.0

//! Buffer objects: shmem-backed GEM objects, each the guest backing of one host resource.

use kernel::{
    drm::{
        self,
        gem::{self, shmem},
    },
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
    },
};

use crate::{
    file::{DrmFile, GpuDevice, GpuDrm},
    protocol::Command,
};

/// Driver data of a buffer object.
#[pin_data(PinnedDrop)]
pub(crate) struct BoData {
    /// The host resource this object backs.
    pub(crate) resource_id: u32,
    /// The device, to release the host resource when the object goes.
    gpu: ARef<GpuDevice>,
    /// Set once the host resource exists (so it is released with the object).
    pub(crate) on_host: Atomic<bool>,
    /// The latest fence id of a command that uses the object (0: none).
    pub(crate) last_fence: Atomic<u64>,
}

/// Arguments for [`BoData`].
pub(crate) struct BoArgs {
    pub(crate) resource_id: u32,
}

/// A buffer object.
pub(crate) type Bo = shmem::Object<BoData>;

impl gem::DriverObject for BoData {
    type Driver = GpuDrm;
    type Args = BoArgs;

    fn new(dev: &GpuDevice, _size: usize, args: BoArgs) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            resource_id: args.resource_id,
            gpu: dev.into(),
            on_host: Atomic::new(false),
            last_fence: Atomic::new(0),
        })
    }

    fn open(obj: &Bo, file: &DrmFile) -> Result {
        // One host context per file: the context sees the resources the file has handles of.
        // Without 3D there are no contexts.
        if !obj.on_host.load(Relaxed) || !obj.gpu.caps.virgl {
            return Ok(());
        }
        let ctx = file.inner();
        ctx.ensure_created()?;
        obj.gpu.call_nodata(
            Command::ctx_resource(ctx.ctx_id(), obj.resource_id, true),
            KVec::new(),
        )
    }

    fn close(obj: &Bo, file: &DrmFile) {
        let ctx = file.inner();
        if obj.on_host.load(Relaxed) && ctx.is_created() {
            let cmd = Command::ctx_resource(ctx.ctx_id(), obj.resource_id, false);
            // Fails only when the device is gone, and with it the context.
            let _ = obj.gpu.send(cmd, KVec::new());
        }
    }
}

#[pinned_drop]
impl PinnedDrop for BoData {
    fn drop(self: Pin<&mut Self>) {
        if !self.on_host.load(Relaxed) {
            return;
        }
        // Every command using the object held a reference to it until its fence was done (see
        // `Gpu::track`), so the host is finished with the backing; release the resource.
        let _ = self
            .gpu
            .send(Command::resource_unref(self.resource_id), KVec::new());
    }
}

impl BoData {
    /// Records that command `fence` uses the object; the latest fence stays (submissions from
    /// several threads may get here out of order).
    pub(crate) fn used_by(&self, fence: u64) {
        let mut cur = self.last_fence.load(Relaxed);
        while cur < fence {
            match self.last_fence.cmpxchg(cur, fence, Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }
}

/// Looks up the object of `handle` in `file`.
pub(crate) fn lookup(file: &DrmFile, handle: u32) -> Result<ARef<Bo>> {
    <Bo as gem::BaseObject>::lookup_handle(file, handle)
}

/// Memory entries (`struct virtio_gpu_mem_entry`) for the object's backing pages, as the
/// device's transport (the PCI function) addresses them.
pub(crate) fn backing_entries(
    bo: &Bo,
    dma_dev: &kernel::device::Device<kernel::device::Bound>,
) -> Result<(KVec<u8>, u32)> {
    let sgt = bo.sg_table(dma_dev)?;
    let mut data = KVec::new();
    let mut n = 0u32;
    for sg in sgt.iter() {
        let len = u32::try_from(sg.dma_len()).map_err(|_| EINVAL)?;
        data.extend_from_slice(
            &crate::protocol::mem_entry(sg.dma_address(), len),
            GFP_KERNEL,
        )?;
        n += 1;
    }
    Ok((data, n))
}

/// Keeps `drm` in scope for the alias users.
#[allow(dead_code)]
type _Unused = drm::Normal;
