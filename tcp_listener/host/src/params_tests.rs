// SPDX-License-Identifier: GPL-2.0
use crate::params::*;

fn addr_text(a: &Addr) -> String {
    let mut s = String::new();
    write_addr(&mut s, a).unwrap();
    s
}

#[test]
fn ipv4_addresses() {
    assert_eq!(parse_addr(b"127.0.0.1\n"), Some(Addr::V4([127, 0, 0, 1])));
    assert_eq!(parse_addr(b"0.0.0.0"), Some(Addr::V4([0; 4])));
    assert_eq!(parse_addr(b"255.255.255.255"), Some(Addr::V4([255; 4])));
    for bad in [
        &b"1.2.3"[..],
        b"1.2.3.4.5",
        b"256.1.1.1",
        b"01.2.3.4",
        b"1..3.4",
        b"1.2.3.4 ",
        b"",
        b"\n",
        b"a.b.c.d",
        b"1.2.3.4\n\n",
    ] {
        assert_eq!(parse_addr(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn ipv6_addresses() {
    let mut lo = [0u8; 16];
    lo[15] = 1;
    assert_eq!(parse_addr(b"::1\n"), Some(Addr::V6(lo)));
    assert_eq!(parse_addr(b"::"), Some(Addr::V6([0; 16])));
    let a = parse_addr(b"fe80::1:2").unwrap();
    assert_eq!(addr_text(&a), "fe80:0:0:0:0:0:1:2");
    let full = parse_addr(b"1:2:3:4:5:6:7:8").unwrap();
    assert_eq!(addr_text(&full), "1:2:3:4:5:6:7:8");
    assert_eq!(parse_addr(b"1::8"), parse_addr(b"1:0:0:0:0:0:0:8"));
    assert_eq!(
        parse_addr(b"1:2:3:4:5:6:7::"),
        parse_addr(b"1:2:3:4:5:6:7:0")
    );
    for bad in [
        &b"1:2:3"[..],
        b"1:2:3:4:5:6:7:8:9",
        b"1::2::3",
        b":::",
        b"12345::",
        b"g::",
        b"1:2:3:4:5:6:7:8::",
        b"::1:2:3:4:5:6:7:8",
        b"::ffff:1.2.3.4",
    ] {
        assert_eq!(parse_addr(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
    // What write_addr writes reads back.
    for a in [Addr::V6(lo), Addr::V4([10, 0, 0, 1]), full] {
        assert_eq!(parse_addr(addr_text(&a).as_bytes()), Some(a));
    }
}

#[test]
fn numbers_booleans_and_roots() {
    assert_eq!(parse_u32(b"8080\n", 1, 65535), Some(8080));
    assert_eq!(parse_u32(b"0", 1, 65535), None);
    assert_eq!(parse_u32(b"65536", 1, 65535), None);
    assert_eq!(parse_u32(b"99999999999", 0, u32::MAX), None);
    assert_eq!(parse_u32(b"4294967295", 0, u32::MAX), Some(u32::MAX));
    assert_eq!(parse_u32(b"4294967296", 0, u32::MAX), None);
    assert_eq!(parse_u32(b"-1", 0, 10), None);
    assert_eq!(parse_u32(b"", 0, 10), None);
    assert_eq!(parse_bool(b"1\n"), Some(true));
    assert_eq!(parse_bool(b"0"), Some(false));
    assert_eq!(parse_bool(b"2"), None);
    assert_eq!(parse_bool(b"yes"), None);
    assert_eq!(parse_root(b"/srv/www\n"), Some(&b"/srv/www"[..]));
    assert_eq!(parse_root(b"/"), Some(&b"/"[..]));
    for bad in [&b"srv"[..], b"", b"/a/../b", b"/a/./b", b"/..", b"/a\0b"] {
        assert_eq!(parse_root(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
    assert_eq!(parse_root(&[b'/'; MAX_ROOT + 1]), None);
    assert!(parse_root(&[b'/'; MAX_ROOT]).is_some());
}

#[test]
fn instances_overlap_on_a_common_address_and_port() {
    let on = |addr: &[u8], port: u16| Params {
        addr: parse_addr(addr).unwrap(),
        port,
        ..Params::default()
    };
    let overlapping = [
        (on(b"127.0.0.1", 80), on(b"127.0.0.1", 80)),
        (on(b"0.0.0.0", 80), on(b"127.0.0.1", 80)),
        (on(b"::", 80), on(b"::1", 80)),
        (on(b"::", 80), on(b"10.0.0.1", 80)),
        (on(b"::", 80), on(b"0.0.0.0", 80)),
    ];
    let apart = [
        (on(b"127.0.0.1", 80), on(b"127.0.0.1", 81)),
        (on(b"127.0.0.1", 80), on(b"127.0.0.2", 80)),
        (on(b"0.0.0.0", 80), on(b"::1", 80)),
        (on(b"::1", 80), on(b"::2", 80)),
        (on(b"0.0.0.0", 80), on(b"0.0.0.0", 8080)),
    ];
    for (pairs, want) in [(&overlapping[..], true), (&apart[..], false)] {
        for (a, b) in pairs {
            assert_eq!(listen_overlap(a, b), want, "{a:?} {b:?}");
            assert_eq!(listen_overlap(b, a), want, "{b:?} {a:?}");
        }
    }
    assert!(parse_addr(b"::").unwrap().is_unspecified());
    assert!(!parse_addr(b"::1").unwrap().is_unspecified());
}
