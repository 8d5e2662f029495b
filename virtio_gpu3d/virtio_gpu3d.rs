// SPDX-License-Identifier: GPL-2.0

//! virtio_gpu3d: a DRM render-node driver for the virtio GPU with 3D (virgl).
//!
//! The driver binds `VIRTIO_ID_GPU`, negotiates virgl (and EDID and blob resources when the
//! device offers them), reads the device's capsets at probe and registers a render node named
//! `virtio_gpu` (so Mesa's virgl driver picks it), with the `virtgpu_drm.h` ioctls. There is no
//! modesetting. Commands go on the control queue; a command whose completion userspace can wait
//! for carries a fence, and the device answers it when the host has done its work.

use kernel::{
    device::Core,
    devres::Devres,
    dma_fence::{DriverFence, Fence, Timeline},
    dma_resv::Usage,
    drm::{self, gem::BaseObject},
    new_condvar, new_mutex, new_spinlock_irq, pci,
    prelude::*,
    sync::{aref::ARef, Arc, CondVar, Mutex, SpinLockIrq},
    time::msecs_to_jiffies,
    virtio::{
        self,
        virtqueue::{Buffer, Handler, Segments, Virtqueues},
    },
};

mod file;
mod gem;
pub mod protocol;

use protocol::{cmd, errno, CapsetInfo, Command, DeviceCaps, FenceTimeline};

kernel::module_virtio_driver! {
    type: VirtioGpu,
    name: "virtio_gpu3d",
    authors: ["rust44"],
    description: "Virtio GPU render node with 3D (virgl), in Rust",
    license: "GPL v2",
}

// The device protocol in `protocol.rs` is written by hand: check it against the UAPI headers.
const _: () = {
    use core::mem::size_of;
    use kernel::uapi;
    assert!(size_of::<uapi::virtio_gpu_ctrl_hdr>() == protocol::HDR_SIZE);
    assert!(size_of::<uapi::virtio_gpu_get_capset_info>() == protocol::HDR_PLUS_8);
    assert!(size_of::<uapi::virtio_gpu_get_capset>() == protocol::HDR_PLUS_8);
    assert!(size_of::<uapi::virtio_gpu_resource_unref>() == protocol::HDR_PLUS_8);
    assert!(size_of::<uapi::virtio_gpu_ctx_resource>() == protocol::HDR_PLUS_8);
    assert!(size_of::<uapi::virtio_gpu_cmd_submit>() == protocol::HDR_PLUS_8);
    assert!(size_of::<uapi::virtio_gpu_resource_attach_backing>() == protocol::HDR_PLUS_8);
    assert!(size_of::<uapi::virtio_gpu_resource_detach_backing>() == protocol::HDR_PLUS_8);
    assert!(size_of::<uapi::virtio_gpu_resp_capset_info>() == protocol::RESP_CAPSET_INFO_SIZE);
    assert!(size_of::<uapi::virtio_gpu_ctx_create>() == protocol::CTX_CREATE_SIZE);
    assert!(size_of::<uapi::virtio_gpu_resource_create_2d>() == protocol::RESOURCE_CREATE_2D_SIZE);
    assert!(
        size_of::<uapi::virtio_gpu_transfer_to_host_2d>() == protocol::TRANSFER_TO_HOST_2D_SIZE
    );
    assert!(size_of::<uapi::virtio_gpu_resource_create_3d>() == protocol::RESOURCE_CREATE_3D_SIZE);
    assert!(size_of::<uapi::virtio_gpu_transfer_host_3d>() == protocol::TRANSFER_HOST_3D_SIZE);
    assert!(size_of::<uapi::virtio_gpu_mem_entry>() == protocol::MEM_ENTRY_SIZE);
    assert!(size_of::<uapi::virtio_gpu_update_cursor>() == protocol::UPDATE_CURSOR_SIZE);
    assert!(uapi::VIRTIO_GPU_F_VIRGL == protocol::feature::VIRGL);
    assert!(uapi::VIRTIO_GPU_F_EDID == protocol::feature::EDID);
    assert!(uapi::VIRTIO_GPU_F_RESOURCE_BLOB == protocol::feature::RESOURCE_BLOB);
    assert!(uapi::VIRTIO_GPU_F_CONTEXT_INIT == protocol::feature::CONTEXT_INIT);
    assert!(uapi::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_SUBMIT_3D == cmd::SUBMIT_3D);
    assert!(
        uapi::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_RESOURCE_CREATE_2D == cmd::RESOURCE_CREATE_2D
    );
    assert!(
        uapi::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D == cmd::TRANSFER_TO_HOST_2D
    );
    assert!(uapi::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_GET_CAPSET == cmd::GET_CAPSET);
    assert!(uapi::virtio_gpu_ctrl_type_VIRTIO_GPU_CMD_MOVE_CURSOR == cmd::MOVE_CURSOR);
    assert!(
        uapi::virtio_gpu_ctrl_type_VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER
            == cmd::RESP_ERR_INVALID_PARAMETER
    );
    assert!(uapi::VIRTIO_GPU_FLAG_FENCE == protocol::FLAG_FENCE);
    assert!(uapi::VIRTIO_GPU_CAPSET_VIRGL2 == protocol::CAPSET_VIRGL2);
    assert!(
        uapi::VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs as u64 == protocol::param::SUPPORTED_CAPSET_IDS
    );
    assert!(uapi::VIRTGPU_EXECBUF_FLAGS == protocol::execbuf::ALL);
    assert!(uapi::VIRTGPU_WAIT_NOWAIT == protocol::WAIT_NOWAIT);
};

/// Converts a protocol errno into a kernel error.
pub(crate) fn to_error(e: i32) -> Error {
    match e {
        errno::EPERM => EPERM,
        errno::ENOENT => ENOENT,
        errno::E2BIG => E2BIG,
        errno::ENOMEM => ENOMEM,
        errno::EFAULT => EFAULT,
        errno::EBUSY => EBUSY,
        errno::EINVAL => EINVAL,
        errno::ENOSPC => ENOSPC,
        errno::ENOSYS => ENOSYS,
        _ => EIO,
    }
}

/// Queue indices.
const CONTROL_QUEUE: usize = 0;
const CURSOR_QUEUE: usize = 1;

/// How long probe waits for the device to answer a command.
const PROBE_TIMEOUT_MS: u32 = 10_000;

/// One command on a queue, with the device's answer once it has used it.
pub(crate) struct Request {
    cmd: Command,
    /// A second device-readable segment: memory entries or a command stream.
    data: KVec<u8>,
    /// Where the device writes a header-only response (most commands): in the request, no
    /// allocation of its own.
    resp_hdr: [u8; protocol::HDR_SIZE],
    /// Where the device writes a longer response (capsets), when one is expected.
    resp_long: KVec<u8>,
    /// Bytes the device wrote to `resp`.
    written: u32,
    /// Where the completed request goes for a caller waiting on it.
    reply: Option<Arc<ReplySlot>>,
    /// The DMA fence a fenced command signals when the device answers it.
    fence: Option<DriverFence>,
}

/// A completed request, for the caller that waits for it.
pub(crate) type ReplySlot = SpinLockIrq<Option<KBox<Request>>>;

impl Request {
    pub(crate) fn new(cmd: Command, data: KVec<u8>, resp_len: usize) -> Result<KBox<Self>> {
        let mut resp_long = KVec::new();
        if resp_len > protocol::HDR_SIZE {
            resp_long.extend_with(resp_len, 0, GFP_KERNEL)?;
        }
        Ok(KBox::new(
            Self {
                cmd,
                data,
                resp_hdr: [0; protocol::HDR_SIZE],
                resp_long,
                written: 0,
                reply: None,
                fence: None,
            },
            GFP_KERNEL,
        )?)
    }

    /// The device's response and the bytes it wrote.
    pub(crate) fn response(&self) -> (&[u8], u32) {
        if self.resp_long.is_empty() {
            (&self.resp_hdr, self.written)
        } else {
            (&self.resp_long, self.written)
        }
    }
}

impl Buffer for Request {
    fn segments<'a>(&'a mut self, sg: &mut Segments<'a>) -> Result {
        sg.readable(self.cmd.as_bytes())?;
        if !self.data.is_empty() {
            sg.readable(&self.data)?;
        }
        if self.resp_long.is_empty() {
            sg.writable(&mut self.resp_hdr)
        } else {
            sg.writable(&mut self.resp_long)
        }
    }
}

/// Device events the driver waits for: fences and replies, and the device going away.
#[pin_data]
pub(crate) struct Events {
    #[pin]
    state: SpinLockIrq<EventState>,
    #[pin]
    changed: CondVar,
}

#[derive(Default)]
struct EventState {
    fences: FenceTimeline,
    /// Set at unbind: nothing more will complete.
    dead: bool,
}

impl Events {
    /// Wakes the waiters after a change made under `state` or one of the reply slots.
    fn notify(&self) {
        // Taking the lock orders the change before the waiters' next look at it.
        drop(self.state.lock());
        self.changed.notify_all();
    }

    /// Hands out the next fence id.
    pub(crate) fn issue_fence(&self) -> u64 {
        self.state.lock().fences.issue()
    }

    /// The highest fence id done: every fence up to it is done.
    pub(crate) fn completed(&self) -> u64 {
        self.state.lock().fences.completed
    }

    /// Whether fence `id` is done.
    pub(crate) fn fence_done(&self, id: u64) -> bool {
        self.state.lock().fences.is_done(id)
    }

    /// Waits until fence `id` is done.
    ///
    /// `ENODEV` once the device is gone, `ERESTARTSYS` on a signal when `interruptible`.
    pub(crate) fn wait_fence(&self, id: u64, interruptible: bool) -> Result {
        let mut state = self.state.lock();
        loop {
            if state.fences.is_done(id) {
                return Ok(());
            }
            if state.dead {
                return Err(ENODEV);
            }
            if interruptible {
                if self.changed.wait_interruptible(&mut state) {
                    return Err(ERESTARTSYS);
                }
            } else {
                self.changed.wait(&mut state);
            }
        }
    }

    /// Waits for the reply to arrive in `slot`. `timeout_ms` 0 waits interruptibly without
    /// limit.
    fn wait_reply(&self, slot: &ReplySlot, timeout_ms: u32) -> Result<KBox<Request>> {
        let mut state = self.state.lock();
        loop {
            if let Some(req) = slot.lock().take() {
                return Ok(req);
            }
            if state.dead {
                return Err(ENODEV);
            }
            if timeout_ms == 0 {
                if self.changed.wait_interruptible(&mut state) {
                    return Err(ERESTARTSYS);
                }
            } else {
                let left = self
                    .changed
                    .wait_interruptible_timeout(&mut state, msecs_to_jiffies(timeout_ms));
                if matches!(left, kernel::sync::CondVarTimeoutResult::Timeout) {
                    if let Some(req) = slot.lock().take() {
                        return Ok(req);
                    }
                    return Err(ETIMEDOUT);
                }
            }
        }
    }

    /// Waits until something changes (a completion frees room on a queue), at most a tick.
    fn wait_room(&self) -> Result {
        let mut state = self.state.lock();
        if state.dead {
            return Err(ENODEV);
        }
        let _ = self
            .changed
            .wait_interruptible_timeout(&mut state, msecs_to_jiffies(10));
        Ok(())
    }

    fn set_dead(&self) {
        self.state.lock().dead = true;
        self.changed.notify_all();
    }
}

/// Takes the device's answers from the queue interrupt.
pub(crate) struct Completions {
    events: Arc<Events>,
}

impl Handler<Request> for Completions {
    fn used(&self, _index: usize, mut req: KBox<Request>, written: u32) {
        req.written = written;
        if let Some(fence) = req.cmd.fence() {
            self.events.state.lock().fences.complete(fence);
        }
        if let Some(fence) = req.fence.take() {
            fence.signal();
        }
        if let Some(slot) = req.reply.take() {
            *slot.lock() = Some(req);
        }
        // Otherwise the request (memory only) is freed here.
        self.events.notify();
    }
}

pub(crate) type Queues = Virtqueues<Request, Completions>;

/// Places `req` on queue `index` and kicks the device, waiting for room when the queue is full.
///
/// With a `timeline`, the command is fenced: it gets the next fence id and the timeline's next
/// DMA fence, which are returned. Both are issued under the queue lock, so commands reach the
/// device in the order of their fences, which the device completes them in.
pub(crate) fn submit(
    queues: &Queues,
    events: &Events,
    index: usize,
    req: KBox<Request>,
    timeline: Option<&Timeline>,
) -> Result<(u64, Option<ARef<Fence>>)> {
    let mut req = req;
    loop {
        match try_submit(queues, events, index, req, timeline, true)? {
            Placed::Done(id, fence) => return Ok((id, fence)),
            Placed::Full(back) => {
                req = back;
                events.wait_room()?;
            }
        }
    }
}

/// What one attempt at placing a request on a queue gave.
pub(crate) enum Placed {
    /// On the queue, with its fence id and DMA fence when fenced.
    Done(u64, Option<ARef<Fence>>),
    /// The queue was full: the request back, to wait for room (with no lock or guard held).
    Full(KBox<Request>),
}

/// One attempt of [`submit`]: never sleeps. Without `kick` the device is not notified: the
/// caller kicks once it has recorded the command (see [`Gpu::submit_fenced`]).
pub(crate) fn try_submit(
    queues: &Queues,
    events: &Events,
    index: usize,
    mut req: KBox<Request>,
    timeline: Option<&Timeline>,
    kick: bool,
) -> Result<Placed> {
    let queue = queues.queue(index).ok_or(EINVAL)?;
    if events.state.lock().dead {
        return Err(ENODEV);
    }
    let mut q = queue.lock();
    // Fences made for an attempt that found the queue full are never used: nothing waits for
    // them, and a later fence's completion covers them.
    let (id, fence) = match timeline {
        Some(timeline) => {
            let fence = timeline.new_fence(GFP_ATOMIC)?;
            let out = ARef::from(&*fence);
            let id = events.issue_fence();
            req.cmd = req.cmd.with_fence(id);
            req.fence = Some(fence);
            (id, Some(out))
        }
        None => (0, None),
    };
    match q.add(req, GFP_ATOMIC) {
        Ok(()) => {
            // The notification goes out once the lock is dropped (it exits to the hypervisor,
            // and the queue's interrupt on another CPU takes the lock).
            let notify = kick && q.kick_prepare();
            drop(q);
            if notify {
                queues.notify(index);
            }
            Ok(Placed::Done(id, fence))
        }
        Err((e, mut back)) if e == ENOSPC => {
            back.fence = None;
            Ok(Placed::Full(back))
        }
        Err((e, _)) => Err(e),
    }
}

/// Sends `cmd` and waits for the device's answer.
pub(crate) fn call(
    queues: &Queues,
    events: &Events,
    cmd: Command,
    data: KVec<u8>,
    resp_len: usize,
    timeout_ms: u32,
) -> Result<KBox<Request>> {
    let mut req = Request::new(cmd, data, resp_len)?;
    let slot = Arc::pin_init(new_spinlock_irq!(None, "virtio_gpu3d_reply"), GFP_KERNEL)?;
    req.reply = Some(slot.clone());
    submit(queues, events, CONTROL_QUEUE, req, None)?;
    events.wait_reply(&slot, timeout_ms)
}

/// A capset the device offers, with its data at the highest version.
pub(crate) struct Capset {
    pub(crate) info: CapsetInfo,
    pub(crate) data: KVec<u8>,
}

/// The driver's state, shared by the DRM device, its files and its objects.
#[pin_data]
pub(crate) struct Gpu {
    /// The queues, while the device is bound.
    pub(crate) queues: Devres<Queues>,
    /// The DMA fences of fenced commands (execbuffers, transfers).
    pub(crate) timeline: Timeline,
    pub(crate) events: Arc<Events>,
    pub(crate) caps: DeviceCaps,
    pub(crate) capsets: KVec<Capset>,
    /// Host resource ids (0 is invalid).
    pub(crate) next_resource_id: kernel::sync::atomic::Atomic<u32>,
    /// Host context ids (0 is the device's own).
    pub(crate) next_ctx_id: kernel::sync::atomic::Atomic<u32>,
    /// Objects used by fenced commands, held until the fence is done so their backing outlives
    /// the host's use of it.
    #[pin]
    inflight: Mutex<KVec<(u64, ARef<gem::Bo>)>>,
}

impl Gpu {
    /// [`submit`] on the control queue while the device is bound. The queues are reached under
    /// an RCU guard (`Devres`), which is dropped before waiting for room: no sleep under it.
    fn submit(
        &self,
        req: KBox<Request>,
        timeline: Option<&Timeline>,
        kick: bool,
    ) -> Result<(u64, Option<ARef<Fence>>)> {
        let mut req = req;
        loop {
            let placed = {
                let queues = self.queues.try_access().ok_or(ENODEV)?;
                try_submit(&queues, &self.events, CONTROL_QUEUE, req, timeline, kick)?
            };
            match placed {
                Placed::Done(id, fence) => return Ok((id, fence)),
                Placed::Full(back) => {
                    req = back;
                    // Commands placed but not yet kicked (another submitter is recording them)
                    // must reach the device for room to come.
                    self.kick();
                    self.events.wait_room()?;
                }
            }
        }
    }

    /// Notifies the device of the commands on the control queue (none once it is unbound),
    /// without the queue's lock held.
    fn kick(&self) {
        if let Some(queues) = self.queues.try_access() {
            if let Some(queue) = queues.queue(CONTROL_QUEUE) {
                let notify = queue.lock().kick_prepare();
                if notify {
                    queues.notify(CONTROL_QUEUE);
                }
            }
        }
    }

    /// Sends `cmd` without waiting for an answer (the device still answers; the request is
    /// freed then). Fails with `ENODEV` once the device is unbound.
    pub(crate) fn send(&self, cmd: Command, data: KVec<u8>) -> Result {
        let req = Request::new(cmd, data, protocol::HDR_SIZE)?;
        self.submit(req, None, true).map(|_| ())
    }

    /// Sends a fenced `cmd` that uses `bos`, without waiting; returns its DMA fence.
    ///
    /// The fence goes into every object's reservation object (as a write, like the C driver), so
    /// implicit synchronisation sees the command: WAIT, `poll()` on the object's dma-buf, other
    /// drivers importing it. Each object is held until the fence is done, so its backing outlives
    /// the host's use of it.
    pub(crate) fn submit_fenced(
        &self,
        cmd: Command,
        data: KVec<u8>,
        bos: &[ARef<gem::Bo>],
    ) -> Result<ARef<Fence>> {
        self.reap();
        let mut held = KVec::with_capacity(bos.len(), GFP_KERNEL)?;
        for bo in bos {
            held.push((0, bo.clone()), GFP_KERNEL)?;
        }
        let req = Request::new(cmd, data, protocol::HDR_SIZE)?;
        // As the C driver, the device is notified once the command is recorded: its fence in
        // the objects' reservation objects and the objects held.
        let (fence, dma_fence) = self.submit(req, Some(&self.timeline), false)?;
        let recorded = self.record(fence, &dma_fence, bos, held);
        self.kick();
        if recorded.is_err() {
            // The command is on its way and cannot be taken back: a failure to record it (no
            // memory) is made up for by waiting until the host is done with it.
            let _ = self.events.wait_fence(fence, false);
        }
        dma_fence.ok_or(EINVAL)
    }

    /// Records fenced command `fence` (DMA fence `dma_fence`) that uses `bos`: the fence goes in
    /// their reservation objects, and `held` (references to them) in the in-flight list.
    fn record(
        &self,
        fence: u64,
        dma_fence: &Option<ARef<Fence>>,
        bos: &[ARef<gem::Bo>],
        mut held: KVec<(u64, ARef<gem::Bo>)>,
    ) -> Result {
        let dma_fence = dma_fence.as_ref().ok_or(EINVAL)?;
        for bo in bos {
            bo.used_by(fence);
            bo.resv().add_fence(dma_fence, Usage::Write)?;
        }
        let mut inflight = self.inflight.lock();
        for mut entry in held.drain_all() {
            entry.0 = fence;
            inflight.push(entry, GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Drops the references of objects whose fences are done (outside the lock: the last
    /// reference releases the host resource).
    pub(crate) fn reap(&self) {
        let completed = self.events.completed();
        let mut inflight = self.inflight.lock();
        let n = inflight.iter().filter(|e| e.0 <= completed).count();
        if n == 0 {
            return;
        }
        let mut done = KVec::new();
        // Without memory for the list, the next reap does it.
        if done.reserve(n, GFP_KERNEL).is_err() {
            return;
        }
        let mut i = 0;
        while i < inflight.len() {
            if inflight[i].0 <= completed {
                if let Ok(entry) = inflight.remove(i) {
                    // Within the capacity reserved above.
                    let _ = done.push_within_capacity(entry);
                }
            } else {
                i += 1;
            }
        }
        drop(inflight);
        drop(done);
    }

    /// Drops every held object (the device is reset: the host no longer uses them).
    fn release_all(&self) {
        let all = core::mem::take(&mut *self.inflight.lock());
        drop(all);
    }

    /// Sends `cmd` and waits (interruptibly) for the answer.
    pub(crate) fn call(
        &self,
        cmd: Command,
        data: KVec<u8>,
        resp_len: usize,
    ) -> Result<KBox<Request>> {
        let mut req = Request::new(cmd, data, resp_len)?;
        let slot = Arc::pin_init(new_spinlock_irq!(None, "virtio_gpu3d_reply"), GFP_KERNEL)?;
        req.reply = Some(slot.clone());
        self.submit(req, None, true)?;
        self.events.wait_reply(&slot, 0)
    }

    /// Sends `cmd` and checks that the device answered `OK_NODATA`.
    pub(crate) fn call_nodata(&self, cmd: Command, data: KVec<u8>) -> Result {
        let req = self.call(cmd, data, protocol::HDR_SIZE)?;
        let (resp, written) = req.response();
        protocol::check_response(resp, written, cmd::RESP_OK_NODATA).map_err(to_error)
    }
}

/// Reads the device's capsets (`GET_CAPSET_INFO`, then `GET_CAPSET` at the highest version).
fn read_capsets(
    dev: &virtio::Device<Core<'_>>,
    queues: &Queues,
    events: &Events,
    count: u32,
) -> Result<KVec<Capset>> {
    let mut capsets = KVec::new();
    // The C driver reads at most this many; a device claiming more is broken.
    for index in 0..count.min(16) {
        let req = call(
            queues,
            events,
            Command::get_capset_info(index),
            KVec::new(),
            protocol::RESP_CAPSET_INFO_SIZE,
            PROBE_TIMEOUT_MS,
        )?;
        let (resp, written) = req.response();
        let info = match protocol::decode_capset_info(resp, written) {
            Ok(info) => info,
            Err(e) => {
                dev_err!(dev.as_ref(), "capset {index}: bad GET_CAPSET_INFO answer\n");
                return Err(to_error(e));
            }
        };
        let req = call(
            queues,
            events,
            Command::get_capset(info.id, info.max_version),
            KVec::new(),
            protocol::HDR_SIZE + info.max_size as usize,
            PROBE_TIMEOUT_MS,
        )?;
        let (resp, written) = req.response();
        let data = match protocol::capset_data(resp, written) {
            Ok(d) => d,
            Err(e) => {
                dev_err!(dev.as_ref(), "capset {}: bad GET_CAPSET answer\n", info.id);
                return Err(to_error(e));
            }
        };
        let mut copy = KVec::new();
        copy.extend_from_slice(data, GFP_KERNEL)?;
        dev_info!(
            dev.as_ref(),
            "capset {}: id {}, max version {}, size {}\n",
            index,
            info.id,
            info.max_version,
            info.max_size
        );
        capsets.push(Capset { info, data: copy }, GFP_KERNEL)?;
    }
    Ok(capsets)
}

/// The virtio driver.
pub(crate) struct VirtioGpu;

/// What the driver keeps per bound device.
#[pin_data(PinnedDrop)]
pub(crate) struct VirtioGpuData<'bound> {
    _reg: drm::Registration<'bound, file::GpuDrm>,
    events: Arc<Events>,
}

#[pinned_drop]
impl PinnedDrop for VirtioGpuData<'_> {
    fn drop(self: Pin<&mut Self>) {
        // Unbind reset the device; the objects held for its commands can go (their host
        // resources went with the reset).
        self._reg.device().release_all();
    }
}

kernel::virtio_device_table!(
    VIRTIO_TABLE,
    [virtio::DeviceId::new(kernel::bindings::VIRTIO_ID_GPU)]
);

#[vtable]
impl virtio::Driver for VirtioGpu {
    type Data<'bound> = VirtioGpuData<'bound>;

    const ID_TABLE: virtio::IdTable = &VIRTIO_TABLE;

    const FEATURES: &'static [u32] = &[
        protocol::feature::VIRGL,
        protocol::feature::EDID,
        protocol::feature::RESOURCE_BLOB,
    ];

    fn probe<'bound>(
        vdev: &'bound virtio::Device<Core<'_>>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let events = Arc::pin_init(
            pin_init!(Events {
                state <- new_spinlock_irq!(EventState::default(), "virtio_gpu3d_events"),
                changed <- new_condvar!("virtio_gpu3d_changed"),
            }),
            GFP_KERNEL,
        )?;
        let queues = Virtqueues::new(
            vdev,
            &[c"control", c"cursor"],
            Completions {
                events: events.clone(),
            },
        )?;
        vdev.ready();

        let caps_virgl = vdev.has_feature(protocol::feature::VIRGL);
        let num_capsets: u32 = vdev.read_config(protocol::config::NUM_CAPSETS);
        let capsets = if caps_virgl {
            read_capsets(vdev, &queues, &events, num_capsets)?
        } else {
            KVec::new()
        };
        let mut caps = DeviceCaps {
            virgl: caps_virgl,
            resource_blob: vdev.has_feature(protocol::feature::RESOURCE_BLOB),
            context_init: false,
            capset_mask: 0,
        };
        for c in capsets.iter() {
            if c.info.id < 64 {
                caps.capset_mask |= 1 << c.info.id;
            }
        }
        dev_info!(
            vdev.as_ref(),
            "features: {}virgl {}edid {}resource_blob, {} capsets\n",
            if caps.virgl { '+' } else { '-' },
            if vdev.has_feature(protocol::feature::EDID) {
                '+'
            } else {
                '-'
            },
            if caps.resource_blob { '+' } else { '-' },
            capsets.len()
        );
        // The cursor queue is found and runs (it has no users without modesetting).
        let _ = CURSOR_QUEUE;

        let queues = Devres::new(vdev.as_ref(), queues)?;
        let gpu_events = events.clone();
        let timeline = Timeline::new(c"virtio_gpu3d", c"control")?;
        let gpu = try_pin_init!(Gpu {
            queues,
            timeline,
            events: gpu_events,
            caps,
            capsets,
            next_resource_id: kernel::sync::atomic::Atomic::new(1),
            next_ctx_id: kernel::sync::atomic::Atomic::new(1),
            inflight <- new_mutex!(KVec::new(), "virtio_gpu3d_inflight"),
        });
        // The DRM device's parent is the transport's PCI function, as for the C driver: DMA
        // mappings of buffer objects are made for it.
        let parent = vdev.parent().ok_or(ENODEV)?;
        let pdev: &pci::Device<kernel::device::Bound> = parent.try_into().inspect_err(|_| {
            dev_err!(vdev.as_ref(), "only virtio-pci GPUs are supported\n");
        })?;
        let unreg = drm::UnregisteredDevice::<file::GpuDrm>::new(pdev, gpu)?;
        // SAFETY: The registration is stored in the driver data, dropped at unbind; it is never
        // forgotten.
        let reg = unsafe { drm::Registration::new(pdev.as_ref(), unreg, (), 0)? };
        Ok(VirtioGpuData { _reg: reg, events })
    }

    fn unbind<'bound>(_vdev: &'bound virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        // The device is reset when this returns: nothing more completes. Waiters (in ioctls the
        // DRM unplug waits for) give up with ENODEV.
        this.events.set_dead();
    }
}
