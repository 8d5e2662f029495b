// SPDX-License-Identifier: GPL-2.0
use crate::table::*;
use core::ffi::CStr;

#[test]
fn parses_a_good_table() {
    let args = ["128", "3", "/dev/vdb", "/dev/vdc", "253:4"];
    let t = Table::parse(&args).unwrap();
    assert_eq!(
        t,
        Table {
            chunk_sectors: 128,
            members: 3,
            nosync: false,
            missing: None,
            journal: None,
        }
    );
    assert_eq!(t.devices(&args), &args[2..]);
    let c: [&CStr; 5] = [c"8", c"16", c"a", c"b", c"c"];
    assert_eq!(Table::parse(&c), Err(TableError::DeviceCountMismatch));
    let c: [&CStr; 5] = [c"2048", c"3", c"a", c"b", c"c"];
    assert!(Table::parse(&c).is_ok());
    let b: [&[u8]; 5] = [b"8", b"3", b"a", b"b", b"c"];
    assert!(Table::parse(&b).is_ok());
}

#[test]
fn nosync_follows_the_devices() {
    let args = ["128", "3", "a", "b", "c", "nosync"];
    let t = Table::parse(&args).unwrap();
    assert!(t.nosync);
    assert_eq!(t.members, 3);
    assert_eq!(t.devices(&args), &args[2..5]);
    // A device may not be called `nosync` in its place, and the word comes once, last.
    assert_eq!(
        Table::parse(&["128", "3", "a", "nosync", "c"]).map(|t| t.nosync),
        Ok(false)
    );
    assert_eq!(
        Table::parse(&["128", "3", "a", "b", "nosync"])
            .map(|t| t.devices(&["128", "3", "a", "b", "nosync"]).len()),
        Ok(3)
    );
    for bad in [
        &["128", "3", "a", "b", "c", "nosync", "nosync"][..],
        &["128", "3", "a", "b", "c", "sync"],
        &["128", "3", "a", "b", "c", "NOSYNC"],
        &["128", "3", "a", "b", "nosync", "c"],
    ] {
        assert_eq!(
            Table::parse(bad),
            Err(TableError::DeviceCountMismatch),
            "{bad:?}"
        );
    }
}

#[test]
fn refuses_bad_tables() {
    let cases: &[(&[&str], TableError)] = &[
        (&[], TableError::TooFewArgs),
        (&["8"], TableError::TooFewArgs),
        (&["7", "3", "a", "b", "c"], TableError::ChunkSectors),
        (&["4", "3", "a", "b", "c"], TableError::ChunkSectors),
        (&["24", "3", "a", "b", "c"], TableError::ChunkSectors),
        (&["4096", "3", "a", "b", "c"], TableError::ChunkSectors),
        (&["0", "3", "a", "b", "c"], TableError::ChunkSectors),
        (&["+8", "3", "a", "b", "c"], TableError::ChunkSectors),
        (&["8 ", "3", "a", "b", "c"], TableError::ChunkSectors),
        (&["", "3", "a", "b", "c"], TableError::ChunkSectors),
        (
            &["99999999999", "3", "a", "b", "c"],
            TableError::ChunkSectors,
        ),
        (&["8", "2", "a", "b"], TableError::DeviceCount),
        (&["8", "17", "a", "b", "c"], TableError::DeviceCount),
        (&["8", "-3", "a", "b", "c"], TableError::DeviceCount),
        (&["8", "x", "a", "b", "c"], TableError::DeviceCount),
        (&["8", "3", "a", "b"], TableError::DeviceCountMismatch),
        (
            &["8", "3", "a", "b", "c", "d"],
            TableError::DeviceCountMismatch,
        ),
        (
            &["8", "4", "a", "b", "c", "b"],
            TableError::DuplicateDevice { slot: 3 },
        ),
        (
            &["8", "3", "a", "", "c"],
            TableError::EmptyDevice { slot: 1 },
        ),
    ];
    for (args, e) in cases {
        assert_eq!(Table::parse(args), Err(*e), "{args:?}");
        assert!(
            !e.message().to_bytes().is_empty()
                && !e.message().to_bytes().starts_with(b"rust44-raid5")
        );
    }
    assert_eq!(
        TableError::ChunkSectors.message(),
        c"chunk_sectors must be a power of two between 8 and 2048"
    );
}

#[test]
fn numbers() {
    assert_eq!(parse_u32(b"0"), Some(0));
    assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
    assert_eq!(parse_u32(b"4294967296"), None);
    assert_eq!(parse_u32(b"0x10"), None);
    assert_eq!(parse_u32(b"008"), Some(8));
}

#[test]
fn status_lines() {
    let h = [Health::InSync, Health::Failed, Health::Rebuilding];
    let mut s = String::new();
    write_health(&mut s, &h).unwrap();
    assert_eq!(s, "ADa");
    let mut s = String::new();
    write_info(&mut s, &h, 100, 6400, SyncAction::Recover, 0).unwrap();
    assert_eq!(s, "raid5_ls 3 ADa 100/6400 recover 0");
    let mut s = String::new();
    write_info(
        &mut s,
        &[Health::InSync; 4],
        6400,
        6400,
        SyncAction::Idle,
        2,
    )
    .unwrap();
    assert_eq!(s, "raid5_ls 4 AAAA 6400/6400 idle 2");
    let mut s = String::new();
    write_table_prefix(
        &mut s,
        &Table {
            chunk_sectors: 64,
            members: 4,
            nosync: false,
            missing: None,
            journal: None,
        },
    )
    .unwrap();
    assert_eq!(s, "64 4");
    let nosync = Table::parse(&["64", "3", "a", "b", "c", "nosync"]).unwrap();
    write_table_options(&mut s, &nosync, None).unwrap();
    assert_eq!(s, "64 4 nosync");
    let mut s = String::new();
    write_table_options(
        &mut s,
        &Table::parse(&["64", "3", "a", "b", "c"]).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(s, "");
    assert_eq!(SyncAction::Resync.as_str(), "resync");
    assert_eq!(SyncAction::Frozen.as_str(), "frozen");
}

#[test]
fn journal_and_missing_members() {
    use crate::journal::Mode;
    let args = [
        "128",
        "4",
        "a",
        "-",
        "c",
        "d",
        "nosync",
        "journal",
        "j",
        "writeback",
    ];
    let t = Table::parse(&args).unwrap();
    assert_eq!(t.missing, Some(1));
    assert_eq!(t.journal, Some((8, Mode::WriteBack)));
    assert!(t.nosync);
    assert_eq!(t.devices(&args), &args[2..6]);
    let args = ["128", "3", "a", "b", "c", "journal", "j", "writethrough"];
    let t = Table::parse(&args).unwrap();
    assert_eq!(
        (t.missing, t.journal),
        (None, Some((6, Mode::WriteThrough)))
    );
    let cases: &[(&[&str], TableError)] = &[
        (&["8", "3", "-", "b", "-"], TableError::TooManyMissing),
        (
            &["8", "3", "a", "b", "c", "journal"],
            TableError::BadJournal,
        ),
        (
            &["8", "3", "a", "b", "c", "journal", "j"],
            TableError::BadJournal,
        ),
        (
            &["8", "3", "a", "b", "c", "journal", "j", "wb"],
            TableError::BadJournal,
        ),
        (
            &["8", "3", "a", "b", "c", "journal", "-", "writeback"],
            TableError::BadJournal,
        ),
        (
            &["8", "3", "a", "b", "c", "journal", "", "writeback"],
            TableError::BadJournal,
        ),
        (
            &[
                "8",
                "3",
                "a",
                "b",
                "c",
                "journal",
                "j",
                "writeback",
                "nosync",
                "x",
            ],
            TableError::BadOption,
        ),
        (
            &[
                "8",
                "3",
                "a",
                "b",
                "c",
                "journal",
                "j",
                "writeback",
                "journal",
                "k",
                "writeback",
            ],
            TableError::BadOption,
        ),
        (
            &["8", "3", "a", "b", "c", "journal", "b", "writeback"],
            TableError::DuplicateDevice { slot: 1 },
        ),
    ];
    for (args, want) in cases {
        assert_eq!(Table::parse(args), Err(*want), "{args:?}");
    }
    // nosync may come after the journal too.
    let t = Table::parse(&[
        "8",
        "3",
        "a",
        "b",
        "c",
        "journal",
        "j",
        "writeback",
        "nosync",
    ])
    .unwrap();
    assert!(t.nosync && t.journal.is_some());
}

#[test]
fn table_options_show_the_current_mode() {
    use crate::journal::Mode;
    let t = Table::parse(&[
        "8",
        "3",
        "a",
        "b",
        "c",
        "nosync",
        "journal",
        "j",
        "writethrough",
    ])
    .unwrap();
    let mut s = String::new();
    write_table_options(&mut s, &t, Some((253, 7, Mode::WriteBack))).unwrap();
    assert_eq!(s, " nosync journal 253:7 writeback");
    let mut s = String::new();
    write_table_options(&mut s, &t, None).unwrap();
    assert_eq!(s, " nosync");
}
