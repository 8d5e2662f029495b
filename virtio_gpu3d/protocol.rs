// SPDX-License-Identifier: GPL-2.0

//! The virtio-gpu device protocol (`include/uapi/linux/virtio_gpu.h`) and the rules the driver
//! applies to what userspace passes through `include/uapi/drm/virtgpu_drm.h`. Only `core`: the
//! kernel module and the host tests (`virtio_gpu3d/host`) build this same file.
//!
//! Commands are encoded to, and responses decoded from, the little-endian bytes the device reads
//! and writes; the module checks every size here against the kernel's UAPI bindings at build
//! time.

/// Feature bits (`VIRTIO_GPU_F_*`).
pub mod feature {
    /// 3D: contexts, 3D resources, command submission (virgl).
    pub const VIRGL: u32 = 0;
    /// Per-scanout EDID blobs.
    pub const EDID: u32 = 1;
    /// Blob resources.
    pub const RESOURCE_BLOB: u32 = 3;
    /// Contexts created for a given capset (`context_init`).
    pub const CONTEXT_INIT: u32 = 4;
}

/// Byte offsets in `struct virtio_gpu_config`.
pub mod config {
    /// `events_read`.
    pub const EVENTS_READ: u32 = 0;
    /// `events_clear`.
    pub const EVENTS_CLEAR: u32 = 4;
    /// `num_scanouts`.
    pub const NUM_SCANOUTS: u32 = 8;
    /// `num_capsets`.
    pub const NUM_CAPSETS: u32 = 12;
}

/// Command and response types (`enum virtio_gpu_ctrl_type`).
pub mod cmd {
    /// `VIRTIO_GPU_CMD_RESOURCE_CREATE_2D`.
    pub const RESOURCE_CREATE_2D: u32 = 0x0101;
    /// `VIRTIO_GPU_CMD_RESOURCE_UNREF`.
    pub const RESOURCE_UNREF: u32 = 0x0102;
    /// `VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D`.
    pub const TRANSFER_TO_HOST_2D: u32 = 0x0105;
    /// `VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING`.
    pub const RESOURCE_ATTACH_BACKING: u32 = 0x0106;
    /// `VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING`.
    pub const RESOURCE_DETACH_BACKING: u32 = 0x0107;
    /// `VIRTIO_GPU_CMD_GET_CAPSET_INFO`.
    pub const GET_CAPSET_INFO: u32 = 0x0108;
    /// `VIRTIO_GPU_CMD_GET_CAPSET`.
    pub const GET_CAPSET: u32 = 0x0109;
    /// `VIRTIO_GPU_CMD_CTX_CREATE`.
    pub const CTX_CREATE: u32 = 0x0200;
    /// `VIRTIO_GPU_CMD_CTX_DESTROY`.
    pub const CTX_DESTROY: u32 = 0x0201;
    /// `VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE`.
    pub const CTX_ATTACH_RESOURCE: u32 = 0x0202;
    /// `VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE`.
    pub const CTX_DETACH_RESOURCE: u32 = 0x0203;
    /// `VIRTIO_GPU_CMD_RESOURCE_CREATE_3D`.
    pub const RESOURCE_CREATE_3D: u32 = 0x0204;
    /// `VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D`.
    pub const TRANSFER_TO_HOST_3D: u32 = 0x0205;
    /// `VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D`.
    pub const TRANSFER_FROM_HOST_3D: u32 = 0x0206;
    /// `VIRTIO_GPU_CMD_SUBMIT_3D`.
    pub const SUBMIT_3D: u32 = 0x0207;
    /// `VIRTIO_GPU_CMD_MOVE_CURSOR`.
    pub const MOVE_CURSOR: u32 = 0x0301;

    /// `VIRTIO_GPU_RESP_OK_NODATA`.
    pub const RESP_OK_NODATA: u32 = 0x1100;
    /// `VIRTIO_GPU_RESP_OK_CAPSET_INFO`.
    pub const RESP_OK_CAPSET_INFO: u32 = 0x1102;
    /// `VIRTIO_GPU_RESP_OK_CAPSET`.
    pub const RESP_OK_CAPSET: u32 = 0x1103;
    /// `VIRTIO_GPU_RESP_ERR_UNSPEC`.
    pub const RESP_ERR_UNSPEC: u32 = 0x1200;
    /// `VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY`.
    pub const RESP_ERR_OUT_OF_MEMORY: u32 = 0x1201;
    /// `VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID`.
    pub const RESP_ERR_INVALID_SCANOUT_ID: u32 = 0x1202;
    /// `VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID`.
    pub const RESP_ERR_INVALID_RESOURCE_ID: u32 = 0x1203;
    /// `VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID`.
    pub const RESP_ERR_INVALID_CONTEXT_ID: u32 = 0x1204;
    /// `VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER`.
    pub const RESP_ERR_INVALID_PARAMETER: u32 = 0x1205;
}

/// `VIRTIO_GPU_FLAG_FENCE`: the device answers when the command's work is done.
pub const FLAG_FENCE: u32 = 1;

/// `VIRTIO_GPU_CAPSET_VIRGL` and `VIRTIO_GPU_CAPSET_VIRGL2`.
pub const CAPSET_VIRGL: u32 = 1;
/// The second virgl capset.
pub const CAPSET_VIRGL2: u32 = 2;

/// The errnos the driver returns, as positive numbers (the module maps them to kernel errors).
pub mod errno {
    /// `EPERM`.
    pub const EPERM: i32 = 1;
    /// `ENOENT`.
    pub const ENOENT: i32 = 2;
    /// `EIO`.
    pub const EIO: i32 = 5;
    /// `E2BIG`.
    pub const E2BIG: i32 = 7;
    /// `ENOMEM`.
    pub const ENOMEM: i32 = 12;
    /// `EFAULT`.
    pub const EFAULT: i32 = 14;
    /// `EBUSY`.
    pub const EBUSY: i32 = 16;
    /// `EINVAL`.
    pub const EINVAL: i32 = 22;
    /// `ENOSPC`.
    pub const ENOSPC: i32 = 28;
    /// `ENOSYS`.
    pub const ENOSYS: i32 = 38;
}

/// `sizeof(struct virtio_gpu_ctrl_hdr)`.
pub const HDR_SIZE: usize = 24;
/// `sizeof(struct virtio_gpu_get_capset_info)`, and of every command that is a header plus two
/// 32-bit words (`resource_unref`, `ctx_resource`, `get_capset`, `cmd_submit`...).
pub const HDR_PLUS_8: usize = 32;
/// `sizeof(struct virtio_gpu_resp_capset_info)`.
pub const RESP_CAPSET_INFO_SIZE: usize = 40;
/// `sizeof(struct virtio_gpu_ctx_create)`.
pub const CTX_CREATE_SIZE: usize = 96;
/// Length of `virtio_gpu_ctx_create.debug_name`.
pub const CTX_DEBUG_NAME_LEN: usize = 64;
/// `sizeof(struct virtio_gpu_resource_create_2d)`.
pub const RESOURCE_CREATE_2D_SIZE: usize = 40;
/// `sizeof(struct virtio_gpu_transfer_to_host_2d)`.
pub const TRANSFER_TO_HOST_2D_SIZE: usize = 56;
/// `sizeof(struct virtio_gpu_resource_create_3d)`.
pub const RESOURCE_CREATE_3D_SIZE: usize = 72;
/// `sizeof(struct virtio_gpu_transfer_host_3d)`.
pub const TRANSFER_HOST_3D_SIZE: usize = 72;
/// `sizeof(struct virtio_gpu_mem_entry)`.
pub const MEM_ENTRY_SIZE: usize = 16;
/// `sizeof(struct virtio_gpu_update_cursor)`.
pub const UPDATE_CURSOR_SIZE: usize = 56;
/// The largest fixed-size command the driver sends.
pub const MAX_CMD_SIZE: usize = CTX_CREATE_SIZE;

/// A command as the device reads it: a fixed-size part (header and fields).
#[derive(Clone, Copy)]
pub struct Command {
    bytes: [u8; MAX_CMD_SIZE],
    len: usize,
}

impl Command {
    fn new(ty: u32, len: usize) -> Self {
        let mut c = Self {
            bytes: [0; MAX_CMD_SIZE],
            len,
        };
        c.put32(0, ty);
        c
    }

    fn put32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn put64(&mut self, at: usize, v: u64) {
        self.bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// The command's type.
    pub fn ty(&self) -> u32 {
        read32(&self.bytes, 0)
    }

    /// The bytes the device reads.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Sets the header's context.
    pub fn with_ctx(mut self, ctx_id: u32) -> Self {
        self.put32(16, ctx_id);
        self
    }

    /// Asks the device to answer only once the command's work is done, as fence `fence_id`.
    pub fn with_fence(mut self, fence_id: u64) -> Self {
        self.put32(4, read32(&self.bytes, 4) | FLAG_FENCE);
        self.put64(8, fence_id);
        self
    }

    /// The fence the command carries, if any.
    pub fn fence(&self) -> Option<u64> {
        if read32(&self.bytes, 4) & FLAG_FENCE != 0 {
            Some(read64(&self.bytes, 8))
        } else {
            None
        }
    }

    /// `GET_CAPSET_INFO` for capset index `index`.
    pub fn get_capset_info(index: u32) -> Self {
        let mut c = Self::new(cmd::GET_CAPSET_INFO, HDR_PLUS_8);
        c.put32(24, index);
        c
    }

    /// `GET_CAPSET` of capset `id` at `version`.
    pub fn get_capset(id: u32, version: u32) -> Self {
        let mut c = Self::new(cmd::GET_CAPSET, HDR_PLUS_8);
        c.put32(24, id);
        c.put32(28, version);
        c
    }

    /// `CTX_CREATE` of context `ctx_id` named `name` (cut to 63 bytes), for capset
    /// `capset_id` (0: the device's default, virgl).
    pub fn ctx_create(ctx_id: u32, name: &[u8], capset_id: u32) -> Self {
        let mut c = Self::new(cmd::CTX_CREATE, CTX_CREATE_SIZE).with_ctx(ctx_id);
        let n = name.len().min(CTX_DEBUG_NAME_LEN - 1);
        c.put32(24, n as u32);
        c.put32(28, capset_id & 0xff);
        c.bytes[32..32 + n].copy_from_slice(&name[..n]);
        c
    }

    /// `CTX_DESTROY` of context `ctx_id`.
    pub fn ctx_destroy(ctx_id: u32) -> Self {
        Self::new(cmd::CTX_DESTROY, HDR_SIZE).with_ctx(ctx_id)
    }

    /// `CTX_ATTACH_RESOURCE` (or detach when `attach` is false).
    pub fn ctx_resource(ctx_id: u32, resource_id: u32, attach: bool) -> Self {
        let ty = if attach {
            cmd::CTX_ATTACH_RESOURCE
        } else {
            cmd::CTX_DETACH_RESOURCE
        };
        let mut c = Self::new(ty, HDR_PLUS_8).with_ctx(ctx_id);
        c.put32(24, resource_id);
        c
    }

    /// `RESOURCE_CREATE_2D`: a 2D resource (a device without 3D), `format` one of
    /// `enum virtio_gpu_formats`.
    pub fn resource_create_2d(resource_id: u32, format: u32, width: u32, height: u32) -> Self {
        let mut c = Self::new(cmd::RESOURCE_CREATE_2D, RESOURCE_CREATE_2D_SIZE);
        for (i, v) in [resource_id, format, width, height].into_iter().enumerate() {
            c.put32(24 + 4 * i, v);
        }
        c
    }

    /// `TRANSFER_TO_HOST_2D` of the rectangle at `x`, `y` of `width` x `height` pixels, read
    /// from the backing from byte `offset` on.
    pub fn transfer_to_host_2d(resource_id: u32, t: &Transfer) -> Self {
        let mut c = Self::new(cmd::TRANSFER_TO_HOST_2D, TRANSFER_TO_HOST_2D_SIZE);
        // The box's x, y, w, h (z and d have no meaning in 2D).
        for (i, v) in [t.bx[0], t.bx[1], t.bx[3], t.bx[4]].into_iter().enumerate() {
            c.put32(24 + 4 * i, v);
        }
        c.put64(40, u64::from(t.offset));
        c.put32(48, resource_id);
        c
    }

    /// `RESOURCE_CREATE_3D`.
    pub fn resource_create_3d(resource_id: u32, p: &ResourceParams) -> Self {
        let mut c = Self::new(cmd::RESOURCE_CREATE_3D, RESOURCE_CREATE_3D_SIZE);
        for (i, v) in [
            resource_id,
            p.target,
            p.format,
            p.bind,
            p.width,
            p.height,
            p.depth,
            p.array_size,
            p.last_level,
            p.nr_samples,
            p.flags,
        ]
        .into_iter()
        .enumerate()
        {
            c.put32(24 + 4 * i, v);
        }
        c
    }

    /// `RESOURCE_ATTACH_BACKING` with `nr_entries` memory entries (sent as a second segment).
    pub fn attach_backing(resource_id: u32, nr_entries: u32) -> Self {
        let mut c = Self::new(cmd::RESOURCE_ATTACH_BACKING, HDR_PLUS_8);
        c.put32(24, resource_id);
        c.put32(28, nr_entries);
        c
    }

    /// `RESOURCE_DETACH_BACKING`.
    pub fn detach_backing(resource_id: u32) -> Self {
        let mut c = Self::new(cmd::RESOURCE_DETACH_BACKING, HDR_PLUS_8);
        c.put32(24, resource_id);
        c
    }

    /// `RESOURCE_UNREF`.
    pub fn resource_unref(resource_id: u32) -> Self {
        let mut c = Self::new(cmd::RESOURCE_UNREF, HDR_PLUS_8);
        c.put32(24, resource_id);
        c
    }

    /// `TRANSFER_TO_HOST_3D` or `TRANSFER_FROM_HOST_3D`.
    pub fn transfer_3d(to_host: bool, resource_id: u32, t: &Transfer) -> Self {
        let ty = if to_host {
            cmd::TRANSFER_TO_HOST_3D
        } else {
            cmd::TRANSFER_FROM_HOST_3D
        };
        let mut c = Self::new(ty, TRANSFER_HOST_3D_SIZE);
        for (i, v) in t.bx.iter().enumerate() {
            c.put32(24 + 4 * i, *v);
        }
        c.put64(48, u64::from(t.offset));
        c.put32(56, resource_id);
        c.put32(60, t.level);
        c.put32(64, t.stride);
        c.put32(68, t.layer_stride);
        c
    }

    /// `SUBMIT_3D` of a `size`-byte command stream (sent as a second segment).
    pub fn submit_3d(size: u32) -> Self {
        let mut c = Self::new(cmd::SUBMIT_3D, HDR_PLUS_8);
        c.put32(24, size);
        c
    }
}

/// Encodes one `struct virtio_gpu_mem_entry`.
pub fn mem_entry(addr: u64, length: u32) -> [u8; MEM_ENTRY_SIZE] {
    let mut e = [0u8; MEM_ENTRY_SIZE];
    e[0..8].copy_from_slice(&addr.to_le_bytes());
    e[8..12].copy_from_slice(&length.to_le_bytes());
    e
}

fn read32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fn read64(b: &[u8], at: usize) -> u64 {
    u64::from(read32(b, at)) | (u64::from(read32(b, at + 4)) << 32)
}

/// The response type in a response header (0 when the device wrote less than a header).
pub fn response_type(resp: &[u8], written: u32) -> u32 {
    if (written as usize) < HDR_SIZE {
        return 0;
    }
    read32(resp, 0)
}

/// The errno for a response the device gave to a command that expected `ok`.
pub fn check_response(resp: &[u8], written: u32, ok: u32) -> Result<(), i32> {
    match response_type(resp, written) {
        t if t == ok => Ok(()),
        cmd::RESP_ERR_OUT_OF_MEMORY => Err(errno::ENOMEM),
        cmd::RESP_ERR_INVALID_RESOURCE_ID
        | cmd::RESP_ERR_INVALID_CONTEXT_ID
        | cmd::RESP_ERR_INVALID_PARAMETER
        | cmd::RESP_ERR_INVALID_SCANOUT_ID => Err(errno::EINVAL),
        _ => Err(errno::EIO),
    }
}

/// One capset the device offers (`struct virtio_gpu_resp_capset_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CapsetInfo {
    /// `VIRTIO_GPU_CAPSET_*`.
    pub id: u32,
    /// Highest version the device has.
    pub max_version: u32,
    /// Size of the capset's data.
    pub max_size: u32,
}

/// The largest capset the driver accepts from a device (virgl's are about 1 KiB).
pub const MAX_CAPSET_SIZE: u32 = 64 * 1024;

/// Decodes a `RESP_OK_CAPSET_INFO`.
pub fn decode_capset_info(resp: &[u8], written: u32) -> Result<CapsetInfo, i32> {
    check_response(resp, written, cmd::RESP_OK_CAPSET_INFO)?;
    if (written as usize) < RESP_CAPSET_INFO_SIZE {
        return Err(errno::EIO);
    }
    let info = CapsetInfo {
        id: read32(resp, 24),
        max_version: read32(resp, 28),
        max_size: read32(resp, 32),
    };
    if info.max_size == 0 || info.max_size > MAX_CAPSET_SIZE {
        return Err(errno::EIO);
    }
    Ok(info)
}

/// The data of a `RESP_OK_CAPSET` that was answered with `written` bytes.
pub fn capset_data(resp: &[u8], written: u32) -> Result<&[u8], i32> {
    check_response(resp, written, cmd::RESP_OK_CAPSET)?;
    let end = (written as usize).min(resp.len());
    Ok(&resp[HDR_SIZE..end])
}

/// The capset `GET_CAPS` asks for, among those the device offers: `None` for an unknown id or a
/// version above the device's.
pub fn find_capset(caps: &[CapsetInfo], id: u32, version: u32) -> Option<CapsetInfo> {
    caps.iter()
        .find(|c| c.id == id && version <= c.max_version)
        .copied()
}

/// What the device offers, for `GETPARAM`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceCaps {
    /// `VIRTIO_GPU_F_VIRGL` negotiated.
    pub virgl: bool,
    /// `VIRTIO_GPU_F_RESOURCE_BLOB` negotiated.
    pub resource_blob: bool,
    /// `VIRTIO_GPU_F_CONTEXT_INIT` negotiated.
    pub context_init: bool,
    /// Bit `id` set for every capset the device offers.
    pub capset_mask: u64,
}

/// `VIRTGPU_PARAM_*`.
pub mod param {
    /// `VIRTGPU_PARAM_3D_FEATURES`.
    pub const THREE_D_FEATURES: u64 = 1;
    /// `VIRTGPU_PARAM_CAPSET_QUERY_FIX`.
    pub const CAPSET_QUERY_FIX: u64 = 2;
    /// `VIRTGPU_PARAM_RESOURCE_BLOB`.
    pub const RESOURCE_BLOB: u64 = 3;
    /// `VIRTGPU_PARAM_HOST_VISIBLE`.
    pub const HOST_VISIBLE: u64 = 4;
    /// `VIRTGPU_PARAM_CROSS_DEVICE`.
    pub const CROSS_DEVICE: u64 = 5;
    /// `VIRTGPU_PARAM_CONTEXT_INIT`.
    pub const CONTEXT_INIT: u64 = 6;
    /// `VIRTGPU_PARAM_SUPPORTED_CAPSET_IDS`.
    pub const SUPPORTED_CAPSET_IDS: u64 = 7;
    /// `VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME`.
    pub const EXPLICIT_DEBUG_NAME: u64 = 8;
    /// `VIRTGPU_PARAM_BLOB_ALIGNMENT`.
    pub const BLOB_ALIGNMENT: u64 = 9;
}

/// `GETPARAM`'s answer. This driver has no blob resources, host-visible memory, cross-device
/// sharing or context-init ioctl yet, so it reports them absent (as the C driver does on a
/// device without those features).
pub fn getparam(caps: &DeviceCaps, p: u64) -> Result<u64, i32> {
    match p {
        param::THREE_D_FEATURES => Ok(u64::from(caps.virgl)),
        param::CAPSET_QUERY_FIX => Ok(1),
        param::RESOURCE_BLOB
        | param::HOST_VISIBLE
        | param::CROSS_DEVICE
        | param::CONTEXT_INIT
        | param::EXPLICIT_DEBUG_NAME => Ok(0),
        param::SUPPORTED_CAPSET_IDS => Ok(caps.capset_mask),
        // Only with VIRTIO_GPU_F_BLOB_ALIGNMENT, which this driver does not negotiate.
        param::BLOB_ALIGNMENT => Err(errno::ENOENT),
        _ => Err(errno::EINVAL),
    }
}

/// `struct drm_virtgpu_resource_create`'s resource fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceParams {
    /// Texture target (`PIPE_TEXTURE_2D`...).
    pub target: u32,
    /// Pipe format.
    pub format: u32,
    /// Bind flags.
    pub bind: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Depth (3D textures).
    pub depth: u32,
    /// Array layers.
    pub array_size: u32,
    /// Last mipmap level.
    pub last_level: u32,
    /// Samples per pixel.
    pub nr_samples: u32,
    /// Resource flags.
    pub flags: u32,
}

/// Pipe texture target `PIPE_BUFFER`.
pub const PIPE_BUFFER: u32 = 0;
/// Pipe texture target `PIPE_TEXTURE_2D`.
pub const PIPE_TEXTURE_2D: u32 = 2;

/// The largest guest backing the driver allocates for one resource.
pub const MAX_RESOURCE_SIZE: u64 = 256 << 20;

/// Checks `RESOURCE_CREATE`'s arguments and returns the backing size in bytes, page-aligned.
///
/// Without 3D only 2D targets of depth 1, one layer, one level and no multisampling are
/// accepted, as the C driver does. `size` 0 means one page (as C allocates for zero-sized
/// buffers).
pub fn resource_backing_size(
    p: &ResourceParams,
    size: u32,
    virgl: bool,
    page_size: u64,
) -> Result<u64, i32> {
    if !virgl
        && (p.depth > 1
            || p.nr_samples > 1
            || p.last_level > 1
            || p.target != PIPE_TEXTURE_2D
            || p.array_size > 1)
    {
        return Err(errno::EINVAL);
    }
    let size = u64::from(size).max(1);
    if size > MAX_RESOURCE_SIZE {
        return Err(errno::E2BIG);
    }
    size.checked_next_multiple_of(page_size)
        .ok_or(errno::EINVAL)
}

/// A transfer's box and layout (`struct drm_virtgpu_3d_transfer_{to,from}_host`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Transfer {
    /// x, y, z, w, h, d.
    pub bx: [u32; 6],
    /// Mipmap level.
    pub level: u32,
    /// Byte offset in the backing.
    pub offset: u32,
    /// Row stride (host blobs only).
    pub stride: u32,
    /// Layer stride (host blobs only).
    pub layer_stride: u32,
}

/// Checks a transfer's layout: strides are the host's to choose for a guest-backed resource
/// (only host-allocated blobs, which this driver does not create, take them), and the offset
/// must lie inside the object.
pub fn check_transfer(t: &Transfer, object_size: u64) -> Result<(), i32> {
    if t.stride != 0 || t.layer_stride != 0 {
        return Err(errno::EINVAL);
    }
    if u64::from(t.offset) >= object_size {
        return Err(errno::EINVAL);
    }
    Ok(())
}

/// Checks a 2D transfer (a device without 3D): the command has no strides, which are ignored
/// (as the C driver does); the offset must lie inside the object.
pub fn check_transfer_2d(t: &Transfer, object_size: u64) -> Result<(), i32> {
    check_transfer(
        &Transfer {
            stride: 0,
            layer_stride: 0,
            ..*t
        },
        object_size,
    )
}

/// `VIRTGPU_EXECBUF_*` flags.
pub mod execbuf {
    /// `VIRTGPU_EXECBUF_FENCE_FD_IN`.
    pub const FENCE_FD_IN: u32 = 0x01;
    /// `VIRTGPU_EXECBUF_FENCE_FD_OUT`.
    pub const FENCE_FD_OUT: u32 = 0x02;
    /// `VIRTGPU_EXECBUF_RING_IDX`.
    pub const RING_IDX: u32 = 0x04;
    /// `VIRTGPU_EXECBUF_FLAGS`.
    pub const ALL: u32 = FENCE_FD_IN | FENCE_FD_OUT | RING_IDX;
}

/// The largest command stream one `EXECBUFFER` may carry (Mesa's virgl batches are 256 KiB).
pub const MAX_EXECBUFFER_SIZE: u32 = 1 << 20;

/// The largest bo list one `EXECBUFFER` may carry.
pub const MAX_BO_HANDLES: u32 = 4096;

/// Checks an `EXECBUFFER` request: the flags this driver supports, and the sizes.
///
/// Rings need context-init, which this driver does not offer: `EINVAL` for them, as for
/// unknown flags.
pub fn check_execbuffer(flags: u32, size: u32, num_bo_handles: u32) -> Result<(), i32> {
    if flags & !(execbuf::FENCE_FD_IN | execbuf::FENCE_FD_OUT) != 0 {
        return Err(errno::EINVAL);
    }
    if size == 0 || size > MAX_EXECBUFFER_SIZE || !size.is_multiple_of(4) {
        return Err(errno::EINVAL);
    }
    if num_bo_handles > MAX_BO_HANDLES {
        return Err(errno::EINVAL);
    }
    Ok(())
}

/// `VIRTGPU_WAIT_NOWAIT`.
pub const WAIT_NOWAIT: u32 = 1;

/// Fence ids: a fence is done once the device has answered a fence at least as high (the device
/// signals fences in order).
#[derive(Clone, Copy, Debug, Default)]
pub struct FenceTimeline {
    /// The last fence id handed out.
    pub last_issued: u64,
    /// The highest fence id the device answered.
    pub completed: u64,
}

impl FenceTimeline {
    /// The next fence id.
    pub fn issue(&mut self) -> u64 {
        self.last_issued += 1;
        self.last_issued
    }

    /// The device answered fence `id`.
    pub fn complete(&mut self, id: u64) {
        if id > self.completed && id <= self.last_issued {
            self.completed = id;
        }
    }

    /// Whether fence `id` is done (0: no fence, always done).
    pub fn is_done(&self, id: u64) -> bool {
        id <= self.completed
    }
}

/// virgl command-stream helpers (`virgl_protocol.h`): a header dword is
/// `opcode | object << 8 | length << 16`, length in dwords without the header.
pub mod virgl {
    /// `VIRGL_CCMD_CREATE_OBJECT`.
    pub const CCMD_CREATE_OBJECT: u32 = 1;
    /// `VIRGL_CCMD_SET_FRAMEBUFFER_STATE`.
    pub const CCMD_SET_FRAMEBUFFER_STATE: u32 = 5;
    /// `VIRGL_CCMD_CLEAR`.
    pub const CCMD_CLEAR: u32 = 7;
    /// `VIRGL_CCMD_RESOURCE_COPY_REGION`.
    pub const CCMD_RESOURCE_COPY_REGION: u32 = 17;
    /// `VIRGL_CCMD_CREATE_SUB_CTX`.
    pub const CCMD_CREATE_SUB_CTX: u32 = 28;
    /// `VIRGL_CCMD_SET_SUB_CTX`.
    pub const CCMD_SET_SUB_CTX: u32 = 29;
    /// `VIRGL_OBJECT_SURFACE`.
    pub const OBJECT_SURFACE: u32 = 8;

    /// A command header dword.
    pub const fn header(opcode: u32, object: u32, len: u32) -> u32 {
        opcode | (object << 8) | (len << 16)
    }

    /// Splits a header dword into opcode, object type and payload length.
    pub const fn split(h: u32) -> (u32, u32, u32) {
        (h & 0xff, (h >> 8) & 0xff, h >> 16)
    }

    /// Walks a command stream's dwords and checks that every command's length stays inside it.
    /// Returns the number of commands.
    pub fn count_commands(stream: &[u32]) -> Option<usize> {
        let mut i = 0usize;
        let mut n = 0usize;
        while i < stream.len() {
            let (_, _, len) = split(stream[i]);
            i = i.checked_add(1 + len as usize)?;
            n += 1;
        }
        if i == stream.len() {
            Some(n)
        } else {
            None
        }
    }
}
