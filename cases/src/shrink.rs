//! Shrinking: the smaller programs worth trying in place of one that shows a difference.
//!
//! Invariant: pure. [`candidates`] only proposes; whoever runs the candidates (the harness) decides which
//! one still shows the same difference. Every candidate passed [`crate::validate`], so it is as safe to
//! run as a hand-written case, and each comes with the map from the original's top-level step indexes
//! to its own, so "the same difference at the corresponding point" can be checked. Candidates are
//! ordered from the biggest cut to the smallest (dropping steps before shortening ranges before
//! simplifying values), so a greedy loop that takes the first one that reproduces makes fast progress,
//! as proptest's `ValueTree::simplify` and syzkaller's `prog/minimization.go` do.

use crate::{validate, Provenance, Scenario};
use simulator::program::{Advice, AdviceArg, Backing, FileKind, MapSpec, Program, Prot, Step, StepId};

/// One smaller program, and where each original top-level step went (`None`: dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub program: Program,
    /// `step_map[i]` is the new index of original top-level step `i`.
    pub step_map: Vec<Option<u32>>,
    /// What was cut, for a log line (`drop step 3`, `map 0: 4 -> 2 pages`).
    pub what: String,
}

/// The kind of a difference field, without its indexes: `vma[2].rss` -> `vma[].rss`,
/// `page[7].res` -> `page[].res`. Two differences "are the same" when their kinds are.
pub fn field_kind(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut in_index = false;
    for c in field.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

impl Candidate {
    /// Where a point of the original is in this candidate: the same point with its step renumbered, or
    /// `None` when its step was dropped. Child points keep their child index, so after "drop fork child
    /// step j" a child point past j names the next child point; the runner then simply finds no
    /// reproduction there, or the same kind of difference one child step on.
    pub fn point(&self, id: StepId) -> Option<StepId> {
        let step = (*self.step_map.get(id.step as usize)?)?;
        Some(StepId { step, child: id.child, grandchild: None })
    }
}

fn identity(n: usize) -> Vec<Option<u32>> {
    (0..n as u32).map(Some).collect()
}

fn scenario_of(p: &Program) -> Scenario {
    Scenario {
        id: "shrink-candidate".into(),
        description: String::new(),
        provenance: Provenance::File { path: "shrink-candidate".into() },
        program: p.clone(),
    }
}

/// Is this program valid (the rules every scenario passes)? The id check is not the program's business.
pub fn program_is_valid(p: &Program) -> bool {
    let mut s = scenario_of(p);
    s.id = "candidate".into();
    validate(&s).is_ok()
}

/// The first page past everything a program maps or touches (madvise may reach into the gaps; those
/// pages do not need arena).
fn pages_used(p: &Program) -> u32 {
    fn step_top(s: &Step) -> u32 {
        match s {
            Step::Madvise { .. } | Step::ForkLive | Step::ChildExit | Step::Ftruncate { .. } | Step::Fallocate { .. } | Step::Close { .. } | Step::Seal { .. } | Step::ProcessMadvise { .. }
            | Step::PkeyAlloc { .. } | Step::PkeyFree { .. } | Step::PkeySet { .. } => 0,
            Step::Write { page, .. } | Step::Read { page } | Step::TryWrite { page, .. } | Step::TryRead { page } => page + 1,
            Step::Mprotect { page, pages, .. }
            | Step::Munmap { page, pages }
            | Step::Mlock { page, pages, .. }
            | Step::Munlock { page, pages }
            | Step::Mseal { page, pages }
            | Step::PkeyMprotect { page, pages, .. } => page + pages,
            Step::Mmap { map } => map.page + map.pages,
            Step::Fork { child } => child.iter().map(step_top).max().unwrap_or(0),
            Step::InChild { step } => step_top(step),
            Step::Mremap { page, pages, new_pages, to, .. } => {
                let src = page + pages.max(new_pages);
                match to {
                    Some(t) => src.max(t + new_pages.max(&1)),
                    None => src,
                }
            }
        }
    }
    let maps = p.maps.iter().map(|m| m.page + m.pages).max().unwrap_or(0);
    p.steps.iter().map(step_top).max().unwrap_or(0).max(maps).max(1)
}

/// The program moved down by `k` pages (every map, step and madvise start), or `None` when something
/// sits below page `k` (madvise starts may go negative: they reach into the guard gap, as before).
fn shift_down(p: &Program, k: u32) -> Option<Program> {
    fn sub(v: u32, k: u32) -> Option<u32> {
        v.checked_sub(k)
    }
    fn map(m: &MapSpec, k: u32) -> Option<MapSpec> {
        Some(MapSpec { page: sub(m.page, k)?, ..m.clone() })
    }
    fn step(s: &Step, k: u32) -> Option<Step> {
        Some(match s {
            Step::Madvise { page, offset, len_pages, len_bytes, advice } => {
                Step::Madvise { page: page - k as i64, offset: *offset, len_pages: *len_pages, len_bytes: *len_bytes, advice: *advice }
            }
            Step::Write { page, fill } => Step::Write { page: sub(*page, k)?, fill: *fill },
            Step::Read { page } => Step::Read { page: sub(*page, k)? },
            Step::TryWrite { page, fill } => Step::TryWrite { page: sub(*page, k)?, fill: *fill },
            Step::TryRead { page } => Step::TryRead { page: sub(*page, k)? },
            Step::Mprotect { page, pages, prot } => Step::Mprotect { page: sub(*page, k)?, pages: *pages, prot: *prot },
            Step::Munmap { page, pages } => Step::Munmap { page: sub(*page, k)?, pages: *pages },
            Step::Mmap { map: m } => Step::Mmap { map: map(m, k)? },
            Step::Mlock { page, pages, onfault } => Step::Mlock { page: sub(*page, k)?, pages: *pages, onfault: *onfault },
            Step::Munlock { page, pages } => Step::Munlock { page: sub(*page, k)?, pages: *pages },
            Step::Mseal { page, pages } => Step::Mseal { page: sub(*page, k)?, pages: *pages },
            Step::PkeyMprotect { page, pages, prot, pkey } => {
                Step::PkeyMprotect { page: sub(*page, k)?, pages: *pages, prot: *prot, pkey: *pkey }
            }
            Step::PkeyAlloc { .. } | Step::PkeyFree { .. } | Step::PkeySet { .. } => s.clone(),
            Step::Fork { child } => Step::Fork { child: child.iter().map(|c| step(c, k)).collect::<Option<_>>()? },
            Step::InChild { step: inner } => Step::InChild { step: Box::new(step(inner, k)?) },
            Step::Mremap { page, pages, new_pages, to, dontunmap } => Step::Mremap {
                page: sub(*page, k)?,
                pages: *pages,
                new_pages: *new_pages,
                to: match to {
                    Some(t) => Some(sub(*t, k)?),
                    None => None,
                },
                dontunmap: *dontunmap,
            },
            Step::ForkLive | Step::ChildExit | Step::Ftruncate { .. } | Step::Fallocate { .. } | Step::Close { .. } | Step::Seal { .. } => s.clone(),
            Step::ProcessMadvise { target, iov, vlen, advice, flags } => Step::ProcessMadvise {
                target: *target,
                iov: iov.as_ref().map(|v| v.iter().map(|e| simulator::program::IovElem { page: e.page - k as i64, ..*e }).collect()),
                vlen: *vlen,
                advice: *advice,
                flags: *flags,
            },
        })
    }
    Some(Program {
        arena_pages: p.arena_pages.checked_sub(k)?.max(1),
        files: p.files.clone(),
        maps: p.maps.iter().map(|m| map(m, k)).collect::<Option<_>>()?,
        steps: p.steps.iter().map(|s| step(s, k)).collect::<Option<_>>()?,
        word_bits: p.word_bits,
    })
}

/// A simpler advice to try in place of `a`: NORMAL for everything (the advice that does nothing), and
/// DONTNEED for the other zapping advice (FREE, REMOVE, DONTNEED_LOCKED, PAGEOUT), which often shows
/// the same page-state difference with the best-known call.
fn simpler_advice(a: AdviceArg) -> Vec<AdviceArg> {
    let mut v = Vec::new();
    let named = a.advice();
    if matches!(named, Some(Advice::Free | Advice::Remove | Advice::DontneedLocked | Advice::Pageout | Advice::Cold)) {
        v.push(AdviceArg::Named(Advice::Dontneed));
    }
    if named != Some(Advice::Normal) {
        v.push(AdviceArg::Named(Advice::Normal));
    }
    v
}

/// Smaller page counts to try for a range of `n` pages: 1, half, n-1 (distinct, each below n).
fn fewer(n: u32) -> Vec<u32> {
    let mut v: Vec<u32> = [1, n / 2, n.saturating_sub(1)].into_iter().filter(|&k| k >= 1 && k < n).collect();
    v.dedup();
    v
}

/// Every simplification of one step, keeping its place.
fn simpler_steps(s: &Step) -> Vec<(Step, String)> {
    let mut out = Vec::new();
    match s {
        Step::Madvise { page, offset, len_pages, len_bytes, advice } => {
            for a in simpler_advice(*advice) {
                out.push((Step::Madvise { page: *page, offset: *offset, len_pages: *len_pages, len_bytes: *len_bytes, advice: a }, format!("advice -> {}", a.label())));
            }
            if *len_pages > 1 {
                for k in fewer(*len_pages as u32) {
                    out.push((Step::Madvise { page: *page, offset: *offset, len_pages: k as i64, len_bytes: *len_bytes, advice: *advice }, format!("len {len_pages} -> {k} pages")));
                    // The same length, ending where it ended: the difference may be at the end.
                    let start = *page + (*len_pages - k as i64);
                    out.push((Step::Madvise { page: start, offset: *offset, len_pages: k as i64, len_bytes: *len_bytes, advice: *advice }, format!("range -> [{start}, +{k})")));
                }
            }
            if *offset != 0 || *len_bytes != 0 {
                out.push((Step::Madvise { page: *page, offset: 0, len_pages: *len_pages, len_bytes: 0, advice: *advice }, "whole pages".into()));
            }
        }
        Step::Write { page, fill } if *fill != 1 => out.push((Step::Write { page: *page, fill: 1 }, "fill -> 1".into())),
        Step::TryWrite { page, fill } if *fill != 1 => out.push((Step::TryWrite { page: *page, fill: 1 }, "fill -> 1".into())),
        Step::Mprotect { page, pages, prot } => {
            for k in fewer(*pages) {
                out.push((Step::Mprotect { page: *page, pages: k, prot: *prot }, format!("mprotect {pages} -> {k} pages")));
            }
        }
        Step::Munmap { page, pages } => {
            for k in fewer(*pages) {
                out.push((Step::Munmap { page: *page, pages: k }, format!("munmap {pages} -> {k} pages")));
            }
        }
        Step::Mlock { page, pages, onfault } => {
            for k in fewer(*pages) {
                out.push((Step::Mlock { page: *page, pages: k, onfault: *onfault }, format!("mlock {pages} -> {k} pages")));
            }
            if *onfault {
                out.push((Step::Mlock { page: *page, pages: *pages, onfault: false }, "mlock: no ONFAULT".into()));
            }
        }
        Step::Munlock { page, pages } => {
            for k in fewer(*pages) {
                out.push((Step::Munlock { page: *page, pages: k }, format!("munlock {pages} -> {k} pages")));
            }
        }
        Step::Mmap { map } => {
            for (m, what) in simpler_maps(map) {
                out.push((Step::Mmap { map: m }, format!("mmap step: {what}")));
            }
        }
        Step::Fork { child } => {
            for i in (0..child.len()).rev() {
                let mut c = child.clone();
                c.remove(i);
                out.push((Step::Fork { child: c }, format!("drop fork child step {i}")));
            }
            for (i, cs) in child.iter().enumerate() {
                for (simpler, what) in simpler_steps(cs) {
                    let mut c = child.clone();
                    c[i] = simpler;
                    out.push((Step::Fork { child: c }, format!("fork child step {i}: {what}")));
                }
            }
        }
        Step::InChild { step } => {
            for (simpler, what) in simpler_steps(step) {
                out.push((Step::InChild { step: Box::new(simpler) }, format!("in_child: {what}")));
            }
        }
        Step::Mremap { page, pages, new_pages, to, dontunmap } if *dontunmap => {
            out.push((Step::Mremap { page: *page, pages: *pages, new_pages: *new_pages, to: *to, dontunmap: false }, "mremap: no DONTUNMAP".into()));
        }
        _ => {}
    }
    out
}

/// Simpler forms of one mapping: fewer pages (from either end), no MAP_POPULATE / MAP_LOCKED, plain
/// `rw-`, private anonymous memory instead of anything else.
fn simpler_maps(m: &MapSpec) -> Vec<(MapSpec, String)> {
    let mut out = Vec::new();
    for k in fewer(m.pages) {
        out.push((MapSpec { pages: k, ..m.clone() }, format!("{} -> {k} pages", m.pages)));
        let cut = m.pages - k;
        let backing = match m.backing {
            Backing::FilePrivate { file, offset } => Backing::FilePrivate { file, offset: offset + cut },
            Backing::FileShared { file, offset } => Backing::FileShared { file, offset: offset + cut },
            b => b,
        };
        out.push((MapSpec { page: m.page + cut, pages: k, backing, ..m.clone() }, format!("{} -> last {k} pages", m.pages)));
    }
    if m.populate {
        out.push((MapSpec { populate: false, ..m.clone() }, "no MAP_POPULATE".into()));
    }
    if m.locked {
        out.push((MapSpec { locked: false, ..m.clone() }, "no MAP_LOCKED".into()));
    }
    if m.prot != Prot::RW {
        out.push((MapSpec { prot: Prot::RW, ..m.clone() }, "prot -> rw-".into()));
    }
    if m.backing != Backing::AnonPrivate {
        out.push((MapSpec { backing: Backing::AnonPrivate, ..m.clone() }, "-> anon_private".into()));
    }
    out
}

/// Drop file `f`: maps and mmap steps of it go too, later file indexes move down by one.
fn drop_file(p: &Program, f: u32) -> Option<Program> {
    let renumber = |m: &MapSpec| -> Option<MapSpec> {
        let backing = match m.backing {
            Backing::FilePrivate { file, .. } | Backing::FileShared { file, .. } if file == f => return None,
            Backing::FilePrivate { file, offset } if file > f => Backing::FilePrivate { file: file - 1, offset },
            Backing::FileShared { file, offset } if file > f => Backing::FileShared { file: file - 1, offset },
            b => b,
        };
        Some(MapSpec { backing, ..m.clone() })
    };
    fn steps(list: &[Step], renumber: &dyn Fn(&MapSpec) -> Option<MapSpec>) -> Option<Vec<Step>> {
        list.iter()
            .map(|s| match s {
                Step::Mmap { map } => renumber(map).map(|map| Step::Mmap { map }),
                Step::Fork { child } => steps(child, renumber).map(|child| Step::Fork { child }),
                other => Some(other.clone()),
            })
            .collect()
    }
    let mut q = p.clone();
    q.files.remove(f as usize);
    q.maps = p.maps.iter().filter_map(renumber).collect();
    // A step that maps the dropped file makes the candidate pointless (it would change the steps'
    // numbering); that one is tried by dropping the step first.
    q.steps = steps(&p.steps, &renumber)?;
    Some(q)
}

/// Every candidate, biggest cuts first. `focus` is the top-level step the difference is at: steps after
/// it cannot matter to it (they run later), so "drop everything after it" is the first candidate.
pub fn candidates(p: &Program, focus: Option<u32>) -> Vec<Candidate> {
    let n = p.steps.len();
    let mut out: Vec<Candidate> = Vec::new();
    let mut push = |program: Program, step_map: Vec<Option<u32>>, what: String| {
        if program != *p && program_is_valid(&program) {
            out.push(Candidate { program, step_map, what });
        }
    };
    // 1. Everything after the focus step.
    if let Some(f) = focus {
        if (f as usize) + 1 < n {
            let mut q = p.clone();
            q.steps.truncate(f as usize + 1);
            let map = (0..n as u32).map(|i| (i <= f).then_some(i)).collect();
            push(q, map, format!("drop the steps after step {f}"));
        }
    }
    // 2. Halves and single steps (not the focus itself).
    let drop_range = |lo: usize, hi: usize| -> (Program, Vec<Option<u32>>) {
        let mut q = p.clone();
        q.steps.drain(lo..hi);
        let map = (0..n).map(|i| if i < lo { Some(i as u32) } else if i < hi { None } else { Some((i - (hi - lo)) as u32) }).collect();
        (q, map)
    };
    let mut chunk = n / 2;
    while chunk >= 2 {
        let mut lo = 0;
        while lo + chunk <= n {
            let hi = lo + chunk;
            if focus.is_none_or(|f| !(lo..hi).contains(&(f as usize))) {
                let (q, map) = drop_range(lo, hi);
                push(q, map, format!("drop steps {lo}..{hi}"));
            }
            lo += chunk;
        }
        chunk /= 2;
    }
    for i in (0..n).rev() {
        if focus == Some(i as u32) {
            continue;
        }
        let (q, map) = drop_range(i, i + 1);
        push(q, map, format!("drop step {i}"));
    }
    // 3. Maps and files.
    for i in (0..p.maps.len()).rev() {
        let mut q = p.clone();
        q.maps.remove(i);
        push(q, identity(n), format!("drop map {i}"));
    }
    for f in (0..p.files.len()).rev() {
        if let Some(q) = drop_file(p, f as u32) {
            push(q, identity(n), format!("drop file {f}"));
        }
    }
    // 4. A smaller arena: just what is used, then a window shifted down to start at the first used page.
    let used = pages_used(p);
    if used < p.arena_pages {
        let mut q = p.clone();
        q.arena_pages = used;
        push(q, identity(n), format!("arena {} -> {used} pages", p.arena_pages));
    }
    // The whole program moved down to where its first mapping starts.
    if let Some(low) = p.maps.iter().map(|m| m.page).min().filter(|&l| l > 0) {
        if let Some(q) = shift_down(p, low) {
            push(q, identity(n), format!("move everything down {low} pages"));
        }
    }
    // 5. Shorter mappings and files, simpler steps and maps.
    for (i, m) in p.maps.iter().enumerate() {
        for (sm, what) in simpler_maps(m) {
            let mut q = p.clone();
            q.maps[i] = sm;
            push(q, identity(n), format!("map {i}: {what}"));
        }
    }
    for (f, spec) in p.files.iter().enumerate() {
        if spec.kind == FileKind::Hugetlb {
            continue;
        }
        for k in fewer(spec.pages) {
            let mut q = p.clone();
            q.files[f].pages = k;
            push(q, identity(n), format!("file {f}: {} -> {k} pages", spec.pages));
        }
        if matches!(spec.kind, FileKind::Disk | FileKind::Tmpfs) {
            let mut q = p.clone();
            q.files[f].kind = FileKind::Memfd;
            push(q, identity(n), format!("file {f}: {:?} -> memfd", spec.kind).to_lowercase());
        }
        if spec.readonly {
            let mut q = p.clone();
            q.files[f].readonly = false;
            push(q, identity(n), format!("file {f}: readonly -> read-write"));
        }
    }
    for (i, s) in p.steps.iter().enumerate() {
        for (ss, what) in simpler_steps(s) {
            let mut q = p.clone();
            q.steps[i] = ss;
            // A fork whose child lost a step keeps its index, but its child points move: only the
            // parent's points are comparable (`Candidate::point` keeps the child index as it was).
            push(q, identity(n), format!("step {i}: {what}"));
        }
    }
    out
}

/// The size a shrink minimises, for reporting: steps (child steps included), maps, files, arena pages.
pub fn size(p: &Program) -> (usize, usize, usize, u32) {
    fn count(list: &[Step]) -> usize {
        list.iter().map(|s| 1 + if let Step::Fork { child } = s { count(child) } else { 0 }).sum()
    }
    (count(&p.steps), p.maps.len(), p.files.len(), p.arena_pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_kinds_drop_indexes() {
        assert_eq!(field_kind("vma[12].rss"), "vma[].rss");
        assert_eq!(field_kind("page[3].res"), "page[].res");
        assert_eq!(field_kind("ret"), "ret");
    }

    #[test]
    fn every_candidate_is_valid_and_smaller_or_simpler() {
        for index in 0..200 {
            let s = crate::generate(7, index);
            let focus = Some(s.program.steps.len().saturating_sub(1) as u32);
            for c in candidates(&s.program, focus) {
                assert!(program_is_valid(&c.program), "{}: {}", s.id, c.what);
                assert_ne!(c.program, s.program, "{}: {}", s.id, c.what);
                assert_eq!(c.step_map.len(), s.program.steps.len());
                // Every kept step is the same step or a simplification at its new place.
                let kept = c.step_map.iter().filter(|m| m.is_some()).count();
                assert_eq!(kept, c.program.steps.len(), "{}: {}", s.id, c.what);
                assert!(size(&c.program) <= size(&s.program), "{}: {}", s.id, c.what);
            }
        }
    }

    #[test]
    fn the_focus_step_is_never_dropped() {
        let s = crate::generate(1, 3);
        let f = (s.program.steps.len() / 2) as u32;
        for c in candidates(&s.program, Some(f)) {
            assert!(c.step_map[f as usize].is_some(), "{}", c.what);
        }
    }
}
