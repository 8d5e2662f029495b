// SPDX-License-Identifier: GPL-2.0

//! CRC-32C (Castagnoli) for on-disk formats: only `core`, so that the modules' format files and
//! their host tests build this same code (the kernel build includes it with `#[path]`, as the
//! host crates include the format files). The standard CRC-32C:
//! `crc32c(b"123456789") == 0xe3069283`.

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32C_TABLE: [u32; 256] = crc32c_table();

/// Continues a CRC-32C over `bytes` from the raw register value `crc` (no pre- or
/// post-inversion, like the kernel's `crc32c()`).
pub fn crc32c_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        // The index is a byte.
        crc = CRC32C_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8);
    }
    crc
}

/// The standard CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    !crc32c_update(!0, bytes)
}
