// SPDX-License-Identifier: GPL-2.0

//! Cyclic redundancy checks.
//!
//! C header: [`include/linux/crc32.h`](srctree/include/linux/crc32.h)

use crate::bindings;

/// Continues the CRC-32C (Castagnoli) `crc` over `data`, as the C `crc32c()`: no inversion
/// before or after, so the standard CRC-32C of `data` is `!crc32c(!0, data)`.
///
/// Uses the CPU's instruction where it has one.
///
/// # Examples
///
/// ```
/// use kernel::crc::crc32c;
///
/// // The standard check value.
/// assert_eq!(!crc32c(!0, b"123456789"), 0xe306_9283);
/// // In pieces, the same.
/// assert_eq!(crc32c(crc32c(!0, b"1234"), b"56789"), crc32c(!0, b"123456789"));
/// ```
#[inline]
pub fn crc32c(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is valid for reads of `data.len()` bytes; the C function only reads them.
    unsafe { bindings::crc32c(crc, data.as_ptr().cast(), data.len()) }
}
