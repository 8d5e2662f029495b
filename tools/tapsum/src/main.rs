// SPDX-License-Identifier: GPL-2.0

//! `tapsum`: prints rust44's test results as one TAP stream ending in `N passed, N failed`.
//!
//! ```text
//! tapsum [--cargo NAME=FILE] [--tap NAME=FILE] [--suite NAME=FILE] [--dmesg NAME=FILE]
//!        [--kunit NAME=SUITE,...] [--summary-only]
//! ```
//! `--cargo` reads one crate's `cargo test` output (ending with `# cargo-exit: N`); `--tap` any
//! TAP stream; `--suite` a guest suite's results (TAP, then `# rust44-exit: N`). `--dmesg` takes
//! the KUnit suites named `rust44*` from a kernel log and adds a `NAME/dmesg-clean` test that
//! fails on any KASAN, lockdep, kmemleak, WARN, BUG, hang or stall report (but kmemleak's reports
//! of a leak that the log's suite declared known, see `check_kernel_log`); `--kunit` names the
//! KUnit suites that the kernel log `NAME` must report (counted even without the prefix).
//! Exits 1 when a test failed or none ran, 2 on bad usage.

use std::process::ExitCode;
use tapsum::{
    check_kernel_log, parse_cargo_test, parse_kunit_dmesg, parse_suite, parse_tap, render_tap,
    KernelReports, Outcome, TestResult, Totals,
};

const USAGE: &str = "usage: tapsum [--cargo NAME=FILE] [--tap NAME=FILE] [--suite NAME=FILE] \
                     [--dmesg NAME=FILE] [--kunit NAME=SUITE,...] [--summary-only]";

fn main() -> ExitCode {
    let mut inputs = Vec::new();
    let mut expected_kunit: Vec<(String, Vec<String>)> = Vec::new();
    let mut summary_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--summary-only" {
            summary_only = true;
            continue;
        }
        let known = ["--cargo", "--tap", "--suite", "--dmesg", "--kunit"];
        let Some((name, value)) = args.next().and_then(|a| {
            a.split_once('=')
                .map(|(n, v)| (n.to_string(), v.to_string()))
        }) else {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        };
        if !known.contains(&flag.as_str()) {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        if flag == "--kunit" {
            let suites = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            match expected_kunit.iter_mut().find(|(n, _)| *n == name) {
                Some((_, list)) => list.extend(suites),
                None => expected_kunit.push((name, suites.collect())),
            }
        } else {
            inputs.push((flag, name, value));
        }
    }
    // Expectations for a kernel log that was never given would check nothing.
    for (name, _) in &expected_kunit {
        if !inputs
            .iter()
            .any(|(flag, n, _)| flag == "--dmesg" && n == name)
        {
            eprintln!("tapsum: --kunit {name}=... without --dmesg {name}=FILE");
            return ExitCode::from(2);
        }
    }

    let mut results = Vec::new();
    let mut diagnostics = Vec::new();
    for (flag, name, path) in inputs {
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => {
                // A missing result file is a failed layer, not a usage error.
                results.push(TestResult {
                    name: format!("{name}/results"),
                    outcome: Outcome::Fail,
                    note: Some(format!("cannot read {path}: {err}")),
                });
                continue;
            }
        };
        match flag.as_str() {
            "--cargo" => results.extend(parse_cargo_test(&name, &text)),
            "--tap" => results.extend(parse_tap(&name, &text)),
            "--suite" => results.extend(parse_suite(&name, &text)),
            _ => {
                let expected = expected_kunit
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, list)| list.as_slice())
                    .unwrap_or_default();
                results.extend(parse_kunit_dmesg(
                    &format!("{name}/kunit"),
                    "rust44",
                    expected,
                    &text,
                ));
                let KernelReports {
                    splats,
                    known_leaks,
                } = check_kernel_log(&text);
                let note = splats.first().map(|s| format!("kernel report: {s}"));
                diagnostics.extend(splats.iter().map(|s| format!("# {name}: {s}")));
                diagnostics.extend(known_leaks.iter().map(|s| format!("# {name}: {s}")));
                let outcome = if splats.is_empty() {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                };
                results.push(TestResult {
                    name: format!("{name}/dmesg-clean"),
                    outcome,
                    note,
                });
            }
        }
    }
    tapsum::disambiguate(&mut results);
    let totals = Totals::of(&results);
    if !summary_only {
        print!("{}", render_tap(&results));
        for line in &diagnostics {
            println!("{line}");
        }
    }
    println!("{totals}");
    if totals.failed > 0 || totals.passed == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
