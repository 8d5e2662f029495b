// SPDX-License-Identifier: GPL-2.0
//! Model-based tests of the FTL: random writes, discards, flushes, garbage collection, crashes
//! and reloads on a simulated zoned device, checked against a model of what each logical block
//! may hold.

use crate::format::UNMAPPED;
use crate::ftl::{capacity, pin_read, Config, Io, OpenError, Policy, ReadRun, Role};
use crate::sim::{block_of, open, Dev, Driver, Model, Rng};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

fn config(policy: Policy) -> Config {
    Config {
        streams: 3,
        op_percent: 10,
        reserved: 0,
        policy,
    }
}

/// Every block reads as the model's current value (no crash since the last check).
fn check_all(d: &Driver, dev: &mut Dev, model: &Model) {
    for lba in 0..d.ftl.lbas() {
        assert_eq!(
            d.read(dev, lba),
            Some(model.current[lba as usize]),
            "lba {lba}"
        );
    }
}

/// The FTL's counts agree with its map.
fn check_counts(d: &Driver) {
    let total: u64 = d.ftl.zones().iter().map(|z| u64::from(z.valid)).sum();
    let mapped = d
        .ftl
        .map()
        .iter()
        .filter(|e| e.load(SeqCst) != UNMAPPED)
        .count() as u64;
    assert_eq!(total, mapped, "valid counts match the map");
    for z in d.ftl.zones() {
        assert!(z.valid <= z.cap && z.wp <= z.cap);
    }
}

/// Runs `ops` random operations, with crashes when `crashes`; checks reads all along.
fn run(seed: u64, zones: u32, zone_blocks: u32, cap: u32, policy: Policy, ops: u32, crashes: bool) {
    let mut rng = Rng(seed);
    let mut dev = Dev::new(zones, zone_blocks, cap);
    let cfg = config(policy);
    let mut d = Driver::new(open(&mut dev, cfg, 0).expect("format"));
    let lbas = d.ftl.lbas();
    let mut model = Model::new(lbas);
    let mut token = 1u64;
    for op in 0..ops {
        match rng.below(100) {
            0..=69 => {
                let n = 1 + rng.below(8) as u32;
                let lba = rng.below(u64::from(lbas - n.min(lbas) + 1)) as u32;
                let n = n.min(lbas - lba);
                let tokens: Vec<u64> = (0..n).map(|i| token + u64::from(i)).collect();
                token += u64::from(n);
                d.write(&mut dev, lba, &tokens).expect("write");
                for (i, &t) in tokens.iter().enumerate() {
                    model.write(lba + i as u32, t);
                }
            }
            70..=79 => {
                let n = 1 + rng.below(32) as u32;
                let lba = rng.below(u64::from(lbas)) as u32;
                let n = n.min(lbas - lba);
                d.discard(&mut dev, lba, n).expect("discard");
                for i in 0..n {
                    model.write(lba + i, 0);
                }
            }
            80..=89 => {
                let lba = rng.below(u64::from(lbas)) as u32;
                assert_eq!(
                    d.read(&mut dev, lba),
                    Some(model.current[lba as usize]),
                    "op {op}"
                );
            }
            90..=95 => {
                d.flush(&mut dev).expect("flush");
                model.flush();
            }
            96 => {
                let _ = d.ftl.collect(&mut dev, &mut d.buf).expect("gc");
            }
            _ if crashes => {
                dev.crash(&mut rng);
                d = Driver::new(open(&mut dev, cfg, 0).expect("recover"));
                assert_eq!(d.ftl.lbas(), lbas);
                for lba in 0..lbas {
                    let got = d.read(&mut dev, lba).expect("a block the FTL wrote");
                    assert!(
                        model.may_be(lba, got),
                        "seed {seed} op {op}: lba {lba} reads {got} after a crash, durable {}",
                        model.durable[lba as usize]
                    );
                    model.settle(lba, got);
                }
                check_counts(&d);
            }
            _ => {
                // A clean reload: flush first, as the target does when it is removed.
                d.flush(&mut dev).expect("flush");
                model.flush();
                d = Driver::new(open(&mut dev, cfg, 0).expect("reload"));
                check_all(&d, &mut dev, &model);
            }
        }
    }
    check_counts(&d);
    check_all(&d, &mut dev, &model);
}

#[test]
fn random_operations_read_back_what_was_written() {
    for seed in 1..=12 {
        run(seed, 16, 64, 64, Policy::Greedy, 3000, false);
        run(seed, 16, 64, 64, Policy::CostBenefit, 3000, false);
    }
}

#[test]
fn crashes_keep_every_flushed_write_and_invent_nothing() {
    for seed in 100..=140 {
        let policy = if seed % 2 == 0 {
            Policy::Greedy
        } else {
            Policy::CostBenefit
        };
        run(seed, 14, 64, 64, policy, 2500, true);
    }
}

#[test]
fn zone_capacity_below_zone_size_is_used_to_capacity_only() {
    for seed in 200..=215 {
        run(seed, 16, 64, 40, Policy::Greedy, 3000, seed % 2 == 0);
    }
}

#[test]
fn writing_three_times_the_capacity_collects_and_keeps_data() {
    for policy in [Policy::Greedy, Policy::CostBenefit] {
        let mut rng = Rng(7);
        let mut dev = Dev::new(20, 128, 128);
        let mut d = Driver::new(open(&mut dev, config(policy), 0).unwrap());
        let lbas = d.ftl.lbas();
        let mut model = Model::new(lbas);
        for token in 1..=u64::from(3 * lbas) {
            let lba = rng.below(u64::from(lbas)) as u32;
            d.write(&mut dev, lba, &[token]).unwrap();
            model.write(lba, token);
        }
        check_all(&d, &mut dev, &model);
        let s = d.ftl.stats();
        assert!(s.gc_runs > 0 && s.gc_moved > 0, "{s:?}");
        assert_eq!(s.host_blocks, u64::from(3 * lbas));
        let wa = s.device_blocks as f64 / s.host_blocks as f64;
        assert!(
            wa > 1.0 && wa < 6.0,
            "write amplification {wa} ({policy:?})"
        );
        assert_eq!(
            dev.writes, s.device_blocks,
            "the device saw what the FTL counted"
        );
        check_counts(&d);
    }
}

#[test]
fn cost_benefit_prefers_cold_zones_over_slightly_emptier_hot_ones() {
    // Greedy picks the emptiest zone; cost-benefit weighs age, so it may pick another: both
    // must pick a zone that frees space.
    let mut dev = Dev::new(12, 32, 32);
    let mut d = Driver::new(open(&mut dev, config(Policy::CostBenefit), 0).unwrap());
    let lbas = d.ftl.lbas();
    for lba in 0..lbas {
        d.write(&mut dev, lba, &[u64::from(lba) + 1]).unwrap();
    }
    for lba in (0..lbas).step_by(3) {
        d.write(&mut dev, lba, &[9_000_000 + u64::from(lba)])
            .unwrap();
    }
    let v = d.ftl.victim().expect("a victim");
    let z = d.ftl.zones()[v as usize];
    assert_eq!(z.role, Role::Full);
    assert!(z.valid < z.cap);
}

#[test]
fn a_full_device_does_not_deadlock_writers() {
    let mut dev = Dev::new(10, 32, 32);
    let mut d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    let lbas = d.ftl.lbas();
    let mut model = Model::new(lbas);
    let mut token = 1;
    // Fill every logical block, then rewrite the whole device several times in order.
    for round in 0..6 {
        for lba in 0..lbas {
            d.write(&mut dev, lba, &[token])
                .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            model.write(lba, token);
            token += 1;
        }
    }
    check_all(&d, &mut dev, &model);
}

#[test]
fn reads_are_pinned_and_served_in_runs() {
    let mut dev = Dev::new(10, 32, 32);
    let mut d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    d.write(&mut dev, 4, &[1, 2, 3, 4]).unwrap();
    let pins = dev.pins.clone();
    let run = pin_read(d.ftl.map(), &pins, 32, 4, 16);
    let ReadRun::Mapped { pba, len, zone } = run else {
        panic!("{run:?}")
    };
    assert_eq!(len, 4);
    assert_eq!(pba / 32, zone);
    assert_eq!(pins[zone as usize].load(SeqCst), 1);
    pins[zone as usize].fetch_sub(1, SeqCst);
    assert_eq!(
        pin_read(d.ftl.map(), &pins, 32, 0, 3),
        ReadRun::Unmapped { len: 3 }
    );
    assert_eq!(
        pin_read(d.ftl.map(), &pins, 32, 0, 16),
        ReadRun::Unmapped { len: 4 }
    );
    // A later write elsewhere breaks the run where it starts.
    d.write(&mut dev, 6, &[9]).unwrap();
    let ReadRun::Mapped { len, zone, .. } = pin_read(d.ftl.map(), &pins, 32, 4, 16) else {
        panic!()
    };
    assert_eq!(len, 2);
    pins[zone as usize].fetch_sub(1, SeqCst);
    // Past the end: nothing.
    let lbas = d.ftl.lbas();
    assert_eq!(
        pin_read(d.ftl.map(), &pins, 32, lbas, 1),
        ReadRun::Unmapped { len: 0 }
    );
}

#[test]
#[should_panic(expected = "a read is pinned")]
fn the_collector_waits_for_pinned_reads_before_a_reset() {
    let mut dev = Dev::new(10, 16, 16);
    let mut d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    let lbas = d.ftl.lbas();
    for t in 0..3 * u64::from(lbas) {
        d.write(&mut dev, (t % u64::from(lbas)) as u32, &[1 + t])
            .unwrap();
    }
    let victim = d.ftl.victim().unwrap();
    let pins = dev.pins.clone();
    pins[victim as usize].fetch_add(1, SeqCst);
    // The simulated device's wait_reads() panics on a pinned zone: the reset would be unsafe.
    let _ = d.ftl.collect(&mut dev, &mut d.buf);
}

#[test]
fn a_zone_that_fails_a_write_is_emptied_and_retired() {
    let mut dev = Dev::new(14, 32, 32);
    let mut d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    let lbas = d.ftl.lbas();
    let mut model = Model::new(lbas);
    let mut token = 1;
    for lba in 0..lbas / 2 {
        d.write(&mut dev, lba, &[token]).unwrap();
        model.write(lba, token);
        token += 1;
    }
    // The next zone a stream opens fails its first write.
    let open_zone = d
        .ftl
        .zones()
        .iter()
        .position(|z| z.role == Role::Open)
        .unwrap() as u32;
    dev.fail_writes_in = Some(open_zone);
    for lba in lbas / 2..lbas {
        d.write(&mut dev, lba, &[token]).unwrap();
        model.write(lba, token);
        token += 1;
    }
    dev.fail_writes_in = None;
    check_all(&d, &mut dev, &model);
    while d.ftl.zones()[open_zone as usize].role != Role::Retired {
        assert!(d.ftl.collect(&mut dev, &mut d.buf).unwrap().is_some());
    }
    check_all(&d, &mut dev, &model);
    // After a reload the zone reports read-only: still out of use, data intact.
    d.flush(&mut dev).unwrap();
    model.flush();
    let d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    check_all(&d, &mut dev, &model);
}

#[test]
fn an_offlined_zone_is_never_used_and_a_read_only_one_is_emptied() {
    let mut dev = Dev::new(14, 32, 32);
    let mut d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    let lbas = d.ftl.lbas();
    let mut model = Model::new(lbas);
    for lba in 0..lbas {
        d.write(&mut dev, lba, &[100 + u64::from(lba)]).unwrap();
        model.write(lba, 100 + u64::from(lba));
    }
    d.flush(&mut dev).unwrap();
    model.flush();
    let full = d
        .ftl
        .zones()
        .iter()
        .position(|z| z.role == Role::Full)
        .unwrap();
    dev.zones[full].read_only = true;
    let mut d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    check_all(&d, &mut dev, &model);
    assert_eq!(d.ftl.victim(), Some(full as u32));
    d.ftl.collect(&mut dev, &mut d.buf).unwrap();
    assert_eq!(d.ftl.zones()[full].role, Role::Retired);
    check_all(&d, &mut dev, &model);
    // Offline before a load: out of use, the capacity unchanged (it takes from the
    // over-provisioning), the data intact.
    let free = d
        .ftl
        .zones()
        .iter()
        .position(|z| z.role == Role::Free)
        .unwrap();
    d.flush(&mut dev).unwrap();
    dev.zones[free].offline = true;
    let mut d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    assert_eq!(d.ftl.zones()[free].role, Role::Retired);
    check_all(&d, &mut dev, &model);
    for t in 0..4 * u64::from(lbas) {
        let lba = (t * 7 % u64::from(lbas)) as u32;
        d.write(&mut dev, lba, &[5000 + t]).unwrap();
        model.write(lba, 5000 + t);
    }
    check_all(&d, &mut dev, &model);
    // A metadata zone that fails is refused.
    d.flush(&mut dev).unwrap();
    dev.zones[1].read_only = true;
    assert_eq!(
        open(&mut dev, config(Policy::Greedy), 0).err(),
        Some(OpenError::MetaZoneFailed)
    );
}

#[test]
fn capacity_counts_options_and_refuses_small_devices() {
    let dev = Dev::new(16, 64, 64);
    let zones = dev.report();
    let c = Config::default();
    let (lbas, meta) = capacity(&zones, &c).unwrap();
    assert_eq!(meta, [0, 1]);
    // 14 data zones, 4 + 2 + 1 held back: 7 zones of 64 blocks, 90% of it.
    assert_eq!(lbas, 7 * 64 * 90 / 100);
    let more = Config {
        reserved: 2,
        op_percent: 20,
        ..c
    };
    assert_eq!(capacity(&zones, &more).unwrap().0, 5 * 64 * 80 / 100);
    let tiny = Dev::new(8, 64, 64);
    assert_eq!(
        capacity(&tiny.report(), &c).err(),
        Some(OpenError::TooSmall)
    );
    // The map checkpoint must fit a metadata zone with room for a log.
    let narrow = Dev::new(3000, 4, 4);
    assert_eq!(
        capacity(&narrow.report(), &c).err(),
        Some(OpenError::TooSmall)
    );
}

#[test]
fn open_refuses_what_cannot_work() {
    let mut dev = Dev::new(16, 64, 64);
    let c = Config::default();
    assert_eq!(open(&mut dev, c, 6).err(), Some(OpenError::TooManyStreams));
    assert!(open(&mut dev, c, 7).is_ok());
    // Another table over the same metadata with other options.
    let other = Config {
        op_percent: 30,
        ..c
    };
    assert_eq!(open(&mut dev, other, 0).err(), Some(OpenError::Mismatch));
    // Metadata zones overwritten with garbage next to written data.
    let mut d = Driver::new(open(&mut dev, c, 0).unwrap());
    d.write(&mut dev, 0, &[5]).unwrap();
    d.flush(&mut dev).unwrap();
    for pba in 0..2 * 64 {
        dev.data[pba].fill(0xee);
    }
    assert_eq!(open(&mut dev, c, 0).err(), Some(OpenError::NoCheckpoint));
}

#[test]
fn metadata_zones_alternate_and_the_log_survives_many_flushes() {
    let mut dev = Dev::new(16, 64, 64);
    let mut d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    let lbas = d.ftl.lbas();
    let mut model = Model::new(lbas);
    let mut rng = Rng(99);
    for t in 1..400u64 {
        let lba = rng.below(u64::from(lbas)) as u32;
        d.write(&mut dev, lba, &[t]).unwrap();
        model.write(lba, t);
        d.flush(&mut dev).unwrap();
        model.flush();
    }
    assert!(d.ftl.stats().checkpoints > 3, "{:?}", d.ftl.stats());
    dev.crash(&mut rng);
    let d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    check_all(&d, &mut dev, &model);
}

#[test]
fn torn_metadata_falls_back_to_what_is_intact() {
    // Crashes land during commits and checkpoints: every unflushed metadata block is kept or
    // lost at random, many times over.
    for seed in 300..340 {
        let mut rng = Rng(seed);
        let mut dev = Dev::new(12, 32, 32);
        let cfg = config(Policy::Greedy);
        let mut d = Driver::new(open(&mut dev, cfg, 0).unwrap());
        let lbas = d.ftl.lbas();
        let mut model = Model::new(lbas);
        for t in 1..300u64 {
            let lba = rng.below(u64::from(lbas)) as u32;
            d.write(&mut dev, lba, &[t]).unwrap();
            model.write(lba, t);
            if rng.below(4) == 0 {
                d.flush(&mut dev).unwrap();
                model.flush();
            }
        }
        dev.crash(&mut rng);
        let d = Driver::new(open(&mut dev, cfg, 0).unwrap());
        for lba in 0..lbas {
            let got = d.read(&mut dev, lba).unwrap();
            assert!(model.may_be(lba, got), "seed {seed} lba {lba}: {got}");
        }
    }
}

#[test]
fn pins_of_the_map_are_atomics_shared_with_readers() {
    // The map handed to readers is the FTL's own.
    let mut dev = Dev::new(12, 32, 32);
    let d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    let m: &[AtomicU32] = d.ftl.map();
    assert_eq!(m.len(), d.ftl.lbas() as usize);
    assert!(m.iter().all(|e| e.load(SeqCst) == UNMAPPED));
}

#[test]
fn background_collection_stops_when_victims_are_nearly_full() {
    // The device full of valid data, compacted: free zones stay below the background mark, but
    // no victim is worth collecting, so the worker does not loop moving full zones around.
    let mut dev = Dev::new(16, 32, 32);
    let mut d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
    let lbas = d.ftl.lbas();
    for round in 0..4u64 {
        for lba in 0..lbas {
            d.write(&mut dev, lba, &[round * 100_000 + u64::from(lba) + 1])
                .unwrap();
        }
    }
    let mut runs = 0;
    while d.ftl.wants_gc() {
        d.ftl.collect(&mut dev, &mut d.buf).unwrap();
        runs += 1;
        assert!(runs < 64, "background collection does not settle");
    }
    if let Some(v) = d.ftl.victim() {
        let z = d.ftl.zones()[v as usize];
        assert!(z.cap - z.valid < z.cap / 4 || d.ftl.free_zones() >= 3 + 2 + 2);
    }
}

#[test]
fn a_torn_checkpoint_falls_back_to_the_older_one() {
    for seed in 400..440 {
        let mut rng = Rng(seed);
        let mut dev = Dev::new(12, 32, 32);
        let cfg = config(Policy::Greedy);
        let mut d = Driver::new(open(&mut dev, cfg, 0).unwrap());
        let lbas = d.ftl.lbas();
        let mut model = Model::new(lbas);
        for t in 1..200u64 {
            let lba = rng.below(u64::from(lbas)) as u32;
            d.write(&mut dev, lba, &[t]).unwrap();
            model.write(lba, t);
        }
        d.flush(&mut dev).unwrap();
        model.flush();
        // A checkpoint whose flushes never happen: cut at a random point of its writes.
        dev.lose_flushes = true;
        d.ftl.checkpoint(&mut dev, &mut d.buf).unwrap();
        dev.lose_flushes = false;
        dev.crash(&mut rng);
        let d = Driver::new(open(&mut dev, cfg, 0).expect("falls back"));
        for lba in 0..lbas {
            assert_eq!(
                d.read(&mut dev, lba),
                Some(model.durable[lba as usize]),
                "seed {seed}"
            );
        }
    }
}

#[test]
fn a_read_only_zone_found_at_load_is_emptied_without_loss() {
    // The guest test's geometry: 32 zones of 512 blocks, 4 streams, 8 open zones; a sequential
    // fill in 16-block writes, a clean stop, the first data zone read-only at the next load,
    // then background collection as the target runs it.
    let mut dev = Dev::new(32, 512, 512);
    let cfg = Config {
        streams: 4,
        ..config(Policy::Greedy)
    };
    let mut d = Driver::new(open(&mut dev, cfg, 8).unwrap());
    let lbas = d.ftl.lbas();
    let mut model = Model::new(lbas);
    let mut lba = 0;
    while lba < lbas {
        let n = 16.min(lbas - lba);
        let tokens: Vec<u64> = (0..n).map(|i| 7 + u64::from(lba + i)).collect();
        d.write(&mut dev, lba, &tokens).unwrap();
        for i in 0..n {
            model.write(lba + i, 7 + u64::from(lba + i));
        }
        lba += n;
    }
    d.flush(&mut dev).unwrap();
    model.flush();
    check_all(&d, &mut dev, &model);
    dev.zones[2].read_only = true;
    let mut d = Driver::new(open(&mut dev, cfg, 8).unwrap());
    check_counts(&d);
    check_all(&d, &mut dev, &model);
    while d.ftl.wants_gc() {
        d.ftl.collect(&mut dev, &mut d.buf).unwrap();
        check_counts(&d);
        check_all(&d, &mut dev, &model);
    }
    assert_eq!(d.ftl.zones()[2].role, Role::Retired);
    check_all(&d, &mut dev, &model);
    // Emptied and still read-only at the next load: retired by the load itself.
    d.flush(&mut dev).unwrap();
    let d = Driver::new(open(&mut dev, cfg, 8).unwrap());
    assert_eq!(d.ftl.zones()[2].role, Role::Retired);
    check_counts(&d);
    check_all(&d, &mut dev, &model);
}

#[test]
fn writes_logged_past_the_pending_log_survive_a_reload() {
    // The target's worker places and writes a batch before logging any of it. A batch whose
    // placements were each checked against the log's room alone logs more than the pending log
    // holds: the next commit must still make every change durable.
    let mut dev = Dev::new(24, 256, 256);
    let cfg = config(Policy::Greedy);
    let mut d = Driver::new(open(&mut dev, cfg, 0).unwrap());
    let lbas = d.ftl.lbas();
    let mut model = Model::new(lbas);
    let mut lba = 0;
    // Sequential 16-block writes until the log holds one more write, not two.
    while d.ftl.log_room(32) {
        let tokens: Vec<u64> = (0..16).map(|i| 5 + u64::from(lba + i)).collect();
        d.write(&mut dev, lba, &tokens).unwrap();
        for (i, &t) in tokens.iter().enumerate() {
            model.write(lba + i as u32, t);
        }
        lba += 16;
    }
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut at = 0;
        while at < 16 {
            assert!(d.ftl.log_room((16 - at) as usize));
            let (pba, len) = d.ftl.place(16 - at).unwrap();
            let mut data = Vec::new();
            for l in lba + at..lba + at + len {
                data.extend(block_of(5 + u64::from(l), l));
                model.write(l, 5 + u64::from(l));
            }
            dev.write(pba, &data, false).unwrap();
            held.push((lba + at, pba, len));
            at += len;
        }
        lba += 16;
    }
    assert!(lba <= lbas);
    for (l, pba, len) in held {
        d.ftl.written(l, pba, len);
    }
    check_all(&d, &mut dev, &model);
    d.flush(&mut dev).unwrap();
    model.flush();
    dev.crash(&mut Rng(7));
    let d = Driver::new(open(&mut dev, cfg, 0).unwrap());
    check_counts(&d);
    check_all(&d, &mut dev, &model);
}

#[test]
fn blocks_of_a_zone_gone_offline_fail_to_read_until_written_again() {
    // A zone holding data goes offline between two loads: its blocks cannot be read, and a
    // read of one fails (never zeroes or other data) until the block is written again.
    let mut dev = Dev::new(14, 32, 32);
    let cfg = config(Policy::Greedy);
    let mut d = Driver::new(open(&mut dev, cfg, 0).unwrap());
    let lbas = d.ftl.lbas();
    let mut model = Model::new(lbas);
    for lba in 0..lbas {
        d.write(&mut dev, lba, &[100 + u64::from(lba)]).unwrap();
        model.write(lba, 100 + u64::from(lba));
    }
    d.flush(&mut dev).unwrap();
    model.flush();
    let gone = d
        .ftl
        .zones()
        .iter()
        .position(|z| z.role == Role::Full && z.valid > 0)
        .unwrap();
    let held = d.ftl.zones()[gone].valid;
    dev.zones[gone].offline = true;
    let mut d = Driver::new(open(&mut dev, cfg, 0).unwrap());
    assert_eq!(d.ftl.zones()[gone].role, Role::Retired);
    check_counts(&d);
    let failed = (0..lbas).filter(|&l| d.read(&mut dev, l).is_none()).count();
    assert_eq!(
        failed as u32, held,
        "reads of the offline zone's blocks fail"
    );
    for lba in 0..lbas {
        if let Some(got) = d.read(&mut dev, lba) {
            assert_eq!(got, model.current[lba as usize], "lba {lba}");
        }
    }
    // Written again (the device's sim refuses any write to the offline zone): all readable,
    // also after another load.
    for lba in 0..lbas {
        d.write(&mut dev, lba, &[900 + u64::from(lba)]).unwrap();
        model.write(lba, 900 + u64::from(lba));
    }
    check_counts(&d);
    check_all(&d, &mut dev, &model);
    d.flush(&mut dev).unwrap();
    let d = Driver::new(open(&mut dev, cfg, 0).unwrap());
    check_counts(&d);
    check_all(&d, &mut dev, &model);
}

#[test]
fn the_collector_maps_blocks_where_their_appends_landed() {
    // Chunks of 1 to 64 blocks, staging areas of 1 to 64 blocks: appends in flight together land
    // in any order (the simulated device shuffles them), and each block is mapped where its
    // chunk landed.
    for (append_blocks, stage) in [(1, 64), (3, 64), (8, 64), (64, 64), (8, 1), (8, 13)] {
        for policy in [Policy::Greedy, Policy::CostBenefit] {
            let mut rng = Rng(u64::from(append_blocks * 100 + stage));
            let mut dev = Dev::new(20, 128, 128);
            dev.append_blocks = append_blocks;
            dev.staged = vec![vec![0u8; crate::format::BLOCK]; stage as usize];
            let mut d = Driver::new(open(&mut dev, config(policy), 0).unwrap());
            let lbas = d.ftl.lbas();
            let mut model = Model::new(lbas);
            for token in 1..=u64::from(3 * lbas) {
                let n = 1 + rng.below(4) as u32;
                let lba = rng.below(u64::from(lbas - n + 1)) as u32;
                let tokens: Vec<u64> = (0..n).map(|i| token * 8 + u64::from(i)).collect();
                d.write(&mut dev, lba, &tokens).unwrap();
                for (i, &t) in tokens.iter().enumerate() {
                    model.write(lba + i as u32, t);
                }
            }
            check_all(&d, &mut dev, &model);
            check_counts(&d);
            let s = d.ftl.stats();
            assert!(s.gc_moved > 0 && dev.appends > 0, "{s:?}");
            if append_blocks > 1 && stage > 1 {
                assert!(dev.appends < s.gc_moved, "chunks of several blocks");
            }
            if stage / append_blocks >= 2 {
                assert!(dev.overtaken > 0, "appends overtook each other");
            }
            // And after a reload, from the logs of the moves.
            d.flush(&mut dev).unwrap();
            model.flush();
            let d = Driver::new(open(&mut dev, config(policy), 0).unwrap());
            check_all(&d, &mut dev, &model);
        }
    }
}

#[test]
fn a_failed_or_misreported_append_moves_nothing_and_loses_nothing() {
    for misreport in [false, true] {
        let mut rng = Rng(31);
        let mut dev = Dev::new(16, 64, 64);
        let mut d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
        let lbas = d.ftl.lbas();
        let mut model = Model::new(lbas);
        let mut token = 1;
        for _ in 0..2 * lbas {
            let lba = rng.below(u64::from(lbas)) as u32;
            d.write(&mut dev, lba, &[token]).unwrap();
            model.write(lba, token);
            token += 1;
        }
        let moved = d.ftl.stats().gc_moved;
        if misreport {
            dev.misreport_next_append = true;
        } else {
            dev.fail_next_append = true;
        }
        let failed = loop {
            match d.ftl.collect(&mut dev, &mut d.buf) {
                Err(e) => break e,
                Ok(Some(_)) if d.ftl.stats().gc_moved == moved => continue,
                other => panic!("the append did not fail the move: {other:?}"),
            }
        };
        assert_eq!(failed.0, -5);
        assert!(!dev.fail_next_append && !dev.misreport_next_append);
        check_all(&d, &mut dev, &model);
        check_counts(&d);
        // The collector's zone is out of use: emptied and retired like any failed zone.
        let retired = |d: &Driver| {
            d.ftl
                .zones()
                .iter()
                .filter(|z| z.role == Role::Retired)
                .count()
        };
        let mut rounds = 0;
        while retired(&d) == 0 {
            assert!(d.ftl.collect(&mut dev, &mut d.buf).unwrap().is_some());
            rounds += 1;
            assert!(rounds < 100, "the failed zone is never retired");
        }
        for _ in 0..lbas {
            let lba = rng.below(u64::from(lbas)) as u32;
            d.write(&mut dev, lba, &[token]).unwrap();
            model.write(lba, token);
            token += 1;
        }
        check_all(&d, &mut dev, &model);
        d.flush(&mut dev).unwrap();
        model.flush();
        let d = Driver::new(open(&mut dev, config(Policy::Greedy), 0).unwrap());
        check_all(&d, &mut dev, &model);
    }
}

#[test]
fn zone_ages_survive_a_reload_and_zones_written_since_the_checkpoint_are_youngest() {
    let mut rng = Rng(5);
    let mut dev = Dev::new(24, 32, 32);
    let cfg = config(Policy::CostBenefit);
    let mut d = Driver::new(open(&mut dev, cfg, 0).unwrap());
    let lbas = d.ftl.lbas();
    let mut model = Model::new(lbas);
    let mut token = 1;
    // Cold data first, then a hot set rewritten over and over.
    for lba in 0..lbas {
        d.write(&mut dev, lba, &[token]).unwrap();
        model.write(lba, token);
        token += 1;
    }
    for _ in 0..3 * lbas {
        let lba = rng.below(u64::from(lbas / 4)) as u32;
        d.write(&mut dev, lba, &[token]).unwrap();
        model.write(lba, token);
        token += 1;
    }
    let ages = |d: &Driver| -> Vec<(usize, u64)> {
        let zones = d.ftl.zones();
        (0..zones.len())
            .filter(|&i| zones[i].role == Role::Full)
            .map(|i| (i, zones[i].stamp))
            .collect()
    };
    // Checkpointed ages come back as they were.
    d.checkpoint(&mut dev).unwrap();
    model.flush();
    let before = ages(&d);
    assert!(before.iter().any(|&(_, a)| a > 1), "zones have ages");
    let mut d = Driver::new(open(&mut dev, cfg, 0).unwrap());
    let after = ages(&d);
    let newest = before.iter().map(|&(_, a)| a).max().unwrap();
    for &(i, a) in &after {
        match before.iter().find(|&&(j, _)| j == i) {
            Some(&(_, was)) => assert_eq!(a, was, "zone {i}'s age"),
            // The streams' zones, finished by the load: full from then on.
            None => assert!(a > newest, "zone {i} finished at load has age {a}"),
        }
    }
    assert!(
        after.len() > before.len(),
        "the load finished the open zones"
    );
    check_all(&d, &mut dev, &model);
    // Zones filled after the checkpoint, known only from the log, are younger than any it
    // dates.
    let newest = after.iter().map(|&(_, a)| a).max().unwrap();
    for _ in 0..lbas / 2 {
        let lba = rng.below(u64::from(lbas / 4)) as u32;
        d.write(&mut dev, lba, &[token]).unwrap();
        model.write(lba, token);
        token += 1;
    }
    d.flush(&mut dev).unwrap();
    model.flush();
    let logged: Vec<usize> = ages(&d)
        .into_iter()
        .filter(|&(_, a)| a > newest)
        .map(|(i, _)| i)
        .collect();
    assert!(!logged.is_empty());
    let d = Driver::new(open(&mut dev, cfg, 0).unwrap());
    for (i, a) in ages(&d) {
        if logged.contains(&i) {
            assert!(
                a > newest,
                "zone {i} filled since the checkpoint has age {a}"
            );
        }
    }
    check_all(&d, &mut dev, &model);
}
