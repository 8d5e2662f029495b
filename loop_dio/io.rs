// SPDX-License-Identifier: GPL-2.0

//! The I/O path: `queue_rq` hands requests to the device's worker, which serves them on the
//! backing file; completions end them (the kiocb's for reads and writes, `poll` for polled
//! ones).

use crate::{device::Loop, rules, trace};
use kernel::{
    block::{
        backing_file::{BackingFile, FallocMode, IoMode, NoIoScope},
        disk::{BlockDevice, DiskRef, OpenMode, ReleasedDisk, SysfsBuffer},
        mq::{HwQueueId, IoCompBatch, Operations, ReqOp, Request},
    },
    prelude::*,
    str::CStr,
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        Arc, ArcBorrow,
    },
    workqueue::WorkItem,
};

/// Ends `rq` with `result`. `Request::end` fails only while another reference to the request
/// exists; this driver makes none that outlives its own use (the kiocb and polling paths end
/// their requests themselves), so a failure is a bug that leaves the request hanging: reported
/// loudly rather than hidden.
pub(crate) fn end_request(rq: ARef<Request<LoopOps>>, result: Result) {
    if let Err(rq) = Request::end(rq, result) {
        pr_err!(
            "request at sector {} cannot end: it is still referenced\n",
            rq.sector()
        );
        kernel::warn_on!(true);
    }
}

/// Fires `loop_dio_submit` for `rq` (the arguments are read only while the event is on).
fn trace_submit(rq: &Request<LoopOps>, direct: bool, inline_dio: bool) {
    if trace::loop_dio_submit_enabled() {
        trace::loop_dio_submit(
            rq.disk().devt(),
            rq.op().raw() as u8,
            rq.sector(),
            rq.bytes(),
            direct,
            inline_dio,
        );
    }
}

/// Sets `bits` in `a`; returns the value before.
fn fetch_or(a: &Atomic<u32>, bits: u32) -> u32 {
    let mut old = a.load(Relaxed);
    loop {
        match a.cmpxchg(old, old | bits, Relaxed) {
            Ok(prev) => return prev,
            Err(current) => old = current,
        }
    }
}

/// `fallocate()` modes a backing file refused with `EOPNOTSUPP`, as bits.
pub(crate) struct Unsupported;

impl Unsupported {
    /// `FALLOC_FL_PUNCH_HOLE`: discard (and write-zeroes that may unmap).
    pub(crate) const PUNCH_HOLE: u32 = 1;
    /// `FALLOC_FL_ZERO_RANGE`: write-zeroes that must not unmap.
    pub(crate) const ZERO_RANGE: u32 = 2;

    fn of(mode: FallocMode) -> u32 {
        match mode {
            FallocMode::PunchHole => Self::PUNCH_HOLE,
            FallocMode::ZeroRange => Self::ZERO_RANGE,
        }
    }

    fn what(bit: u32) -> &'static str {
        if bit == Self::ZERO_RANGE {
            "zero a range"
        } else {
            "punch holes"
        }
    }

    fn feature(bit: u32) -> &'static str {
        if bit == Self::ZERO_RANGE {
            "write-zeroes"
        } else {
            "discard"
        }
    }
}

/// What the I/O path reads per batch: changed with the queue frozen (no request in flight), so
/// a snapshot stays right for the requests it serves; or, without a freeze, on attach and detach,
/// when no request can be in flight that depends on the change.
#[derive(Clone, Default)]
pub(crate) struct IoConfig {
    pub(crate) file: Option<Arc<BackingFile>>,
    pub(crate) offset: u64,
    pub(crate) direct: bool,
    /// Polled requests are submitted polled to the backing file.
    pub(crate) polled: bool,
    pub(crate) read_only: bool,
    /// The device's capacity in sectors: requests past it are refused. The block layer checks
    /// bios against the capacity before they wait for a frozen queue, so one checked against a
    /// larger window could otherwise reach the backing file past the new one.
    pub(crate) sectors: u64,
}

impl Loop {
    /// Serves one request on the worker.
    fn handle(&self, rq: ARef<Request<LoopOps>>, io: &IoConfig) {
        let op = rq.op();
        let direct = io.direct && matches!(op, ReqOp::Read | ReqOp::Write);
        trace_submit(&rq, direct, false);
        let Some(file) = io.file.as_ref() else {
            end_request(rq, Err(EIO));
            return;
        };
        if op.is_write() && io.read_only {
            end_request(rq, Err(EIO));
            return;
        }
        // A flush carries no position (the block layer leaves it at `-1`): it is served before
        // one is computed.
        if op == ReqOp::Flush {
            let result = match file.fsync() {
                Err(e) if e != EINVAL => Err(EIO),
                _ => Ok(()),
            };
            end_request(rq, result);
            return;
        }
        let sectors = u64::from(rq.bytes() >> 9);
        let Some(pos) = rules::file_position(rq.sector(), sectors, io.sectors, io.offset) else {
            end_request(rq, Err(EIO));
            return;
        };
        let result = match op {
            ReqOp::Read | ReqOp::Write => {
                let mode = if io.polled && rq.is_polled() {
                    IoMode::Polled(&self.polled_ios)
                } else if io.direct {
                    IoMode::Direct
                } else {
                    IoMode::Buffered
                };
                match file.submit(rq, pos, mode) {
                    Ok(()) => return,
                    Err((rq, e)) => {
                        end_request(rq, Err(e));
                        return;
                    }
                }
            }
            ReqOp::Discard => self.fallocate(file, FallocMode::PunchHole, pos, &rq),
            ReqOp::WriteZeroes => {
                let mode = if rq.is_nounmap() {
                    FallocMode::ZeroRange
                } else {
                    FallocMode::PunchHole
                };
                self.fallocate(file, mode, pos, &rq)
            }
            ReqOp::Flush | ReqOp::Other(_) => Err(EIO),
        };
        end_request(rq, result);
    }

    /// Discard and write-zeroes (`lo_fallocate()`). A backing file that cannot do `mode`
    /// (`EOPNOTSUPP`, e.g. zeroing a range on tmpfs) has the feature turned off in the queue
    /// limits before the request ends, so the block layer falls back (writes zeroes) instead of
    /// sending it again; the request still fails with `EOPNOTSUPP`, as in C.
    fn fallocate(
        &self,
        file: &BackingFile,
        mode: FallocMode,
        pos: u64,
        rq: &Request<LoopOps>,
    ) -> Result {
        let feature = Unsupported::of(mode);
        if self.unsupported.load(Relaxed) & feature != 0 {
            // Sent before the limits changed.
            self.turn_off_unsupported(rq);
            return Err(EOPNOTSUPP);
        }
        match file.fallocate(mode, pos, u64::from(rq.bytes())) {
            Ok(()) => Ok(()),
            Err(e) if e == EOPNOTSUPP => {
                if fetch_or(&self.unsupported, feature) & feature == 0 {
                    pr_info!(
                        "loop{}: the backing file cannot {}: {} turned off\n",
                        self.number,
                        Unsupported::what(feature),
                        Unsupported::feature(feature)
                    );
                }
                self.turn_off_unsupported(rq);
                Err(e)
            }
            Err(e) if e == EINVAL => Err(e),
            Err(_) => Err(EIO),
        }
    }

    /// Turns off in the queue limits what the backing file turned out not to support (C
    /// `loop_clear_limits()`). This runs with requests in flight, so the queue is not frozen;
    /// when its limits are being changed (by a path that freezes it, so waits for this request),
    /// this gives up and the next such request tries again. Limit updates from the ioctls keep
    /// the features off themselves.
    fn turn_off_unsupported(&self, rq: &Request<LoopOps>) {
        let pending = self.unsupported.load(Relaxed) & !self.limits_off.load(Relaxed);
        if pending == 0 {
            return;
        }
        let punch = pending & Unsupported::PUNCH_HOLE != 0;
        let zero = pending & Unsupported::ZERO_RANGE != 0;
        if rq
            .disk()
            .try_disable_discard_write_zeroes(punch, zero)
            .is_ok()
        {
            fetch_or(&self.limits_off, pending);
        }
    }
}

impl Loop {
    /// Tries a direct read or write inline, without waiting for I/O (`IOCB_NOWAIT`); gives the
    /// request back for the worker when it is not one ([`rules::path`]), when an earlier inline
    /// attempt is owed to the worker, or when the backing file refuses it at once (`EAGAIN`:
    /// blocks to allocate, a contended lock, times to update). An attempt that fails after the
    /// file queued it (no tag free on the backing device) comes back through the block layer,
    /// and is owed to the worker then.
    fn try_inline(&self, rq: ARef<Request<LoopOps>>) -> Result<(), ARef<Request<LoopOps>>> {
        let op = rq.op();
        // A snapshot, as the worker takes per batch: changes to it freeze the queue, which waits
        // for `queue_rq` and the requests it submitted.
        let io = self.io_snapshot();
        let Some(file) = io.file.as_ref() else {
            return Err(rq);
        };
        let read_write = matches!(op, ReqOp::Read | ReqOp::Write);
        let path = rules::path(true, read_write, op.is_write(), io.direct, io.read_only);
        if path == rules::Path::Worker || self.retries.take() {
            return Err(rq);
        }
        let sectors = u64::from(rq.bytes() >> 9);
        let Some(pos) = rules::file_position(rq.sector(), sectors, io.sectors, io.offset) else {
            // Refused on the worker, with the same check.
            return Err(rq);
        };
        let polled = (io.polled && rq.is_polled()).then_some(&self.polled_ios);
        // Taken before the request is handed on (it may be over when `submit_nowait` returns);
        // the event fires only for an attempt the file took: a refused one fires on the worker.
        let event = trace::loop_dio_submit_enabled()
            .then(|| (rq.disk().devt(), op.raw() as u8, rq.sector(), rq.bytes()));
        match file.submit_nowait(rq, pos, polled, &self.retries) {
            Ok(()) => {
                if let Some((dev, op, sector, bytes)) = event {
                    trace::loop_dio_submit(dev, op, sector, bytes, true, true);
                }
                self.inline_ios.add(1, Relaxed);
                Ok(())
            }
            // Nothing of it counts: the worker does it all, waiting where it must.
            Err(rq) => {
                self.refused.add(1, Relaxed);
                Err(rq)
            }
        }
    }
}

impl WorkItem for Loop {
    type Pointer = Arc<Loop>;

    fn run(this: Arc<Loop>) {
        // The worker writes the backing file while serving block I/O: no allocation may recurse
        // into I/O.
        let _noio = NoIoScope::enter();
        let mut batch = this.batch.lock();
        loop {
            core::mem::swap(&mut *this.pending.lock(), &mut *batch);
            if batch.is_empty() {
                break;
            }
            let io = this.io_snapshot();
            for rq in batch.drain_all() {
                this.handle(rq, &io);
            }
        }
    }
}

pub(crate) struct LoopOps;

#[vtable]
impl Operations for LoopOps {
    type QueueData = Arc<Loop>;

    const OWNER: Option<&'static ThisModule> =
        Some(kernel::module::this_module::<crate::LocalModule>());

    fn queue_rq(lo: ArcBorrow<'_, Loop>, rq: ARef<Request<LoopOps>>, _is_last: bool) -> Result {
        // As C's: a device run down by LOOP_CLR_FD keeps its file until the last close, but its
        // remaining opener's I/O (BLKDISCARD, BLKZEROOUT) fails (found by tests/hardening's
        // fuzzer: loop_dio discarded).
        if !lo.serving.load(Relaxed) {
            trace_submit(&rq, false, false);
            end_request(rq, Err(EIO));
            return Ok(());
        }
        let rq = if lo.inline_dio {
            match lo.try_inline(rq) {
                Ok(()) => return Ok(()),
                Err(rq) => rq,
            }
        } else {
            rq
        };
        lo.worker_ios.add(1, Relaxed);
        // `pending` has room for every tag and each request holds one, so this cannot fail; if it
        // ever did, blk-mq would take the request back and retry it later (`BLK_STS_RESOURCE`),
        // not fail it.
        if lo.pending.lock().push_within_capacity(rq).is_err() {
            kernel::pr_warn_once!("loop{}: request queue full; retrying\n", lo.number);
            return Err(ENOMEM);
        }
        // Already queued is fine: the worker takes every pending request before it finishes.
        let _ = lo.wq.enqueue(Arc::<Loop>::from(lo));
        Ok(())
    }

    fn commit_rqs(_lo: ArcBorrow<'_, Loop>) {}

    fn complete(rq: ARef<Request<LoopOps>>) {
        end_request(rq, Ok(()));
    }

    fn request_ended(rq: &Request<LoopOps>, result: Result) {
        if trace::loop_dio_complete_enabled() {
            let latency = rq
                .start_time()
                .map_or(0, |t| t.elapsed().as_nanos().max(0) as u64);
            trace::loop_dio_complete(
                rq.disk().devt(),
                rq.op().raw() as u8,
                rq.sector(),
                rq.bytes(),
                result.err().map_or(0, |e| e.to_errno()),
                latency,
            );
        }
    }

    fn poll(lo: ArcBorrow<'_, Loop>, _hctx: HwQueueId, _batch: &mut IoCompBatch<'_, Self>) -> u32 {
        lo.polled_ios.poll()
    }

    fn open(lo: ArcBorrow<'_, Loop>, _disk: &DiskRef, _mode: OpenMode) -> Result {
        lo.open()
    }

    fn release(lo: ArcBorrow<'_, Loop>, disk: &ReleasedDisk) {
        lo.release(disk);
    }

    fn ioctl(
        lo: ArcBorrow<'_, Loop>,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
    ) -> Result<i32> {
        lo.loop_ioctl(bdev, mode, cmd, arg)
    }

    fn compat_ioctl(
        lo: ArcBorrow<'_, Loop>,
        bdev: &BlockDevice,
        mode: OpenMode,
        cmd: u32,
        arg: usize,
    ) -> Result<i32> {
        use crate::abi;
        match cmd {
            // The old status structure has another layout for 32-bit tasks.
            abi::LOOP_SET_STATUS | abi::LOOP_GET_STATUS => Err(EINVAL),
            abi::LOOP_SET_CAPACITY
            | abi::LOOP_CLR_FD
            | abi::LOOP_GET_STATUS64
            | abi::LOOP_SET_STATUS64
            | abi::LOOP_CONFIGURE
            | abi::LOOP_SET_FD
            | abi::LOOP_CHANGE_FD
            | abi::LOOP_SET_BLOCK_SIZE
            | abi::LOOP_SET_DIRECT_IO => lo.loop_ioctl(bdev, mode, cmd, arg & 0xffff_ffff),
            _ => Err(ENOIOCTLCMD),
        }
    }

    fn show_attribute(lo: ArcBorrow<'_, Loop>, name: &CStr, out: &mut SysfsBuffer<'_>) -> Result {
        lo.show(name, out)
    }
}
