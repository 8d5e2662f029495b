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
    // A stall counts for at most four mean completion times.
    let before = est.oversleep_ns();
    est.record_sleep(12_000, 4_000_000);
    assert_eq!(est.oversleep_ns(), before + (160_000 - before) / 8);
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
