// SPDX-License-Identifier: GPL-2.0
//! Host build of `blk_poll/policy.rs`: attribute parsing, the completion ring and the
//! hybrid-poll sleep estimator that the kernel module uses.

#[path = "../../policy.rs"]
pub mod policy;

#[cfg(test)]
mod tests;
