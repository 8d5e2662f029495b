// SPDX-License-Identifier: GPL-2.0

//! Host tests of tapsum's rules, one or more per way a broken run could pass unnoticed.

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

fn totals(passed: usize, failed: usize, skipped: usize) -> Totals {
    Totals {
        passed,
        failed,
        skipped,
    }
}

fn failures(results: &[TestResult]) -> Vec<(&str, &str)> {
    results
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .map(|r| (r.name.as_str(), r.note.as_deref().unwrap_or("")))
        .collect()
}

// --- cargo test ---

/// What `cargo test --no-fail-fast` printed for tapsum with the canary's aborting test.
const CARGO_ABORT: &str = "\
   Compiling tapsum v0.1.0 (/work/main/tools/tapsum)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 1.18s
     Running unittests src/lib.rs (target/debug/deps/tapsum-b0f6fb9030b19f3b)

running 2 tests
test tests::one ... ok
test tests::two ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/injected_abort.rs (target/debug/deps/injected_abort-18ba39a08b5f6c21)

running 1 test
error: test failed, to rerun pass `--test injected_abort`

Caused by:
  process didn't exit successfully: `/work/main/target/debug/deps/injected_abort-18ba39a08b5f6c21` (signal: 6, SIGABRT: process abort signal)
   Doc-tests tapsum

running 1 test
test tools/tapsum/src/lib.rs - render_tap (line 3) ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

error: 1 target failed:
    `--test injected_abort`
# cargo-exit: 101
";

#[test]
fn cargo_results_are_read() {
    let text = "running 3 tests\ntest a::one ... ok\ntest a::two ... FAILED\n\
                test a::three ... ignored, slow\ntest result: FAILED. 1 passed\n";
    let results = parse_cargo_test("host", text);
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].name, "host/a::one");
    assert_eq!(Totals::of(&results), totals(1, 1, 1));
}

#[test]
fn an_aborted_test_binary_is_a_failure_and_the_others_still_count() {
    let results = parse_cargo_test("host/tapsum", CARGO_ABORT);
    assert_eq!(Totals::of(&results), totals(3, 1, 0));
    let failed = failures(&results);
    assert_eq!(failed[0].0, "host/tapsum/tests/injected_abort.rs");
    assert!(
        failed[0].1.contains("stopped after 0 of 1"),
        "{}",
        failed[0].1
    );
    assert!(failed[0].1.contains("SIGABRT"), "{}", failed[0].1);
    assert_eq!(
        results[3].name,
        "host/tapsum/tools/tapsum/src/lib.rs::render_tap (line 3)"
    );
}

#[test]
fn a_binary_cut_short_at_the_end_of_the_output_is_a_failure() {
    let text = "     Running unittests src/lib.rs (target/debug/deps/x-0123456789abcdef)\n\
                running 3 tests\ntest a ... ok\n";
    let results = parse_cargo_test("host", text);
    assert_eq!(Totals::of(&results), totals(1, 1, 0));
    assert_eq!(results[1].name, "host/src/lib.rs");
}

#[test]
fn a_summary_with_missing_results_is_a_failure() {
    let text = "running 3 tests\ntest a ... ok\ntest b ... ok\ntest result: ok. 3 passed\n";
    let results = parse_cargo_test("host", text);
    assert_eq!(Totals::of(&results), totals(2, 1, 0));
    assert_eq!(failures(&results)[0].1, "announced 3 tests but reported 2");
}

#[test]
fn a_binary_that_dies_after_its_summary_is_a_failure() {
    let text = "     Running tests/t.rs (target/debug/deps/t-0123456789abcdef)\n\
                running 1 test\ntest a ... ok\ntest result: ok. 1 passed\n\
                error: test failed\n  process didn't exit successfully: `t` (signal: 11, SIGSEGV)\n";
    let results = parse_cargo_test("host", text);
    assert_eq!(Totals::of(&results), totals(1, 1, 0));
    assert_eq!(failures(&results)[0].0, "host/tests/t.rs");
    // An ordinary failing binary also makes cargo say so: that is not counted twice.
    let text = "running 1 test\ntest a ... FAILED\ntest result: FAILED. 0 passed\n\
                  process didn't exit successfully: `t` (exit status: 101)\n";
    assert_eq!(Totals::of(&parse_cargo_test("host", text)), totals(0, 1, 0));
}

#[test]
fn a_crate_that_does_not_build_is_a_failure() {
    let text = "error[E0425]: cannot find value `x` in this scope\n# cargo-exit: 101\n";
    let results = parse_cargo_test("host/crate", text);
    assert_eq!(
        failures(&results),
        [(
            "host/crate/cargo-test",
            "no test binary ran (cargo exited 101)"
        )]
    );
}

#[test]
fn cargo_failing_with_every_test_passed_is_a_failure() {
    let text = "running 1 test\ntest a ... ok\ntest result: ok. 1 passed\n# cargo-exit: 101\n";
    let results = parse_cargo_test("host", text);
    assert_eq!(Totals::of(&results), totals(1, 1, 0));
    // The same run that cargo calls a success is one.
    let text = text.replace("101", "0");
    assert_eq!(
        Totals::of(&parse_cargo_test("host", &text)),
        totals(1, 0, 0)
    );
}

#[test]
fn test_output_that_looks_like_cargo_is_not_a_new_binary() {
    let text = "running 1 test\ntest a ... ok\nRunning tests/x.rs (target/debug/deps/x)\n\
                Doc-tests y\ntest result: ok. 1 passed\n";
    assert_eq!(Totals::of(&parse_cargo_test("host", text)), totals(1, 0, 0));
}

// --- TAP ---

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
    let text = format!("TAP version 13\n{nested}not ok 1 harness # exit=1\nok 2 other\n1..2\n");
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
    let text = "  1..2\n  ok 1 a\n  ok 2 b\nnot ok 1 prog # killed by signal 11\n1..1\n";
    let results = parse_tap("", text);
    assert_eq!(Totals::of(&results), totals(2, 1, 0));
    assert_eq!(results[2].name, "prog");
    assert_eq!(results[2].note.as_deref(), Some("killed by signal 11"));
}

#[test]
fn a_program_that_printed_nothing_counts_as_one() {
    let results = parse_tap("", "not ok 1 silent # exit=127\nok 2 quiet\n1..2\n");
    assert_eq!(Totals::of(&results), totals(1, 1, 0));
}

#[test]
fn skipped_parent_with_no_children_is_a_skip() {
    let results = parse_tap("", "1..1\nok 1 gpu # SKIP no virtio-gpu\n");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].outcome, Outcome::Skip);
}

#[test]
fn lines_that_only_look_like_results_are_ignored() {
    let results = parse_tap(
        "",
        "okay 1 x\nok x y\nnot ok\n# ok 1 z\n# 1..3\n1..3 tests\n",
    );
    assert!(results.is_empty());
}

#[test]
fn a_short_plan_fails_the_program_that_exited_0() {
    // The canary's case: a program planned 3 tests, printed 2 and exited 0.
    let text = "TAP version 13\n  1..3\n  ok 1 first\n  ok 2 second\nok 1 prog\n1..1\n";
    let results = parse_tap("g", text);
    assert_eq!(Totals::of(&results), totals(2, 1, 0));
    assert_eq!(failures(&results), [("g/prog", "plan 1..3 but 2 results")]);
    // A plan at the end (ktap.sh's) or at the start (kselftest's) counts the same.
    let text = "  ok 1 first\n  ok 2 second\n  1..3\nok 1 prog\n1..1\n";
    assert_eq!(Totals::of(&parse_tap("g", text)), totals(2, 1, 0));
    // More results than planned is as wrong.
    let text = "  1..1\n  ok 1 first\n  ok 2 second\nok 1 prog\n1..1\n";
    assert_eq!(Totals::of(&parse_tap("g", text)), totals(2, 1, 0));
}

#[test]
fn results_without_a_plan_fail() {
    let text = "  TAP version 13\n  ok 1 only\nok 1 prog\n1..1\n";
    let results = parse_tap("g", text);
    assert_eq!(
        failures(&results),
        [("g/prog", "no plan (1..N) for 1 results")]
    );
    // A program that printed its header and stopped.
    let text = "  TAP version 13\nok 1 prog\n1..1\n";
    assert_eq!(Totals::of(&parse_tap("g", text)), totals(0, 1, 0));
    // Program output that is no TAP at all needs no plan.
    let text = "  losetup: /dev/loop0 attached\nok 1 check\n1..1\n";
    assert_eq!(Totals::of(&parse_tap("g", text)), totals(1, 0, 0));
}

#[test]
fn the_top_level_plan_is_checked() {
    let results = parse_tap("lint", "TAP version 13\nok 1 a\nok 2 b\n1..3\n");
    assert_eq!(
        failures(&results),
        [("lint/plan", "plan 1..3 but 2 results")]
    );
    let results = parse_tap("lint", "ok 1 a\n");
    assert_eq!(
        failures(&results),
        [("lint/plan", "no plan (1..N) for 1 results")]
    );
}

#[test]
fn each_document_on_a_level_has_its_own_plan() {
    // One check that runs a kselftest program twice: two documents, two plans.
    let text = "  TAP version 13\n  1..1\n  ok 1 a\n  TAP version 13\n  1..2\n  ok 1 a\n  \
                ok 2 b\nok 1 twice\n1..1\n";
    assert_eq!(Totals::of(&parse_tap("", text)), totals(3, 0, 0));
    let text = "  TAP version 13\n  1..1\n  ok 1 a\n  TAP version 13\n  1..3\n  ok 1 a\n  \
                ok 2 b\nok 1 twice\n1..1\n";
    let results = parse_tap("", text);
    assert_eq!(failures(&results), [("twice", "plan 1..3 but 2 results")]);
}

#[test]
fn a_program_that_skips_everything_has_a_zero_plan() {
    let text = "  TAP version 13\n  1..0 # SKIP no NVMe\nok 1 prog # SKIP exit=4\n1..1\n";
    assert_eq!(Totals::of(&parse_tap("", text)), totals(0, 0, 1));
    // A skipped program may stop short of its plan (ksft_exit_skip() after some tests).
    let text = "  1..5\n  ok 1 a\n  ok 2 # SKIP no device\nok 1 prog # SKIP exit=4\n1..1\n";
    assert_eq!(Totals::of(&parse_tap("", text)), totals(1, 0, 1));
}

#[test]
fn a_crashed_program_short_of_its_plan_is_one_failure_with_both_reasons() {
    let text = "  1..3\n  ok 1 a\nnot ok 1 prog # exit=139\n1..1\n";
    let results = parse_tap("", text);
    assert_eq!(Totals::of(&results), totals(1, 1, 0));
    assert_eq!(
        failures(&results),
        [("prog", "exit=139; plan 1..3 but 1 results")]
    );
}

// --- guest suites ---

#[test]
fn a_suite_that_exits_before_any_tap_is_a_failure() {
    // The canary's early-exiting run.sh.
    let text = "injected: run.sh exits before its TAP\n# rust44-exit: 3\n";
    let results = parse_suite("default/harness", text);
    assert_eq!(
        failures(&results),
        [(
            "default/harness",
            "run.sh exited 3 with no failing result; no TAP result"
        )]
    );
}

#[test]
fn an_empty_suite_that_exits_0_is_a_failure() {
    let results = parse_suite("s", "TAP version 13\n# rust44-exit: 0\n");
    assert_eq!(
        failures(&results),
        [("s", "no TAP result; no plan (1..N) for 0 results")]
    );
}

#[test]
fn a_suite_that_stops_after_passing_results_is_a_failure() {
    let text = "TAP version 13\nok 1 a\nok 2 b\n# rust44-exit: 2\n";
    let results = parse_suite("s", text);
    assert_eq!(Totals::of(&results), totals(2, 1, 0));
    assert_eq!(
        failures(&results),
        [(
            "s",
            "run.sh exited 2 with no failing result; no plan (1..N) for 2 results"
        )]
    );
}

#[test]
fn a_guest_that_did_not_finish_is_one_failure() {
    let results = parse_suite("s", "TAP version 13\nok 1 a\n");
    assert_eq!(Totals::of(&results), totals(1, 1, 0));
    let note = failures(&results)[0].1;
    assert!(note.starts_with("the guest did not finish"), "{note}");
}

#[test]
fn a_complete_suite_counts_only_its_results() {
    let passing = "TAP version 13\nok 1 a\nok 2 b # SKIP why\n1..2\n# rust44-exit: 0\n";
    assert_eq!(Totals::of(&parse_suite("s", passing)), totals(1, 0, 1));
    // ktap_end's status 1 after a failing test is that test's failure, not another.
    let failing = "TAP version 13\nok 1 a\nnot ok 2 b # exit=1\n1..2\n# rust44-exit: 1\n";
    assert_eq!(Totals::of(&parse_suite("s", failing)), totals(1, 1, 0));
}

// --- KUnit ---

const KUNIT_LOG: &str = "\
[    0.500000] Run /init as init process
[    1.000000] KTAP version 1
[    1.000001] 1..3
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
[    1.000015]     KTAP version 1
[    1.000016]     # Subtest: rust_doctests_kernel
[    1.000017]     1..2
[    1.000018]     ok 1 rust_doctest_kernel_block_rs_0
[    1.000019]     ok 2 rust_doctest_kernel_block_rs_1
[    1.000020] ok 3 rust_doctests_kernel
";

#[test]
fn kunit_suites_are_taken_from_dmesg() {
    let results = parse_kunit_dmesg("kunit", "rust44", &[], KUNIT_LOG);
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0].name,
        "kunit/rust44_capability/raw_numbers_match_uapi"
    );
    assert_eq!(results[1].outcome, Outcome::Fail);
}

#[test]
fn expected_kunit_suites_are_counted_and_an_absent_one_fails() {
    let expected = [
        "rust_doctests_kernel".to_string(),
        "rust44_absent".to_string(),
    ];
    let results = parse_kunit_dmesg("kunit", "rust44", &expected, KUNIT_LOG);
    assert_eq!(Totals::of(&results), totals(3, 2, 0));
    assert_eq!(
        results[2].name,
        "kunit/rust_doctests_kernel/rust_doctest_kernel_block_rs_0"
    );
    assert_eq!(
        failures(&results)[1],
        ("kunit/rust44_absent", "expected KUnit suite did not report")
    );
}

#[test]
fn a_kunit_suite_that_stopped_before_its_result_is_absent() {
    // The kernel died in the second test: the suite never printed its result line.
    let log = "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: rust44_mm_shmem\n    \
               1..2\n    ok 1 first\n";
    let expected = ["rust44_mm_shmem".to_string()];
    let results = parse_kunit_dmesg("kunit", "rust44", &expected, log);
    assert_eq!(
        failures(&results),
        [(
            "kunit/rust44_mm_shmem",
            "expected KUnit suite did not report"
        )]
    );
}

#[test]
fn a_kunit_suite_short_of_its_plan_fails() {
    let log = "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: rust44_x\n    1..3\n    \
               ok 1 a\n    ok 2 b\nok 1 rust44_x\n";
    let results = parse_kunit_dmesg("kunit", "rust44", &[], log);
    assert_eq!(
        failures(&results),
        [("kunit/rust44_x", "plan 1..3 but 2 results")]
    );
}

#[test]
fn printk_time_is_stripped_only_when_it_is_one() {
    assert_eq!(strip_printk_time("[   12.5] hello"), "hello");
    assert_eq!(strip_printk_time("[x] hello"), "[x] hello");
    assert_eq!(strip_printk_time("plain"), "plain");
}

// --- kernel reports ---

#[test]
fn splats_are_found() {
    let log = "[ 1.0] ok\n[ 2.0] BUG: KASAN: slab-use-after-free in foo\n\
               [ 3.0] WARNING: CPU: 0 PID: 1 at x.c:1\n[ 4.0] kmemleak: 1 new suspected memory leaks\n\
               unreferenced object 0xffff888 (size 64):\n";
    let splats = find_splats(log);
    assert_eq!(splats.len(), 4);
    assert!(find_splats("[ 1.0] all fine\n").is_empty());
}

/// One line of each kind of report Linux 7.3 prints (from its source), as the log shows it.
const REPORTS: &[(&str, &str)] = &[
    ("KASAN", "BUG: KASAN: slab-use-after-free in rust_helper_foo+0x12/0x20"),
    ("KFENCE", "BUG: KFENCE: out-of-bounds read in foo+0x1/0x2"),
    ("lockdep", "WARNING: possible circular locking dependency detected"),
    ("lockdep", "WARNING: possible recursive locking detected"),
    ("lockdep", "WARNING: inconsistent lock state"),
    ("lockdep", "WARNING: suspicious RCU usage"),
    ("atomic sleep", "BUG: sleeping function called from invalid context at mm/slub.c:4211"),
    ("kmemleak", "kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)"),
    ("kmemleak", "unreferenced object 0xffff888004a3c000 (size 64):"),
    ("WARN", "WARNING: loop_dio/io.rs:120 at rust_helper_WARN+0x1/0x2, CPU#1: kworker/1:0/42"),
    ("WARN", "WARNING: at foo+0x1/0x2, CPU#0: swapper/0/1"),
    ("WARN", "------------[ cut here ]------------"),
    ("BUG", "kernel BUG at rust/helpers/bug.c:7!"),
    ("BUG", "BUG: kernel NULL pointer dereference, address: 0000000000000008"),
    ("BUG", "BUG: unable to handle page fault for address: ffffc90000a00000"),
    ("Oops", "Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP KASAN NOPTI"),
    ("Oops", "Oops: 0002 [#1] SMP NOPTI"),
    ("panic", "Kernel panic - not syncing: Fatal exception"),
    ("hung task", "INFO: task losetup:123 blocked for more than 120 seconds."),
    ("soft lockup", "watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [fio:200]"),
    ("hard lockup", "NMI watchdog: CPU1: Watchdog detected hard LOCKUP on cpu 1"),
    ("UBSAN", "UBSAN: array-index-out-of-bounds in drivers/block/loop.c:10:5"),
    ("Rust panic", "rust_kernel: panicked at rust/kernel/block/disk.rs:12:5:"),
    ("Rust panic", "loop_dio: panicked at loop_dio/io.rs:40:9:"),
    ("Rust panic", " rust_panic+0x1/0x2"),
    ("trace", "Call Trace:"),
    ("RCU stall", "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
    ("RCU stall", "rcu: INFO: rcu_sched self-detected stall on CPU"),
    ("RCU stall", "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"),
    ("RCU stall", "rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-... } 21 jiffies s: 101 root: 0x2/."),
    ("RCU stall", "INFO: rcu_tasks detected stalls on tasks:"),
];

#[test]
fn every_kind_of_kernel_report_is_a_splat() {
    for (kind, line) in REPORTS {
        let log = format!("[   12.345678] {line}\n");
        assert_eq!(
            find_splats(&log),
            [line.to_string()],
            "{kind} report not found"
        );
    }
}

#[test]
fn ordinary_kernel_messages_are_not_splats() {
    let log = "\
[    0.000000] rcu: Hierarchical RCU implementation.
[    0.000000] rcu: RCU calculated value of scheduler-enlistment delay is 25 jiffies.
[    0.100000] rcu: INFO: rcu_sched is not a stall
[    0.200000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar
[    0.300000] KernelAddressSanitizer initialized (generic)
[    0.400000] kmemleak: Kernel memory leak detector initialized (mem pool available: 15735)
[    1.000000] loop_dio: loaded
";
    assert_eq!(find_splats(log), Vec::<String>::new());
}

// --- known leaks ---

/// The four objects of C blk-mq's hctx leak as the blk_poll sweep's kmemleak scan reports them
/// on the debug kernel (kmemleak verbose, as tests/lib/init.sh sets it), then the suite's
/// declarations of their backtraces. The reports are those of the sweep's run of 2026-11-28
/// (read from /sys/kernel/debug/kmemleak then), in the verbose log's form that
/// BROKEN_BLK_POLL_DMESG, a real log, shows; the leak did not occur in later boots.
const BLK_POLL_DMESG: &str = include_str!("testdata/blk_poll-debug.dmesg");

/// The fixture's log with `line` (a whole line, or several) put before the line holding `at`.
fn insert_before(log: &str, at: &str, lines: &str) -> String {
    let i = log.find(at).expect("anchor in the fixture");
    let i = log[..i].rfind('\n').map_or(0, |n| n + 1);
    format!("{}{lines}{}", &log[..i], &log[i..])
}

/// The fixture without its declarations.
fn undeclared(log: &str) -> String {
    log.lines()
        .filter(|l| !l.contains("rust44: known-leak: "))
        .fold(String::new(), |s, l| s + l + "\n")
}

/// The kmemleak report of one object allocated by blk_poll itself: the first of the leaks a
/// deliberately broken blk_poll (its error path forgets its queues) showed in the sweep.
const OWN_LEAK: &str = "\
[ 1232.400001] kmemleak: unreferenced object 0xffff88807d6ab5c0 (size 32):
[ 1232.400002] kmemleak:   comm \"sh\", pid 924, jiffies 4294937630
[ 1232.400003] kmemleak:   hex dump (first 32 bytes):
[ 1232.400004] kmemleak:     00 00 00 00 00 0e 64 6f 00 00 00 00 00 00 09 00  ......do........
[ 1232.400005] kmemleak:     00 00 00 36 52 00 00 04 04 01 00 08 00 00 00 00  ...6R...........
[ 1232.400006] kmemleak:   backtrace (crc 36668134):
[ 1232.400007] kmemleak:     __kmalloc_node_track_caller_noprof+0x2af/0x4b0
[ 1232.400008] kmemleak:     krealloc_node_align_noprof+0x165/0x2d0
[ 1232.400009] kmemleak:     _RNvMs0_NtNtCs1EKtwoKEMO2_6kernel5alloc4kvecINtB5_3VecINtNtCs1peUGmbrgHn_4core3pin3PinINtNtB7_4kbox3BoxNtNtCsd3vKXGKVcbS_8blk_poll5queue7HwQueueNtNtB7_9allocator7KmallocEEB2h_E7reserveB1G_+0x10a/0x1b0 [blk_poll]
[ 1232.400010] kmemleak:     _RNvXs4_NtCsd3vKXGKVcbS_8blk_poll8configfsNtB5_12DeviceConfigNtNtCs1EKtwoKEMO2_6kernel8configfs19AttributeOperations5store+0x27a/0x2170 [blk_poll]
[ 1232.400011] kmemleak:     _RNvMs9_NtCs1EKtwoKEMO2_6kernel8configfsINtB5_9AttributeKy0_NtNtCsd3vKXGKVcbS_8blk_poll8configfs12DeviceConfigBV_E5storeBZ_+0x9a/0x120 [blk_poll]
[ 1232.400012] kmemleak:     configfs_write_iter+0x2e8/0x3d0
[ 1232.400013] kmemleak:     vfs_write+0x5c8/0x9f0
[ 1232.400014] kmemleak:     ksys_write+0xa7/0x140
[ 1232.400015] kmemleak:     do_syscall_64+0x8e/0x2b0
[ 1232.400016] kmemleak:     entry_SYSCALL_64_after_hwframe+0x4b/0x53
";

fn kmemleak_lines(log: &str) -> usize {
    find_splats(log).len()
}

#[test]
fn a_declared_known_leak_is_accepted() {
    let reports = check_kernel_log(BLK_POLL_DMESG);
    assert_eq!(reports.splats, Vec::<String>::new());
    // Each of the four declared backtraces, one object each.
    assert_eq!(reports.known_leaks.len(), 4, "{:?}", reports.known_leaks);
    assert!(reports
        .known_leaks
        .iter()
        .all(|l| l.starts_with("known leak: 1 objects allocated by __k")));
    // The log does hold kmemleak reports: 4 objects and the scan's count.
    assert_eq!(kmemleak_lines(BLK_POLL_DMESG), 5);
}

#[test]
fn the_same_leak_undeclared_fails() {
    let log = undeclared(BLK_POLL_DMESG);
    let reports = check_kernel_log(&log);
    assert_eq!(reports.splats, find_splats(&log));
    assert_eq!(reports.splats.len(), 5);
    assert!(reports.known_leaks.is_empty());
}

#[test]
fn a_leak_with_another_backtrace_in_the_same_log_fails() {
    let at = "kmemleak: 4 new suspected memory leaks";
    let log = insert_before(BLK_POLL_DMESG, at, OWN_LEAK)
        .replace(at, "kmemleak: 5 new suspected memory leaks");
    let reports = check_kernel_log(&log);
    // Every kmemleak line stays, the known leak's too, and tapsum says which object is not known.
    assert_eq!(reports.splats.len(), 6 + 1, "{:#?}", reports.splats);
    assert!(reports.splats.iter().any(|s| s.starts_with(
        "tapsum: a leak that is none of the declared known ones: \
         kmemleak: unreferenced object 0xffff88807d6ab5c0"
    ) && s.contains(
        "backtrace __kmalloc_node_track_caller_noprof,krealloc_node_align_noprof,_RNvMs0_"
    )));
    assert!(reports.known_leaks.is_empty());
}

/// The end of a real debug-kernel log (trimmed) of the sweep with a deliberately broken blk_poll
/// (its power-on error path forgets the queues made so far), after the suite had declared the C
/// hctx leak known: kmemleak found 27 objects of blk_poll's own, 9 per backtrace.
const BROKEN_BLK_POLL_DMESG: &str = include_str!("testdata/blk_poll-broken-debug.dmesg");

#[test]
fn a_real_leak_of_blk_poll_fails_despite_the_declarations() {
    let reports = check_kernel_log(BROKEN_BLK_POLL_DMESG);
    // The 3 reports and the count stay, and each report is said to be none of the known leaks.
    assert_eq!(reports.splats.len(), 4 + 3, "{:#?}", reports.splats);
    assert_eq!(
        reports.splats[3],
        "kmemleak: 27 new suspected memory leaks (see /sys/kernel/debug/kmemleak)"
    );
    for (splat, address) in reports.splats[4..].iter().zip([
        "0xffff88807e774640",
        "0xffff88807f5e3600",
        "0xffff88807e2b0800",
    ]) {
        assert!(
            splat.starts_with(&format!(
                "tapsum: a leak that is none of the declared known ones: \
                 kmemleak: unreferenced object {address}"
            )) && splat.contains(
                "backtrace __kmalloc_node_track_caller_noprof,krealloc_node_align_noprof,_R"
            ),
            "{splat}"
        );
    }
    // Its reports account for the 27 leaks counted ("... and 8 more" each): only the unknown
    // backtraces are wrong.
    assert!(!reports
        .splats
        .iter()
        .any(|s| s.contains("kmemleak counted")));
    assert!(reports.known_leaks.is_empty());
    assert_eq!(find_splats(BROKEN_BLK_POLL_DMESG).len(), 4);
}

#[test]
fn a_driver_frame_inside_a_declared_backtrace_fails() {
    // The same C chain, but the object was allocated by the driver's code (a Rust frame, in a
    // module, between the allocator and blk-mq): e.g. an init_hctx hook's allocation.
    let log = BLK_POLL_DMESG.replacen(
        "kmemleak:     blk_mq_alloc_and_init_hctx+0x4e8/0xb30\n",
        "kmemleak:     _RNvXs_NtCsd3vKXGKVcbS_8blk_poll5queue9init_hctx+0x10/0x80 [blk_poll]\n\
         [ 1232.350030] kmemleak:     blk_mq_alloc_and_init_hctx+0x4e8/0xb30\n",
        1,
    );
    assert_ne!(log, BLK_POLL_DMESG);
    let reports = check_kernel_log(&log);
    assert_eq!(reports.splats.len(), 5 + 1, "{:#?}", reports.splats);
    assert!(reports.known_leaks.is_empty());
    // So does one in a C module, and one from a Rust function built into the kernel.
    for frame in [
        "null_alloc_hctx+0x10/0x80 [null_blk]",
        "_RNvMNtNtCs1EKtwoKEMO2_6kernel5alloc9allocator7Kmalloc7realloc+0x10/0x80",
    ] {
        let log = BLK_POLL_DMESG.replacen(
            "kmemleak:     __kmalloc_node_noprof+0x2b4/0x4b0\n",
            &format!(
                "kmemleak:     __kmalloc_node_noprof+0x2b4/0x4b0\n[ 1.0] kmemleak:     {frame}\n"
            ),
            1,
        );
        assert_ne!(log, BLK_POLL_DMESG);
        assert_eq!(check_kernel_log(&log).splats.len(), 5 + 1, "{frame}");
    }
}

#[test]
fn a_declaration_must_name_the_whole_c_chain() {
    // A declaration that stops short of the driver's frame (here: one frame short) would
    // cover whatever else calls into that C code: it explains nothing.
    let short = "__kmalloc_cache_node_noprof,blk_mq_alloc_and_init_hctx,__blk_mq_realloc_hw_ctxs,blk_mq_init_allocated_queue ";
    let full = "__kmalloc_cache_node_noprof,blk_mq_alloc_and_init_hctx,__blk_mq_realloc_hw_ctxs,blk_mq_init_allocated_queue,__blk_mq_alloc_disk ";
    assert!(BLK_POLL_DMESG.contains(full));
    let log = BLK_POLL_DMESG.replace(full, short);
    let reports = check_kernel_log(&log);
    assert_eq!(reports.splats.len(), 5 + 1, "{:#?}", reports.splats);
    assert!(reports.splats[5].contains("unreferenced object 0xffff88807d096000"));
    // And one that goes past it, into the driver, is malformed (it names a Rust function).
    let long = format!(
        "{},_RNvXs4_NtCsd3vKXGKVcbS_8blk_poll8configfsNtB5_12DeviceConfigNtNtCs1EKtwoKEMO2_6kernel8configfs19AttributeOperations5store ",
        full.trim_end()
    );
    let reports = check_kernel_log(&BLK_POLL_DMESG.replace(full, &long));
    assert!(reports
        .splats
        .iter()
        .any(|s| s.starts_with("tapsum: malformed known-leak declaration ('_RNvXs4_")));
}

#[test]
fn every_counted_leak_must_be_reported() {
    // A scan counted more leaks than the log shows reports of (a report lost, or kmemleak not
    // verbose): those cannot be checked.
    let log = BLK_POLL_DMESG.replace(
        "kmemleak: 4 new suspected memory leaks",
        "kmemleak: 5 new suspected memory leaks",
    );
    let reports = check_kernel_log(&log);
    assert_eq!(reports.splats.len(), 5 + 1, "{:#?}", reports.splats);
    assert!(reports.splats[5].starts_with("tapsum: kmemleak counted 5 leaks but the log reports 4"));
    // A later scan's count with no report at all.
    let log = format!("{BLK_POLL_DMESG}[ 1300.0] kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n");
    assert_eq!(check_kernel_log(&log).splats.len(), 6 + 1);
    // Only the count, as a kernel without verbose kmemleak prints it.
    let log = format!(
        "{}[ 1240.0] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n",
        BLK_POLL_DMESG
            .lines()
            .filter(|l| !l.contains("kmemleak"))
            .fold(String::new(), |s, l| s + l + "\n")
    );
    assert_eq!(check_kernel_log(&log).splats.len(), 1 + 1);
}

#[test]
fn objects_sharing_a_backtrace_are_counted() {
    // kmemleak prints one report per backtrace and scan, and counts the others.
    let at = "kmemleak: unreferenced object 0xffff88807f0b9f40";
    let more = "[ 1232.350030] kmemleak:   ... and 2 more object(s) with the same backtrace\n";
    let log = insert_before(BLK_POLL_DMESG, at, more);
    assert_eq!(check_kernel_log(&log).splats.len(), 5 + 1);
    let log = log.replace(
        "kmemleak: 4 new suspected memory leaks",
        "kmemleak: 6 new suspected memory leaks",
    );
    let reports = check_kernel_log(&log);
    assert_eq!(reports.splats, Vec::<String>::new());
    assert!(reports.known_leaks[0].starts_with("known leak: 3 objects allocated by __kmalloc_cache_node_noprof <- blk_mq_alloc_and_init_hctx"));
}

#[test]
fn other_messages_between_a_reports_lines_do_not_matter() {
    let at = "kmemleak:     __blk_mq_realloc_hw_ctxs+0x2ef/0x6a0";
    let log = insert_before(
        BLK_POLL_DMESG,
        at,
        "[ 1232.350030] nvme nvme0: I/O tag 3 done\n",
    );
    assert_eq!(check_kernel_log(&log).splats, Vec::<String>::new());
}

#[test]
fn other_reports_in_the_same_log_still_fail() {
    let warning = "WARNING: CPU: 0 PID: 1 at blk_poll/queue.rs:80 _RNvXs_blk_poll+0x1/0x2";
    let log = insert_before(
        BLK_POLL_DMESG,
        "rust44: known-leak: ",
        &format!("[ 1235.0] {warning}\n"),
    );
    let reports = check_kernel_log(&log);
    assert_eq!(reports.splats, [warning]);
    // A kmemleak report copied into the log by other means is no report of kmemleak's.
    let log =
        format!("{BLK_POLL_DMESG}[ 1250.0] unreferenced object 0xffff88807d096000 (size 1024):\n");
    assert_eq!(
        check_kernel_log(&log).splats,
        ["unreferenced object 0xffff88807d096000 (size 1024):"]
    );
}

#[test]
fn a_declaration_explains_only_its_own_log() {
    let declarations: String = BLK_POLL_DMESG
        .lines()
        .filter(|l| l.contains("rust44: known-leak: "))
        .fold(String::new(), |s, l| s + l + "\n");
    assert_eq!(check_kernel_log(&declarations), KernelReports::default());
    assert_eq!(
        check_kernel_log(&undeclared(BLK_POLL_DMESG)).splats.len(),
        5
    );
}

#[test]
fn malformed_declarations_fail() {
    for (declaration, why) in [
        (
            "__kmalloc_noprof,kvasprintf,kobject_set_name_vargs",
            "no reason given",
        ),
        (
            "__kmalloc_noprof,kvasprintf some reason",
            "fewer than 3 frames",
        ),
        (
            "__kmalloc_noprof,,kobject_set_name_vargs some reason",
            "'' is no function name",
        ),
        (
            "__kmalloc_noprof,kvasprintf+0x73/0xc0,kobject_add some reason",
            "is no function name",
        ),
        (
            "__kmalloc_noprof,rust_helper_kmalloc,_RNvfoo some reason",
            "'rust_helper_kmalloc' is rust44's code",
        ),
        (
            "__kmalloc_noprof,krealloc,_RNvfoo some reason",
            "'_RNvfoo' is rust44's code",
        ),
    ] {
        let log = format!("{BLK_POLL_DMESG}[ 1.0] rust44: known-leak: {declaration}\n");
        let reports = check_kernel_log(&log);
        assert!(
            reports.splats.iter().any(|s| s
                .starts_with("tapsum: malformed known-leak declaration (")
                && s.contains(why)),
            "{declaration}: {:#?}",
            reports.splats
        );
        // And the leaks it came with are not explained by the other declarations either.
        assert_eq!(reports.splats.len(), 5 + 1, "{declaration}");
        assert!(reports.known_leaks.is_empty());
    }
}

// --- output ---

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
    // What tapsum prints is itself TAP that its own rules accept.
    assert_eq!(
        Totals::of(&parse_tap("", &render_tap(&results))),
        totals(1, 1, 1)
    );
}
