// SPDX-License-Identifier: GPL-2.0

//! The DRM driver: its files (one host context each) and the `virtgpu_drm.h` ioctls.

use kernel::{
    device::DeviceContext,
    dma_fence::Fence,
    dma_resv::Usage,
    drm::{self, gem::BaseObject, ioctl, Registered},
    fs::file::{flags, FileDescriptorReservation},
    new_mutex, pci,
    prelude::*,
    sync::{aref::ARef, atomic::Relaxed, Mutex},
    time::Delta,
    uaccess::{UserPtr, UserSlice},
    uapi,
};

use crate::{
    gem::{self, Bo, BoArgs},
    protocol::{self, cmd, Command, ResourceParams, Transfer},
    to_error, Gpu,
};

/// How long a blocking WAIT waits before it answers `EBUSY` (as the C driver).
const WAIT_TIMEOUT_S: i64 = 15;

/// The DRM driver.
pub(crate) struct GpuDrm;

/// The DRM device.
pub(crate) type GpuDevice<Ctx = drm::Normal> = drm::Device<GpuDrm, Ctx>;

/// A DRM file of the device.
pub(crate) type DrmFile = drm::File<FileCtx>;

/// `virtgpu_drm.h`'s ioctl numbers start at 1: the DRM core's table must start at 0, so slot 0
/// is an ioctl userspace never issues (its number; the argument is the size of GETPARAM's). It
/// fails with `EINVAL`, as the C driver's empty slot does.
const DRM_IOCTL_VIRTGPU_UNUSED_0: u32 =
    ioctl::IOWR::<uapi::drm_virtgpu_getparam>(uapi::DRM_COMMAND_BASE);

/// The ioctl numbers `virtgpu_drm.h` defines with function-like macros (which the UAPI bindings
/// cannot carry), from its command numbers and argument types, as `DRM_IOWR()` makes them.
macro_rules! virtgpu_ioctls {
    ($($name:ident = $nr:ident, $arg:ident;)*) => {$(
        const $name: u32 = ioctl::IOWR::<uapi::$arg>(uapi::DRM_COMMAND_BASE + uapi::$nr);
    )*};
}

virtgpu_ioctls! {
    DRM_IOCTL_VIRTGPU_MAP = DRM_VIRTGPU_MAP, drm_virtgpu_map;
    DRM_IOCTL_VIRTGPU_EXECBUFFER = DRM_VIRTGPU_EXECBUFFER, drm_virtgpu_execbuffer;
    DRM_IOCTL_VIRTGPU_GETPARAM = DRM_VIRTGPU_GETPARAM, drm_virtgpu_getparam;
    DRM_IOCTL_VIRTGPU_RESOURCE_CREATE = DRM_VIRTGPU_RESOURCE_CREATE, drm_virtgpu_resource_create;
    DRM_IOCTL_VIRTGPU_RESOURCE_INFO = DRM_VIRTGPU_RESOURCE_INFO, drm_virtgpu_resource_info;
    DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST = DRM_VIRTGPU_TRANSFER_FROM_HOST,
        drm_virtgpu_3d_transfer_from_host;
    DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST = DRM_VIRTGPU_TRANSFER_TO_HOST,
        drm_virtgpu_3d_transfer_to_host;
    DRM_IOCTL_VIRTGPU_WAIT = DRM_VIRTGPU_WAIT, drm_virtgpu_3d_wait;
    DRM_IOCTL_VIRTGPU_GET_CAPS = DRM_VIRTGPU_GET_CAPS, drm_virtgpu_get_caps;
    DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB = DRM_VIRTGPU_RESOURCE_CREATE_BLOB,
        drm_virtgpu_resource_create_blob;
    DRM_IOCTL_VIRTGPU_CONTEXT_INIT = DRM_VIRTGPU_CONTEXT_INIT, drm_virtgpu_context_init;
}

const INFO: drm::DriverInfo = drm::DriverInfo {
    major: 0,
    // 0.1: fence fds (Mesa offers EGL_ANDROID_native_fence_sync from it on).
    minor: 1,
    patchlevel: 0,
    // Mesa picks its virgl driver by this name.
    name: c"virtio_gpu",
    desc: c"virtio GPU render node with 3D (virgl), rust44",
};

#[vtable]
impl drm::Driver for GpuDrm {
    type Data = Gpu;
    type RegistrationData<'a> = ();
    type File = FileCtx;
    type Object = Bo;
    type ParentDevice<Ctx: DeviceContext> = pci::Device<Ctx>;

    const INFO: drm::DriverInfo = INFO;
    const FEAT_RENDER: bool = true;

    kernel::declare_drm_ioctls! {
        (VIRTGPU_UNUSED_0, drm_virtgpu_getparam, ioctl::RENDER_ALLOW, FileCtx::unused),
        (VIRTGPU_MAP, drm_virtgpu_map, ioctl::RENDER_ALLOW, FileCtx::map),
        (VIRTGPU_EXECBUFFER, drm_virtgpu_execbuffer, ioctl::RENDER_ALLOW, FileCtx::execbuffer),
        (VIRTGPU_GETPARAM, drm_virtgpu_getparam, ioctl::RENDER_ALLOW, FileCtx::getparam),
        (VIRTGPU_RESOURCE_CREATE, drm_virtgpu_resource_create, ioctl::RENDER_ALLOW,
            FileCtx::resource_create),
        (VIRTGPU_RESOURCE_INFO, drm_virtgpu_resource_info, ioctl::RENDER_ALLOW,
            FileCtx::resource_info),
        (VIRTGPU_TRANSFER_FROM_HOST, drm_virtgpu_3d_transfer_from_host, ioctl::RENDER_ALLOW,
            FileCtx::transfer_from_host),
        (VIRTGPU_TRANSFER_TO_HOST, drm_virtgpu_3d_transfer_to_host, ioctl::RENDER_ALLOW,
            FileCtx::transfer_to_host),
        (VIRTGPU_WAIT, drm_virtgpu_3d_wait, ioctl::RENDER_ALLOW, FileCtx::wait),
        (VIRTGPU_GET_CAPS, drm_virtgpu_get_caps, ioctl::RENDER_ALLOW, FileCtx::get_caps),
        (VIRTGPU_RESOURCE_CREATE_BLOB, drm_virtgpu_resource_create_blob, ioctl::RENDER_ALLOW,
            FileCtx::resource_create_blob),
        (VIRTGPU_CONTEXT_INIT, drm_virtgpu_context_init, ioctl::RENDER_ALLOW,
            FileCtx::context_init),
    }
}

/// Per open file: its host context, created on first use.
#[pin_data(PinnedDrop)]
pub(crate) struct FileCtx {
    ctx_id: u32,
    gpu: ARef<GpuDevice>,
    #[pin]
    created: Mutex<bool>,
}

impl drm::file::DriverFile for FileCtx {
    type Driver = GpuDrm;

    fn open(dev: &GpuDevice) -> Result<Pin<KBox<Self>>> {
        let ctx_id = dev.next_ctx_id.fetch_add(1, Relaxed);
        if ctx_id == 0 {
            return Err(ENOSPC);
        }
        KBox::try_pin_init(
            try_pin_init!(Self {
                ctx_id,
                gpu: dev.into(),
                created <- new_mutex!(false),
            }),
            GFP_KERNEL,
        )
    }
}

#[pinned_drop]
impl PinnedDrop for FileCtx {
    fn drop(self: Pin<&mut Self>) {
        if *self.created.lock() {
            // Fails only when the device is gone, and with it the context.
            let _ = self
                .gpu
                .send(Command::ctx_destroy(self.ctx_id), KVec::new());
        }
        self.gpu.reap();
    }
}

/// The transport device a registered DRM device's parent is, for DMA mappings.
fn dma_dev<'a>(
    dev: &'a GpuDevice<Registered>,
) -> &'a kernel::device::Device<kernel::device::Bound> {
    let pdev: &pci::Device<kernel::device::Bound> = dev.as_ref();
    pdev.as_ref()
}

fn user_write(addr: u64, data: &[u8]) -> Result {
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    UserSlice::new(UserPtr::from_addr(addr), data.len())
        .writer()
        .write_slice(data)
}

impl FileCtx {
    pub(crate) fn ctx_id(&self) -> u32 {
        self.ctx_id
    }

    pub(crate) fn is_created(&self) -> bool {
        *self.created.lock()
    }

    /// Creates the file's host context if it does not exist yet.
    pub(crate) fn ensure_created(&self) -> Result {
        let mut created = self.created.lock();
        if !*created {
            self.gpu
                .call_nodata(Command::ctx_create(self.ctx_id, b"rust44", 0), KVec::new())?;
            *created = true;
        }
        Ok(())
    }

    fn unused(
        _dev: &GpuDevice<Registered>,
        _reg: &(),
        _args: &mut uapi::drm_virtgpu_getparam,
        _file: &DrmFile,
    ) -> Result<u32> {
        Err(EINVAL)
    }

    fn getparam(
        dev: &GpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_getparam,
        _file: &DrmFile,
    ) -> Result<u32> {
        let value = protocol::getparam(&dev.caps, args.param).map_err(to_error)?;
        // As in C, `value` holds a pointer to an int.
        let value = i32::try_from(value).unwrap_or(i32::MAX);
        user_write(args.value, &value.to_ne_bytes())?;
        Ok(0)
    }

    fn get_caps(
        dev: &GpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_get_caps,
        _file: &DrmFile,
    ) -> Result<u32> {
        if dev.capsets.is_empty() {
            return Err(ENOSYS);
        }
        if args.size == 0 {
            return Err(EINVAL);
        }
        let infos: KVec<_> = {
            let mut v = KVec::new();
            for c in dev.capsets.iter() {
                v.push(c.info, GFP_KERNEL)?;
            }
            v
        };
        let info =
            protocol::find_capset(&infos, args.cap_set_id, args.cap_set_ver).ok_or(EINVAL)?;
        let len = (args.size as usize).min(info.max_size as usize);
        let cached = dev
            .capsets
            .iter()
            .find(|c| c.info.id == info.id && c.info.max_version == args.cap_set_ver);
        match cached {
            Some(c) => user_write(args.addr, &c.data[..len.min(c.data.len())])?,
            None => {
                let req = dev.call(
                    Command::get_capset(info.id, args.cap_set_ver),
                    KVec::new(),
                    protocol::HDR_SIZE + info.max_size as usize,
                )?;
                let (resp, written) = req.response();
                let data = protocol::capset_data(resp, written).map_err(to_error)?;
                user_write(args.addr, &data[..len.min(data.len())])?;
            }
        }
        Ok(0)
    }

    fn resource_create(
        dev: &GpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_resource_create,
        file: &DrmFile,
    ) -> Result<u32> {
        let params = ResourceParams {
            target: args.target,
            format: args.format,
            bind: args.bind,
            width: args.width,
            height: args.height,
            depth: args.depth,
            array_size: args.array_size,
            last_level: args.last_level,
            nr_samples: args.nr_samples,
            flags: args.flags,
        };
        // Without 3D the device makes 2D resources only (as the C driver, which refuses 3D
        // parameters then).
        let size = protocol::resource_backing_size(
            &params,
            args.size,
            dev.caps.virgl,
            kernel::page::PAGE_SIZE as u64,
        )
        .map_err(to_error)?;
        let size = usize::try_from(size).map_err(|_| E2BIG)?;
        if dev.caps.virgl {
            file.inner().ensure_created()?;
        }

        let resource_id = dev.next_resource_id.fetch_add(1, Relaxed);
        if resource_id == 0 {
            return Err(ENOSPC);
        }
        let bo = Bo::new(dev, size, Default::default(), BoArgs { resource_id })?;
        // From here the object releases the resource when it goes, even when the wait for the
        // answer is interrupted (the unref of a resource the host refused only gets an error).
        bo.on_host.store(true, Relaxed);
        let create = if dev.caps.virgl {
            Command::resource_create_3d(resource_id, &params)
        } else {
            Command::resource_create_2d(resource_id, args.format, args.width, args.height)
        };
        dev.call_nodata(create, KVec::new())?;
        let (entries, n) = gem::backing_entries(&bo, dma_dev(dev))?;
        dev.call_nodata(Command::attach_backing(resource_id, n), entries)?;
        let handle = bo.create_handle(file)?;
        args.bo_handle = handle;
        args.res_handle = resource_id;
        Ok(0)
    }

    fn resource_info(
        _dev: &GpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_resource_info,
        file: &DrmFile,
    ) -> Result<u32> {
        let bo = gem::lookup(file, args.bo_handle)?;
        args.res_handle = bo.resource_id;
        args.size = u32::try_from(bo.size()).unwrap_or(u32::MAX);
        args.blob_mem = 0;
        Ok(0)
    }

    fn map(
        _dev: &GpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_map,
        file: &DrmFile,
    ) -> Result<u32> {
        let bo = gem::lookup(file, args.handle)?;
        args.offset = bo.create_mmap_offset()?;
        Ok(0)
    }

    fn transfer(
        dev: &GpuDevice<Registered>,
        file: &DrmFile,
        to_host: bool,
        handle: u32,
        t: Transfer,
    ) -> Result<u32> {
        if !dev.caps.virgl && !to_host {
            // A 2D resource lives in the guest: nothing to read back (as the C driver).
            return Err(ENOSYS);
        }
        let bo = gem::lookup(file, handle)?;
        let cmd = if dev.caps.virgl {
            protocol::check_transfer(&t, bo.size() as u64).map_err(to_error)?;
            let ctx = file.inner();
            ctx.ensure_created()?;
            Command::transfer_3d(to_host, bo.resource_id, &t).with_ctx(ctx.ctx_id)
        } else {
            protocol::check_transfer_2d(&t, bo.size() as u64).map_err(to_error)?;
            Command::transfer_to_host_2d(bo.resource_id, &t)
        };
        // Fenced in 2D too (the C driver is not), so WAIT covers the transfer.
        dev.submit_fenced(cmd, KVec::new(), &[bo])?;
        Ok(0)
    }

    fn transfer_to_host(
        dev: &GpuDevice<Registered>,
        _reg: &(),
        a: &mut uapi::drm_virtgpu_3d_transfer_to_host,
        file: &DrmFile,
    ) -> Result<u32> {
        let b = &a.box_;
        let t = Transfer {
            bx: [b.x, b.y, b.z, b.w, b.h, b.d],
            level: a.level,
            offset: a.offset,
            stride: a.stride,
            layer_stride: a.layer_stride,
        };
        Self::transfer(dev, file, true, a.bo_handle, t)
    }

    fn transfer_from_host(
        dev: &GpuDevice<Registered>,
        _reg: &(),
        a: &mut uapi::drm_virtgpu_3d_transfer_from_host,
        file: &DrmFile,
    ) -> Result<u32> {
        let b = &a.box_;
        let t = Transfer {
            bx: [b.x, b.y, b.z, b.w, b.h, b.d],
            level: a.level,
            offset: a.offset,
            stride: a.stride,
            layer_stride: a.layer_stride,
        };
        Self::transfer(dev, file, false, a.bo_handle, t)
    }

    fn execbuffer(
        dev: &GpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_execbuffer,
        file: &DrmFile,
    ) -> Result<u32> {
        if !dev.caps.virgl {
            return Err(ENOSYS);
        }
        protocol::check_execbuffer(args.flags, args.size, args.num_bo_handles).map_err(to_error)?;
        let n = args.num_bo_handles as usize;
        let mut handles = KVec::with_capacity(n, GFP_KERNEL)?;
        if n != 0 {
            let addr = usize::try_from(args.bo_handles).map_err(|_| EFAULT)?;
            let mut reader = UserSlice::new(UserPtr::from_addr(addr), n * 4).reader();
            // The handles come in chunks through a buffer on the stack.
            let mut raw = [0u8; 256];
            while !reader.is_empty() {
                let chunk = &mut raw[..reader.len().min(256)];
                reader.read_slice(chunk)?;
                for h in chunk.chunks_exact(4) {
                    let h = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
                    handles.push(gem::lookup(file, h)?, GFP_KERNEL)?;
                }
            }
        }
        let mut stream = KVec::new();
        let addr = usize::try_from(args.command).map_err(|_| EFAULT)?;
        UserSlice::new(UserPtr::from_addr(addr), args.size as usize)
            .read_all(&mut stream, GFP_KERNEL)?;

        if args.flags & protocol::execbuf::FENCE_FD_IN != 0 {
            let in_fence = Fence::from_sync_file(args.fence_fd)?;
            // The device runs this context's commands in order: only another timeline's fence
            // needs a wait before the submission.
            if in_fence.context() != dev.timeline.context() {
                in_fence.wait(true)?;
            }
        }
        // The out-fence's descriptor is reserved before the submission, which cannot be undone.
        let out_fd = if args.flags & protocol::execbuf::FENCE_FD_OUT != 0 {
            Some(FileDescriptorReservation::get_unused_fd_flags(
                flags::O_CLOEXEC,
            )?)
        } else {
            None
        };

        let ctx = file.inner();
        ctx.ensure_created()?;
        let cmd = Command::submit_3d(args.size).with_ctx(ctx.ctx_id);
        let fence = dev.submit_fenced(cmd, stream, &handles)?;
        if let Some(fd) = out_fd {
            let sync_file = fence.to_sync_file()?;
            args.fence_fd = i32::try_from(fd.reserved_fd()).map_err(|_| EMFILE)?;
            fd.fd_install(sync_file);
        }
        Ok(0)
    }

    fn wait(
        dev: &GpuDevice<Registered>,
        _reg: &(),
        args: &mut uapi::drm_virtgpu_3d_wait,
        file: &DrmFile,
    ) -> Result<u32> {
        if args.flags & !protocol::WAIT_NOWAIT != 0 {
            return Err(EINVAL);
        }
        let bo = gem::lookup(file, args.handle)?;
        // As the C driver: the object is idle when every fence in its reservation object has
        // signalled (this driver's commands, and those of other drivers sharing it); a blocking
        // wait gives up after 15 s with EBUSY. This driver's own commands are waited for first,
        // on its events: that wait ends with ENODEV when the device goes away, whose commands
        // are only cancelled after the unplug (which waits for this ioctl).
        let resv = bo.resv();
        let fence = bo.last_fence.load(Relaxed);
        if args.flags & protocol::WAIT_NOWAIT != 0 {
            if !dev.events.fence_done(fence) || !resv.test_signaled(Usage::Read) {
                return Err(EBUSY);
            }
        } else {
            dev.events.wait_fence(fence, true)?;
            match resv.wait_timeout(Usage::Read, true, Delta::from_secs(WAIT_TIMEOUT_S)) {
                Err(e) if e == ETIMEDOUT => return Err(EBUSY),
                r => r?,
            }
        }
        dev.reap();
        Ok(0)
    }

    fn resource_create_blob(
        _dev: &GpuDevice<Registered>,
        _reg: &(),
        _args: &mut uapi::drm_virtgpu_resource_create_blob,
        _file: &DrmFile,
    ) -> Result<u32> {
        // GETPARAM reports no blob support; the C driver answers EINVAL then too.
        Err(EINVAL)
    }

    fn context_init(
        _dev: &GpuDevice<Registered>,
        _reg: &(),
        _args: &mut uapi::drm_virtgpu_context_init,
        _file: &DrmFile,
    ) -> Result<u32> {
        // GETPARAM reports no context-init support; the C driver answers EINVAL then too.
        Err(EINVAL)
    }
}

/// Commands' answer types checked by callers.
#[allow(dead_code)]
const _OK: u32 = cmd::RESP_OK_NODATA;
