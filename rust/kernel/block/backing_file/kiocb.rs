// SPDX-License-Identifier: GPL-2.0

//! Reads and writes of a backing file through a kiocb whose completion ends the request.

use super::{BackingFile, PolledIos};
use crate::{
    alloc::{
        flags::{__GFP_NOWARN, GFP_KERNEL, GFP_NOWAIT},
        KBox,
    },
    bindings,
    block::mq::{Operations, ReqOp, Request, RequestSegments},
    error::{code::*, Error, Result},
    ffi,
    fs::File,
    sync::{
        aref::ARef,
        atomic::{Atomic, Full, Relaxed, Release},
        Arc,
    },
};

impl BackingFile {
    /// Carries out a read or write request on the file at byte `pos`, as `mode` says.
    ///
    /// The request ends when the I/O does: with an error for a failed or short write, or for a
    /// read that read nothing (its buffers are zeroed); after a short read the rest of the
    /// request is queued again ([`Request::requeue_remainder`]), as the C loop driver does.
    pub fn submit<T: Operations>(
        &self,
        rq: ARef<Request<T>>,
        pos: u64,
        mode: IoMode<'_, T>,
    ) -> Result<(), (ARef<Request<T>>, Error)> {
        self.start(rq, pos, mode, None)
    }

    /// Tries a direct read or write request on the file at byte `pos` without waiting
    /// (`IOCB_NOWAIT`; `IOCB_HIPRI` too with `polled`), from a context that must not block on
    /// I/O, such as `queue_rq`.
    ///
    /// The request comes back when the attempt could not start (no memory without waiting) or
    /// the file refused it at once without queueing any I/O: `EAGAIN` where it would have had
    /// to wait (blocks to allocate, a lock held, the file's times to update through the
    /// journal), or anything else but the whole request done. The caller then serves it where
    /// waiting is allowed (the same data at the same place, so a part done twice is harmless).
    ///
    /// Where the file queued the I/O and it fails later for not waiting (`EAGAIN` from the block
    /// layer: no tag free on the backing device; `EOPNOTSUPP`: no `REQ_NOWAIT` there; `ENOMEM`)
    /// or is done in part, the request is given back to the block layer whole
    /// ([`Request::requeue`]) and `retries` owes one request to the caller's slow path
    /// ([`Retries::take`]). Any other error of a queued I/O (the backing device's `EIO`) ends
    /// the request with it, as the slow path would.
    pub fn submit_nowait<T: Operations>(
        &self,
        rq: ARef<Request<T>>,
        pos: u64,
        polled: Option<&PolledIos<T>>,
        retries: &Arc<Retries>,
    ) -> Result<(), ARef<Request<T>>> {
        let mode = match polled {
            Some(ios) => IoMode::Polled(ios),
            None => IoMode::Direct,
        };
        self.start(rq, pos, mode, Some(retries))
            .map_err(|(rq, _)| rq)
    }

    fn start<T: Operations>(
        &self,
        rq: ARef<Request<T>>,
        pos: u64,
        mode: IoMode<'_, T>,
        nowait: Option<&Arc<Retries>>,
    ) -> Result<(), (ARef<Request<T>>, Error)> {
        // Waiting for memory is waiting: a must-not-wait attempt takes none that needs it.
        let gfp = if nowait.is_some() {
            GFP_NOWAIT | __GFP_NOWARN
        } else {
            GFP_KERNEL
        };
        let write = match rq.op() {
            ReqOp::Read => false,
            ReqOp::Write => true,
            _ => return Err((rq, EINVAL)),
        };
        let pos = match i64::try_from(pos) {
            Ok(pos) => pos,
            Err(_) => return Err((rq, EINVAL)),
        };
        let segments = match rq.segments(gfp) {
            Ok(s) => s,
            Err(e) => return Err((rq, e)),
        };
        let bytes = segments.bytes() as isize;
        let slot = match KBox::<FileIo<T>>::new_uninit(gfp) {
            Ok(slot) => slot,
            Err(_) => return Err((rq, ENOMEM)),
        };
        let io = slot.write(FileIo::<T> {
            iocb: pin_init::zeroed(),
            // SAFETY: `iov_iter` is plain data; `iov_iter_bvec` initialises it below.
            iter: unsafe { core::mem::zeroed() },
            segments,
            rq: Some(rq),
            file: self.file.clone(),
            refs: Atomic::new(2),
            done: Atomic::new(false),
            result: 0,
            write,
            retries: nowait.cloned(),
        });
        let io = KBox::into_raw(io);
        let (direct, polled) = match mode {
            IoMode::Buffered => (false, false),
            IoMode::Direct => (true, false),
            // SAFETY: `io` is valid and not yet submitted; its completion is asynchronous.
            IoMode::Polled(ios) => (true, unsafe { ios.track(io) }),
        };
        // SAFETY: `io` is a valid, exclusively owned allocation until both references (ours and
        // the completion's) are dropped in `FileIo::put`. The file outlives the I/O: `io` holds
        // a reference on it. The segments stay valid: the request is not ended before `put`.
        let ret = unsafe {
            let iocb = &raw mut (*io).iocb;
            (*iocb).ki_filp = (*io).file.as_ptr();
            (*iocb).ki_pos = pos;
            (*iocb).ki_ioprio = (*io).rq.as_ref().map_or(0, |rq| rq.ioprio());
            if direct {
                (*iocb).ki_flags = bindings::IOCB_DIRECT as ffi::c_int;
                (*iocb).ki_complete = Some(FileIo::<T>::complete_callback);
            }
            if polled {
                (*iocb).ki_flags |= bindings::IOCB_HIPRI;
            }
            if (*io).retries.is_some() {
                (*iocb).ki_flags |= bindings::IOCB_NOWAIT;
            }
            let seg = &(*io).segments;
            bindings::iov_iter_bvec(
                &raw mut (*io).iter,
                if write {
                    bindings::ITER_SOURCE
                } else {
                    bindings::ITER_DEST
                },
                seg.as_ptr(),
                seg.len() as ffi::c_ulong,
                seg.bytes(),
            );
            let fop = (*(*io).file.as_ptr()).f_op;
            if write {
                bindings::kiocb_start_write(iocb);
                match (*fop).write_iter {
                    Some(f) => f(iocb, &raw mut (*io).iter),
                    None => -(bindings::EINVAL as isize),
                }
            } else {
                match (*fop).read_iter {
                    Some(f) => f(iocb, &raw mut (*io).iter),
                    None => -(bindings::EINVAL as isize),
                }
            }
        };
        let queued = ret == -(bindings::EIOCBQUEUED as isize);
        // A must-not-wait attempt the file did not queue and did not do whole: the request goes
        // back to the caller. The file will not complete this I/O (it did not queue it), and
        // a request is ended only by the last `put`, which finds none once it is taken out
        // here (a polled I/O's last reference may be the poll set's).
        let refused = if nowait.is_some() && !queued && ret != bytes {
            // SAFETY: We hold the submitter's and the (unused) completion's references: `io` is
            // alive, and only a last `put` reads its request.
            unsafe { (*io).rq.take() }
        } else {
            None
        };
        if !queued {
            // SAFETY: The file did not queue the I/O, so the completion reference is unused.
            unsafe { FileIo::<T>::complete_callback(&raw mut (*io).iocb, ret as ffi::c_long) };
        }
        // SAFETY: This drops the submitter's reference, once `read_iter`/`write_iter` is done
        // with `iter`.
        unsafe { FileIo::<T>::put(io) };
        match refused {
            Some(rq) if ret < 0 => Err((rq, Error::from_errno(ret as i32))),
            Some(rq) => Err((rq, EAGAIN)),
            None => Ok(()),
        }
    }
}

/// How [`BackingFile::submit`] carries out a read or write.
pub enum IoMode<'a, T: Operations> {
    /// Through the page cache: done when `submit` returns.
    Buffered,
    /// Direct I/O (`IOCB_DIRECT`), bypassing the page cache and completing asynchronously: no
    /// thread waits for it.
    Direct,
    /// Direct I/O submitted for polling (`IOCB_HIPRI`, for requests that arrived polled): the
    /// backing device completes it only when polled, and the request ends when
    /// [`PolledIos::poll`] on this set finds it done.
    Polled(&'a PolledIos<T>),
}

/// One read or write in flight on a backing file.
///
/// Two references: the submitter's, dropped once `read_iter`/`write_iter` has returned (it may
/// still walk `iter` after the I/O completed), and the completion's. The last one ends the
/// request and frees this.
pub(super) struct FileIo<T: Operations> {
    iocb: bindings::kiocb,
    iter: bindings::iov_iter,
    segments: RequestSegments,
    rq: Option<ARef<Request<T>>>,
    file: ARef<File>,
    pub(super) refs: Atomic<u32>,
    /// Set by the completion, for [`PolledIos`].
    pub(super) done: Atomic<bool>,
    result: isize,
    write: bool,
    /// Set for a must-not-wait attempt: what did not complete whole is retried.
    retries: Option<Arc<Retries>>,
}

/// Requests whose must-not-wait attempt ([`BackingFile::submit_nowait`]) was given back to the
/// block layer, owed to the driver's slow path: when one comes back to `queue_rq`, the driver
/// takes one from here and sends a request the slow way, so a request refused for good (blocks
/// to allocate) is not tried inline forever. Which request takes the debt does not matter: each
/// one repaid is served where waiting is allowed.
pub struct Retries {
    owed: Atomic<u32>,
    total: Atomic<u64>,
}

impl Retries {
    /// Nothing owed.
    pub fn new() -> Self {
        Self {
            owed: Atomic::new(0),
            total: Atomic::new(0),
        }
    }

    /// Takes one owed request; false if none is owed.
    pub fn take(&self) -> bool {
        let mut owed = self.owed.load(Relaxed);
        while owed > 0 {
            match self.owed.cmpxchg(owed, owed - 1, Relaxed) {
                Ok(_) => return true,
                Err(now) => owed = now,
            }
        }
        false
    }

    /// How many attempts were given back so far.
    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }

    fn owe(&self) {
        self.total.add(1, Relaxed);
        self.owed.add(1, Relaxed);
    }
}

impl Default for Retries {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Operations> FileIo<T> {
    /// `ki_complete`, also called directly for I/O that completed synchronously.
    ///
    /// # Safety
    ///
    /// `iocb` is the `iocb` of a live `FileIo<T>` whose completion reference is unused.
    unsafe extern "C" fn complete_callback(iocb: *mut bindings::kiocb, ret: ffi::c_long) {
        // SAFETY: `iocb` is embedded in a `FileIo<T>` allocated by `BackingFile::submit`.
        let io = unsafe { crate::container_of!(iocb, FileIo<T>, iocb) };
        // SAFETY: The completion reference is still held, so `io` is alive; only the completion
        // writes `result`, and `put` reads it after the last reference is dropped.
        unsafe { (*io).result = ret };
        // SAFETY: As above.
        unsafe { (*io).done.store(true, Release) };
        // SAFETY: This drops the completion reference.
        unsafe { Self::put(io) };
    }

    /// Polls the backing file's device once for `io` (`file_operations.iopoll`); completions it
    /// finds run `complete_callback` from here.
    ///
    /// # Safety
    ///
    /// The caller owns a reference on `io`.
    pub(super) unsafe fn iopoll(io: *mut Self) {
        // SAFETY: `io` is alive (the caller's reference), so are its file and `iocb`; `iopoll`
        // reads the bio the file stored in `iocb.private` under RCU and never sleeps with
        // `BLK_POLL_ONESHOT`.
        unsafe {
            let file = (*io).file.as_ptr();
            if let Some(iopoll) = (*(*file).f_op).iopoll {
                iopoll(
                    &raw mut (*io).iocb,
                    core::ptr::null_mut(),
                    bindings::BLK_POLL_ONESHOT,
                );
            }
        }
    }

    /// Drops one reference; the last one ends the request and frees `io`.
    ///
    /// # Safety
    ///
    /// `io` came from `KBox::into_raw` in `BackingFile::submit` and the caller owns one of its
    /// references.
    pub(super) unsafe fn put(io: *mut Self) {
        // SAFETY: The caller owns a reference, so `io` is alive.
        if unsafe { (*io).refs.fetch_sub(1, Full) } != 1 {
            return;
        }
        // SAFETY: This was the last reference: we own the allocation.
        let mut io = unsafe { KBox::from_raw(io) };
        if io.write {
            // SAFETY: Paired with `kiocb_start_write` in `submit`.
            unsafe { bindings::kiocb_end_write(&mut io.iocb) };
        }
        let Some(mut rq) = io.rq.take() else { return };
        let bytes = io.segments.bytes() as isize;
        let (result, write) = (io.result, io.write);
        let retries = io.retries.take();
        drop(io);
        if let Some(retries) = retries {
            // Refused after it was queued for not waiting (`EAGAIN`: no tag free on the backing
            // device; `EOPNOTSUPP`: a backing device that takes no `REQ_NOWAIT`; `ENOMEM`: no
            // memory without waiting) or partly done: the slow path does it all again (the same
            // data at the same place, so a part done twice is harmless). Any other error is the
            // I/O's own (the backing device failed it) and ends the request, as on the slow
            // path: retrying it there would hide a failed read and write a failed write twice.
            let not_waiting = [bindings::EAGAIN, bindings::EOPNOTSUPP, bindings::ENOMEM]
                .iter()
                .any(|e| result == -(*e as isize));
            if not_waiting || (result >= 0 && result != bytes) {
                retries.owe();
                match Request::requeue(rq) {
                    Ok(()) => return,
                    Err(back) => {
                        crate::warn_on!(Request::end(back, Err(EIO)).is_err());
                        return;
                    }
                }
            }
        }
        let status = if result == bytes {
            Ok(())
        } else if result < 0 {
            Err(Error::from_errno(result as i32))
        } else {
            if !write && result > 0 {
                // A short read (the file shrank, or a partial direct read): as the C loop
                // driver, complete what was read and queue the rest again. `result` is below
                // the request's length, so it fits.
                match Request::requeue_remainder(rq, result as u32) {
                    Ok(()) => return,
                    Err(back) => rq = back,
                }
            }
            // Nothing read, or a short write: the rest of a read would be stale (zeroed), the
            // rest of a write is lost.
            if !write {
                rq.zero_fill();
            }
            Err(EIO)
        };
        // The request has a single reference here: nothing else could have cloned it. Were that
        // ever wrong, the request would never end: say so loudly.
        crate::warn_on!(Request::end(rq, status).is_err());
    }
}
