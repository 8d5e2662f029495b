// SPDX-License-Identifier: GPL-2.0
//! Pure logic of the tool (no libbpf): log2 histograms as events.bpf.c fills them, and bpf_ext's
//! statistics file.

/// A log2 histogram: `buckets[i]` counts values `v` with `floor(log2(v)) == i` (`v` of 0 and 1 in
/// bucket 0).
pub struct Log2Hist {
    pub buckets: Vec<u64>,
}

impl Log2Hist {
    /// The values a bucket holds: `[lo, hi)`.
    pub fn bounds(bucket: usize) -> (u64, u64) {
        let lo = if bucket == 0 { 0 } else { 1u64 << bucket };
        let hi = 1u64.checked_shl(bucket as u32 + 1).unwrap_or(u64::MAX);
        (lo, hi)
    }

    pub fn total(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The bucket holding the value of rank `ceil(q * total)` (1-based), `None` when empty.
    pub fn quantile_bucket(&self, q_percent: u64) -> Option<usize> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = (total * q_percent).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(i);
            }
        }
        None
    }
}

/// `name: value` lines (bpf_ext's debugfs stats) as pairs; other lines are skipped.
pub fn parse_stats(text: &str) -> Vec<(&str, u64)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim(), v.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(Log2Hist::bounds(0), (0, 2));
        assert_eq!(Log2Hist::bounds(1), (2, 4));
        assert_eq!(Log2Hist::bounds(10), (1024, 2048));
        assert_eq!(Log2Hist::bounds(63), (1 << 63, u64::MAX));
    }

    #[test]
    fn quantiles() {
        let mut h = Log2Hist {
            buckets: vec![0; 64],
        };
        assert_eq!(h.quantile_bucket(50), None);
        h.buckets[3] = 1;
        h.buckets[5] = 2;
        h.buckets[9] = 1;
        assert_eq!(h.total(), 4);
        assert_eq!(h.quantile_bucket(25), Some(3));
        assert_eq!(h.quantile_bucket(50), Some(5));
        assert_eq!(h.quantile_bucket(75), Some(5));
        assert_eq!(h.quantile_bucket(76), Some(9));
        assert_eq!(h.quantile_bucket(100), Some(9));
    }

    #[test]
    fn stats() {
        let s = parse_stats("rate: 1\nburst: 10\ncalls: 130\nnoise\nbad: x\n");
        assert_eq!(s, vec![("rate", 1), ("burst", 10), ("calls", 130)]);
    }
}
