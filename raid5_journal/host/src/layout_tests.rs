// SPDX-License-Identifier: GPL-2.0
use crate::layout::*;
use crate::rng::Rng;

/// md's left-symmetric layout, worked out by hand from `raid5_compute_sector()`
/// (`drivers/md/raid5.c`, case `ALGORITHM_LEFT_SYMMETRIC`): for chunk number `c`,
/// `stripe = c / (n - 1)`, `dd = c % (n - 1)`, `pd = (n - 1) - stripe % n`,
/// member `= (pd + 1 + dd) % n`. Each row is a stripe; each entry says what a member holds:
/// `Some(c)` data chunk `c`, `None` the parity. These are the diagrams of md's documentation
/// (and mdadm's `raid5_ls`) for 3 and 4 members.
const LS3: [[Option<u64>; 3]; 4] = [
    [Some(0), Some(1), None],
    [Some(3), None, Some(2)],
    [None, Some(4), Some(5)],
    [Some(6), Some(7), None],
];
const LS4: [[Option<u64>; 4]; 5] = [
    [Some(0), Some(1), Some(2), None],
    [Some(4), Some(5), None, Some(3)],
    [Some(8), None, Some(6), Some(7)],
    [None, Some(9), Some(10), Some(11)],
    [Some(12), Some(13), Some(14), None],
];

fn check_diagram<const N: usize>(rows: &[[Option<u64>; N]]) {
    let chunk = 16u32;
    let l = Layout::new(N as u32, chunk, 8, 64 * u64::from(chunk)).unwrap();
    for (stripe, row) in rows.iter().enumerate() {
        let stripe = stripe as u64;
        for (member, cell) in row.iter().enumerate() {
            let member = member as u32;
            let dev = 8 + stripe * u64::from(chunk) + 5;
            match cell {
                None => {
                    assert_eq!(l.parity_member(stripe), member, "stripe {stripe}");
                    assert_eq!(l.array_sector(member, dev), None);
                    assert_eq!(l.data_index(stripe, member), None);
                }
                Some(c) => {
                    let sector = c * u64::from(chunk) + 5;
                    let loc = l.locate(sector).unwrap();
                    assert_eq!(
                        (loc.stripe, loc.member, loc.device_sector, loc.chunk_offset),
                        (stripe, member, dev, 5),
                        "chunk {c}"
                    );
                    assert_eq!(loc.data_sector, dev - 8);
                    assert_eq!(loc.data_index as u64, c % (N as u64 - 1));
                    assert_eq!(l.array_sector(member, dev), Some(sector));
                }
            }
        }
    }
}

#[test]
fn left_symmetric_3_members_matches_md() {
    check_diagram(&LS3);
}

#[test]
fn left_symmetric_4_members_matches_md() {
    check_diagram(&LS4);
}

#[test]
fn hand_computed_sectors() {
    // 4 members, 8-sector chunks, data at sector 8: array sector 35 is chunk 4, offset 3;
    // stripe 1 (parity on member 2), data slot 1, member (2 + 1 + 1) % 4 = 0, member data
    // sector 1 * 8 + 3 = 11, device sector 19.
    let l = Layout::new(4, 8, 8, 1000).unwrap();
    let loc = l.locate(35).unwrap();
    assert_eq!(
        loc,
        Location {
            stripe: 1,
            data_index: 1,
            member: 0,
            data_sector: 11,
            device_sector: 19,
            chunk_offset: 3,
            parity: 2,
        }
    );
    // 125 stripes (1000 / 8) of 3 data chunks.
    assert_eq!(l.stripes(), 125);
    assert_eq!(l.array_sectors(), 125 * 24);
    assert_eq!(l.member_data_sectors(), 1000);
    assert_eq!(l.member_device_sectors(), 1008);
    assert_eq!(l.locate(125 * 24), None);
    assert_eq!(l.locate(125 * 24 - 1).unwrap().stripe, 124);
    assert_eq!(l.array_sector(0, 7), None, "superblock area");
    assert_eq!(l.array_sector(0, 1008), None, "past the data area");
    assert_eq!(l.array_sector(4, 19), None, "no member 4");
}

#[test]
fn geometry_checks() {
    assert_eq!(Layout::new(2, 8, 8, 100), Err(GeometryError::Members));
    assert_eq!(Layout::new(17, 8, 8, 100), Err(GeometryError::Members));
    assert_eq!(Layout::new(3, 4, 8, 100), Err(GeometryError::ChunkSectors));
    assert_eq!(Layout::new(3, 24, 8, 100), Err(GeometryError::ChunkSectors));
    assert_eq!(
        Layout::new(3, 4096, 8, 1 << 20),
        Err(GeometryError::ChunkSectors)
    );
    assert_eq!(Layout::new(3, 8, 4, 100), Err(GeometryError::DataOffset));
    assert_eq!(Layout::new(3, 16, 8, 15), Err(GeometryError::TooSmall));
    assert_eq!(Layout::new(3, 8, 8, u64::MAX), Err(GeometryError::Overflow));
    assert_eq!(
        Layout::new(16, 8, 0, u64::MAX / 8),
        Err(GeometryError::Overflow)
    );
    assert_eq!(
        Layout::for_devices(3, 8, 8, 15),
        Err(GeometryError::TooSmall)
    );
    assert_eq!(
        Layout::for_devices(3, 8, 8, 7),
        Err(GeometryError::TooSmall)
    );
    let l = Layout::for_devices(3, 8, 8, 8 + 17).unwrap();
    assert_eq!((l.stripes(), l.array_sectors()), (2, 32));
    assert!(Layout::new(16, 2048, 1 << 20, 1 << 40).is_ok());
    for e in [
        GeometryError::Members,
        GeometryError::ChunkSectors,
        GeometryError::DataOffset,
        GeometryError::TooSmall,
        GeometryError::Overflow,
    ] {
        assert!(
            !e.message().to_bytes().is_empty()
                && !e.message().to_bytes().starts_with(b"rust44-raid5")
        );
    }
}

#[test]
fn every_stripe_has_one_parity_and_each_data_slot_once() {
    let mut rng = Rng(7);
    for _ in 0..200 {
        let l = rng.layout(40);
        for stripe in 0..l.stripes() {
            let p = l.parity_member(stripe);
            assert!(p < l.members());
            let mut seen = 0u32;
            for d in 0..l.data_members() {
                let m = l.data_member(stripe, d).unwrap();
                assert_ne!(m, p);
                assert_eq!(l.data_index(stripe, m), Some(d));
                seen |= 1 << m;
            }
            assert_eq!(seen.count_ones(), l.data_members());
            assert_eq!(l.data_member(stripe, l.data_members()), None);
        }
    }
}

#[test]
fn layout_is_a_bijection_onto_non_parity_member_sectors() {
    // Exhaustive over small geometries: every member sector of the data area is either parity
    // or holds exactly one array sector, and every array sector lands on one.
    let mut rng = Rng(0xfeed);
    for _ in 0..60 {
        let l = Layout::new(
            rng.range32(3, 16),
            8 << rng.range32(0, 2),
            8 * rng.range(1, 4),
            rng.range(1, 12) * 32,
        )
        .unwrap();
        let per_member = l.member_data_sectors() as usize;
        let mut hit = vec![false; per_member * l.members() as usize];
        for s in 0..l.array_sectors() {
            let loc = l.locate(s).unwrap();
            assert_ne!(loc.member, loc.parity);
            let i = loc.member as usize * per_member + loc.data_sector as usize;
            assert!(!hit[i], "two array sectors on one member sector");
            hit[i] = true;
            assert_eq!(l.array_sector(loc.member, loc.device_sector), Some(s));
        }
        let mut data = 0u64;
        for m in 0..l.members() {
            for ds in 0..l.member_data_sectors() {
                let stripe = ds / u64::from(l.chunk_sectors());
                let back = l.array_sector_of_data(m, ds);
                assert_eq!(back.is_none(), m == l.parity_member(stripe));
                assert_eq!(back.is_some(), hit[m as usize * per_member + ds as usize]);
                data += u64::from(back.is_some());
            }
        }
        assert_eq!(data, l.array_sectors());
    }
}

#[test]
fn random_sectors_round_trip_in_large_geometries() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let l = rng.layout(1 << 30);
        let s = rng.range(0, l.array_sectors() - 1);
        let loc = l.locate(s).unwrap();
        assert_eq!(l.array_sector(loc.member, loc.device_sector), Some(s));
        assert_eq!(loc.device_sector, loc.data_sector + l.data_offset());
        assert_eq!(loc.parity, l.parity_member(loc.stripe));
        assert_eq!(l.data_member(loc.stripe, loc.data_index), Some(loc.member));
        // The other direction: a random member sector.
        let m = rng.range32(0, l.members() - 1);
        let dev = rng.range(0, l.member_device_sectors() + 100);
        match l.array_sector(m, dev) {
            Some(a) => {
                let back = l.locate(a).unwrap();
                assert_eq!((back.member, back.device_sector), (m, dev));
            }
            None => {
                let in_data = dev >= l.data_offset() && dev < l.member_device_sectors();
                if in_data {
                    let stripe = (dev - l.data_offset()) / u64::from(l.chunk_sectors());
                    assert_eq!(l.parity_member(stripe), m);
                }
            }
        }
    }
}

#[test]
fn pieces_split_at_chunk_boundaries() {
    let mut rng = Rng(99);
    for _ in 0..3000 {
        let l = rng.layout(50);
        let start = rng.range(0, l.array_sectors() - 1);
        let len = rng.range(0, (l.array_sectors() - start).min(5 * 2048));
        let mut next = start;
        for (count, p) in l.pieces(start, len).unwrap().enumerate() {
            assert_eq!(p.array_sector, next);
            assert!(p.sectors > 0);
            assert!(p.location.chunk_offset + p.sectors <= l.chunk_sectors());
            assert_eq!(Some(p.location), l.locate(p.array_sector));
            // The whole piece is on one member, contiguous.
            let last = l.locate(p.array_sector + u64::from(p.sectors) - 1).unwrap();
            assert_eq!(last.member, p.location.member);
            assert_eq!(
                last.device_sector,
                p.location.device_sector + u64::from(p.sectors) - 1
            );
            // Pieces after the first start a chunk.
            if count > 0 {
                assert_eq!(p.location.chunk_offset, 0);
            }
            next += u64::from(p.sectors);
        }
        assert_eq!(next, start + len);
        assert!(l.pieces(start, l.array_sectors() - start + 1).is_none());
        assert!(l.pieces(start, u64::MAX).is_none());
    }
}
