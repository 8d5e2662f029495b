// SPDX-License-Identifier: GPL-2.0
//! tcp_listener's HTTP/1.1 request parser, with no kernel dependency (it also builds and is
//! tested on the host): the request head (request line and header fields) with the limits that
//! give 400/405/414/431/505, the request target normalised into a path below the document root
//! (`..` refused, also percent-encoded), one byte range (416 when it cannot be satisfied),
//! `If-Modified-Since`, keep-alive, and the response head.
//!
//! Nothing here allocates: the parser borrows the receive buffer and writes a normalised path
//! into a buffer of the caller's. Divisions are by constants only (the kernel build forbids the
//! panic path of a division by a variable).

use core::fmt::{self, Write};

/// The longest request line (method, target and version), in bytes: 414 beyond.
pub const MAX_REQUEST_LINE: usize = 2048;
/// The most bytes of header fields after the request line: 431 beyond.
pub const MAX_HEADER_BYTES: usize = 8192;
/// The most header fields: 431 beyond.
pub const MAX_HEADERS: usize = 64;
/// The longest normalised path, in bytes (Linux's `PATH_MAX` less its NUL).
pub const MAX_PATH: usize = 4095;

/// A response status the parser or the range and date rules decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200.
    Ok,
    /// 206: one range of the file.
    PartialContent,
    /// 304: not modified since the client's copy.
    NotModified,
    /// 400: malformed request.
    BadRequest,
    /// 403: a path that leaves the document root (or what the server refuses to show).
    Forbidden,
    /// 404.
    NotFound,
    /// 405: a method other than GET and HEAD.
    MethodNotAllowed,
    /// 414: request line or path too long.
    UriTooLong,
    /// 416: the range starts at or after the end of the file.
    RangeNotSatisfiable,
    /// 431: too many or too long header fields.
    HeaderFieldsTooLarge,
    /// 503: no capacity for another connection.
    ServiceUnavailable,
    /// 505: an HTTP version other than 1.0 and 1.1.
    VersionNotSupported,
}

impl Status {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::PartialContent => 206,
            Status::NotModified => 304,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::UriTooLong => 414,
            Status::RangeNotSatisfiable => 416,
            Status::HeaderFieldsTooLarge => 431,
            Status::ServiceUnavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::PartialContent => "Partial Content",
            Status::NotModified => "Not Modified",
            Status::BadRequest => "Bad Request",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::UriTooLong => "URI Too Long",
            Status::RangeNotSatisfiable => "Range Not Satisfiable",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::ServiceUnavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// A supported method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD: the head of GET's response, no body.
    Head,
}

/// The request's protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: the connection closes unless the client asks for keep-alive.
    Http10,
    /// HTTP/1.1: the connection persists unless either side says `close`.
    Http11,
}

/// One byte range as the client wrote it (`bytes=first-last`, `bytes=first-`, `bytes=-suffix`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// From `first` to `last` (inclusive), or to the end when `last` is `None`.
    From {
        /// The first byte.
        first: u64,
        /// The last byte, inclusive.
        last: Option<u64>,
    },
    /// The last `len` bytes.
    Suffix(u64),
}

/// The bytes of a file to send: `start..start + len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// How many bytes.
    pub len: u64,
}

impl RangeSpec {
    /// The bytes to send of a file of `size` bytes: `Err(RangeNotSatisfiable)` when the range
    /// starts at or after the end (or asks for an empty suffix); a range past the end is cut.
    pub fn resolve(self, size: u64) -> Result<ByteRange, Status> {
        match self {
            RangeSpec::From { first, last } => {
                if first >= size {
                    return Err(Status::RangeNotSatisfiable);
                }
                let end = match last {
                    Some(last) if last < size - 1 => last,
                    _ => size - 1,
                };
                Ok(ByteRange {
                    start: first,
                    len: end - first + 1,
                })
            }
            RangeSpec::Suffix(n) => {
                if n == 0 || size == 0 {
                    return Err(Status::RangeNotSatisfiable);
                }
                let len = if n < size { n } else { size };
                Ok(ByteRange {
                    start: size - len,
                    len,
                })
            }
        }
    }
}

/// A parsed request head, borrowing the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// GET or HEAD.
    pub method: Method,
    /// The request target as received (path and query, still percent-encoded).
    pub target: &'a [u8],
    /// The protocol version.
    pub version: Version,
    /// Whether the connection may serve another request after this one.
    pub keep_alive: bool,
    /// One byte range, if the client asked for exactly one well-formed range (a malformed or
    /// multiple `Range` is ignored, as RFC 9110 allows: the whole file is sent).
    pub range: Option<RangeSpec>,
    /// `If-Modified-Since` in seconds since the epoch, if present and valid (an invalid date
    /// is ignored, as RFC 9110 requires).
    pub if_modified_since: Option<u64>,
    /// The length of the request head in the buffer, final empty line included: where the next
    /// pipelined request starts.
    pub head_len: usize,
}

/// The result of parsing what has been received so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A complete request head.
    Complete(Request<'a>),
    /// No decision yet: receive more bytes (the buffer holds no complete head and no limit has
    /// been passed).
    Incomplete,
}

/// The end of the line starting at `from`: (the index of its LF, the index after the line's
/// content with an optional CR removed).
fn line_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let rest = buf.get(from..)?;
    let lf = from + rest.iter().position(|&b| b == b'\n')?;
    let content_end = if lf > from && buf[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    Some((lf, content_end))
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A visible character of a request target (no spaces, no controls, ASCII only).
fn is_target_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
}

/// A header value byte: visible characters, spaces, tabs and obs-text; no other controls.
fn is_field_value_char(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..0x7f).contains(&b) || b >= 0x80
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Parses a decimal number of at most 19 digits (no sign, no spaces).
fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Parses a `Range` value: `Some` only for a single well-formed byte range.
pub fn parse_range(v: &[u8]) -> Option<RangeSpec> {
    let v = trim_ows(v);
    let spec = v.strip_prefix(b"bytes=")?;
    if spec.contains(&b',') {
        return None;
    }
    let dash = spec.iter().position(|&b| b == b'-')?;
    let (first, last) = (trim_ows(&spec[..dash]), trim_ows(&spec[dash + 1..]));
    if first.is_empty() {
        return Some(RangeSpec::Suffix(parse_u64(last)?));
    }
    let first = parse_u64(first)?;
    let last = if last.is_empty() {
        None
    } else {
        let last = parse_u64(last)?;
        if last < first {
            return None;
        }
        Some(last)
    };
    Some(RangeSpec::From { first, last })
}

/// Whether a comma-separated header value holds `token` (case-insensitive).
fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&b| b == b',')
        .any(|t| trim_ows(t).eq_ignore_ascii_case(token))
}

/// Parses the request head at the start of `buf` (empty lines before the request line are
/// skipped, as RFC 9112 recommends between pipelined requests).
///
/// Decisions: a request line longer than [`MAX_REQUEST_LINE`] is 414; more than
/// [`MAX_HEADER_BYTES`] of header fields or more than [`MAX_HEADERS`] fields is 431; a method
/// other than GET or HEAD is 405; a version other than HTTP/1.0 and 1.1 is 505; anything
/// malformed is 400, as are a request body (`Content-Length` other than 0, any
/// `Transfer-Encoding`) and an HTTP/1.1 request without exactly one `Host`.
pub fn parse_request(buf: &[u8]) -> Result<Parsed<'_>, Status> {
    let mut start = 0;
    // Skip blank lines (bounded by the request line's limit).
    loop {
        match buf.get(start..) {
            Some([b'\r', b'\n', ..]) => start += 2,
            Some([b'\n', ..]) => start += 1,
            Some([b'\r']) | Some([]) | None => {
                return if start > MAX_REQUEST_LINE {
                    Err(Status::BadRequest)
                } else {
                    Ok(Parsed::Incomplete)
                };
            }
            Some(_) => break,
        }
        if start > MAX_REQUEST_LINE {
            return Err(Status::BadRequest);
        }
    }

    let (lf, line_end_at) = match line_end(buf, start) {
        Some(e) => e,
        None => {
            return if buf.len() - start > MAX_REQUEST_LINE {
                Err(Status::UriTooLong)
            } else {
                Ok(Parsed::Incomplete)
            };
        }
    };
    let line = &buf[start..line_end_at];
    if line.len() > MAX_REQUEST_LINE {
        return Err(Status::UriTooLong);
    }
    let (method, target, version) = parse_request_line(line)?;

    // Header fields.
    let headers_start = lf + 1;
    let mut pos = headers_start;
    let mut count = 0;
    let mut host_seen = 0u32;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut range = None;
    let mut ranges_seen = 0u32;
    let mut ims = None;
    let mut content_length: Option<u64> = None;
    let head_len = loop {
        let (lf, content_end) = match line_end(buf, pos) {
            Some(e) => e,
            None => {
                return if buf.len() - headers_start > MAX_HEADER_BYTES {
                    Err(Status::HeaderFieldsTooLarge)
                } else {
                    Ok(Parsed::Incomplete)
                };
            }
        };
        if lf + 1 - headers_start > MAX_HEADER_BYTES {
            return Err(Status::HeaderFieldsTooLarge);
        }
        let field = &buf[pos..content_end];
        if field.is_empty() {
            break lf + 1;
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(Status::HeaderFieldsTooLarge);
        }
        // obs-fold (a continuation line) is refused, as RFC 9112 allows.
        if matches!(field[0], b' ' | b'\t') {
            return Err(Status::BadRequest);
        }
        let colon = field
            .iter()
            .position(|&b| b == b':')
            .ok_or(Status::BadRequest)?;
        let (name, value) = (&field[..colon], &field[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(Status::BadRequest);
        }
        if !value.iter().all(|&b| is_field_value_char(b)) {
            return Err(Status::BadRequest);
        }
        let value = trim_ows(value);
        if name.eq_ignore_ascii_case(b"host") {
            host_seen += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            conn_close |= has_token(value, b"close");
            conn_keep_alive |= has_token(value, b"keep-alive");
        } else if name.eq_ignore_ascii_case(b"range") {
            ranges_seen += 1;
            range = parse_range(value);
        } else if name.eq_ignore_ascii_case(b"if-modified-since") {
            ims = parse_http_date(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_u64(value).ok_or(Status::BadRequest)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(Status::BadRequest);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(Status::BadRequest);
        }
        pos = lf + 1;
    };

    if content_length.is_some_and(|n| n != 0) {
        return Err(Status::BadRequest);
    }
    if version == Version::Http11 && host_seen != 1 || host_seen > 1 {
        return Err(Status::BadRequest);
    }
    let keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    Ok(Parsed::Complete(Request {
        method,
        target,
        version,
        keep_alive,
        range: if ranges_seen == 1 { range } else { None },
        if_modified_since: ims,
        head_len,
    }))
}

fn parse_request_line(line: &[u8]) -> Result<(Method, &[u8], Version), Status> {
    let sp1 = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(Status::BadRequest)?;
    let method = &line[..sp1];
    let rest = &line[sp1 + 1..];
    let sp2 = rest
        .iter()
        .position(|&b| b == b' ')
        .ok_or(Status::BadRequest)?;
    let (target, version) = (&rest[..sp2], &rest[sp2 + 1..]);
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Status::BadRequest);
    }
    if target.is_empty() || !target.iter().all(|&b| is_target_char(b)) {
        return Err(Status::BadRequest);
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(Status::VersionNotSupported)
        }
        _ => return Err(Status::BadRequest),
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => return Err(Status::MethodNotAllowed),
    };
    // Origin form only: the path starts with '/'.
    if target[0] != b'/' {
        return Err(Status::BadRequest);
    }
    Ok((method, target, version))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalises a request target into a path relative to the document root, written to `out`;
/// returns its length (0 for the root itself).
///
/// The query (`?...`) is dropped, the path is percent-decoded once, then split at `/`: empty and
/// `.` segments are dropped and a `..` segment is refused with 403 (so are `%2e%2e` and
/// `..%2f`, which decode to it). A decoded NUL or a bad escape is 400; a path longer than `out`
/// or [`MAX_PATH`] is 414. The result never starts with `/` and has no `.` or `..` segment, so
/// it cannot name anything above the root by itself (symlinks are the caller's to refuse).
pub fn normalize_path(target: &[u8], out: &mut [u8]) -> Result<usize, Status> {
    let path = match target.iter().position(|&b| b == b'?' || b == b'#') {
        Some(q) => &target[..q],
        None => target,
    };
    let limit = if out.len() < MAX_PATH {
        out.len()
    } else {
        MAX_PATH
    };
    // out[..done] is the path so far (no trailing '/'); the current segment is written at
    // out[seg_start..cur], after the separator it will need.
    let mut done = 0;
    let mut seg_start = 0;
    let mut cur = 0;
    let mut i = 0;
    // One more round with a virtual '/' to end the last segment.
    while i <= path.len() {
        let b = if i == path.len() {
            b'/'
        } else if path[i] == b'%' {
            let hi = path.get(i + 1).copied().and_then(hex_value);
            let lo = path.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => {
                    i += 2;
                    hi << 4 | lo
                }
                _ => return Err(Status::BadRequest),
            }
        } else {
            path[i]
        };
        i += 1;
        if b == 0 {
            return Err(Status::BadRequest);
        }
        if b != b'/' {
            if cur >= limit {
                return Err(Status::UriTooLong);
            }
            out[cur] = b;
            cur += 1;
            continue;
        }
        // An empty segment is skipped before slicing: seg_start may be past the buffer's end.
        if cur == seg_start {
            continue;
        }
        match &out[seg_start..cur] {
            b"." => {}
            b".." => return Err(Status::Forbidden),
            _ => {
                if done > 0 {
                    out[done] = b'/';
                }
                done = cur;
            }
        }
        seg_start = if done > 0 { done + 1 } else { 0 };
        cur = seg_start;
    }
    Ok(done)
}

const DAY_NAMES: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1..=12), for years from 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    // Years start in March so that the leap day is the last one.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) - if month > 2 { 12 } else { 0 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into seconds since the epoch.
/// Dates before 1970, the obsolete RFC 850 and asctime forms, and a weekday that does not match
/// the date give `None`.
pub fn parse_http_date(v: &[u8]) -> Option<u64> {
    let v: &[u8; 29] = v.try_into().ok()?;
    let num = |r: core::ops::Range<usize>| parse_u64(&v[r]);
    if &v[3..5] != b", "
        || v[7] != b' '
        || v[11] != b' '
        || v[16] != b' '
        || v[19] != b':'
        || v[22] != b':'
        || &v[25..] != b" GMT"
    {
        return None;
    }
    let day = num(5..7)?;
    let month = 1 + MONTH_NAMES.iter().position(|m| m[..] == v[8..11])? as u64;
    let year = num(12..16)?;
    let (h, m, s) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if year < 1970 || day == 0 || day > days_in_month(year, month) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if DAY_NAMES[(days % 7) as usize][..] != v[..3] {
        return None;
    }
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

/// An HTTP date (IMF-fixdate) of seconds since the epoch, for `Date` and `Last-Modified`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpDate(pub u64);

impl fmt::Display for HttpDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0 / 86_400;
        let secs = self.0 % 86_400;
        let (year, month, day) = civil_from_days(days);
        let wd = DAY_NAMES[(days % 7) as usize];
        let mon = MONTH_NAMES[(month - 1) as usize];
        write!(
            f,
            "{}{}{}, {:02} {}{}{} {:04} {:02}:{:02}:{:02} GMT",
            wd[0] as char,
            wd[1] as char,
            wd[2] as char,
            day,
            mon[0] as char,
            mon[1] as char,
            mon[2] as char,
            year,
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

/// Whether a file last modified at `mtime` (seconds) may be answered with 304 to a request
/// carrying `If-Modified-Since: since`.
pub fn not_modified(mtime: u64, since: Option<u64>) -> bool {
    since.is_some_and(|since| mtime <= since)
}

/// What to answer a GET or HEAD of a regular file of `size` bytes modified at `mtime`:
/// 304, 206 with the range, 416, or 200 with the whole file.
pub fn decide(req: &Request<'_>, size: u64, mtime: u64) -> (Status, ByteRange) {
    let whole = ByteRange {
        start: 0,
        len: size,
    };
    if not_modified(mtime, req.if_modified_since) {
        return (Status::NotModified, whole);
    }
    match req.range.map(|r| r.resolve(size)) {
        Some(Ok(range)) => (Status::PartialContent, range),
        Some(Err(status)) => (status, whole),
        None => (Status::Ok, whole),
    }
}

/// A `fmt::Write` into a byte slice that fails when the slice is full.
pub struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceWriter<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        SliceWriter { buf, len: 0 }
    }

    /// How many bytes were written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// What a response head says besides its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status.
    pub status: Status,
    /// The body's bytes (the range for 206; 0 for errors and 304).
    pub range: ByteRange,
    /// The file's size (for `Content-Range`).
    pub size: u64,
    /// The file's modification time, for `Last-Modified` (none on errors).
    pub mtime: Option<u64>,
    /// Whether the connection stays open.
    pub keep_alive: bool,
}

/// Writes a response head into `out`; returns its length, or `None` when `out` is too small.
pub fn write_response_head(head: &ResponseHead, out: &mut [u8]) -> Option<usize> {
    let mut w = SliceWriter::new(out);
    let s = head.status;
    let body_len = match s {
        Status::Ok | Status::PartialContent => head.range.len,
        _ => 0,
    };
    write!(w, "HTTP/1.1 {} {}\r\n", s.code(), s.reason()).ok()?;
    write!(w, "Server: rust44-tcp_listener\r\n").ok()?;
    if let Some(mtime) = head.mtime {
        write!(w, "Last-Modified: {}\r\n", HttpDate(mtime)).ok()?;
    }
    if matches!(s, Status::Ok | Status::PartialContent | Status::NotModified) {
        write!(w, "Accept-Ranges: bytes\r\n").ok()?;
    }
    if s == Status::PartialContent {
        let last = head.range.start + head.range.len - 1;
        let (first, size) = (head.range.start, head.size);
        write!(w, "Content-Range: bytes {first}-{last}/{size}\r\n").ok()?;
    } else if s == Status::RangeNotSatisfiable {
        write!(w, "Content-Range: bytes */{}\r\n", head.size).ok()?;
    }
    if s != Status::NotModified {
        write!(w, "Content-Length: {body_len}\r\n").ok()?;
    }
    let conn = if head.keep_alive {
        "keep-alive"
    } else {
        "close"
    };
    write!(w, "Connection: {conn}\r\n\r\n").ok()?;
    Some(w.len())
}
