// SPDX-License-Identifier: GPL-2.0
//! Host build of `loop_dio/abi.rs`, the loop ABI codec and rules the kernel module uses.

#[path = "../../abi.rs"]
pub mod abi;

#[cfg(test)]
mod tests;
