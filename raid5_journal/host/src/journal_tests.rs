// SPDX-License-Identifier: GPL-2.0
use crate::journal::*;
use crate::rng::Rng;
use crate::superblock::crc32c;
use std::collections::HashMap;

const UUID: [u8; 16] = *b"journal-uuid-001";
const MIB: u64 = 2048;

fn sb(log_blocks: u64, at: LogPosition) -> JournalSuper {
    JournalSuper {
        uuid: UUID,
        mode: Mode::WriteThrough,
        generation: 7,
        log_blocks,
        checkpoint: at,
    }
}

fn block() -> Box<[u8; BLOCK]> {
    Box::new([0u8; BLOCK])
}

#[test]
fn superblock_round_trip_and_damage() {
    let mut s = JournalSuper::new(UUID, Mode::WriteBack, 64 * MIB).unwrap();
    assert_eq!(s.log_blocks, 64 * 256 - SUPER_BLOCKS);
    s.generation = 3;
    s.checkpoint = LogPosition { index: 17, seq: 99 };
    let mut buf = block();
    s.encode(&mut buf);
    assert_eq!(JournalSuper::decode(&buf), Ok(Some(s)));
    assert_eq!(
        s.sector(),
        BLOCK_SECTORS,
        "odd generations go to the second copy"
    );
    assert_eq!(JournalSuper::decode(&block()), Ok(None));
    for at in [0, 9, 40, 63, 100, BLOCK - 1] {
        let mut bad = buf.clone();
        bad[at] ^= 0x10;
        assert_eq!(
            JournalSuper::decode(&bad),
            Err(JournalError::BadSuperblock),
            "flip at {at}"
        );
    }
    assert_eq!(
        JournalSuper::new(UUID, Mode::WriteThrough, 8080 - 1),
        Err(JournalError::TooSmall)
    );
    let smallest = JournalSuper::new(UUID, Mode::WriteThrough, 8080).unwrap();
    assert_eq!(smallest.log_blocks, MIN_LOG_BLOCKS);
}

#[test]
fn newer_intact_copy_wins() {
    let dev = 64 * MIB;
    let mut a = JournalSuper::new(UUID, Mode::WriteThrough, dev).unwrap();
    a.generation = 4;
    let mut b = a;
    b.generation = 5;
    b.checkpoint = LogPosition {
        index: 300,
        seq: 41,
    };
    assert_eq!(
        JournalSuper::choose([Ok(Some(a)), Ok(Some(b))], dev),
        Ok(Some(b))
    );
    assert_eq!(
        JournalSuper::choose([Ok(Some(b)), Ok(Some(a))], dev),
        Ok(Some(b))
    );
    // The newer copy torn: the older one holds.
    let torn = Err(JournalError::BadSuperblock);
    assert_eq!(JournalSuper::choose([Ok(Some(a)), torn], dev), Ok(Some(a)));
    assert_eq!(JournalSuper::choose([torn, Ok(None)], dev), torn);
    assert_eq!(JournalSuper::choose([Ok(None), Ok(None)], dev), Ok(None));
    // A ring larger than the device, or a checkpoint outside the ring.
    assert_eq!(
        JournalSuper::choose([Ok(Some(a)), Ok(None)], dev / 2),
        Err(JournalError::BadGeometry)
    );
    let mut out = a;
    out.checkpoint.index = a.log_blocks;
    assert_eq!(
        JournalSuper::choose([Ok(Some(out)), Ok(None)], dev),
        Err(JournalError::BadGeometry)
    );
    let mut other = b;
    other.uuid[0] ^= 1;
    assert_eq!(
        JournalSuper::choose([Ok(Some(a)), Ok(Some(other))], dev),
        Err(JournalError::BadSuperblock)
    );
}

#[test]
fn mode_words() {
    for m in [Mode::WriteThrough, Mode::WriteBack] {
        assert_eq!(Mode::parse(m.as_str().as_bytes()), Some(m));
    }
    assert_eq!(Mode::parse(b"write-back"), None);
    assert_eq!(Mode::parse(b""), None);
}

fn entries(rng: &mut Rng, n: usize) -> Vec<Entry> {
    (0..n)
        .map(|_| Entry {
            sector: rng.range(0, 1 << 30) * 8,
            member: rng.range32(0, 15) as u16,
            flags: rng.range32(0, 1) as u16,
            crc: rng.next() as u32,
        })
        .collect()
}

#[test]
fn metadata_round_trip_and_refusals() {
    let mut rng = Rng(11);
    let at = LogPosition {
        index: 5,
        seq: 1234,
    };
    for n in [1, 2, 17, MAX_ENTRIES] {
        let es = entries(&mut rng, n);
        let mut buf = block();
        encode_txn(&mut buf, &UUID, at, &es).unwrap();
        let txn = decode_txn(&buf, &UUID, at, 4096).unwrap();
        assert_eq!(txn.entries, n);
        let back: Vec<_> = (0..n).map(|i| entry(&buf, i)).collect();
        assert_eq!(back, es);
        assert_eq!(
            txn.next(4096),
            LogPosition {
                index: 6 + n as u64,
                seq: 1235
            }
        );
        let mut other = UUID;
        other[3] ^= 1;
        assert_eq!(decode_txn(&buf, &other, at, 4096), Err(TxnEnd::Foreign));
        let later = LogPosition { seq: 1235, ..at };
        assert_eq!(decode_txn(&buf, &UUID, later, 4096), Err(TxnEnd::Stale));
        let moved = LogPosition { index: 6, ..at };
        assert_eq!(decode_txn(&buf, &UUID, moved, 4096), Err(TxnEnd::Stale));
        assert_eq!(decode_txn(&buf, &UUID, at, n as u64), Err(TxnEnd::BadCount));
        buf[100] ^= 1;
        assert_eq!(decode_txn(&buf, &UUID, at, 4096), Err(TxnEnd::NotMetadata));
    }
    let mut buf = block();
    assert_eq!(encode_txn(&mut buf, &UUID, at, &[]), None);
    let too_many = entries(&mut rng, MAX_ENTRIES + 1);
    assert_eq!(encode_txn(&mut buf, &UUID, at, &too_many), None);
    assert_eq!(MAX_ENTRIES, 251);
}

#[test]
fn ring_accounting() {
    let mut ring = Ring::empty_at(10, LogPosition { index: 7, seq: 50 });
    assert_eq!(ring.append(2), Some(LogPosition { index: 7, seq: 50 }));
    assert_eq!(ring.append(3), Some(LogPosition { index: 0, seq: 51 }));
    assert_eq!(ring.used, 7);
    assert_eq!(ring.append(3), None, "no room: 4 blocks wanted, 3 free");
    assert_eq!(ring.append(0), None);
    assert_eq!(ring.append(2), Some(LogPosition { index: 4, seq: 52 }));
    assert_eq!(ring.free(), 0);
    assert_eq!(ring.fill_percent(), 100);
    ring.checkpoint();
    assert_eq!(ring.tail, LogPosition { index: 7, seq: 53 });
    assert_eq!(ring.free(), 10);
}

/// One transaction of a test stream: where, its entries, its payload blocks.
struct TestTxn {
    at: LogPosition,
    entries: Vec<Entry>,
    payload: Vec<Vec<u8>>,
}

/// A journal image as a map from ring index to block, over `old`, the blocks before the
/// stream was written.
struct Image {
    log_blocks: u64,
    old: HashMap<u64, Vec<u8>>,
    new: HashMap<u64, Vec<u8>>,
}

impl Image {
    fn block(&self, index: u64) -> Vec<u8> {
        self.new
            .get(&index)
            .or_else(|| self.old.get(&index))
            .cloned()
            .unwrap_or_else(|| vec![0; BLOCK])
    }
}

/// A transaction as a replay applied it: its place, entries and payload.
type Applied = (Txn, Vec<Entry>, Vec<Vec<u8>>);

/// Reads an image, recording what a replay applies.
struct MemReplayer<'a> {
    image: &'a Image,
    payload: Vec<Vec<u8>>,
    applied: Vec<Applied>,
}

impl Replayer for MemReplayer<'_> {
    type Error = ();

    fn read_meta(&mut self, index: u64, meta: &mut [u8; BLOCK]) -> Result<(), ()> {
        meta.copy_from_slice(&self.image.block(index));
        Ok(())
    }

    fn read_payload(&mut self, txn: &Txn, meta: &[u8; BLOCK]) -> Result<bool, ()> {
        self.payload.clear();
        let mut ok = true;
        for i in 0..txn.entries {
            let b = self
                .image
                .block(payload_index(txn.at.index, i, self.image.log_blocks));
            ok &= crc32c(&b) == entry(meta, i).crc;
            self.payload.push(b);
        }
        Ok(ok)
    }

    fn apply(&mut self, txn: &Txn, meta: &[u8; BLOCK]) -> Result<(), ()> {
        let es = (0..txn.entries).map(|i| entry(meta, i)).collect();
        self.applied.push((*txn, es, self.payload.clone()));
        Ok(())
    }
}

/// A random stream of `count` transactions from `start`, with blocks in write order.
fn stream(
    rng: &mut Rng,
    log_blocks: u64,
    start: LogPosition,
    count: usize,
) -> (Vec<TestTxn>, Vec<(u64, Vec<u8>)>) {
    let mut ring = Ring::empty_at(log_blocks, start);
    let mut txns = Vec::new();
    let mut blocks = Vec::new();
    for _ in 0..count {
        let n = rng.range(1, 3) as usize;
        let Some(at) = ring.append(n) else { break };
        let payload: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let mut b = vec![0u8; BLOCK];
                rng.fill(&mut b);
                b
            })
            .collect();
        let mut es = entries(rng, n);
        for (e, p) in es.iter_mut().zip(&payload) {
            e.crc = crc32c(p);
        }
        let mut meta = block();
        encode_txn(&mut meta, &UUID, at, &es).unwrap();
        blocks.push((at.index, meta.to_vec()));
        for (i, p) in payload.iter().enumerate() {
            blocks.push((payload_index(at.index, i, log_blocks), p.clone()));
        }
        txns.push(TestTxn {
            at,
            entries: es,
            payload,
        });
    }
    (txns, blocks)
}

/// What was in the ring before: garbage, zeroes, and transactions of an earlier lap (of this
/// array, with older sequence numbers) at the same places.
fn old_contents(rng: &mut Rng, log_blocks: u64, start: LogPosition) -> HashMap<u64, Vec<u8>> {
    let earlier = LogPosition {
        index: start.index,
        seq: start.seq - 1000,
    };
    let (_, blocks) = stream(rng, log_blocks, earlier, 8);
    let mut old: HashMap<u64, Vec<u8>> = blocks.into_iter().collect();
    for i in 0..log_blocks {
        if rng.range(0, 3) == 0 {
            let mut b = vec![0u8; BLOCK];
            rng.fill(&mut b);
            old.insert(i, b);
        }
    }
    old
}

fn replay_image(image: &Image, start: LogPosition) -> (Vec<Applied>, LogPosition) {
    let mut r = MemReplayer {
        image,
        payload: Vec::new(),
        applied: Vec::new(),
    };
    let mut meta = block();
    let (count, next) = replay(&sb(image.log_blocks, start), &mut meta, &mut r).unwrap();
    assert_eq!(count as usize, r.applied.len());
    (r.applied, next)
}

fn assert_exactly(applied: &[Applied], txns: &[TestTxn], complete: usize, why: &str) {
    assert_eq!(applied.len(), complete, "{why}: transactions replayed");
    for ((txn, es, payload), want) in applied.iter().zip(txns) {
        assert_eq!(txn.at, want.at, "{why}");
        assert_eq!(es, &want.entries, "{why}");
        assert_eq!(payload, &want.payload, "{why}");
    }
}

/// The property: a stream of transactions cut at any byte (the device wrote a prefix of it,
/// the rest of each block stays as it was) replays exactly the transactions wholly written.
#[test]
fn cut_at_every_byte_replays_exactly_the_complete_transactions() {
    let mut rng = Rng(0x5eed_0001);
    for round in 0..3 {
        let log_blocks = rng.range(12, 24);
        let start = LogPosition {
            index: rng.range(0, log_blocks - 1),
            seq: rng.range(2000, 1 << 40),
        };
        let old = old_contents(&mut rng, log_blocks, start);
        let (txns, blocks) = stream(&mut rng, log_blocks, start, 3);
        // The byte each transaction is complete at.
        let mut ends = Vec::new();
        let mut written = 0;
        for t in &txns {
            written += (1 + t.entries.len()) * BLOCK;
            ends.push(written);
        }
        let total = blocks.len() * BLOCK;
        let mut image = Image {
            log_blocks,
            old,
            new: HashMap::new(),
        };
        for cut in 0..=total {
            // One more byte of the stream on the device.
            if cut > 0 {
                let (index, data) = &blocks[(cut - 1) / BLOCK];
                let mut b = image.block(*index);
                b[(cut - 1) % BLOCK] = data[(cut - 1) % BLOCK];
                image.new.insert(*index, b);
            }
            let complete = ends.iter().filter(|&&e| e <= cut).count();
            let (applied, next) = replay_image(&image, start);
            assert_exactly(
                &applied,
                &txns,
                complete,
                &format!("round {round} cut {cut}"),
            );
            let want_next = match complete {
                0 => start,
                c => {
                    let t = &txns[c - 1];
                    Txn {
                        at: t.at,
                        entries: t.entries.len(),
                    }
                    .next(log_blocks)
                }
            };
            assert_eq!(next, want_next);
        }
    }
}

/// Blocks of the transactions in flight land in any order: a transaction counts only once all
/// of its blocks have, and none after a missing one counts.
#[test]
fn blocks_landing_out_of_order_never_replay_a_partial_transaction() {
    let mut rng = Rng(0x5eed_0002);
    for round in 0..2000 {
        let log_blocks = rng.range(12, 40);
        let start = LogPosition {
            index: rng.range(0, log_blocks - 1),
            seq: rng.range(2000, 1 << 40),
        };
        let old = old_contents(&mut rng, log_blocks, start);
        let (txns, blocks) = stream(&mut rng, log_blocks, start, 6);
        let mut image = Image {
            log_blocks,
            old,
            new: HashMap::new(),
        };
        // Each block landed or not, independently; a landed block may also be torn.
        let mut landed = Vec::new();
        for (index, data) in &blocks {
            let outcome = rng.range(0, 5);
            let ok = outcome >= 2;
            if outcome >= 1 {
                let mut b = image.block(*index);
                let n = if ok {
                    BLOCK
                } else {
                    rng.range(0, BLOCK as u64 - 1) as usize
                };
                b[..n].copy_from_slice(&data[..n]);
                image.new.insert(*index, b);
            }
            landed.push(ok || data == &image.block(*index));
        }
        let mut complete = 0;
        let mut j = 0;
        for t in &txns {
            let n = 1 + t.entries.len();
            if landed[j..j + n].iter().all(|&l| l) {
                complete += 1;
                j += n;
            } else {
                break;
            }
        }
        let (applied, _) = replay_image(&image, start);
        assert_exactly(&applied, &txns, complete, &format!("round {round}"));
    }
}

/// A full lap of valid transactions stops at the lap's end, not in a loop.
#[test]
fn a_full_ring_replays_once() {
    let mut rng = Rng(3);
    let log_blocks = 12;
    let start = LogPosition { index: 4, seq: 900 };
    let (txns, blocks) = stream(&mut rng, log_blocks, start, 100);
    let used: usize = txns.iter().map(|t| 1 + t.entries.len()).sum();
    assert!(used as u64 > log_blocks - 3, "the stream fills the ring");
    let image = Image {
        log_blocks,
        old: HashMap::new(),
        new: blocks.into_iter().collect(),
    };
    let (applied, _) = replay_image(&image, start);
    assert_exactly(&applied, &txns, txns.len(), "full ring");
}
