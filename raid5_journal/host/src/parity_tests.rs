// SPDX-License-Identifier: GPL-2.0
use crate::layout::Layout;
use crate::parity::*;
use crate::rng::Rng;

fn set(members: &[u32]) -> MemberSet {
    members.iter().fold(MemberSet::EMPTY, |s, &m| s.with(m))
}

fn cov(full: &[u32], partial: &[u32]) -> Coverage {
    Coverage {
        full: set(full),
        partial: set(partial),
    }
}

#[test]
fn xor_and_lengths() {
    let mut a = [1u8, 2, 3];
    xor_into(&mut a, &[1, 2, 4]).unwrap();
    assert_eq!(a, [0, 0, 7]);
    assert_eq!(xor_into(&mut a, &[1]), Err(XorError::LengthMismatch));
    let mut p = [0xffu8; 2];
    xor_of(&mut p, &[&[1, 2], &[4, 8], &[16, 32]]).unwrap();
    assert_eq!(p, [21, 42]);
    assert_eq!(
        xor_of(&mut p, &[&[1, 2], &[4]]),
        Err(XorError::LengthMismatch)
    );
    xor_of(&mut p, &[]).unwrap();
    assert_eq!(p, [0, 0]);
}

#[test]
fn parity_rebuilds_any_single_lost_block() {
    let mut rng = Rng(3);
    for _ in 0..500 {
        let n = rng.range32(3, 16) as usize;
        let len = rng.range(1, 700) as usize;
        let mut blocks = vec![vec![0u8; len]; n];
        for b in blocks.iter_mut().take(n - 1) {
            rng.fill(b);
        }
        let mut parity = vec![0u8; len];
        {
            let data: Vec<&[u8]> = blocks[..n - 1].iter().map(|b| b.as_slice()).collect();
            xor_of(&mut parity, &data).unwrap();
        }
        blocks[n - 1] = parity;
        let lost = rng.range(0, n as u64 - 1) as usize;
        let survivors: Vec<&[u8]> = (0..n)
            .filter(|&i| i != lost)
            .map(|i| blocks[i].as_slice())
            .collect();
        let mut rebuilt = vec![0x5au8; len];
        reconstruct(&mut rebuilt, &survivors).unwrap();
        assert_eq!(rebuilt, blocks[lost]);
    }
}

#[test]
fn member_sets() {
    let s = set(&[0, 3, 15]);
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3, 15]);
    assert_eq!(s.len(), 3);
    assert!(s.contains(15) && !s.contains(16) && !s.contains(1));
    assert_eq!(s.with(16), s);
    assert_eq!(MemberSet::first(3), set(&[0, 1, 2]));
    assert_eq!(MemberSet::first(16).len(), 16);
    assert_eq!(MemberSet::first(40).len(), 16);
    assert_eq!(s.minus(set(&[3])), set(&[0, 15]));
    assert!(MemberSet::single(20).is_empty());
    assert_eq!(degraded_read_sources(4, 2), set(&[0, 1, 3]));
    assert_eq!(degraded_read_sources(4, 4), MemberSet::EMPTY);
}

#[test]
fn planner_hand_picked_cases() {
    let none = MemberSet::EMPTY;
    // 3 members, parity on 2, one data block overwritten: rcw reads the other data block (1),
    // rmw would read the old block and parity (2).
    let p = plan_write(3, 2, cov(&[0], &[]), none, true).unwrap();
    assert_eq!(
        (p.strategy, p.read, p.write, p.rebuild),
        (Strategy::ReconstructWrite, set(&[1]), set(&[0, 2]), None)
    );
    // 4 members: 2 reads either way: a tie, rcw as md's default rmw_level.
    let p = plan_write(4, 3, cov(&[0], &[]), none, true).unwrap();
    assert_eq!(
        (p.strategy, p.read),
        (Strategy::ReconstructWrite, set(&[1, 2]))
    );
    // 5 members: rmw reads 2, rcw 3.
    let p = plan_write(5, 0, cov(&[2], &[]), none, true).unwrap();
    assert_eq!(
        (p.strategy, p.read, p.write),
        (Strategy::ReadModifyWrite, set(&[0, 2]), set(&[0, 2]))
    );
    // A partial write of one block in 6 members: rmw (2 reads) against rcw (5).
    let p = plan_write(6, 1, cov(&[], &[4]), none, true).unwrap();
    assert_eq!(
        (p.strategy, p.read),
        (Strategy::ReadModifyWrite, set(&[1, 4]))
    );
    // ... but with untrusted parity (resync pending) only rcw.
    let p = plan_write(6, 1, cov(&[], &[4]), none, false).unwrap();
    assert_eq!(
        (p.strategy, p.read),
        (Strategy::ReconstructWrite, set(&[0, 2, 3, 4, 5]))
    );
    // Every data block overwritten: nothing to read.
    let p = plan_write(4, 1, cov(&[0, 2, 3], &[]), none, false).unwrap();
    assert_eq!(
        (p.strategy, p.read, p.write),
        (Strategy::FullStripe, none, set(&[0, 1, 2, 3]))
    );
    // Three of four data blocks overwritten, one in part: rcw reads 1 (the partial one).
    let p = plan_write(5, 4, cov(&[0, 1, 2], &[3]), none, true).unwrap();
    assert_eq!(
        (p.strategy, p.read),
        (Strategy::ReconstructWrite, set(&[3]))
    );
    assert_eq!(p.reads(), 1);
}

#[test]
fn planner_degraded_cases() {
    // Parity failed: the data alone.
    let p = plan_write(4, 3, cov(&[0], &[1]), set(&[3]), false).unwrap();
    assert_eq!(
        (p.strategy, p.read, p.write),
        (Strategy::DataOnly, MemberSet::EMPTY, set(&[0, 1]))
    );
    // An unwritten data block failed: rcw would read it, so rmw even where rcw is cheaper.
    let p = plan_write(3, 2, cov(&[0], &[]), set(&[1]), true).unwrap();
    assert_eq!(
        (p.strategy, p.read, p.write),
        (Strategy::ReadModifyWrite, set(&[0, 2]), set(&[0, 2]))
    );
    // ... impossible without trusted parity.
    assert_eq!(
        plan_write(3, 2, cov(&[0], &[]), set(&[1]), false),
        Err(PlanError::UntrustedParity)
    );
    // A fully overwritten data block failed: rmw would read it; rcw does not.
    let p = plan_write(6, 5, cov(&[0], &[]), set(&[0]), true).unwrap();
    assert_eq!(
        (p.strategy, p.read, p.write),
        (Strategy::ReconstructWrite, set(&[1, 2, 3, 4]), set(&[5]))
    );
    // ... and it does not need the parity, so untrusted parity is fine.
    assert!(plan_write(6, 5, cov(&[0], &[]), set(&[0]), false).is_ok());
    // A partly written data block failed: rebuild its old contents from all the others.
    let p = plan_write(5, 2, cov(&[], &[3]), set(&[3]), true).unwrap();
    assert_eq!(
        (p.strategy, p.read, p.rebuild, p.write),
        (
            Strategy::ReconstructWrite,
            set(&[0, 1, 2, 4]),
            Some(3),
            set(&[2])
        )
    );
    assert_eq!(
        plan_write(5, 2, cov(&[], &[3]), set(&[3]), false),
        Err(PlanError::UntrustedParity)
    );
    // Full stripe with a failed data block: nothing to read.
    let p = plan_write(3, 0, cov(&[1, 2], &[]), set(&[2]), false).unwrap();
    assert_eq!(
        (p.strategy, p.read, p.write),
        (Strategy::FullStripe, MemberSet::EMPTY, set(&[0, 1]))
    );
}

#[test]
fn planner_refusals() {
    let none = MemberSet::EMPTY;
    assert_eq!(
        plan_write(4, 0, cov(&[], &[]), none, true),
        Err(PlanError::NothingWritten)
    );
    assert_eq!(
        plan_write(4, 0, cov(&[0], &[]), none, true),
        Err(PlanError::BadCoverage)
    );
    assert_eq!(
        plan_write(4, 0, cov(&[1], &[1]), none, true),
        Err(PlanError::BadCoverage)
    );
    assert_eq!(
        plan_write(4, 0, cov(&[4], &[]), none, true),
        Err(PlanError::BadCoverage)
    );
    assert_eq!(
        plan_write(4, 4, cov(&[1], &[]), none, true),
        Err(PlanError::BadCoverage)
    );
    assert_eq!(
        plan_write(4, 0, cov(&[1], &[]), set(&[1, 2]), true),
        Err(PlanError::TooManyFailed)
    );
    assert_eq!(
        plan_write(4, 0, cov(&[1], &[]), set(&[5]), true),
        Err(PlanError::TooManyFailed)
    );
}

/// One member's block of a row, and what a write puts into it.
struct Row {
    n: usize,
    parity: usize,
    len: usize,
    /// The blocks on disk (parity consistent, or not when `trusted` is false).
    disk: Vec<Vec<u8>>,
    /// Per member: the written range of the block and its new bytes.
    writes: Vec<Option<(usize, usize, Vec<u8>)>>,
}

impl Row {
    fn random(rng: &mut Rng, trusted: bool) -> Self {
        let n = rng.range32(3, 16) as usize;
        let parity = rng.range(0, n as u64 - 1) as usize;
        let len = rng.range(1, 64) as usize;
        let mut disk = vec![vec![0u8; len]; n];
        for b in disk.iter_mut() {
            rng.fill(b);
        }
        if trusted {
            let mut p = vec![0u8; len];
            let data: Vec<&[u8]> = (0..n)
                .filter(|&i| i != parity)
                .map(|i| disk[i].as_slice())
                .collect();
            xor_of(&mut p, &data).unwrap();
            disk[parity] = p;
        }
        let mut writes = vec![None; n];
        loop {
            for (i, w) in writes.iter_mut().enumerate() {
                if i == parity || rng.range(0, 2) == 0 {
                    continue;
                }
                let (a, b) = if rng.bool() {
                    (0, len)
                } else {
                    let a = rng.range(0, len as u64 - 1) as usize;
                    (a, rng.range(a as u64 + 1, len as u64) as usize)
                };
                let mut bytes = vec![0u8; b - a];
                rng.fill(&mut bytes);
                *w = Some((a, b, bytes));
            }
            if writes.iter().any(Option::is_some) {
                break;
            }
        }
        Self {
            n,
            parity,
            len,
            disk,
            writes,
        }
    }

    fn coverage(&self) -> Coverage {
        let mut c = Coverage::default();
        for (i, w) in self.writes.iter().enumerate() {
            match w {
                Some((0, b, _)) if *b == self.len => c.full = c.full.with(i as u32),
                Some(_) => c.partial = c.partial.with(i as u32),
                None => {}
            }
        }
        c
    }

    fn merged(&self, i: usize, old: &[u8]) -> Vec<u8> {
        let mut b = old.to_vec();
        if let Some((lo, hi, bytes)) = &self.writes[i] {
            b[*lo..*hi].copy_from_slice(bytes);
        }
        b
    }

    /// Executes `plan` touching only what it allows: reads from `read`, writes to `write`; the
    /// failed member's block is garbage to the executor. Returns the disk afterwards.
    fn execute(&self, plan: &WritePlan, failed: Option<usize>) -> Vec<Vec<u8>> {
        let read: Vec<Option<Vec<u8>>> = (0..self.n)
            .map(|i| {
                assert!(
                    !(plan.read.contains(i as u32) && failed == Some(i)),
                    "plan reads the failed member"
                );
                plan.read.contains(i as u32).then(|| self.disk[i].clone())
            })
            .collect();
        let mut old: Vec<Option<Vec<u8>>> = read.clone();
        if let Some(f) = plan.rebuild {
            let others: Vec<&[u8]> = read.iter().flatten().map(|b| b.as_slice()).collect();
            assert_eq!(others.len(), self.n - 1, "rebuild needs all the others");
            let mut b = vec![0u8; self.len];
            reconstruct(&mut b, &others).unwrap();
            old[f as usize] = Some(b);
        }
        let mut new: Vec<Option<Vec<u8>>> = vec![None; self.n];
        let full = self.coverage().full;
        for i in (0..self.n).filter(|&i| i != self.parity) {
            if self.writes[i].is_none() {
                continue;
            }
            new[i] = if full.contains(i as u32) {
                Some(self.merged(i, &vec![0; self.len]))
            } else if plan.strategy == Strategy::DataOnly {
                // Only the written sectors go to the member; no parity needs the rest.
                Some(self.merged(i, &self.disk[i]))
            } else {
                Some(self.merged(i, old[i].as_ref().expect("partial write without old data")))
            };
        }
        let parity = match plan.strategy {
            Strategy::DataOnly => None,
            Strategy::FullStripe | Strategy::ReconstructWrite => {
                let mut p = vec![0u8; self.len];
                for i in (0..self.n).filter(|&i| i != self.parity) {
                    let b = new[i]
                        .as_ref()
                        .or(old[i].as_ref())
                        .expect("rcw without an unwritten block");
                    xor_into(&mut p, b).unwrap();
                }
                Some(p)
            }
            Strategy::ReadModifyWrite => {
                let mut p = old[self.parity].clone().expect("rmw without parity");
                for i in (0..self.n).filter(|&i| new[i].is_some()) {
                    xor_into(&mut p, old[i].as_ref().expect("rmw without old data")).unwrap();
                    xor_into(&mut p, new[i].as_ref().unwrap()).unwrap();
                }
                Some(p)
            }
        };
        new[self.parity] = parity;
        let mut disk = self.disk.clone();
        for i in 0..self.n {
            let should = plan.write.contains(i as u32);
            assert_eq!(should, new[i].is_some() && failed != Some(i), "member {i}");
            if should {
                disk[i] = new[i].clone().unwrap();
            }
        }
        disk
    }
}

#[test]
fn executing_any_plan_gives_the_parity_of_the_new_data() {
    let mut rng = Rng(0x5eed);
    let mut seen = [0u32; 4];
    for round in 0..20_000 {
        let trusted = round % 4 != 0;
        let row = Row::random(&mut rng, trusted);
        let failed = match rng.range(0, 3) {
            0 => Some(rng.range(0, row.n as u64 - 1) as usize),
            _ => None,
        };
        let failed_set = failed.map_or(MemberSet::EMPTY, |f| MemberSet::single(f as u32));
        let plan = match plan_write(
            row.n as u32,
            row.parity as u32,
            row.coverage(),
            failed_set,
            trusted,
        ) {
            Ok(p) => p,
            Err(e) => {
                // Only a failed member under untrusted parity may refuse.
                assert_eq!(e, PlanError::UntrustedParity);
                assert!(!trusted && failed.is_some() && failed != Some(row.parity));
                continue;
            }
        };
        seen[plan.strategy as usize] += 1;
        let disk = row.execute(&plan, failed);
        // What the array should now hold: old data merged with the write (the failed member's
        // old data is what parity said, when parity was trusted).
        let mut logical: Vec<Vec<u8>> = (0..row.n).map(|i| row.merged(i, &row.disk[i])).collect();
        if let (Some(f), true) = (failed, trusted) {
            if f != row.parity {
                let others: Vec<&[u8]> = (0..row.n)
                    .filter(|&i| i != f)
                    .map(|i| row.disk[i].as_slice())
                    .collect();
                let mut b = vec![0u8; row.len];
                reconstruct(&mut b, &others).unwrap();
                logical[f] = row.merged(f, &b);
            }
        }
        for i in (0..row.n).filter(|&i| i != row.parity && Some(i) != failed) {
            assert_eq!(disk[i], logical[i], "data member {i}");
        }
        match failed {
            Some(f) if f == row.parity => {}
            Some(f) => {
                // The failed member's new contents come back from the others.
                let others: Vec<&[u8]> = (0..row.n)
                    .filter(|&i| i != f)
                    .map(|i| disk[i].as_slice())
                    .collect();
                let mut b = vec![0u8; row.len];
                reconstruct(&mut b, &others).unwrap();
                if trusted || row.coverage().full.contains(f as u32) {
                    assert_eq!(b, logical[f], "{plan:?}");
                }
            }
            None => {
                let data: Vec<&[u8]> = (0..row.n)
                    .filter(|&i| i != row.parity)
                    .map(|i| disk[i].as_slice())
                    .collect();
                let mut p = vec![0u8; row.len];
                xor_of(&mut p, &data).unwrap();
                if trusted || plan.strategy != Strategy::ReadModifyWrite {
                    assert_eq!(disk[row.parity], p, "{plan:?}");
                }
                // With untrusted parity rmw is never chosen.
                assert!(trusted || plan.strategy != Strategy::ReadModifyWrite);
            }
        }
        // The cheaper of rmw and rcw, ties to rcw, when both were possible.
        if failed.is_none() && trusted {
            let c = row.coverage();
            let rmw = c.written().len() + 1;
            let rcw = (row.n as u32 - 1) - c.full.len();
            assert_eq!(plan.reads(), rmw.min(rcw));
            if rcw > 0 && rmw >= rcw {
                assert_eq!(plan.strategy, Strategy::ReconstructWrite);
            }
        }
    }
    assert!(seen.iter().all(|&s| s > 100), "{seen:?}");
}

#[test]
fn stripe_write_coverage() {
    // 4 members, 8-sector chunks: stripe 1 holds array sectors 24..48, parity on member 2;
    // data slots 0, 1, 2 on members 3, 0, 1.
    let l = Layout::new(4, 8, 8, 800).unwrap();
    let w = StripeWrite::new(&l, 1, 20, 14).unwrap(); // array 24..34 of this stripe
    assert_eq!(w.parity, 2);
    assert_eq!(w.ranges[3], ChunkRange { start: 0, end: 8 });
    assert_eq!(w.ranges[0], ChunkRange { start: 0, end: 2 });
    assert!(w.ranges[1].is_empty() && w.ranges[2].is_empty());
    assert_eq!(w.span(), ChunkRange { start: 0, end: 8 });
    assert_eq!(w.coverage(w.span()), cov(&[3], &[0]));
    assert_eq!(
        w.coverage(ChunkRange { start: 0, end: 2 }),
        cov(&[0, 3], &[])
    );
    assert_eq!(w.coverage(ChunkRange { start: 4, end: 8 }), cov(&[3], &[]));
    assert!(StripeWrite::new(&l, 0, 24, 10).is_none());
    assert!(StripeWrite::new(&l, 2, 20, 14).is_none());
    assert!(StripeWrite::new(&l, 100, 0, 1).is_none());
    // A whole stripe.
    let w = StripeWrite::new(&l, 5, 0, l.array_sectors()).unwrap();
    assert_eq!(w.coverage(w.span()).full.len(), 3);
    assert_eq!(w.span(), ChunkRange { start: 0, end: 8 });
}

#[test]
fn stripe_writes_cover_exactly_the_written_sectors() {
    let mut rng = Rng(11);
    for _ in 0..2000 {
        let l = rng.layout(20);
        let start = rng.range(0, l.array_sectors() - 1);
        let len = rng.range(
            1,
            (l.array_sectors() - start).min(3 * l.stripe_data_sectors()),
        );
        let mut total = 0u64;
        for stripe in 0..l.stripes() {
            let Some(w) = StripeWrite::new(&l, stripe, start, len) else {
                continue;
            };
            assert!(w.ranges[w.parity as usize].is_empty());
            for (m, r) in w.ranges.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
                total += u64::from(r.end - r.start);
                for off in [r.start, r.end - 1] {
                    let dev =
                        l.data_offset() + stripe * u64::from(l.chunk_sectors()) + u64::from(off);
                    let a = l.array_sector(m as u32, dev).unwrap();
                    assert!(a >= start && a < start + len);
                }
            }
        }
        assert_eq!(total, len);
    }
}
