// SPDX-License-Identifier: GPL-2.0

//! `rust44-raid5`: a device-mapper RAID5 target.
//!
//! `dmsetup create r5 --table "0 <sectors> rust44-raid5 <chunk_sectors> <ndevs> <dev>..."`
//! stripes data with left-symmetric rotating parity (md's and dm-raid's `raid5_ls`) over 3 to 16
//! members. Every member starts with a superblock naming the array, its geometry and each
//! member's state; data starts 1 MiB in. A new array is made of blank devices and resyncs its
//! parity in the background. A member that fails (an I/O error, or `dmsetup message r5 0 fail
//! <index>`) is recorded on the others and the array runs degraded; a blank device listed in its
//! place on the next load is rebuilt in the background. `-` in a member's place starts the array
//! degraded without it.
//!
//! With `journal <dev> writethrough|writeback` after the members, every write goes to the
//! journal device first (`journal.rs` has the format), which closes RAID5's write hole: after a
//! crash the journal's replay completes every row that was being written, so the array may even
//! start degraded. `dmsetup message <dev> 0 journal_mode writethrough|writeback` switches
//! modes at runtime; the table line shows the current one.

use kernel::{
    block::disk::QueueLimits,
    device_mapper::{
        Ctr, CtrError, DeviceVisitor, EndIo, EndingBio, MapResult, Registration, StatusType,
        StatusWriter, Target, TargetBio, VisitStop,
    },
    prelude::*,
    sync::Arc,
};

mod array;
pub mod journal;
pub mod layout;
mod log;
pub mod parity;
pub mod superblock;
pub mod table;

use array::{Array, ReadRecord, Refused};
use core::fmt::Write;
use table::{Health, Table};

module! {
    type: Raid5Module,
    name: "raid5_journal",
    authors: ["rust44"],
    description: "Device-mapper RAID5 target (rust44-raid5)",
    license: "GPL",
}

struct Raid5 {
    array: Arc<Array>,
    table: Table,
}

impl Drop for Raid5 {
    fn drop(&mut self) {
        // Device-mapper calls the destructor once no bio is in flight; the background work
        // stops here, before the devices are put.
        self.array.stop();
        self.array.unload();
    }
}

#[vtable]
impl Target for Raid5 {
    const NAME: &'static CStr = c"rust44-raid5";
    const VERSION: [u32; 3] = [1, 0, 0];

    type PerBio = ReadRecord;

    fn new(ctr: &mut Ctr<'_>, args: &[&CStr]) -> Result<Pin<KBox<Self>>, CtrError> {
        let table = Table::parse(args).map_err(|e| CtrError::invalid(e.message()))?;
        let mut members = KVec::new();
        for path in table.devices(args) {
            let dev = match path.to_bytes() {
                b"-" => None,
                _ => Some(
                    ctr.get_device(path)
                        .map_err(|e| CtrError::new(e, c"cannot open a member device"))?,
                ),
            };
            members
                .push(dev, GFP_KERNEL)
                .map_err(|_| CtrError::new(ENOMEM, c"out of memory"))?;
        }
        let journal = match table.journal.and_then(|(at, _)| args.get(at)) {
            Some(path) => Some(
                ctr.get_device(path)
                    .map_err(|e| CtrError::new(e, c"cannot open the journal device"))?,
            ),
            None => None,
        };
        let array = Array::assemble(members, journal, &table, ctr.begin(), ctr.len())
            .map_err(|Refused(e, why)| CtrError::new(e, why))?;
        // One empty flush bio per flush; discard and write-zeroes are not offered.
        ctr.set_num_flush_bios(1);
        KBox::pin(Self { array, table }, GFP_KERNEL)
            .map_err(|_| CtrError::new(ENOMEM, c"out of memory"))
    }

    fn map(&self, bio: TargetBio<ReadRecord>) -> MapResult {
        Array::map(&self.array, bio)
    }

    fn end_io<'a>(&self, mut bio: EndingBio<'a, ReadRecord>) -> EndIo<'a> {
        // Only a read sent to a member is served again, once: the retry is the engine's.
        let Some(record) = bio.per_bio().take() else {
            return bio.done();
        };
        let Err(why) = bio.result() else {
            return bio.done();
        };
        if bio.restore(&record).is_err() {
            return bio.done();
        }
        let (bio, end) = bio.take();
        Array::read_failed(&self.array, bio, why);
        end
    }

    fn status(&self, kind: StatusType, out: &mut StatusWriter<'_>) {
        let _ = match kind {
            StatusType::Info => self.info(out),
            StatusType::Table => self.table_line(out),
            StatusType::Ima => write!(out, "raid_type=raid5_ls"),
        };
    }

    fn message(&self, args: &[&CStr], _out: &mut StatusWriter<'_>) -> Result {
        match args {
            [verb, member] if verb.to_bytes() == b"fail" => {
                let m = table::parse_u32(member.to_bytes())
                    .filter(|&m| m < self.array.layout.members())
                    .ok_or(EINVAL)?;
                pr_info!("rust44-raid5: failing member {} on request\n", m);
                self.array.fail_member(m, EIO);
                self.array.record_failures();
                Ok(())
            }
            [verb, mode] if verb.to_bytes() == b"journal_mode" => {
                let Some(mode) = journal::Mode::parse(mode.to_bytes()) else {
                    pr_err!("rust44-raid5: journal_mode takes writethrough or writeback\n");
                    return Err(EINVAL);
                };
                self.array.set_mode(mode).inspect_err(|_| {
                    pr_err!("rust44-raid5: journal_mode: the array has no journal\n");
                })
            }
            _ => {
                pr_err!(
                    "rust44-raid5: unknown message (expected: fail <member index>, journal_mode writethrough|writeback)\n"
                );
                Err(EINVAL)
            }
        }
    }

    fn iterate_devices(&self, visitor: &mut DeviceVisitor<'_>) -> Result<(), VisitStop> {
        let len = self.array.layout.member_device_sectors();
        for dev in self.array.members.iter().flatten() {
            visitor.visit(dev, 0, len)?;
        }
        if let Some(dev) = &self.array.journal_dev {
            visitor.visit(dev, 0, dev.bdev().sectors())?;
        }
        Ok(())
    }

    fn io_hints(&self, limits: &mut QueueLimits) {
        let chunk = self.table.chunk_sectors * 512;
        limits.set_io_min(chunk);
        limits.set_io_opt(chunk * self.array.layout.data_members());
    }

    fn presuspend(&self) {
        self.array.stop();
    }

    fn postsuspend(&self) {
        self.array.mark_clean(true);
    }

    fn resume(&self) {
        self.array.mark_clean(false);
        Array::start(&self.array);
    }
}

impl Raid5 {
    /// `raid5_ls <ndevs> <health> <done>/<total> <action> <mismatches>`, then the engine's
    /// counters.
    fn info(&self, out: &mut StatusWriter<'_>) -> core::fmt::Result {
        let mut health = [Health::InSync; layout::MAX_MEMBERS as usize];
        let n = self.array.health(&mut health);
        let (done, total, action) = self.array.progress();
        table::write_info(out, &health[..n], done, total, action, 0)?;
        let [full, rmw, rcw, degraded] = self.array.counters();
        write!(
            out,
            " full_stripe={} rmw={} rcw={} degraded_reads={}",
            full, rmw, rcw, degraded
        )?;
        if let Some(j) = self.array.journal_status() {
            write!(
                out,
                " journal={} journal_fill={}% journal_replayed={} journal_state={}",
                j.mode.as_str(),
                j.fill_percent,
                j.replayed,
                if j.failed { "failed" } else { "ok" }
            )?;
        }
        Ok(())
    }

    /// The table line that builds this target again.
    fn table_line(&self, out: &mut StatusWriter<'_>) -> core::fmt::Result {
        table::write_table_prefix(out, &self.table)?;
        for dev in self.array.members.iter() {
            let name = dev.as_ref().map_or(Ok("-"), |d| d.name().to_str());
            write!(out, " {}", name.unwrap_or("?"))?;
        }
        let journal = self.array.journal_dev.as_ref().map(|dev| {
            let devt = dev.bdev().devt();
            (devt >> 20, devt & 0xfffff, self.array.mode())
        });
        table::write_table_options(out, &self.table, journal)
    }
}

#[pin_data]
struct Raid5Module {
    #[pin]
    registration: Registration<Raid5>,
}

impl kernel::InPlaceModule for Raid5Module {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        array::init_live_arrays();
        try_pin_init!(Self {
            registration <- Registration::new(module),
        })
    }
}
