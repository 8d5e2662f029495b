// SPDX-License-Identifier: GPL-2.0
use crate::http::*;

/// xorshift64*: deterministic pseudo-random values for property checks without crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn complete(buf: &[u8]) -> Request<'_> {
    match parse_request(buf) {
        Ok(Parsed::Complete(r)) => r,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn status(buf: &[u8]) -> Status {
    match parse_request(buf) {
        Err(s) => s,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn norm(target: &[u8]) -> Result<Vec<u8>, Status> {
    let mut out = [0u8; MAX_PATH];
    let n = normalize_path(target, &mut out)?;
    Ok(out[..n].to_vec())
}

#[test]
fn a_simple_get_is_complete_with_its_head_length() {
    let req = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
    let r = complete(req);
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.target, b"/index.html");
    assert_eq!(r.version, Version::Http11);
    assert!(r.keep_alive);
    assert_eq!(r.range, None);
    assert_eq!(r.if_modified_since, None);
    assert_eq!(&req[r.head_len..], b"GET /next");
    // Bare LF line ends and blank lines before the request line are accepted.
    let r = complete(b"\r\n\nHEAD /a HTTP/1.1\nHost: x\n\n");
    assert_eq!(r.method, Method::Head);
    assert_eq!(r.head_len, 29);
}

#[test]
fn every_prefix_of_a_valid_request_is_incomplete() {
    let req =
        b"GET /a/b?q=1 HTTP/1.1\r\nHost: example\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n";
    for n in 0..req.len() {
        assert_eq!(
            parse_request(&req[..n]),
            Ok(Parsed::Incomplete),
            "prefix {n}"
        );
    }
    let r = complete(req);
    assert!(!r.keep_alive);
    assert_eq!(
        r.range,
        Some(RangeSpec::From {
            first: 0,
            last: Some(9)
        })
    );
    assert_eq!(r.head_len, req.len());
}

#[test]
fn keep_alive_follows_version_and_connection() {
    assert!(complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").keep_alive);
    assert!(!complete(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n").keep_alive);
    assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(complete(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    assert!(!complete(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
    assert!(complete(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade , TE\r\n\r\n").keep_alive);
}

#[test]
fn malformed_requests_are_400() {
    for req in [
        &b"GET /\r\n\r\n"[..],
        b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
        b"GET index.html HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTQ/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert_eq!(
            status(req),
            Status::BadRequest,
            "{:?}",
            String::from_utf8_lossy(req)
        );
    }
    // A body of length 0 is no body.
    complete(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
}

#[test]
fn other_methods_are_405_and_other_versions_505() {
    for m in ["POST", "PUT", "DELETE", "OPTIONS", "get", "PATCH", "BREW"] {
        let req = format!("{m} / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(status(req.as_bytes()), Status::MethodNotAllowed, "{m}");
    }
    for v in ["HTTP/2.0", "HTTP/0.9", "HTTP/1.2"] {
        let req = format!("GET / {v}\r\nHost: x\r\n\r\n");
        assert_eq!(status(req.as_bytes()), Status::VersionNotSupported, "{v}");
    }
    // The decision is taken as soon as the request line is complete.
    assert_eq!(status(b"POST / HTTP/1.1\r\n"), Status::MethodNotAllowed);
}

#[test]
fn a_long_request_line_is_414_at_the_limit_not_before() {
    let path = "a".repeat(MAX_REQUEST_LINE - "GET / HTTP/1.1".len());
    let ok = format!("GET /{path} HTTP/1.1\r\nHost: x\r\n\r\n");
    complete(ok.as_bytes());
    let long = format!("GET /a{path} HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(long.as_bytes()), Status::UriTooLong);
    // Without its line end yet: 414 as soon as the limit is passed, incomplete until then.
    let partial = format!("GET /{path}");
    assert_eq!(parse_request(partial.as_bytes()), Ok(Parsed::Incomplete));
    let partial = format!("GET /{path}aaaaaaaaaaaaaaaa");
    assert_eq!(status(partial.as_bytes()), Status::UriTooLong);
}

#[test]
fn too_many_or_too_long_headers_are_431() {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 1..MAX_HEADERS {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    let full = format!("{req}\r\n");
    complete(full.as_bytes());
    let over = format!("{req}X-last: v\r\n\r\n");
    assert_eq!(status(over.as_bytes()), Status::HeaderFieldsTooLarge);

    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "v".repeat(MAX_HEADER_BYTES)
    );
    assert_eq!(status(big.as_bytes()), Status::HeaderFieldsTooLarge);
    // Unterminated: 431 once past the limit, incomplete before.
    let open = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}",
        "v".repeat(MAX_HEADER_BYTES - 20)
    );
    assert_eq!(parse_request(open.as_bytes()), Ok(Parsed::Incomplete));
    let open = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}",
        "v".repeat(MAX_HEADER_BYTES)
    );
    assert_eq!(status(open.as_bytes()), Status::HeaderFieldsTooLarge);
}

#[test]
fn paths_are_normalised_below_the_root() {
    for (target, path) in [
        (&b"/"[..], &b""[..]),
        (b"/index.html", b"index.html"),
        (b"//a///b/./c/", b"a/b/c"),
        (b"/a/./././b", b"a/b"),
        (b"/dir/?x=../../etc", b"dir"),
        (b"/a%20b", b"a b"),
        (b"/%41%62", b"Ab"),
        (b"/a%2fb", b"a/b"),
        (b"/...", b"..."),
        (b"/..a/b..", b"..a/b.."),
        (b"/%252e%252e/x", b"%2e%2e/x"),
        (b"/a#frag", b"a"),
    ] {
        assert_eq!(
            norm(target).as_deref(),
            Ok(path),
            "{:?}",
            String::from_utf8_lossy(target)
        );
    }
}

#[test]
fn traversal_is_refused_in_every_encoding() {
    for target in [
        &b"/.."[..],
        b"/../etc/passwd",
        b"/a/../../etc/passwd",
        b"/a/..",
        b"/a/../b",
        b"/%2e%2e/etc/passwd",
        b"/%2E%2E/etc/passwd",
        b"/.%2e/x",
        b"/a/..%2f..%2fetc",
        b"/%2e%2e%2fetc",
        b"/a%2f%2e%2e%2f%2e%2e",
    ] {
        assert_eq!(
            norm(target),
            Err(Status::Forbidden),
            "{:?}",
            String::from_utf8_lossy(target)
        );
    }
    for target in [&b"/a%00b"[..], b"/a%", b"/a%2", b"/a%zz", b"/%g0"] {
        assert_eq!(
            norm(target),
            Err(Status::BadRequest),
            "{:?}",
            String::from_utf8_lossy(target)
        );
    }
}

#[test]
fn a_path_longer_than_the_buffer_is_414() {
    let mut out = [0u8; 8];
    assert_eq!(normalize_path(b"/12345678", &mut out), Ok(8));
    assert_eq!(
        normalize_path(b"/123456789", &mut out),
        Err(Status::UriTooLong)
    );
    assert_eq!(
        normalize_path(b"/1234/5678", &mut out),
        Err(Status::UriTooLong)
    );
    assert_eq!(normalize_path(b"/1234/567/", &mut out), Ok(8));
}

#[test]
fn one_range_is_parsed_others_ignored() {
    assert_eq!(
        parse_range(b"bytes=0-0"),
        Some(RangeSpec::From {
            first: 0,
            last: Some(0)
        })
    );
    assert_eq!(
        parse_range(b"bytes=5-"),
        Some(RangeSpec::From {
            first: 5,
            last: None
        })
    );
    assert_eq!(parse_range(b"bytes=-7"), Some(RangeSpec::Suffix(7)));
    for bad in [
        &b"bytes=0-1,3-4"[..],
        b"bytes=5-4",
        b"bytes=-",
        b"bytes=a-b",
        b"items=0-1",
        b"bytes=0-99999999999999999999",
        b"bytes=1",
    ] {
        assert_eq!(parse_range(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
    // Two Range fields: ignored.
    let r = complete(b"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n");
    assert_eq!(r.range, None);
}

#[test]
fn ranges_resolve_against_the_file_size() {
    let from = |first, last| RangeSpec::From { first, last };
    let r = |start, len| Ok(ByteRange { start, len });
    assert_eq!(from(0, Some(9)).resolve(100), r(0, 10));
    assert_eq!(from(90, Some(200)).resolve(100), r(90, 10));
    assert_eq!(from(99, None).resolve(100), r(99, 1));
    assert_eq!(
        from(100, None).resolve(100),
        Err(Status::RangeNotSatisfiable)
    );
    assert_eq!(from(0, None).resolve(0), Err(Status::RangeNotSatisfiable));
    assert_eq!(RangeSpec::Suffix(10).resolve(100), r(90, 10));
    assert_eq!(RangeSpec::Suffix(1000).resolve(100), r(0, 100));
    assert_eq!(
        RangeSpec::Suffix(0).resolve(100),
        Err(Status::RangeNotSatisfiable)
    );
    assert_eq!(
        RangeSpec::Suffix(5).resolve(0),
        Err(Status::RangeNotSatisfiable)
    );
}

#[test]
fn http_dates_round_trip_and_bad_ones_are_ignored() {
    assert_eq!(
        parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    assert_eq!(parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(
        parse_http_date(b"Tue, 29 Feb 2000 12:00:00 GMT"),
        Some(951_825_600)
    );
    assert_eq!(
        HttpDate(784_111_777).to_string(),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(HttpDate(0).to_string(), "Thu, 01 Jan 1970 00:00:00 GMT");
    for bad in [
        &b"Mon, 06 Nov 1994 08:49:37 GMT"[..],
        b"Sun, 06 Nov 1994 08:49:37 UTC",
        b"Sunday, 06-Nov-94 08:49:37 GMT",
        b"Sun Nov  6 08:49:37 1994",
        b"Thu, 29 Feb 2001 00:00:00 GMT",
        b"Wed, 31 Dec 1969 23:59:59 GMT",
        b"Sun, 06 Nov 1994 24:00:00 GMT",
        b"Sun, 06 Nox 1994 08:49:37 GMT",
        b"",
    ] {
        assert_eq!(
            parse_http_date(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut rng = Rng(0x1234_5678);
    for _ in 0..20_000 {
        let t = rng.below(253_402_300_800); // up to 9999-12-31
        let s = HttpDate(t).to_string();
        assert_eq!(parse_http_date(s.as_bytes()), Some(t), "{s}");
    }
}

#[test]
fn decisions_for_a_file() {
    let base = complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let whole = ByteRange { start: 0, len: 100 };
    assert_eq!(decide(&base, 100, 50), (Status::Ok, whole));
    let ims = Request {
        if_modified_since: Some(50),
        ..base
    };
    assert_eq!(decide(&ims, 100, 50).0, Status::NotModified);
    assert_eq!(decide(&ims, 100, 51).0, Status::Ok);
    let ranged = Request {
        range: Some(RangeSpec::Suffix(10)),
        ..base
    };
    assert_eq!(
        decide(&ranged, 100, 50),
        (Status::PartialContent, ByteRange { start: 90, len: 10 })
    );
    let past = Request {
        range: Some(RangeSpec::From {
            first: 100,
            last: None,
        }),
        ..base
    };
    assert_eq!(decide(&past, 100, 50).0, Status::RangeNotSatisfiable);
}

#[test]
fn response_heads_say_what_is_sent() {
    let mut out = [0u8; 512];
    let head = ResponseHead {
        status: Status::PartialContent,
        range: ByteRange { start: 90, len: 10 },
        size: 100,
        mtime: Some(784_111_777),
        keep_alive: true,
    };
    let n = write_response_head(&head, &mut out).unwrap();
    assert_eq!(
        std::str::from_utf8(&out[..n]).unwrap(),
        "HTTP/1.1 206 Partial Content\r\nServer: rust44-tcp_listener\r\n\
         Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nAccept-Ranges: bytes\r\n\
         Content-Range: bytes 90-99/100\r\nContent-Length: 10\r\nConnection: keep-alive\r\n\r\n"
    );
    let head = ResponseHead {
        status: Status::NotFound,
        mtime: None,
        keep_alive: false,
        ..head
    };
    let n = write_response_head(&head, &mut out).unwrap();
    assert_eq!(
        std::str::from_utf8(&out[..n]).unwrap(),
        "HTTP/1.1 404 Not Found\r\nServer: rust44-tcp_listener\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    // Too small a buffer: None, never a partial head reported as complete.
    for len in 0..n {
        assert_eq!(write_response_head(&head, &mut out[..len]), None, "{len}");
    }
}

/// Random byte streams, and valid requests with random bytes mutated, truncated or spliced:
/// the parser never panics, never reports a head longer than the input, and a complete
/// request's target normalises to a path with no `.`/`..` segment and no leading `/`.
#[test]
fn random_streams_never_panic_and_results_are_consistent() {
    const SEEDS: [&[u8]; 4] = [
        b"GET /a/b.html HTTP/1.1\r\nHost: h\r\nRange: bytes=1-5\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: keep-alive\r\n\r\n",
        b"HEAD /%2e%2e/x?y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"GET //./x/../y HTTP/1.1\nHost: h\nContent-Length: 0\n\n",
        b"\r\nGET / HTTP/1.1\r\nHost: h\r\nRange: bytes=-3\r\n\r\n",
    ];
    const ALPHABET: &[u8] = b"GETHAD /.%2eE:\r\n\t-=,0123456789abcdefHTTP/1.0";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::new();
    let mut out = [0u8; MAX_PATH];
    let mut complete_count = 0;
    for i in 0..200_000 {
        buf.clear();
        match i % 3 {
            0 => {
                let len = rng.below(300) as usize;
                buf.extend((0..len).map(|_| rng.next() as u8));
            }
            1 => {
                let len = rng.below(200) as usize;
                buf.extend((0..len).map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize]));
            }
            _ => {
                buf.extend_from_slice(SEEDS[rng.below(SEEDS.len() as u64) as usize]);
                for _ in 0..rng.below(4) {
                    let at = rng.below(buf.len() as u64) as usize;
                    match rng.below(3) {
                        0 => buf[at] = ALPHABET[rng.below(ALPHABET.len() as u64) as usize],
                        1 => buf[at] = rng.next() as u8,
                        _ => buf.truncate(at),
                    }
                    if buf.is_empty() {
                        break;
                    }
                }
            }
        }
        match parse_request(&buf) {
            Ok(Parsed::Complete(r)) => {
                complete_count += 1;
                assert!(r.head_len <= buf.len());
                assert!(r.target.starts_with(b"/"));
                // The same head alone parses to the same request.
                assert_eq!(parse_request(&buf[..r.head_len]), Ok(Parsed::Complete(r)));
                if let Ok(n) = normalize_path(r.target, &mut out) {
                    let p = &out[..n];
                    assert!(!p.starts_with(b"/") && !p.ends_with(b"/"));
                    assert!(p
                        .split(|&b| b == b'/')
                        .all(|s| s != b".." && s != b"." && !s.is_empty() || n == 0));
                }
                if let Some(range) = r.range {
                    let size = rng.below(20);
                    if let Ok(br) = range.resolve(size) {
                        assert!(br.len > 0 && br.start + br.len <= size);
                    }
                }
            }
            Ok(Parsed::Incomplete) => assert!(buf.len() <= MAX_REQUEST_LINE + MAX_HEADER_BYTES + 2),
            Err(_) => {}
        }
    }
    assert!(
        complete_count > 1000,
        "only {complete_count} complete requests"
    );
}
