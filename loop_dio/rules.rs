// SPDX-License-Identifier: GPL-2.0

//! The loop driver's decisions that need no kernel: load parameters, device numbers and
//! partitions, block sizes and direct I/O, and the life of a device (attach, detach, removal).
//! Only `core`: the kernel module and the host tests (`loop_dio/host`) build this same file.

use crate::abi::{self, errno};
use core::fmt;

/// Bits of the minor number (`MINORBITS`).
pub const MINORBITS: u32 = 20;
/// Most minors a disk may have, the whole disk included (`DISK_MAX_PARTS`).
pub const DISK_MAX_PARTS: u32 = 256;
/// Deepest tag set blk-mq allocates (`BLK_MQ_MAX_DEPTH`); it reduces deeper ones to this.
pub const BLK_MQ_MAX_DEPTH: u32 = 10240;
/// Block major of loop devices (`LOOP_MAJOR`).
pub const LOOP_MAJOR: u32 = 7;
/// A sector.
pub const SECTOR_SIZE: u32 = 512;

/// Load parameters the module refuses, with what `pr_err` says about them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamError {
    /// `max_part` asks for more minors per device than a disk may have.
    TooManyPartitions {
        /// The value given.
        max_part: u32,
    },
    /// `max_loop` devices do not fit the minor numbers left by `max_part`.
    TooManyDevices {
        /// The value given.
        max_loop: u32,
        /// The most devices that fit.
        fit: u32,
    },
    /// `hw_queue_depth` is 0.
    ZeroDepth,
    /// More poll queues than CPUs.
    TooManyPollQueues {
        /// The value given.
        poll_queues: u32,
        /// CPUs of the machine.
        cpus: u32,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooManyPartitions { max_part } => write!(
                f,
                "max_part={max_part} is too large: at most {} partitions per device",
                DISK_MAX_PARTS - 1
            ),
            Self::TooManyDevices { max_loop, fit } => write!(
                f,
                "max_loop={max_loop} does not fit the minor numbers: at most {fit} devices with this max_part"
            ),
            Self::ZeroDepth => write!(f, "hw_queue_depth=0: a queue needs at least one tag"),
            Self::TooManyPollQueues { poll_queues, cpus } => {
                write!(f, "poll_queues={poll_queues} is more than the {cpus} CPUs")
            }
        }
    }
}

impl ParamError {
    /// The error number the load fails with.
    pub fn errno(&self) -> i32 {
        errno::EINVAL
    }
}

/// `fls()`: the position of the highest set bit, counting from 1 (0 for 0).
fn fls(v: u32) -> u32 {
    u32::BITS - v.leading_zeros()
}

/// The checked load parameters, and what follows from them for every device.
///
/// # Invariants
///
/// `1 << part_shift <= DISK_MAX_PARTS`, so `MINORBITS - part_shift` does not underflow;
/// `1 <= queue_depth <= BLK_MQ_MAX_DEPTH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    max_loop: u32,
    part_shift: u32,
    queue_depth: u32,
    poll_queues: u32,
    inline_dio: bool,
}

impl Params {
    /// What a module with no devices yet uses before it has checked its parameters.
    pub const DEFAULT: Self = Self {
        max_loop: 0,
        part_shift: 0,
        queue_depth: 128,
        poll_queues: 0,
        inline_dio: true,
    };

    /// Checks the load parameters as `loop_init()` and the `hw_queue_depth` setter do: minors per
    /// device (`max_part` rounded up to a power of two less one) up to `DISK_MAX_PARTS`, `max_loop`
    /// devices within the minor numbers, a depth of at least 1 (reduced to what blk-mq allocates),
    /// and poll queues up to the number of CPUs.
    pub fn validate(
        max_loop: u32,
        max_part: u32,
        hw_queue_depth: u32,
        poll_queues: u32,
        cpus: u32,
    ) -> Result<Self, ParamError> {
        let part_shift = fls(max_part);
        if part_shift > DISK_MAX_PARTS.trailing_zeros() {
            return Err(ParamError::TooManyPartitions { max_part });
        }
        let fit = 1u32 << (MINORBITS - part_shift);
        if max_loop > fit {
            return Err(ParamError::TooManyDevices { max_loop, fit });
        }
        if hw_queue_depth == 0 {
            return Err(ParamError::ZeroDepth);
        }
        if poll_queues > cpus {
            return Err(ParamError::TooManyPollQueues { poll_queues, cpus });
        }
        // INVARIANT: checked above.
        Ok(Self {
            max_loop,
            part_shift,
            queue_depth: hw_queue_depth.min(BLK_MQ_MAX_DEPTH),
            poll_queues,
            // As the module parameter: on unless turned off.
            inline_dio: true,
        })
    }

    /// These parameters with direct reads and writes tried inline from `queue_rq` or not.
    pub fn with_inline_dio(self, inline_dio: bool) -> Self {
        Self { inline_dio, ..self }
    }

    /// Whether direct reads and writes are tried inline from `queue_rq` (see [`path`]).
    pub fn inline_dio(&self) -> bool {
        self.inline_dio
    }

    /// Devices created at load time.
    pub fn max_loop(&self) -> u32 {
        self.max_loop
    }

    /// Minor bits per device taken by partitions; not 0 means every device scans partitions.
    pub fn part_shift(&self) -> u32 {
        self.part_shift
    }

    /// `max_part` as C exports it once loaded: the partitions a device has room for, `2^n - 1`
    /// (so that userspace can compute a device's first minor as `index * (max_part + 1)`).
    pub fn max_part(&self) -> u32 {
        (1 << self.part_shift) - 1
    }

    /// Whether every device scans its partitions (`max_part` given).
    pub fn partitions_always(&self) -> bool {
        self.part_shift != 0
    }

    /// Tags per hardware queue.
    pub fn queue_depth(&self) -> u32 {
        self.queue_depth
    }

    /// Poll queues per device.
    pub fn poll_queues(&self) -> u32 {
        self.poll_queues
    }

    /// Every tag of a device's tag set (one default queue and the poll queues): the most
    /// requests the driver ever holds at once, as each holds a tag.
    pub fn tags(&self) -> usize {
        self.queue_depth as usize * (1 + self.poll_queues as usize)
    }

    /// The tags of the poll queues: the most polled requests in flight at once.
    pub fn poll_tags(&self) -> usize {
        self.queue_depth as usize * self.poll_queues as usize
    }

    /// How many device indexes the minor numbers have room for.
    pub fn max_devices(&self) -> u32 {
        1 << (MINORBITS - self.part_shift)
    }

    /// First minor and number of minors of device `index`.
    pub fn minors(&self, index: u32) -> (u32, u32) {
        (index << self.part_shift, 1 << self.part_shift)
    }

    /// The device index a device number of block major 7 stands for (a partition gives its
    /// disk's); `None` for another major.
    pub fn index_of(&self, devt: u32) -> Option<u32> {
        if devt >> MINORBITS != LOOP_MAJOR {
            return None;
        }
        Some((devt & ((1 << MINORBITS) - 1)) >> self.part_shift)
    }
}

/// Whether a logical block size can be asked for: the block layer's own check
/// (`blk_validate_block_size()`, given as `block_layer_accepts`) decides the sizes; direct I/O
/// also needs blocks of at least the backing file's granule (`min_dio_size`).
pub fn check_block_size(
    size: u32,
    block_layer_accepts: bool,
    direct_io: bool,
    min_dio_size: u32,
) -> Result<(), BlockSizeError> {
    if !block_layer_accepts {
        return Err(BlockSizeError::Invalid);
    }
    if direct_io && size < min_dio_size {
        return Err(BlockSizeError::BelowDirectIoGranule);
    }
    Ok(())
}

/// Why a block size is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockSizeError {
    /// The block layer does not take it.
    Invalid,
    /// Direct I/O is on and the size is below the backing file's direct I/O granule.
    BelowDirectIoGranule,
}

/// The block size a request for `requested` bytes gets: 0 asks for the default, which is the
/// backing file's direct I/O granule with direct I/O, else a sector (`loop_default_blocksize()`).
pub fn block_size_or_default(requested: u32, direct_io: bool, min_dio_size: u32) -> u32 {
    match requested {
        0 if direct_io => min_dio_size,
        0 => SECTOR_SIZE,
        size => size,
    }
}

/// The device's size in 512-byte sectors: what follows `offset` in a backing file of
/// `file_size` bytes, at most `sizelimit` bytes when that is not 0 (`lo_calculate_size()`).
pub fn device_sectors(file_size: u64, offset: u64, sizelimit: u64) -> u64 {
    let mut size = file_size.saturating_sub(offset);
    if sizelimit > 0 && sizelimit < size {
        size = sizelimit;
    }
    size >> 9
}

/// Whether direct I/O is possible: the file system must support it, the device's blocks must be
/// at least the file's direct I/O granule, and the offset aligned to it (`lo_can_use_dio()`).
pub fn can_use_direct_io(
    fs_supports: bool,
    block_size: u32,
    min_dio_size: u32,
    offset: u64,
) -> bool {
    fs_supports
        && min_dio_size != 0
        && block_size >= min_dio_size
        && offset & (u64::from(min_dio_size) - 1) == 0
}

/// What `LOOP_CONFIGURE` does about direct I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectIo {
    /// On.
    On,
    /// Off.
    Off,
    /// Asked for explicitly and impossible: the call fails.
    Refused,
}

/// Direct I/O at attach time: asked for with `LO_FLAGS_DIRECT_IO` it must be possible; from an
/// `O_DIRECT` descriptor it is taken when possible.
pub fn direct_io_at_attach(explicit: bool, opened_direct: bool, possible: bool) -> DirectIo {
    match (explicit || opened_direct, possible) {
        (true, true) => DirectIo::On,
        (true, false) if explicit => DirectIo::Refused,
        _ => DirectIo::Off,
    }
}

/// The DMA alignment mask of the device: the backing file's memory alignment with direct I/O
/// (pages go to it unchanged), at least a sector's (`loop_set_dma_limit()`).
pub fn dma_alignment(direct_io: bool, dio_mem_align: u32) -> u32 {
    if direct_io {
        dio_mem_align.max(SECTOR_SIZE - 1)
    } else {
        SECTOR_SIZE - 1
    }
}

/// Whether a request for `sectors` sectors at `sector` lies inside a device of `capacity`
/// sectors (the window it was configured with).
pub fn within_window(sector: u64, sectors: u64, capacity: u64) -> bool {
    sector
        .checked_add(sectors)
        .is_some_and(|end| end <= capacity)
}

/// The backing file's byte position of a request for `sectors` sectors at `sector`, or `None`
/// when the request does not lie inside a device of `capacity` sectors or its position overflows
/// (an offset near the end of the range of `loff_t`).
pub fn file_position(sector: u64, sectors: u64, capacity: u64, offset: u64) -> Option<u64> {
    if !within_window(sector, sectors, capacity) {
        return None;
    }
    sector
        .checked_mul(u64::from(SECTOR_SIZE))?
        .checked_add(offset)
        .filter(|&pos| pos <= i64::MAX as u64)
}

/// Where a device is in its life (`Lo_*` in C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// No backing file.
    Unbound,
    /// A backing file serves I/O.
    Bound,
    /// Being detached on last close; no new opens.
    Rundown,
    /// Being removed; no new opens.
    Deleting,
}

impl Status {
    /// Whether the device may be opened (`lo_open()`).
    pub fn may_open(self) -> Result<(), i32> {
        match self {
            Self::Deleting | Self::Rundown => Err(errno::ENXIO),
            Self::Unbound | Self::Bound => Ok(()),
        }
    }

    /// Whether a backing file may be attached (`LOOP_SET_FD`, `LOOP_CONFIGURE`).
    pub fn may_attach(self) -> Result<(), i32> {
        match self {
            Self::Unbound => Ok(()),
            _ => Err(errno::EBUSY),
        }
    }

    /// Whether the device is bound, for the calls that need a backing file.
    pub fn bound(self) -> Result<(), i32> {
        match self {
            Self::Bound => Ok(()),
            _ => Err(errno::ENXIO),
        }
    }

    /// `LOOP_CLR_FD` by one of `openers`: the device is detached on its last close (the
    /// returned flags gain autoclear); with no other opener, nobody may open it any more.
    pub fn clear_fd(self, flags: u32, openers: u32) -> Result<(Self, u32), i32> {
        self.bound()?;
        let status = if openers == 1 {
            Self::Rundown
        } else {
            Self::Bound
        };
        Ok((status, flags | abi::FLAG_AUTOCLEAR))
    }

    /// The last close (`lo_release()`): a bound device with autoclear runs down. Returns the
    /// new status and whether the caller detaches the backing file now.
    pub fn last_close(self, flags: u32) -> (Self, bool) {
        let status = match self {
            Self::Bound if flags & abi::FLAG_AUTOCLEAR != 0 => Self::Rundown,
            s => s,
        };
        (status, status == Self::Rundown)
    }

    /// `LOOP_CTL_REMOVE`: only an unbound device that nobody has open may go.
    pub fn remove(self, openers: u32) -> Result<Self, i32> {
        if self != Self::Unbound || openers > 0 {
            return Err(errno::EBUSY);
        }
        Ok(Self::Deleting)
    }

    /// Whether `LOOP_CTL_GET_FREE` may hand the device out.
    pub fn is_free(self) -> bool {
        self == Self::Unbound
    }
}

/// Where `queue_rq` sends a request: tried inline, without waiting (`IOCB_NOWAIT`), or to the
/// device's worker, where waiting is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// A direct read or write, tried inline.
    Inline,
    /// Everything else: buffered I/O, flush, discard, write-zeroes, a write to a read-only
    /// device (failed there), and a request owed to the worker by an inline attempt that could
    /// not complete without waiting.
    Worker,
}

/// The path of a request: `inline_dio` the module's choice, `read_write` a read or write
/// request, `write` a write, `direct` the device's direct I/O, `read_only` the device's. (An
/// inline request the backing file refused to do without waiting is given back and then owed
/// to the worker; the driver pays that debt with the next request this sends inline.)
pub fn path(
    inline_dio: bool,
    read_write: bool,
    write: bool,
    direct: bool,
    read_only: bool,
) -> Path {
    if inline_dio && read_write && direct && !(write && read_only) {
        Path::Inline
    } else {
        Path::Worker
    }
}
