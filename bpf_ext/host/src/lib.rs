// SPDX-License-Identifier: GPL-2.0
//! Host build of `bpf_ext/limiter.rs`: the token buckets behind bpf_ext's rate-limit kfunc.

#[path = "../../limiter.rs"]
pub mod limiter;

#[cfg(test)]
mod tests;
