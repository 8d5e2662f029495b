// SPDX-License-Identifier: GPL-2.0
use crate::abi::*;

/// xorshift64*: deterministic pseudo-random values for property checks without crates.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        for x in b.iter_mut() {
            *x = self.next() as u8;
        }
        b
    }
}

#[test]
fn info64_round_trips_every_byte() {
    let mut rng = Rng(0x1234_5678);
    for _ in 0..1000 {
        let raw: [u8; info64::SIZE] = rng.bytes();
        assert_eq!(LoopInfo64::decode(&raw).encode(), raw);
    }
}

#[test]
fn info64_fields_sit_where_the_header_puts_them() {
    let info = LoopInfo64 {
        offset: 0x0102_0304_0506_0708,
        sizelimit: 0x1111,
        number: 7,
        flags: FLAG_AUTOCLEAR | FLAG_DIRECT_IO,
        ..LoopInfo64::default()
    };
    let b = info.encode();
    assert_eq!(&b[24..32], &0x0102_0304_0506_0708u64.to_ne_bytes());
    assert_eq!(&b[32..40], &0x1111u64.to_ne_bytes());
    assert_eq!(&b[40..44], &7u32.to_ne_bytes());
    assert_eq!(&b[52..56], &20u32.to_ne_bytes());
}

#[test]
fn config_decodes_fd_block_size_and_info() {
    let mut b = [0u8; config::SIZE];
    b[0..4].copy_from_slice(&5u32.to_ne_bytes());
    b[4..8].copy_from_slice(&4096u32.to_ne_bytes());
    b[8 + info64::OFFSET..8 + info64::OFFSET + 8].copy_from_slice(&8192u64.to_ne_bytes());
    b[8 + info64::FILE_NAME] = b'x';
    let c = LoopConfig::decode(&b);
    assert_eq!((c.fd, c.block_size, c.info.offset), (5, 4096, 8192));
    assert_eq!(c.info.file_name[0], b'x');
}

#[test]
fn validate_refuses_encryption_and_overflow() {
    let ok = LoopInfo64::default();
    assert_eq!(ok.validate(), Ok(()));
    let crypt = LoopInfo64 {
        encrypt_type: 1,
        ..ok
    };
    assert_eq!(crypt.validate(), Err(errno::EINVAL));
    let key = LoopInfo64 {
        encrypt_key_size: 33,
        ..ok
    };
    assert_eq!(key.validate(), Err(errno::EINVAL));
    let key32 = LoopInfo64 {
        encrypt_key_size: 32,
        ..ok
    };
    assert_eq!(key32.validate(), Ok(()));
    let big = LoopInfo64 {
        offset: 1 << 63,
        ..ok
    };
    assert_eq!(big.validate(), Err(errno::EOVERFLOW));
    let big = LoopInfo64 {
        sizelimit: u64::MAX,
        ..ok
    };
    assert_eq!(big.validate(), Err(errno::EOVERFLOW));
}

#[test]
fn file_name_is_always_terminated() {
    let info = LoopInfo64 {
        file_name: [b'a'; NAME_SIZE],
        ..LoopInfo64::default()
    };
    let name = info.terminated_file_name();
    assert_eq!(name[NAME_SIZE - 1], 0);
    assert!(name[..NAME_SIZE - 1].iter().all(|&c| c == b'a'));
}

#[test]
fn old_info_converts_both_ways() {
    let mut b = [0u8; info_old::SIZE];
    b[info_old::OFFSET..info_old::OFFSET + 4].copy_from_slice(&(-512i32).to_ne_bytes());
    b[info_old::FLAGS..info_old::FLAGS + 4].copy_from_slice(&FLAG_AUTOCLEAR.to_ne_bytes());
    b[info_old::NAME] = b'f';
    // Ignored by the old call, as in C (found by tests/hardening's fuzzer: EINVAL where C
    // loop succeeds).
    b[info_old::ENCRYPT_TYPE..info_old::ENCRYPT_TYPE + 4].copy_from_slice(&1u32.to_ne_bytes());
    b[info_old::ENCRYPT_KEY_SIZE..info_old::ENCRYPT_KEY_SIZE + 4]
        .copy_from_slice(&99u32.to_ne_bytes());
    let info = info64_from_old(&b);
    assert_eq!(info.encrypt_type, 0);
    assert_eq!(info.encrypt_key_size, 0);
    assert_eq!(
        LoopInfo64 { offset: 0, ..info }.validate(),
        Ok(()),
        "the old call ignores the encryption fields"
    );
    assert_eq!(info.offset, (-512i64) as u64, "the C int is sign-extended");
    assert_eq!(info.sizelimit, 0);
    assert_eq!(info.flags, FLAG_AUTOCLEAR);
    let ok = LoopInfo64 {
        offset: 4096,
        number: 3,
        ..info
    };
    let out = info64_to_old(&ok).unwrap();
    assert_eq!(
        &out[info_old::OFFSET..info_old::OFFSET + 4],
        &4096i32.to_ne_bytes()
    );
    assert_eq!(&out[0..4], &3u32.to_ne_bytes());
    assert_eq!(out[info_old::NAME], b'f');
    let too_far = LoopInfo64 {
        offset: 1 << 31,
        ..info
    };
    assert_eq!(info64_to_old(&too_far), Err(errno::EOVERFLOW));
}

#[test]
fn dev_encoding_matches_new_encode_dev() {
    // 8:16 (sdb) and 259:3 (an extended minor) as stat(2) shows them.
    assert_eq!(encode_dev((8 << 20) | 16), (8 << 8) | 16);
    assert_eq!(encode_dev((259 << 20) | 3), (259 << 8) | 3);
    assert_eq!(
        encode_dev((7 << 20) | 0x12345),
        0x45 | (7 << 8) | (0x12300 << 12)
    );
}

#[test]
fn set_status_flag_rules() {
    let bound = FLAG_READ_ONLY | FLAG_DIRECT_IO | FLAG_AUTOCLEAR;
    assert_eq!(set_status_flags(bound, 0), FLAG_READ_ONLY | FLAG_DIRECT_IO);
    assert_eq!(
        set_status_flags(0, FLAG_PARTSCAN | FLAG_READ_ONLY | FLAG_DIRECT_IO),
        FLAG_PARTSCAN
    );
    assert_eq!(
        set_status_flags(FLAG_PARTSCAN, 0),
        FLAG_PARTSCAN,
        "partscan cannot be cleared"
    );
}
