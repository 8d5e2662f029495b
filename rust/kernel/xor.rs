// SPDX-License-Identifier: GPL-2.0

//! RAID parity with the kernel's fastest XOR implementation (`xor_gen()`).
//!
//! C header: [`include/linux/raid/xor.h`](srctree/include/linux/raid/xor.h)

use crate::{
    bindings,
    error::{code::EINVAL, Result},
    ffi::c_void,
};

/// The alignment `xor_gen()` needs of every buffer.
pub const ALIGN: usize = 64;

/// How many sources go to one `xor_gen()` call (more are folded in over several calls).
const SOURCES_PER_CALL: usize = 16;

/// XORs every buffer of `srcs` into `dest`: `dest ^= srcs[0] ^ srcs[1] ^ ...`.
///
/// To compute parity from scratch, fill `dest` with the first block (or zero it) first. Every
/// buffer must have the length of `dest`, a non-zero multiple of 512, and be 64-byte aligned
/// (an [`IoBuffer`](crate::block::bio::IoBuffer) is); otherwise `EINVAL`, with `dest` unchanged.
///
/// `xor_gen()` may use the FPU, so this must be called from task context (it may sleep); the C
/// function warns otherwise.
pub fn xor_into(dest: &mut [u8], srcs: &[&[u8]]) -> Result {
    crate::task::might_sleep();
    let len = dest.len();
    let aligned = |p: *const u8| p as usize % ALIGN == 0;
    if len == 0
        || len % 512 != 0
        || u32::try_from(len).is_err()
        || !aligned(dest.as_ptr())
        || srcs.iter().any(|s| s.len() != len || !aligned(s.as_ptr()))
    {
        return Err(EINVAL);
    }
    for group in srcs.chunks(SOURCES_PER_CALL) {
        let mut ptrs = [core::ptr::null_mut::<c_void>(); SOURCES_PER_CALL];
        for (slot, src) in ptrs.iter_mut().zip(group) {
            *slot = src.as_ptr().cast_mut().cast();
        }
        // SAFETY: `dest` and the first `group.len()` pointers are valid, aligned buffers of
        // `len` bytes (checked above); `xor_gen()` only reads the sources. A source may not alias
        // `dest`: it is borrowed shared while `dest` is borrowed mutably.
        unsafe {
            bindings::xor_gen(
                dest.as_mut_ptr().cast(),
                ptrs.as_mut_ptr(),
                group.len() as u32,
                len as u32,
            )
        };
    }
    Ok(())
}

#[macros::kunit_tests(rust44_xor)]
mod tests {
    use super::*;
    use crate::{block::bio::IoBuffer, prelude::*};

    fn filled(seed: u8) -> Result<IoBuffer> {
        let mut buf = IoBuffer::new(GFP_KERNEL)?;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
        }
        Ok(buf)
    }

    #[test]
    fn parity_of_many_sources_matches_a_byte_loop() -> Result {
        // More sources than one xor_gen() call takes.
        let mut srcs = KVec::new();
        for seed in 0..20u8 {
            srcs.push(filled(seed.wrapping_mul(7))?, GFP_KERNEL)?;
        }
        let mut parity = IoBuffer::new(GFP_KERNEL)?;
        let views: KVec<&[u8]> = {
            let mut v = KVec::new();
            for s in srcs.iter() {
                v.push(&s[..], GFP_KERNEL)?;
            }
            v
        };
        xor_into(&mut parity, &views)?;
        for i in 0..parity.len() {
            let expected = srcs.iter().fold(0u8, |acc, s| acc ^ s[i]);
            assert_eq!(parity[i], expected);
        }
        // XOR-ing the parity with all but one source gives that source back.
        xor_into(&mut parity, &views[1..])?;
        assert!(parity[..] == srcs[0][..]);
        Ok(())
    }

    #[test]
    fn io_buffers_of_every_length_are_aligned_and_xor_whole() -> Result {
        use crate::block::bio::IO_BUFFER_MAX;
        for len in [512, 4096, 64 << 10, IO_BUFFER_MAX] {
            let mut a = IoBuffer::with_len(len, GFP_KERNEL)?;
            let mut b = IoBuffer::with_len(len, GFP_KERNEL)?;
            assert_eq!(a.len(), len);
            assert_eq!(a[..].as_ptr() as usize % len, 0);
            assert!(a.iter().all(|&x| x == 0));
            for (i, x) in b.iter_mut().enumerate() {
                *x = (i % 251) as u8;
            }
            xor_into(&mut a, &[&b[..]])?;
            assert!(a[..] == b[..]);
        }
        for len in [0, 256, 511, 513, 3 << 10, IO_BUFFER_MAX * 2] {
            assert!(IoBuffer::with_len(len, GFP_KERNEL).is_err());
        }
        Ok(())
    }

    #[test]
    fn bad_buffers_are_einval_and_change_nothing() -> Result {
        let mut dest = filled(1)?;
        let src = filled(2)?;
        assert_eq!(xor_into(&mut dest[..511], &[&src[..511]]), Err(EINVAL));
        assert_eq!(xor_into(&mut dest[..512], &[&src[..1024]]), Err(EINVAL));
        assert_eq!(xor_into(&mut dest[1..513], &[&src[..512]]), Err(EINVAL));
        assert_eq!(xor_into(&mut dest[..0], &[]), Err(EINVAL));
        assert!(dest[..] == filled(1)?[..]);
        Ok(())
    }
}
