// SPDX-License-Identifier: GPL-2.0

//! The rust44-ftl table line. Only `core`: the kernel module and the host tests
//! (`lightnvm/host`) build this same file.
//!
//! Table: `<zoned_dev> [streams=<1-8>] [op=<0-50>] [reserved=<zones>] [gc=greedy|cost-benefit]`,
//! each option at most once. `streams`: open zones writes are striped over (default 4);
//! `op`: percent of the data space kept from users (default 10); `reserved`: whole zones kept
//! from users besides (default 0); `gc`: victim selection (default greedy).

use crate::ftl::{Config, Policy, MAX_STREAMS};
use core::ffi::CStr;

/// Why a table line is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// No device.
    NoDevice,
    /// An argument that is no known `key=value`.
    Unknown,
    /// An option given twice.
    Repeated,
    /// `streams` not a number from 1 to 8.
    Streams,
    /// `op` not a number from 0 to 50.
    Op,
    /// `reserved` not a number below 1024.
    Reserved,
    /// `gc` not `greedy` or `cost-benefit`.
    Gc,
}

impl TableError {
    /// A message for the device-mapper error string.
    pub fn message(&self) -> &'static CStr {
        match self {
            Self::NoDevice => {
                c"expected <zoned_dev> [streams=N] [op=P] [reserved=N] [gc=greedy|cost-benefit]"
            }
            Self::Unknown => c"unknown option (streams=, op=, reserved=, gc=)",
            Self::Repeated => c"an option is given twice",
            Self::Streams => c"streams must be a number from 1 to 8",
            Self::Op => c"op must be a percentage from 0 to 50",
            Self::Reserved => c"reserved must be a number of zones below 1024",
            Self::Gc => c"gc must be greedy or cost-benefit",
        }
    }
}

/// A decimal `u32` without sign or leading `+`.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    u32::try_from(v).ok()
}

/// Parses the arguments after the target name (the device first) into the options.
pub fn parse(args: &[&[u8]]) -> Result<Config, TableError> {
    let Some((dev, opts)) = args.split_first() else {
        return Err(TableError::NoDevice);
    };
    if dev.is_empty() || dev.contains(&b'=') {
        return Err(TableError::NoDevice);
    }
    let mut config = Config::default();
    let mut seen = 0u32;
    for opt in opts {
        let Some(eq) = opt.iter().position(|&c| c == b'=') else {
            return Err(TableError::Unknown);
        };
        let (key, value) = (&opt[..eq], &opt[eq + 1..]);
        let bit = match key {
            b"streams" => {
                config.streams = parse_u32(value)
                    .filter(|s| (1..=MAX_STREAMS).contains(s))
                    .ok_or(TableError::Streams)?;
                1
            }
            b"op" => {
                config.op_percent = parse_u32(value)
                    .filter(|&p| p <= 50)
                    .ok_or(TableError::Op)?;
                2
            }
            b"reserved" => {
                config.reserved = parse_u32(value)
                    .filter(|&r| r < 1024)
                    .ok_or(TableError::Reserved)?;
                4
            }
            b"gc" => {
                config.policy = match value {
                    b"greedy" => Policy::Greedy,
                    b"cost-benefit" => Policy::CostBenefit,
                    _ => return Err(TableError::Gc),
                };
                8
            }
            _ => return Err(TableError::Unknown),
        };
        if seen & bit != 0 {
            return Err(TableError::Repeated);
        }
        seen |= bit;
    }
    Ok(config)
}

/// The name of a policy, as the table takes it.
pub fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Greedy => "greedy",
        Policy::CostBenefit => "cost-benefit",
    }
}
