// SPDX-License-Identifier: GPL-2.0

//! `tapsum`: prints rust44's test results as one TAP stream ending in `N passed, N failed`.
//!
//! ```text
//! tapsum [--cargo NAME=FILE] [--tap NAME=FILE] [--dmesg NAME=FILE] [--summary-only]
//! ```
//! `--dmesg` takes the KUnit suites named `rust44*` from a kernel log and adds a
//! `NAME/dmesg-clean` test that fails on any KASAN, lockdep, kmemleak, WARN or BUG report.
//! Exits 1 when a test failed or none ran, 2 on bad usage.

use std::process::ExitCode;
use tapsum::{
    find_splats, parse_cargo_test, parse_kunit_dmesg, parse_tap, render_tap, Outcome, TestResult,
    Totals,
};

const USAGE: &str =
    "usage: tapsum [--cargo NAME=FILE] [--tap NAME=FILE] [--dmesg NAME=FILE] [--summary-only]";

fn main() -> ExitCode {
    let mut results = Vec::new();
    let mut diagnostics = Vec::new();
    let mut summary_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--summary-only" {
            summary_only = true;
            continue;
        }
        let Some((name, path)) = args.next().and_then(|a| {
            a.split_once('=')
                .map(|(n, p)| (n.to_string(), p.to_string()))
        }) else {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        };
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
            "--dmesg" => {
                results.extend(parse_kunit_dmesg(&format!("{name}/kunit"), "rust44", &text));
                let splats = find_splats(&text);
                let note = splats.first().map(|s| format!("kernel report: {s}"));
                diagnostics.extend(splats.iter().map(|s| format!("# {name}: {s}")));
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
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
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
