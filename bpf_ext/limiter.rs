// SPDX-License-Identifier: GPL-2.0

//! Token buckets per key (a flow, an address), for the rate limiter that BPF programs call
//! through bpf_ext's kfuncs. Fixed memory: a table of [`SLOTS`] buckets, nothing allocated on the
//! packet path. Only `core`, so the host crate tests it.
//!
//! A bucket holds up to `burst` tokens and gains `rate` per second; a packet takes `cost` of them
//! or is dropped. Credit is kept in token-nanoseconds (a token is `NSEC_PER_SEC` of them, each
//! nanosecond adds `rate`), so refills are exact integers at any rate. A key looks for its
//! bucket in a window of [`WINDOW`] slots from its hash; a new key takes a free slot there, or
//! the least recently used one (an eviction: that key starts again with a full bucket).

/// Nanoseconds per second.
pub const NSEC_PER_SEC: u64 = 1_000_000_000;
/// Buckets in the table.
pub const SLOTS: usize = 256;
/// Slots a key may live in, from its hash.
pub const WINDOW: usize = 8;
/// The largest rate, in tokens per second.
pub const MAX_RATE: u64 = 1 << 30;
/// The largest burst, in tokens (credit of `MAX_BURST` tokens fits in `u64`).
pub const MAX_BURST: u64 = 1 << 32;

/// Why a configuration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `rate` is 0 or above [`MAX_RATE`].
    Rate,
    /// `burst` is 0 or above [`MAX_BURST`].
    Burst,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Rate => write!(f, "rate must be 1..={MAX_RATE} tokens per second"),
            Self::Burst => write!(f, "burst must be 1..={MAX_BURST} tokens"),
        }
    }
}

/// A checked rate and burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    rate: u64,
    burst: u64,
}

impl Config {
    /// One token per second, at most one saved up.
    pub const SLOWEST: Self = Self { rate: 1, burst: 1 };

    /// `rate` tokens per second, at most `burst` saved up.
    pub const fn new(rate: u64, burst: u64) -> Result<Self, ConfigError> {
        if rate == 0 || rate > MAX_RATE {
            return Err(ConfigError::Rate);
        }
        if burst == 0 || burst > MAX_BURST {
            return Err(ConfigError::Burst);
        }
        Ok(Self { rate, burst })
    }

    /// Tokens per second.
    pub const fn rate(&self) -> u64 {
        self.rate
    }

    /// The bucket's size in tokens.
    pub const fn burst(&self) -> u64 {
        self.burst
    }

    const fn full(&self) -> u64 {
        self.burst * NSEC_PER_SEC
    }
}

/// What the limiter did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets that had their tokens.
    pub admitted: u64,
    /// Packets dropped for an empty bucket.
    pub dropped: u64,
    /// Keys that took the slot of another.
    pub evicted: u64,
    /// Keys with a bucket now.
    pub keys: u64,
}

#[derive(Clone, Copy)]
struct Bucket {
    key: u64,
    used: bool,
    /// Credit in token-nanoseconds, at most `Config::full`.
    credit: u64,
    /// When `credit` was last brought up to date.
    last_ns: u64,
}

impl Bucket {
    const FREE: Self = Self {
        key: 0,
        used: false,
        credit: 0,
        last_ns: 0,
    };
}

/// The table of buckets.
pub struct Limiter {
    config: Config,
    buckets: [Bucket; SLOTS],
    stats: Stats,
}

/// A 64-bit mix (the splitmix64 finaliser), so that keys differing in few bits spread.
const fn hash(key: u64) -> u64 {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Limiter {
    /// An empty table with `config`.
    pub const fn new(config: Config) -> Self {
        Self {
            config,
            buckets: [Bucket::FREE; SLOTS],
            stats: Stats {
                admitted: 0,
                dropped: 0,
                evicted: 0,
                keys: 0,
            },
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Takes `config` and forgets every bucket (the statistics stay).
    pub fn reconfigure(&mut self, config: Config) {
        self.config = config;
        self.buckets = [Bucket::FREE; SLOTS];
        self.stats.keys = 0;
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Finds `key`'s slot, or makes one (a free slot of its window, else the least recently
    /// used one, whose key is evicted).
    fn slot(&mut self, key: u64, now_ns: u64) -> usize {
        let start = (hash(key) % SLOTS as u64) as usize;
        let mut free = None;
        let mut oldest = start;
        for i in 0..WINDOW {
            let s = (start + i) % SLOTS;
            let b = &self.buckets[s];
            if b.used && b.key == key {
                return s;
            }
            if !b.used {
                free.get_or_insert(s);
            } else if b.last_ns < self.buckets[oldest].last_ns || !self.buckets[oldest].used {
                oldest = s;
            }
        }
        let s = match free {
            Some(s) => {
                self.stats.keys += 1;
                s
            }
            None => {
                self.stats.evicted += 1;
                oldest
            }
        };
        self.buckets[s] = Bucket {
            key,
            used: true,
            credit: self.config.full(),
            last_ns: now_ns,
        };
        s
    }

    /// Charges `cost` tokens to `key`'s bucket at time `now_ns` (a monotonic clock): `true`
    /// when it had them (pass the packet), `false` when not (drop it; nothing is taken).
    pub fn admit(&mut self, key: u64, cost: u32, now_ns: u64) -> bool {
        let config = self.config;
        let s = self.slot(key, now_ns);
        let b = &mut self.buckets[s];
        // A clock that went back (another CPU's older reading) adds nothing.
        let elapsed = now_ns.saturating_sub(b.last_ns);
        b.last_ns = b.last_ns.max(now_ns);
        b.credit = b
            .credit
            .saturating_add(elapsed.saturating_mul(config.rate))
            .min(config.full());
        let need = u64::from(cost).saturating_mul(NSEC_PER_SEC);
        if b.credit >= need {
            b.credit -= need;
            self.stats.admitted += 1;
            true
        } else {
            self.stats.dropped += 1;
            false
        }
    }
}
