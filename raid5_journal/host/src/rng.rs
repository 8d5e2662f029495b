// SPDX-License-Identifier: GPL-2.0
//! Deterministic pseudo-random values for the property tests (no crates needed).

use crate::layout::Layout;

/// xorshift64*.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub(crate) fn range32(&mut self, lo: u32, hi: u32) -> u32 {
        self.range(u64::from(lo), u64::from(hi)) as u32
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.next() & 1 != 0
    }

    pub(crate) fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.next() as u8;
        }
    }

    /// A random valid geometry with at most `max_stripes` stripes.
    pub(crate) fn layout(&mut self, max_stripes: u64) -> Layout {
        let members = self.range32(3, 16);
        let chunk = 8u32 << self.range32(0, 8);
        let data_offset = 8 * self.range(0, 64);
        let stripes = self.range(1, max_stripes);
        // Sometimes a data area that is not a whole number of chunks: rounded down.
        let extra = self.range(0, u64::from(chunk) - 1) * u64::from(self.bool());
        let l = Layout::new(
            members,
            chunk,
            data_offset,
            stripes * u64::from(chunk) + extra,
        )
        .expect("valid geometry");
        assert_eq!(l.stripes(), stripes);
        l
    }
}
