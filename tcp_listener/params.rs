// SPDX-License-Identifier: GPL-2.0
//! tcp_listener's instance parameters and the rules of their configfs attributes, with no
//! kernel dependency (tested on the host): addresses (IPv4 dotted quads, IPv6 with `::`),
//! ports, bounded numbers, booleans, and the document root's spelling.

/// An address as configured: the bytes in network order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addr {
    /// IPv4.
    V4([u8; 4]),
    /// IPv6.
    V6([u8; 16]),
}

impl Addr {
    /// Whether this is the wildcard address, `0.0.0.0` or `::`.
    pub fn is_unspecified(&self) -> bool {
        match self {
            Addr::V4(a) => *a == [0; 4],
            Addr::V6(a) => *a == [0; 16],
        }
    }
}

/// Whether two instances would listen on a common address and port: the same port, and the same
/// address or a wildcard that covers the other's. The IPv6 wildcard covers IPv4 addresses too (a
/// dual-stack socket); the IPv4 one covers only IPv4.
pub fn listen_overlap(a: &Params, b: &Params) -> bool {
    if a.port != b.port {
        return false;
    }
    match (a.addr, b.addr) {
        (Addr::V4(_), Addr::V4(_)) | (Addr::V6(_), Addr::V6(_)) => {
            a.addr == b.addr || a.addr.is_unspecified() || b.addr.is_unspecified()
        }
        (Addr::V4(_), v6 @ Addr::V6(_)) | (v6 @ Addr::V6(_), Addr::V4(_)) => v6.is_unspecified(),
    }
}

/// The most workers per CPU.
pub const MAX_WORKERS: u32 = 64;
/// The most connections of an instance.
pub const MAX_CONNECTIONS: u32 = 65536;
/// The longest receive timeout, in milliseconds (an hour).
pub const MAX_TIMEOUT_MS: u32 = 3_600_000;
/// The longest document root, in bytes (`PATH_MAX` less its NUL).
pub const MAX_ROOT: usize = 4095;

/// What an instance is configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The address to listen on.
    pub addr: Addr,
    /// The port (0: not set yet, `enable` refuses).
    pub port: u16,
    /// Workers per CPU: each serves one connection at a time.
    pub workers: u32,
    /// Connections served at the same time by the instance; one more gets 503.
    pub max_connections: u32,
    /// How long a connection may stay silent (receive) or blocked (send), in milliseconds.
    pub timeout_ms: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            addr: Addr::V4([0; 4]),
            port: 0,
            workers: 1,
            max_connections: 256,
            timeout_ms: 10_000,
        }
    }
}

/// The text of an attribute write without the trailing newline `echo` adds.
pub fn trim(page: &[u8]) -> &[u8] {
    match page {
        [rest @ .., b'\n'] => rest,
        _ => page,
    }
}

/// A decimal number in `min..=max`.
pub fn parse_u32(page: &[u8], min: u32, max: u32) -> Option<u32> {
    parse_digits(trim(page), min, max)
}

fn parse_digits(v: &[u8], min: u32, max: u32) -> Option<u32> {
    if v.is_empty() || v.len() > 10 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    let n = u32::try_from(n).ok()?;
    (min..=max).contains(&n).then_some(n)
}

/// `0` or `1`.
pub fn parse_bool(page: &[u8]) -> Option<bool> {
    match trim(page) {
        b"0" => Some(false),
        b"1" => Some(true),
        _ => None,
    }
}

fn parse_v4(v: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = v.split(|&b| b == b'.');
    for o in out.iter_mut() {
        let p = parts.next()?;
        // No leading zeros (they read as octal elsewhere) and at most 3 digits.
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
            return None;
        }
        *o = u8::try_from(parse_digits(p, 0, 255)?).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn hex_group(p: &[u8]) -> Option<u16> {
    if p.is_empty() || p.len() > 4 {
        return None;
    }
    let mut n: u16 = 0;
    for &b in p {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        n = (n << 4) | u16::from(d);
    }
    Some(n)
}

/// Up to `max` colon-separated groups into `out`; returns how many.
fn v6_groups(v: &[u8], out: &mut [u16; 8], max: usize) -> Option<usize> {
    if v.is_empty() {
        return Some(0);
    }
    let mut n = 0;
    for p in v.split(|&b| b == b':') {
        if n == max {
            return None;
        }
        out[n] = hex_group(p)?;
        n += 1;
    }
    Some(n)
}

fn parse_v6(v: &[u8]) -> Option<[u8; 16]> {
    let mut groups = [0u16; 8];
    let gap = v.windows(2).position(|w| w == b"::");
    match gap {
        None => {
            if v6_groups(v, &mut groups, 8)? != 8 {
                return None;
            }
        }
        Some(at) => {
            let (head, tail) = (&v[..at], &v[at + 2..]);
            if tail.windows(2).any(|w| w == b"::") {
                return None;
            }
            let mut h = [0u16; 8];
            let mut t = [0u16; 8];
            let hn = v6_groups(head, &mut h, 7)?;
            let tn = v6_groups(tail, &mut t, 7 - hn)?;
            groups[..hn].copy_from_slice(&h[..hn]);
            groups[8 - tn..].copy_from_slice(&t[..tn]);
        }
    }
    let mut out = [0u8; 16];
    for (i, g) in groups.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&g.to_be_bytes());
    }
    Some(out)
}

/// An IPv4 (`127.0.0.1`) or IPv6 (`::1`, `fe80::1:2`; no embedded IPv4, no zone) address.
pub fn parse_addr(page: &[u8]) -> Option<Addr> {
    let v = trim(page);
    if v.contains(&b':') {
        parse_v6(v).map(Addr::V6)
    } else {
        parse_v4(v).map(Addr::V4)
    }
}

/// Writes an address as `parse_addr` reads it (IPv6 as eight groups, without `::`).
pub fn write_addr(w: &mut impl core::fmt::Write, addr: &Addr) -> core::fmt::Result {
    match addr {
        Addr::V4(a) => write!(w, "{}.{}.{}.{}", a[0], a[1], a[2], a[3]),
        Addr::V6(a) => {
            for i in 0..8 {
                let g = u16::from_be_bytes([a[2 * i], a[2 * i + 1]]);
                if i > 0 {
                    w.write_char(':')?;
                }
                write!(w, "{g:x}")?;
            }
            Ok(())
        }
    }
}

/// A document root as written: absolute, no NUL, no `.` or `..` segment, not too long. The
/// trailing newline is dropped; whether it is a directory is for the kernel to say.
pub fn parse_root(page: &[u8]) -> Option<&[u8]> {
    let v = trim(page);
    if v.first() != Some(&b'/') || v.len() > MAX_ROOT || v.contains(&0) {
        return None;
    }
    let bad = v.split(|&b| b == b'/').any(|s| s == b"." || s == b"..");
    (!bad).then_some(v)
}
