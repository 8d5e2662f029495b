// SPDX-License-Identifier: GPL-2.0
//! blk_poll's pure logic, with no kernel dependency (it also builds and is tested on the host):
//! the device parameters and the rules of every configfs attribute, the values derived from
//! them, how a byte range maps onto the 4 KiB storage chunks, the stats format, the ring of
//! requests waiting for their completion time, and the hybrid-poll sleep estimator.

use core::fmt::{self, Write};

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

/// The longest disk name (`DISK_NAME_LEN` is 32 with the terminating NUL).
pub const MAX_NAME_LEN: usize = 31;

/// Whether `name` (a configfs directory name) can name the disk.
pub fn valid_disk_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN
}

/// The configuration a device is created with (a snapshot of its attributes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// `size`, in MiB.
    pub size_mib: u64,
    /// `blocksize`: the logical block size in bytes.
    pub block_size: u32,
    /// `submit_queues`: hardware queues for interrupt-driven requests.
    pub submit_queues: u32,
    /// `poll_queues`: hardware queues for polled requests.
    pub poll_queues: u32,
    /// `hw_queue_depth`: tags per hardware queue.
    pub queue_depth: u32,
    /// `completion_nsec`: how long after submission a deferred request completes.
    pub completion_nsec: u64,
    /// `irqmode`.
    pub irq_mode: IrqMode,
    /// `poll_mode`.
    pub poll_mode: PollMode,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            size_mib: 256,
            block_size: 512,
            submit_queues: 1,
            poll_queues: 1,
            queue_depth: 64,
            completion_nsec: 0,
            irq_mode: IrqMode::None,
            poll_mode: PollMode::Classic,
        }
    }
}

impl Params {
    /// The capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.size_mib << 20
    }

    /// The capacity in 512-byte sectors.
    pub fn capacity_sectors(&self) -> u64 {
        self.size_mib << (20 - 9)
    }

    /// How many hardware queues the device has: the submit queues, then the poll queues.
    pub fn hw_queues(&self) -> u32 {
        self.submit_queues + self.poll_queues
    }

    /// Whether hardware queue `index` is a poll queue (they follow the submit queues).
    pub fn is_poll_queue(&self, index: u32) -> bool {
        index >= self.submit_queues && index < self.hw_queues()
    }

    /// Whether polled requests sleep at submission: hybrid polling of a device whose requests
    /// take time. Without `completion_nsec` every poll finds the request done.
    pub fn hybrid_sleeps(&self) -> bool {
        self.poll_mode == PollMode::Hybrid && self.poll_queues > 0 && self.completion_nsec > 0
    }

    /// Whether the tag set is `BLK_MQ_F_BLOCKING` (`queue_rq` may sleep): only for hybrid
    /// polling, whose sleep needs it. Other devices keep the cheaper non-blocking dispatch.
    pub fn blocking(&self) -> bool {
        self.poll_mode == PollMode::Hybrid && self.poll_queues > 0
    }

    /// Whether deferred requests carry their submission and due times. Without latency a
    /// polled request is due at once and the clock is not read; a timer needs its expiry.
    pub fn timed(&self, use_timer: bool) -> bool {
        self.completion_nsec > 0 || use_timer
    }
}

/// A device parameter in configfs (`power` and `stats` are not parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attr {
    /// `size`.
    Size,
    /// `blocksize`.
    BlockSize,
    /// `submit_queues`.
    SubmitQueues,
    /// `poll_queues`.
    PollQueues,
    /// `hw_queue_depth`.
    HwQueueDepth,
    /// `completion_nsec`.
    CompletionNsec,
    /// `irqmode`.
    IrqMode,
    /// `poll_mode`.
    PollMode,
}

/// The device directory's attributes, as the root's `features` lists them.
pub const FEATURES: &str = "size,blocksize,submit_queues,poll_queues,hw_queue_depth,\
                            completion_nsec,irqmode,poll_mode,power,stats";

impl Attr {
    /// Every parameter, in configfs order.
    pub const ALL: [Attr; 8] = [
        Attr::Size,
        Attr::BlockSize,
        Attr::SubmitQueues,
        Attr::PollQueues,
        Attr::HwQueueDepth,
        Attr::CompletionNsec,
        Attr::IrqMode,
        Attr::PollMode,
    ];

    /// The file name.
    pub fn name(self) -> &'static str {
        match self {
            Attr::Size => "size",
            Attr::BlockSize => "blocksize",
            Attr::SubmitQueues => "submit_queues",
            Attr::PollQueues => "poll_queues",
            Attr::HwQueueDepth => "hw_queue_depth",
            Attr::CompletionNsec => "completion_nsec",
            Attr::IrqMode => "irqmode",
            Attr::PollMode => "poll_mode",
        }
    }

    /// What a write must be, for the message that refuses one.
    pub fn expected(self) -> &'static str {
        match self {
            Attr::Size => "a size in MiB in 1..=65536",
            Attr::BlockSize => "a power of two in 512..=4096",
            Attr::SubmitQueues => "a number in 1..=64",
            Attr::PollQueues => "a number in 0..=64",
            Attr::HwQueueDepth => "a number in 1..=4096",
            Attr::CompletionNsec => "a number of ns in 0..=1000000000",
            Attr::IrqMode => "0, 1 or 2",
            Attr::PollMode => "classic or hybrid",
        }
    }

    /// Validates a write and stores it in `p`; `p` is unchanged when it is refused.
    pub fn store(self, p: &mut Params, page: &[u8]) -> Result<(), Invalid> {
        match self {
            Attr::Size => p.size_mib = parse_in_range(page, 1, MAX_SIZE_MIB)?,
            Attr::BlockSize => p.block_size = parse_block_size(page)?,
            Attr::SubmitQueues => p.submit_queues = parse_u32_in_range(page, 1, MAX_QUEUES)?,
            Attr::PollQueues => p.poll_queues = parse_u32_in_range(page, 0, MAX_QUEUES)?,
            Attr::HwQueueDepth => p.queue_depth = parse_u32_in_range(page, 1, MAX_QUEUE_DEPTH)?,
            Attr::CompletionNsec => {
                p.completion_nsec = parse_in_range(page, 0, MAX_COMPLETION_NSEC)?
            }
            Attr::IrqMode => p.irq_mode = IrqMode::parse(page)?,
            Attr::PollMode => p.poll_mode = PollMode::parse(page)?,
        }
        Ok(())
    }

    /// Writes the value of the parameter in `p`, with a newline, as a read shows it.
    pub fn show(self, p: &Params, w: &mut impl Write) -> fmt::Result {
        match self {
            Attr::Size => writeln!(w, "{}", p.size_mib),
            Attr::BlockSize => writeln!(w, "{}", p.block_size),
            Attr::SubmitQueues => writeln!(w, "{}", p.submit_queues),
            Attr::PollQueues => writeln!(w, "{}", p.poll_queues),
            Attr::HwQueueDepth => writeln!(w, "{}", p.queue_depth),
            Attr::CompletionNsec => writeln!(w, "{}", p.completion_nsec),
            Attr::IrqMode => writeln!(w, "{}", p.irq_mode.as_u32()),
            Attr::PollMode => writeln!(w, "{}", p.poll_mode.name()),
        }
    }
}

/// Bytes per stored chunk: the data is kept in 4 KiB pieces, absent ones read as zeroes.
pub const CHUNK: usize = 4096;

/// The part of one chunk that a byte range covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The chunk's index.
    pub index: usize,
    /// Where the range starts in the chunk.
    pub offset: usize,
    /// How many bytes of the chunk it covers.
    pub len: usize,
}

impl Piece {
    /// Whether the piece is the whole chunk.
    pub fn is_whole(&self) -> bool {
        self.len == CHUNK
    }
}

/// The chunks that `[pos, pos + len)` covers, in order.
pub fn pieces(pos: u64, len: u64) -> Pieces {
    Pieces {
        at: pos,
        end: pos.saturating_add(len),
    }
}

/// The iterator of [`pieces`].
#[derive(Clone, Debug)]
pub struct Pieces {
    at: u64,
    end: u64,
}

impl Iterator for Pieces {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        if self.at >= self.end {
            return None;
        }
        let chunk = CHUNK as u64;
        let offset = (self.at % chunk) as usize;
        let len = (self.end - self.at).min(chunk - offset as u64) as usize;
        let piece = Piece {
            index: (self.at / chunk) as usize,
            offset,
            len,
        };
        self.at += len as u64;
        Some(piece)
    }
}

/// Whether a request for `[pos, pos + len)` lies within a device of `capacity` bytes.
pub fn in_range(pos: u64, len: u64, capacity: u64) -> bool {
    pos.checked_add(len).is_some_and(|end| end <= capacity)
}

/// The counters of one hardware queue.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStats {
    /// Requests queued.
    pub requests: u64,
    /// Requests completed.
    pub completed: u64,
    /// Calls of `->poll`.
    pub polls: u64,
    /// Calls of `->poll` that found nothing due.
    pub empty_polls: u64,
    /// Hybrid sleeps taken.
    pub sleeps: u64,
    /// Their measured total length.
    pub sleep_ns: u64,
    /// Requests completed by the block layer's timeout.
    pub timeouts: u64,
}

/// Writes the first line of a device's `stats`.
pub fn write_device_stats(w: &mut impl Write, p: &Params, timeouts: u64) -> fmt::Result {
    writeln!(
        w,
        "poll_mode={} irqmode={} completion_nsec={} timeouts={}",
        p.poll_mode.name(),
        p.irq_mode.as_u32(),
        p.completion_nsec,
        timeouts
    )
}

/// Writes the `stats` line of hardware queue `index`.
pub fn write_queue_stats(
    w: &mut impl Write,
    index: usize,
    poll: bool,
    s: &QueueStats,
    inflight: usize,
    est: &CompletionEstimator,
) -> fmt::Result {
    writeln!(
        w,
        "queue={} type={} requests={} completed={} inflight={} polls={} empty_polls={} \
         sleeps={} sleep_ns={} mean_ns={} oversleep_ns={} timeouts={}",
        index,
        if poll { "poll" } else { "default" },
        s.requests,
        s.completed,
        inflight,
        s.polls,
        s.empty_polls,
        s.sleeps,
        s.sleep_ns,
        est.mean_ns(),
        est.oversleep_ns(),
        s.timeouts
    )
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
/// time: a longer oversleep says only that the task was off the CPU (preempted, the vCPU
/// descheduled), and so a single stall moves the estimate by at most an eighth of the mean and
/// hybrid polling goes on sleeping; a run of stalls, or a timer that is always late, stops it.
/// When the estimate leaves too short a sleep the poller spins instead, and the estimate decays
/// each time, so that sleeping is tried again now and then.
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
    pub const OVERSLEEP_CAP: u64 = 1;
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
