// SPDX-License-Identifier: GPL-2.0
//! Host build of virtio_gpu3d's `core`-only file: the virtio-gpu protocol codec and the rules the
//! driver applies to ioctl arguments (`protocol.rs`), as the kernel module builds it.

#[path = "../../protocol.rs"]
pub mod protocol;

#[cfg(test)]
mod tests;
