// SPDX-License-Identifier: GPL-2.0
//! Host build of loop_dio's `core`-only files: the loop ABI codec (`abi.rs`) and the driver's
//! decisions that need no kernel (`rules.rs`), as the kernel module builds them.

#[path = "../../abi.rs"]
pub mod abi;
#[path = "../../rules.rs"]
pub mod rules;

#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;
