// SPDX-License-Identifier: GPL-2.0

//! tcp_listener: a static-file HTTP/1.1 server in the kernel, on one `SO_REUSEPORT` listener
//! per CPU with `SO_INCOMING_CPU` (Linux 4.4), so a connection is accepted and served on the
//! CPU that received it.
//!
//! Instances are made in configfs: `mkdir /sys/kernel/config/tcp_listener/NAME`, set
//! `address`, `port`, `root` (the document root), `workers` (per CPU), `max_connections`,
//! `timeout_ms`, then `echo 1 > enable`. The instance lives in the network namespace of the
//! task that made its directory. Each online CPU gets a listener (and a CPU that comes online
//! later gets one; one that goes offline takes its listener with it). Nothing waits in
//! `accept`, `recv` or `send`: the sockets' `sk_data_ready`, `sk_state_change` and
//! `sk_write_space` queue work on a per-CPU workqueue, on the CPU whose softirq received the
//! packets, which accepts or serves what is there and returns (a listener's work serves the
//! first request of each connection it accepts, when it is there already); at most `workers`
//! such work items run at once per CPU. GET and
//! HEAD of regular files beneath the root (opened with `LOOKUP_BENEATH`: `..` and symlinks out
//! of the root are refused by path lookup), one `Range`, `If-Modified-Since`; bodies are sent
//! from the page cache with `MSG_SPLICE_PAGES`, not copied. Counters per CPU: `stats`.
//!
//! Files: this one (the module and the server), `configfs.rs` (the configfs interface),
//! `http.rs` and `params.rs` (kernel-free rules, tested on the host by `host/`).

mod configfs;
pub mod http;
pub mod params;

use core::fmt::Write as _;
use http::{ByteRange, Parsed, ResponseHead, Status};
use kernel::{
    cpu::{
        self,
        hotplug::{self, Registration},
        CpuId,
    },
    fs::rooted::{CachedPage, RegularFile, RootedDir},
    net::{
        namespace::Namespace,
        socket::{
            Blocking, IpAddr, KeepAlive, PagePart, Shutdown, Socket, SocketAddr, SocketEvents,
            MAX_PAGE_PARTS,
        },
    },
    page::PAGE_SIZE,
    prelude::*,
    str::{CString, Formatter},
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        new_condvar, new_mutex, Arc, ArcBorrow, CondVar, Mutex,
    },
    time::{msecs_to_jiffies, Instant, Monotonic},
    workqueue::{impl_has_work, new_work, OwnedQueue, QueueFlags, Work, WorkItem},
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
    /// Dropped first: removing the instances stops them.
    #[pin]
    subsystem: kernel::configfs::Subsystem<configfs::Root>,
    /// The hotplug state the instances' listeners come and go with; removed last.
    cpus: StateInRegistry,
}

impl kernel::InPlaceModule for TcpListenerModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        init_registry();
        try_pin_init!(Self {
            cpus: StateInRegistry::new()?,
            subsystem <- configfs::subsystem(),
        })
    }
}

/// The listen backlog of each listener.
const BACKLOG: u32 = 128;
/// Receive buffer of a connection at most: a request head at its limits (request line, header
/// fields, line ends) always fits, so the parser decides before the buffer is full.
const RECV_BUF: usize = http::MAX_REQUEST_LINE + http::MAX_HEADER_BYTES + 1024;
/// Receive buffer of a new connection, grown to `RECV_BUF` for a request head that needs it.
const RECV_START: usize = 2048;
/// TCP keep-alive of the connections (set on the listeners, which the connections inherit
/// from): a peer gone without a word is found within `idle + interval * count` seconds, even
/// with a long `timeout_ms`.
const KEEPALIVE: KeepAlive = KeepAlive {
    idle_secs: 60,
    interval_secs: 10,
    count: 6,
};
/// Bodies of files without a page cache are copied through a buffer of this size.
const COPY_BUF: usize = 16 * 1024;
/// How long a connection closed by the server may stay silent before it is dropped.
const LINGER_MS: u32 = 1000;
/// How much a connection closed by the server may still send before it is dropped.
const LINGER_BYTES: usize = 256 * 1024;
/// Room for a response head.
const HEAD_BUF: usize = 512;

/// Counters of one CPU.
struct CpuStats {
    accepted: Atomic<u64>,
    served: Atomic<u64>,
    bytes: Atomic<u64>,
    errors: Atomic<u64>,
    /// Connections accepted or received on a CPU other than the listener's.
    other_cpu: Atomic<u64>,
    /// Connections refused with 503 (over `max_connections`).
    refused: Atomic<u64>,
    /// Body bytes sent as page-cache pages (`MSG_SPLICE_PAGES`), not copied.
    spliced: Atomic<u64>,
    /// Sends that found the socket full and waited for its `sk_write_space`.
    waits: Atomic<u64>,
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
            spliced: Atomic::new(0),
            waits: Atomic::new(0),
        }
    }
}

/// What the server's lock protects.
struct Shared {
    /// Set by `stop`: nothing is added after it.
    stopping: bool,
    listeners: KVec<Arc<Listener>>,
    conns: KVec<Arc<Conn>>,
}

/// An enabled instance.
#[pin_data]
pub(crate) struct Server {
    name: CString,
    /// Where the listeners are (each holds a reference of its own).
    net: ARef<Namespace>,
    params: Params,
    addr: SocketAddr,
    root: RootedDir,
    /// Where the sockets' events run: per CPU, at most `workers` at once on each.
    queue: OwnedQueue,
    /// Indexed by CPU number.
    stats: KVec<CpuStats>,
    #[pin]
    shared: Mutex<Shared>,
    /// Wakes the reaper (at `stop`).
    #[pin]
    reaper_wake: CondVar,
    /// Mirrors `Shared::stopping` for work that does not take the lock.
    stopping: Atomic<bool>,
    /// Connections being served (not counting those refused).
    active: Atomic<u32>,
    /// Time base of the connections' last activity.
    started: Instant<Monotonic>,
}

/// A running instance: the server and the hotplug registration of its listeners.
pub(crate) struct Running {
    server: Arc<Server>,
    /// Dropped first: each CPU's listener is closed by its `offline`.
    cpus: Option<Pin<KBox<Registration<CpuWatch>>>>,
    /// Let go last, once the listeners are closed.
    _claim: PortClaim,
}

/// What the instances share: the claimed ports and the hotplug state.
struct Registry {
    /// Per namespace: the instance's name and parameters.
    claims: KVec<(CString, Claimed)>,
    cpus: Option<Arc<hotplug::State<CpuWatch>>>,
}

kernel::sync::global_lock! {
    // SAFETY: Initialised by `init_registry` in the module's initialiser, before any instance.
    unsafe(uninit) static REGISTRY: Mutex<Registry> = Registry {
        claims: KVec::new(),
        cpus: None,
    };
}

/// Sets up the registry of the addresses and ports enabled instances listen on.
fn init_registry() {
    // SAFETY: Called once, by the module's initialiser, before any instance can be enabled.
    unsafe { REGISTRY.init() };
}

/// Holds the hotplug state in the registry; removes it when the module goes.
struct StateInRegistry;

impl StateInRegistry {
    fn new() -> Result<Self> {
        let state = hotplug::State::new(c"tcp_listener:online").inspect_err(|e| {
            pr_err!(
                "cannot set up a CPU hotplug state: error {}\n",
                e.to_errno()
            )
        })?;
        REGISTRY.lock().cpus = Some(state);
        Ok(Self)
    }
}

impl Drop for StateInRegistry {
    fn drop(&mut self) {
        // Every instance, and so every registration, is gone: this is the last reference.
        drop(REGISTRY.lock().cpus.take());
    }
}

/// An enabled instance's hold on its address and port. The listeners join the port's
/// `SO_REUSEPORT` group, which would let a second instance on the same address and port take
/// a share of the first one's connections; a claim refuses it instead.
///
/// Claims never overlap, so a claim's namespace and parameters name its entry in the
/// registry.
struct PortClaim {
    claimed: Claimed,
}

/// An address and port claimed in a network namespace.
#[derive(Clone, Copy, PartialEq)]
struct Claimed {
    /// Compared only, never followed: the instance holds a reference while it is claimed.
    net: *const Namespace,
    params: Params,
}

// SAFETY: `net` is only compared.
unsafe impl Send for Claimed {}

impl PortClaim {
    fn take(name: &CStr, net: &Namespace, params: &Params) -> Result<Self> {
        let claimed = Claimed {
            net: core::ptr::from_ref(net),
            params: *params,
        };
        let mut reg = REGISTRY.lock();
        if let Some((other, _)) = reg.claims.iter().find(|(_, c)| {
            core::ptr::eq(c.net, claimed.net) && params::listen_overlap(&c.params, params)
        }) {
            pr_err!(
                "{}: enable: {} port {} is served by instance {} already\n",
                name.to_str().unwrap_or("?"),
                ShowAddr(&params.addr),
                params.port,
                other.to_str().unwrap_or("?")
            );
            return Err(EADDRINUSE);
        }
        reg.claims
            .push((CString::try_from(name)?, claimed), GFP_KERNEL)?;
        Ok(Self { claimed })
    }
}

impl Drop for PortClaim {
    fn drop(&mut self) {
        let mut reg = REGISTRY.lock();
        if let Some(i) = reg.claims.iter().position(|(_, c)| *c == self.claimed) {
            let _ = reg.claims.remove(i);
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
        // The listeners go with their CPUs' `offline`.
        drop(self.cpus.take());
        self.server.stop();
        // No event reaches the queue any more and nothing is queued from outside it: what is
        // queued finishes (seeing `stopping`), and nothing is queued after it.
        self.server.queue.flush();
    }
}

fn socket_addr(p: &Params) -> SocketAddr {
    let ip = match p.addr {
        Addr::V4(a) => IpAddr::V4(a),
        Addr::V6(a) => IpAddr::V6(a),
    };
    SocketAddr { ip, port: p.port }
}

/// Enables an instance: a listener in `net` on each online CPU (and on each that comes
/// online).
pub(crate) fn start(
    name: &CStr,
    net: &Namespace,
    params: Params,
    root: RootedDir,
) -> Result<Running> {
    let claim = PortClaim::take(name, net, &params)?;
    let state = REGISTRY.lock().cpus.clone().ok_or(EINVAL)?;
    let mut stats = KVec::new();
    for _ in 0..cpu::nr_cpu_ids() {
        stats.push(CpuStats::new(), GFP_KERNEL)?;
    }
    let server = Arc::pin_init(
        try_pin_init!(Server {
            name: CString::try_from(name)?,
            net: net.into(),
            params,
            addr: socket_addr(params),
            root,
            // The reaper takes one more.
            queue: OwnedQueue::new(name, QueueFlags::PERCPU, params.workers + 1)?,
            stats,
            shared <- new_mutex!(Shared {
                stopping: false,
                listeners: KVec::new(),
                conns: KVec::new(),
            }),
            reaper_wake <- new_condvar!(),
            stopping: Atomic::new(false),
            active: Atomic::new(0),
            started: Instant::now(),
        }),
        GFP_KERNEL,
    )?;
    // From here on, dropping `running` stops what was started.
    let mut running = Running {
        server: server.clone(),
        cpus: None,
        _claim: claim,
    };
    let reaper = server.clone();
    server
        .queue
        .try_spawn(GFP_KERNEL, move || reaper.reap())
        .map_err(|_| ENOMEM)?;
    running.cpus = Some(KBox::pin_init(
        Registration::new(state, CpuWatch { server }),
        GFP_KERNEL,
    )?);
    Ok(running)
}

/// An instance's part in the hotplug state: a listener per online CPU.
pub(crate) struct CpuWatch {
    server: Arc<Server>,
}

impl hotplug::Callbacks for CpuWatch {
    fn online(&self, cpu: CpuId) -> Result {
        self.server.add_listener(cpu)
    }

    fn offline(&self, cpu: CpuId) {
        self.server.remove_listener(cpu);
    }
}

/// One CPU's listener.
#[pin_data]
struct Listener {
    #[pin]
    work: Work<Listener>,
    cpu: CpuId,
    sock: Socket,
    server: Arc<Server>,
}

impl_has_work! {
    impl HasWork<Self> for Listener { self.work }
}

impl WorkItem for Listener {
    type Pointer = Arc<Listener>;

    fn run(this: Arc<Listener>) {
        this.server.accept_all(&this);
    }
}

impl SocketEvents for Listener {
    fn data_ready(this: ArcBorrow<'_, Self>) {
        // Already queued: that run accepts this connection too.
        let _ = this.server.queue.enqueue_on(this.cpu, Arc::from(this));
    }

    fn state_change(_this: ArcBorrow<'_, Self>) {}
}

/// Where a connection is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading and answering requests.
    Serving,
    /// Over the connection limit: answer 503 at the first run, then close.
    Refusing,
    /// We answered last and closed our side; the client may still be sending (`linger`).
    Lingering,
    /// Closed: the socket goes with the last reference.
    Done,
}

/// What is left to send of a response.
struct Pending {
    head: [u8; HEAD_BUF],
    head_len: usize,
    head_sent: usize,
    body: Option<Body>,
    /// The connection stays open for the next request once this is sent.
    keep_alive: bool,
}

/// The part of a file a response still has to send.
struct Body {
    file: RegularFile,
    pos: u64,
    end: u64,
    /// The file has no page cache: read it through a buffer.
    copy: bool,
}

/// How far a response got.
enum Progress {
    /// All of it is queued in the socket.
    Sent,
    /// The socket is full: its `sk_write_space` queues the connection's work again.
    Blocked,
}

/// A connection's buffer and progress, used by its work only (one run at a time).
struct ConnIo {
    phase: Phase,
    buf: KVec<u8>,
    len: usize,
    /// The response being sent, if the socket could not take all of it yet.
    pending: Option<Pending>,
    /// Bytes read (and dropped) while lingering.
    lingered: usize,
    first: bool,
    /// Counted in `Server::active` (not refused).
    counted: bool,
}

/// An accepted connection.
#[pin_data]
struct Conn {
    #[pin]
    work: Work<Conn>,
    /// The CPU of the listener that accepted it.
    cpu: CpuId,
    sock: Socket,
    server: Arc<Server>,
    #[pin]
    io: Mutex<ConnIo>,
    /// Milliseconds since `Server::started` of the last data received or sent.
    last_active: Atomic<i64>,
    /// Set by the reaper: the connection was silent too long.
    expired: Atomic<bool>,
    /// Whether the connection lingers, for the reaper (which does not take `io`).
    lingering: Atomic<bool>,
    /// Whether a response waits for room in the socket, for the reaper, which retries it.
    blocked: Atomic<bool>,
}

impl_has_work! {
    impl HasWork<Self> for Conn { self.work }
}

impl WorkItem for Conn {
    type Pointer = Arc<Conn>;

    fn run(this: Arc<Conn>) {
        this.server.serve(&this);
    }
}

impl SocketEvents for Conn {
    fn data_ready(this: ArcBorrow<'_, Self>) {
        // On the CPU that received, which `SO_INCOMING_CPU` made the listener's.
        let _ = this.server.queue.enqueue(Arc::from(this));
    }

    fn state_change(this: ArcBorrow<'_, Self>) {
        let _ = this.server.queue.enqueue(Arc::from(this));
    }

    fn write_space(this: ArcBorrow<'_, Self>) {
        let _ = this.server.queue.enqueue(Arc::from(this));
    }
}

/// Why serving a connection stops for now.
enum Outcome {
    /// Nothing more to read, or the socket is full: wait for the next event.
    Wait,
    /// The client closed, went silent, or the server stops.
    Closed,
    /// We answered last (`Connection: close`, an error): close, lingering if the client may
    /// still be sending.
    Done,
    /// A send or receive failed.
    Failed,
}

impl Conn {
    fn touch(&self) {
        self.last_active.store(self.server.now_ms(), Relaxed);
    }
}

impl Server {
    fn name(&self) -> &str {
        self.name.to_str().unwrap_or("?")
    }

    fn stats_of(&self, cpu: CpuId) -> Option<&CpuStats> {
        self.stats.get(cpu.as_u32() as usize)
    }

    fn now_ms(&self) -> i64 {
        self.started.elapsed().as_millis()
    }

    /// Creates, registers and opens the listener of `cpu`: `SO_REUSEPORT` and
    /// `SO_INCOMING_CPU` are set before it joins the port's reuseport group, its events before
    /// it listens; `TCP_NODELAY` and keep-alive, which its connections inherit.
    fn add_listener(self: &Arc<Self>, cpu: CpuId) -> Result {
        let step = |what: &str, e: Error| {
            pr_err!(
                "{}: cpu {}: {} failed: error {}\n",
                self.name(),
                cpu.as_u32(),
                what,
                e.to_errno()
            );
            e
        };
        let sock = Socket::new_tcp_in(&self.net, &self.addr).map_err(|e| step("socket", e))?;
        sock.set_reuseport();
        sock.set_nodelay();
        sock.set_keepalive(&KEEPALIVE)
            .map_err(|e| step("SO_KEEPALIVE", e))?;
        sock.set_incoming_cpu(cpu.as_u32())
            .map_err(|e| step("SO_INCOMING_CPU", e))?;
        let listener = Arc::pin_init(
            pin_init!(Listener {
                work <- new_work!("tcp_listener::Listener::work"),
                cpu,
                sock,
                server: self.clone(),
            }),
            GFP_KERNEL,
        )?;
        let mut shared = self.shared.lock();
        if shared.stopping {
            return Err(ESHUTDOWN);
        }
        shared.listeners.push(listener.clone(), GFP_KERNEL)?;
        let opened = listener
            .sock
            .set_events(listener.clone())
            .map_err(|e| step("events", e))
            .and_then(|()| listener.sock.bind(&self.addr).map_err(|e| step("bind", e)))
            .and_then(|()| listener.sock.listen(BACKLOG).map_err(|e| step("listen", e)));
        if let Err(e) = opened {
            shared.listeners.pop();
            drop(shared);
            listener.sock.clear_events();
            return Err(e);
        }
        Ok(())
    }

    /// Closes the listener of `cpu`. Its connections stay (their work moves with the CPU's).
    fn remove_listener(&self, cpu: CpuId) {
        let listener = {
            let mut shared = self.shared.lock();
            match shared.listeners.iter().position(|l| l.cpu == cpu) {
                Some(i) => shared.listeners.remove(i).ok(),
                None => None,
            }
        };
        if let Some(l) = listener {
            close_listener(&l);
        }
    }

    /// Stops accepting and serving: closes the listeners and ends every connection; the
    /// queue's work finishes soon after.
    fn stop(&self) {
        let (listeners, conns) = {
            let mut shared = self.shared.lock();
            shared.stopping = true;
            self.stopping.store(true, Relaxed);
            (
                core::mem::take(&mut shared.listeners),
                core::mem::take(&mut shared.conns),
            )
        };
        self.reaper_wake.notify_all();
        for l in listeners.iter() {
            close_listener(l);
        }
        for c in conns.iter() {
            c.sock.clear_events();
            // Wakes a send in progress; a connection the client shut down already may fail
            // with ENOTCONN: nothing is waiting then.
            let _ = c.sock.shutdown(Shutdown::Both);
        }
    }

    /// Accepts what waits on listener `l` and registers each connection. The last one is served
    /// here at once (its request is often there already: a work item less per connection);
    /// each one before it goes to a work item of its own, so a burst is served by the CPU's
    /// workers side by side.
    fn accept_all(&self, l: &Arc<Listener>) {
        let Some(stats) = self.stats_of(l.cpu) else {
            return;
        };
        let mut last: Option<Arc<Conn>> = None;
        loop {
            let sock = match l.sock.accept(Blocking::No) {
                Ok(c) => c,
                // Nothing left, or the listener was shut down.
                Err(e) if e == EAGAIN || e == EINVAL => break,
                Err(_) if self.stopping.load(Relaxed) => break,
                Err(_) => {
                    // ECONNABORTED and the like: the next connection may do better.
                    stats.errors.fetch_add(1, Relaxed);
                    continue;
                }
            };
            stats.accepted.fetch_add(1, Relaxed);
            if CpuId::current() != l.cpu {
                stats.other_cpu.fetch_add(1, Relaxed);
            }
            match self.add_conn(l, sock) {
                Ok(conn) => {
                    if let Some(before) = last.replace(conn) {
                        self.hand_over(l, before);
                    }
                }
                Err(_) => {
                    stats.errors.fetch_add(1, Relaxed);
                }
            }
        }
        if let Some(conn) = last {
            self.serve(&conn);
        }
    }

    /// Queues the first run of a registered connection on its listener's CPU. Under the server
    /// lock, so a `stop` (which takes it) comes after and its flush includes this; once
    /// stopping, the connection was shut down already and goes with its last reference.
    fn hand_over(&self, l: &Listener, conn: Arc<Conn>) {
        let shared = self.shared.lock();
        if !shared.stopping {
            let _ = self.queue.enqueue_on(l.cpu, conn);
        }
    }

    /// Registers a connection and sets its events (under the server lock, so a `stop` comes
    /// after and ends it); the caller serves it or queues its first run.
    fn add_conn(&self, l: &Arc<Listener>, sock: Socket) -> Result<Arc<Conn>> {
        let phase = if self.active.fetch_add(1, Relaxed) >= self.params.max_connections {
            self.active.fetch_sub(1, Relaxed);
            Phase::Refusing
        } else {
            Phase::Serving
        };
        let conn = Arc::pin_init(
            try_pin_init!(Conn {
                work <- new_work!("tcp_listener::Conn::work"),
                cpu: l.cpu,
                sock,
                server: l.server.clone(),
                io <- new_mutex!(ConnIo {
                    phase,
                    buf: KVec::from_elem(0u8, RECV_START, GFP_KERNEL)?,
                    len: 0,
                    pending: None,
                    lingered: 0,
                    first: true,
                    counted: phase == Phase::Serving,
                }),
                last_active: Atomic::new(self.now_ms()),
                expired: Atomic::new(false),
                lingering: Atomic::new(false),
                blocked: Atomic::new(false),
            }),
            GFP_KERNEL,
        );
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                if phase == Phase::Serving {
                    self.active.fetch_sub(1, Relaxed);
                }
                return Err(e);
            }
        };
        let mut shared = self.shared.lock();
        let added = if shared.stopping {
            Err(ESHUTDOWN)
        } else {
            shared
                .conns
                .push(conn.clone(), GFP_KERNEL)
                .map_err(Error::from)
        };
        let added = added.and_then(|()| {
            conn.sock.set_events(conn.clone()).inspect_err(|_| {
                shared.conns.pop();
            })
        });
        drop(shared);
        if let Err(e) = added {
            if phase == Phase::Serving {
                self.active.fetch_sub(1, Relaxed);
            }
            self.finish(&conn);
            return Err(e);
        }
        Ok(conn)
    }

    /// Ends a connection: unregisters it and lets go of its events; the socket closes with
    /// the last reference.
    fn finish(&self, conn: &Arc<Conn>) {
        {
            let mut shared = self.shared.lock();
            if let Some(i) = shared.conns.iter().position(|c| Arc::ptr_eq(c, conn)) {
                let _ = shared.conns.remove(i);
            }
        }
        conn.sock.clear_events();
    }

    /// A connection's work: serves what arrived, sends what the socket takes, and returns.
    fn serve(&self, conn: &Arc<Conn>) {
        let mut io = conn.io.lock();
        if io.phase == Phase::Done {
            return;
        }
        let outcome = if self.stopping.load(Relaxed) || conn.expired.load(Relaxed) {
            Outcome::Closed
        } else {
            match io.phase {
                Phase::Refusing => {
                    if let Some(s) = self.stats_of(conn.cpu) {
                        s.refused.fetch_add(1, Relaxed);
                    }
                    io.phase = Phase::Serving;
                    match error_response(Status::ServiceUnavailable) {
                        Ok(p) => {
                            io.pending = Some(p);
                            self.serve_requests(conn, &mut io)
                        }
                        Err(_) => Outcome::Failed,
                    }
                }
                Phase::Serving => self.serve_requests(conn, &mut io),
                _ => Outcome::Done,
            }
        };
        let outcome = match outcome {
            Outcome::Done => {
                if io.phase != Phase::Lingering {
                    if io.len == 0 && nothing_unread(conn, &mut io) {
                        // The client sent nothing more: close at once. The socket sends the
                        // rest of the response, then its FIN.
                        return self.close(conn, &mut io, Outcome::Closed);
                    }
                    io.phase = Phase::Lingering;
                    conn.lingering.store(true, Relaxed);
                    conn.touch();
                    if conn.sock.shutdown(Shutdown::Write).is_err() {
                        return self.close(conn, &mut io, Outcome::Closed);
                    }
                }
                linger(conn, &mut io)
            }
            o => o,
        };
        match outcome {
            Outcome::Wait => {}
            o => self.close(conn, &mut io, o),
        }
    }

    fn close(&self, conn: &Arc<Conn>, io: &mut ConnIo, how: Outcome) {
        if matches!(how, Outcome::Failed) {
            if let Some(s) = self.stats_of(conn.cpu) {
                s.errors.fetch_add(1, Relaxed);
            }
        }
        io.phase = Phase::Done;
        io.pending = None;
        if core::mem::take(&mut io.counted) {
            self.active.fetch_sub(1, Relaxed);
        }
        self.finish(conn);
    }

    /// Sends what is pending and serves the requests received so far on a connection.
    fn serve_requests(&self, conn: &Conn, io: &mut ConnIo) -> Outcome {
        loop {
            if let Some(p) = io.pending.as_mut() {
                let progress = self.flush(conn, p);
                conn.blocked
                    .store(matches!(progress, Ok(Progress::Blocked)), Relaxed);
                match progress {
                    Ok(Progress::Blocked) => return Outcome::Wait,
                    Ok(Progress::Sent) => {
                        let keep_alive = p.keep_alive;
                        io.pending = None;
                        if let Some(s) = self.stats_of(conn.cpu) {
                            s.served.fetch_add(1, Relaxed);
                        }
                        if !keep_alive {
                            return Outcome::Done;
                        }
                    }
                    Err(_) => return Outcome::Failed,
                }
            }
            let len = io.len;
            let answer = match http::parse_request(&io.buf[..len]) {
                Ok(Parsed::Complete(req)) => self.respond(&req).map(|p| (p, req.head_len)),
                Ok(Parsed::Incomplete) if len < io.buf.len() => {
                    match conn.sock.recv(&mut io.buf[len..], Blocking::No) {
                        Ok(0) => return Outcome::Closed,
                        Err(e) if e == EAGAIN => return Outcome::Wait,
                        Err(_) => return Outcome::Failed,
                        Ok(n) => {
                            if io.first {
                                io.first = false;
                                // The CPU whose softirq received the request.
                                if conn.sock.incoming_cpu() != Some(conn.cpu.as_u32()) {
                                    if let Some(s) = self.stats_of(conn.cpu) {
                                        s.other_cpu.fetch_add(1, Relaxed);
                                    }
                                }
                            }
                            conn.touch();
                            io.len += n;
                        }
                    }
                    continue;
                }
                // A long request head: room for one at the parser's limits.
                Ok(Parsed::Incomplete) if io.buf.len() < RECV_BUF => {
                    if io.buf.resize(RECV_BUF, 0, GFP_KERNEL).is_err() {
                        return Outcome::Failed;
                    }
                    continue;
                }
                // Cannot happen with RECV_BUF above the parser's limits; answer as they would.
                Ok(Parsed::Incomplete) => {
                    error_response(Status::HeaderFieldsTooLarge).map(|p| (p, len))
                }
                Err(status) => error_response(status).map(|p| (p, len)),
            };
            let Ok((pending, used)) = answer else {
                return Outcome::Failed;
            };
            // A pipelined request may follow the one answered.
            io.buf.copy_within(used..len, 0);
            io.len -= used;
            io.pending = Some(pending);
        }
    }

    /// The response to one request.
    fn respond(&self, req: &http::Request<'_>) -> Result<Pending> {
        let keep = req.keep_alive;
        let mut pbuf = [0u8; 256];
        let mut long: KVec<u8>;
        // The normalized path is never longer than the target.
        let pbuf: &mut [u8] = if req.target.len() + 2 < pbuf.len() {
            &mut pbuf
        } else {
            long = KVec::from_elem(0u8, http::MAX_PATH + 1, GFP_KERNEL)?;
            &mut long
        };
        let max = pbuf.len() - 1;
        let plen = match http::normalize_path(req.target, &mut pbuf[..max]) {
            Ok(n) => n,
            Err(status) => return head_only(status, keep),
        };
        pbuf[plen] = 0;
        let file = match CStr::from_bytes_with_nul(&pbuf[..=plen]) {
            Ok(p) => self.root.open_file(p),
            Err(_) => Err(EINVAL),
        };
        match file {
            Ok(f) => file_response(req, f),
            Err(e) => head_only(status_of_open_error(e), keep),
        }
    }

    /// Sends what the socket takes of a response, without waiting.
    fn flush(&self, conn: &Conn, p: &mut Pending) -> Result<Progress> {
        let stats = self.stats_of(conn.cpu);
        let blocked = || {
            if let Some(s) = stats {
                s.waits.fetch_add(1, Relaxed);
            }
            Ok(Progress::Blocked)
        };
        while p.head_sent < p.head_len {
            let rest = p.head.get(p.head_sent..p.head_len).ok_or(EINVAL)?;
            let sent = if p.body.is_some() {
                conn.sock.send_more(rest, Blocking::No)
            } else {
                conn.sock.send(rest, Blocking::No)
            };
            match sent {
                Ok(0) => return Err(EPIPE),
                Ok(n) => {
                    p.head_sent += n;
                    conn.touch();
                    if let Some(s) = stats {
                        s.bytes.fetch_add(n as u64, Relaxed);
                    }
                }
                Err(e) if e == EAGAIN => return blocked(),
                Err(e) => return Err(e),
            }
        }
        let Some(body) = p.body.as_mut() else {
            return Ok(Progress::Sent);
        };
        while body.pos < body.end {
            let sent = if body.copy {
                send_copied(&conn.sock, body)
            } else {
                match send_pages(&conn.sock, body) {
                    // No page cache: nothing was sent, copy from here on.
                    Err(e) if e == EOPNOTSUPP => {
                        body.copy = true;
                        continue;
                    }
                    r => r.inspect(|n| {
                        if let Some(s) = stats {
                            s.spliced.fetch_add(*n as u64, Relaxed);
                        }
                    }),
                }
            };
            match sent {
                Ok(0) => return Err(EPIPE),
                Ok(n) => {
                    body.pos += n as u64;
                    conn.touch();
                    if let Some(s) = stats {
                        s.bytes.fetch_add(n as u64, Relaxed);
                    }
                }
                Err(e) if e == EAGAIN => return blocked(),
                Err(e) => return Err(e),
            }
        }
        Ok(Progress::Sent)
    }

    /// Ends connections silent for longer than the timeout (lingering ones: `LINGER_MS`), and
    /// retries the sends that found no room; runs on the queue until `stop`.
    ///
    /// The socket tells of room again (`sk_write_space`) as acknowledgements free its buffer; a
    /// send refused for want of memory with nothing unacknowledged gets no such call (the
    /// kernel's blocking send retries after a short sleep then), so the reaper's period is the
    /// retry of last resort.
    fn reap(&self) {
        let timeout = i64::from(self.params.timeout_ms);
        let linger = timeout.min(i64::from(LINGER_MS));
        // A connection ends between its timeout and a quarter of it later.
        let period = msecs_to_jiffies((self.params.timeout_ms / 4).clamp(10, 1000));
        let mut shared = self.shared.lock();
        while !shared.stopping {
            let _ = self
                .reaper_wake
                .wait_interruptible_timeout(&mut shared, period);
            if shared.stopping {
                break;
            }
            let now = self.now_ms();
            for c in shared.conns.iter() {
                if c.blocked.load(Relaxed) {
                    let _ = self.queue.enqueue(c.clone());
                }
                let idle = now - c.last_active.load(Relaxed);
                let limit = if c.lingering.load(Relaxed) {
                    linger
                } else {
                    timeout
                };
                if idle >= limit && !c.expired.load(Relaxed) {
                    c.expired.store(true, Relaxed);
                    let _ = self.queue.enqueue(c.clone());
                }
            }
        }
    }

    /// Writes the instance's counters: a line per CPU with a listener, then the totals (of
    /// every CPU).
    pub(crate) fn write_stats(&self, w: &mut Formatter<'_>) -> Result {
        let mut cpus = KVec::new();
        for l in self.shared.lock().listeners.iter() {
            cpus.push(l.cpu, GFP_KERNEL)?;
        }
        cpus.sort_unstable_by_key(|c| c.as_u32());
        let mut total = [0u64; 8];
        for (i, s) in self.stats.iter().enumerate() {
            let v = [
                s.accepted.load(Relaxed),
                s.served.load(Relaxed),
                s.bytes.load(Relaxed),
                s.errors.load(Relaxed),
                s.other_cpu.load(Relaxed),
                s.refused.load(Relaxed),
                s.spliced.load(Relaxed),
                s.waits.load(Relaxed),
            ];
            for (t, x) in total.iter_mut().zip(v) {
                *t += x;
            }
            if cpus.iter().any(|c| c.as_u32() as usize == i) {
                write_counters(w, Some(i as u32), &v)?;
            }
        }
        write_counters(w, None, &total)?;
        writeln!(w, "active {}", self.active.load(Relaxed))?;
        Ok(())
    }
}

/// Closes a listener: no more events, no more accepts.
fn close_listener(l: &Listener) {
    l.sock.clear_events();
    // A listener that is shut down fails its future accepts; dropping the last reference
    // closes it (and resets the connections it had not handed out).
    if let Err(e) = l.sock.shutdown(Shutdown::Both) {
        pr_err!(
            "{}: cpu {}: cannot shut the listener down: error {}\n",
            l.server.name(),
            l.cpu.as_u32(),
            e.to_errno()
        );
    }
}

/// Reads and drops what a connection closed by the server still sends, so that closing with
/// unread data does not reset it before the client has read our last response.
fn linger(conn: &Conn, io: &mut ConnIo) -> Outcome {
    while io.lingered < LINGER_BYTES {
        match conn.sock.recv(&mut io.buf[..], Blocking::No) {
            Ok(n) if n > 0 => io.lingered += n,
            Err(e) if e == EAGAIN => return Outcome::Wait,
            _ => return Outcome::Closed,
        }
    }
    Outcome::Closed
}

fn write_counters(w: &mut Formatter<'_>, cpu: Option<u32>, v: &[u64; 8]) -> Result {
    match cpu {
        Some(c) => write!(w, "cpu{c}")?,
        None => write!(w, "total")?,
    }
    writeln!(
        w,
        " accepted {} served {} bytes {} errors {} other_cpu {} refused {} spliced {} waits {}",
        v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
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

/// Whether the client sent nothing beyond the requests answered. What it did send is read
/// (and dropped: the connection lingers).
fn nothing_unread(conn: &Conn, io: &mut ConnIo) -> bool {
    match conn.sock.recv(&mut io.buf[..], Blocking::No) {
        Ok(n) if n > 0 => {
            io.lingered = n;
            false
        }
        // Nothing waiting (EAGAIN), the client closed (0), or nothing left to read (an error).
        _ => true,
    }
}

/// A response of a head only: an error, or an answer without a body.
fn head_only(status: Status, keep_alive: bool) -> Result<Pending> {
    pending_head(&ResponseHead {
        status,
        range: ByteRange { start: 0, len: 0 },
        size: 0,
        mtime: None,
        keep_alive,
    })
}

/// An error response, after which the connection closes.
fn error_response(status: Status) -> Result<Pending> {
    head_only(status, false)
}

fn pending_head(head: &ResponseHead) -> Result<Pending> {
    let mut p = Pending {
        head: [0u8; HEAD_BUF],
        head_len: 0,
        head_sent: 0,
        body: None,
        keep_alive: head.keep_alive,
    };
    p.head_len = http::write_response_head(head, &mut p.head).ok_or(EINVAL)?;
    Ok(p)
}

/// The response to a request for `file`: its head and the part of the file to send.
fn file_response(req: &http::Request<'_>, file: RegularFile) -> Result<Pending> {
    let st = file.stat()?;
    let mtime = u64::try_from(st.mtime).unwrap_or(0);
    let (status, range) = http::decide(req, st.size, mtime);
    let mut p = pending_head(&ResponseHead {
        status,
        range,
        size: st.size,
        mtime: Some(mtime),
        keep_alive: req.keep_alive,
    })?;
    if matches!(status, Status::Ok | Status::PartialContent)
        && req.method == http::Method::Get
        && range.len > 0
    {
        p.body = Some(Body {
            file,
            pos: range.start,
            end: range.start + range.len,
            copy: false,
        });
    }
    Ok(p)
}

/// Sends what the socket takes of the next `MAX_PAGE_PARTS` pages of `body` as page-cache
/// pages (`MSG_SPLICE_PAGES`), without waiting. `EOPNOTSUPP` before anything is sent when the
/// file has no page cache.
fn send_pages(sock: &Socket, body: &Body) -> Result<usize> {
    let page_size = PAGE_SIZE as u64;
    let mut pages: [Option<CachedPage>; MAX_PAGE_PARTS] = Default::default();
    let mut n = 0;
    let mut at = body.pos;
    while n < MAX_PAGE_PARTS && at < body.end {
        pages[n] = Some(body.file.cached_page(at / page_size)?);
        at = (at / page_size + 1) * page_size;
        n += 1;
    }
    let mut parts: KVec<PagePart<'_>> = KVec::with_capacity(n, GFP_KERNEL)?;
    let mut at = body.pos;
    for page in pages.iter().take(n).flatten() {
        let offset = (at % page_size) as usize;
        let len = (body.end - at).min(page_size - offset as u64) as usize;
        parts.push(PagePart::new(page, offset, len)?, GFP_KERNEL)?;
        at += len as u64;
    }
    sock.send_pages(&parts, Blocking::No, at < body.end)
}

/// Sends what the socket takes of the next `COPY_BUF` bytes of `body`, read through a buffer,
/// without waiting. A file that shrank fails (`EIO`): the head already promised the length,
/// so the connection must end.
fn send_copied(sock: &Socket, body: &Body) -> Result<usize> {
    let want = usize::try_from(body.end - body.pos)
        .unwrap_or(usize::MAX)
        .min(COPY_BUF);
    let mut buf = KVec::from_elem(0u8, want, GFP_KERNEL)?;
    let n = body.file.read_at(&mut buf, body.pos)?;
    let chunk = buf.get(..n).ok_or(EINVAL)?;
    if n == 0 {
        Err(EIO)
    } else if body.pos + (n as u64) < body.end {
        sock.send_more(chunk, Blocking::No)
    } else {
        sock.send(chunk, Blocking::No)
    }
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
