// SPDX-License-Identifier: GPL-2.0
//! rust44-bpf: rust44's BPF programs from userspace, with libbpf-rs over the tree's libbpf.
//!
//! ```text
//! rust44-bpf pin OBJ DIR        load OBJ; pin its maps at DIR/maps/<map>, its programs at
//!                               DIR/progs/<prog>; attach its tracing programs (tp_btf, raw_tp,
//!                               tracepoint) and pin their links at DIR/links/<prog>; then exit:
//!                               the pins keep everything loaded and attached
//! rust44-bpf counts DIR         the pinned 'counts' map of events.bpf.o, one "slot value" a line
//! rust44-bpf hist DIR           the pinned 'lat_hist' map: "lo hi count" per non-empty log2
//!                               bucket, then "total N" and "pQ lo hi" for Q in 50, 90, 99
//! rust44-bpf reset DIR         zero both maps (a fresh measurement, programs attached)
//! rust44-bpf unpin DIR          remove DIR's pins (links first: detaches) and DIR itself
//! rust44-bpf sockfilter PIN PORT COUNT
//!                               attach the socket filter pinned at PIN to a UDP socket on
//!                               127.0.0.1:PORT, send it COUNT datagrams: "received M"
//! rust44-bpf stats              bpf_ext's statistics (debugfs), one "name value" a line
//! ```
//! Errors go to stderr with the errno libbpf or the kernel gave; the exit status is 1 (2 for
//! usage).

mod hist;

use std::fs;
use std::io::{self, ErrorKind};
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags, MapHandle, ObjectBuilder, Program, ProgramType};

use hist::{parse_stats, Log2Hist};

/// The slots of events.bpf.c's 'counts' map, in its `enum slot` order.
const COUNT_SLOTS: &[&str] = &[
    "submits",
    "submit_bytes",
    "completes",
    "complete_bytes",
    "complete_errors",
    "latency_ns",
    "raw_completes",
    "raw_latency_ns",
    "tp_completes",
    "tp_latency_ns",
    "polls",
    "poll_found",
    "lockedmem_creates",
    "lockedmem_refused",
];

const STATS: &str = "/sys/kernel/debug/bpf_ext/stats";

type Result<T> = std::result::Result<T, String>;

fn err<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

/// Whether libbpf can attach a program of this type from its section name alone.
fn attaches_by_section(t: ProgramType) -> bool {
    matches!(
        t,
        ProgramType::Tracing | ProgramType::RawTracepoint | ProgramType::Tracepoint
    )
}

fn pin(obj_path: &Path, dir: &Path) -> Result<()> {
    let open = ObjectBuilder::default()
        .open_file(obj_path)
        .map_err(err(format_args!("opening {}", obj_path.display())))?;
    let mut obj = open
        .load()
        .map_err(err(format_args!("loading {}", obj_path.display())))?;
    for sub in ["maps", "progs", "links"] {
        fs::create_dir_all(dir.join(sub))
            .map_err(err(format_args!("creating {}", dir.join(sub).display())))?;
    }
    let result = (|| {
        for mut map in obj.maps_mut() {
            // Internal maps (.rodata, .bss) belong to their programs.
            if map.name().to_string_lossy().contains('.') {
                continue;
            }
            let path = dir.join("maps").join(map.name());
            map.pin(&path)
                .map_err(err(format_args!("pinning map at {}", path.display())))?;
            println!("pinned map {}", path.display());
        }
        for mut prog in obj.progs_mut() {
            let name = prog.name().to_owned();
            let path = dir.join("progs").join(&name);
            prog.pin(&path)
                .map_err(err(format_args!("pinning program at {}", path.display())))?;
            println!("pinned prog {}", path.display());
            if !attaches_by_section(prog.prog_type()) {
                continue;
            }
            let mut link = prog.attach().map_err(err(format_args!(
                "attaching {} ({})",
                name.to_string_lossy(),
                prog.section().to_string_lossy()
            )))?;
            let path = dir.join("links").join(&name);
            link.pin(&path)
                .map_err(err(format_args!("pinning link at {}", path.display())))?;
            println!(
                "attached {} at {}",
                prog.section().to_string_lossy(),
                path.display()
            );
        }
        Ok(())
    })();
    if result.is_err() {
        // Nothing half-pinned stays behind.
        let _ = unpin(dir);
    }
    result
}

/// The pinned files of DIR/SUB.
fn pins(dir: &Path, sub: &str) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir.join(sub)) {
        Ok(entries) => entries
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .map_err(err(format_args!("reading {}", dir.join(sub).display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("reading {}: {e}", dir.join(sub).display())),
    }
}

fn unpin(dir: &Path) -> Result<()> {
    let mut removed = 0;
    // Links first: removing a link's last pin detaches its program.
    for sub in ["links", "progs", "maps"] {
        for path in pins(dir, sub)? {
            fs::remove_file(&path).map_err(err(format_args!("unpinning {}", path.display())))?;
            removed += 1;
        }
        match fs::remove_dir(dir.join(sub)) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(format!("removing {}: {e}", dir.join(sub).display()))
            }
            _ => (),
        }
    }
    fs::remove_dir(dir).map_err(err(format_args!("removing {}", dir.display())))?;
    println!("unpinned {removed}");
    Ok(())
}

/// Every element of a pinned `u32 -> u64` array map.
fn read_array(path: &Path) -> Result<Vec<u64>> {
    let map = MapHandle::from_pinned_path(path)
        .map_err(err(format_args!("opening pinned map {}", path.display())))?;
    if map.key_size() != 4 || map.value_size() != 8 {
        return Err(format!("{}: not a u32 -> u64 map", path.display()));
    }
    (0..map.max_entries())
        .map(|k| {
            let v = map
                .lookup(&k.to_ne_bytes(), MapFlags::ANY)
                .map_err(err(format_args!("{}[{k}]", path.display())))?
                .ok_or_else(|| format!("{}[{k}]: no element", path.display()))?;
            let bytes: [u8; 8] = v
                .as_slice()
                .try_into()
                .map_err(err(format_args!("{}[{k}]", path.display())))?;
            Ok(u64::from_ne_bytes(bytes))
        })
        .collect()
}

fn reset(dir: &Path) -> Result<()> {
    for name in ["counts", "lat_hist"] {
        let path = dir.join("maps").join(name);
        let map = MapHandle::from_pinned_path(&path)
            .map_err(err(format_args!("opening pinned map {}", path.display())))?;
        for k in 0..map.max_entries() {
            map.update(&k.to_ne_bytes(), &0u64.to_ne_bytes(), MapFlags::ANY)
                .map_err(err(format_args!("{}[{k}]", path.display())))?;
        }
    }
    Ok(())
}

fn counts(dir: &Path) -> Result<()> {
    let values = read_array(&dir.join("maps/counts"))?;
    for (i, v) in values.iter().enumerate() {
        match COUNT_SLOTS.get(i) {
            Some(name) => println!("{name} {v}"),
            None => println!("slot{i} {v}"),
        }
    }
    Ok(())
}

fn show_hist(dir: &Path) -> Result<()> {
    let h = Log2Hist {
        buckets: read_array(&dir.join("maps/lat_hist"))?,
    };
    for (i, &n) in h.buckets.iter().enumerate().filter(|(_, &n)| n > 0) {
        let (lo, hi) = Log2Hist::bounds(i);
        println!("{lo} {hi} {n}");
    }
    println!("total {}", h.total());
    for q in [50, 90, 99] {
        if let Some(b) = h.quantile_bucket(q) {
            let (lo, hi) = Log2Hist::bounds(b);
            println!("p{q} {lo} {hi}");
        }
    }
    Ok(())
}

fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `fd` is an open socket, the option value a live i32 of the length passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sockfilter(pin: &Path, port: u16, count: u32) -> Result<()> {
    let prog = Program::fd_from_pinned_path(pin).map_err(err(format_args!(
        "opening pinned program {}",
        pin.display()
    )))?;
    let rx = UdpSocket::bind(("127.0.0.1", port)).map_err(err(format_args!("binding {port}")))?;
    // Room for every datagram: only the filter may drop.
    let _ = set_int_opt(rx.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20);
    set_int_opt(
        rx.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_ATTACH_BPF,
        prog.as_raw_fd(),
    )
    .map_err(err("SO_ATTACH_BPF"))?;
    rx.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
    let tx = UdpSocket::bind(("127.0.0.1", 0)).map_err(err("binding the sender"))?;
    let mut buf = [0u8; 64];
    let mut received = 0;
    for _ in 0..count {
        tx.send_to(b"rust44-bpf", ("127.0.0.1", port))
            .map_err(err("sendto"))?;
        while rx.recv(&mut buf).is_ok() {
            received += 1;
        }
    }
    // Stragglers: loopback delivers within sendto as a rule.
    rx.set_nonblocking(false).map_err(err("O_NONBLOCK"))?;
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(err("SO_RCVTIMEO"))?;
    while rx.recv(&mut buf).is_ok() {
        received += 1;
    }
    println!("received {received}");
    Ok(())
}

fn stats() -> Result<()> {
    let text = fs::read_to_string(STATS).map_err(err(format_args!("reading {STATS}")))?;
    for (k, v) in parse_stats(&text) {
        println!("{k} {v}");
    }
    Ok(())
}

fn run(args: &[&str]) -> Option<Result<()>> {
    let p = |s: &str| PathBuf::from(s);
    Some(match args {
        ["pin", obj, dir] => pin(&p(obj), &p(dir)),
        ["counts", dir] => counts(&p(dir)),
        ["hist", dir] => show_hist(&p(dir)),
        ["reset", dir] => reset(&p(dir)),
        ["unpin", dir] => unpin(&p(dir)),
        ["sockfilter", pin, port, count] => match (port.parse(), count.parse()) {
            (Ok(port), Ok(count)) => sockfilter(&p(pin), port, count),
            _ => return None,
        },
        ["stats"] => stats(),
        _ => return None,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("rust44-bpf: {e}");
            ExitCode::from(1)
        }
        None => {
            eprintln!("usage: rust44-bpf pin OBJ DIR | counts DIR | hist DIR | reset DIR | unpin DIR | sockfilter PIN PORT COUNT | stats");
            ExitCode::from(2)
        }
    }
}
