// SPDX-License-Identifier: GPL-2.0
//! The table line.

use crate::ftl::{Config, Policy};
use crate::table::{parse, parse_u32, TableError};

fn p(args: &[&str]) -> Result<Config, TableError> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    parse(&v)
}

#[test]
fn defaults_and_every_option() {
    assert_eq!(p(&["/dev/nvme0n1"]), Ok(Config::default()));
    assert_eq!(
        p(&["8:0", "streams=2", "op=25", "reserved=3", "gc=cost-benefit"]),
        Ok(Config {
            streams: 2,
            op_percent: 25,
            reserved: 3,
            policy: Policy::CostBenefit
        })
    );
    assert_eq!(p(&["d", "gc=greedy"]).unwrap().policy, Policy::Greedy);
}

#[test]
fn bad_tables_are_refused_with_the_reason() {
    assert_eq!(p(&[]), Err(TableError::NoDevice));
    assert_eq!(p(&["streams=2"]), Err(TableError::NoDevice));
    assert_eq!(p(&["d", "streams=0"]), Err(TableError::Streams));
    assert_eq!(p(&["d", "streams=9"]), Err(TableError::Streams));
    assert_eq!(p(&["d", "streams=x"]), Err(TableError::Streams));
    assert_eq!(p(&["d", "op=51"]), Err(TableError::Op));
    assert_eq!(p(&["d", "op=-1"]), Err(TableError::Op));
    assert_eq!(p(&["d", "reserved=1024"]), Err(TableError::Reserved));
    assert_eq!(p(&["d", "gc=fifo"]), Err(TableError::Gc));
    assert_eq!(p(&["d", "zones=3"]), Err(TableError::Unknown));
    assert_eq!(p(&["d", "op"]), Err(TableError::Unknown));
    assert_eq!(p(&["d", "op=1", "op=2"]), Err(TableError::Repeated));
    for e in [TableError::NoDevice, TableError::Gc, TableError::Repeated] {
        assert!(!e.message().to_bytes().is_empty());
    }
}

#[test]
fn numbers_are_plain_decimals() {
    assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
    assert_eq!(parse_u32(b"4294967296"), None);
    assert_eq!(parse_u32(b"+1"), None);
    assert_eq!(parse_u32(b""), None);
}
