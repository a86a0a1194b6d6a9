//! The generator: deterministic, distinct, always valid, and shaped the way the brief says.

use cases::{generate, generate_many, load_str, validate, Provenance, Scenario};
use std::path::PathBuf;
use rstest::rstest;
use simulator::program::{Prot, Step};
use std::collections::HashSet;

fn json(s: &Scenario) -> String {
    serde_json::to_string(s).unwrap()
}

#[rstest]
#[case(0, 0)]
#[case(1, 7)]
#[case(u64::MAX, u64::MAX)]
#[case(42, 123_456)]
fn same_seed_and_index_give_identical_json(#[case] seed: u64, #[case] index: u64) {
    let a = generate(seed, index);
    assert_eq!(json(&a), json(&generate(seed, index)));
    assert_eq!(a.id, format!("gen-{seed}-{index}"));
    assert_eq!(a.provenance, Provenance::Generated { seed, index });
}

#[test]
fn different_seeds_give_different_programs() {
    assert_ne!(generate(1, 0).program, generate(2, 0).program);
}

#[test]
fn ten_thousand_are_distinct_without_any_redraw() {
    let batch = generate_many(1, 10_000);
    assert_eq!(batch.len(), 10_000);
    let programs: HashSet<String> = batch.iter().map(|s| serde_json::to_string(&s.program).unwrap()).collect();
    assert_eq!(programs.len(), 10_000);
    // No redraw happened, so every one replays from (seed, index) alone.
    for (i, s) in batch.iter().enumerate() {
        assert_eq!(s, &generate(1, i as u64), "index {i} was redrawn");
    }
}

#[rstest]
fn every_generated_scenario_validates(#[values(1, 2, 3)] seed: u64) {
    for index in 0..3000 {
        let s = generate(seed, index);
        if let Err(e) = validate(&s) {
            panic!("{e}\n{}", serde_json::to_string_pretty(&s).unwrap());
        }
    }
}

/// Serialize, then load the text back as a corpus file would be: the same program, id and description.
#[test]
fn json_round_trip_through_the_loader() {
    for index in 0..500 {
        let s = generate(7, index);
        let text = serde_json::to_string_pretty(&s).unwrap();
        let path = PathBuf::from(format!("corpus/{}.json", s.id));
        let back = load_str(&text, &path).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!((&back.id, &back.description, &back.program), (&s.id, &s.description, &s.program));
        assert_eq!(back.provenance, Provenance::File { path: path.display().to_string() });
    }
}

/// The serde form of a scenario (what the runner sends to workers) round-trips too.
#[test]
fn serde_round_trip() {
    for index in 0..500 {
        let s = generate(9, index);
        let back: Scenario = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}

/// The mix is roughly what was asked for; the bounds are loose so the test checks shape, not luck.
#[test]
fn the_mix_leans_to_the_edges_and_keeps_faults_rare() {
    let (mut madvise, mut aligned_in_arena, mut faults, mut forks, mut invalid) = (0, 0, 0, 0, 0);
    let n = 5000;
    let (mut hugetlb, mut thp) = (0, 0);
    for index in 0..n {
        let s = generate(3, index);
        let p = &s.program;
        if p.uses_hugetlb() {
            hugetlb += 1;
            continue;
        }
        if s.description.contains("(thp)") {
            thp += 1;
            continue;
        }
        assert!((8..=48).contains(&p.arena_pages));
        assert!((1..=4).contains(&p.maps.len()) && p.files.len() <= 2);
        // 1 to 8 drawn steps, of which one may be a live-fork sequence of up to 10 steps (an optional
        // write, fork_live, up to 5 interleaved steps, a child fault, child_exit and one step after it).
        assert!((1..=18).contains(&p.steps.len()), "{} steps", p.steps.len());
        for st in &p.steps {
            match st {
                Step::Madvise { page, offset, len_pages, len_bytes, advice } => {
                    madvise += 1;
                    if *offset == 0 && *len_bytes == 0 && *page >= 0 && *len_pages >= 1
                        && page.saturating_add(*len_pages) <= p.arena_pages as i64
                    {
                        aligned_in_arena += 1;
                    }
                    if advice.advice().is_none() {
                        invalid += 1;
                    }
                }
                Step::Fork { child } => {
                    forks += 1;
                    assert!(child.len() <= 3);
                }
                Step::Write { fill, .. } => assert_ne!(*fill, 0),
                _ => {}
            }
        }
        if ends_with_fault(&s) {
            faults += 1;
        }
    }
    let well = aligned_in_arena as f64 / madvise as f64;
    assert!((0.65..0.85).contains(&well), "well-formed share {well}");
    let inv = invalid as f64 / madvise as f64;
    assert!((0.02..0.09).contains(&inv), "invalid advice share {inv}");
    let f = faults as f64 / n as f64;
    assert!((0.01..0.04).contains(&f), "faulting share {f}");
    assert!(forks > 0);
    let h = hugetlb as f64 / n as f64;
    assert!((0.015..0.05).contains(&h), "hugetlb share {h}");
    let t = thp as f64 / n as f64;
    assert!((0.012..0.04).contains(&t), "thp share {t}");
}

/// THP scenarios: one private anonymous mapping around two 512-page PMD ranges of a 1,088-page arena,
/// never a fork or mremap (fork of a THP is not modelled).
#[test]
fn thp_scenarios_are_pmd_sized_and_never_fork_or_mremap() {
    let mut seen = 0;
    for index in 0..5000 {
        let s = generate(6, index);
        if !s.description.contains("(thp)") {
            continue;
        }
        seen += 1;
        let p = &s.program;
        assert_eq!(p.arena_pages, 1088);
        assert_eq!(p.maps.len(), 1);
        assert!(p.maps[0].pages >= 511);
        assert!(p.steps.iter().all(|st| !matches!(st, Step::Fork { .. } | Step::ForkLive | Step::Mremap { .. })));
        assert!(validate(&s).is_ok(), "{}", s.id);
    }
    assert!(seen > 50, "{seen} THP scenarios in 5000");
}

/// hugetlb scenarios: two 512-page huge slots, hugetlb mappings aligned to them, files of whole huge
/// pages, and never fork or mremap (hugetlb with mremap leaks huge pages on 6.18 hosts).
#[test]
fn hugetlb_scenarios_are_aligned_and_never_fork_or_mremap() {
    let mut seen = 0;
    for index in 0..5000 {
        let p = generate(5, index).program;
        if !p.uses_hugetlb() {
            continue;
        }
        seen += 1;
        assert_eq!(p.arena_pages, 1024);
        assert!(p.files.iter().all(|f| f.pages % 512 == 0));
        let maps = p.maps.iter().chain(p.steps.iter().filter_map(|s| if let Step::Mmap { map } = s { Some(map) } else { None }));
        for m in maps.filter(|m| p.is_hugetlb_map(m)) {
            assert!(m.page % 512 == 0 && m.pages % 512 == 0, "{m:?}");
            assert!(m.backing.file().is_none_or(|(_, off)| off % 512 == 0), "{m:?}");
        }
        assert!(p.steps.iter().all(|s| !matches!(s, Step::Fork { .. } | Step::Mremap { .. })));
    }
    assert!(seen > 50, "only {seen} hugetlb scenarios in 5000");
}

/// Whether the last step is an access to a page that, by a simple replay of the layout and the
/// mapping steps, is a hole or lacks the permission. Only the last step may fault.
fn ends_with_fault(s: &Scenario) -> bool {
    let p = &s.program;
    let mut prot: Vec<Option<Prot>> = vec![None; p.arena_pages as usize];
    for m in &p.maps {
        for q in m.page..m.page + m.pages {
            prot[q as usize] = Some(m.prot);
        }
    }
    let faults = |prot: &Vec<Option<Prot>>, st: &Step| match st {
        Step::Write { page, .. } => !prot[*page as usize].is_some_and(|x| x.write),
        Step::Read { page } => !prot[*page as usize].is_some_and(|x| x.read),
        _ => false,
    };
    for (i, st) in p.steps.iter().enumerate() {
        let last = i + 1 == p.steps.len();
        if faults(&prot, st) {
            assert!(last, "{}: step {i} faults but is not last", s.id);
            return true;
        }
        match st {
            Step::Mprotect { page, pages, prot: np } => {
                for q in *page..page + pages {
                    prot[q as usize] = Some(*np);
                }
            }
            Step::Munmap { page, pages } => {
                for q in *page..page + pages {
                    prot[q as usize] = None;
                }
            }
            Step::Mmap { map } => {
                for q in map.page..map.page + map.pages {
                    prot[q as usize] = Some(map.prot);
                }
            }
            // mremap, as the generator's picture follows it: a move of a uniformly mapped run carries its
            // protection to the destination (and leaves a hole unless DONTUNMAP); otherwise the pages
            // involved are forgotten (holes).
            Step::Mremap { page, pages, new_pages, to, dontunmap } => {
                let (page, pages, new_pages) = (*page as usize, *pages as usize, *new_pages as usize);
                let src = prot[page];
                let uniform = src.is_some() && prot[page..page + pages].iter().all(|&x| x == src);
                match to {
                    None if new_pages < pages && uniform => prot[page + new_pages..page + pages].fill(None),
                    None => {
                        let end = (page + pages.max(new_pages)).min(prot.len());
                        prot[page..end].fill(None);
                    }
                    Some(t) => {
                        let t = *t as usize;
                        if !*dontunmap {
                            prot[page..page + pages].fill(None);
                        }
                        prot[t..t + new_pages].fill(if uniform { src } else { None });
                    }
                }
            }
            Step::Fork { child } => {
                for c in child {
                    assert!(!faults(&prot, c), "{}: a child step faults", s.id);
                }
            }
            _ => {}
        }
    }
    false
}

/// Live-fork sequences are drawn often enough, and over what sharing changes: which kinds of memory the
/// child shares, WIPEONFORK/DONTFORK/guards/mlock before or during it, PAGEOUT/COLD/FREE while it lives,
/// and writes on both sides. Prints the counts (`--nocapture`) for the record.
#[rstest]
fn live_fork_sequences_cover_what_sharing_changes(#[values(1, 2, 3)] seed: u64) {
    use simulator::program::{Advice, Backing};
    let n = 10_000;
    let mut c: std::collections::BTreeMap<&str, usize> = Default::default();
    for index in 0..n {
        let s = generate(seed, index);
        let steps = &s.program.steps;
        let Some(fork_at) = steps.iter().position(|x| matches!(x, Step::ForkLive)) else { continue };
        *c.entry("scenarios with fork_live").or_default() += 1;
        let end = steps.iter().position(|x| matches!(x, Step::ChildExit)).unwrap_or(steps.len());
        if end == steps.len() {
            *c.entry("child alive at the end").or_default() += 1;
        }
        let mut kinds: HashSet<&str> = s
            .program
            .maps
            .iter()
            .map(|m| match (m.backing, m.backing.file().map(|(f, _)| s.program.files[f as usize].kind)) {
                (Backing::AnonPrivate, _) => "anon_private",
                (Backing::AnonShared, _) => "anon_shared",
                (Backing::FilePrivate { .. }, Some(simulator::program::FileKind::Disk)) => "file_private_disk",
                (Backing::FilePrivate { .. }, _) => "file_private_memfd",
                (Backing::FileShared { .. }, Some(simulator::program::FileKind::Disk)) => "file_shared_disk",
                (Backing::FileShared { .. }, _) => "file_shared_memfd",
                (Backing::HugetlbPrivate | Backing::HugetlbShared, _) => "hugetlb",
                (Backing::AnonDroppable, _) => "anon_droppable",
            })
            .collect();
        if s.program.maps.iter().any(|m| m.locked) {
            kinds.insert("locked layout");
        }
        for k in kinds {
            *c.entry(k).or_default() += 1;
        }
        let adv = |x: &Step| match x {
            Step::Madvise { advice, .. } => advice.advice(),
            _ => None,
        };
        let before: HashSet<Advice> = steps[..fork_at].iter().filter_map(adv).collect();
        for (a, name) in [(Advice::Wipeonfork, "WIPEONFORK before"), (Advice::Dontfork, "DONTFORK before"), (Advice::GuardInstall, "GUARD_INSTALL before")] {
            if before.contains(&a) {
                *c.entry(name).or_default() += 1;
            }
        }
        for x in &steps[fork_at + 1..end] {
            let (who, inner) = match x {
                Step::InChild { step } => ("child", &**step),
                other => ("parent", other),
            };
            let key = match (who, inner, adv(inner)) {
                ("child", Step::Write { .. }, _) => "child write",
                ("parent", Step::Write { .. }, _) => "parent write while alive",
                (_, Step::Mlock { .. }, _) => "mlock while alive",
                (_, _, Some(Advice::Pageout)) => "PAGEOUT while alive",
                (_, _, Some(Advice::Cold)) => "COLD while alive",
                (_, _, Some(Advice::Free)) => "FREE while alive",
                _ => continue,
            };
            *c.entry(key).or_default() += 1;
        }
    }
    eprintln!("live fork, seed {seed}, {n} scenarios: {c:#?}");
    let at_least = |k: &str, min: usize| {
        assert!(c.get(k).copied().unwrap_or(0) >= min, "{k}: {:?} < {min}", c.get(k));
    };
    at_least("scenarios with fork_live", 1000);
    for k in ["anon_private", "anon_shared", "file_private_disk", "file_private_memfd", "file_shared_disk", "file_shared_memfd"] {
        at_least(k, 50);
    }
    for k in ["locked layout", "WIPEONFORK before", "DONTFORK before", "GUARD_INSTALL before", "child write", "parent write while alive", "mlock while alive", "PAGEOUT while alive", "COLD while alive", "FREE while alive", "child alive at the end"] {
        at_least(k, 20);
    }
}

#[test]
fn generated_advice_is_every_named_advice_but_memory_failure_injection() {
    use simulator::program::Advice;
    let expected: Vec<Advice> =
        Advice::ALL.iter().copied().filter(|a| !cases::generate::NEVER_GENERATED.contains(a)).collect();
    assert_eq!(cases::GENERATED_ADVICE, expected.as_slice());
    assert!(!cases::GENERATED_ADVICE.contains(&Advice::Hwpoison) && !cases::GENERATED_ADVICE.contains(&Advice::SoftOffline));
}

/// `--destructive` adds fork, live-fork and mremap steps to hugetlb scenarios only, from its own
/// stream: every other scenario is byte-identical, and the destructive ones still validate.
#[test]
fn destructive_variant_changes_only_hugetlb_scenarios_and_validates() {
    use cases::generate_with;
    let (mut hugetlb, mut changed, mut forks, mut lives, mut mremaps) = (0, 0, 0, 0, 0);
    for index in 0..10_000 {
        let plain = generate(1, index);
        assert_eq!(json(&plain), json(&generate_with(1, index, false)), "index {index}");
        let d = generate_with(1, index, true);
        if !plain.program.uses_hugetlb() {
            assert_eq!(json(&plain), json(&d), "index {index}: not a hugetlb scenario");
            continue;
        }
        hugetlb += 1;
        if let Err(e) = validate(&d) {
            panic!("{e}\n{}", serde_json::to_string_pretty(&d).unwrap());
        }
        if d.program != plain.program {
            changed += 1;
        }
        forks += d.program.steps.iter().filter(|s| matches!(s, Step::Fork { .. })).count();
        lives += d.program.steps.iter().filter(|s| matches!(s, Step::ForkLive)).count();
        mremaps += d.program.steps.iter().filter(|s| matches!(s, Step::Mremap { .. })).count();
    }
    assert!(hugetlb > 200, "{hugetlb} hugetlb scenarios");
    assert!(changed * 10 > hugetlb * 7, "{changed} of {hugetlb} changed");
    assert!(forks > 50 && lives > 30 && mremaps > 80, "forks {forks}, live forks {lives}, mremaps {mremaps}");
}

/// The generator draws caught accesses (`try_write`, `try_read`, at top level, in fork children and in
/// the live child) and MAP_DROPPABLE memory (layout maps and mmap steps).
#[test]
fn generator_draws_caught_faults_and_droppable_memory() {
    use simulator::program::Backing;
    use std::collections::HashMap;
    let mut c: HashMap<&str, u32> = HashMap::new();
    fn walk<'a>(s: &'a Step, c: &mut HashMap<&'static str, u32>, place: &'static str) {
        match s {
            Step::TryWrite { .. } => *c.entry(if place == "top" { "try_write top" } else { "try_write child" }).or_default() += 1,
            Step::TryRead { .. } => *c.entry(if place == "top" { "try_read top" } else { "try_read child" }).or_default() += 1,
            Step::Mmap { map } if map.backing == Backing::AnonDroppable => *c.entry("droppable mmap").or_default() += 1,
            Step::Fork { child } => child.iter().for_each(|x| walk(x, c, "fork")),
            Step::InChild { step } => {
                if matches!(**step, Step::TryWrite { .. } | Step::TryRead { .. }) {
                    *c.entry("try in live child").or_default() += 1;
                }
                walk(step, c, "live")
            }
            _ => {}
        }
    }
    for index in 0..4000 {
        let s = generate(1, index);
        for st in &s.program.steps {
            walk(st, &mut c, "top");
        }
        if s.program.maps.iter().any(|m| m.backing == Backing::AnonDroppable) {
            *c.entry("droppable layout").or_default() += 1;
        }
    }
    for k in ["try_write top", "try_read top", "try_write child", "try_read child", "try in live child", "droppable mmap", "droppable layout"] {
        assert!(c.get(k).copied().unwrap_or(0) >= 5, "{k}: {c:?}");
    }
}

/// process_madvise: 10,000 scenarios of seed 1 draw every target and every vector shape, from their own
/// hash of (seed, index): a scenario without process_madvise steps is what the generator drew before.
#[test]
fn process_madvise_draws_every_target_and_shape() {
    use simulator::program::{PidfdTarget, UIO_MAXIOV};
    let all = generate_many(1, 10_000);
    let pm: Vec<&Step> = all.iter().flat_map(|s| s.program.steps.iter()).filter(|s| matches!(s, Step::ProcessMadvise { .. })).collect();
    let scenarios = all.iter().filter(|s| s.program.steps.iter().any(|s| matches!(s, Step::ProcessMadvise { .. }))).count();
    assert!((300..=900).contains(&scenarios), "{scenarios} scenarios with process_madvise");
    let mut seen = HashSet::new();
    for s in &pm {
        let Step::ProcessMadvise { target, iov, vlen, advice, flags } = s else { unreachable!() };
        seen.insert(target.name().to_string());
        let n = Step::pm_vlen(iov, *vlen);
        let elems = iov.as_deref().unwrap_or(&[]);
        let mut tag = |t: &str, on: bool| {
            if on {
                seen.insert(t.to_string());
            }
        };
        tag("null", iov.is_none() && n > 0);
        tag("null_vlen0", iov.is_none() && n == 0);
        tag("empty", iov.as_ref().is_some_and(|v| v.is_empty()));
        tag("over_uio_maxiov", n > UIO_MAXIOV);
        tag("vlen_short", iov.as_ref().is_some_and(|v| n < v.len() as u64 && n > 0));
        tag("flags", *flags != 0);
        tag("zero_length", elems.iter().any(|e| e.len_pages == 0 && e.len_bytes == 0));
        tag("unaligned", elems.iter().any(|e| e.offset % 4096 != 0));
        tag("sub_page", elems.iter().any(|e| e.len_pages == 0 && e.len_bytes > 0));
        tag("negative_length", elems.iter().any(|e| e.len_bytes < 0));
        tag("several", elems.len() > 1);
        tag("invalid_advice", advice.advice().is_none());
        tag("remote_advice", matches!(advice.label().as_str(), "COLD" | "PAGEOUT" | "WILLNEED" | "COLLAPSE"));
    }
    let want: Vec<String> = PidfdTarget::ALL
        .iter()
        .map(|t| t.name().to_string())
        .chain(
            [
                "null", "null_vlen0", "empty", "over_uio_maxiov", "vlen_short", "flags", "zero_length", "unaligned",
                "sub_page", "negative_length", "several", "invalid_advice", "remote_advice",
            ]
            .map(String::from),
        )
        .collect();
    let missing: Vec<&String> = want.iter().filter(|w| !seen.contains(*w)).collect();
    assert!(missing.is_empty(), "never drawn: {missing:?}");
}

/// Seal steps: 10,000 scenarios of seed 1 draw F_ADD_SEALS on sealable memfds (with the write seals, the
/// size seals and F_SEAL_SEAL) and on files that refuse it (no MFD_ALLOW_SEALING, tmpfs, disk), and the
/// model answers 0, EBUSY, EPERM and EINVAL among them.
#[test]
fn generator_draws_seal_steps_on_sealable_and_other_files() {
    use simulator::program::SealKind;
    use std::collections::HashMap;
    let model = simulator::kernel::KernelModel::from_facts(simulator::kernel::KernelFacts::profile("6.18").unwrap());
    let mut c: HashMap<String, u32> = HashMap::new();
    for index in 0..10_000 {
        let s = generate(1, index);
        let p = &s.program;
        let out = simulator::simulate(&model, &simulator::program::ARENA, p);
        for (n, st) in p.steps.iter().enumerate() {
            if let Step::Seal { file, seals } = st {
                let f = &p.files[*file as usize];
                *c.entry(format!("{:?} sealing={}", f.kind, f.sealing)).or_default() += 1;
                for k in seals {
                    *c.entry(format!("seal {}", k.name())).or_default() += 1;
                }
                let own = out.iter().find(|(id, _)| id.step == n as u32 && id.child.is_none());
                if let Some((_, simulator::Expect::Allowed(a))) = own {
                    *c.entry(format!("ret {}", a.ret.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("|"))).or_default() += 1;
                }
            }
        }
    }
    let want = [
        "Hugetlb sealing=true", "Hugetlb sealing=false",
        "Memfd sealing=true", "Memfd sealing=false", "Disk sealing=false", "Tmpfs sealing=false",
        "ret 0", "ret EBUSY", "ret EPERM", "ret EINVAL",
    ];
    for k in want.iter().map(|s| s.to_string()).chain(SealKind::ALL.iter().map(|k| format!("seal {}", k.name()))) {
        // A second memfd (the only kind of memfd without MFD_ALLOW_SEALING) is rare: 1 in 10,000.
        let least = if k == "Memfd sealing=false" { 1 } else { 3 };
        assert!(c.get(&k).copied().unwrap_or(0) >= least, "{k}: {c:?}");
    }
}

/// Every step of cases/FORMAT.md is drawn by 10,000 scenarios of seed 1 (the pkey steps from their own
/// hash of (seed, index), at top level, in fork children and in the live child; a fork in a fork child),
/// and every map kind.
#[test]
fn generator_draws_every_step_and_map_kind() {
    use simulator::program::Backing;
    use std::collections::HashMap;
    fn kind(b: &Backing) -> &'static str {
        match b {
            Backing::AnonPrivate => "anon_private",
            Backing::AnonShared => "anon_shared",
            Backing::AnonDroppable => "anon_droppable",
            Backing::FilePrivate { .. } => "file_private",
            Backing::FileShared { .. } => "file_shared",
            Backing::HugetlbPrivate => "hugetlb_private",
            Backing::HugetlbShared => "hugetlb_shared",
        }
    }
    fn walk(s: &Step, c: &mut HashMap<String, u32>, place: &str) {
        *c.entry(s.op().to_string()).or_default() += 1;
        if s.op().starts_with("pkey_") {
            *c.entry(format!("pkey in {place}")).or_default() += 1;
        }
        match s {
            Step::Fork { child } => {
                if place == "fork" {
                    *c.entry("grandchild fork".into()).or_default() += 1;
                }
                child.iter().for_each(|x| walk(x, c, if place == "top" { "fork" } else { "grandchild" }))
            }
            Step::InChild { step } => walk(step, c, "live"),
            Step::Mmap { map } => *c.entry(format!("map {}", kind(&map.backing))).or_default() += 1,
            _ => {}
        }
    }
    let mut c: HashMap<String, u32> = HashMap::new();
    let mut pkey_scenarios = 0;
    for s in generate_many(1, 10_000) {
        for st in &s.program.steps {
            walk(st, &mut c, "top");
        }
        for m in &s.program.maps {
            *c.entry(format!("map {}", kind(&m.backing))).or_default() += 1;
            if m.populate {
                *c.entry("populate".into()).or_default() += 1;
            }
            if m.locked {
                *c.entry("locked".into()).or_default() += 1;
            }
        }
        for f in &s.program.files {
            *c.entry(format!("file {:?}{}", f.kind, if f.readonly { " readonly" } else { "" })).or_default() += 1;
        }
        pkey_scenarios += usize::from(s.program.steps.iter().any(|st| st.op().starts_with("pkey_") || matches!(st, Step::Fork { child } if child.iter().any(|x| x.op().starts_with("pkey_")))));
    }
    let ops = [
        "madvise", "write", "read", "try_write", "try_read", "mprotect", "munmap", "mmap", "mlock", "munlock", "fork", "fork_live",
        "in_child", "child_exit", "mseal", "mremap", "ftruncate", "fallocate", "close", "process_madvise", "pkey_alloc", "pkey_free",
        "pkey_mprotect", "pkey_set", "pkey in top", "pkey in fork", "pkey in live", "populate", "locked", "map anon_private",
        "map anon_shared", "map anon_droppable", "map file_private", "map file_shared", "map hugetlb_private", "map hugetlb_shared",
        "file Disk", "file Memfd", "file Tmpfs", "file Hugetlb", "file Disk readonly", "file Memfd readonly", "file Tmpfs readonly",
        "grandchild fork",
    ];
    let missing: Vec<&str> = ops.iter().copied().filter(|k| c.get(*k).copied().unwrap_or(0) < 3).collect();
    assert!(missing.is_empty(), "never (or under 3 times) drawn: {missing:?}\n{c:?}");
    assert!((200..=700).contains(&pkey_scenarios), "{pkey_scenarios} scenarios with pkey steps");
}

/// MAP_NORESERVE: the generator puts `noreserve` on layout maps and mmap steps of every backing drawn
/// there, hugetlb included (from its own hash of (seed, index)), and leaves most maps without it.
#[test]
fn generator_draws_noreserve_maps() {
    use std::collections::HashMap;
    let mut c: HashMap<String, u32> = HashMap::new();
    let (mut with, mut without) = (0u32, 0u32);
    for index in 0..4000 {
        let s = generate(1, index);
        for m in &s.program.maps {
            if m.noreserve {
                with += 1;
                *c.entry(format!("layout {}", m.backing.short())).or_default() += 1;
            } else {
                without += 1;
            }
        }
        for st in &s.program.steps {
            if let Step::Mmap { map } = st {
                if map.noreserve {
                    *c.entry("mmap".into()).or_default() += 1;
                }
            }
        }
    }
    // hugetlb scenarios are rare (HUGETLB_PER_MILLE), so their maps get it a few times in 4000.
    for (k, min) in [("layout AP", 50), ("layout AS", 20), ("layout HP", 1), ("layout HS", 1), ("mmap", 10)] {
        assert!(c.get(k).copied().unwrap_or(0) >= min, "{k}: {c:?}");
    }
    assert!(with * 5 < without, "noreserve on {with} maps, without on {without}");
}
