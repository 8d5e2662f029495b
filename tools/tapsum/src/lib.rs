// SPDX-License-Identifier: GPL-2.0

//! Turns the outputs of rust44's test layers into one flat TAP stream and a closing count.
//!
//! Three inputs are understood:
//! - libtest's human output (`cargo test`): `test a::b ... ok`;
//! - (nested) TAP/KTAP, as kselftest programs, the guest runner and KUnit print it;
//! - a kernel log (`dmesg`), from which KUnit's KTAP is taken and in which kernel splats
//!   (KASAN, lockdep, kmemleak, WARN, BUG, oops) are looked for.

use std::fmt;

/// What became of one test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and passed (an expected failure counts here too).
    Pass,
    /// It ran and failed, or what should have run did not report.
    Fail,
    /// It did not run, for a reason it gave.
    Skip,
}

/// One leaf test with its full path, e.g. `guest/harness/nvme.zoned_is_host_managed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResult {
    pub name: String,
    pub outcome: Outcome,
    /// The reason a test was skipped, or why a parent failed although its subtests did not.
    pub note: Option<String>,
}

impl TestResult {
    fn new(name: String, outcome: Outcome, note: Option<String>) -> Self {
        Self {
            name,
            outcome,
            note,
        }
    }
}

/// Counts of a set of results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Totals {
    pub fn of(results: &[TestResult]) -> Self {
        let mut totals = Totals::default();
        for result in results {
            match result.outcome {
                Outcome::Pass => totals.passed += 1,
                Outcome::Fail => totals.failed += 1,
                Outcome::Skip => totals.skipped += 1,
            }
        }
        totals
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

/// Parses libtest output. Each `test NAME ... RESULT` line is one result.
pub fn parse_cargo_test(prefix: &str, text: &str) -> Vec<TestResult> {
    let mut results = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, status)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let outcome = match status.trim() {
            "ok" => Outcome::Pass,
            "FAILED" => Outcome::Fail,
            s if s.starts_with("ignored") => Outcome::Skip,
            _ => continue,
        };
        // Doc tests print `src/lib.rs - item (line 3)`: keep the names path-like.
        let name = name.trim().replace(" - ", "::");
        results.push(TestResult::new(join(prefix, &name), outcome, None));
    }
    results
}

/// A `ok`/`not ok` line of TAP.
#[derive(Debug, PartialEq, Eq)]
struct ResultLine {
    indent: usize,
    ok: bool,
    name: String,
    directive: Option<(String, String)>,
}

fn parse_result_line(line: &str) -> Option<ResultLine> {
    let body = line.trim_start();
    let indent = line.len() - body.len();
    let (ok, rest) = if let Some(rest) = body.strip_prefix("not ok ") {
        (false, rest)
    } else if let Some(rest) = body.strip_prefix("ok ") {
        (true, rest)
    } else {
        return None;
    };
    let (number, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (name, directive) = match rest.split_once(" # ") {
        Some((name, directive)) => {
            let directive = directive.trim();
            let (word, reason) = directive.split_once(' ').unwrap_or((directive, ""));
            (
                name,
                Some((word.to_ascii_uppercase(), reason.trim().to_string())),
            )
        }
        None => match rest.strip_prefix("# ") {
            // `ok 1 # SKIP reason`: a result without a name.
            Some(directive) => {
                let (word, reason) = directive.split_once(' ').unwrap_or((directive, ""));
                (
                    "",
                    Some((word.to_ascii_uppercase(), reason.trim().to_string())),
                )
            }
            None => (rest, None),
        },
    };
    let name = if name.trim().is_empty() {
        format!("test{number}")
    } else {
        name.trim().to_string()
    };
    Some(ResultLine {
        indent,
        ok,
        name,
        directive,
    })
}

/// A result whose subtests (more deeply indented results just before it) are known.
struct Node {
    line: ResultLine,
    children: Vec<Node>,
}

/// Parses (nested) TAP or KTAP into trees, one per top-level result.
///
/// Subtests come before their parent's result line and are indented more deeply. Lines that are
/// not results (plans, diagnostics, program output) are ignored.
fn parse_tree(text: &str) -> Vec<Node> {
    // Results waiting for the parent that will adopt them, in order of appearance.
    let mut pending: Vec<Node> = Vec::new();
    for line in text.lines() {
        let Some(result) = parse_result_line(line) else {
            continue;
        };
        let first_child = pending
            .iter()
            .rposition(|node| node.line.indent <= result.indent)
            .map_or(0, |i| i + 1);
        let children = pending.split_off(first_child);
        pending.push(Node {
            line: result,
            children,
        });
    }
    pending
}

fn flatten(node: &Node, prefix: &str, out: &mut Vec<TestResult>) {
    let name = join(prefix, &node.line.name);
    let directive = node.line.directive.as_ref();
    let skipped = directive.is_some_and(|(word, _)| word == "SKIP");
    let todo = directive.is_some_and(|(word, _)| word == "TODO");
    // SKIP and TODO carry a reason; any other comment (`# exit=1`) is the note itself.
    let reason = directive
        .map(|(word, reason)| match word.as_str() {
            "SKIP" | "TODO" => reason.clone(),
            _ => format!("{} {reason}", word.to_ascii_lowercase())
                .trim()
                .to_string(),
        })
        .filter(|r| !r.is_empty());
    if node.children.is_empty() {
        let outcome = match (node.line.ok, skipped || todo) {
            (_, true) => Outcome::Skip,
            (true, false) => Outcome::Pass,
            (false, false) => Outcome::Fail,
        };
        out.push(TestResult::new(name, outcome, reason));
        return;
    }
    let before = out.len();
    for child in &node.children {
        flatten(child, &name, out);
    }
    // A parent that failed although none of its subtests did (a crash, a non-zero exit after the
    // last subtest, a missing subtest) must not vanish from the count.
    let child_failed = out[before..].iter().any(|r| r.outcome == Outcome::Fail);
    if !node.line.ok && !skipped && !todo && !child_failed {
        let note = reason.or_else(|| Some("failed after its subtests passed".to_string()));
        out.push(TestResult::new(name, Outcome::Fail, note));
    }
}

/// Parses (nested) TAP or KTAP and returns its leaf results under `prefix`.
pub fn parse_tap(prefix: &str, text: &str) -> Vec<TestResult> {
    let mut out = Vec::new();
    for node in parse_tree(text) {
        flatten(&node, prefix, &mut out);
    }
    out
}

/// Removes the `[    1.234567] ` timestamp that `dmesg` and the console put before a line.
pub fn strip_printk_time(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix('[') {
        if let Some((stamp, text)) = rest.split_once("] ") {
            let stamp = stamp.trim();
            if !stamp.is_empty() && stamp.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return text;
            }
        }
    }
    line
}

/// Takes the KUnit results of the suites whose names start with `suite_prefix` out of a kernel
/// log.
pub fn parse_kunit_dmesg(prefix: &str, suite_prefix: &str, log: &str) -> Vec<TestResult> {
    let text: String = log
        .lines()
        .map(strip_printk_time)
        .fold(String::new(), |mut s, line| {
            s.push_str(line);
            s.push('\n');
            s
        });
    let mut out = Vec::new();
    for node in parse_tree(&text) {
        if node.line.name.starts_with(suite_prefix) {
            flatten(&node, prefix, &mut out);
        }
    }
    out
}

/// Patterns of kernel reports that fail a run wherever they appear.
const SPLATS: &[&str] = &[
    "BUG: ",
    "WARNING: ",
    "KASAN: ",
    "UBSAN: ",
    "Oops",
    "general protection fault",
    "Kernel panic",
    "kernel BUG at",
    "unreferenced object 0x",
    "possible circular locking dependency",
    "possible recursive locking",
    "inconsistent lock state",
    "suspicious RCU usage",
    "INFO: task ",
    "rcu_preempt detected stalls",
    "Call Trace:",
];

/// Returns the lines of a kernel log that report a bug, a warning or a leak.
pub fn find_splats(log: &str) -> Vec<String> {
    log.lines()
        .map(strip_printk_time)
        .filter(|line| SPLATS.iter().any(|pattern| line.contains(pattern)))
        .map(str::to_string)
        .collect()
}

/// Writes results as one flat TAP document.
pub fn render_tap(results: &[TestResult]) -> String {
    let mut out = String::from("TAP version 13\n");
    out.push_str(&format!("1..{}\n", results.len()));
    for (i, result) in results.iter().enumerate() {
        let status = match result.outcome {
            Outcome::Fail => "not ok",
            _ => "ok",
        };
        out.push_str(&format!("{status} {} {}", i + 1, result.name));
        match (result.outcome, &result.note) {
            (Outcome::Skip, Some(note)) => out.push_str(&format!(" # SKIP {note}")),
            (Outcome::Skip, None) => out.push_str(" # SKIP"),
            (Outcome::Fail, Some(note)) => out.push_str(&format!(" # {note}")),
            _ => {}
        }
        out.push('\n');
    }
    out
}

/// Numbers repeated names (`name`, `name#2`, ...): a suite that loads a module twice runs its
/// KUnit suite twice, and each result must stay identifiable.
pub fn disambiguate(results: &mut [TestResult]) {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for result in results.iter_mut() {
        let count = seen.entry(result.name.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            result.name = format!("{}#{count}", result.name);
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KSELFTEST: &str = "\
TAP version 13
1..3
# Starting 3 tests from 1 test cases.
#  RUN           global.first ...
#            OK  global.first
ok 1 global.first
#  RUN           global.second ...
# harness.c:12:second:Expected 1 (1) == 2 (2)
not ok 2 global.second
ok 3 global.third # SKIP no zoned namespace
# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
";

    #[test]
    fn cargo_results_are_read() {
        let text = "running 3 tests\ntest a::one ... ok\ntest a::two ... FAILED\n\
                    test a::three ... ignored, slow\ntest result: FAILED. 1 passed\n";
        let results = parse_cargo_test("host", text);
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].name, "host/a::one");
        assert_eq!(
            Totals::of(&results),
            Totals {
                passed: 1,
                failed: 1,
                skipped: 1
            }
        );
    }

    #[test]
    fn kselftest_output_counts_each_test() {
        let results = parse_tap("guest/p", KSELFTEST);
        assert_eq!(results.len(), 3);
        assert_eq!(results[1].name, "guest/p/global.second");
        assert_eq!(results[1].outcome, Outcome::Fail);
        assert_eq!(results[2].outcome, Outcome::Skip);
        assert_eq!(results[2].note.as_deref(), Some("no zoned namespace"));
    }

    #[test]
    fn nested_program_output_is_flattened_under_its_program() {
        let nested: String = KSELFTEST.lines().map(|l| format!("  {l}\n")).collect();
        let text = format!("TAP version 13\n{nested}not ok 1 harness # exit=1\nok 2 other\n");
        let results = parse_tap("guest", &text);
        let names: Vec<_> = results.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "guest/harness/global.first",
                "guest/harness/global.second",
                "guest/harness/global.third",
                "guest/other"
            ]
        );
        // The program's failure is its failing subtest's: not counted twice.
        assert_eq!(Totals::of(&results).failed, 1);
    }

    #[test]
    fn a_crash_after_passing_subtests_still_fails() {
        let text = "  1..2\n  ok 1 a\n  ok 2 b\nnot ok 1 prog # killed by signal 11\n";
        let results = parse_tap("", text);
        assert_eq!(
            Totals::of(&results),
            Totals {
                passed: 2,
                failed: 1,
                skipped: 0
            }
        );
        assert_eq!(results[2].name, "prog");
        assert_eq!(results[2].note.as_deref(), Some("killed by signal 11"));
    }

    #[test]
    fn a_program_that_printed_nothing_counts_as_one() {
        let results = parse_tap("", "not ok 1 silent # exit=127\nok 2 quiet\n");
        assert_eq!(
            Totals::of(&results),
            Totals {
                passed: 1,
                failed: 1,
                skipped: 0
            }
        );
    }

    #[test]
    fn skipped_parent_with_no_children_is_a_skip() {
        let results = parse_tap("", "ok 1 gpu # SKIP no virtio-gpu\n");
        assert_eq!(results[0].outcome, Outcome::Skip);
    }

    #[test]
    fn lines_that_only_look_like_results_are_ignored() {
        let results = parse_tap("", "okay 1 x\nok x y\nnot ok\n# ok 1 z\n");
        assert!(results.is_empty());
    }

    #[test]
    fn kunit_suites_are_taken_from_dmesg() {
        let log = "\
[    0.500000] Run /init as init process
[    1.000000] KTAP version 1
[    1.000001] 1..2
[    1.000002]     KTAP version 1
[    1.000003]     # Subtest: rust44_capability
[    1.000004]     # speed: normal
[    1.000005]     1..2
[    1.000006]     ok 1 raw_numbers_match_uapi
[    1.000007]     not ok 2 kunit_runs_with_every_capability
[    1.000008] # rust44_capability: pass:1 fail:1 skip:0 total:2
[    1.000009] not ok 1 rust44_capability
[    1.000010]     KTAP version 1
[    1.000011]     # Subtest: rust_kernel_fmt
[    1.000012]     1..1
[    1.000013]     ok 1 fmt_works
[    1.000014] ok 2 rust_kernel_fmt
";
        let results = parse_kunit_dmesg("kunit", "rust44", log);
        assert_eq!(results.len(), 2);
        assert_eq!(
            results[0].name,
            "kunit/rust44_capability/raw_numbers_match_uapi"
        );
        assert_eq!(results[1].outcome, Outcome::Fail);
    }

    #[test]
    fn printk_time_is_stripped_only_when_it_is_one() {
        assert_eq!(strip_printk_time("[   12.5] hello"), "hello");
        assert_eq!(strip_printk_time("[x] hello"), "[x] hello");
        assert_eq!(strip_printk_time("plain"), "plain");
    }

    #[test]
    fn splats_are_found() {
        let log = "[ 1.0] ok\n[ 2.0] BUG: KASAN: slab-use-after-free in foo\n\
                   [ 3.0] WARNING: CPU: 0 PID: 1 at x.c:1\n[ 4.0] kmemleak: 1 new suspected memory leaks\n\
                   unreferenced object 0xffff888 (size 64):\n";
        let splats = find_splats(log);
        assert_eq!(splats.len(), 3);
        assert!(find_splats("[ 1.0] all fine\n").is_empty());
    }

    #[test]
    fn repeated_names_are_numbered() {
        let mut results = vec![
            TestResult::new("k/a".into(), Outcome::Pass, None),
            TestResult::new("k/a".into(), Outcome::Pass, None),
            TestResult::new("k/b".into(), Outcome::Pass, None),
        ];
        disambiguate(&mut results);
        let names: Vec<_> = results.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["k/a", "k/a#2", "k/b"]);
    }

    #[test]
    fn tap_output_and_totals_line() {
        let results = vec![
            TestResult::new("a".into(), Outcome::Pass, None),
            TestResult::new("b".into(), Outcome::Fail, Some("exit=1".into())),
            TestResult::new("c".into(), Outcome::Skip, Some("why".into())),
        ];
        assert_eq!(
            render_tap(&results),
            "TAP version 13\n1..3\nok 1 a\nnot ok 2 b # exit=1\nok 3 c # SKIP why\n"
        );
        assert_eq!(
            Totals::of(&results).to_string(),
            "1 passed, 1 failed, 1 skipped"
        );
    }
}
