// SPDX-License-Identifier: GPL-2.0

//! bpf_ext: rust44 extensible from BPF (Linux 4.4 joined eBPF to the rest of the kernel). The
//! module gives BPF programs a kfunc, `rust44_ratelimit(key, cost)`: token buckets per key
//! (a flow, an address, a socket cookie), kept in the module, that a tc program calls to pass or
//! drop a packet. Rate and burst are load parameters; the counters are in
//! `/sys/kernel/debug/bpf_ext/stats`.
//!
//! The kfunc itself is C (`bpf_ext_kfuncs.c`): the verifier type-checks kfunc calls against BTF,
//! which only a module's C units get. It calls [`rust44_bpf_ext_admit`] here. A loaded program
//! that calls the kfunc holds the module, so `rmmod` is refused until the program is gone.

use kernel::{
    debugfs,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

pub mod limiter;

use limiter::{Config, Limiter};

module! {
    type: BpfExtModule,
    name: "bpf_ext",
    authors: ["rust44 developers"],
    description: "Rate-limiter kfuncs for BPF programs (Rust)",
    license: "GPL",
    params: {
        rate: u64 {
            default: 1000,
            description: "Tokens each key's bucket gains per second (1..=2^30)",
            perm: 0o444,
        },
        burst: u64 {
            default: 100,
            description: "Tokens a bucket holds at most; a new key starts full (1..=2^32)",
            perm: 0o444,
        },
    },
}

kernel::sync::global_lock! {
    // SAFETY: Initialized in the module initializer, before the kfuncs are registered. Until the
    // parameters are in (`init`), the slowest configuration.
    unsafe(uninit) static LIMITER: SpinLockIrq<Limiter> = Limiter::new(Config::SLOWEST);
}

/// Calls of the kfunc, counted apart from the table: `stats` reads them without the lock.
static CALLS: Atomic<u64> = Atomic::new(0);

extern "C" {
    /// `bpf_ext_kfuncs.c`: registers the kfunc set for the program types that may call it.
    fn rust44_bpf_ext_register_kfuncs() -> kernel::ffi::c_int;
}

/// The kfunc's body (`rust44_ratelimit()` in `bpf_ext_kfuncs.c`): charges `cost` tokens to
/// `key`'s bucket at `now_ns` (`ktime_get_ns()`); `true` to pass the packet.
///
/// BPF programs run it in any context but NMI (softirq for tc ingress, process context for
/// egress and socket filters): the table's lock disables interrupts, and nothing here sleeps.
#[no_mangle]
pub extern "C" fn rust44_bpf_ext_admit(key: u64, cost: u32, now_ns: u64) -> bool {
    CALLS.add(1, Relaxed);
    LIMITER.lock().admit(key, cost, now_ns)
}

/// `/sys/kernel/debug/bpf_ext/stats` (debugfs prints a file's `Debug`).
struct Stats;

impl core::fmt::Debug for Stats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (config, s) = {
            let l = LIMITER.lock();
            (l.config(), l.stats())
        };
        writeln!(f, "rate: {}", config.rate())?;
        writeln!(f, "burst: {}", config.burst())?;
        writeln!(f, "calls: {}", CALLS.load(Relaxed))?;
        writeln!(f, "admitted: {}", s.admitted)?;
        writeln!(f, "dropped: {}", s.dropped)?;
        writeln!(f, "keys: {}", s.keys)?;
        write!(f, "evicted: {}", s.evicted)
    }
}

#[pin_data]
struct BpfExtModule {
    #[pin]
    _stats: debugfs::File<Stats>,
    _debugfs: debugfs::Dir,
}

impl kernel::InPlaceModule for BpfExtModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: Called once, before anything can use `LIMITER`.
        unsafe { LIMITER.init() };
        let dir = debugfs::Dir::new(c"bpf_ext");
        try_pin_init!(Self {
            _stats <- dir.read_only_file(c"stats", Stats),
            _debugfs: dir,
        })
        .pin_chain(|_this| {
            let config = Config::new(
                module_parameters::rate.value(),
                module_parameters::burst.value(),
            )
            .map_err(|e| {
                pr_err!("{}\n", format_args!("{e}"));
                EINVAL
            })?;
            LIMITER.lock().reconfigure(config);
            // SAFETY: Plain C call; the kfunc it registers calls `rust44_bpf_ext_admit`, which
            // is ready now (`LIMITER` is initialized and configured).
            let ret = unsafe { rust44_bpf_ext_register_kfuncs() };
            if ret != 0 {
                pr_err!("cannot register the kfuncs: {}\n", ret);
                return Err(Error::from_errno(ret));
            }
            pr_info!(
                "rust44_ratelimit kfunc ready: {} tokens/s, burst {}\n",
                config.rate(),
                config.burst()
            );
            Ok(())
        })
    }
}
