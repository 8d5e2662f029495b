// SPDX-License-Identifier: GPL-2.0
//! blk_poll's pure logic, with no kernel dependency (it also builds and is tested on the host):
//! parsing and validating the configfs attributes, the ring of requests waiting for their
//! completion time, and the hybrid-poll sleep estimator.

/// A value written to an attribute that is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid;

/// The largest device, in MiB (the data is kept in memory as it is written).
pub const MAX_SIZE_MIB: u64 = 1 << 16;
/// The most submit or poll queues a device may have.
pub const MAX_QUEUES: u32 = 64;
/// The deepest hardware queue.
pub const MAX_QUEUE_DEPTH: u32 = 4096;
/// The longest emulated completion time: one second, far below the block layer's timeout.
pub const MAX_COMPLETION_NSEC: u64 = 1_000_000_000;
/// Hybrid polling does not sleep for less than this: a shorter sleep costs more than it saves.
pub const MIN_SLEEP_NSEC: u64 = 5_000;

/// The text of an attribute write, without surrounding white space; `Invalid` when it is not
/// UTF-8 or empty.
pub fn attr_text(page: &[u8]) -> Result<&str, Invalid> {
    let text = core::str::from_utf8(page).map_err(|_| Invalid)?.trim();
    if text.is_empty() {
        Err(Invalid)
    } else {
        Ok(text)
    }
}

/// Parses a decimal number in `min..=max`.
pub fn parse_in_range(page: &[u8], min: u64, max: u64) -> Result<u64, Invalid> {
    let text = attr_text(page)?;
    // `u64::from_str` accepts a leading '+': a plain number is asked for.
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid);
    }
    let value = text.parse::<u64>().map_err(|_| Invalid)?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid)
    }
}

/// Parses a `u32` in `min..=max`.
pub fn parse_u32_in_range(page: &[u8], min: u32, max: u32) -> Result<u32, Invalid> {
    parse_in_range(page, min.into(), max.into()).map(|v| v as u32)
}

/// Parses `0` or `1`.
pub fn parse_bool(page: &[u8]) -> Result<bool, Invalid> {
    match attr_text(page)? {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(Invalid),
    }
}

/// Parses a logical block size: a power of two from 512 to 4096 bytes.
pub fn parse_block_size(page: &[u8]) -> Result<u32, Invalid> {
    let size = parse_u32_in_range(page, 512, 4096)?;
    if size.is_power_of_two() {
        Ok(size)
    } else {
        Err(Invalid)
    }
}

/// How requests on the submit (non-poll) queues complete, as in null_blk's `irqmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqMode {
    /// In `queue_rq`, at once (0).
    None,
    /// In the block layer's completion softirq (1).
    Softirq,
    /// From a timer, `completion_nsec` after submission (2).
    Timer,
}

impl IrqMode {
    /// Parses `0`, `1` or `2`.
    pub fn parse(page: &[u8]) -> Result<Self, Invalid> {
        match attr_text(page)? {
            "0" => Ok(Self::None),
            "1" => Ok(Self::Softirq),
            "2" => Ok(Self::Timer),
            _ => Err(Invalid),
        }
    }

    /// The attribute's value.
    pub fn as_u32(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Softirq => 1,
            Self::Timer => 2,
        }
    }
}

/// How a poll queue is polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollMode {
    /// Spin: check for completions each time the block layer polls.
    Classic,
    /// Sleep first for a fraction of the mean completion time, then spin (Linux 4.10).
    Hybrid,
}

impl PollMode {
    /// Parses `classic` or `hybrid`.
    pub fn parse(page: &[u8]) -> Result<Self, Invalid> {
        match attr_text(page)? {
            "classic" => Ok(Self::Classic),
            "hybrid" => Ok(Self::Hybrid),
            _ => Err(Invalid),
        }
    }

    /// The attribute's value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Hybrid => "hybrid",
        }
    }
}

/// The indices of a ring of `cap` slots used as a FIFO: requests wait in submission order, and
/// with one completion time per device they also become due in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    head: usize,
    len: usize,
    cap: usize,
}

impl Ring {
    /// An empty ring of `cap` slots.
    pub const fn new(cap: usize) -> Self {
        Self {
            head: 0,
            len: 0,
            cap,
        }
    }

    /// `i % cap` for `i < 2 * cap`, without a division (which could panic on 0).
    fn wrap(&self, i: usize) -> usize {
        if i >= self.cap {
            i - self.cap
        } else {
            i
        }
    }

    /// How many slots are in use.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no slot is in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot at the front (the oldest entry).
    pub fn front(&self) -> Option<usize> {
        if self.len == 0 {
            None
        } else {
            Some(self.head)
        }
    }

    /// Takes a slot at the back for a new entry; `None` when all are in use.
    pub fn push(&mut self) -> Option<usize> {
        if self.len == self.cap {
            return None;
        }
        let slot = self.wrap(self.head + self.len);
        self.len += 1;
        Some(slot)
    }

    /// Releases the front slot and returns it.
    pub fn pop(&mut self) -> Option<usize> {
        let slot = self.front()?;
        self.head = self.wrap(self.head + 1);
        self.len -= 1;
        Some(slot)
    }
}

/// The running mean of a queue's completion times (submission to completion, in ns), and
/// from it how long hybrid polling sleeps before it spins: until half the mean has passed since
/// the request's submission (as Linux 4.10's `blk_mq_poll_hybrid_sleep`).
///
/// It also keeps the running mean of how much longer than asked the sleeps lasted (timer and
/// wake-up latency) and shortens the sleep by it, so that the poller wakes at half the mean
/// rather than later. One sample counts for at most [`Self::OVERSLEEP_CAP`] mean completion
/// times, so that a rare long stall (the task preempted, the vCPU descheduled) does not stop
/// hybrid polling for long. When the estimate leaves too short a sleep the poller spins instead, and the estimate
/// decays each time, so that sleeping is tried again now and then.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompletionEstimator {
    mean_ns: u64,
    samples: u64,
    oversleep_ns: u64,
    sleeps: u64,
}

impl CompletionEstimator {
    /// The weight of a new sample: the mean moves by 1/8 of the difference.
    const SHIFT: u32 = 3;
    /// An oversleep sample counts for at most this many mean completion times.
    pub const OVERSLEEP_CAP: u64 = 4;
    /// A sleep skipped because of the oversleep estimate lowers it by 1/256.
    const DECAY_SHIFT: u32 = 8;

    /// Records one completion time.
    pub fn record(&mut self, ns: u64) {
        if self.samples == 0 {
            self.mean_ns = ns;
        } else {
            self.mean_ns = ewma(self.mean_ns, ns);
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// Records a hybrid sleep that was asked for `asked_ns` and lasted `slept_ns`.
    pub fn record_sleep(&mut self, asked_ns: u64, slept_ns: u64) {
        let over = slept_ns
            .saturating_sub(asked_ns)
            .min(self.mean_ns.saturating_mul(Self::OVERSLEEP_CAP));
        if self.sleeps == 0 {
            self.oversleep_ns = over;
        } else {
            self.oversleep_ns = ewma(self.oversleep_ns, over);
        }
        self.sleeps = self.sleeps.saturating_add(1);
    }

    /// The mean completion time (0 before the first sample).
    pub fn mean_ns(&self) -> u64 {
        self.mean_ns
    }

    /// How many completions were recorded.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The mean time sleeps lasted longer than asked.
    pub fn oversleep_ns(&self) -> u64 {
        self.oversleep_ns
    }

    /// How long to sleep when a request submitted `elapsed_ns` ago is not done yet: until
    /// half the mean completion time has passed since submission, less the mean oversleep;
    /// 0 (spin) without a mean yet or when the sleep would be shorter than
    /// [`MIN_SLEEP_NSEC`].
    pub fn sleep_ns(&self, elapsed_ns: u64) -> u64 {
        if self.samples == 0 {
            return 0;
        }
        let left = (self.mean_ns / 2)
            .saturating_sub(elapsed_ns)
            .saturating_sub(self.oversleep_ns);
        if left >= MIN_SLEEP_NSEC {
            left
        } else {
            0
        }
    }

    /// [`Self::sleep_ns`], for a sleep about to be taken: when only the oversleep estimate
    /// stands in the way, the estimate decays.
    pub fn plan_sleep(&mut self, elapsed_ns: u64) -> u64 {
        let sleep = self.sleep_ns(elapsed_ns);
        if sleep == 0
            && self.samples > 0
            && (self.mean_ns / 2).saturating_sub(elapsed_ns) >= MIN_SLEEP_NSEC
        {
            self.oversleep_ns -= self.oversleep_ns >> Self::DECAY_SHIFT;
        }
        sleep
    }
}

/// Moves `mean` toward `sample` by 1/8 of the difference.
fn ewma(mean: u64, sample: u64) -> u64 {
    const SHIFT: u32 = CompletionEstimator::SHIFT;
    if sample >= mean {
        mean + ((sample - mean) >> SHIFT)
    } else {
        mean - ((mean - sample) >> SHIFT)
    }
}
