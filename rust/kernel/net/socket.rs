// SPDX-License-Identifier: GPL-2.0

//! Kernel sockets: TCP over IPv4 and IPv6, in a network namespace.
//!
//! C header: [`include/linux/net.h`](srctree/include/linux/net.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KBox},
    bindings,
    error::{
        code::{EBUSY, EINVAL},
        to_result, Error, Result,
    },
    fs::rooted::CachedPage,
    net::namespace::Namespace,
    sync::{Arc, ArcBorrow},
    time::{msecs_to_jiffies, Msecs},
};
use core::{ffi::c_void, ptr::NonNull};

/// An IP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpAddr {
    /// An IPv4 address, in network order (`[127, 0, 0, 1]`).
    V4([u8; 4]),
    /// An IPv6 address, in network order.
    V6([u8; 16]),
}

/// An IP address and a TCP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketAddr {
    /// The address.
    pub ip: IpAddr,
    /// The port (0 when binding: any free port).
    pub port: u16,
}

impl SocketAddr {
    /// Any IPv4 address of the host, on `port`.
    pub const fn any_v4(port: u16) -> Self {
        Self {
            ip: IpAddr::V4([0; 4]),
            port,
        }
    }

    /// Any IPv6 address of the host, on `port`.
    pub const fn any_v6(port: u16) -> Self {
        Self {
            ip: IpAddr::V6([0; 16]),
            port,
        }
    }

    fn family(&self) -> u32 {
        match self.ip {
            IpAddr::V4(_) => bindings::AF_INET,
            IpAddr::V6(_) => bindings::AF_INET6,
        }
    }
}

/// A `sockaddr` of either family, as the C socket calls take and return it.
#[repr(C)]
union RawAddr {
    v4: bindings::sockaddr_in,
    v6: bindings::sockaddr_in6,
}

impl RawAddr {
    fn new(addr: &SocketAddr) -> (Self, usize) {
        match addr.ip {
            IpAddr::V4(ip) => (
                RawAddr {
                    v4: bindings::sockaddr_in {
                        sin_family: bindings::AF_INET as u16,
                        sin_port: addr.port.to_be(),
                        sin_addr: bindings::in_addr {
                            s_addr: u32::from_ne_bytes(ip),
                        },
                        __pad: [0; 8],
                    },
                },
                core::mem::size_of::<bindings::sockaddr_in>(),
            ),
            IpAddr::V6(ip) => (
                RawAddr {
                    v6: bindings::sockaddr_in6 {
                        sin6_family: bindings::AF_INET6 as u16,
                        sin6_port: addr.port.to_be(),
                        sin6_flowinfo: 0,
                        sin6_addr: bindings::in6_addr {
                            in6_u: bindings::in6_addr__bindgen_ty_1 { u6_addr8: ip },
                        },
                        sin6_scope_id: 0,
                    },
                },
                core::mem::size_of::<bindings::sockaddr_in6>(),
            ),
        }
    }

    fn zeroed() -> Self {
        RawAddr {
            v6: bindings::sockaddr_in6::default(),
        }
    }

    fn to_addr(&self) -> Result<SocketAddr> {
        // SAFETY: the family is the first field of both variants, and `self` was fully
        // initialised as the larger one (`zeroed`) or written by the kernel.
        let family = u32::from(unsafe { self.v6.sin6_family });
        if family == bindings::AF_INET {
            // SAFETY: the kernel wrote a `sockaddr_in` (its family says so).
            let v4 = unsafe { self.v4 };
            Ok(SocketAddr {
                ip: IpAddr::V4(v4.sin_addr.s_addr.to_ne_bytes()),
                port: u16::from_be(v4.sin_port),
            })
        } else if family == bindings::AF_INET6 {
            // SAFETY: the kernel wrote a `sockaddr_in6` (its family says so).
            let v6 = unsafe { self.v6 };
            // SAFETY: every field of `in6_addr`'s union covers the same 16 plain bytes.
            let ip = unsafe { v6.sin6_addr.in6_u.u6_addr8 };
            Ok(SocketAddr {
                ip: IpAddr::V6(ip),
                port: u16::from_be(v6.sin6_port),
            })
        } else {
            Err(crate::error::code::EAFNOSUPPORT)
        }
    }
}

/// Which directions [`Socket::shutdown`] closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// No more receiving.
    Read,
    /// No more sending (the peer sees the end of the stream).
    Write,
    /// Both.
    Both,
}

/// Whether a call may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocking {
    /// Wait (interruptibly) until the call can complete.
    Yes,
    /// Fail with `EAGAIN` instead of waiting.
    No,
}

fn count(ret: core::ffi::c_int) -> Result<usize> {
    if ret < 0 {
        Err(Error::from_errno(ret))
    } else {
        Ok(ret as usize)
    }
}

/// At most this many [`PagePart`]s go in one [`Socket::send_pages`] call.
pub const MAX_PAGE_PARTS: usize = 16;

/// Bytes of a page-cache page to send with [`Socket::send_pages`].
///
/// # Invariants
///
/// `offset + len` is at most the page size.
#[derive(Clone, Copy)]
pub struct PagePart<'a> {
    page: &'a CachedPage,
    offset: u32,
    len: u32,
}

impl<'a> PagePart<'a> {
    /// `len` bytes of `page` from `offset`; `EINVAL` when they do not fit in the page.
    pub fn new(page: &'a CachedPage, offset: usize, len: usize) -> Result<Self> {
        if offset
            .checked_add(len)
            .is_none_or(|end| end > crate::page::PAGE_SIZE)
        {
            return Err(crate::error::code::EINVAL);
        }
        // INVARIANT: checked just above.
        Ok(Self {
            page,
            offset: offset as u32,
            len: len as u32,
        })
    }
}

/// What a socket's owner is told of, by [`Socket::set_events`].
///
/// The methods run in the network stack's softirq or with the socket locked: in atomic
/// context, with bottom halves off. They should only note the event and queue work (on the
/// CPU they run on, to keep a connection where its packets arrive).
///
/// Each method gets the target borrowed from the socket's reference, so it can queue a work
/// item that is the target itself (`Arc::from(this)`).
pub trait SocketEvents: Send + Sync + Sized {
    /// Data arrived, the peer closed, or, for a listener, a connection waits to be accepted
    /// (`sk_data_ready`).
    fn data_ready(this: ArcBorrow<'_, Self>);
    /// The connection changed state (`sk_state_change`): connected, closing, reset.
    fn state_change(this: ArcBorrow<'_, Self>);
    /// A send that could not queue everything (`EAGAIN`, or short when not blocking) may go
    /// on: the socket can take a good share of its send buffer again (`sk_write_space`, told
    /// only once the socket is writeable).
    fn write_space(_this: ArcBorrow<'_, Self>) {}
}

type HookFn = unsafe extern "C" fn(*mut bindings::sock);

/// Calls into the [`SocketEvents`] of a concrete type, through a target made raw.
struct EventsVtable {
    data_ready: unsafe fn(*const c_void),
    state_change: unsafe fn(*const c_void),
    write_space: unsafe fn(*const c_void),
    release: unsafe fn(*const c_void),
}

struct VtableOf<T>(core::marker::PhantomData<T>);

impl<T: SocketEvents + 'static> VtableOf<T> {
    const VTABLE: EventsVtable = EventsVtable {
        data_ready: Self::data_ready,
        state_change: Self::state_change,
        write_space: Self::write_space,
        release: Self::release,
    };

    /// # Safety
    ///
    /// `target` came from `Arc::<T>::into_raw()` and is not released yet.
    unsafe fn data_ready(target: *const c_void) {
        // SAFETY: by the function's requirements the `Arc` the pointer came from outlives the
        // call.
        T::data_ready(unsafe { ArcBorrow::from_raw(target.cast()) })
    }

    /// # Safety
    ///
    /// As for `data_ready`.
    unsafe fn state_change(target: *const c_void) {
        // SAFETY: as in `data_ready`.
        T::state_change(unsafe { ArcBorrow::from_raw(target.cast()) })
    }

    /// # Safety
    ///
    /// As for `data_ready`.
    unsafe fn write_space(target: *const c_void) {
        // SAFETY: as in `data_ready`.
        T::write_space(unsafe { ArcBorrow::from_raw(target.cast()) })
    }

    /// # Safety
    ///
    /// As for `data_ready`; `target` is not used again.
    unsafe fn release(target: *const c_void) {
        // SAFETY: by the function's requirements.
        drop(unsafe { Arc::<T>::from_raw(target.cast()) })
    }
}

/// What `sk_user_data` points to while a socket has events set.
///
/// The callbacks that read it (`hooks_*`) are in the kernel crate, not in the module whose type
/// the vtable serves, so a socket that outlives the module only ever calls into the kernel.
struct Hooks {
    /// An `Arc<T>` made raw.
    target: *const c_void,
    vtable: &'static EventsVtable,
    /// The socket's callbacks before ours, restored by `clear_events`.
    data_ready: Option<HookFn>,
    state_change: Option<HookFn>,
    write_space: Option<HookFn>,
}

/// The socket's callback before ours, if it is not ours: a socket accepted from a listener with
/// events starts with our callbacks (and no `sk_user_data`), which then act as the defaults.
fn previous(cur: Option<HookFn>, own: HookFn) -> Option<HookFn> {
    cur.filter(|f| !is_same_fn(*f, own))
}

/// Whether two callbacks are the same function (compared by address: each of ours is defined
/// once, in the kernel crate).
fn is_same_fn(a: HookFn, b: HookFn) -> bool {
    a as usize == b as usize
}

/// Frees unpublished `hooks` and lets go of its target.
///
/// # Safety
///
/// `hooks` came from `KBox::into_raw()` in `set_events` and nothing else can reach it.
unsafe fn drop_hooks(hooks: *mut Hooks) {
    // SAFETY: by the function's requirements.
    let hooks = unsafe { KBox::from_raw(hooks) };
    // SAFETY: `target` is the `Arc` the vtable was made for, released once, here.
    unsafe { (hooks.vtable.release)(hooks.target) };
}

/// A socket callback that [`Socket::set_events`] stands in for.
#[derive(Clone, Copy)]
enum Event {
    DataReady,
    StateChange,
    WriteSpace,
}

impl Event {
    /// Ours.
    fn hook(self) -> HookFn {
        match self {
            Event::DataReady => hooks_data_ready,
            Event::StateChange => hooks_state_change,
            Event::WriteSpace => hooks_write_space,
        }
    }

    /// What a TCP socket does by default: wake those waiting on it.
    fn fallback(self) -> HookFn {
        match self {
            Event::DataReady => bindings::sock_def_readable,
            Event::StateChange => bindings::sk_wake_all,
            Event::WriteSpace => bindings::sk_stream_write_space,
        }
    }

    /// The socket's own callback, before ours.
    fn previous(self, hooks: &Hooks) -> Option<HookFn> {
        let cur = match self {
            Event::DataReady => hooks.data_ready,
            Event::StateChange => hooks.state_change,
            Event::WriteSpace => hooks.write_space,
        };
        previous(cur, self.hook())
    }
}

/// Runs the socket's own callback for `event`, then tells the target, if the socket has one
/// (a connection accepted from a listener with events starts with our callbacks and none).
///
/// # Safety
///
/// `sk` is a socket the network stack calls a callback of.
unsafe fn run_hooks(sk: *mut bindings::sock, event: Event) {
    // SAFETY: `sk` is valid (the function's requirements); the read lock keeps
    // `clear_events` from freeing the hooks while we use them.
    unsafe {
        bindings::sk_callback_read_lock(sk);
        let hooks: *const Hooks = bindings::sk_user_data_get(sk).cast();
        if let Some(hooks) = hooks.as_ref() {
            event.previous(hooks).unwrap_or(event.fallback())(sk);
            let tell = match event {
                Event::DataReady => Some(hooks.vtable.data_ready),
                Event::StateChange => Some(hooks.vtable.state_change),
                // As `sk_stream_write_space()` decides: once a good share is free.
                Event::WriteSpace => {
                    Some(hooks.vtable.write_space).filter(|_| bindings::sk_stream_writeable(sk))
                }
            };
            if let Some(tell) = tell {
                tell(hooks.target);
            }
        } else {
            event.fallback()(sk);
        }
        bindings::sk_callback_read_unlock(sk);
    }
}

/// `sk_data_ready` of a socket with events: the socket's own callback, then the target's.
///
/// # Safety
///
/// The network stack calls it with a valid `sk`.
unsafe extern "C" fn hooks_data_ready(sk: *mut bindings::sock) {
    // SAFETY: the network stack calls with a valid `sk`.
    unsafe { run_hooks(sk, Event::DataReady) }
}

/// `sk_state_change` of a socket with events: the socket's own callback, then the target's.
///
/// # Safety
///
/// The network stack calls it with a valid `sk`.
unsafe extern "C" fn hooks_state_change(sk: *mut bindings::sock) {
    // SAFETY: the network stack calls with a valid `sk`.
    unsafe { run_hooks(sk, Event::StateChange) }
}

/// `sk_write_space` of a socket with events: the socket's own callback, then the target's
/// once the socket is writeable.
///
/// # Safety
///
/// The network stack calls it with a valid `sk`.
unsafe extern "C" fn hooks_write_space(sk: *mut bindings::sock) {
    // SAFETY: the network stack calls with a valid `sk`.
    unsafe { run_hooks(sk, Event::WriteSpace) }
}

/// TCP keep-alive of a connection: probes once it has been idle for `idle_secs`, every
/// `interval_secs`, and it is reset after `count` unanswered ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    /// Seconds without traffic before the first probe (`TCP_KEEPIDLE`, 1 to 32767).
    pub idle_secs: u32,
    /// Seconds between probes (`TCP_KEEPINTVL`, 1 to 32767).
    pub interval_secs: u32,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`, 1 to 127).
    pub count: u32,
}

/// A kernel TCP socket.
///
/// # Invariants
///
/// `ptr` points to a `struct socket` with a `sock` (`sk`) attached, created by
/// `sock_create_kern()` or `kernel_accept()`, owned by this value and released in `drop` only.
pub struct Socket {
    ptr: NonNull<bindings::socket>,
}

// SAFETY: a kernel socket is not bound to the task that created it.
unsafe impl Send for Socket {}

// SAFETY: every operation here goes through the socket calls, which take the socket lock
// themselves: `shutdown` from one task while another waits in `accept` or `recv` is how a
// waiter is woken.
unsafe impl Sync for Socket {}

impl Socket {
    /// Creates a TCP socket of `addr`'s family in the initial network namespace.
    pub fn new_tcp(family_of: &SocketAddr) -> Result<Self> {
        Self::new_tcp_in(Namespace::init(), family_of)
    }

    /// Creates a TCP socket of `addr`'s family in the network namespace `net`.
    ///
    /// Outside the initial namespace the socket, and each connection it accepts, holds a
    /// reference on `net` as a user's socket does (a kernel socket normally holds none): a
    /// connection closed by its owner may live on in the stack (its last segments, its timers)
    /// and must not outlive the namespace it uses.
    pub fn new_tcp_in(net: &Namespace, family_of: &SocketAddr) -> Result<Self> {
        let mut sock = core::ptr::null_mut();
        // SAFETY: `net` is alive for the call (a shared reference); `sock` is a valid place for
        // the result.
        to_result(unsafe {
            bindings::sock_create_kern(
                net.as_raw(),
                family_of.family() as i32,
                bindings::sock_type_SOCK_STREAM as i32,
                bindings::IPPROTO_TCP as i32,
                &mut sock,
            )
        })?;
        let ptr = NonNull::new(sock).ok_or(crate::error::code::ENOMEM)?;
        // INVARIANT: `sock_create_kern()` succeeded: the socket and its `sk` are ours.
        let sock = Self { ptr };
        if !net.is_init() {
            // SAFETY: `sk` is valid (invariant), a kernel socket not yet used; children cloned
            // from it copy `sk_net_refcnt` and take their own reference.
            unsafe { bindings::sk_net_refcnt_upgrade(sock.sk()) };
        }
        Ok(sock)
    }

    /// The network namespace the socket lives in.
    pub fn namespace(&self) -> &Namespace {
        // SAFETY: `sk` is valid (invariant); its namespace outlives it: `init_net`, the one
        // the socket holds a reference on (`new_tcp_in`), or an accepted connection's, which
        // holds one when its listener did.
        unsafe { Namespace::from_raw(bindings::sock_net(self.sk())) }
    }

    fn as_raw(&self) -> *mut bindings::socket {
        self.ptr.as_ptr()
    }

    fn sk(&self) -> *mut bindings::sock {
        // SAFETY: by the type invariant the socket is valid and has its `sk`.
        unsafe { (*self.as_raw()).sk }
    }

    /// Binds the socket to `addr` (port 0: a free port, see [`Socket::local_addr`]).
    pub fn bind(&self, addr: &SocketAddr) -> Result {
        let (mut raw, len) = RawAddr::new(addr);
        // SAFETY: the socket is valid (invariant); `raw` holds `len` bytes of a sockaddr.
        to_result(unsafe {
            bindings::kernel_bind(self.as_raw(), (&raw mut raw).cast(), len as i32)
        })
    }

    /// Starts listening with a queue of `backlog` connections.
    pub fn listen(&self, backlog: u32) -> Result {
        let backlog = i32::try_from(backlog).map_err(|_| crate::error::code::EINVAL)?;
        // SAFETY: the socket is valid (invariant).
        to_result(unsafe { bindings::kernel_listen(self.as_raw(), backlog) })
    }

    /// Connects to `addr`.
    pub fn connect(&self, addr: &SocketAddr) -> Result {
        let (mut raw, len) = RawAddr::new(addr);
        // SAFETY: the socket is valid (invariant); `raw` holds `len` bytes of a sockaddr.
        to_result(unsafe {
            bindings::kernel_connect(self.as_raw(), (&raw mut raw).cast(), len as i32, 0)
        })
    }

    /// Accepts a connection of a listening socket: `EAGAIN` without one when not blocking,
    /// `EINVAL` once the listener is shut down.
    pub fn accept(&self, blocking: Blocking) -> Result<Socket> {
        let flags = match blocking {
            Blocking::Yes => 0,
            Blocking::No => bindings::O_NONBLOCK as i32,
        };
        let mut new = core::ptr::null_mut();
        // SAFETY: the socket is valid (invariant); `new` is a valid place for the result.
        to_result(unsafe { bindings::kernel_accept(self.as_raw(), &mut new, flags) })?;
        let ptr = NonNull::new(new).ok_or(crate::error::code::ENOMEM)?;
        // INVARIANT: `kernel_accept()` succeeded: the new socket and its `sk` are ours.
        Ok(Socket { ptr })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        let mut raw = RawAddr::zeroed();
        // SAFETY: the socket is valid (invariant); `raw` is large enough for either family.
        count(unsafe { bindings::kernel_getsockname(self.as_raw(), (&raw mut raw).cast()) })?;
        raw.to_addr()
    }

    /// Receives into `buf`: the number of bytes received, 0 at the end of the stream.
    pub fn recv(&self, buf: &mut [u8], blocking: Blocking) -> Result<usize> {
        let flags = match blocking {
            Blocking::Yes => 0,
            Blocking::No => bindings::MSG_DONTWAIT,
        };
        let mut vec = bindings::kvec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut msg = bindings::msghdr::default();
        // SAFETY: the socket is valid (invariant); `vec` describes `buf`, writable for the call.
        count(unsafe {
            bindings::kernel_recvmsg(
                self.as_raw(),
                &mut msg,
                &mut vec,
                1,
                buf.len(),
                flags as i32,
            )
        })
    }

    /// Sends from `buf`: the number of bytes sent (a partial send when interrupted or not
    /// blocking). No `SIGPIPE` is raised.
    pub fn send(&self, buf: &[u8], blocking: Blocking) -> Result<usize> {
        self.send_flags(buf, blocking, 0)
    }

    /// Sends from `buf` as [`Socket::send`] does, with `MSG_MORE`: more is coming at once, so
    /// TCP may hold a partial segment back to fill it (a response head before its body).
    pub fn send_more(&self, buf: &[u8], blocking: Blocking) -> Result<usize> {
        self.send_flags(buf, blocking, bindings::MSG_MORE)
    }

    fn send_flags(&self, buf: &[u8], blocking: Blocking, flags: u32) -> Result<usize> {
        let mut flags = flags | bindings::MSG_NOSIGNAL;
        if blocking == Blocking::No {
            flags |= bindings::MSG_DONTWAIT;
        }
        let mut vec = bindings::kvec {
            iov_base: buf.as_ptr().cast_mut().cast(),
            iov_len: buf.len(),
        };
        let mut msg = bindings::msghdr {
            msg_flags: flags,
            ..Default::default()
        };
        // SAFETY: the socket is valid (invariant); `vec` describes `buf`, which the kernel only
        // reads (a source iterator).
        count(unsafe { bindings::kernel_sendmsg(self.as_raw(), &mut msg, &mut vec, 1, buf.len()) })
    }

    /// Sends page-cache pages without copying them (`MSG_SPLICE_PAGES`): the socket takes its
    /// own references on the pages it queues, so they may be let go of once this returns. The
    /// number of bytes sent, short when interrupted, past the send timeout or not blocking.
    /// With `more`, TCP may hold a partial segment back for what follows (`MSG_MORE`).
    ///
    /// A page changed after this returns but before it was transmitted goes out changed, as
    /// with `sendfile()`. A socket that cannot splice pages copies them.
    pub fn send_pages(
        &self,
        parts: &[PagePart<'_>],
        blocking: Blocking,
        more: bool,
    ) -> Result<usize> {
        let mut bvecs = [bindings::bio_vec::default(); MAX_PAGE_PARTS];
        let mut total = 0usize;
        for (bv, part) in bvecs.iter_mut().zip(parts) {
            *bv = bindings::bio_vec {
                bv_page: part.page.as_page_ptr(),
                bv_len: part.len,
                bv_offset: part.offset,
            };
            total += part.len as usize;
        }
        let nr = parts.len().min(MAX_PAGE_PARTS);
        let mut flags = bindings::MSG_NOSIGNAL | bindings::MSG_SPLICE_PAGES;
        if blocking == Blocking::No {
            flags |= bindings::MSG_DONTWAIT;
        }
        if more {
            flags |= bindings::MSG_MORE;
        }
        let mut msg = bindings::msghdr {
            msg_flags: flags,
            ..Default::default()
        };
        // SAFETY: `msg_iter` is a valid place; `bvecs` holds `nr` entries, each within a page
        // the caller holds a reference on (`PagePart`'s invariant) for the whole call, whose
        // lengths add up to `total`.
        unsafe {
            bindings::iov_iter_bvec(
                &mut msg.msg_iter,
                bindings::ITER_SOURCE,
                bvecs.as_ptr(),
                nr as crate::ffi::c_ulong,
                total,
            )
        };
        // SAFETY: the socket is valid (invariant); `msg` describes pages that stay referenced
        // for the call; the socket takes references on the pages it keeps.
        count(unsafe { bindings::sock_sendmsg(self.as_raw(), &mut msg) })
    }

    /// Tells `events` of the socket's events (`sk_data_ready`, `sk_state_change`), after the
    /// socket's own handling (waking those waiting on it). `EBUSY` when the socket has events
    /// set already or other user data.
    ///
    /// The socket holds `events` until [`Socket::clear_events`] or until it is dropped: a
    /// target that owns the socket must clear the events itself to end the cycle. Connections
    /// a listener accepts do not inherit the events.
    pub fn set_events<T: SocketEvents + 'static>(&self, events: Arc<T>) -> Result {
        let hooks = KBox::into_raw(KBox::new(
            Hooks {
                target: Arc::into_raw(events).cast(),
                vtable: &VtableOf::<T>::VTABLE,
                data_ready: None,
                state_change: None,
                write_space: None,
            },
            GFP_KERNEL,
        )?);
        let sk = self.sk();
        // SAFETY: `sk` is valid (invariant). Under `sk_callback_lock` (written) no callback
        // reads `sk_user_data` or the callbacks we swap; `hooks` is ours until published.
        let taken = unsafe {
            bindings::sk_callback_write_lock(sk);
            let taken = !bindings::sk_user_data_get(sk).is_null();
            if !taken {
                (*hooks).data_ready = (*sk).sk_data_ready;
                (*hooks).state_change = (*sk).sk_state_change;
                (*hooks).write_space = (*sk).sk_write_space;
                // INVARIANT: `sk_user_data` points to our `Hooks` exactly while our callbacks
                // are set.
                bindings::sk_user_data_set_nocopy(sk, hooks.cast());
                (*sk).sk_data_ready = Some(hooks_data_ready);
                (*sk).sk_state_change = Some(hooks_state_change);
                (*sk).sk_write_space = Some(hooks_write_space);
            }
            bindings::sk_callback_write_unlock(sk);
            taken
        };
        if taken {
            // SAFETY: never published: `hooks` is still ours.
            unsafe { drop_hooks(hooks) };
            return Err(EBUSY);
        }
        Ok(())
    }

    /// Stops telling the target of [`Socket::set_events`] of events and lets go of it. When this
    /// returns, no call to the target is running or will start. Does nothing without events.
    pub fn clear_events(&self) {
        let sk = self.sk();
        // SAFETY: `sk` is valid (invariant); `sk_callback_lock` held for writing waits for the
        // callbacks running, which hold it for reading.
        let hooks = unsafe {
            bindings::sk_callback_write_lock(sk);
            let mut hooks: *mut Hooks = core::ptr::null_mut();
            if (*sk)
                .sk_data_ready
                .is_some_and(|f| is_same_fn(f, hooks_data_ready))
            {
                hooks = bindings::sk_user_data_get(sk).cast();
            }
            if !hooks.is_null() {
                (*sk).sk_data_ready = (*hooks).data_ready;
                (*sk).sk_state_change = (*hooks).state_change;
                (*sk).sk_write_space = (*hooks).write_space;
                bindings::sk_user_data_set_nocopy(sk, core::ptr::null_mut());
            }
            bindings::sk_callback_write_unlock(sk);
            hooks
        };
        if !hooks.is_null() {
            // SAFETY: unpublished under the lock above: nothing else can reach `hooks`.
            unsafe { drop_hooks(hooks) };
        }
    }

    /// Shuts down one or both directions; wakes the tasks waiting on the socket.
    pub fn shutdown(&self, how: Shutdown) -> Result {
        let how = match how {
            Shutdown::Read => bindings::sock_shutdown_cmd_SHUT_RD,
            Shutdown::Write => bindings::sock_shutdown_cmd_SHUT_WR,
            Shutdown::Both => bindings::sock_shutdown_cmd_SHUT_RDWR,
        };
        // SAFETY: the socket is valid (invariant).
        to_result(unsafe { bindings::kernel_sock_shutdown(self.as_raw(), how) })
    }

    /// `SO_REUSEPORT`: sockets that all set it may bind the same address and port; the kernel
    /// spreads connections among those listening.
    pub fn set_reuseport(&self) {
        // SAFETY: `sk` is valid (invariant); the call takes the socket lock.
        unsafe { bindings::sock_set_reuseport(self.sk()) }
    }

    /// `SO_INCOMING_CPU`: among `SO_REUSEPORT` listeners, prefer this one for connections
    /// received on `cpu`.
    pub fn set_incoming_cpu(&self, cpu: u32) -> Result {
        let cpu = i32::try_from(cpu).map_err(|_| crate::error::code::EINVAL)?;
        // SAFETY: `sk` is valid (invariant); the field is written with `WRITE_ONCE()`, as the
        // socket option does.
        unsafe { bindings::sk_set_incoming_cpu(self.sk(), cpu) };
        Ok(())
    }

    /// The CPU that last received for the socket (`SO_INCOMING_CPU` read back), if any.
    ///
    /// For an accepted connection it is the CPU whose softirq received its packets, which the
    /// listener's `SO_INCOMING_CPU` was matched against.
    pub fn incoming_cpu(&self) -> Option<u32> {
        // SAFETY: `sk` is valid (invariant); the field is read with `READ_ONCE()`.
        let cpu = unsafe { bindings::sk_incoming_cpu(self.sk()) };
        u32::try_from(cpu).ok()
    }

    /// `SO_RCVTIMEO` and `SO_SNDTIMEO`: a blocking receive or send that waits longer than its
    /// timeout fails with `EAGAIN` (or returns what it sent so far). `None` waits forever.
    pub fn set_timeouts(&self, recv: Option<Msecs>, send: Option<Msecs>) {
        let jiffies = |t: Option<Msecs>| match t {
            // `msecs_to_jiffies()` saturates at `MAX_JIFFY_OFFSET`, far below `c_long::MAX`.
            Some(ms) => crate::ffi::c_long::try_from(msecs_to_jiffies(ms).max(1))
                .unwrap_or(crate::ffi::c_long::MAX),
            None => crate::ffi::c_long::MAX,
        };
        // SAFETY: `sk` is valid (invariant); the helper takes the socket lock.
        unsafe { bindings::sk_set_timeouts(self.sk(), jiffies(recv), jiffies(send)) }
    }

    /// `TCP_NODELAY`: send segments at once instead of coalescing small ones.
    pub fn set_nodelay(&self) {
        // SAFETY: `sk` is valid (invariant) and a TCP socket; the call takes the socket lock.
        unsafe { bindings::tcp_sock_set_nodelay(self.sk()) }
    }

    /// `SO_KEEPALIVE` with `TCP_KEEPIDLE`, `TCP_KEEPINTVL` and `TCP_KEEPCNT`: probe a silent
    /// peer and reset the connection when it stays silent. `EINVAL` (and nothing changed) for
    /// a value out of its range. Connections accepted later from a listener inherit it.
    pub fn set_keepalive(&self, ka: &KeepAlive) -> Result {
        let val = |v: u32, max: u32| match i32::try_from(v) {
            Ok(v) if (1..=max as i32).contains(&v) => Ok(v),
            _ => Err(EINVAL),
        };
        // `MAX_TCP_KEEPIDLE`, `MAX_TCP_KEEPINTVL`, `MAX_TCP_KEEPCNT` of `include/net/tcp.h`.
        let idle = val(ka.idle_secs, 32767)?;
        let interval = val(ka.interval_secs, 32767)?;
        let count = val(ka.count, 127)?;
        let sk = self.sk();
        // SAFETY: `sk` is valid (invariant) and a TCP socket; each call takes the socket lock
        // and checks its value as the socket option does.
        unsafe {
            to_result(bindings::tcp_sock_set_keepidle(sk, idle))?;
            to_result(bindings::tcp_sock_set_keepintvl(sk, interval))?;
            to_result(bindings::tcp_sock_set_keepcnt(sk, count))?;
            bindings::sock_set_keepalive(sk);
        }
        Ok(())
    }

    /// The keep-alive in effect, as `getsockopt()` shows it (the namespace's sysctls for what
    /// was not set), or `None` without `SO_KEEPALIVE`.
    pub fn keepalive(&self) -> Option<KeepAlive> {
        let mut ka = KeepAlive {
            idle_secs: 0,
            interval_secs: 0,
            count: 0,
        };
        // SAFETY: `sk` is valid (invariant) and a TCP socket; the places are valid.
        let on = unsafe {
            bindings::tcp_sk_keepalive(
                self.sk(),
                &mut ka.idle_secs,
                &mut ka.interval_secs,
                &mut ka.count,
            )
        };
        on.then_some(ka)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.clear_events();
        // SAFETY: by the type invariant the socket is ours and released only here.
        unsafe { bindings::sock_release(self.as_raw()) }
    }
}

#[macros::kunit_tests(rust44_socket)]
mod tests {
    use super::*;
    use crate::error::code::{EADDRINUSE, EAGAIN, ENOTCONN};
    #[cfg(CONFIG_NET_NS)]
    use crate::sync::aref::ARef;
    use crate::sync::atomic::{Atomic, Relaxed};

    /// A network namespace of its own, with `lo` up.
    #[cfg(CONFIG_NET_NS)]
    fn new_namespace() -> Result<ARef<Namespace>> {
        // SAFETY: `init_user_ns` and `init_net` live forever; a new namespace comes back
        // referenced once, or an error pointer.
        let net = crate::error::from_err_ptr(unsafe {
            bindings::copy_net_ns(
                u64::from(bindings::CLONE_NEWNET),
                &raw mut bindings::init_user_ns,
                &raw mut bindings::init_net,
            )
        })?;
        let net = NonNull::new(net.cast::<Namespace>()).ok_or(EINVAL)?;
        // SAFETY: the new namespace's one reference is handed to the `ARef`.
        let net = unsafe { ARef::from_raw(net) };
        // SAFETY: a namespace is set up with its loopback device; its flags change under RTNL.
        to_result(unsafe {
            let lo = (*net.as_raw()).loopback_dev;
            bindings::rtnl_lock();
            let ret = bindings::dev_change_flags(
                lo,
                bindings::netif_get_flags(lo) | bindings::net_device_flags_IFF_UP,
                core::ptr::null_mut(),
            );
            bindings::rtnl_unlock();
            ret
        })?;
        Ok(net)
    }

    #[cfg(CONFIG_NET_NS)]
    #[test]
    fn a_namespace_has_ports_of_its_own() -> Result {
        let net = new_namespace()?;
        let a = Socket::new_tcp(&SocketAddr::any_v4(0))?;
        a.bind(&SocketAddr::any_v4(0))?;
        a.listen(8)?;
        let addr = a.local_addr()?;
        assert!(a.namespace().is_init());
        let b = Socket::new_tcp_in(&net, &addr)?;
        assert!(*b.namespace() == *net);
        assert!(!b.namespace().is_init());
        // The port taken in the initial namespace is free in the new one, once.
        b.bind(&addr)?;
        b.listen(8)?;
        let c = Socket::new_tcp_in(&net, &addr)?;
        assert_eq!(c.bind(&addr), Err(EADDRINUSE));
        Ok(())
    }

    #[test]
    fn keepalive_is_set_within_its_ranges() -> Result {
        let a = Socket::new_tcp(&SocketAddr::any_v4(0))?;
        assert_eq!(a.keepalive(), None);
        let ka = KeepAlive {
            idle_secs: 30,
            interval_secs: 5,
            count: 4,
        };
        for bad in [
            KeepAlive { idle_secs: 0, ..ka },
            KeepAlive {
                idle_secs: 32768,
                ..ka
            },
            KeepAlive {
                interval_secs: 0,
                ..ka
            },
            KeepAlive { count: 128, ..ka },
        ] {
            assert_eq!(a.set_keepalive(&bad), Err(EINVAL));
        }
        assert_eq!(a.keepalive(), None);
        a.set_keepalive(&ka)?;
        assert_eq!(a.keepalive(), Some(ka));
        Ok(())
    }

    // KUnit runs before userspace brings up `lo`: these tests bind to any address and make no
    // connection.
    #[test]
    fn a_listener_on_port_0_gets_a_port_and_excludes_others() -> Result {
        let a = Socket::new_tcp(&SocketAddr::any_v4(0))?;
        a.bind(&SocketAddr::any_v4(0))?;
        a.listen(8)?;
        let addr = a.local_addr()?;
        assert_eq!(addr.ip, IpAddr::V4([0; 4]));
        assert_ne!(addr.port, 0);
        let b = Socket::new_tcp(&addr)?;
        assert_eq!(b.bind(&addr), Err(EADDRINUSE));
        assert_eq!(a.accept(Blocking::No).err(), Some(EAGAIN));
        assert_eq!(b.recv(&mut [0u8; 4], Blocking::No), Err(ENOTCONN));
        Ok(())
    }

    struct Target {
        dropped: &'static Atomic<bool>,
    }

    impl SocketEvents for Target {
        fn data_ready(_this: ArcBorrow<'_, Self>) {}
        fn state_change(_this: ArcBorrow<'_, Self>) {}
    }

    impl Drop for Target {
        fn drop(&mut self) {
            self.dropped.store(true, Relaxed);
        }
    }

    #[test]
    fn events_are_set_once_and_let_go_of() -> Result {
        static FIRST: Atomic<bool> = Atomic::new(false);
        static SECOND: Atomic<bool> = Atomic::new(false);
        let a = Socket::new_tcp(&SocketAddr::any_v4(0))?;
        a.set_events(Arc::new(Target { dropped: &FIRST }, GFP_KERNEL)?)?;
        // A second owner is refused, and its target let go of at once.
        let second = Arc::new(Target { dropped: &SECOND }, GFP_KERNEL)?;
        assert_eq!(a.set_events(second), Err(EBUSY));
        assert!(SECOND.load(Relaxed));
        assert!(!FIRST.load(Relaxed));
        a.clear_events();
        assert!(FIRST.load(Relaxed));
        // Cleared, the socket takes events again; dropping it lets go of them.
        SECOND.store(false, Relaxed);
        a.set_events(Arc::new(Target { dropped: &SECOND }, GFP_KERNEL)?)?;
        a.bind(&SocketAddr::any_v4(0))?;
        a.listen(8)?;
        drop(a);
        assert!(SECOND.load(Relaxed));
        Ok(())
    }

    #[test]
    fn reuseport_listeners_share_a_port() -> Result {
        let a = Socket::new_tcp(&SocketAddr::any_v6(0))?;
        a.set_reuseport();
        a.set_nodelay();
        a.set_incoming_cpu(0)?;
        assert_eq!(a.incoming_cpu(), Some(0));
        a.set_timeouts(Some(100), None);
        a.bind(&SocketAddr::any_v6(0))?;
        a.listen(8)?;
        let addr = a.local_addr()?;
        assert_eq!(addr.ip, IpAddr::V6([0; 16]));
        assert_ne!(addr.port, 0);
        let b = Socket::new_tcp(&addr)?;
        b.set_reuseport();
        b.bind(&addr)?;
        b.listen(8)?;
        assert_eq!(b.local_addr()?, addr);
        // A listener shut down refuses to accept instead of waiting.
        b.shutdown(Shutdown::Both)?;
        assert!(b.accept(Blocking::Yes).is_err());
        Ok(())
    }
}
