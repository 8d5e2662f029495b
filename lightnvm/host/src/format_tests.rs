// SPDX-License-Identifier: GPL-2.0
//! The on-disk format: CRC, round trips, and what a damaged block reads as.

use crate::format::*;

#[test]
fn crc32c_is_the_standard_one() {
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(crc32c(b""), 0);
}

#[test]
fn a_checkpoint_header_round_trips_and_damage_is_seen() {
    let c = Checkpoint {
        seq: 0x1234_5678_9abc,
        lbas: 300_000,
        zone_sectors: 131_072,
        zones: 64,
        map_crc: 0xdead_beef,
        clock: Some(0x77_0000_0001),
    };
    assert_eq!(c.map_blocks(), 293);
    let mut b = vec![0u8; BLOCK];
    encode_checkpoint(&mut b, &c);
    assert_eq!(decode_checkpoint(&b), Some(c));
    for at in [0, 9, 17, 25, 40, 1000, 4095] {
        let mut d = b.clone();
        d[at] ^= 0x10;
        assert_eq!(decode_checkpoint(&d), None, "byte {at}");
    }
    // A log block is not a checkpoint, and the reverse.
    let mut l = vec![0u8; BLOCK];
    encode_log(&mut l, 5, &[1, 2]);
    assert_eq!(decode_checkpoint(&l), None);
    assert!(!decode_log(&b, c.seq, |_, _| {}));
    assert_eq!(decode_checkpoint(&b[..100]), None);
}

#[test]
fn map_blocks_round_trip_and_stop_at_the_end() {
    let lbas = 1500;
    let mut b = vec![0u8; BLOCK];
    encode_map_block(&mut b, |l| l as u32 * 3, lbas, 1);
    let mut seen = Vec::new();
    decode_map_block(&b, lbas, 1, |l, p| seen.push((l, p)));
    assert_eq!(seen.len(), lbas - MAP_PER_BLOCK);
    assert!(seen.iter().all(|&(l, p)| p == l as u32 * 3));
    assert_eq!(
        &b[(lbas - MAP_PER_BLOCK) * 4..][..4],
        &UNMAPPED.to_le_bytes()
    );
}

#[test]
fn log_blocks_carry_their_sequence_and_at_most_a_block_of_entries() {
    let entries: Vec<u32> = (0..2 * LOG_PER_BLOCK as u32 + 10).collect();
    let mut b = vec![0u8; BLOCK];
    encode_log(&mut b, 77, &entries);
    let mut got = Vec::new();
    assert!(decode_log(&b, 77, |l, p| got.push((l, p))));
    assert_eq!(got.len(), LOG_PER_BLOCK);
    assert_eq!(got[3], (6, 7));
    assert!(!decode_log(&b, 78, |_, _| {}), "a stale block ends the log");
    b[100] ^= 1;
    assert!(!decode_log(&b, 77, |_, _| {}), "a torn block ends the log");
    // Zeroes (an unwritten block) are no log.
    assert!(!decode_log(&vec![0u8; BLOCK], 0, |_, _| {}));
}

#[test]
fn zone_ages_follow_the_map_and_version_1_checkpoints_are_still_read() {
    let mut c = Checkpoint {
        seq: 9,
        lbas: 5000,
        zone_sectors: 4096,
        zones: 600,
        map_crc: 1,
        clock: Some(12345),
    };
    assert_eq!((c.map_blocks(), c.age_blocks()), (5, 2));
    let mut b = vec![0u8; BLOCK];
    encode_checkpoint(&mut b, &c);
    assert_eq!(decode_checkpoint(&b), Some(c));
    // Version 1 (no ages, no clock), as an older module wrote it.
    c.clock = None;
    encode_checkpoint(&mut b, &c);
    assert_eq!(&b[12..16], &1u32.to_le_bytes());
    assert_eq!(decode_checkpoint(&b), Some(c));
    assert_eq!(c.age_blocks(), 0);
    // A version this module does not know is no checkpoint.
    let mut v3 = b.clone();
    v3[12] = 3;
    let crc = crc32c(&v3[..BLOCK - 4]);
    v3[BLOCK - 4..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(decode_checkpoint(&v3), None);
    // Age blocks round trip and stop at the last zone.
    encode_age_block(&mut b, |z| z as u64 * 1_000_000_007, 600, 1);
    let mut seen = Vec::new();
    decode_age_block(&b, 600, 1, |z, a| seen.push((z, a)));
    assert_eq!(seen.len(), 600 - AGES_PER_BLOCK);
    assert!(seen.iter().all(|&(z, a)| a == z as u64 * 1_000_000_007));
    assert_eq!(&b[(600 - AGES_PER_BLOCK) * 8..][..8], &[0u8; 8]);
}
