// SPDX-License-Identifier: GPL-2.0

//! tcp_listener: a static-file HTTP/1.1 server in the kernel, on one `SO_REUSEPORT` listener
//! per CPU with `SO_INCOMING_CPU` (Linux 4.4), so a connection is accepted and served on the
//! CPU that received it.
//!
//! Instances are made in configfs: `mkdir /sys/kernel/config/tcp_listener/NAME`, set
//! `address`, `port`, `root` (the document root), `workers` (per CPU), `max_connections`,
//! `timeout_ms`, then `echo 1 > enable`. Each online CPU gets a listener and `workers` work
//! items on a per-CPU workqueue, bound to that CPU, which accept and serve one connection at a
//! time (keep-alive until the client closes, a timeout, or an error). GET and HEAD of regular
//! files beneath the root (opened with `LOOKUP_BENEATH`: `..` and symlinks out of the root are
//! refused by path lookup), one `Range`, `If-Modified-Since`. Counters per CPU: `stats`.
//!
//! Files: this one (the module and the server), `configfs.rs` (the configfs interface),
//! `http.rs` and `params.rs` (kernel-free rules, tested on the host by `host/`).

mod configfs;
pub mod http;
pub mod params;

use core::fmt::Write as _;
use http::{ByteRange, Parsed, ResponseHead, Status};
use kernel::{
    cpu::{self, CpuId},
    fs::rooted::{RegularFile, RootedDir},
    net::socket::{Blocking, IpAddr, Shutdown, Socket, SocketAddr},
    prelude::*,
    str::{CString, Formatter},
    sync::{
        atomic::{Atomic, Relaxed},
        new_mutex, Arc, Mutex,
    },
    workqueue::{OwnedQueue, QueueFlags},
};
use params::{Addr, Params};

module! {
    type: TcpListenerModule,
    name: "tcp_listener",
    authors: ["rust44"],
    description: "Static-file HTTP/1.1 server on per-CPU SO_REUSEPORT listeners (Rust)",
    license: "GPL",
}

#[pin_data]
struct TcpListenerModule {
    #[pin]
    subsystem: kernel::configfs::Subsystem<configfs::Root>,
}

impl kernel::InPlaceModule for TcpListenerModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        init_claims();
        try_pin_init!(Self {
            subsystem <- configfs::subsystem(),
        })
    }
}

/// The listen backlog of each listener.
const BACKLOG: u32 = 128;
/// Receive buffer: a request head at its limits (request line, header fields, line ends)
/// always fits, so the parser decides before the buffer is full.
const RECV_BUF: usize = http::MAX_REQUEST_LINE + http::MAX_HEADER_BYTES + 1024;
/// File bytes are copied through a buffer of this size.
const FILE_BUF: usize = 64 * 1024;
/// How long a connection closed by the server may stay silent before it is dropped.
const LINGER_MS: u32 = 1000;
/// How much a connection closed by the server may still send before it is dropped.
const LINGER_BYTES: usize = 256 * 1024;
/// Room for a response head.
const HEAD_BUF: usize = 512;

/// Counters of one CPU's listener.
struct CpuStats {
    accepted: Atomic<u64>,
    served: Atomic<u64>,
    bytes: Atomic<u64>,
    errors: Atomic<u64>,
    /// Connections accepted or received on a CPU other than the listener's.
    other_cpu: Atomic<u64>,
    /// Connections refused with 503 (over `max_connections`).
    refused: Atomic<u64>,
}

impl CpuStats {
    fn new() -> Self {
        CpuStats {
            accepted: Atomic::new(0),
            served: Atomic::new(0),
            bytes: Atomic::new(0),
            errors: Atomic::new(0),
            other_cpu: Atomic::new(0),
            refused: Atomic::new(0),
        }
    }
}

/// One CPU's listener.
struct Listener {
    cpu: CpuId,
    sock: Socket,
    stats: CpuStats,
}

/// An enabled instance: its listeners and the connections being served.
#[pin_data]
pub(crate) struct Server {
    name: CString,
    params: Params,
    root: RootedDir,
    listeners: KVec<Listener>,
    /// The connection each worker serves, so `stop` can shut it down.
    #[pin]
    conns: Mutex<KVec<Option<Arc<Socket>>>>,
    /// Set by `stop` (under `conns`' lock, before the sockets are shut down).
    stopping: Atomic<bool>,
    /// Connections being served.
    active: Atomic<u32>,
}

/// A running instance: the server and the queue its workers run on.
pub(crate) struct Running {
    server: Arc<Server>,
    /// Dropped after `Server::stop`: draining it waits for the workers.
    queue: Option<OwnedQueue>,
    /// Let go last, once the listeners are closed.
    _claim: PortClaim,
}

kernel::sync::global_lock! {
    // SAFETY: Initialised by `init_claims` in the module's initialiser, before any instance.
    unsafe(uninit) static CLAIMS: Mutex<KVec<(CString, Params)>> = KVec::new();
}

/// Sets up the registry of the addresses and ports enabled instances listen on.
fn init_claims() {
    // SAFETY: Called once, by the module's initialiser, before any instance can be enabled.
    unsafe { CLAIMS.init() };
}

/// An enabled instance's hold on its address and port. The listeners join the port's
/// `SO_REUSEPORT` group, which would let a second instance on the same address and port take
/// a share of the first one's connections; a claim refuses it instead.
///
/// Claims never overlap, so a claim's parameters name its entry in the registry.
struct PortClaim {
    params: Params,
}

impl PortClaim {
    fn take(name: &CStr, params: &Params) -> Result<Self> {
        let mut claims = CLAIMS.lock();
        if let Some((other, _)) = claims
            .iter()
            .find(|(_, p)| params::listen_overlap(p, params))
        {
            pr_err!(
                "{}: enable: {} port {} is served by instance {} already\n",
                name.to_str().unwrap_or("?"),
                ShowAddr(&params.addr),
                params.port,
                other.to_str().unwrap_or("?")
            );
            return Err(EADDRINUSE);
        }
        claims.push((CString::try_from(name)?, *params), GFP_KERNEL)?;
        Ok(Self { params: *params })
    }
}

impl Drop for PortClaim {
    fn drop(&mut self) {
        let mut claims = CLAIMS.lock();
        if let Some(i) = claims.iter().position(|(_, p)| *p == self.params) {
            let _ = claims.remove(i);
        }
    }
}

/// An address as the `address` attribute shows it.
struct ShowAddr<'a>(&'a Addr);

impl kernel::fmt::Display for ShowAddr<'_> {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        params::write_addr(f, self.0)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.stop();
        // Destroying the queue waits for every worker: shut-down sockets make each return.
        drop(self.queue.take());
    }
}

fn socket_addr(p: &Params) -> SocketAddr {
    let ip = match p.addr {
        Addr::V4(a) => IpAddr::V4(a),
        Addr::V6(a) => IpAddr::V6(a),
    };
    SocketAddr { ip, port: p.port }
}

/// Creates a listener for `cpu`, with `SO_REUSEPORT` and `SO_INCOMING_CPU` set before it
/// joins the port's reuseport group.
fn listener_for(name: &CStr, addr: &SocketAddr, cpu: CpuId) -> Result<Listener> {
    let step = |what: &str, e: Error| {
        pr_err!(
            "{}: cpu {}: {} failed: error {}\n",
            name.to_str().unwrap_or("?"),
            cpu.as_u32(),
            what,
            e.to_errno()
        );
        e
    };
    let sock = Socket::new_tcp(addr).map_err(|e| step("socket", e))?;
    sock.set_reuseport();
    sock.set_incoming_cpu(cpu.as_u32())
        .map_err(|e| step("SO_INCOMING_CPU", e))?;
    sock.bind(addr).map_err(|e| step("bind", e))?;
    sock.listen(BACKLOG).map_err(|e| step("listen", e))?;
    Ok(Listener {
        cpu,
        sock,
        stats: CpuStats::new(),
    })
}

/// Enables an instance: a listener per online CPU and `workers` workers on each.
pub(crate) fn start(name: &CStr, params: Params, root: RootedDir) -> Result<Running> {
    let claim = PortClaim::take(name, &params)?;
    let addr = socket_addr(&params);
    let mut listeners = KVec::new();
    for cpu in cpu::online_cpus() {
        listeners.push(listener_for(name, &addr, cpu)?, GFP_KERNEL)?;
    }
    let nworkers = listeners.len() * params.workers as usize;
    let mut slots = KVec::with_capacity(nworkers, GFP_KERNEL)?;
    for _ in 0..nworkers {
        slots.push(None, GFP_KERNEL)?;
    }
    let server = Arc::pin_init(
        try_pin_init!(Server {
            name: CString::try_from(name)?,
            params,
            root,
            listeners,
            conns <- new_mutex!(slots),
            stopping: Atomic::new(false),
            active: Atomic::new(0),
        }),
        GFP_KERNEL,
    )?;
    let queue = OwnedQueue::new(name, QueueFlags::PERCPU, 0)?;
    // From here on, dropping `running` stops what was started.
    let running = Running {
        server,
        queue: Some(queue),
        _claim: claim,
    };
    let queue = running.queue.as_ref().ok_or(EINVAL)?;
    for (index, listener) in running.server.listeners.iter().enumerate() {
        for w in 0..params.workers as usize {
            let server = running.server.clone();
            let slot = index * params.workers as usize + w;
            queue
                .try_spawn_on(listener.cpu, GFP_KERNEL, move || server.worker(index, slot))
                .map_err(|_| ENOMEM)?;
        }
    }
    Ok(running)
}

/// Per-worker buffers, allocated once.
struct Buffers {
    recv: KVec<u8>,
    file: KVec<u8>,
    path: KVec<u8>,
}

impl Buffers {
    fn new() -> Result<Self> {
        Ok(Buffers {
            recv: KVec::from_elem(0, RECV_BUF, GFP_KERNEL)?,
            file: KVec::from_elem(0, FILE_BUF, GFP_KERNEL)?,
            path: KVec::from_elem(0, http::MAX_PATH + 1, GFP_KERNEL)?,
        })
    }
}

/// Why a connection ends.
enum End {
    /// The client closed its side, went silent past the timeout, or the server stops.
    Closed,
    /// The server answered last (`Connection: close`, an error): the client may still be
    /// sending.
    Done,
    /// A send or receive failed.
    Failed,
}

impl Server {
    fn name(&self) -> &str {
        self.name.to_str().unwrap_or("?")
    }

    /// Stops accepting and serving: wakes every worker waiting in `accept`, `recv` or `send`.
    fn stop(&self) {
        {
            let conns = self.conns.lock();
            self.stopping.store(true, Relaxed);
            for conn in conns.iter().flatten() {
                // A connection the client already shut down may fail with ENOTCONN: nothing
                // is left to wake then.
                let _ = conn.shutdown(Shutdown::Both);
            }
        }
        for l in self.listeners.iter() {
            // A listener that is shut down fails its waiting and future accepts.
            if let Err(e) = l.sock.shutdown(Shutdown::Both) {
                pr_err!(
                    "{}: cpu {}: cannot shut the listener down: error {}\n",
                    self.name(),
                    l.cpu.as_u32(),
                    e.to_errno()
                );
            }
        }
    }

    /// A worker on listener `index`'s CPU: accepts and serves connections until stopped.
    fn worker(&self, index: usize, slot: usize) {
        let Some(l) = self.listeners.get(index) else {
            return;
        };
        let mut bufs = match Buffers::new() {
            Ok(b) => b,
            Err(_) => {
                pr_err!(
                    "{}: cpu {}: no memory for a worker's buffers\n",
                    self.name(),
                    l.cpu.as_u32()
                );
                l.stats.errors.fetch_add(1, Relaxed);
                return;
            }
        };
        loop {
            let conn = match l.sock.accept(Blocking::Yes) {
                Ok(c) => c,
                Err(_) if self.stopping.load(Relaxed) => return,
                Err(e) if e == EINVAL => return,
                Err(_) => {
                    // ECONNABORTED and the like: the next connection may do better.
                    l.stats.errors.fetch_add(1, Relaxed);
                    continue;
                }
            };
            l.stats.accepted.fetch_add(1, Relaxed);
            if CpuId::current() != l.cpu {
                l.stats.other_cpu.fetch_add(1, Relaxed);
            }
            let Ok(conn) = Arc::new(conn, GFP_KERNEL) else {
                l.stats.errors.fetch_add(1, Relaxed);
                continue;
            };
            if !self.register(slot, Some(conn.clone())) {
                return;
            }
            self.serve_connection(l, &conn, &mut bufs);
            self.register(slot, None);
            // Dropping the last reference closes the connection.
        }
    }

    /// Puts `conn` into the worker's slot; `false` when stopping (the connection is dropped).
    fn register(&self, slot: usize, conn: Option<Arc<Socket>>) -> bool {
        let mut conns = self.conns.lock();
        if conn.is_some() && self.stopping.load(Relaxed) {
            return false;
        }
        if let Some(s) = conns.get_mut(slot) {
            *s = conn;
        }
        true
    }

    fn serve_connection(&self, l: &Listener, conn: &Socket, bufs: &mut Buffers) {
        let timeout = Some(self.params.timeout_ms);
        conn.set_timeouts(timeout, timeout);
        conn.set_nodelay();
        let active = self.active.fetch_add(1, Relaxed);
        if active >= self.params.max_connections {
            l.stats.refused.fetch_add(1, Relaxed);
            if self
                .send_error(l, conn, Status::ServiceUnavailable, false)
                .is_ok()
            {
                self.linger(conn, bufs);
            }
            self.active.fetch_sub(1, Relaxed);
            return;
        }
        match self.serve_requests(l, conn, bufs) {
            End::Closed => {}
            End::Done => self.linger(conn, bufs),
            End::Failed => {
                l.stats.errors.fetch_add(1, Relaxed);
            }
        }
        self.active.fetch_sub(1, Relaxed);
    }

    /// Closes our side and reads what the client still sends (for at most `LINGER_MS` of
    /// silence and `LINGER_BYTES`), so that closing with unread data does not reset the
    /// connection before the client has read our last response.
    fn linger(&self, conn: &Socket, bufs: &mut Buffers) {
        if conn.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let quiet = Some(self.params.timeout_ms.min(LINGER_MS));
        conn.set_timeouts(quiet, quiet);
        let mut total = 0;
        while total < LINGER_BYTES && !self.stopping.load(Relaxed) {
            match conn.recv(&mut bufs.recv, Blocking::Yes) {
                Ok(n) if n > 0 => total += n,
                _ => return,
            }
        }
    }

    /// Serves requests on one connection until it ends.
    fn serve_requests(&self, l: &Listener, conn: &Socket, bufs: &mut Buffers) -> End {
        let mut len = 0;
        let mut first = true;
        loop {
            let head = match http::parse_request(&bufs.recv[..len]) {
                Ok(Parsed::Complete(req)) => {
                    let keep = match self.respond(l, conn, &req, &mut bufs.file, &mut bufs.path) {
                        Ok(keep) => keep,
                        Err(_) => return End::Failed,
                    };
                    if !keep {
                        return End::Done;
                    }
                    req.head_len
                }
                Ok(Parsed::Incomplete) if len < bufs.recv.len() => {
                    match conn.recv(&mut bufs.recv[len..], Blocking::Yes) {
                        // The client closed; or the timeout passed, or `stop` shut us down.
                        Ok(0) => return End::Closed,
                        Err(e) if e == EAGAIN || self.stopping.load(Relaxed) => return End::Closed,
                        Err(_) => return End::Failed,
                        Ok(n) => {
                            if first {
                                first = false;
                                // The CPU whose softirq received the request.
                                if conn.incoming_cpu() != Some(l.cpu.as_u32()) {
                                    l.stats.other_cpu.fetch_add(1, Relaxed);
                                }
                            }
                            len += n;
                        }
                    }
                    continue;
                }
                // Cannot happen with RECV_BUF above the parser's limits; answer as they would.
                Ok(Parsed::Incomplete) => {
                    let _ = self.send_error(l, conn, Status::HeaderFieldsTooLarge, false);
                    return End::Done;
                }
                Err(status) => {
                    return match self.send_error(l, conn, status, false) {
                        Ok(()) => End::Done,
                        Err(_) => End::Failed,
                    };
                }
            };
            // A pipelined request may follow the one just served.
            bufs.recv.copy_within(head..len, 0);
            len -= head;
        }
    }

    /// Answers one request; `Ok(keep_alive)`.
    fn respond(
        &self,
        l: &Listener,
        conn: &Socket,
        req: &http::Request<'_>,
        fbuf: &mut [u8],
        pbuf: &mut [u8],
    ) -> Result<bool> {
        let keep = req.keep_alive;
        let plen = match http::normalize_path(req.target, &mut pbuf[..http::MAX_PATH]) {
            Ok(n) => n,
            Err(status) => {
                self.send_error(l, conn, status, keep)?;
                return Ok(keep);
            }
        };
        pbuf[plen] = 0;
        let file = match CStr::from_bytes_with_nul(&pbuf[..=plen]) {
            Ok(p) => self.root.open_file(p),
            Err(_) => Err(EINVAL),
        };
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                self.send_error(l, conn, status_of_open_error(e), keep)?;
                return Ok(keep);
            }
        };
        self.send_file(l, conn, req, &file, fbuf)?;
        Ok(keep)
    }

    fn send_file(
        &self,
        l: &Listener,
        conn: &Socket,
        req: &http::Request<'_>,
        file: &RegularFile,
        fbuf: &mut [u8],
    ) -> Result {
        let st = file.stat()?;
        let mtime = u64::try_from(st.mtime).unwrap_or(0);
        let (status, range) = http::decide(req, st.size, mtime);
        let head = ResponseHead {
            status,
            range,
            size: st.size,
            mtime: Some(mtime),
            keep_alive: req.keep_alive,
        };
        let mut hbuf = [0u8; HEAD_BUF];
        let hlen = http::write_response_head(&head, &mut hbuf).ok_or(EINVAL)?;
        send_all(conn, &hbuf[..hlen])?;
        let mut sent = hlen as u64;
        let body = matches!(status, Status::Ok | Status::PartialContent)
            && req.method == http::Method::Get;
        if body {
            sent += copy_range(conn, file, range, fbuf)?;
        }
        l.stats.served.fetch_add(1, Relaxed);
        l.stats.bytes.fetch_add(sent, Relaxed);
        Ok(())
    }

    /// Sends an error response (no body).
    fn send_error(&self, l: &Listener, conn: &Socket, status: Status, keep: bool) -> Result {
        let head = ResponseHead {
            status,
            range: ByteRange { start: 0, len: 0 },
            size: 0,
            mtime: None,
            keep_alive: keep,
        };
        let mut hbuf = [0u8; HEAD_BUF];
        let hlen = http::write_response_head(&head, &mut hbuf).ok_or(EINVAL)?;
        send_all(conn, &hbuf[..hlen])?;
        l.stats.served.fetch_add(1, Relaxed);
        l.stats.bytes.fetch_add(hlen as u64, Relaxed);
        Ok(())
    }

    /// Writes the instance's counters: a line per CPU, then the totals.
    pub(crate) fn write_stats(&self, w: &mut Formatter<'_>) -> Result {
        let mut total = [0u64; 6];
        for l in self.listeners.iter() {
            let s = &l.stats;
            let v = [
                s.accepted.load(Relaxed),
                s.served.load(Relaxed),
                s.bytes.load(Relaxed),
                s.errors.load(Relaxed),
                s.other_cpu.load(Relaxed),
                s.refused.load(Relaxed),
            ];
            for (t, x) in total.iter_mut().zip(v) {
                *t += x;
            }
            write_counters(w, Some(l.cpu.as_u32()), &v)?;
        }
        write_counters(w, None, &total)?;
        writeln!(w, "active {}", self.active.load(Relaxed))?;
        Ok(())
    }
}

fn write_counters(w: &mut Formatter<'_>, cpu: Option<u32>, v: &[u64; 6]) -> Result {
    match cpu {
        Some(c) => write!(w, "cpu{c}")?,
        None => write!(w, "total")?,
    }
    writeln!(
        w,
        " accepted {} served {} bytes {} errors {} other_cpu {} refused {}",
        v[0], v[1], v[2], v[3], v[4], v[5]
    )?;
    Ok(())
}

/// The answer to a failed open beneath the root.
fn status_of_open_error(e: Error) -> Status {
    if e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG {
        Status::NotFound
    } else if e == ENOMEM {
        Status::ServiceUnavailable
    } else {
        // EXDEV (out of the root), EACCES, EPERM, EISDIR, ELOOP...
        Status::Forbidden
    }
}

/// Sends all of `buf` (the send timeout bounds a client that does not read).
fn send_all(conn: &Socket, mut buf: &[u8]) -> Result {
    while !buf.is_empty() {
        let n = conn.send(buf, Blocking::Yes)?;
        if n == 0 {
            return Err(EPIPE);
        }
        buf = buf.get(n..).ok_or(EINVAL)?;
    }
    Ok(())
}

/// Sends `range` of `file` through `fbuf`; the bytes sent. A file that shrank fails (`EIO`):
/// the head already promised the length, so the connection must end.
fn copy_range(conn: &Socket, file: &RegularFile, range: ByteRange, fbuf: &mut [u8]) -> Result<u64> {
    let mut pos = range.start;
    let end = range.start + range.len;
    while pos < end {
        let want = usize::try_from(end - pos)
            .unwrap_or(usize::MAX)
            .min(fbuf.len());
        let n = file.read_at(&mut fbuf[..want], pos)?;
        if n == 0 {
            return Err(EIO);
        }
        send_all(conn, &fbuf[..n])?;
        pos += n as u64;
    }
    Ok(range.len)
}

#[kunit_tests(rust44_tcp_listener)]
mod tests {
    use super::*;

    // What the server relies on from `kernel::fs::rooted`, beneath the test thread's root (the
    // only directory sure to be there; the guest suite covers files, symlinks and reads): every
    // way out is refused with EXDEV, not resolved somewhere else.
    #[test]
    fn paths_out_of_the_root_are_refused() -> Result {
        let root = RootedDir::open(c"/");
        assert!(root.is_ok());
        let root = root?;
        assert_eq!(root.open_file(c"..").err(), Some(EXDEV));
        assert_eq!(root.open_file(c"./../x").err(), Some(EXDEV));
        // A leading `/` names the root itself, as for `vfs_path_lookup()`.
        assert_eq!(root.open_file(c"/..").err(), Some(EXDEV));
        assert_eq!(root.open_file(c"/").err(), Some(EISDIR));
        assert_eq!(root.open_file(c".").err(), Some(EISDIR));
        assert_eq!(root.open_file(c"rust44-nonexistent").err(), Some(ENOENT));
        Ok(())
    }
}
