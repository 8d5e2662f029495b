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

/// Parses the output of `cargo test` for one crate. Each `test NAME ... RESULT` line is one
/// result, and each test binary must account for itself:
/// - a binary that announced `running N tests` must print N results and its `test result:`
///   summary; one that stops before (an `abort()`, a stack overflow, a signal) is one failure
///   named after the binary, with cargo's `process didn't exit successfully` line as the note;
/// - a binary that exits abnormally after a summary without failures is a failure too;
/// - output with no test binary at all (the crate did not build) is a failure;
/// - a `# cargo-exit: N` line (the caller's record of cargo's exit status) that is not 0 is a
///   failure when nothing else failed.
pub fn parse_cargo_test(prefix: &str, text: &str) -> Vec<TestResult> {
    /// The binary whose results are being read.
    struct Binary {
        name: String,
        planned: usize,
        seen: usize,
        failed: bool,
    }
    let mut results = Vec::new();
    // The name from cargo's `Running`/`Doc-tests` line, for the `running N tests` that follows.
    let mut next_name: Option<String> = None;
    let mut open: Option<Binary> = None;
    // The last binary that printed its summary, while cargo may still report how it exited.
    let mut closed: Option<Binary> = None;
    let mut binaries = 0;
    let mut exit: Option<String> = None;
    let incomplete = |results: &mut Vec<TestResult>, binary: Binary, why: Option<&str>| {
        let note = format!(
            "test binary stopped after {} of {} results, without its summary{}",
            binary.seen,
            binary.planned,
            why.map(|w| format!(": {w}")).unwrap_or_default()
        );
        results.push(TestResult::new(
            join(prefix, &binary.name),
            Outcome::Fail,
            Some(note),
        ));
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(name) = cargo_binary_name(line) {
            if let Some(binary) = open.take() {
                incomplete(&mut results, binary, None);
            }
            next_name = Some(name);
            closed = None;
            continue;
        }
        if let Some(planned) = libtest_plan(trimmed) {
            if let Some(binary) = open.take() {
                incomplete(&mut results, binary, None);
            }
            binaries += 1;
            open = Some(Binary {
                name: next_name.take().unwrap_or_else(|| "tests".to_string()),
                planned,
                seen: 0,
                failed: false,
            });
            closed = None;
            continue;
        }
        if trimmed.starts_with("test result: ") {
            if let Some(mut binary) = open.take() {
                if binary.seen != binary.planned {
                    results.push(TestResult::new(
                        join(prefix, &binary.name),
                        Outcome::Fail,
                        Some(format!(
                            "announced {} tests but reported {}",
                            binary.planned, binary.seen
                        )),
                    ));
                    binary.failed = true;
                }
                closed = Some(binary);
            }
            continue;
        }
        if let Some(status) = trimmed.strip_prefix("# cargo-exit: ") {
            exit = Some(status.trim().to_string());
            continue;
        }
        if trimmed.starts_with("process didn't exit successfully") {
            if let Some(binary) = open.take() {
                incomplete(&mut results, binary, Some(trimmed));
            } else if let Some(binary) = closed.take() {
                if !binary.failed {
                    results.push(TestResult::new(
                        join(prefix, &binary.name),
                        Outcome::Fail,
                        Some(format!("exited abnormally after its summary: {trimmed}")),
                    ));
                }
            }
            continue;
        }
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
        if let Some(binary) = open.as_mut() {
            binary.seen += 1;
            binary.failed |= outcome == Outcome::Fail;
        }
        // Doc tests print `src/lib.rs - item (line 3)`: keep the names path-like.
        let name = name.trim().replace(" - ", "::");
        results.push(TestResult::new(join(prefix, &name), outcome, None));
    }
    if let Some(binary) = open.take() {
        incomplete(&mut results, binary, None);
    }
    let exit_note = exit
        .as_deref()
        .map(|e| format!(" (cargo exited {e})"))
        .unwrap_or_default();
    if binaries == 0 {
        results.push(TestResult::new(
            join(prefix, "cargo-test"),
            Outcome::Fail,
            Some(format!("no test binary ran{exit_note}")),
        ));
    } else if exit.as_deref().is_some_and(|e| e != "0")
        && !results.iter().any(|r| r.outcome == Outcome::Fail)
    {
        results.push(TestResult::new(
            join(prefix, "cargo-test"),
            Outcome::Fail,
            Some(format!("cargo failed although no test did{exit_note}")),
        ));
    }
    results
}

/// The test binary that cargo's `Running unittests src/lib.rs (target/...)`,
/// `Running tests/x.rs (target/...)` or `Doc-tests crate` line announces: `src/lib.rs`,
/// `tests/x.rs`, `doc-tests`.
/// Only cargo's own status lines (right-aligned in 12 columns) count, not a test's output.
fn cargo_binary_name(line: &str) -> Option<String> {
    if line.starts_with("   Doc-tests ") {
        return Some("doc-tests".to_string());
    }
    let target = line.strip_prefix("     Running ")?;
    let target = target.split(" (").next().unwrap_or(target).trim();
    let target = target.strip_prefix("unittests ").unwrap_or(target);
    Some(target.to_string())
}

/// The N of libtest's `running N tests` (or `running 1 test`).
fn libtest_plan(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("running ")?;
    let count = rest
        .strip_suffix(" tests")
        .or_else(|| rest.strip_suffix(" test"))?;
    count.parse().ok()
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
    /// What is wrong with the plans of the subtests' level, if anything.
    plan_problem: Option<String>,
}

/// A line of a TAP stream that matters for its structure.
enum Item {
    Result(Node),
    /// `1..N` (with `1..0 # SKIP reason` for a program that ran nothing).
    Plan {
        indent: usize,
        count: usize,
    },
    /// `TAP version 13` or `KTAP version 1`: a new document starts at this level.
    Header {
        indent: usize,
    },
}

impl Item {
    fn indent(&self) -> usize {
        match self {
            Item::Result(node) => node.line.indent,
            Item::Plan { indent, .. } | Item::Header { indent } => *indent,
        }
    }
}

fn parse_plan_line(line: &str) -> Option<Item> {
    let body = line.trim_start();
    let indent = line.len() - body.len();
    let rest = body.strip_prefix("1..")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (count, tail) = rest.split_at(digits);
    let tail = tail.trim();
    if count.is_empty() || !(tail.is_empty() || tail.starts_with('#')) {
        return None;
    }
    Some(Item::Plan {
        indent,
        count: count.parse().ok()?,
    })
}

fn parse_header_line(line: &str) -> Option<Item> {
    let body = line.trim_start();
    let indent = line.len() - body.len();
    (body.starts_with("TAP version ") || body.starts_with("KTAP version "))
        .then_some(Item::Header { indent })
}

/// Checks the plans of one level (the items between a parent's previous sibling and the parent):
/// each document on it (from a `TAP version` line to the next, or the whole level) must carry
/// exactly one plan, and the plan must count the results that document printed. A level that is
/// only program output (no result, plan or header) has nothing to check.
fn check_plans(items: &[Item]) -> Option<String> {
    #[derive(Default)]
    struct Document {
        header: bool,
        results: usize,
        plans: Vec<usize>,
    }
    fn problem(doc: &Document) -> Option<String> {
        match doc.plans.as_slice() {
            [] if doc.results == 0 && !doc.header => None,
            [] => Some(format!("no plan (1..N) for {} results", doc.results)),
            [count] if *count == doc.results => None,
            [count] => Some(format!("plan 1..{count} but {} results", doc.results)),
            plans => Some(format!("{} plans for one document", plans.len())),
        }
    }
    let mut problems = Vec::new();
    let mut doc = Document::default();
    for item in items {
        match item {
            Item::Header { .. } => {
                problems.extend(problem(&doc));
                doc = Document {
                    header: true,
                    ..Document::default()
                };
            }
            Item::Plan { count, .. } => doc.plans.push(*count),
            Item::Result(_) => doc.results += 1,
        }
    }
    problems.extend(problem(&doc));
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Parses (nested) TAP or KTAP into trees, one per top-level result, and returns them with the
/// plan problem of the top level.
///
/// Subtests come before their parent's result line and are indented more deeply. Plans and
/// version lines shape the levels; other lines (diagnostics, program output) are ignored.
fn parse_tree(text: &str) -> (Vec<Node>, Option<String>) {
    // Results, plans and headers waiting for the parent that will adopt them, in order.
    let mut pending: Vec<Item> = Vec::new();
    for line in text.lines() {
        if let Some(item) = parse_plan_line(line).or_else(|| parse_header_line(line)) {
            pending.push(item);
            continue;
        }
        let Some(result) = parse_result_line(line) else {
            continue;
        };
        let first_child = pending
            .iter()
            .rposition(|item| item.indent() <= result.indent)
            .map_or(0, |i| i + 1);
        let level = pending.split_off(first_child);
        let plan_problem = check_plans(&level);
        let children = level
            .into_iter()
            .filter_map(|item| match item {
                Item::Result(node) => Some(node),
                _ => None,
            })
            .collect();
        pending.push(Item::Result(Node {
            line: result,
            children,
            plan_problem,
        }));
    }
    let top_problem = check_plans(&pending);
    let nodes = pending
        .into_iter()
        .filter_map(|item| match item {
            Item::Result(node) => Some(node),
            _ => None,
        })
        .collect();
    (nodes, top_problem)
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
    // A skipped program may stop short of its plan (kselftest's ksft_exit_skip() does).
    let plan_problem = node.plan_problem.as_ref().filter(|_| !skipped && !todo);
    if node.children.is_empty() && plan_problem.is_none() {
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
    // last subtest, a missing subtest) must not vanish from the count; nor may subtests that a
    // plan announced and that never reported, whatever the parent's status.
    let child_failed = out[before..].iter().any(|r| r.outcome == Outcome::Fail);
    let parent_failed = !node.line.ok && !skipped && !todo && !child_failed;
    if parent_failed || plan_problem.is_some() {
        let notes: Vec<&str> = [
            reason.as_deref().filter(|_| parent_failed),
            plan_problem.map(String::as_str),
        ]
        .into_iter()
        .flatten()
        .collect();
        let note = if notes.is_empty() {
            "failed after its subtests passed".to_string()
        } else {
            notes.join("; ")
        };
        out.push(TestResult::new(name, Outcome::Fail, Some(note)));
    }
}

/// Parses (nested) TAP or KTAP and returns its leaf results under `prefix`. A plan that does not
/// count its level's results (or a level without a plan) is a failure named after the level's
/// parent, or `prefix/plan` for the top level.
pub fn parse_tap(prefix: &str, text: &str) -> Vec<TestResult> {
    let (nodes, top_problem) = parse_tree(text);
    let mut out = Vec::new();
    for node in &nodes {
        flatten(node, prefix, &mut out);
    }
    if let Some(problem) = top_problem {
        out.push(TestResult::new(
            join(prefix, "plan"),
            Outcome::Fail,
            Some(problem),
        ));
    }
    out
}

/// Parses the results of one guest suite (`tools/vm.sh suite`): the TAP its `run.sh` printed,
/// then the guest's `# rust44-exit: N` line. Besides [`parse_tap`]'s rules for nested levels, the
/// suite itself (one failure named `prefix`) fails when its stream has no result, when its
/// top-level plan is missing or wrong, when it exited non-zero with no failing result (a
/// `run.sh` that stopped early), and when the exit line is missing (the guest hung or crashed).
pub fn parse_suite(prefix: &str, text: &str) -> Vec<TestResult> {
    let (nodes, top_problem) = parse_tree(text);
    let mut out = Vec::new();
    for node in &nodes {
        flatten(node, prefix, &mut out);
    }
    let exit = text
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix("# rust44-exit: "))
        .next_back();
    let mut problems = Vec::new();
    match exit {
        None => problems.push(
            "the guest did not finish (no '# rust44-exit' line): see status and console.log \
             beside the results"
                .to_string(),
        ),
        Some(status) if status.trim() != "0" && !out.iter().any(|r| r.outcome == Outcome::Fail) => {
            problems.push(format!(
                "run.sh exited {} with no failing result",
                status.trim()
            ))
        }
        Some(_) => {}
    }
    if nodes.is_empty() {
        problems.push("no TAP result".to_string());
    }
    problems.extend(top_problem);
    if !problems.is_empty() {
        out.push(TestResult::new(
            prefix.to_string(),
            Outcome::Fail,
            Some(problems.join("; ")),
        ));
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

fn kernel_log_text(log: &str) -> String {
    log.lines()
        .map(strip_printk_time)
        .fold(String::new(), |mut s, line| {
            s.push_str(line);
            s.push('\n');
            s
        })
}

/// Takes the KUnit results out of a kernel log: those of the suites whose names start with
/// `suite_prefix`, and of the `expected` suites, which must be there: an expected suite that did
/// not report (not run, or stopped before its result line) is a failure `prefix/SUITE`.
pub fn parse_kunit_dmesg(
    prefix: &str,
    suite_prefix: &str,
    expected: &[String],
    log: &str,
) -> Vec<TestResult> {
    let (nodes, _) = parse_tree(&kernel_log_text(log));
    let mut out = Vec::new();
    for node in &nodes {
        if node.line.name.starts_with(suite_prefix) || expected.contains(&node.line.name) {
            flatten(node, prefix, &mut out);
        }
    }
    for suite in expected {
        if !nodes.iter().any(|node| &node.line.name == suite) {
            out.push(TestResult::new(
                join(prefix, suite),
                Outcome::Fail,
                Some("expected KUnit suite did not report".to_string()),
            ));
        }
    }
    out
}

/// Substrings of the reports Linux 7.3 prints for a bug, a warning, a leak or a hang: they fail
/// a run wherever they appear.
const SPLATS: &[&str] = &[
    // BUG(), KASAN, KFENCE, soft lockups, bad page state, sleeping in atomic context, lockdep's
    // BUG reports, NULL dereferences and page faults ("BUG: unable to handle page fault").
    "BUG: ",
    "kernel BUG at",
    // WARN() and lockdep's reports ("WARNING: possible circular locking dependency detected").
    "WARNING: ",
    "------------[ cut here ]------------",
    "KASAN: ",
    "UBSAN: ",
    "Oops",
    "general protection fault",
    "Kernel panic",
    // kmemleak (the guest writes the scan's result to the kernel log).
    "unreferenced object 0x",
    "suspected memory leak",
    // lockdep, in case a report's title comes without its "WARNING: ".
    "possible circular locking dependency",
    "possible recursive locking",
    "inconsistent lock state",
    "suspicious RCU usage",
    // Hung tasks ("INFO: task x:1 blocked for more than 120 seconds.") and hard lockups.
    "INFO: task ",
    "hard LOCKUP",
    // A Rust panic: the panic handler prints "panicked at file:line:col:" before BUG().
    "panicked at",
    "rust_panic",
    "Call Trace:",
];

/// Whether a line is an RCU stall report, whatever the RCU flavour's name (`rcu_sched` on this
/// kernel, `rcu_preempt` with preemption, `rcu_tasks`...): "INFO: rcu_sched detected stalls on
/// CPUs/tasks:", "INFO: rcu_sched self-detected stall on CPU", "INFO: rcu_preempt detected
/// expedited stalls on CPUs/tasks: {".
fn is_rcu_stall(line: &str) -> bool {
    line.split("INFO: rcu_").skip(1).any(|rest| {
        let flavour_end = rest.find(' ').unwrap_or(rest.len());
        let after = &rest[flavour_end..];
        after.starts_with(" detected stall")
            || after.starts_with(" self-detected stall")
            || after.starts_with(" detected expedited stall")
    })
}

fn is_splat(line: &str) -> bool {
    SPLATS.iter().any(|pattern| line.contains(pattern)) || is_rcu_stall(line)
}

/// Returns the lines of a kernel log that report a bug, a warning, a leak or a stall.
pub fn find_splats(log: &str) -> Vec<String> {
    log.lines()
        .map(strip_printk_time)
        .filter(|line| is_splat(line))
        .map(str::to_string)
        .collect()
}

/// What a guest's kernel log reports, once the leaks its suite declared known are set apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelReports {
    /// The lines that report a bug, a warning, a leak or a stall (see [`find_splats`]) and that no
    /// declaration explains, with tapsum's own line when a declaration is malformed or does not
    /// cover every leak: any of them fails the log's `dmesg-clean`.
    pub splats: Vec<String>,
    /// One line per declared known leak whose objects kmemleak reported, saying how many.
    pub known_leaks: Vec<String>,
}

/// How a suite declares a known leak (of C code, not rust44's), on a kernel log line of its own:
/// `rust44: known-leak: FRAME,FRAME,... REASON`, the frames being the function names (no
/// offsets) that start the leaked objects' kmemleak backtraces, allocator first.
const KNOWN_LEAK: &str = "rust44: known-leak: ";

/// The kmemleak prefix of each line of its reports (the guest sets kmemleak to verbose, so every
/// scan prints the report of each new leak, see tests/lib/init.sh).
const KMEMLEAK: &str = "kmemleak: ";

/// A declared known leak: the backtrace it is known by, why it is allowed.
#[derive(Debug)]
struct KnownLeak {
    frames: Vec<String>,
    reason: String,
    /// The objects accepted as this leak.
    objects: usize,
}

/// Parses a `rust44: known-leak:` declaration. A declaration must name at least 3 frames, and
/// only C functions built into the kernel: no Rust symbol (`_R...`) and no Rust helper
/// (`rust_helper_...`), since rust44's own allocations go through those.
fn parse_known_leak(text: &str) -> Result<KnownLeak, String> {
    let (frames, reason) = text.split_once(' ').unwrap_or((text, ""));
    let frames: Vec<String> = frames.split(',').map(str::to_string).collect();
    if reason.trim().is_empty() {
        return Err("no reason given".to_string());
    }
    if frames.len() < 3 {
        return Err("fewer than 3 frames".to_string());
    }
    for frame in &frames {
        let c_name = !frame.is_empty()
            && frame
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        if !c_name {
            return Err(format!("'{frame}' is no function name"));
        }
        if frame.starts_with("_R") || frame.starts_with("rust_helper_") {
            return Err(format!("'{frame}' is rust44's code"));
        }
    }
    Ok(KnownLeak {
        frames,
        reason: reason.trim().to_string(),
        objects: 0,
    })
}

/// One frame of a kmemleak backtrace: `    foo+0x12/0x40 [module]`.
#[derive(Debug)]
struct Frame {
    name: String,
    /// In a module (or a Rust function, wherever it is): the driver's side.
    driver: bool,
}

/// One object report of kmemleak in the kernel log, with the objects that share its backtrace
/// (`... and N more object(s) with the same backtrace`).
#[derive(Debug)]
struct LeakReport {
    /// Its `unreferenced object` line, in the log's lines.
    line: usize,
    objects: usize,
    backtrace: bool,
    frames: Vec<Frame>,
}

impl LeakReport {
    /// Whether `leak` explains this report: its backtrace starts with exactly the declared
    /// frames, all of them built-in C functions, and the next frame is the driver's (a module's
    /// or a Rust function): the objects were allocated by the kernel's C code, through that very
    /// call chain, on a driver's call. A leak allocated in rust44's code has a rust44 frame
    /// among or above the declared ones; one the kernel allocated further down another path
    /// has other frames.
    fn is(&self, leak: &KnownLeak) -> bool {
        let n = leak.frames.len();
        self.frames.len() > n
            && self.frames[..n]
                .iter()
                .zip(&leak.frames)
                .all(|(frame, name)| !frame.driver && frame.name == *name)
            && self.frames[n].driver
    }

    fn describe(&self) -> String {
        let frames: Vec<&str> = self.frames.iter().map(|f| f.name.as_str()).collect();
        format!("backtrace {}", frames.join(","))
    }
}

/// Reads kmemleak's verbose reports from a log's lines (timestamps stripped). Lines of other
/// sources may come between a report's lines; a report's lines all start with `kmemleak: `.
/// Returns the reports and the number of leaks the scans announced (`N new suspected memory
/// leaks`).
fn kmemleak_reports(lines: &[&str]) -> (Vec<LeakReport>, usize) {
    let mut reports: Vec<LeakReport> = Vec::new();
    let mut announced = 0;
    // Whether the frames of the last report are being read.
    let mut in_backtrace = false;
    for (i, line) in lines.iter().enumerate() {
        let Some(text) = line.strip_prefix(KMEMLEAK) else {
            continue;
        };
        if text.starts_with("unreferenced object") {
            reports.push(LeakReport {
                line: i,
                objects: 1,
                backtrace: false,
                frames: Vec::new(),
            });
            in_backtrace = false;
        } else if text.starts_with("  backtrace") {
            if let Some(report) = reports.last_mut() {
                report.backtrace = true;
                in_backtrace = true;
            }
        } else if let Some(frame) = text.strip_prefix("    ").filter(|_| in_backtrace) {
            let frame = frame.trim();
            let (symbol, module) = match frame.split_once(' ') {
                Some((symbol, module)) => (symbol, module.starts_with('[')),
                None => (frame, false),
            };
            let name = symbol.split('+').next().unwrap_or(symbol);
            if let Some(report) = reports.last_mut() {
                report.frames.push(Frame {
                    name: name.to_string(),
                    driver: module || name.starts_with("_R"),
                });
            }
        } else if let Some(more) = text
            .trim_start()
            .strip_prefix("... and ")
            .and_then(|rest| rest.strip_suffix(" more object(s) with the same backtrace"))
        {
            match (reports.last_mut(), more.parse::<usize>()) {
                (Some(report), Ok(more)) if in_backtrace => report.objects += more,
                // Not after a backtrace: objects whose backtrace is not known.
                _ => reports.push(LeakReport {
                    line: i,
                    objects: more.parse().unwrap_or(1),
                    backtrace: false,
                    frames: Vec::new(),
                }),
            }
            in_backtrace = false;
        } else {
            in_backtrace = false;
            if let Some((count, _)) = text.split_once(" new suspected memory leak") {
                // A count that does not read as one stands for at least one leak.
                announced += count.trim().parse::<usize>().unwrap_or(1).max(1);
            }
        }
    }
    (reports, announced)
}

/// Finds the reports of a kernel log ([`find_splats`]) and sets apart the kmemleak reports of
/// the leaks its suite declared known (`rust44: known-leak: FRAMES REASON` lines, see
/// [`LeakReport::is`]). They are set apart only all together, when every object kmemleak
/// reported is one of a declared leak and the reports account for every leak the scans counted;
/// otherwise every kmemleak line stays, with tapsum's line saying why. Only kmemleak's lines are
/// ever set apart: any other report in the same log stays, and a declaration in one log explains
/// nothing in another.
pub fn check_kernel_log(log: &str) -> KernelReports {
    let lines: Vec<&str> = log.lines().map(strip_printk_time).collect();
    let mut problems = Vec::new();
    let mut known: Vec<KnownLeak> = Vec::new();
    for line in &lines {
        if let Some(text) = line.strip_prefix(KNOWN_LEAK) {
            match parse_known_leak(text) {
                Ok(leak) => known.push(leak),
                Err(why) => problems.push(format!(
                    "tapsum: malformed known-leak declaration ({why}): {line}"
                )),
            }
        }
    }
    let mut leak_lines = vec![false; lines.len()];
    let mut accepted = false;
    if !known.is_empty() && problems.is_empty() {
        let (reports, announced) = kmemleak_reports(&lines);
        let mut reported = 0;
        for report in &reports {
            reported += report.objects;
            match known.iter_mut().find(|leak| report.is(leak)) {
                Some(leak) => leak.objects += report.objects,
                None if !report.backtrace => problems.push(format!(
                    "tapsum: a leak without its backtrace in the log: {}",
                    lines[report.line]
                )),
                None => problems.push(format!(
                    "tapsum: a leak that is none of the declared known ones: {} ({})",
                    lines[report.line],
                    report.describe()
                )),
            }
        }
        if reported != announced {
            problems.push(format!(
                "tapsum: kmemleak counted {announced} leaks but the log reports {reported} \
                 objects: not every leak can be checked against the known ones"
            ));
        }
        if problems.is_empty() {
            accepted = true;
            for report in &reports {
                leak_lines[report.line] = true;
            }
            for (i, line) in lines.iter().enumerate() {
                if line
                    .strip_prefix(KMEMLEAK)
                    .is_some_and(|text| text.contains(" new suspected memory leak"))
                {
                    leak_lines[i] = true;
                }
            }
        }
    }
    let mut splats: Vec<String> = lines
        .iter()
        .zip(&leak_lines)
        .filter(|(line, known)| !**known && is_splat(line))
        .map(|(line, _)| line.to_string())
        .collect();
    splats.extend(problems);
    let known_leaks = known
        .iter()
        .filter(|leak| accepted && leak.objects > 0)
        .map(|leak| {
            format!(
                "known leak: {} objects allocated by {}: {}",
                leak.objects,
                leak.frames.join(" <- "),
                leak.reason
            )
        })
        .collect();
    KernelReports {
        splats,
        known_leaks,
    }
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
mod tests;
