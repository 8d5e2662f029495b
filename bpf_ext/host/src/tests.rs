// SPDX-License-Identifier: GPL-2.0
use crate::limiter::*;

const MS: u64 = 1_000_000;

fn limiter(rate: u64, burst: u64) -> Limiter {
    Limiter::new(Config::new(rate, burst).unwrap())
}

#[test]
fn config_bounds() {
    assert_eq!(Config::new(0, 1), Err(ConfigError::Rate));
    assert_eq!(Config::new(MAX_RATE + 1, 1), Err(ConfigError::Rate));
    assert_eq!(Config::new(1, 0), Err(ConfigError::Burst));
    assert_eq!(Config::new(1, MAX_BURST + 1), Err(ConfigError::Burst));
    let c = Config::new(MAX_RATE, MAX_BURST).unwrap();
    assert_eq!((c.rate(), c.burst()), (MAX_RATE, MAX_BURST));
}

#[test]
fn a_new_key_has_a_full_bucket_then_drops() {
    let mut l = limiter(1, 10);
    let passed = (0..50).filter(|_| l.admit(7, 1, 1000)).count();
    assert_eq!(passed, 10);
    let s = l.stats();
    assert_eq!((s.admitted, s.dropped, s.keys, s.evicted), (10, 40, 1, 0));
}

#[test]
fn refills_at_the_rate_and_caps_at_burst() {
    let mut l = limiter(100, 5); // a token every 10 ms
    let t0 = 1_000 * MS;
    for _ in 0..5 {
        assert!(l.admit(1, 1, t0));
    }
    assert!(!l.admit(1, 1, t0));
    assert!(!l.admit(1, 1, t0 + 9 * MS));
    assert!(l.admit(1, 1, t0 + 10 * MS));
    assert!(!l.admit(1, 1, t0 + 10 * MS));
    // Credit carries over: 25 ms later two tokens and a half, so two pass and the half stays.
    assert!(l.admit(1, 1, t0 + 35 * MS));
    assert!(l.admit(1, 1, t0 + 35 * MS));
    assert!(!l.admit(1, 1, t0 + 35 * MS));
    assert!(l.admit(1, 1, t0 + 40 * MS));
    // An hour idle refills to the burst, not beyond.
    let later = t0 + 3_600_000 * MS;
    assert_eq!((0..20).filter(|_| l.admit(1, 1, later)).count(), 5);
}

#[test]
fn cost_is_charged_whole_or_not_at_all() {
    let mut l = limiter(1000, 1500);
    assert!(l.admit(3, 1000, 0));
    assert!(!l.admit(3, 1000, 0)); // 500 left: refused, nothing taken
    assert!(l.admit(3, 500, 0));
    assert!(!l.admit(3, 1, 0));
}

#[test]
fn keys_are_independent() {
    let mut l = limiter(1, 3);
    for key in 0..100u64 {
        assert_eq!(
            (0..5).filter(|_| l.admit(key << 16 | 9000, 1, 0)).count(),
            3,
            "key {key}"
        );
    }
    assert_eq!(l.stats().keys, 100);
}

#[test]
fn a_clock_going_back_adds_nothing() {
    let mut l = limiter(1_000_000, 1);
    assert!(l.admit(5, 1, 10 * MS));
    assert!(!l.admit(5, 1, 5 * MS));
    assert!(!l.admit(5, 1, 10 * MS));
    assert!(l.admit(5, 1, 11 * MS));
}

#[test]
fn a_full_table_evicts_the_least_recently_used_key() {
    let mut l = limiter(1, 1);
    // Far more keys than slots: every key still gets a bucket (new ones start full).
    for key in 0..(SLOTS as u64 * 4) {
        assert!(l.admit(key, 1, key), "key {key}");
    }
    let s = l.stats();
    assert!(s.keys <= SLOTS as u64);
    assert_eq!(s.keys + s.evicted, SLOTS as u64 * 4);
    assert!(s.evicted > 0);
    // The last key is still there: its empty bucket drops.
    assert!(!l.admit(SLOTS as u64 * 4 - 1, 1, SLOTS as u64 * 4));
}

#[test]
fn no_overflow_at_the_limits() {
    let mut l = limiter(MAX_RATE, MAX_BURST);
    assert!(l.admit(u64::MAX, u32::MAX, 0));
    assert!(l.admit(u64::MAX, u32::MAX, u64::MAX));
    let mut l = limiter(MAX_RATE, 1);
    assert!(l.admit(0, 1, u64::MAX));
    assert!(!l.admit(0, u32::MAX, u64::MAX));
}

#[test]
fn reconfigure_forgets_buckets_keeps_counts() {
    let mut l = limiter(1, 1);
    assert!(l.admit(1, 1, 0));
    assert!(!l.admit(1, 1, 0));
    l.reconfigure(Config::new(1, 2).unwrap());
    assert_eq!(l.config().burst(), 2);
    assert!(l.admit(1, 1, 0));
    assert!(l.admit(1, 1, 0));
    assert!(!l.admit(1, 1, 0));
    let s = l.stats();
    assert_eq!((s.admitted, s.dropped, s.keys), (3, 2, 1));
}
