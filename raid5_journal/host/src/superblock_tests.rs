// SPDX-License-Identifier: GPL-2.0
use crate::layout::{GeometryError, Layout};
use crate::rng::Rng;
use crate::superblock::*;

const UUID: [u8; 16] = *b"0123456789abcdef";

fn layout4() -> Layout {
    Layout::new(4, 64, 8, 6400).unwrap()
}

/// A consistent 4-member array's superblocks, all at `events`.
fn array(events: u64) -> Vec<Superblock> {
    let mut states = [MemberState::Absent; 16];
    states[..4].fill(MemberState::Active);
    (0..4)
        .map(|i| Superblock {
            uuid: UUID,
            layout: layout4(),
            member_index: i,
            events,
            clean: true,
            journal: false,
            resync_checkpoint: NONE,
            rebuild_checkpoint: NONE,
            states,
        })
        .collect()
}

fn run(sbs: &[Option<Superblock>]) -> Result<Decision, AssemblyError> {
    run_with(sbs, &[6408; 4], 4, 64, false)
}

fn run_with(
    sbs: &[Option<Superblock>],
    sizes: &[u64],
    members: u32,
    chunk: u32,
    allow_dirty_degraded: bool,
) -> Result<Decision, AssemblyError> {
    let probed: Vec<Result<Option<Superblock>, SuperblockError>> =
        sbs.iter().map(|s| Ok(*s)).collect();
    assemble(&AssemblyInput {
        members,
        chunk_sectors: chunk,
        data_offset: 8,
        superblocks: &probed,
        device_sectors: sizes,
        allow_dirty_degraded,
        missing: None,
        journal: false,
    })
}

fn assembled(d: Result<Decision, AssemblyError>) -> Assembled {
    match d {
        Ok(Decision::Assemble(a)) => a,
        other => panic!("not assembled: {other:?}"),
    }
}

fn some(v: Vec<Superblock>) -> Vec<Option<Superblock>> {
    v.into_iter().map(Some).collect()
}

#[test]
fn crc32c_is_the_standard_one() {
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(crc32c(b""), 0);
    // 32 bytes of zeroes (RFC 3720, B.4).
    assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
    assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
    // In pieces.
    assert_eq!(
        !crc32c_update(crc32c_update(!0, b"1234"), b"56789"),
        0xe306_9283
    );
}

fn random_superblock(rng: &mut Rng) -> Superblock {
    let layout = Layout::new(
        rng.range32(3, 16),
        8 << rng.range32(0, 8),
        8 * rng.range(1, 1000),
        rng.range(1, 1 << 20) * 2048,
    )
    .unwrap();
    let mut uuid = [0u8; 16];
    rng.fill(&mut uuid);
    let mut states = [MemberState::Absent; 16];
    let all = [
        MemberState::Active,
        MemberState::Failed,
        MemberState::Rebuilding,
        MemberState::Spare,
    ];
    for s in states.iter_mut().take(layout.members() as usize) {
        *s = all[rng.range(0, 3) as usize];
    }
    Superblock {
        uuid,
        layout,
        member_index: rng.range32(0, layout.members() - 1),
        events: rng.next(),
        clean: rng.bool(),
        journal: rng.bool(),
        resync_checkpoint: rng.next(),
        rebuild_checkpoint: rng.next(),
        states,
    }
}

#[test]
fn superblocks_round_trip() {
    let mut rng = Rng(1);
    let mut buf = [0u8; SIZE];
    for _ in 0..300 {
        let sb = random_superblock(&mut rng);
        rng.fill(&mut buf);
        sb.encode(&mut buf);
        assert_eq!(&buf[..8], b"r44raid5");
        assert_eq!(Superblock::decode(&buf), Ok(sb));
        assert_eq!(Superblock::probe(&buf), Ok(Some(sb)));
    }
}

#[test]
fn fields_sit_where_the_format_says() {
    let sb = array(7)[2];
    let mut buf = [0u8; SIZE];
    sb.encode(&mut buf);
    assert_eq!(&buf[8..12], &1u32.to_le_bytes());
    assert_eq!(&buf[12..16], &1u32.to_le_bytes());
    assert_eq!(&buf[16..32], &UUID);
    assert_eq!(&buf[32..36], &4u32.to_le_bytes());
    assert_eq!(&buf[36..40], &64u32.to_le_bytes());
    assert_eq!(&buf[40..48], &6400u64.to_le_bytes());
    assert_eq!(&buf[48..56], &8u64.to_le_bytes());
    assert_eq!(&buf[56..60], &2u32.to_le_bytes());
    assert_eq!(&buf[60..64], &2u32.to_le_bytes());
    assert_eq!(&buf[64..72], &7u64.to_le_bytes());
    assert_eq!(&buf[72..80], &u64::MAX.to_le_bytes());
    assert_eq!(&buf[88..93], &[1, 1, 1, 1, 0]);
    assert!(buf[104..4092].iter().all(|&b| b == 0));
    assert_eq!(&buf[4092..], &crc32c(&buf[..4092]).to_le_bytes());
}

#[test]
fn any_damaged_byte_is_caught() {
    let mut rng = Rng(2);
    for _ in 0..3 {
        let sb = random_superblock(&mut rng);
        let mut good = [0u8; SIZE];
        sb.encode(&mut good);
        for i in 0..SIZE {
            let mut bad = good;
            bad[i] ^= rng.range(1, 255) as u8;
            let got = Superblock::decode(&bad);
            assert!(got.is_err(), "byte {i}: {got:?}");
            if i >= 8 {
                assert_eq!(got, Err(SuperblockError::BadChecksum), "byte {i}");
            } else {
                assert_eq!(got, Err(SuperblockError::BadMagic));
                assert_eq!(Superblock::probe(&bad), Ok(None));
            }
        }
    }
}

/// Encodes `sb`, lets `f` change the bytes, and fixes the checksum.
fn tampered(sb: &Superblock, f: impl FnOnce(&mut [u8; SIZE])) -> [u8; SIZE] {
    let mut buf = [0u8; SIZE];
    sb.encode(&mut buf);
    f(&mut buf);
    let crc = crc32c(&buf[..SIZE - 4]);
    buf[SIZE - 4..].copy_from_slice(&crc.to_le_bytes());
    buf
}

#[test]
fn invalid_contents_with_a_good_checksum_are_refused() {
    let sb = array(1)[0];
    type Tamper = fn(&mut [u8; SIZE]);
    let cases: [(Tamper, SuperblockError); 11] = [
        (|b| b[8] = 2, SuperblockError::BadVersion),
        (|b| b[12] = 4, SuperblockError::BadVersion), // an unknown flag (bit 1 is the journal)
        (|b| b[32] = 2, SuperblockError::BadGeometry),
        (|b| b[32] = 17, SuperblockError::BadGeometry),
        (|b| b[36] = 65, SuperblockError::BadGeometry),
        (|b| b[40] = 1, SuperblockError::BadGeometry), // not whole chunks
        (|b| b[48] = 0, SuperblockError::BadGeometry), // data over the superblock
        (|b| b[56] = 0, SuperblockError::BadGeometry), // another layout
        (|b| b[60] = 4, SuperblockError::BadMemberIndex),
        (|b| b[88 + 4] = 1, SuperblockError::BadState), // state past the members
        (|b| b[88 + 1] = 9, SuperblockError::BadState),
    ];
    for (i, (f, e)) in cases.into_iter().enumerate() {
        assert_eq!(Superblock::decode(&tampered(&sb, f)), Err(e), "case {i}");
    }
    assert_eq!(
        Superblock::decode(&tampered(&sb, |b| b[88 + 3] = 0)),
        Err(SuperblockError::BadState),
        "member without a state"
    );
    assert_eq!(Superblock::probe(&[0; SIZE]), Ok(None));
    assert!(SuperblockError::BadChecksum
        .message()
        .to_str()
        .is_ok_and(|m| m.contains("checksum")));
}

#[test]
fn all_blank_creates() {
    let d = run_with(&[None, None, None], &[1000, 808, 5000], 3, 64, false).unwrap();
    // The smallest device: 800 data sectors = 12 chunks of 64 (768).
    assert_eq!(d, Decision::Create(Layout::new(3, 64, 8, 800).unwrap()));
    if let Decision::Create(l) = d {
        assert_eq!(l.member_data_sectors(), 768);
    }
    assert_eq!(
        run_with(&[None, None, None], &[1000, 60, 5000], 3, 64, false),
        Err(AssemblyError::Geometry(GeometryError::TooSmall))
    );
}

#[test]
fn consistent_array_assembles() {
    let a = assembled(run(&some(array(5))));
    assert_eq!(a.uuid, UUID);
    assert_eq!(a.layout, layout4());
    assert_eq!(a.events, 5);
    assert!(a.clean);
    assert_eq!(a.resync_from, NONE);
    assert_eq!(a.rebuild_from, NONE);
    assert_eq!(
        &a.roles[..5],
        &[
            Role::InSync,
            Role::InSync,
            Role::InSync,
            Role::InSync,
            Role::Absent
        ]
    );
    assert_eq!(a.degraded_member(), None);
    // What the kernel side writes back decodes, and assembles to the same state.
    let next: Vec<Option<Superblock>> = (0..4).map(|i| Some(a.superblock(i, 6, false))).collect();
    for sb in next.iter().flatten() {
        let mut buf = [0u8; SIZE];
        sb.encode(&mut buf);
        assert_eq!(Superblock::decode(&buf).as_ref(), Ok(sb));
    }
    let b = assembled(run(&next));
    assert_eq!((b.events, b.clean, b.resync_from), (6, false, 0));
}

#[test]
fn a_dirty_array_resyncs_from_the_start_and_a_clean_one_resumes() {
    let mut sbs = array(9);
    for s in sbs.iter_mut() {
        s.clean = false;
        s.resync_checkpoint = 640;
    }
    assert_eq!(assembled(run(&some(sbs.clone()))).resync_from, 0);
    for s in sbs.iter_mut() {
        s.clean = true;
    }
    assert_eq!(assembled(run(&some(sbs))).resync_from, 640);
}

#[test]
fn refusals() {
    // Listed in another order.
    let mut sbs = some(array(3));
    sbs.swap(1, 2);
    let e = run(&sbs).unwrap_err();
    assert_eq!(
        e,
        AssemblyError::IndexMismatch {
            slot: 1,
            recorded: 2
        }
    );
    assert_eq!(e.slot(), Some(1));
    // The same member twice.
    let mut sbs = some(array(3));
    sbs[3] = sbs[0];
    assert_eq!(
        run(&sbs),
        Err(AssemblyError::IndexMismatch {
            slot: 3,
            recorded: 0
        })
    );
    // A device of another array.
    let mut sbs = array(3);
    sbs[2].uuid[0] ^= 1;
    assert_eq!(
        run(&some(sbs)),
        Err(AssemblyError::ForeignDevice { slot: 2 })
    );
    // The table's geometry differs from the array's.
    assert_eq!(
        run_with(&some(array(3)), &[6408; 4], 4, 128, false),
        Err(AssemblyError::GeometryMismatch { slot: 0 })
    );
    let five: Vec<Option<Superblock>> = some(array(3)).into_iter().chain([None]).collect();
    assert_eq!(
        run_with(&five, &[6408; 5], 5, 64, false),
        Err(AssemblyError::GeometryMismatch { slot: 0 })
    );
    // One member records another geometry.
    let mut sbs = array(3);
    sbs[1].layout = Layout::new(4, 64, 8, 6336).unwrap();
    assert_eq!(
        run(&some(sbs)),
        Err(AssemblyError::GeometryMismatch { slot: 1 })
    );
    // Wrong number of devices.
    assert_eq!(
        run_with(&some(array(3))[..3], &[6408; 3], 4, 64, false),
        Err(AssemblyError::WrongDeviceCount)
    );
    assert_eq!(
        run_with(&some(array(3)), &[6408; 3], 4, 64, false),
        Err(AssemblyError::WrongDeviceCount)
    );
    // A device shrank.
    assert_eq!(
        run_with(&some(array(3)), &[6408, 6408, 6407, 6408], 4, 64, false),
        Err(AssemblyError::DeviceTooSmall { slot: 2 })
    );
    // A blank device where an active member belongs.
    let mut sbs = some(array(3));
    sbs[3] = None;
    assert_eq!(run(&sbs), Err(AssemblyError::UnexpectedBlank { slot: 3 }));
    // A damaged superblock.
    let probed = [
        Ok(None),
        Err(SuperblockError::BadChecksum),
        Ok(None),
        Ok(None),
    ];
    let e = assemble(&AssemblyInput {
        members: 4,
        chunk_sectors: 64,
        data_offset: 8,
        superblocks: &probed,
        device_sectors: &[6408; 4],
        allow_dirty_degraded: false,
        missing: None,
        journal: false,
    })
    .unwrap_err();
    assert_eq!(
        e,
        AssemblyError::BadSuperblock {
            slot: 1,
            error: SuperblockError::BadChecksum
        }
    );
    assert_eq!(e.message(), c"superblock checksum mismatch");
}

#[test]
fn stale_members_are_rebuilt_and_one_event_behind_is_current() {
    // One event behind: a crash between the superblock writes of one update.
    let mut sbs = array(10);
    sbs[1].events = 9;
    let a = assembled(run(&some(sbs.clone())));
    assert!(a.roles[..4].iter().all(|r| *r == Role::InSync));
    // Two behind: out of date, rebuilt from the start.
    sbs[1].events = 8;
    let a = assembled(run(&some(sbs.clone())));
    assert_eq!(a.roles[1], Role::Rebuild);
    assert_eq!(a.rebuild_from, 0);
    assert_eq!(a.degraded_member(), Some(1));
    // Two members out of date.
    sbs[3].events = 2;
    assert_eq!(run(&some(sbs)), Err(AssemblyError::TooManyFailed));
}

#[test]
fn failed_members_and_replacements() {
    // Member 2 failed (its own superblock is stale and still says active).
    let mut sbs = array(20);
    for s in sbs.iter_mut() {
        s.states[2] = MemberState::Failed;
    }
    sbs[2].events = 17;
    sbs[2].states[2] = MemberState::Active;
    let a = assembled(run(&some(sbs.clone())));
    assert_eq!(a.roles[2], Role::Failed);
    assert_eq!(a.degraded_member(), Some(2));
    assert_eq!(a.superblock(0, 21, true).states[2], MemberState::Failed);
    // A blank device in its place: the replacement, rebuilt from the start.
    let mut with_blank = some(sbs.clone());
    with_blank[2] = None;
    let a = assembled(run(&with_blank));
    assert_eq!((a.roles[2], a.rebuild_from), (Role::Rebuild, 0));
    let sb = a.superblock(2, 21, false);
    assert_eq!(
        (sb.states[2], sb.rebuild_checkpoint),
        (MemberState::Rebuilding, 0)
    );
    // ... but a blank device elsewhere too is a second missing member.
    with_blank[0] = None;
    assert_eq!(
        run(&with_blank),
        Err(AssemblyError::UnexpectedBlank { slot: 0 })
    );
    // A failed member and another one out of date.
    let mut two = sbs.clone();
    two[3].events = 5;
    assert_eq!(run(&some(two)), Err(AssemblyError::TooManyFailed));
    // A rebuild stopped cleanly resumes at its checkpoint.
    let mut rebuilding = array(30);
    for s in rebuilding.iter_mut() {
        s.states[1] = MemberState::Rebuilding;
        s.rebuild_checkpoint = 1280;
    }
    let a = assembled(run(&some(rebuilding.clone())));
    assert_eq!((a.roles[1], a.rebuild_from), (Role::Rebuild, 1280));
    // A dirty degraded array does not start, unless told (after a journal replay).
    for s in rebuilding.iter_mut() {
        s.clean = false;
    }
    assert_eq!(
        run(&some(rebuilding.clone())),
        Err(AssemblyError::DirtyDegraded)
    );
    let a = assembled(run_with(&some(rebuilding), &[6408; 4], 4, 64, true));
    assert_eq!(a.resync_from, 0);
    // A clean array stopped mid-resync is as untrusted past the checkpoint.
    let mut resyncing = sbs;
    for s in resyncing.iter_mut() {
        s.resync_checkpoint = 64;
    }
    assert_eq!(run(&some(resyncing)), Err(AssemblyError::DirtyDegraded));
}

#[test]
fn every_refusal_has_a_message() {
    let all = [
        AssemblyError::WrongDeviceCount,
        AssemblyError::BadSuperblock {
            slot: 0,
            error: SuperblockError::BadVersion,
        },
        AssemblyError::ForeignDevice { slot: 0 },
        AssemblyError::GeometryMismatch { slot: 0 },
        AssemblyError::IndexMismatch {
            slot: 0,
            recorded: 1,
        },
        AssemblyError::DeviceTooSmall { slot: 0 },
        AssemblyError::UnexpectedBlank { slot: 0 },
        AssemblyError::TooManyFailed,
        AssemblyError::DirtyDegraded,
        AssemblyError::Geometry(GeometryError::TooSmall),
    ];
    let mut seen = std::collections::HashSet::new();
    for e in all {
        assert!(
            !e.message().to_bytes().is_empty()
                && !e.message().to_bytes().starts_with(b"rust44-raid5"),
            "{e:?}"
        );
        assert!(seen.insert(e.message()), "{e:?}");
    }
}

fn run_journal(
    sbs: &[Option<Superblock>],
    missing: Option<u32>,
    journal: bool,
) -> Result<Decision, AssemblyError> {
    let probed: Vec<Result<Option<Superblock>, SuperblockError>> =
        sbs.iter().map(|s| Ok(*s)).collect();
    assemble(&AssemblyInput {
        members: 4,
        chunk_sectors: 64,
        data_offset: 8,
        superblocks: &probed,
        device_sectors: &[6408; 4],
        allow_dirty_degraded: false,
        missing,
        journal,
    })
}

#[test]
fn a_missing_member_runs_degraded_only_when_parity_holds() {
    // Clean: a member given as missing is failed, and the array runs.
    let sbs = some(array(9));
    let a = assembled(run_journal(&sbs, Some(2), false));
    assert_eq!(a.roles[2], Role::Failed);
    assert_eq!(a.degraded_member(), Some(2));
    // Whatever its slot holds is not looked at.
    let mut holes = sbs.clone();
    holes[2] = None;
    assert_eq!(
        run_journal(&holes, Some(2), false),
        run_journal(&sbs, Some(2), false)
    );
    // Not stopped cleanly, no journal: the write hole; md's dirty degraded refusal.
    let mut dirty = array(9);
    for sb in &mut dirty {
        sb.clean = false;
    }
    assert_eq!(
        run_journal(&some(dirty.clone()), Some(0), false),
        Err(AssemblyError::DirtyDegraded)
    );
    // Journalled and listed: its replay restores the rows, the resync checkpoint holds.
    for sb in &mut dirty {
        sb.journal = true;
        sb.resync_checkpoint = NONE;
    }
    let a = assembled(run_journal(&some(dirty.clone()), Some(0), true));
    assert_eq!(
        (a.resync_from, a.journal, a.roles[0]),
        (NONE, true, Role::Failed)
    );
    // Journalled, dirty, journal not listed: refused, degraded or not.
    assert_eq!(
        run_journal(&some(dirty.clone()), None, false),
        Err(AssemblyError::JournalNeeded)
    );
    assert_eq!(
        run_journal(&some(dirty.clone()), Some(1), false),
        Err(AssemblyError::JournalNeeded)
    );
    // Journalled and clean: it may run without its journal from now on.
    for sb in &mut dirty {
        sb.clean = true;
    }
    let a = assembled(run_journal(&some(dirty), None, false));
    assert!(!a.journal);
    // Two out of sync.
    let mut failed = array(9);
    for sb in &mut failed {
        sb.states[3] = MemberState::Failed;
    }
    assert_eq!(
        run_journal(&some(failed), Some(1), false),
        Err(AssemblyError::TooManyFailed)
    );
    // A new array needs every member.
    assert_eq!(
        run_journal(&[None, None, None, None], Some(1), true),
        Err(AssemblyError::MissingInNewArray)
    );
}

#[test]
fn dirty_journalled_array_keeps_its_resync_checkpoint() {
    let mut sbs = array(4);
    for sb in &mut sbs {
        sb.clean = false;
        sb.journal = true;
        sb.resync_checkpoint = 640;
    }
    assert_eq!(
        assembled(run_journal(&some(sbs.clone()), None, true)).resync_from,
        640
    );
    // Without the journal flag, a crash means a resync from the start.
    for sb in &mut sbs {
        sb.journal = false;
    }
    assert_eq!(
        assembled(run_journal(&some(sbs), None, true)).resync_from,
        0
    );
}
