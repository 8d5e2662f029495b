// SPDX-License-Identifier: GPL-2.0
use crate::policy::*;

#[test]
fn numbers_must_be_plain_decimals_in_range() {
    assert_eq!(parse_in_range(b"42\n", 1, 100), Ok(42));
    assert_eq!(parse_in_range(b"  7 ", 0, 7), Ok(7));
    for bad in [
        &b""[..],
        b"\n",
        b"-1",
        b"+5",
        b"0x10",
        b"1e3",
        b"12a",
        b"101",
        b"99999999999999999999999",
    ] {
        assert_eq!(parse_in_range(bad, 1, 100), Err(Invalid), "{:?}", bad);
    }
    assert_eq!(parse_in_range(b"0", 1, 100), Err(Invalid));
    assert_eq!(parse_in_range(&[0xff, 0x31], 0, 100), Err(Invalid));
    assert_eq!(parse_u32_in_range(b"64", 0, MAX_QUEUES), Ok(64));
    assert_eq!(parse_u32_in_range(b"65", 0, MAX_QUEUES), Err(Invalid));
}

#[test]
fn booleans_are_zero_or_one() {
    assert_eq!(parse_bool(b"1\n"), Ok(true));
    assert_eq!(parse_bool(b"0"), Ok(false));
    for bad in [&b"2"[..], b"yes", b"", b"01", b"true"] {
        assert_eq!(parse_bool(bad), Err(Invalid));
    }
}

#[test]
fn block_sizes_are_powers_of_two_up_to_4k() {
    for ok in [512, 1024, 2048, 4096] {
        assert_eq!(parse_block_size(format!("{ok}\n").as_bytes()), Ok(ok));
    }
    for bad in [&b"0"[..], b"256", b"1000", b"3072", b"8192", b"abc"] {
        assert_eq!(parse_block_size(bad), Err(Invalid));
    }
}

#[test]
fn modes_parse_and_print() {
    assert_eq!(IrqMode::parse(b"0\n"), Ok(IrqMode::None));
    assert_eq!(IrqMode::parse(b"1"), Ok(IrqMode::Softirq));
    assert_eq!(IrqMode::parse(b"2"), Ok(IrqMode::Timer));
    assert_eq!(IrqMode::parse(b"3"), Err(Invalid));
    assert_eq!(IrqMode::Timer.as_u32(), 2);
    assert_eq!(PollMode::parse(b"hybrid\n"), Ok(PollMode::Hybrid));
    assert_eq!(PollMode::parse(b"classic"), Ok(PollMode::Classic));
    assert_eq!(PollMode::parse(b"Hybrid"), Err(Invalid));
    assert_eq!(PollMode::parse(b"-1"), Err(Invalid));
    assert_eq!(PollMode::Hybrid.name(), "hybrid");
}

#[test]
fn ring_is_a_bounded_fifo() {
    let mut ring = Ring::new(3);
    assert!(ring.is_empty());
    assert_eq!(ring.pop(), None);
    assert_eq!(
        (ring.push(), ring.push(), ring.push()),
        (Some(0), Some(1), Some(2))
    );
    assert_eq!(ring.push(), None);
    assert_eq!(ring.front(), Some(0));
    assert_eq!(ring.pop(), Some(0));
    // Wraps around.
    assert_eq!(ring.push(), Some(0));
    assert_eq!(ring.len(), 3);
    assert_eq!(
        (ring.pop(), ring.pop(), ring.pop()),
        (Some(1), Some(2), Some(0))
    );
    assert_eq!(ring.pop(), None);
}

#[test]
fn estimator_tracks_the_running_mean() {
    let mut est = CompletionEstimator::default();
    assert_eq!(est.sleep_ns(0), 0);
    est.record(20_000);
    assert_eq!(est.mean_ns(), 20_000);
    est.record(28_000);
    assert_eq!(est.mean_ns(), 21_000);
    est.record(13_000);
    assert_eq!(est.mean_ns(), 20_000);
    assert_eq!(est.samples(), 3);
    // Many samples converge on the new value.
    for _ in 0..100 {
        est.record(40_000);
    }
    assert!(est.mean_ns() > 39_900 && est.mean_ns() <= 40_000);
}

#[test]
fn hybrid_sleeps_until_half_the_mean() {
    let mut est = CompletionEstimator::default();
    est.record(40_000);
    assert_eq!(est.sleep_ns(0), 20_000);
    assert_eq!(est.sleep_ns(12_000), 8_000);
    // Too short to be worth a sleep, or already past half the mean.
    assert_eq!(est.sleep_ns(16_000), 0);
    assert_eq!(est.sleep_ns(30_000), 0);
    let mut fast = CompletionEstimator::default();
    fast.record(8_000);
    assert_eq!(fast.sleep_ns(0), 0);
}

#[test]
fn hybrid_sleep_allows_for_oversleep() {
    let mut est = CompletionEstimator::default();
    est.record(40_000);
    // The first sleep lasted 6 us longer than asked: later ones are 6 us shorter.
    est.record_sleep(20_000, 26_000);
    assert_eq!(est.oversleep_ns(), 6_000);
    assert_eq!(est.sleep_ns(0), 14_000);
    // Later oversleeps move the estimate by 1/8.
    est.record_sleep(14_000, 28_000);
    assert_eq!(est.oversleep_ns(), 7_000);
    // A sleep shorter than asked counts as no oversleep.
    est.record_sleep(12_000, 11_000);
    assert_eq!(est.oversleep_ns(), 7_000 - 7_000 / 8);
    // A stall counts for at most one mean completion time.
    let before = est.oversleep_ns();
    est.record_sleep(12_000, 4_000_000);
    assert_eq!(est.oversleep_ns(), before + (40_000 - before) / 8);
}

#[test]
fn a_single_stall_does_not_stop_hybrid_sleeping() {
    // 2 ms completions, sleeps that end 200 us late (a busy emulator).
    let mut est = CompletionEstimator::default();
    est.record(2_000_000);
    for _ in 0..20 {
        let asked = est.plan_sleep(0);
        assert!(asked > 0);
        est.record_sleep(asked, asked + 200_000);
    }
    assert_eq!(est.sleep_ns(0), 1_000_000 - est.oversleep_ns());
    // One 50 ms stall: still sleeping, a little shorter.
    let asked = est.plan_sleep(0);
    est.record_sleep(asked, asked + 50_000_000);
    assert!(est.oversleep_ns() <= 200_000 + 2_000_000 / 8);
    assert!(est.plan_sleep(0) >= 500_000, "{:?}", est);
    // A run of them stops it: sleeping would overshoot the completion.
    let mut stalls = 1;
    while est.plan_sleep(0) > 0 {
        let asked = est.sleep_ns(0);
        est.record_sleep(asked, asked + 50_000_000);
        stalls += 1;
        assert!(stalls < 20);
    }
    assert!(stalls >= 5, "stopped after {stalls} stalls");
}

#[test]
fn hybrid_sleep_retries_after_oversleeping() {
    let mut est = CompletionEstimator::default();
    est.record(200_000);
    // Sleeping costs more than half the mean: spin instead...
    est.record_sleep(100_000, 250_000);
    assert_eq!(est.oversleep_ns(), 150_000);
    assert_eq!(est.plan_sleep(0), 0);
    assert!(est.oversleep_ns() < 150_000);
    // ...but the estimate decays, and a sleep is tried again after a while.
    let tries = (0..2000).take_while(|_| est.plan_sleep(0) == 0).count();
    assert!(tries > 50 && tries < 2000, "retried after {tries}");
    // Past half the mean or without a mean, the estimate does not decay.
    let mut est = CompletionEstimator::default();
    est.record(200_000);
    est.record_sleep(100_000, 250_000);
    for _ in 0..100 {
        assert_eq!(est.plan_sleep(97_000), 0);
    }
    assert_eq!(est.oversleep_ns(), 150_000);
    let mut est = CompletionEstimator::default();
    est.record_sleep(10_000, 20_000);
    assert_eq!(est.plan_sleep(0), 0);
}

#[test]
fn disk_names_fit_disk_name_len() {
    assert!(valid_disk_name(b"bp0"));
    assert!(valid_disk_name(&[b'a'; 31]));
    assert!(!valid_disk_name(&[b'a'; 32]));
    assert!(!valid_disk_name(b""));
}

#[test]
fn features_list_every_attribute_once() {
    let listed: Vec<&str> = FEATURES.split(',').collect();
    let mut want: Vec<&str> = Attr::ALL.iter().map(|a| a.name()).collect();
    want.extend(["power", "stats"]);
    assert_eq!(listed, want);
}

fn shown(attr: Attr, p: &Params) -> String {
    let mut s = String::new();
    attr.show(p, &mut s).unwrap();
    s
}

/// Each attribute's good values (with their shown form) and bad values, as the guest suite
/// writes them too.
fn cases(
    attr: Attr,
) -> (
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
) {
    match attr {
        Attr::Size => (
            &[("1", "1\n"), ("65536\n", "65536\n"), (" 32 ", "32\n")],
            &["0", "-1", "abc", "65537", "1.5", "", "0x10", "+3"],
        ),
        Attr::BlockSize => (
            &[("512", "512\n"), ("4096", "4096\n")],
            &["0", "256", "1000", "3072", "8192", "x"],
        ),
        Attr::SubmitQueues => (&[("1", "1\n"), ("64", "64\n")], &["0", "65", "-1", "two"]),
        Attr::PollQueues => (&[("0", "0\n"), ("64", "64\n")], &["65", "-1", "x"]),
        Attr::HwQueueDepth => (&[("1", "1\n"), ("4096", "4096\n")], &["0", "4097", "x"]),
        Attr::CompletionNsec => (
            &[("0", "0\n"), ("1000000000", "1000000000\n")],
            &["-1", "1000000001", "1e3", "x"],
        ),
        Attr::IrqMode => (
            &[("0", "0\n"), ("1", "1\n"), ("2", "2\n")],
            &["3", "-1", "x", "10"],
        ),
        Attr::PollMode => (
            &[("hybrid\n", "hybrid\n"), ("classic", "classic\n")],
            &["spin", "Classic", "1", ""],
        ),
    }
}

#[test]
fn every_attribute_stores_good_values_and_refuses_bad_ones_unchanged() {
    for attr in Attr::ALL {
        let (good, bad) = cases(attr);
        for (text, show) in good {
            let mut p = Params::default();
            assert_eq!(
                attr.store(&mut p, text.as_bytes()),
                Ok(()),
                "{attr:?} {text:?}"
            );
            assert_eq!(shown(attr, &p), *show, "{attr:?} {text:?}");
            // Only this attribute changed.
            for other in Attr::ALL.into_iter().filter(|o| *o != attr) {
                assert_eq!(shown(other, &p), shown(other, &Params::default()));
            }
        }
        for text in bad {
            let mut p = Params::default();
            assert_eq!(
                attr.store(&mut p, text.as_bytes()),
                Err(Invalid),
                "{attr:?} {text:?}"
            );
            assert_eq!(p, Params::default(), "{attr:?} changed after {text:?}");
        }
    }
}

#[test]
fn refusal_messages_name_the_limits() {
    let limits = [
        (Attr::Size, MAX_SIZE_MIB),
        (Attr::SubmitQueues, MAX_QUEUES.into()),
        (Attr::PollQueues, MAX_QUEUES.into()),
        (Attr::HwQueueDepth, MAX_QUEUE_DEPTH.into()),
        (Attr::CompletionNsec, MAX_COMPLETION_NSEC),
    ];
    for (attr, max) in limits {
        assert!(
            attr.expected().ends_with(&format!("..={max}")),
            "{attr:?}: {}",
            attr.expected()
        );
        // The limit itself is accepted, one more is not.
        let mut p = Params::default();
        assert_eq!(attr.store(&mut p, max.to_string().as_bytes()), Ok(()));
        assert_eq!(
            attr.store(&mut p, (max + 1).to_string().as_bytes()),
            Err(Invalid)
        );
    }
}

#[test]
fn defaults_and_derived_values() {
    let p = Params::default();
    assert_eq!(
        (
            p.size_mib,
            p.block_size,
            p.submit_queues,
            p.poll_queues,
            p.queue_depth
        ),
        (256, 512, 1, 1, 64)
    );
    assert_eq!(
        (p.irq_mode, p.poll_mode, p.completion_nsec),
        (IrqMode::None, PollMode::Classic, 0)
    );
    assert_eq!(p.capacity_bytes(), 256 << 20);
    assert_eq!(p.capacity_sectors() * 512, p.capacity_bytes());
    assert_eq!(p.hw_queues(), 2);
    assert!(!p.is_poll_queue(0) && p.is_poll_queue(1) && !p.is_poll_queue(2));
    let big = Params {
        size_mib: MAX_SIZE_MIB,
        submit_queues: MAX_QUEUES,
        poll_queues: MAX_QUEUES,
        ..p
    };
    assert_eq!(big.capacity_sectors(), (MAX_SIZE_MIB << 20) / 512);
    assert_eq!(big.hw_queues(), 128);
    assert!(!big.is_poll_queue(63) && big.is_poll_queue(64) && big.is_poll_queue(127));
    // Classic devices never sleep and keep the non-blocking dispatch.
    assert!(!p.blocking() && !p.hybrid_sleeps());
    let timed = Params {
        completion_nsec: 20_000,
        ..p
    };
    assert!(!timed.blocking() && !timed.hybrid_sleeps());
    assert!(timed.timed(false) && !p.timed(false) && p.timed(true));
    // Hybrid: blocking with poll queues; sleeps only when requests take time.
    let hybrid = Params {
        poll_mode: PollMode::Hybrid,
        ..p
    };
    assert!(hybrid.blocking() && !hybrid.hybrid_sleeps());
    let hybrid = Params {
        completion_nsec: 2_000_000,
        ..hybrid
    };
    assert!(hybrid.blocking() && hybrid.hybrid_sleeps());
    let no_poll = Params {
        poll_queues: 0,
        ..hybrid
    };
    assert!(!no_poll.blocking() && !no_poll.hybrid_sleeps());
}

#[test]
fn ranges_split_into_chunk_pieces() {
    let all = |pos, len| pieces(pos, len).collect::<Vec<_>>();
    let piece = |index, offset, len| Piece { index, offset, len };
    assert_eq!(all(0, 0), vec![]);
    assert_eq!(all(0, 4096), vec![piece(0, 0, 4096)]);
    assert!(all(0, 4096)[0].is_whole());
    assert_eq!(all(512, 512), vec![piece(0, 512, 512)]);
    // 512-byte sectors 3..27 (the guest suite's unaligned dd) start and end inside a chunk...
    assert_eq!(
        all(1536, 12288),
        vec![
            piece(0, 1536, 2560),
            piece(1, 0, 4096),
            piece(2, 0, 4096),
            piece(3, 0, 1536)
        ]
    );
    // ...and the pieces always add up to the range, contiguous.
    for (pos, len) in [(1, 1), (4095, 2), (4096 * 7 + 100, 10_000), (0, 1 << 20)] {
        let ps = all(pos, len);
        assert_eq!(ps.iter().map(|p| p.len as u64).sum::<u64>(), len);
        let mut at = pos;
        for p in ps {
            assert_eq!(p.index as u64 * 4096 + p.offset as u64, at);
            assert!(p.len > 0 && p.offset + p.len <= CHUNK);
            at += p.len as u64;
        }
    }
    // No overflow at the end of the address space.
    assert_eq!(
        all(u64::MAX - 1, 10).iter().map(|p| p.len).sum::<usize>(),
        1
    );
}

#[test]
fn requests_must_lie_within_the_capacity() {
    assert!(in_range(0, 4096, 4096));
    assert!(in_range(4096, 0, 4096));
    assert!(!in_range(1, 4096, 4096));
    assert!(!in_range(4096, 512, 4096));
    assert!(!in_range(u64::MAX, 2, u64::MAX));
}

#[test]
fn stats_lines_carry_every_field() {
    let mut s = String::new();
    let p = Params {
        completion_nsec: 2_000_000,
        poll_mode: PollMode::Hybrid,
        ..Params::default()
    };
    write_device_stats(&mut s, &p, 3).unwrap();
    assert_eq!(
        s,
        "poll_mode=hybrid irqmode=0 completion_nsec=2000000 timeouts=3\n"
    );
    let stats = QueueStats {
        requests: 10,
        completed: 9,
        polls: 8,
        empty_polls: 7,
        sleeps: 6,
        sleep_ns: 5,
        timeouts: 4,
    };
    let mut est = CompletionEstimator::default();
    est.record(2_000_000);
    let mut s = String::new();
    write_queue_stats(&mut s, 1, true, &stats, 1, &est).unwrap();
    assert_eq!(
        s,
        "queue=1 type=poll requests=10 completed=9 inflight=1 polls=8 empty_polls=7 sleeps=6 \
         sleep_ns=5 mean_ns=2000000 oversleep_ns=0 timeouts=4\n"
    );
    let mut s = String::new();
    write_queue_stats(&mut s, 0, false, &QueueStats::default(), 0, &est).unwrap();
    assert!(s.starts_with("queue=0 type=default requests=0 "), "{s}");
}
