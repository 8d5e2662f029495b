// SPDX-License-Identifier: GPL-2.0
//! A simulated zoned device with a volatile write cache, a driver that uses the FTL as the
//! kernel target's worker does, and the model it is checked against.

use crate::format::{BLOCK, UNMAPPED};
use crate::ftl::{pin_read, Cond, Config, Ftl, Io, IoError, OpenError, ReadRun, Zone};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone)]
pub struct SimZone {
    pub cap: u32,
    pub wp: u32,
    pub read_only: bool,
    pub offline: bool,
}

/// A zoned device: `zones` of `zone_blocks` blocks (capacity `cap` each), sequential writes at
/// the write pointer only. Writes without FUA stay volatile until a flush: a crash loses any of
/// them (their blocks then hold garbage), but write pointers stay.
pub struct Dev {
    pub zone_blocks: u32,
    pub zones: Vec<SimZone>,
    pub data: Vec<Vec<u8>>,
    pub volatile: Vec<u32>,
    pub pins: Arc<Vec<AtomicU32>>,
    pub writes: u64,
    pub resets: u64,
    pub fail_writes_in: Option<u32>,
    /// Flushes do nothing (to tear what the FTL wrote before its flush).
    pub lose_flushes: bool,
    /// The collector's blocks in transit ([`Io::stage`]).
    pub staged: Vec<Vec<u8>>,
    /// Blocks in one zone append.
    pub append_blocks: u32,
    /// Appends in flight together land in an order drawn from this.
    pub append_order: Rng,
    /// Zone appends made (chunks).
    pub appends: u64,
    /// Zone appends that landed before one sent ahead of them.
    pub overtaken: u64,
    /// The next zone append fails (the zone turns read-only).
    pub fail_next_append: bool,
    /// The next zone append reports a block after the one it landed at.
    pub misreport_next_append: bool,
}

impl Dev {
    pub fn new(zones: u32, zone_blocks: u32, cap: u32) -> Self {
        Self {
            zone_blocks,
            zones: (0..zones)
                .map(|_| SimZone {
                    cap,
                    wp: 0,
                    read_only: false,
                    offline: false,
                })
                .collect(),
            data: vec![vec![0u8; BLOCK]; (zones * zone_blocks) as usize],
            volatile: Vec::new(),
            pins: Arc::new((0..zones).map(|_| AtomicU32::new(0)).collect()),
            writes: 0,
            resets: 0,
            fail_writes_in: None,
            lose_flushes: false,
            staged: vec![vec![0u8; BLOCK]; 64],
            append_blocks: 8,
            append_order: Rng(0x9e37_79b9_7f4a_7c15),
            appends: 0,
            overtaken: 0,
            fail_next_append: false,
            misreport_next_append: false,
        }
    }

    /// The zones as the device reports them.
    pub fn report(&self) -> Vec<Zone> {
        self.zones
            .iter()
            .map(|z| {
                let cond = if z.offline {
                    Cond::Offline
                } else if z.read_only {
                    Cond::ReadOnly
                } else if z.wp == 0 {
                    Cond::Empty
                } else if z.wp >= z.cap {
                    Cond::Full
                } else {
                    Cond::Partial(z.wp)
                };
                Zone::reported(cond, z.cap)
            })
            .collect()
    }

    /// Power cut: every volatile block survives or not, at random.
    pub fn crash(&mut self, rng: &mut Rng) {
        for pba in std::mem::take(&mut self.volatile) {
            if rng.next() & 1 == 0 {
                for b in self.data[pba as usize].iter_mut() {
                    *b = rng.next() as u8;
                }
            }
        }
    }
}

impl Io for Dev {
    fn read(&mut self, pba: u32, buf: &mut [u8]) -> Result<(), IoError> {
        assert_eq!(buf.len() % BLOCK, 0);
        let zone = &self.zones[(pba / self.zone_blocks) as usize];
        let off = pba % self.zone_blocks;
        assert!(
            off + (buf.len() / BLOCK) as u32 <= zone.cap,
            "read past capacity"
        );
        if zone.offline {
            return Err(IoError(-5));
        }
        for (i, b) in buf.chunks_mut(BLOCK).enumerate() {
            b.copy_from_slice(&self.data[pba as usize + i]);
        }
        Ok(())
    }

    fn write(&mut self, pba: u32, buf: &[u8], fua: bool) -> Result<(), IoError> {
        assert_eq!(buf.len() % BLOCK, 0);
        let z = pba / self.zone_blocks;
        let zone = &mut self.zones[z as usize];
        let off = pba % self.zone_blocks;
        let n = (buf.len() / BLOCK) as u32;
        assert_eq!(off, zone.wp, "write not at the write pointer of zone {z}");
        assert!(off + n <= zone.cap, "write past the capacity of zone {z}");
        assert!(
            !zone.read_only && !zone.offline,
            "write to a failed zone {z}"
        );
        if self.fail_writes_in == Some(z) {
            zone.read_only = true;
            return Err(IoError(-5));
        }
        zone.wp += n;
        for (i, b) in buf.chunks(BLOCK).enumerate() {
            self.data[pba as usize + i].copy_from_slice(b);
            if !fua {
                self.volatile.push(pba + i as u32);
            }
        }
        self.writes += u64::from(n);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        if !self.lose_flushes {
            self.volatile.clear();
        }
        Ok(())
    }

    fn reset(&mut self, zone: u32) -> Result<(), IoError> {
        let z = &mut self.zones[zone as usize];
        assert!(!z.read_only && !z.offline);
        z.wp = 0;
        let base = (zone * self.zone_blocks) as usize;
        for b in &mut self.data[base..base + self.zone_blocks as usize] {
            b.fill(0);
        }
        // A reset is immediate and durable.
        let zb = self.zone_blocks;
        self.volatile.retain(|&p| p / zb != zone);
        self.resets += 1;
        Ok(())
    }

    fn finish(&mut self, zone: u32) -> Result<(), IoError> {
        let z = &mut self.zones[zone as usize];
        z.wp = z.cap;
        Ok(())
    }

    fn wait_reads(&mut self, zone: u32) {
        assert_eq!(
            self.pins[zone as usize].load(SeqCst),
            0,
            "a read is pinned in zone {zone}"
        );
    }

    fn stage_blocks(&self) -> u32 {
        self.staged.len() as u32
    }

    fn append_blocks(&self) -> u32 {
        self.append_blocks
    }

    fn stage(&mut self, runs: &[(u32, u32)]) -> Result<(), IoError> {
        let mut at = 0usize;
        for &(pba, len) in runs {
            let mut blocks = vec![0u8; len as usize * BLOCK];
            self.read(pba, &mut blocks)?;
            for b in blocks.chunks(BLOCK) {
                assert!(at < self.staged.len(), "staged past the staging area");
                self.staged[at].copy_from_slice(b);
                at += 1;
            }
        }
        Ok(())
    }

    fn append_staged(
        &mut self,
        zone: u32,
        chunks: &[(u32, u32)],
        landed: &mut [u32],
    ) -> Result<(), IoError> {
        assert_eq!(chunks.len(), landed.len());
        // In flight together: they reach the zone in any order.
        let mut order: Vec<usize> = (0..chunks.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, self.append_order.below(i as u64 + 1) as usize);
        }
        let mut result = Ok(());
        let mut latest = None;
        for i in order {
            if latest.is_some_and(|l| l > i) {
                self.overtaken += 1;
            }
            latest = Some(latest.map_or(i, |l: usize| l.max(i)));
            if std::mem::take(&mut self.fail_next_append) {
                self.zones[zone as usize].read_only = true;
                result = Err(IoError(-5));
                break;
            }
            let (first, len) = chunks[i];
            assert!(
                len >= 1 && len <= self.append_blocks,
                "append of {len} blocks"
            );
            let pba = zone * self.zone_blocks + self.zones[zone as usize].wp;
            let data: Vec<u8> = (first..first + len)
                .flat_map(|s| self.staged[s as usize].clone())
                .collect();
            match self.write(pba, &data, false) {
                Ok(()) => {
                    landed[i] = pba + u32::from(std::mem::take(&mut self.misreport_next_append));
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            self.appends += 1;
        }
        result
    }
}

pub type TestFtl = Ftl<Arc<[AtomicU32]>, Vec<u32>, Vec<Zone>>;

/// Map containers for `Ftl::open`.
pub fn open(dev: &mut Dev, config: Config, max_open: u32) -> Result<TestFtl, OpenError> {
    let zones = dev.report();
    let (lbas, _) = crate::ftl::capacity(&zones, &config)?;
    let map: Arc<[AtomicU32]> = (0..lbas).map(|_| AtomicU32::new(UNMAPPED)).collect();
    let rmap = vec![0u32; dev.zones.len() * dev.zone_blocks as usize];
    let pending = vec![0u32; 2 * 507 * 4];
    let mut buf = vec![0u8; 16 * BLOCK];
    Ftl::open(
        dev,
        &mut buf,
        config,
        dev.zone_blocks,
        max_open,
        map,
        rmap,
        pending,
        zones,
    )
}

/// The contents of a data block carrying `token` (0: zeroes, an unwritten block).
pub fn block_of(token: u64, lba: u32) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK];
    if token != 0 {
        for (i, c) in b.chunks_mut(8).enumerate() {
            let v = token.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (u64::from(lba) << 20) ^ i as u64;
            c.copy_from_slice(&v.to_le_bytes());
        }
        b[..8].copy_from_slice(&token.to_le_bytes());
    }
    b
}

/// The token a block carries, or `None` when it is not a block [`block_of`] made for `lba`.
pub fn token_of(b: &[u8], lba: u32) -> Option<u64> {
    let token = u64::from_le_bytes(b[..8].try_into().ok()?);
    (block_of(token, lba) == b).then_some(token)
}

/// Does what the kernel target's worker does with the FTL.
pub struct Driver {
    pub ftl: TestFtl,
    pub buf: Vec<u8>,
}

impl Driver {
    pub fn new(ftl: TestFtl) -> Self {
        Self {
            ftl,
            buf: vec![0u8; 16 * BLOCK],
        }
    }

    pub fn write(&mut self, dev: &mut Dev, lba: u32, tokens: &[u64]) -> Result<(), IoError> {
        let n = tokens.len() as u32;
        let mut done = 0;
        while done < n {
            if !self.ftl.log_room((n - done) as usize) {
                self.ftl.commit(dev, &mut self.buf)?;
            }
            let Some((pba, len)) = self.ftl.place(n - done) else {
                if self.ftl.collect(dev, &mut self.buf)?.is_none() {
                    return Err(IoError(-28));
                }
                continue;
            };
            let mut data = Vec::new();
            for i in 0..len {
                data.extend(block_of(tokens[(done + i) as usize], lba + done + i));
            }
            match dev.write(pba, &data, false) {
                Ok(()) => self.ftl.written(lba + done, pba, len),
                Err(_) => {
                    // As the target does: the zone is retired, the write placed again.
                    self.ftl.write_failed(pba);
                    continue;
                }
            }
            done += len;
        }
        Ok(())
    }

    pub fn discard(&mut self, dev: &mut Dev, lba: u32, n: u32) -> Result<(), IoError> {
        let mut done = 0;
        while done < n {
            done += self.ftl.discard(lba + done, n - done);
            if done < n {
                self.ftl.commit(dev, &mut self.buf)?;
            }
        }
        Ok(())
    }

    pub fn checkpoint(&mut self, dev: &mut Dev) -> Result<(), IoError> {
        self.ftl.checkpoint(dev, &mut self.buf)
    }

    pub fn flush(&mut self, dev: &mut Dev) -> Result<(), IoError> {
        self.ftl.commit(dev, &mut self.buf)
    }

    /// Reads one logical block: its token, 0 for zeroes, `None` for a block no write made or a
    /// read that failed.
    pub fn read(&self, dev: &mut Dev, lba: u32) -> Option<u64> {
        let pins = dev.pins.clone();
        match pin_read(self.ftl.map(), &pins, dev.zone_blocks, lba, 1) {
            ReadRun::Unmapped { .. } => Some(0),
            ReadRun::Mapped { pba, len, zone } => {
                assert_eq!(len, 1);
                let mut b = vec![0u8; BLOCK];
                let read = dev.read(pba, &mut b);
                pins[zone as usize].fetch_sub(1, SeqCst);
                read.ok()?;
                token_of(&b, lba)
            }
        }
    }
}

/// What each logical block may read as: after a crash, its value at the last flush or any value
/// written since.
pub struct Model {
    pub current: Vec<u64>,
    pub durable: Vec<u64>,
    pub since: Vec<Vec<u64>>,
}

impl Model {
    pub fn new(lbas: u32) -> Self {
        Self {
            current: vec![0; lbas as usize],
            durable: vec![0; lbas as usize],
            since: vec![Vec::new(); lbas as usize],
        }
    }

    pub fn write(&mut self, lba: u32, token: u64) {
        self.current[lba as usize] = token;
        self.since[lba as usize].push(token);
    }

    pub fn flush(&mut self) {
        self.durable.clone_from(&self.current);
        for s in &mut self.since {
            s.clear();
        }
    }

    /// Whether `got` is a value block `lba` may hold after a crash.
    pub fn may_be(&self, lba: u32, got: u64) -> bool {
        got == self.durable[lba as usize] || self.since[lba as usize].contains(&got)
    }

    /// After recovery: what was read is what is durable now.
    pub fn settle(&mut self, lba: u32, got: u64) {
        self.current[lba as usize] = got;
        self.durable[lba as usize] = got;
        self.since[lba as usize].clear();
    }
}
