// SPDX-License-Identifier: GPL-2.0

//! The array behind a `rust44-raid5` table: its members, the engine that serves writes,
//! degraded reads and flushes, and the background resync and rebuild.
//!
//! Healthy reads go straight to their member as clones (see [`Array::map`]). Everything that
//! needs parity runs on one worker, the engine, in 4 KiB rows: a row is the page at the same
//! offset in every member's chunk of a stripe. One engine means no two writes ever update one
//! row's parity at the same time, so it needs no stripe locks; writes queued together are
//! grouped by row, so writes that together cover a whole row cost no reads. Rows are served a
//! window at a time: one batch of reads for all the window's rows, then one batch of writes,
//! during which the next window is read and computed (the rows of a group are distinct).

use crate::{
    journal::{self, Mode},
    layout::{Layout, MAX_MEMBERS},
    log::{self, Log},
    parity::{plan_write, Coverage, MemberSet, Strategy, WritePlan},
    superblock::{self, Assembled, Role, Superblock, NONE},
};
use kernel::{
    block::{
        bio::{
            Bdev, Bio, BioList, BioRecord, BioSet, Flight, FlightIo, FlightOwner, IoBatch,
            IoBuffer, IO_BUFFER_SIZE,
        },
        mq::ReqOp,
    },
    device_mapper::{DmDev, MapResult, TargetBio},
    new_mutex, new_spinlock_irq,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex, SpinLockIrq,
    },
    workqueue::{impl_has_work, new_work, OwnedQueue, QueueFlags, Work, WorkItem},
    xor::xor_into,
};

/// Sectors in a row's page.
const ROW_SECTORS: u64 = (IO_BUFFER_SIZE / 512) as u64;
/// Where the data starts on every member of a new array: 1 MiB, past the superblock, so data
/// is aligned for any chunk size.
pub(crate) const DATA_OFFSET: u64 = 2048;
/// Rows the background resync or rebuild does per run of the worker, between queued I/O.
const ROWS_PER_STEP: u64 = 512;
/// Pages in the engine's window at most: a page per member for each row served together, read
/// or written in one batch. Round trips, not CPU, bound 1 MiB writes: 64 pages kept them at half
/// md's speed.
const WINDOW_PAGES: usize = 256;
/// The most rows in a window (the per-row plans live in [`Scratch`]).
const MAX_WINDOW_ROWS: usize = 64;
// A batch's bios are tagged by member: a failure names the member.
const _: () = assert!(MAX_MEMBERS <= IoBatch::TAGS);
/// The resync and the rebuild move spans: up to 64 KiB of one chunk of each member, one bio per
/// member, several stripes per batch, within this many bytes of buffers per batch (two batches:
/// one is written while the next is read).
const SPAN_MAX: usize = 64 << 10;
const SPAN_BUFFERS_BYTES: usize = 1 << 20;
/// Writes served together (grouped by row).
const WRITES_PER_GROUP: usize = 128;
/// Writes a group takes at most, with those that join it while it is served (a unit names its
/// write in 16 bits).
const MAX_GROUP_WRITES: usize = 1024;
/// Row-pages (units) a group of writes holds at most: 64 MiB of data, 384 KiB of units. A stream
/// of large writes that keeps joining a group would otherwise grow its units past what the
/// allocator can give (1024 writes of 1 MiB: 6 MiB).
const MAX_GROUP_UNITS: usize = 16384;
/// Degraded reads served together (grouped by row).
const READS_PER_GROUP: usize = 128;
/// Groups of degraded reads in the air at once (random reads come a few per group: as many as
/// md keeps stripes in flight, nearly), the pages a group's flight reads at most (more is served a
/// window at a time), and the pages all flights read at most.
const MAX_FLIGHTS: usize = 64;
const FLIGHT_PAGES: usize = 512;
const FLIGHTS_PAGES: usize = 2048;

/// A bio queued for the engine (taken when it is answered) and what it will be answered.
type Queued = (Option<Bio>, Result);

/// One row-page of one write bio.
#[derive(Clone, Copy)]
struct Unit {
    stripe: u64,
    page: u32,
    member: u32,
    /// First sector within the page written, and one past the last.
    first: u8,
    end: u8,
    bio: u16,
    /// Byte offset of the unit's data in its bio.
    offset: u32,
}

/// One row-page of one read bio.
#[derive(Clone, Copy)]
struct ReadUnit {
    /// The row, as the member data sector of its first sector.
    row: u64,
    member: u32,
    /// First sector within the page read, and one past the last.
    first: u8,
    end: u8,
    bio: u16,
    /// Byte offset of the unit's data in its bio.
    offset: u32,
}

/// The worker's state: buffers (one per member), the window and the array's recorded state.
struct Engine {
    bufs: KVec<IoBuffer>,
    /// Two windows of [`window_rows`] rows of a page per member (one written while the next is
    /// prepared): row `i` uses pages `i * n..(i + 1) * n`.
    window: KVec<IoBuffer>,
    /// Per-row plans of a window, off the worker's stack.
    scratch: KBox<Scratch>,
    /// The I/O of the rows of a window being written (room for [`MAX_WINDOW_ROWS`]).
    in_flight: KVec<RowIo>,
    /// Degraded reads in the air, and whether all their I/O went out.
    flights: KVec<(Flight<ReadFlight>, Result)>,
    /// Pages for flights, kept from one to the next.
    spare_pages: KVec<IoBuffer>,
    /// Buffers of a span's length for two batches (halves), a multiple of `2 * n`: span `i` of a
    /// batch uses `i * n..` of its half.
    spans: KVec<IoBuffer>,
    meta: Assembled,
    /// The journal, when the table has one.
    log: Option<Log>,
    /// In write-back mode, the member writes of the last window answered, in the air while the
    /// engine goes on (at most one: the next waits for it).
    write_back: Option<Flight<WriteBack>>,
}

impl Engine {
    /// The pages that the flights in the air read into.
    fn pages_in_flight(&self) -> usize {
        self.flights.iter().map(|(f, _)| f.buffers()).sum()
    }
}

/// What the engine works out for each row of a window (or span of a background batch).
struct Scratch {
    io: [RowIo; MAX_WINDOW_ROWS],
    shape: [RowShape; MAX_WINDOW_ROWS],
    plans: [Option<WritePlan>; MAX_WINDOW_ROWS],
    /// The member a background span rebuilds.
    targets: [u32; MAX_WINDOW_ROWS],
}

impl Scratch {
    fn new() -> Result<KBox<Self>> {
        let scratch = KBox::init(
            init!(Self {
                io <- pin_init::init_array_from_fn(|_| RowIo::default()),
                shape <- pin_init::init_array_from_fn(|_| RowShape::default()),
                plans <- pin_init::init_array_from_fn(|_| None),
                targets <- pin_init::init_array_from_fn(|_| 0),
            }),
            GFP_KERNEL,
        )?;
        Ok(scratch)
    }
}

/// What a row's writes cover, where the row is, and its parity member.
#[derive(Clone, Copy, Default)]
struct RowShape {
    coverage: Coverage,
    /// The member data sector of the row.
    row: u64,
    parity: u32,
}

/// Rows in a window of an array of `n` members.
fn window_rows(n: usize) -> usize {
    (WINDOW_PAGES / n.max(1)).min(MAX_WINDOW_ROWS)
}

/// One row of a window: where it is on the members, and which members are read, then written.
#[derive(Clone, Copy, Default)]
struct RowIo {
    device_sector: u64,
    read: MemberSet,
    write: MemberSet,
}

/// Which of a window's member sets to transfer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transfer {
    Read,
    Write { fua: bool },
}

/// Counters shown by `dmsetup status`.
struct Counters {
    full_stripe: Atomic<u64>,
    read_modify_write: Atomic<u64>,
    reconstruct_write: Atomic<u64>,
    degraded_reads: Atomic<u64>,
}

/// A group of degraded reads in the air: the rows they need are read from the members into the
/// flight's pages (row `i` into pages `i * n..`) while the engine goes on; when the flight lands
/// the engine rebuilds what they read and answers them.
struct ReadFlight {
    array: Arc<Array>,
    reads: KVec<Queued>,
    /// Sorted by row: row `i` is `units[bounds[i]..bounds[i + 1]]`, read from `io[i].read`.
    units: KVVec<ReadUnit>,
    bounds: KVec<usize>,
    io: KVec<RowIo>,
}

impl FlightOwner for ReadFlight {
    fn bio_set(&self) -> &BioSet {
        &self.array.bio_set
    }

    fn device(&self, tag: u32) -> Option<&Bdev> {
        self.array.member(tag)
    }

    fn landed(&self) {
        Array::kick(&self.array);
    }
}

/// The member writes of a window answered in write-back mode (see [`Array::launch_write_back`]);
/// `Array::unwritten` holds its rows until it lands.
struct WriteBack {
    array: Arc<Array>,
}

impl FlightOwner for WriteBack {
    fn bio_set(&self) -> &BioSet {
        &self.array.bio_set
    }

    fn device(&self, tag: u32) -> Option<&Bdev> {
        self.array.member(tag)
    }

    fn landed(&self) {
        Array::kick(&self.array);
    }
}

#[pin_data]
pub(crate) struct Array {
    pub(crate) layout: Layout,
    /// The array's identity, as in every member's superblock.
    uuid: [u8; 16],
    /// The target's first sector in the mapped device.
    begin: u64,
    /// The members by slot; `None` for one listed as missing (`-`), failed from the start.
    pub(crate) members: KVec<Option<DmDev>>,
    /// The journal's device, when the table lists one.
    pub(crate) journal_dev: Option<DmDev>,
    /// When writes are answered ([`Mode`] as `mode_code` gives it).
    mode: Atomic<u32>,
    /// The journal failed a write: the array takes no more writes (it cannot close the write
    /// hole without it), and serves reads.
    journal_failed: Atomic<bool>,
    /// How full the journal is, in per cent.
    journal_fill: Atomic<u64>,
    /// Loaded over a live table of the array: the journal is read again on resume, once the
    /// old table has stopped writing it (its suspend leaves it empty, checkpointed).
    journal_taken_over: Atomic<bool>,
    /// Transactions replayed onto the members when the table was loaded.
    replayed: u64,
    /// Member data sectors `lo..hi` of rows answered in write-back mode and not yet written to
    /// the members: reads there wait for the engine (`lo >= hi`: none).
    #[pin]
    unwritten: SpinLockIrq<(u64, u64)>,
    #[pin]
    bio_set: BioSet,
    /// Members that failed: bit `m` for member `m`.
    failed: Atomic<u32>,
    /// The member being rebuilt (`u32::MAX`: none) and how far (member data sector).
    rebuilding: Atomic<u32>,
    rebuild_pos: Atomic<u64>,
    /// Parity is trusted below this member data sector (`NONE`: everywhere).
    resync_pos: Atomic<u64>,
    /// The recorded state must be written to the superblocks before more writes are answered.
    meta_dirty: Atomic<bool>,
    /// Background work runs only while the table is live.
    running: Atomic<bool>,
    counters: Counters,
    /// Bios for the engine; also filled from bio completions (interrupt context).
    #[pin]
    pending: SpinLockIrq<BioList>,
    #[pin]
    engine: Mutex<Engine>,
    #[pin]
    work: Work<Array>,
    wq: OwnedQueue,
}

impl_has_work! {
    impl HasWork<Self> for Array { self.work }
}

kernel::sync::global_lock! {
    // SAFETY: Initialised by `init_live_arrays` in the module's initialiser, before any table.
    unsafe(uninit) static LIVE: Mutex<KVec<[u8; 16]>> = KVec::new();
}

/// What the target keeps with a bio: where a read sent to a member stood, to serve it again
/// degraded if the member fails it.
pub(crate) type ReadRecord = Option<BioRecord>;

/// Sets up the registry of arrays with a table loaded.
pub(crate) fn init_live_arrays() {
    // SAFETY: Called once, from the module's initialiser, before any target can be built.
    unsafe { LIVE.init() };
}

/// The arrays (by UUID) that have a table loaded in this module, once per table. A new table
/// for one of them (`dmsetup reload`, e.g. to replace a failed member) finds it not stopped
/// cleanly because it is running, not because it crashed.
fn is_live(uuid: &[u8; 16]) -> bool {
    LIVE.lock().iter().any(|u| u == uuid)
}

/// The journal mode as [`Array::mode`] keeps it.
fn mode_code(mode: Mode) -> u32 {
    match mode {
        Mode::WriteThrough => 0,
        Mode::WriteBack => 1,
    }
}

/// What the journal's part of `dmsetup status` shows.
pub(crate) struct JournalStatus {
    pub(crate) mode: Mode,
    pub(crate) fill_percent: u64,
    pub(crate) replayed: u64,
    pub(crate) failed: bool,
}

/// What went wrong while building an array, for `dmsetup`.
pub(crate) struct Refused(pub(crate) Error, pub(crate) &'static CStr);

impl Array {
    /// Reads the members' superblocks, decides with [`superblock::assemble`] whether they make
    /// this array (or a new one), and records the decision on every usable member.
    pub(crate) fn assemble(
        members: KVec<Option<DmDev>>,
        journal_dev: Option<DmDev>,
        table: &crate::table::Table,
        begin: u64,
        len: u64,
    ) -> Result<Arc<Self>, Refused> {
        let n = members.len();
        let chunk_sectors = table.chunk_sectors;
        let nomem = |_| Refused(ENOMEM, c"out of memory");
        let nomem_e = |_: Error| Refused(ENOMEM, c"out of memory");
        let mut bufs = KVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?;
        for _ in 0..n {
            bufs.push(IoBuffer::new(GFP_KERNEL).map_err(nomem)?, GFP_KERNEL)
                .map_err(nomem)?;
        }
        let window_pages = 2 * window_rows(n) * n;
        let mut window = KVec::with_capacity(window_pages, GFP_KERNEL).map_err(nomem)?;
        for _ in 0..window_pages {
            window
                .push(IoBuffer::new(GFP_KERNEL).map_err(nomem)?, GFP_KERNEL)
                .map_err(nomem)?;
        }
        // The table's chunk size is checked (a power of two, at least a page) by now.
        let span = (chunk_sectors as usize * 512).min(SPAN_MAX);
        let scratch = Scratch::new().map_err(nomem_e)?;
        let in_flight = KVec::with_capacity(MAX_WINDOW_ROWS, GFP_KERNEL).map_err(nomem)?;
        let flights = KVec::with_capacity(MAX_FLIGHTS, GFP_KERNEL).map_err(nomem)?;
        // `max(1)`: no division by zero for the compiler to panic on (n >= 3 and span >= 4096).
        let span_sets = 2 * (SPAN_BUFFERS_BYTES / (span * n).max(1)).clamp(1, window_rows(n));
        let mut spans = KVec::with_capacity(span_sets * n, GFP_KERNEL).map_err(nomem)?;
        for _ in 0..span_sets * n {
            let buf = IoBuffer::with_len(span, GFP_KERNEL).map_err(nomem_e)?;
            spans.push(buf, GFP_KERNEL).map_err(nomem)?;
        }
        let bio_set = KBox::pin_init(BioSet::new(4), GFP_KERNEL)
            .map_err(|e| Refused(e, c"cannot allocate a bio set"))?;
        // Every member's superblock, read together.
        let (submitted, outcome) = IoBatch::run(&bio_set, |batch| -> Result {
            for (m, (dev, buf)) in (0u32..).zip(members.iter().zip(bufs.iter_mut())) {
                if let Some(dev) = dev {
                    batch.read(dev.bdev(), 0, buf, m)?;
                }
            }
            Ok(())
        })
        .map_err(nomem_e)?;
        if submitted.is_err() || outcome.result.is_err() {
            return Err(Refused(EIO, c"cannot read a member's superblock"));
        }
        let mut found = KVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?;
        let mut sizes = KVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?;
        for (dev, buf) in members.iter().zip(bufs.iter()) {
            let sb = <&[u8; superblock::SIZE]>::try_from(&buf[..superblock::SIZE])
                .map_err(|_| Refused(EINVAL, c"superblock buffer"))?;
            // A missing member reads as blank; assembly does not look at it.
            let probed = match dev {
                Some(_) => Superblock::probe(sb),
                None => Ok(None),
            };
            found.push(probed, GFP_KERNEL).map_err(nomem)?;
            sizes
                .push(dev.as_ref().map_or(0, |d| d.bdev().sectors()), GFP_KERNEL)
                .map_err(nomem)?;
        }
        let running = found
            .iter()
            .any(|sb| matches!(sb, Ok(Some(sb)) if is_live(&sb.uuid)));
        let decision = superblock::assemble(&superblock::AssemblyInput {
            members: n as u32,
            chunk_sectors,
            data_offset: DATA_OFFSET,
            superblocks: &found,
            device_sectors: &sizes,
            allow_dirty_degraded: running,
            missing: table.missing,
            journal: journal_dev.is_some(),
        })
        .map_err(|e| Refused(EINVAL, e.message()))?;
        let newest_journalled = found
            .iter()
            .filter_map(|sb| sb.as_ref().ok().and_then(|sb| sb.as_ref()))
            .max_by_key(|sb| sb.events)
            .is_some_and(|sb| sb.journal);
        let meta = match decision {
            superblock::Decision::Create(layout) => {
                let mut uuid = [0u8; 16];
                kernel::random::fill_bytes(&mut uuid);
                let mut roles = [Role::Absent; MAX_MEMBERS as usize];
                for r in roles.iter_mut().take(n) {
                    *r = Role::InSync;
                }
                pr_info!(
                    "rust44-raid5: new array of {} members, {} KiB chunks: {}\n",
                    n,
                    chunk_sectors / 2,
                    if table.nosync {
                        "no resync (nosync: the members hold consistent parity)"
                    } else {
                        "parity resync starts"
                    }
                );
                Assembled {
                    uuid,
                    layout,
                    events: 0,
                    clean: false,
                    journal: journal_dev.is_some(),
                    resync_from: if table.nosync { NONE } else { 0 },
                    rebuild_from: NONE,
                    roles,
                }
            }
            superblock::Decision::Assemble(mut a) => {
                // A table loaded over a running array (a reload) finds it not stopped cleanly
                // because it runs, not because it crashed: its parity is as good as the newest
                // superblock's resync checkpoint says, not to be resynced from the start.
                if running && !a.clean {
                    if let Some(newest) = found
                        .iter()
                        .filter_map(|sb| sb.as_ref().ok().and_then(|sb| sb.as_ref()))
                        .filter(|sb| sb.uuid == a.uuid)
                        .max_by_key(|sb| sb.events)
                    {
                        a.resync_from = newest.resync_checkpoint;
                    }
                }
                a
            }
        };
        let layout = meta.layout;
        let uuid = meta.uuid;
        if begin.checked_add(len).is_none() || len > layout.array_sectors() {
            return Err(Refused(
                EINVAL,
                c"the table is longer than the array the members hold",
            ));
        }
        let mut failed = 0u32;
        let mut rebuilding = u32::MAX;
        for (m, role) in (0u32..).zip(meta.roles.iter()) {
            match role {
                Role::Failed => failed |= 1 << m,
                Role::Rebuild => rebuilding = m,
                _ => {}
            }
        }
        let alive = MemberSet::first(layout.members()).minus(MemberSet(failed as u16));
        let mode = table.journal.map_or(Mode::WriteThrough, |(_, mode)| mode);
        let mut replayed = 0;
        let log = match &journal_dev {
            None => None,
            Some(dev) => {
                let jbdev = dev.bdev();
                let found = log::read_super(&bio_set, jbdev)
                    .map_err(|e| Refused(e, c"cannot read the journal's superblock"))?
                    .map_err(|e| Refused(EINVAL, e.message()))?;
                let log = match found {
                    Some(sb) if sb.uuid != uuid => {
                        return Err(Refused(EINVAL, journal::JournalError::Foreign.message()))
                    }
                    // A reload: the live table owns the journal until it is suspended (its
                    // engine may be writing it now); this one takes it over on resume.
                    Some(sb) if running => Log::new(sb).map_err(nomem_e)?,
                    Some(sb) => {
                        let (log, done) =
                            log::recover(&bio_set, jbdev, sb, &members, alive, &layout, mode)
                                .map_err(|e| Refused(e, c"cannot replay the journal"))?;
                        replayed = done;
                        log
                    }
                    None => {
                        // A journalled array that crashed with this journal blank: what the
                        // journal held is gone, and with it the promise that parity holds.
                        let lost = matches!(decision, superblock::Decision::Assemble(_))
                            && !meta.clean
                            && newest_journalled;
                        if lost {
                            return Err(Refused(
                                EINVAL,
                                c"the journal is blank but the array was not stopped cleanly with one",
                            ));
                        }
                        let sb = log::format(&bio_set, jbdev, uuid, mode)
                            .map_err(|e| Refused(e, c"cannot write the journal's superblock"))?
                            .map_err(|e| Refused(EINVAL, e.message()))?;
                        // Both copies written: a torn write of either leaves the other.
                        let mut log = Log::new(sb).map_err(nomem_e)?;
                        log.write_super(&bio_set, jbdev, mode)
                            .map_err(|e| Refused(e, c"cannot write the journal's superblock"))?;
                        log
                    }
                };
                Some(log)
            }
        };
        // It carries writes: a rescuer keeps it going under memory pressure, as dm's targets'
        // queues do.
        let flags = QueueFlags::UNBOUND | QueueFlags::MEM_RECLAIM;
        let wq = OwnedQueue::new(c"rust44-raid5", flags, 1)
            .map_err(|e| Refused(e, c"cannot allocate a workqueue"))?;
        let rebuild_pos = meta.rebuild_from;
        let resync_pos = meta.resync_from;
        let array = Arc::pin_init(
            try_pin_init!(Self {
                layout,
                uuid,
                begin,
                members,
                journal_dev,
                mode: Atomic::new(mode_code(mode)),
                journal_failed: Atomic::new(false),
                journal_fill: Atomic::new(0),
                journal_taken_over: Atomic::new(journal_dev.is_some() && running),
                replayed,
                unwritten <- new_spinlock_irq!((0, 0)),
                bio_set <- BioSet::new(64),
                failed: Atomic::new(failed),
                rebuilding: Atomic::new(rebuilding),
                rebuild_pos: Atomic::new(rebuild_pos),
                resync_pos: Atomic::new(resync_pos),
                meta_dirty: Atomic::new(false),
                running: Atomic::new(false),
                counters: Counters {
                    full_stripe: Atomic::new(0),
                    read_modify_write: Atomic::new(0),
                    reconstruct_write: Atomic::new(0),
                    degraded_reads: Atomic::new(0),
                },
                pending <- new_spinlock_irq!(BioList::new()),
                engine <- new_mutex!(Engine {
                    bufs,
                    window,
                    scratch,
                    in_flight,
                    flights,
                    spare_pages: KVec::new(),
                    spans,
                    meta,
                    log,
                    write_back: None,
                }),
                work <- new_work!("Array::work"),
                wq,
            }),
            GFP_KERNEL,
        )
        .map_err(|e| Refused(e, c"out of memory"))?;
        // Nothing was written before every check passed: a refused table changes no device.
        {
            let mut engine = array.engine.lock();
            engine.meta.clean = false;
            if let Err(e) = array.write_superblocks(&mut engine) {
                return Err(Refused(e, c"cannot write the superblocks"));
            }
        }
        LIVE.lock()
            .push(uuid, GFP_KERNEL)
            .map_err(|_| Refused(ENOMEM, c"out of memory"))?;
        Ok(array)
    }

    /// The block device of member `m`, unless it is missing.
    fn member(&self, m: u32) -> Option<&Bdev> {
        self.members
            .get(m as usize)
            .and_then(Option::as_ref)
            .map(|dev| dev.bdev())
    }

    /// When writes are answered.
    pub(crate) fn mode(&self) -> Mode {
        match self.mode.load(Relaxed) {
            0 => Mode::WriteThrough,
            _ => Mode::WriteBack,
        }
    }

    /// Changes when writes are answered (a journal is needed: `EINVAL` without one); the
    /// journal's superblock records it with its next checkpoint.
    pub(crate) fn set_mode(&self, mode: Mode) -> Result {
        if self.journal_dev.is_none() {
            return Err(EINVAL);
        }
        if self.mode.xchg(mode_code(mode), Relaxed) != mode_code(mode) {
            pr_info!("rust44-raid5: journal mode now {}\n", mode.as_str());
        }
        Ok(())
    }

    /// The journal's state, when the array has one.
    pub(crate) fn journal_status(&self) -> Option<JournalStatus> {
        self.journal_dev.as_ref()?;
        Some(JournalStatus {
            mode: self.mode(),
            fill_percent: self.journal_fill.load(Relaxed),
            replayed: self.replayed,
            failed: self.journal_failed.load(Relaxed),
        })
    }

    /// Whether a read of member data sectors `first..=last` must wait for the engine: rows
    /// there were answered in write-back mode and are not on the members yet.
    fn read_waits(&self, first: u64, last: u64) -> bool {
        if self.journal_dev.is_none() {
            return false;
        }
        let (lo, hi) = *self.unwritten.lock();
        first < hi && last >= lo
    }

    /// The members that cannot be read or written in the row at member data sector `row`:
    /// failed ones, and the member being rebuilt where the rebuild has not reached.
    fn unavailable(&self, row: u64) -> MemberSet {
        let mut set = MemberSet(self.failed.load(Relaxed) as u16);
        let r = self.rebuilding.load(Relaxed);
        if r != u32::MAX && row >= self.rebuild_pos.load(Relaxed) {
            set = set.with(r);
        }
        set
    }

    /// Marks `member` failed (from any context); the engine records it on the other members.
    pub(crate) fn fail_member(&self, member: u32, why: Error) {
        if member >= self.layout.members() {
            return;
        }
        let bit = 1u32 << member;
        let mut seen = self.failed.load(Relaxed);
        loop {
            if seen & bit != 0 {
                return;
            }
            match self.failed.cmpxchg(seen, seen | bit, Relaxed) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        self.meta_dirty.store(true, Relaxed);
        pr_err!(
            "rust44-raid5: member {} ({}) failed ({:?}): {}\n",
            member,
            self.members
                .get(member as usize)
                .and_then(Option::as_ref)
                .map_or(c"-", |d| d.name()),
            why,
            if (seen | bit).count_ones() > 1 {
                "two members lost, the array fails I/O"
            } else {
                "running degraded"
            }
        );
    }

    /// Health of each member for the status line.
    pub(crate) fn health(&self, out: &mut [crate::table::Health; MAX_MEMBERS as usize]) -> usize {
        let failed = self.failed.load(Relaxed);
        let r = self.rebuilding.load(Relaxed);
        let n = self.layout.members() as usize;
        for (m, h) in (0u32..).zip(out.iter_mut().take(n)) {
            *h = if failed & (1 << m) != 0 {
                crate::table::Health::Failed
            } else if m == r {
                crate::table::Health::Rebuilding
            } else {
                crate::table::Health::InSync
            };
        }
        n
    }

    /// Progress of the background work: done, total (member data sectors) and what runs.
    pub(crate) fn progress(&self) -> (u64, u64, crate::table::SyncAction) {
        use crate::table::SyncAction;
        let total = self.layout.member_data_sectors();
        if self.rebuilding.load(Relaxed) != u32::MAX {
            return (
                self.rebuild_pos.load(Relaxed).min(total),
                total,
                SyncAction::Recover,
            );
        }
        let resync = self.resync_pos.load(Relaxed);
        if resync != NONE {
            return (resync.min(total), total, SyncAction::Resync);
        }
        if self.failed.load(Relaxed) != 0 {
            return (total, total, SyncAction::Frozen);
        }
        (total, total, SyncAction::Idle)
    }

    /// `full_stripe`, `read_modify_write`, `reconstruct_write`, `degraded_reads`.
    pub(crate) fn counters(&self) -> [u64; 4] {
        let c = &self.counters;
        [
            c.full_stripe.load(Relaxed),
            c.read_modify_write.load(Relaxed),
            c.reconstruct_write.load(Relaxed),
            c.degraded_reads.load(Relaxed),
        ]
    }

    /// Maps a bio: healthy reads go to their member; everything else goes to the engine.
    pub(crate) fn map(this: &Arc<Self>, mut bio: TargetBio<ReadRecord>) -> MapResult {
        let Some(sector) = bio.sector().checked_sub(this.begin) else {
            return MapResult::Kill(bio.into_bio());
        };
        match bio.op() {
            ReqOp::Read => {
                let Some(at) = this.layout.locate(sector) else {
                    return MapResult::Kill(bio.into_bio());
                };
                // A member serves a read up to the end of its chunk; device-mapper maps the rest
                // as another bio.
                let in_chunk = this.layout.chunk_sectors() - at.chunk_offset;
                if bio.sectors() > in_chunk && bio.accept_partial(in_chunk).is_err() {
                    // The engine reads any span.
                    Self::queue(this, bio.into_bio());
                    return MapResult::Submitted;
                }
                // A rebuild moves forward: if the read's last sector is rebuilt, all of it is.
                let last = at.data_sector + u64::from(bio.sectors().max(1)) - 1;
                if this.unavailable(last).contains(at.member)
                    || this.read_waits(at.data_sector, last)
                {
                    Self::queue(this, bio.into_bio());
                    return MapResult::Submitted;
                }
                // Kept to read it again from the other members if the member fails it.
                let record = bio.record();
                *bio.per_bio() = Some(record);
                let Some(member) = this.member(at.member) else {
                    return MapResult::Kill(bio.into_bio());
                };
                MapResult::Remapped(bio.remap(member, at.device_sector))
            }
            ReqOp::Write | ReqOp::Flush => {
                Self::queue(this, bio.into_bio());
                MapResult::Submitted
            }
            // Discard and write-zeroes are not offered (their bio counts are 0).
            _ => MapResult::Kill(bio.into_bio()),
        }
    }

    /// A read remapped to a member failed there: the member is failed, and the engine reads
    /// the data from the others. `bio` is back where `map` found it.
    pub(crate) fn read_failed(this: &Arc<Self>, bio: Bio, why: Error) {
        let member = bio
            .sector()
            .checked_sub(this.begin)
            .and_then(|s| this.layout.locate(s))
            .map(|at| at.member);
        if let Some(m) = member {
            this.fail_member(m, why);
        }
        Self::queue(this, bio);
    }

    fn queue(this: &Arc<Self>, bio: Bio) {
        this.pending.lock().push(bio);
        Self::kick(this);
    }

    fn kick(this: &Arc<Self>) {
        // Already queued is fine: the worker takes every pending bio before it finishes.
        let _ = this.wq.enqueue(this.clone());
    }

    /// Lets the background resync or rebuild run (the table is live).
    pub(crate) fn start(this: &Arc<Self>) {
        this.running.store(true, Relaxed);
        Self::kick(this);
    }

    /// Forgets the array in the registry of loaded tables (the table goes).
    pub(crate) fn unload(&self) {
        let mut live = LIVE.lock();
        if let Some(i) = live.iter().position(|u| *u == self.uuid) {
            let _ = live.remove(i);
        }
    }

    /// Stops the background work and waits for the engine to be idle.
    pub(crate) fn stop(&self) {
        self.running.store(false, Relaxed);
        self.wq.flush();
        // Nothing of the array's in the air once stopped.
        self.land_write_back(&mut self.engine.lock());
    }

    /// Writes failures marked since the last update to the superblocks.
    pub(crate) fn record_failures(&self) {
        self.record_if_dirty(&mut self.engine.lock());
    }

    /// Writes the superblocks when the recorded state changed since they were written.
    fn record_if_dirty(&self, engine: &mut Engine) {
        if self.meta_dirty.load(Relaxed) {
            let _ = self.write_superblocks(engine);
        }
    }

    /// Records the array as stopped cleanly (no I/O in flight: after a suspend).
    pub(crate) fn mark_clean(&self, clean: bool) {
        let mut engine = self.engine.lock();
        if !clean && self.journal_taken_over.xchg(false, Relaxed) {
            self.take_over_journal(&mut engine);
        }
        self.land_write_back(&mut engine);
        // Stopped cleanly, the members hold everything: nothing to replay at the next load.
        if clean && !self.journal_failed.load(Relaxed) {
            if let Some(log) = engine.log.as_mut() {
                let _ = self.checkpoint(log);
            }
        }
        engine.meta.clean = clean;
        let _ = self.write_superblocks(&mut engine);
    }

    /// Reads the journal's superblock again, as the table this one replaced left it, and goes
    /// on from its checkpoint. What cannot be read fails the journal (read-only).
    fn take_over_journal(&self, engine: &mut Engine) {
        let Some(dev) = self.journal_dev.as_ref() else {
            return;
        };
        let sb = match log::read_super(&self.bio_set, dev.bdev()) {
            Ok(Ok(Some(sb))) if sb.uuid == self.uuid => sb,
            Ok(Err(_)) | Ok(Ok(_)) => return self.journal_lost(EINVAL),
            Err(e) => return self.journal_lost(e),
        };
        // The old table's suspend checkpointed it, unless that failed: then what it logged
        // after goes to the members now, as on a load after a crash.
        let alive = MemberSet::first(self.layout.members())
            .minus(MemberSet(self.failed.load(Relaxed) as u16));
        let taken = log::recover(
            &self.bio_set,
            dev.bdev(),
            sb,
            &self.members,
            alive,
            &self.layout,
            self.mode(),
        );
        match taken {
            Ok((log, _)) => {
                engine.log = Some(log);
                self.journal_fill.store(0, Relaxed);
            }
            Err(e) => self.journal_lost(e),
        }
    }

    /// Writes the recorded state, one event newer, to every member that can take it.
    fn write_superblocks(&self, engine: &mut Engine) -> Result {
        let failed = self.failed.load(Relaxed);
        let n = self.layout.members();
        for m in 0..n {
            if failed & (1 << m) != 0 {
                engine.meta.roles[m as usize] = Role::Failed;
            }
        }
        engine.meta.resync_from = self.resync_pos.load(Relaxed);
        let r = self.rebuilding.load(Relaxed);
        if r == u32::MAX {
            engine.meta.rebuild_from = NONE;
        } else {
            engine.meta.rebuild_from = self.rebuild_pos.load(Relaxed);
        }
        engine.meta.events += 1;
        let alive = MemberSet::first(n).minus(MemberSet(failed as u16));
        let Engine { bufs, meta, .. } = engine;
        for (m, buf) in (0u32..).zip(bufs.iter_mut()) {
            if alive.contains(m) {
                let sb = <&mut [u8; superblock::SIZE]>::try_from(&mut buf[..superblock::SIZE])
                    .map_err(|_| EINVAL)?;
                meta.superblock(m, meta.events, meta.clean).encode(sb);
            }
        }
        let row = RowIo {
            device_sector: 0,
            read: MemberSet::EMPTY,
            write: alive,
        };
        let lost = self.transfer(bufs, &[row], Transfer::Write { fua: true })?;
        self.meta_dirty.store(false, Relaxed);
        if lost.is_empty() {
            Ok(())
        } else {
            Err(EIO)
        }
    }

    /// Whether the array can still serve I/O (at most one member lost).
    fn alive(&self) -> bool {
        self.failed.load(Relaxed).count_ones() <= 1
    }

    fn serve(this: &Arc<Self>, engine: &mut Engine, mut list: BioList) {
        let mut writes = KVec::new();
        let mut reads = KVec::new();
        let mut write_units = 0;
        while let Some(bio) = list.pop() {
            let units = match bio.op() {
                ReqOp::Write => this.units_bound(&bio),
                _ => 0,
            };
            // Bios are grouped by kind while the kind stays the same; anything else is served
            // after the group queued before it, so a read sees every write queued before it.
            let group = match bio.op() {
                ReqOp::Write
                    if reads.is_empty()
                        && writes.len() < WRITES_PER_GROUP
                        && write_units + units <= MAX_GROUP_UNITS =>
                {
                    &mut writes
                }
                ReqOp::Read if writes.is_empty() && reads.len() < READS_PER_GROUP => &mut reads,
                op => {
                    Self::write_group(this, engine, &mut writes);
                    Self::read_group(this, engine, &mut reads);
                    write_units = 0;
                    match op {
                        ReqOp::Write => &mut writes,
                        ReqOp::Read => &mut reads,
                        _ => {
                            this.flush(engine, bio);
                            continue;
                        }
                    }
                }
            };
            write_units += units;
            if let Err((bio, e)) = push(group, bio) {
                bio.end(Err(e));
            }
        }
        Self::write_group(this, engine, &mut writes);
        Self::read_group(this, engine, &mut reads);
    }

    fn flush(&self, engine: &mut Engine, bio: Bio) {
        // The reads in the air were queued before the flush.
        self.land_all(engine);
        // With a journal, every write answered is stable in it already (its transactions are
        // FUA): a flush waits for nothing more.
        if engine.log.is_none() || self.journal_failed.load(Relaxed) {
            self.flush_members();
        }
        self.record_if_dirty(engine);
        bio.end(if self.alive() { Ok(()) } else { Err(EIO) });
    }

    /// Flushes the write caches of the members that are not failed.
    fn flush_members(&self) {
        let failed = self.failed.load(Relaxed);
        for m in 0..self.layout.members() {
            if failed & (1 << m) == 0 {
                if let Some(Err(e)) = self.member(m).map(|dev| dev.flush()) {
                    self.fail_member(m, e);
                }
            }
        }
    }

    /// Serves reads of members that cannot serve them (failed, or not rebuilt yet there): the
    /// pages they need are read from the other members, in a flight that the engine does not
    /// wait for (it answers the reads when the flight lands), or, when the group is too large
    /// for one or there is no memory for one, a window at a time.
    fn read_group(this: &Arc<Self>, engine: &mut Engine, reads: &mut KVec<Queued>) {
        if reads.is_empty() {
            return;
        }
        // Reads queued behind write-back rows find them on the members.
        this.land_write_back(engine);
        let mut units = KVVec::new();
        for (i, (bio, result)) in reads.iter_mut().enumerate() {
            let Some(bio) = bio else { continue };
            if let Err(e) = this.read_units_of(bio, i, &mut units) {
                *result = Err(e);
            }
        }
        units.sort_unstable_by_key(|u: &ReadUnit| u.row);
        let units = match Self::launch_reads(this, engine, reads, units) {
            Ok(()) => return,
            Err(units) => units,
        };
        let per_window = window_rows(this.members.len());
        let mut first = 0;
        while first < units.len() {
            // The window's rows: `units[bounds[i]..bounds[i + 1]]` is row `i`.
            let mut bounds = [first; MAX_WINDOW_ROWS + 1];
            let Engine {
                bufs,
                window,
                scratch,
                ..
            } = &mut *engine;
            let rows = this.read_rows_of(&units, first, per_window, |i, row, at| {
                scratch.io[i] = row;
                bounds[i + 1] = at;
            });
            let io = &scratch.io[..rows];
            let batch = this.transfer(window, io, Transfer::Read);
            let whole = matches!(batch, Ok(failed) if failed.is_empty());
            let bounds = &bounds[..=rows];
            this.answer_rows(bufs, window, io, &units, bounds, reads, whole);
            first = bounds[rows];
        }
        this.answer_all(engine, reads);
    }

    /// The rows of up to `limit` rows of `units` from `units[first]`: calls `row(i, io, end)`
    /// for each, with the members to read for it and the end of its units. Returns the number.
    fn read_rows_of(
        &self,
        units: &[ReadUnit],
        first: usize,
        limit: usize,
        mut row: impl FnMut(usize, RowIo, usize),
    ) -> usize {
        let all = MemberSet::first(self.layout.members());
        let mut rows = 0;
        let mut at = first;
        while rows < limit && at < units.len() {
            let r = units[at].row;
            let unavailable = self.unavailable(r);
            let mut read = MemberSet::EMPTY;
            while at < units.len() && units[at].row == r {
                let m = units[at].member;
                read = if unavailable.contains(m) {
                    all.minus(unavailable)
                } else {
                    read.with(m)
                };
                at += 1;
            }
            let io = RowIo {
                device_sector: self.layout.data_offset() + r,
                read,
                write: MemberSet::EMPTY,
            };
            row(rows, io, at);
            rows += 1;
        }
        rows
    }

    /// Puts the reads of a group (their units sorted by row) in the air. Gives the units back
    /// when they are too many for a flight or there is no memory for one: the caller serves
    /// them itself.
    fn launch_reads(
        this: &Arc<Self>,
        engine: &mut Engine,
        reads: &mut KVec<Queued>,
        units: KVVec<ReadUnit>,
    ) -> Result<(), KVVec<ReadUnit>> {
        let n = this.members.len();
        let rows = count_runs(&units, |u| u.row);
        if rows == 0 || rows * n > FLIGHT_PAGES {
            return Err(units);
        }
        while !engine.flights.is_empty()
            && (engine.flights.len() >= MAX_FLIGHTS
                || engine.pages_in_flight() + rows * n > FLIGHTS_PAGES)
        {
            this.land(engine, 0);
        }
        let Ok(mut bounds) = KVec::with_capacity(rows + 1, GFP_NOIO) else {
            return Err(units);
        };
        let Ok(mut io) = KVec::with_capacity(rows, GFP_NOIO) else {
            return Err(units);
        };
        let _ = bounds.push(0, GFP_NOIO);
        this.read_rows_of(&units, 0, rows, |_, row, end| {
            // Reserved above.
            let _ = io.push(row, GFP_NOIO);
            let _ = bounds.push(end, GFP_NOIO);
        });
        let mut pages = KVec::new();
        if pages.reserve(rows * n, GFP_NOIO).is_err() {
            return Err(units);
        }
        while pages.len() < rows * n {
            let page = match engine.spare_pages.pop() {
                Some(page) => page,
                None => match IoBuffer::new(GFP_NOIO) {
                    Ok(page) => page,
                    Err(_) => {
                        keep_pages(&mut engine.spare_pages, &mut pages);
                        return Err(units);
                    }
                },
            };
            // Reserved above.
            let _ = pages.push(page, GFP_NOIO);
        }
        let owner = ReadFlight {
            array: this.clone(),
            reads: KVec::new(),
            units: KVVec::new(),
            bounds: KVec::new(),
            io: KVec::new(),
        };
        let flight = Flight::new(owner, KVec::new(), GFP_NOIO).and_then(|flight| {
            engine
                .flights
                .push_within_capacity((flight, Ok(())))
                .map_err(|_| ENOMEM)
        });
        let Some((flight, launched)) = flight.ok().and_then(|()| engine.flights.last_mut()) else {
            keep_pages(&mut engine.spare_pages, &mut pages);
            return Err(units);
        };
        // Not launched yet: the parts are the engine's.
        if let Ok((owner, bufs)) = flight.parts_mut() {
            owner.reads = core::mem::take(reads);
            owner.units = units;
            owner.bounds = bounds;
            owner.io = io;
            *bufs = pages;
        }
        // The I/O not sent is read again page by page when the flight lands.
        *launched = flight.launch(|owner, send| {
            for (i, row) in owner.io.iter().enumerate() {
                for m in row.read.iter() {
                    send(FlightIo {
                        tag: m,
                        sector: row.device_sector,
                        buf: i * n + m as usize,
                        write: None,
                    })?;
                }
            }
            Ok(())
        });
        Ok(())
    }

    /// Answers the reads of every flight that has landed.
    fn land_landed(&self, engine: &mut Engine) {
        while let Some(i) = engine.flights.iter().position(|(f, _)| f.has_landed()) {
            self.land(engine, i);
        }
        if engine.write_back.as_ref().is_some_and(|f| f.has_landed()) {
            self.land_write_back(engine);
        }
    }

    /// Waits for every flight to land and answers its reads: before writes, a flush or the
    /// background work, which must not change the rows under them.
    fn land_all(&self, engine: &mut Engine) {
        while !engine.flights.is_empty() {
            self.land(engine, 0);
        }
    }

    /// Waits for the write-back member writes in the air, if any: the members hold their rows
    /// from then on (reads of them go straight to the members again).
    fn land_write_back(&self, engine: &mut Engine) {
        self.land_write_back_slot(&mut engine.write_back, &mut engine.spare_pages);
    }

    /// [`Array::land_write_back`] on the engine's parts.
    fn land_write_back_slot(
        &self,
        slot: &mut Option<Flight<WriteBack>>,
        spare: &mut KVec<IoBuffer>,
    ) {
        let Some(mut flight) = slot.take() else {
            return;
        };
        flight.wait();
        if let Some(o) = flight.outcome() {
            for m in 0..self.layout.members() {
                if o.failed & (1 << m) != 0 {
                    // The rows are in the journal and on the other members.
                    self.fail_member(m, EIO);
                }
            }
        }
        *self.unwritten.lock() = (0, 0);
        if let Ok((_, pages)) = flight.parts_mut() {
            keep_pages(spare, pages);
        }
    }

    /// Writes a window's rows answered in write-back mode to the members without waiting:
    /// row `i`'s pages (`pages[i * n..]`, those of `rows[i].write`) move to a flight, and spare
    /// pages take their place. Returns `false` (nothing sent, nothing moved) when there is no
    /// memory for it: the caller writes them and waits.
    fn launch_write_back(
        this: &Arc<Self>,
        spare: &mut KVec<IoBuffer>,
        slot: &mut Option<Flight<WriteBack>>,
        pages: &mut [IoBuffer],
        rows: &[RowIo],
    ) -> bool {
        let n = this.members.len();
        let wanted: usize = rows.iter().map(|r| r.write.len() as usize).sum();
        // Everything that can fail first: then the pages move.
        let Ok(mut ios) = KVec::<FlightIo>::with_capacity(wanted, GFP_NOIO) else {
            return false;
        };
        let Ok(mut fresh) = KVec::<IoBuffer>::with_capacity(wanted, GFP_NOIO) else {
            return false;
        };
        while fresh.len() < wanted {
            let Some(page) = spare.pop().or_else(|| IoBuffer::new(GFP_NOIO).ok()) else {
                keep_pages(spare, &mut fresh);
                return false;
            };
            // Reserved above.
            let _ = fresh.push_within_capacity(page);
        }
        let owner = WriteBack {
            array: this.clone(),
        };
        let Ok(mut flight) = Flight::new(owner, KVec::new(), GFP_NOIO) else {
            keep_pages(spare, &mut fresh);
            return false;
        };
        let Ok((_, bufs)) = flight.parts_mut() else {
            keep_pages(spare, &mut fresh);
            return false;
        };
        if bufs.reserve(wanted, GFP_NOIO).is_err() {
            keep_pages(spare, &mut fresh);
            return false;
        }
        for (i, row) in rows.iter().enumerate() {
            for m in row.write.iter() {
                let (Some(page), Some(new)) = (pages.get_mut(i * n + m as usize), fresh.pop())
                else {
                    continue;
                };
                let io = FlightIo {
                    tag: m,
                    sector: row.device_sector,
                    buf: bufs.len(),
                    write: Some(false),
                };
                // Both reserved above.
                let _ = bufs.push_within_capacity(core::mem::replace(page, new));
                let _ = ios.push_within_capacity(io);
            }
        }
        let sent = flight.launch(|_, send| ios.iter().try_for_each(|io| send(*io)));
        if sent.is_err() {
            // Some bios did not go out: once the others have landed, all of the rows are
            // written again, and waited for.
            flight.wait();
            if let Ok((_, bufs)) = flight.parts_mut() {
                this.write_pages(bufs, &ios);
            }
        }
        *slot = Some(flight);
        true
    }

    /// Writes each of `ios` (a page of `bufs` to a member) and waits; a member that fails them
    /// is failed.
    fn write_pages(&self, bufs: &[IoBuffer], ios: &[FlightIo]) {
        let sent = IoBatch::run(&self.bio_set, |batch| -> Result {
            for io in ios {
                let (Some(dev), Some(buf)) = (self.member(io.tag), bufs.get(io.buf)) else {
                    continue;
                };
                batch.write(dev, io.sector, buf, false, io.tag)?;
            }
            Ok(())
        });
        match sent {
            Ok((Ok(()), outcome)) => {
                for m in 0..self.layout.members() {
                    if outcome.failed & (1 << m) != 0 {
                        self.fail_member(m, EIO);
                    }
                }
            }
            Ok((Err(e), _)) | Err(e) => {
                for io in ios {
                    self.fail_member(io.tag, e);
                }
            }
        }
    }

    /// Waits for flight `i` to land, rebuilds what its reads need from what it read, and
    /// answers them.
    fn land(&self, engine: &mut Engine, i: usize) {
        let Ok((mut flight, launched)) = engine.flights.remove(i) else {
            return;
        };
        flight.wait();
        let outcome = flight.outcome();
        let whole =
            launched.is_ok() && matches!(outcome, Some(o) if o.failed == 0 && o.result.is_ok());
        if let Some(o) = outcome {
            for m in 0..self.layout.members() {
                if o.failed & (1 << m) != 0 {
                    self.fail_member(m, EIO);
                }
            }
        }
        // Landed: the parts are the engine's again.
        let Ok((owner, pages)) = flight.parts_mut() else {
            return;
        };
        let ReadFlight {
            reads,
            units,
            bounds,
            io,
            ..
        } = owner;
        self.answer_rows(&mut engine.bufs, pages, io, units, bounds, reads, whole);
        self.answer_all(engine, reads);
        keep_pages(&mut engine.spare_pages, pages);
    }

    /// Splits a read into its row-pages.
    fn read_units_of(&self, bio: &Bio, index: usize, units: &mut KVVec<ReadUnit>) -> Result {
        let start = bio.sector().checked_sub(self.begin).ok_or(EIO)?;
        let end = start + u64::from(bio.sectors());
        let mut at = start;
        while at < end {
            let to = ((at / ROW_SECTORS + 1) * ROW_SECTORS).min(end);
            let loc = self.layout.locate(at).ok_or(EIO)?;
            units.push(
                ReadUnit {
                    row: loc.data_sector - loc.data_sector % ROW_SECTORS,
                    member: loc.member,
                    first: (at % ROW_SECTORS) as u8,
                    end: (to - at + at % ROW_SECTORS) as u8,
                    bio: index as u16,
                    offset: ((at - start) * 512) as u32,
                },
                GFP_NOIO,
            )?;
            at = to;
        }
        Ok(())
    }

    /// Copies each unit of the rows read into `pages` (row `i`, read from the members of
    /// `rows[i].read`, is `units[bounds[i]..bounds[i + 1]]` in `pages[i * n..]`) into its read,
    /// rebuilding what is lost from parity. Unless the rows were read `whole` (every page, no
    /// error), each unit is read again on its own into `bufs`.
    #[expect(clippy::too_many_arguments)]
    fn answer_rows(
        &self,
        bufs: &mut [IoBuffer],
        pages: &mut [IoBuffer],
        rows: &[RowIo],
        units: &[ReadUnit],
        bounds: &[usize],
        reads: &mut KVec<Queued>,
        whole: bool,
    ) {
        let n = self.members.len();
        let all = MemberSet::first(self.layout.members());
        for (i, row) in rows.iter().enumerate() {
            let mut rebuilt = None;
            let (Some(&from), Some(&to)) = (bounds.get(i), bounds.get(i + 1)) else {
                break;
            };
            for u in units.get(from..to).unwrap_or(&[]) {
                let (first, end) = (usize::from(u.first) * 512, usize::from(u.end) * 512);
                let copied = match pages.get_mut(i * n..(i + 1) * n) {
                    Some(row_pages) if whole => {
                        let m = u.member;
                        // Rebuilt from parity only when every other member was read.
                        let ready = if row.read.contains(m) || rebuilt == Some(m) {
                            Ok(())
                        } else if row.read == all.without(m) {
                            rebuilt = Some(m);
                            self.counters.degraded_reads.fetch_add(1, Relaxed);
                            rebuild_into(row_pages, m, row.read)
                        } else {
                            Err(EIO)
                        };
                        ready.and_then(|()| {
                            let page = row_pages.get(m as usize).ok_or(EINVAL)?;
                            let bio = reads.get_mut(u.bio as usize).and_then(|(b, _)| b.as_mut());
                            let bio = bio.ok_or(EINVAL)?;
                            bio.copy_from_slice(u.offset as usize, &page[first..end])
                        })
                    }
                    _ => self.read_unit_page_by_page(bufs, u, reads),
                };
                if let Err(e) = copied {
                    if let Some((_, result)) = reads.get_mut(u.bio as usize) {
                        *result = Err(e);
                    }
                }
            }
        }
    }

    /// Serves one unit of a read on its own ([`Array::read_page`]).
    fn read_unit_page_by_page(
        &self,
        bufs: &mut [IoBuffer],
        u: &ReadUnit,
        reads: &mut KVec<Queued>,
    ) -> Result {
        let (from, to) = (usize::from(u.first) * 512, usize::from(u.end) * 512);
        let bio = reads.get_mut(u.bio as usize).and_then(|(b, _)| b.as_mut());
        let bio = bio.ok_or(EINVAL)?;
        let sector = bio.sector().checked_sub(self.begin).ok_or(EIO)? + u64::from(u.offset / 512);
        let member = self.read_page(bufs, sector)?;
        let page = bufs.get(member as usize).ok_or(EINVAL)?;
        bio.copy_from_slice(u.offset as usize, &page[from..to])
    }

    /// Reads the page holding array sector `sector` into the buffer of its member (`bufs` has
    /// one per member), rebuilding it from the other members when its own cannot be read.
    /// Returns the member.
    fn read_page(&self, bufs: &mut [IoBuffer], sector: u64) -> Result<u32> {
        let at = self.layout.locate(sector).ok_or(EIO)?;
        let row = at.data_sector - at.data_sector % ROW_SECTORS;
        let device_sector = self.layout.data_offset() + row;
        let m = at.member;
        for _ in 0..2 {
            let unavailable = self.unavailable(row);
            if !self.alive() {
                return Err(EIO);
            }
            let wanted = if unavailable.contains(m) {
                MemberSet::first(self.layout.members()).without(m)
            } else {
                MemberSet::single(m)
            };
            if !wanted.intersection(unavailable).is_empty() {
                return Err(EIO);
            }
            let row_io = RowIo {
                device_sector,
                read: wanted,
                write: MemberSet::EMPTY,
            };
            if !self.transfer(bufs, &[row_io], Transfer::Read)?.is_empty() {
                continue;
            }
            if unavailable.contains(m) {
                self.counters.degraded_reads.fetch_add(1, Relaxed);
                rebuild_into(bufs, m, wanted)?;
            }
            return Ok(m);
        }
        Err(EIO)
    }

    /// Reads (or writes) for each row `i` of `rows` the page of each member `m` of its `read`
    /// (`write`) set at its `device_sector`, into (from) `pages[i * n + m]`, all in one batch.
    /// Returns the members whose I/O failed (now marked failed).
    fn transfer(&self, pages: &mut [IoBuffer], rows: &[RowIo], how: Transfer) -> Result<MemberSet> {
        self.transfer_then(pages, rows, how, || ())
    }

    /// [`Array::transfer`], running `meanwhile` once the batch is on its way to the members.
    fn transfer_then(
        &self,
        pages: &mut [IoBuffer],
        rows: &[RowIo],
        how: Transfer,
        meanwhile: impl FnOnce(),
    ) -> Result<MemberSet> {
        let n = self.members.len();
        if rows.len() * n > pages.len() {
            return Err(EINVAL);
        }
        let (submitted, outcome) = IoBatch::run(&self.bio_set, |batch| -> Result {
            let submitted = 'submit: {
                for (row, row_pages) in rows.iter().zip(pages.chunks_mut(n)) {
                    let set = match how {
                        Transfer::Read => row.read,
                        Transfer::Write { .. } => row.write,
                    };
                    let members = self.members.iter().zip(row_pages.iter_mut());
                    for (m, (dev, page)) in (0u32..).zip(members) {
                        // A missing member is failed: in no set.
                        let Some(dev) = dev.as_ref().filter(|_| set.contains(m)) else {
                            continue;
                        };
                        // Tagged by member: the batch says which members failed.
                        let sent = match how {
                            Transfer::Read => batch.read(dev.bdev(), row.device_sector, page, m),
                            Transfer::Write { fua } => {
                                batch.write(dev.bdev(), row.device_sector, page, fua, m)
                            }
                        };
                        if let Err(e) = sent {
                            break 'submit Err(e);
                        }
                    }
                }
                Ok(())
            };
            batch.unplug();
            meanwhile();
            submitted
        })?;
        submitted?;
        let mut failed = MemberSet::EMPTY;
        for m in 0..self.layout.members() {
            if outcome.failed & (1 << m) != 0 {
                self.fail_member(m, EIO);
                failed = failed.with(m);
            }
        }
        Ok(failed)
    }

    /// Serves queued writes, grouped by row, then answers them. Windows are pipelined: while
    /// window `k`'s writes are in flight, window `k + 1` is planned, read and computed in the
    /// other half of the engine's window, unless it has a row of window `k`. Writes queued
    /// meanwhile join the group (while the queue's next bio is a write), so that the members are
    /// never idle while writers keep writing.
    fn write_group(this: &Arc<Self>, engine: &mut Engine, writes: &mut KVec<Queued>) {
        if writes.is_empty() {
            return;
        }
        // Without its journal the array cannot close the write hole: it takes no more writes.
        if this.journal_failed.load(Relaxed) {
            for (bio, _) in writes.drain_all() {
                if let Some(bio) = bio {
                    bio.end(Err(EIO));
                }
            }
            return;
        }
        // The reads in the air were queued before these writes: they read the rows as they are.
        this.land_all(engine);
        let mut units = KVVec::new();
        let mut fua = false;
        for (i, (bio, result)) in writes.iter_mut().enumerate() {
            let Some(bio) = bio else { continue };
            fua |= bio.is_fua();
            if let Err(e) = this.units_of(bio, i, &mut units) {
                *result = Err(e);
            }
        }
        units.sort_unstable_by_key(unit_order);
        // A write is answered as soon as the window holding its last unit is written, so that
        // its submitter can queue more while the rest of the group is served (without the room
        // to note where, at the end of the group).
        let mut answer_at = KVec::from_elem(0usize, writes.len(), GFP_NOIO).unwrap_or_default();
        note_answers(&mut answer_at, &units, 0);
        // With a journal the members need no FUA: the journal holds the rows stably first.
        let journalled = engine.log.is_some();
        let Engine {
            window,
            scratch,
            in_flight,
            log,
            write_back,
            spare_pages,
            ..
        } = engine;
        let n = this.members.len();
        let half = (window_rows(n) * n).min(window.len());
        let (mut cur, mut next) = window.split_at_mut(half);
        let mut bounds = [0; MAX_WINDOW_ROWS + 1];
        let mut next_bounds = [0; MAX_WINDOW_ROWS + 1];
        // The first window takes at most half the rows, so that some writes are answered while
        // the others are written.
        let limit = count_runs(&units, row_key).div_ceil(2);
        let mut rows = this.write_window(&units, 0, limit, &mut bounds);
        // The last group's write-back may still be writing some of these rows: their reads
        // must find them written.
        if rows > 0 && this.unwritten_in(&units, &bounds[..=rows]) {
            this.land_write_back_slot(write_back, spare_pages);
        }
        let mut prepared = match rows {
            0 => Ok(0),
            _ => this.prepare_rows(cur, scratch, &units, &bounds[..=rows], writes),
        };
        // Write-through with a journal: the window whose member writes are in the air, answered
        // when they land.
        let mut pending: Option<(usize, usize)> = None;
        while rows > 0 {
            let (first, end) = (bounds[0], bounds[rows]);
            let mut next_rows = None;
            let mut next_prepared = None;
            let written = prepared.and_then(|count| {
                // The rows' I/O, kept while the planning moves on to the next window.
                in_flight.clear();
                in_flight.extend_from_slice(scratch.io.get(..count).ok_or(EINVAL)?, GFP_NOIO)?;
                if let Some(log) = log.as_mut() {
                    // The last window's write-back went on meanwhile; the checkpoint a commit
                    // may take needs the members to hold it.
                    this.commit(log, cur, in_flight, || {
                        this.land_write_back_slot(write_back, spare_pages)
                    })?;
                    // The last window's member writes, in the air while this one was read and
                    // committed, land; in write-through their writes are answered now.
                    this.land_write_back_slot(write_back, spare_pages);
                    if let Some((f, e)) = pending.take() {
                        this.finish_window(&units, writes, &answer_at, f, e);
                    }
                    let write_back_mode =
                        this.mode() == Mode::WriteBack && !this.meta_dirty.load(Relaxed);
                    // Reads of these rows wait until the members hold them.
                    let lo = units.get(first).map_or(0, |u| this.row_of(u));
                    let hi = units
                        .get(end.wrapping_sub(1))
                        .map_or(u64::MAX, |u| this.row_of(u) + ROW_SECTORS);
                    *this.unwritten.lock() = (lo, hi);
                    if write_back_mode {
                        answer_window(&answer_at, writes, first, end);
                    }
                    // The members are written while the engine goes on with the next writes:
                    // their journal commit overlaps these rows' member writes.
                    if Self::launch_write_back(this, spare_pages, write_back, cur, in_flight) {
                        if !write_back_mode {
                            pending = Some((first, end));
                        }
                        let count = this.next_window(
                            writes,
                            &mut units,
                            &mut answer_at,
                            end,
                            &mut fua,
                            &mut next_bounds,
                        );
                        next_rows = Some(count);
                        let next_window = &next_bounds[..=count];
                        if count > 0 && this.shares_a_row(in_flight, &units, next_window) {
                            this.land_write_back_slot(write_back, spare_pages);
                        }
                        if count > 0 {
                            next_prepared =
                                Some(this.prepare_rows(next, scratch, &units, next_window, writes));
                        }
                        return Ok(());
                    }
                }
                // Bios not submitted (no memory) leave the rows as they were on their members
                // only if none went out; report the writes failed either way.
                let fua_members = fua && !journalled;
                this.transfer_then(cur, in_flight, Transfer::Write { fua: fua_members }, || {
                    let count = this.next_window(
                        writes,
                        &mut units,
                        &mut answer_at,
                        end,
                        &mut fua,
                        &mut next_bounds,
                    );
                    next_rows = Some(count);
                    let next_window = &next_bounds[..=count];
                    if count > 0 && !this.shares_a_row(in_flight, &units, next_window) {
                        next_prepared =
                            Some(this.prepare_rows(next, scratch, &units, next_window, writes));
                    }
                })?;
                // A member lost while writing leaves the rows readable through the others,
                // unless it was the second one.
                if this.alive() {
                    Ok(())
                } else {
                    Err(EIO)
                }
            });
            // The window was not written, failed before its I/O went out, or the next one has
            // one of its rows: the next one is planned now.
            if journalled && write_back.is_none() {
                *this.unwritten.lock() = (0, 0);
            }
            let next_rows = next_rows.unwrap_or_else(|| {
                this.next_window(
                    writes,
                    &mut units,
                    &mut answer_at,
                    end,
                    &mut fua,
                    &mut next_bounds,
                )
            });
            if next_prepared.is_none() && next_rows > 0 {
                let next_window = &next_bounds[..=next_rows];
                next_prepared = Some(this.prepare_rows(next, scratch, &units, next_window, writes));
            }
            if let Err(e) = written {
                for u in &units[first..end] {
                    writes[u.bio as usize].1 = Err(e);
                }
            }
            // A failure met on the way must be on the other members before a write is answered:
            // while it is not, the group's writes wait for the end of the group.
            if !this.meta_dirty.load(Relaxed) && pending != Some((first, end)) {
                answer_window(&answer_at, writes, first, end);
            }
            rows = next_rows;
            bounds = next_bounds;
            prepared = next_prepared.unwrap_or(Ok(0));
            core::mem::swap(&mut cur, &mut next);
        }
        if let Some((f, e)) = pending {
            this.land_write_back_slot(write_back, spare_pages);
            this.finish_window(&units, writes, &answer_at, f, e);
        }
        this.answer_all(engine, writes);
    }

    /// The group's next window, from `units[end]` on, once the writes queued meanwhile have
    /// joined (see [`Array::pull_writes`]; `fua` notes whether one asks for FUA): its bounds in
    /// `bounds`, and its number of rows.
    fn next_window(
        &self,
        writes: &mut KVec<Queued>,
        units: &mut KVVec<Unit>,
        answer_at: &mut KVec<usize>,
        end: usize,
        fua: &mut bool,
        bounds: &mut [usize; MAX_WINDOW_ROWS + 1],
    ) -> usize {
        *fua |= self.pull_writes(writes, units, answer_at, end);
        self.write_window(units, end, usize::MAX, bounds)
    }

    /// Answers the writes of a window written through a flight that has landed: with `EIO`
    /// when the array lost a second member meanwhile.
    fn finish_window(
        &self,
        units: &[Unit],
        writes: &mut [Queued],
        answer_at: &[usize],
        first: usize,
        end: usize,
    ) {
        if !self.alive() {
            for u in units.get(first..end).unwrap_or(&[]) {
                if let Some(w) = writes.get_mut(u.bio as usize) {
                    w.1 = Err(EIO);
                }
            }
        }
        if !self.meta_dirty.load(Relaxed) {
            answer_window(answer_at, writes, first, end);
        }
    }

    /// Journals the rows of a window before the members see them: row `i`'s pages are
    /// `pages[i * n..]`, those of `rows[i].write` written. One or two transactions (as many as
    /// the rows need), FUA, waited for. When the journal fails them the array takes no more
    /// writes: these rows are not written to the members, and their writes fail.
    fn commit(
        &self,
        log: &mut Log,
        pages: &[IoBuffer],
        rows: &[RowIo],
        before_checkpoint: impl FnOnce(),
    ) -> Result {
        let n = self.members.len();
        let dev = self.journal_dev.as_ref().ok_or(EINVAL)?.bdev();
        // Rows `spans[t].0..spans[t].1` go in transaction `t`.
        let mut spans = [(0usize, 0usize); log::MAX_TXNS];
        let (mut count, mut from, mut entries) = (0, 0, 0);
        for (i, row) in rows.iter().enumerate() {
            let k = row.write.len() as usize;
            if entries + k > journal::MAX_ENTRIES {
                *spans.get_mut(count).ok_or(EINVAL)? = (from, i);
                (count, from, entries) = (count + 1, i, 0);
            }
            entries += k;
        }
        if entries > 0 {
            *spans.get_mut(count).ok_or(EINVAL)? = (from, rows.len());
            count += 1;
        }
        let needed: u64 = spans[..count]
            .iter()
            .map(|&(a, b)| {
                1 + rows[a..b]
                    .iter()
                    .map(|r| u64::from(r.write.len()))
                    .sum::<u64>()
            })
            .sum();
        // Room is made by a checkpoint: the members hold every row logged so far (the engine
        // wrote them before this window), so once flushed the log may go. Writers wait for it.
        if log.ring.free() < needed || log.ring.fill_percent() >= 75 {
            before_checkpoint();
            self.checkpoint(log)?;
        }
        let parity_of_row = |row: &RowIo| {
            self.layout.parity_member(
                row.device_sector.saturating_sub(self.layout.data_offset())
                    / u64::from(self.layout.chunk_sectors()),
            )
        };
        let mut at = [journal::LogPosition { index: 0, seq: 0 }; log::MAX_TXNS];
        for (t, &(a, b)) in spans[..count].iter().enumerate() {
            log.entries.clear();
            for (i, row) in rows.iter().enumerate().take(b).skip(a) {
                let parity = parity_of_row(row);
                for m in row.write.iter() {
                    let page = pages.get(i * n + m as usize).ok_or(EINVAL)?;
                    log.entries.push(
                        journal::Entry {
                            sector: row.device_sector,
                            member: m as u16,
                            flags: if m == parity {
                                journal::ENTRY_PARITY
                            } else {
                                0
                            },
                            crc: log::block_crc(page),
                        },
                        GFP_NOIO,
                    )?;
                }
            }
            at[t] = log.ring.append(log.entries.len()).ok_or(ENOSPC)?;
            let meta = log::block_of_mut(log.metas.get_mut(t).ok_or(EINVAL)?)?;
            journal::encode_txn(meta, &self.uuid, at[t], &log.entries).ok_or(EINVAL)?;
        }
        let log_blocks = log.ring.log_blocks;
        let metas = &log.metas;
        let (submitted, outcome) = IoBatch::run(&self.bio_set, |batch| -> Result {
            for (t, &(a, b)) in spans[..count].iter().enumerate() {
                let mut bufs = KVec::with_capacity(1 + journal::MAX_ENTRIES, GFP_NOIO)?;
                bufs.push(metas.get(t).ok_or(EINVAL)?, GFP_NOIO)?;
                for (i, row) in rows.iter().enumerate().take(b).skip(a) {
                    for m in row.write.iter() {
                        bufs.push(pages.get(i * n + m as usize).ok_or(EINVAL)?, GFP_NOIO)?;
                    }
                }
                // The ring wraps: one bio up to its end, one from its start.
                let index = at[t].index;
                let split = ((log_blocks - index) as usize).min(bufs.len());
                let (head, tail) = bufs.split_at(split);
                batch.write_gather(
                    dev,
                    journal::log_sector(index),
                    head.iter().copied(),
                    true,
                    0,
                )?;
                if !tail.is_empty() {
                    batch.write_gather(
                        dev,
                        journal::log_sector(0),
                        tail.iter().copied(),
                        true,
                        0,
                    )?;
                }
            }
            Ok(())
        })?;
        self.journal_fill.store(log.ring.fill_percent(), Relaxed);
        if let Err(e) = submitted.and(outcome.result) {
            self.journal_lost(e);
            return Err(EIO);
        }
        Ok(())
    }

    /// Moves the journal's checkpoint to its head: the members hold every row it logged, once
    /// their caches are flushed.
    fn checkpoint(&self, log: &mut Log) -> Result {
        let dev = self.journal_dev.as_ref().ok_or(EINVAL)?.bdev();
        self.flush_members();
        if !self.alive() {
            return Err(EIO);
        }
        let mut moved = log.ring;
        moved.checkpoint();
        let kept = core::mem::replace(&mut log.ring, moved);
        if let Err(e) = log.write_super(&self.bio_set, dev, self.mode()) {
            log.ring = kept;
            self.journal_lost(e);
            return Err(EIO);
        }
        self.journal_fill.store(0, Relaxed);
        Ok(())
    }

    /// The journal failed: the array takes no more writes.
    fn journal_lost(&self, why: Error) {
        if !self.journal_failed.xchg(true, Relaxed) {
            pr_err!(
                "rust44-raid5: journal device {} failed ({:?}): the array is read-only from now on (writes fail with EIO) so that a crash cannot open the write hole\n",
                self.journal_dev.as_ref().map_or(c"-", |d| d.name()),
                why
            );
        }
    }

    /// Answers every bio still in `queued`, once the failures met on the way are on the other
    /// members' superblocks.
    fn answer_all(&self, engine: &mut Engine, queued: &mut KVec<Queued>) {
        self.record_if_dirty(engine);
        for (bio, result) in queued.drain_all() {
            if let Some(bio) = bio {
                bio.end(result);
            }
        }
    }

    /// Writes queued since the group began join it, while the queue's next bio is a write (a
    /// read or flush queued after a write is served after it): their units are sorted into
    /// `units[from..]`, the units not in a window yet. Returns whether one asks for FUA.
    fn pull_writes(
        &self,
        writes: &mut KVec<Queued>,
        units: &mut KVVec<Unit>,
        answer_at: &mut KVec<usize>,
        from: usize,
    ) -> bool {
        let mut fua = false;
        let mut pulled = false;
        while writes.len() < MAX_GROUP_WRITES {
            // Taken only with room for its units: the allocation (which may sleep) is made
            // outside the queue's lock, and a write is never failed for want of it.
            let mut wanted = 0;
            let next = self.pending.lock().pop_if(|bio| {
                wanted = match bio.op() {
                    ReqOp::Write => self.units_bound(bio),
                    _ => 0,
                };
                wanted > 0
                    && units.len() + wanted <= MAX_GROUP_UNITS
                    && units.capacity() - units.len() >= wanted
            });
            let Some(bio) = next else {
                if wanted == 0
                    || units.len() + wanted > MAX_GROUP_UNITS
                    || units.reserve(wanted, GFP_NOIO).is_err()
                {
                    break;
                }
                continue;
            };
            let (index, had) = (writes.len(), units.len());
            fua |= bio.is_fua();
            let split = self.units_of(&bio, index, units);
            if let Err((bio, e)) = push(writes, bio) {
                units.truncate(had);
                bio.end(Err(e));
                continue;
            }
            if let Err(e) = split {
                // Answered, with the error, at the end of the group.
                units.truncate(had);
                writes[index].1 = Err(e);
            }
            // Without the room, the write is answered at the end of the group.
            if answer_at.len() == index {
                let _ = answer_at.push(0, GFP_NOIO);
            }
            pulled = true;
        }
        if pulled {
            if let Some(tail) = units.get_mut(from..) {
                tail.sort_unstable_by_key(unit_order);
            }
            note_answers(answer_at, units, from);
        }
        fua
    }

    /// Whether a row of the window `bounds` (of `units`) is one of the rows of `in_flight`.
    fn shares_a_row(&self, in_flight: &[RowIo], units: &[Unit], bounds: &[usize]) -> bool {
        bounds
            .iter()
            .take(bounds.len().saturating_sub(1))
            .any(|&at| {
                units.get(at).is_some_and(|u| {
                    let sector = self.layout.data_offset() + self.row_of(u);
                    in_flight.iter().any(|r| r.device_sector == sector)
                })
            })
    }

    /// Whether a row of the window `bounds` (of `units`) is among the rows answered and not on
    /// the members yet.
    fn unwritten_in(&self, units: &[Unit], bounds: &[usize]) -> bool {
        let (lo, hi) = *self.unwritten.lock();
        bounds
            .iter()
            .take(bounds.len().saturating_sub(1))
            .any(|&at| {
                units
                    .get(at)
                    .is_some_and(|u| (lo..hi).contains(&self.row_of(u)))
            })
    }

    /// The member data sector of a unit's row.
    fn row_of(&self, u: &Unit) -> u64 {
        u.stripe * u64::from(self.layout.chunk_sectors()) + u64::from(u.page) * ROW_SECTORS
    }

    /// The window of at most `limit` rows that starts at `units[first]`: row `i` is
    /// `units[bounds[i]..bounds[i + 1]]`. Returns the number of rows (0 at the end of `units`).
    fn write_window(
        &self,
        units: &[Unit],
        first: usize,
        limit: usize,
        bounds: &mut [usize; MAX_WINDOW_ROWS + 1],
    ) -> usize {
        let per_window = window_rows(self.members.len()).min(limit);
        bounds[0] = first;
        let (mut rows, mut at) = (0, first);
        while rows < per_window && at < units.len() {
            let key = row_key(&units[at]);
            while at < units.len() && row_key(&units[at]) == key {
                at += 1;
            }
            rows += 1;
            bounds[rows] = at;
        }
        rows
    }

    /// At least the number of row-pages ([`Array::units_of`]) of a write: each chunk it touches
    /// (at most one per `chunk` sectors, and two more at its ends) adds at most two partial
    /// pages to its whole ones.
    fn units_bound(&self, bio: &Bio) -> usize {
        let sectors = bio.sectors() as usize;
        let chunk = (self.layout.chunk_sectors() as usize).max(1);
        sectors / ROW_SECTORS as usize + 2 * (sectors / chunk + 2)
    }

    /// Splits a write into its row-pages.
    fn units_of(&self, bio: &Bio, index: usize, units: &mut KVVec<Unit>) -> Result {
        let start = bio.sector().checked_sub(self.begin).ok_or(EIO)?;
        let pieces = self
            .layout
            .pieces(start, u64::from(bio.sectors()))
            .ok_or(EIO)?;
        let mut offset = 0u32;
        for piece in pieces {
            let mut chunk_at = u64::from(piece.location.chunk_offset);
            let chunk_end = chunk_at + u64::from(piece.sectors);
            while chunk_at < chunk_end {
                let page_end = (chunk_at / ROW_SECTORS + 1) * ROW_SECTORS;
                let to = page_end.min(chunk_end);
                units.push(
                    Unit {
                        stripe: piece.location.stripe,
                        page: (chunk_at / ROW_SECTORS) as u32,
                        member: piece.location.member,
                        first: (chunk_at % ROW_SECTORS) as u8,
                        end: (to - (page_end - ROW_SECTORS)) as u8,
                        bio: index as u16,
                        offset,
                    },
                    GFP_NOIO,
                )?;
                offset += ((to - chunk_at) * 512) as u32;
                chunk_at = to;
            }
        }
        Ok(())
    }

    /// Prepares a window of rows (row `i` is `units[bounds[i]..bounds[i + 1]]`) for writing:
    /// plans each, reads what the plans need in one batch, merges the new data and computes
    /// parity into `window`, leaving each row's I/O in `scratch.io`. Returns the number of rows.
    fn prepare_rows(
        &self,
        window: &mut [IoBuffer],
        scratch: &mut Scratch,
        units: &[Unit],
        bounds: &[usize],
        writes: &[Queued],
    ) -> Result<usize> {
        let n = self.layout.members();
        let count = bounds.len().saturating_sub(1);
        let Scratch {
            io, shape, plans, ..
        } = scratch;
        if count > MAX_WINDOW_ROWS || count * n as usize > window.len() {
            return Err(EINVAL);
        }
        let row_units = |i: usize| &units[bounds[i]..bounds[i + 1]];
        for (i, slot) in shape.iter_mut().take(count).enumerate() {
            let first = row_units(i).first().ok_or(EINVAL)?;
            let row = self.row_of(first);
            let mut masks = [0u8; MAX_MEMBERS as usize];
            for u in row_units(i) {
                for s in u.first..u.end {
                    masks[u.member as usize] |= 1 << s;
                }
            }
            let mut coverage = Coverage::default();
            for (m, &mask) in (0u32..).zip(masks.iter()) {
                if mask == 0xff {
                    coverage.full = coverage.full.with(m);
                } else if mask != 0 {
                    coverage.partial = coverage.partial.with(m);
                }
            }
            *slot = RowShape {
                coverage,
                row,
                parity: self.layout.parity_member(first.stripe),
            };
        }
        for _ in 0..3 {
            for i in 0..count {
                let RowShape {
                    coverage,
                    row,
                    parity,
                } = shape[i];
                let unavailable = self.unavailable(row);
                let trusted = row < self.resync_pos.load(Relaxed);
                let plan =
                    plan_write(n, parity, coverage, unavailable, trusted).map_err(|_| EIO)?;
                io[i] = RowIo {
                    device_sector: self.layout.data_offset() + row,
                    read: plan.read.union(coverage.partial.minus(unavailable)),
                    write: plan.write,
                };
                plans[i] = Some(plan);
            }
            if !self
                .transfer(window, &io[..count], Transfer::Read)?
                .is_empty()
            {
                // A member failed under us: plan again without it.
                continue;
            }
            for (i, bufs) in window.chunks_mut(n as usize).take(count).enumerate() {
                let plan = plans[i].ok_or(EINVAL)?;
                let RowShape {
                    coverage, parity, ..
                } = shape[i];
                let units = row_units(i);
                if let Some(lost) = plan.rebuild {
                    rebuild_into(bufs, lost, io[i].read)?;
                }
                match plan.strategy {
                    Strategy::ReadModifyWrite => {
                        self.counters.read_modify_write.fetch_add(1, Relaxed);
                        for d in coverage.written().iter() {
                            let (p, data) = pair(bufs, parity, d)?;
                            xor_into(p, &[&data[..]])?;
                            merge(data, d, units, writes)?;
                            xor_into(p, &[&data[..]])?;
                        }
                    }
                    Strategy::ReconstructWrite | Strategy::FullStripe => {
                        if plan.strategy == Strategy::FullStripe {
                            self.counters.full_stripe.fetch_add(1, Relaxed);
                        } else {
                            self.counters.reconstruct_write.fetch_add(1, Relaxed);
                        }
                        for d in coverage.written().iter() {
                            merge(&mut bufs[d as usize], d, units, writes)?;
                        }
                        parity_of(bufs, parity)?;
                    }
                    Strategy::DataOnly => {
                        for d in coverage.written().iter() {
                            merge(&mut bufs[d as usize], d, units, writes)?;
                        }
                    }
                }
            }
            return Ok(count);
        }
        Err(EIO)
    }

    /// Reads the spans of the next background batch (from member data sector `row`, up to
    /// `end`, as many as `bufs` holds) and rebuilds each one's target (the member being rebuilt,
    /// or the stripe's parity), leaving the batch's I/O in `scratch.io`. Returns the number of
    /// spans; fails when a member fails the reads.
    fn prepare_spans(
        &self,
        bufs: &mut [IoBuffer],
        scratch: &mut Scratch,
        row: u64,
        end: u64,
        span: u64,
        rebuild: Option<u32>,
    ) -> Result<usize> {
        let n = self.members.len();
        let all = MemberSet::first(self.layout.members());
        let sets = (bufs.len() / n).min(MAX_WINDOW_ROWS);
        let Scratch { io, targets, .. } = scratch;
        let mut count = 0;
        while count < sets && row + count as u64 * span < end {
            let at = row + count as u64 * span;
            let stripe = at >> self.layout.chunk_sectors().trailing_zeros();
            let target = rebuild.unwrap_or_else(|| self.layout.parity_member(stripe));
            io[count] = RowIo {
                device_sector: self.layout.data_offset() + at,
                read: all.without(target),
                write: MemberSet::single(target),
            };
            targets[count] = target;
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        if !self
            .transfer(bufs, &io[..count], Transfer::Read)?
            .is_empty()
        {
            return Err(EIO);
        }
        for (i, set) in bufs.chunks_mut(n).take(count).enumerate() {
            rebuild_into(set, targets[i], io[i].read)?;
        }
        Ok(count)
    }

    /// One step of the background work: resync parity, or rebuild a member.
    fn background(&self, engine: &mut Engine) -> bool {
        let total = self.layout.member_data_sectors();
        let r = self.rebuilding.load(Relaxed);
        let resync = self.resync_pos.load(Relaxed);
        let (pos, rebuild) = if r != u32::MAX && self.failed.load(Relaxed) == 0 {
            (self.rebuild_pos.load(Relaxed), Some(r))
        } else if resync != NONE && self.failed.load(Relaxed) == 0 {
            (resync, None)
        } else {
            return false;
        };
        let n = self.members.len();
        let span = (engine.spans.first().map_or(0, |b| b.len()) / 512) as u64;
        if span == 0 {
            return false;
        }
        // Spans never cross a chunk (the chunk is a multiple of the span): a checkpoint off a
        // span's start (an older module's) is taken back to it; redoing a few rows is harmless.
        let mut row = pos - pos % span;
        let end = total.min(pos.saturating_add(ROWS_PER_STEP * ROW_SECTORS));
        let Engine {
            spans,
            scratch,
            in_flight,
            ..
        } = &mut *engine;
        // Two halves: one batch is written while the next is read and rebuilt.
        let half = (spans.len() / n / 2).min(MAX_WINDOW_ROWS) * n;
        let (mut cur, mut next) = spans.split_at_mut(half);
        let mut prepared = self.prepare_spans(cur, scratch, row, end, span, rebuild);
        loop {
            let count = match prepared {
                Ok(0) => break,
                Ok(count) => count,
                Err(_) => return false,
            };
            in_flight.clear();
            if in_flight
                .extend_from_slice(&scratch.io[..count], GFP_NOIO)
                .is_err()
            {
                return false;
            }
            let next_row = row + count as u64 * span;
            let mut next_prepared = None;
            let written =
                self.transfer_then(cur, in_flight, Transfer::Write { fua: false }, || {
                    next_prepared =
                        Some(self.prepare_spans(next, scratch, next_row, end, span, rebuild));
                });
            match written {
                Ok(lost) if lost.is_empty() => {}
                _ => return false,
            }
            row = next_row;
            prepared = next_prepared.unwrap_or(Ok(0));
            core::mem::swap(&mut cur, &mut next);
        }
        let row = row.min(total);
        let done = row >= total;
        match rebuild {
            Some(r) => {
                self.rebuild_pos
                    .store(if done { NONE } else { row }, Relaxed);
                if done {
                    engine.meta.roles[r as usize] = Role::InSync;
                    self.rebuilding.store(u32::MAX, Relaxed);
                    pr_info!("rust44-raid5: member {} rebuilt\n", r);
                    self.meta_dirty.store(true, Relaxed);
                }
            }
            None => {
                self.resync_pos
                    .store(if done { NONE } else { row }, Relaxed);
                if done {
                    pr_info!("rust44-raid5: parity resync done\n");
                    self.meta_dirty.store(true, Relaxed);
                }
            }
        }
        self.record_if_dirty(engine);
        // A finished rebuild may leave a resync to do.
        !done || self.resync_pos.load(Relaxed) != NONE
    }
}

fn push(writes: &mut KVec<Queued>, bio: Bio) -> Result<(), (Bio, Error)> {
    if writes.reserve(1, GFP_NOIO).is_err() {
        return Err((bio, ENOMEM));
    }
    // Reserved above.
    match writes.push_within_capacity((Some(bio), Ok(()))) {
        Ok(()) => Ok(()),
        Err(e) => e.0 .0.map_or(Ok(()), |bio| Err((bio, ENOMEM))),
    }
}

/// The order units are served in: by row, then by write, so that of two writes to one sector
/// the one queued later lands last.
fn unit_order(u: &Unit) -> ((u64, u32), u16) {
    (row_key(u), u.bio)
}

/// Notes, for each write with units in `units[from..]`, the position after its last one.
fn note_answers(answer_at: &mut [usize], units: &[Unit], from: usize) {
    for (i, u) in units.iter().enumerate().skip(from) {
        if let Some(at) = answer_at.get_mut(u.bio as usize) {
            *at = i + 1;
        }
    }
}

/// Answers the writes whose last unit is in `units[first..end]` (see [`note_answers`]).
fn answer_window(answer_at: &[usize], writes: &mut [Queued], first: usize, end: usize) {
    for (&at, (bio, result)) in answer_at.iter().zip(writes.iter_mut()) {
        if at > first && at <= end {
            if let Some(bio) = bio.take() {
                bio.end(*result);
            }
        }
    }
}

/// Moves `pages` to the engine's `spare` pages, up to a flight's worth (the rest is freed).
fn keep_pages(spare: &mut KVec<IoBuffer>, pages: &mut KVec<IoBuffer>) {
    let room = FLIGHT_PAGES.saturating_sub(spare.len()).min(pages.len());
    if spare.reserve(room, GFP_NOIO).is_err() {
        return;
    }
    for page in pages.drain_all().take(room) {
        // Reserved above.
        let _ = spare.push_within_capacity(page);
    }
}

/// The number of runs of equal `key` in `items`: the rows of units sorted by row.
fn count_runs<T, K: PartialEq>(items: &[T], key: impl Fn(&T) -> K) -> usize {
    match items.len() {
        0 => 0,
        _ => {
            1 + items
                .windows(2)
                .filter(|w| key(&w[0]) != key(&w[1]))
                .count()
        }
    }
}

/// A write unit's row, as units are sorted and grouped.
fn row_key(u: &Unit) -> (u64, u32) {
    (u.stripe, u.page)
}

/// Copies what the writes put in member `member`'s page of the row into `page`.
fn merge(page: &mut IoBuffer, member: u32, units: &[Unit], writes: &[Queued]) -> Result {
    for u in units.iter().filter(|u| u.member == member) {
        let (from, to) = (usize::from(u.first) * 512, usize::from(u.end) * 512);
        let bio = writes
            .get(u.bio as usize)
            .and_then(|(b, _)| b.as_ref())
            .ok_or(EINVAL)?;
        bio.copy_to_slice(u.offset as usize, &mut page[from..to])?;
    }
    Ok(())
}

/// Two distinct buffers, mutably.
fn pair(bufs: &mut [IoBuffer], a: u32, b: u32) -> Result<(&mut IoBuffer, &mut IoBuffer)> {
    let (a, b) = (a as usize, b as usize);
    if a == b || a.max(b) >= bufs.len() {
        return Err(EINVAL);
    }
    if a < b {
        let (lo, hi) = bufs.split_at_mut(b);
        Ok((&mut lo[a], &mut hi[0]))
    } else {
        let (lo, hi) = bufs.split_at_mut(a);
        Ok((&mut hi[0], &mut lo[b]))
    }
}

/// `bufs[target]` = XOR of the buffers of `sources`.
fn rebuild_into(bufs: &mut [IoBuffer], target: u32, sources: MemberSet) -> Result {
    let t = target as usize;
    if t >= bufs.len() {
        return Err(EINVAL);
    }
    let (lo, rest) = bufs.split_at_mut(t);
    let (dest, hi) = rest.split_first_mut().ok_or(EINVAL)?;
    dest.fill(0);
    let mut srcs: [&[u8]; MAX_MEMBERS as usize] = [&[]; MAX_MEMBERS as usize];
    let mut count = 0;
    let below = (0u32..).zip(lo.iter());
    let above = (target + 1..).zip(hi.iter());
    for (m, buf) in Iterator::chain(below, above) {
        if sources.contains(m) {
            srcs[count] = &buf[..];
            count += 1;
        }
    }
    xor_into(dest, &srcs[..count])
}

/// Parity of a row from all its data buffers.
fn parity_of(bufs: &mut [IoBuffer], parity: u32) -> Result {
    let all = MemberSet::first(bufs.len() as u32);
    rebuild_into(bufs, parity, all.without(parity))
}

impl WorkItem for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        let mut engine = this.engine.lock();
        loop {
            this.land_landed(&mut engine);
            let list = this.pending.lock().take();
            if list.is_empty() {
                break;
            }
            Self::serve(&this, &mut engine, list);
        }
        // The background work waits for the flights (which kick the worker when they land).
        let more = this.running.load(Relaxed)
            && engine.flights.is_empty()
            && engine.write_back.is_none()
            && this.background(&mut engine);
        drop(engine);
        if more {
            Self::kick(&this);
        }
    }
}
