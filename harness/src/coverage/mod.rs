//! Semantic coverage: which (advice, mapping kind, outcome) cells a run reached on the host kernel.
//!
//! Invariant: a cell is counted from what the kernel did (the host's return at that point) and from the
//! state the host showed just before the call (the previous observation point), never from the model.
//! A scenario is counted once per cell it reaches.

pub mod reach;

use serde::Serialize;
use simulator::observe::{Observation, Residency, VmaBacking};
use simulator::program::{Backing, FileKind, Program, Step, StepId};
use std::collections::BTreeMap;

/// One cell of the matrix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Cell {
    /// Advice name, or the raw number for a value no kernel names.
    pub advice: String,
    /// What the range starts on: `anon_private`, `anon_shared`, `file_private_disk`, …, or a state that
    /// dominates (`after_fork`, `sealed`, `guarded`, `locked`, `prot_none`, `read_only`), `hole`,
    /// `hole_then_mapped`, or a front-end outcome (`front_end`: refused before any VMA is looked at,
    /// `zero_length`).
    pub kind: String,
    /// `0`, an errno name, or a signal name.
    pub outcome: String,
}

/// Every mapping kind the classifier can name, in table order (the list lives in `reach::KINDS`).
pub fn kinds() -> Vec<&'static str> {
    reach::kind_names()
}

/// Whether the point `id` records the end of its process: a signal at a step other than a caught
/// access (`try_write`, `try_read`, whose signal the process survives).
fn is_death(prog: &Program, id: StepId, obs: &Observation) -> bool {
    let caught = |s: &Step| matches!(s, Step::TryWrite { .. } | Step::TryRead { .. });
    let survived = match prog.step(id) {
        Some(Step::InChild { step }) => caught(step),
        Some(s) => caught(s),
        None => false,
    };
    matches!(obs.ret, simulator::observe::Ret::Signal(_)) && !survived
}

/// The cells one scenario reached, from its program and the host's observation points.
pub fn hits(prog: &Program, points: &[(StepId, Observation)], page_size: u64) -> Vec<Cell> {
    let mut out = Vec::new();
    for (i, (id, obs)) in points.iter().enumerate() {
        if id.child == Some(0) {
            continue;
        }
        // A live child's madvise (`in_child`) counts as `after_fork`, like a fork child's.
        let (step, in_live_child) = match prog.step(*id) {
            Some(Step::InChild { step }) => (Some(&**step), true),
            s => (s, false),
        };
        if let Some(Step::ProcessMadvise { target, iov, vlen, advice, flags }) = step {
            let kind = reach::pm::pm_kind(iov, *vlen, advice.value(), *flags, page_size);
            out.push(Cell { advice: reach::pm::pm_row(*target), kind: kind.into(), outcome: reach::pm::pm_outcome(kind, obs.ret) });
            continue;
        }
        let Some(Step::Madvise { page, offset, len_pages, len_bytes, advice }) = step else { continue };
        // The state before the call is the last point taken in the same process: with a live child
        // the parent's and the child's points interleave.
        let in_child = |id: &StepId| id.child.is_some() || matches!(prog.step(*id), Some(Step::InChild { .. }));
        let mine = in_child(id);
        let before_point = points[..i].iter().rev().find(|(j, _)| in_child(j) == mine);
        let before = before_point.map(|(_, o)| o);
        // A live child that died at an earlier step repeats its signal at every later `in_child` point
        // (cases/FORMAT.md): that madvise never ran, so it reached no cell (gen-11-1525 counted one as
        // DODUMP -> SIGSEGV, a cell no kernel reaches). A caught fault (`try_*`) is a signal the child
        // survived.
        if in_live_child && before_point.is_some_and(|(j, b)| is_death(prog, *j, b)) {
            continue;
        }
        // A program written for one word size (`word_bits`) is classified with that word's arithmetic;
        // any other is safe on both, where the front end decides the same way.
        let bits = prog.word_bits.unwrap_or(64);
        let kind = match cases::validate::madvise_extent_in(*page, *offset, *len_pages, *len_bytes, page_size, bits) {
            None => "front_end".to_string(),
            Some((s, e)) if s == e => "zero_length".to_string(),
            Some((s, e)) => {
                let base = simulator::program::ARENA.base as i128;
                let ps = page_size as i128;
                let first = (s as i128 - base).div_euclid(ps) as i64;
                let last = (e as i128 - base + ps - 1).div_euclid(ps) as i64;
                let k = match before {
                    Some(b) => kind_from_observation(prog, b, first, last),
                    None => kind_from_layout(prog, first, last),
                };
                if id.child.is_some() || in_live_child {
                    "after_fork".to_string()
                } else {
                    k
                }
            }
        };
        // Raw values no kernel names are one row.
        let advice = if advice.advice().is_some() { advice.label() } else { "invalid".to_string() };
        out.push(Cell { advice, kind, outcome: obs.ret.to_string() });
    }
    out.sort();
    out.dedup();
    out
}

fn kind_from_observation(prog: &Program, b: &Observation, first: i64, last: i64) -> String {
    let Some(v) = b.vmas.iter().find(|v| v.start <= first && first < v.end) else {
        let touches = b.vmas.iter().any(|v| v.start < last && v.end > first);
        return if touches { "hole_then_mapped" } else { "hole" }.to_string();
    };
    let has = |f: &str| v.flags.iter().any(|x| x == f);
    let guarded = has("gu")
        || (first.max(0)..last.min(b.pages.len() as i64)).any(|p| b.pages[p as usize].res == Residency::Swap);
    let perms = v.perms.as_bytes();
    let shared = perms.get(3) == Some(&b's');
    // hugetlb decides the kind before any state: its own rules (huge-page splits, no LRU advice) come
    // first whatever the protection or seal (reach::KINDS).
    if has("ht") {
        return match v.backing {
            VmaBacking::File(f) => file_kind(prog, f, shared),
            _ => format!("hugetlb_{}", if shared { "shared" } else { "private" }),
        };
    }
    if has("sl") {
        return "sealed".into();
    }
    if guarded {
        return "guarded".into();
    }
    if has("lo") {
        return "locked".into();
    }
    if v.perms.starts_with("---") {
        return "prot_none".into();
    }
    if perms.get(1) != Some(&b'w') {
        return "read_only".into();
    }
    match v.backing {
        VmaBacking::Anon if has("dp") => "anon_droppable".into(),
        VmaBacking::Anon => "anon_private".into(),
        VmaBacking::Shmem => "anon_shared".into(),
        VmaBacking::File(f) => file_kind(prog, f, shared),
        VmaBacking::Hugetlb => format!("hugetlb_{}", if shared { "shared" } else { "private" }),
        VmaBacking::Foreign => "foreign".into(),
    }
}

fn kind_from_layout(prog: &Program, first: i64, last: i64) -> String {
    let covers = |m: &&simulator::program::MapSpec| (m.page as i64) <= first && first < (m.page + m.pages) as i64;
    let Some(m) = prog.maps.iter().find(covers) else {
        let touches = prog.maps.iter().any(|m| (m.page as i64) < last && ((m.page + m.pages) as i64) > first);
        return if touches { "hole_then_mapped" } else { "hole" }.to_string();
    };
    if prog.is_hugetlb_map(m) {
        return match m.backing {
            Backing::FilePrivate { file, .. } => file_kind(prog, file, false),
            Backing::FileShared { file, .. } => file_kind(prog, file, true),
            b => format!("hugetlb_{}", if b.is_shared() { "shared" } else { "private" }),
        };
    }
    if m.locked {
        return "locked".into();
    }
    if m.prot.is_none() {
        return "prot_none".into();
    }
    if !m.prot.write {
        return "read_only".into();
    }
    match m.backing {
        Backing::AnonPrivate => "anon_private".into(),
        Backing::AnonShared => "anon_shared".into(),
        Backing::FilePrivate { file, .. } => file_kind(prog, file, false),
        Backing::FileShared { file, .. } => file_kind(prog, file, true),
        Backing::HugetlbPrivate => "hugetlb_private".into(),
        Backing::HugetlbShared => "hugetlb_shared".into(),
        Backing::AnonDroppable => "anon_droppable".into(),
    }
}

fn file_kind(prog: &Program, file: u32, shared: bool) -> String {
    let medium = match prog.files.get(file as usize).map(|f| f.kind) {
        // A tmpfs file is shmem like a memfd: the same column (and the same reach rules).
        Some(FileKind::Memfd | FileKind::Tmpfs) => "memfd",
        Some(FileKind::Hugetlb) => "hugetlb",
        _ => "disk",
    };
    format!("file_{}_{medium}", if shared { "shared" } else { "private" })
}

/// The matrix over a run: cell → number of scenarios that reached it.
pub fn tally<'a>(per_scenario: impl Iterator<Item = &'a [Cell]>) -> BTreeMap<Cell, u64> {
    let mut m = BTreeMap::new();
    for cells in per_scenario {
        for c in cells {
            *m.entry(c.clone()).or_insert(0) += 1;
        }
    }
    m
}

/// The matrix checked against the cell space of one kernel (`reach`).
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Cells in the space: advice rows × kinds × outcomes.
    pub total: usize,
    pub reachable: usize,
    /// Reachable cells the run reached.
    pub reached: usize,
    /// Reachable cells no scenario reached: a coverage gap.
    pub zero: Vec<Cell>,
    /// Every unreachable cell with its reason.
    pub unreachable: Vec<(Cell, reach::Unreachable)>,
    /// Cells classified unreachable that the run reached anyway: the reason is wrong.
    pub unreachable_reached: Vec<(Cell, u64, reach::Unreachable)>,
    /// Reached cells outside the space (an outcome or kind the space does not list).
    pub outside: Vec<(Cell, u64)>,
}

impl Summary {
    /// A reached cell the rules call unreachable, or one outside the space: the classification is wrong,
    /// whatever the size of the run.
    pub fn wrong(&self) -> bool {
        !self.unreachable_reached.is_empty() || !self.outside.is_empty()
    }
}

/// Classify every cell of the space on this kernel and compare with what the run reached.
pub fn summarize(model: &simulator::KernelModel, m: &BTreeMap<Cell, u64>) -> Summary {
    let mut s = Summary::default();
    let mut known = std::collections::BTreeSet::new();
    // The madvise cells, then the process_madvise rows (`reach::pm`), classified the same way.
    let madvise = reach::space(model).into_iter().map(|(advice, kind, outcome, class)| {
        (Cell { advice, kind: kind.to_string(), outcome: outcome.to_string() }, class)
    });
    let pm = reach::pm::pm_space(model).into_iter().map(|(advice, kind, outcome, class)| {
        (Cell { advice, kind: kind.to_string(), outcome }, class)
    });
    for (cell, class) in madvise.chain(pm) {
        let n = m.get(&cell).copied().unwrap_or(0);
        s.total += 1;
        match class {
            None => {
                s.reachable += 1;
                if n > 0 {
                    s.reached += 1;
                } else {
                    s.zero.push(cell.clone());
                }
            }
            Some(u) => {
                if n > 0 {
                    s.unreachable_reached.push((cell.clone(), n, u.clone()));
                }
                s.unreachable.push((cell.clone(), u));
            }
        }
        known.insert(cell);
    }
    s.outside = m.iter().filter(|(c, _)| !known.contains(*c)).map(|(c, n)| (c.clone(), *n)).collect();
    s
}

fn cell_json(c: &Cell) -> serde_json::Value {
    serde_json::json!({"advice": c.advice, "kind": c.kind, "outcome": c.outcome})
}

/// The matrix as JSON: every reached cell with its count, the summary, the reachable cells at zero, and
/// the unreachable cells grouped by reason.
pub fn to_json(m: &BTreeMap<Cell, u64>, s: &Summary) -> serde_json::Value {
    let cells: Vec<_> = m
        .iter()
        .map(|(c, n)| serde_json::json!({"advice": c.advice, "kind": c.kind, "outcome": c.outcome, "scenarios": n}))
        .collect();
    let mut groups: BTreeMap<(reach::Why, String, &str), Vec<serde_json::Value>> = BTreeMap::new();
    for (c, u) in &s.unreachable {
        groups.entry((u.why, u.reason.clone(), u.cite)).or_default().push(serde_json::json!([c.advice, c.kind, c.outcome]));
    }
    let unreachable: Vec<_> = groups
        .into_iter()
        .map(|((why, reason, cite), cells)| serde_json::json!({"why": why, "reason": reason, "cite": cite, "cells": cells}))
        .collect();
    let outcomes: Vec<String> = reach::OUTCOMES.iter().map(|o| o.to_string()).collect();
    serde_json::json!({
        "kinds": kinds(),
        "outcomes": outcomes,
        "summary": {
            "cells": s.total,
            "reachable": s.reachable,
            "reached": s.reached,
            "reachable_at_zero": s.zero.len(),
            "unreachable": s.unreachable.len(),
            "unreachable_reached": s.unreachable_reached.len(),
            "outside_the_space": s.outside.len(),
        },
        "cells": cells,
        "reachable_at_zero": s.zero.iter().map(cell_json).collect::<Vec<_>>(),
        "unreachable_reached": s.unreachable_reached.iter().map(|(c, n, u)| {
            serde_json::json!({"advice": c.advice, "kind": c.kind, "outcome": c.outcome, "scenarios": n,
                               "why": u.why, "reason": u.reason, "cite": u.cite})
        }).collect::<Vec<_>>(),
        "outside_the_space": s.outside.iter().map(|(c, n)| {
            serde_json::json!({"advice": c.advice, "kind": c.kind, "outcome": c.outcome, "scenarios": n})
        }).collect::<Vec<_>>(),
        "unreachable": unreachable,
    })
}

/// A one-screen text table: one line per advice, one column per kind, each cell the outcomes reached
/// with their scenario counts (`0:12 EINVAL:3`), reachable outcomes nobody reached as `EPERM:0!`, `-`
/// where nothing is reachable; then the summary.
/// One kind's line of a row in the table: each outcome's count (`:0!` for a reachable cell at zero), then
/// reached outcomes outside the space (`?`), or `-`.
fn kind_line<O: std::fmt::Display>(
    m: &BTreeMap<Cell, u64>,
    zero: &std::collections::BTreeSet<&Cell>,
    s: &Summary,
    row: &str,
    k: &str,
    outcomes: &[O],
) -> String {
    let mut parts = Vec::new();
    for o in outcomes {
        let c = Cell { advice: row.to_string(), kind: k.to_string(), outcome: o.to_string() };
        if let Some(n) = m.get(&c) {
            parts.push(format!("{o}:{n}"));
        } else if zero.contains(&c) {
            parts.push(format!("{o}:0!"));
        }
    }
    // Reached outcomes outside the space still show.
    for (c, n) in &s.outside {
        if c.advice == row && c.kind == k {
            parts.push(format!("{}:{n}?", c.outcome));
        }
    }
    let shown = if parts.is_empty() { "-".to_string() } else { parts.join(" ") };
    format!("  {k:<18} {shown}\n")
}

pub fn render(m: &BTreeMap<Cell, u64>, s: &Summary) -> String {
    let zero: std::collections::BTreeSet<&Cell> = s.zero.iter().collect();
    let mut out = String::from(
        "semantic coverage (scenarios reaching each advice x mapping kind x outcome on this kernel; \
         OUTCOME:0! = reachable, not reached)\n",
    );
    for a in reach::advice_rows() {
        let row = reach::advice_row(a);
        out.push_str(&format!("{row}\n"));
        for k in kinds() {
            out.push_str(&kind_line(m, &zero, s, &row, k, &reach::OUTCOMES));
        }
    }
    out.push_str("process_madvise (rows: the pidfd; columns: the shape of the call; outcomes: see coverage::reach::pm)\n");
    for t in simulator::program::PidfdTarget::ALL {
        let row = reach::pm::pm_row(t);
        out.push_str(&format!("{row}\n"));
        for k in reach::pm::PM_KINDS {
            out.push_str(&kind_line(m, &zero, s, &row, k, &reach::pm::PM_OUTCOMES));
        }
    }
    out.push_str(&render_summary(s));
    out
}

/// The summary lines: counts, every reachable cell at zero, every wrongly classified cell, and the
/// unreachable cells counted by reason.
pub fn render_summary(s: &Summary) -> String {
    let by_why = |w| s.unreachable.iter().filter(|(_, u)| u.why == w).count();
    let mut out = format!(
        "coverage: {} cells, {} reachable on this kernel ({} reached, {} at zero), {} unreachable ({} no kernel, \
         {} not this kernel, {} out of scope)\n",
        s.total,
        s.reachable,
        s.reached,
        s.zero.len(),
        s.unreachable.len(),
        by_why(reach::Why::Never),
        by_why(reach::Why::ThisKernel),
        by_why(reach::Why::Scope),
    );
    for c in &s.zero {
        out.push_str(&format!("  COVERAGE GAP: {} on {} -> {} is reachable but no scenario reached it\n", c.advice, c.kind, c.outcome));
    }
    for (c, n, u) in &s.unreachable_reached {
        out.push_str(&format!(
            "  WRONG REASON: {} on {} -> {} was reached by {n} scenario(s) but is classified unreachable: {} [{}]\n",
            c.advice, c.kind, c.outcome, u.reason, u.cite
        ));
    }
    for (c, n) in &s.outside {
        out.push_str(&format!(
            "  OUTSIDE THE SPACE: {} on {} -> {} was reached by {n} scenario(s) but the cell space has no such cell\n",
            c.advice, c.kind, c.outcome
        ));
    }
    let mut reasons: BTreeMap<(reach::Why, &str), usize> = BTreeMap::new();
    for (_, u) in &s.unreachable {
        *reasons.entry((u.why, u.reason.as_str())).or_insert(0) += 1;
    }
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out.push_str(&format!("  unreachable cells by reason ({} reasons; all of them, with citations, in the JSON):\n", reasons.len()));
    const SHOWN: usize = 12;
    for ((why, reason), n) in reasons.iter().take(SHOWN) {
        let short: String = reason.chars().take(96).collect();
        let more = if reason.chars().count() > 96 { "..." } else { "" };
        out.push_str(&format!("  {n:>6}  {:<15} {short}{more}\n", why.label()));
    }
    if reasons.len() > SHOWN {
        let rest: usize = reasons.iter().skip(SHOWN).map(|r| r.1).sum();
        out.push_str(&format!("  {rest:>6}  ({} more reasons)\n", reasons.len() - SHOWN));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulator::observe::{PageObs, Ret, VmaObs};

    fn vma(start: i64, end: i64, perms: &str, flags: &[&str]) -> VmaObs {
        VmaObs {
            start,
            end,
            perms: perms.into(),
            offset: 0,
            backing: VmaBacking::Anon,
            flags: flags.iter().map(|s| simulator::observe::VmFlag::named(s)).collect(),
            rss: 0,
            anon: 0,
            lazyfree: 0,
            locked: 0,
            hugetlb_shared: 0,
            hugetlb_private: 0,
            anon_huge: 0,
            swap: 0,
            pkey: None,
        }
    }

    #[test]
    fn cells_name_the_state_before_the_call_and_the_host_outcome() {
        let prog: Program = serde_json::from_str(
            r#"{"arena_pages":8,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"}],
                "steps":[{"op":"madvise","page":0,"len_pages":1,"advice":"DONTNEED"},
                         {"op":"madvise","page":1,"len_pages":1,"advice":"DONTNEED"},
                         {"op":"madvise","page":6,"len_pages":1,"advice":"COLD"},
                         {"op":"madvise","page":0,"offset":1,"len_pages":1,"advice":999}]}"#,
        )
        .unwrap();
        let obs = |ret, vmas: Vec<VmaObs>| Observation { ret, vmas, pages: vec![PageObs::ABSENT; 8], hugetlb: None, locked_vm: None };
        let at = |step| StepId { step, child: None, grandchild: None };
        let points = vec![
            (at(0), obs(Ret::Ok, vec![vma(0, 4, "rw-p", &["rd", "wr", "lo"])])),
            (at(1), obs(Ret::Err(simulator::observe::Errno::EINVAL), vec![vma(0, 4, "rw-p", &["rd", "wr", "lo"])])),
            (at(2), obs(Ret::Err(simulator::observe::Errno::ENOMEM), vec![])),
            (at(3), obs(Ret::Err(simulator::observe::Errno::EINVAL), vec![])),
        ];
        let got = hits(&prog, &points, 4096);
        let cell = |a: &str, k: &str, o: &str| Cell { advice: a.into(), kind: k.into(), outcome: o.into() };
        assert_eq!(
            got,
            vec![
                cell("COLD", "hole", "ENOMEM"),
                cell("DONTNEED", "anon_private", "0"),
                cell("DONTNEED", "locked", "EINVAL"),
                cell("invalid", "front_end", "EINVAL"),
            ]
        );
        let m = tally([got.as_slice(), got.as_slice()].into_iter());
        assert_eq!(m[&cell("COLD", "hole", "ENOMEM")], 2);
    }

    #[test]
    fn a_live_childs_madvise_is_after_fork() {
        let prog: Program = serde_json::from_str(
            r#"{"arena_pages":8,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"}],
                "steps":[{"op":"fork_live"},
                         {"op":"in_child","step":{"op":"madvise","page":0,"len_pages":1,"advice":"PAGEOUT"}},
                         {"op":"madvise","page":0,"len_pages":1,"advice":"PAGEOUT"}]}"#,
        )
        .unwrap();
        let o = || Observation { ret: Ret::Ok, vmas: vec![vma(0, 4, "rw-p", &["rd", "wr"])], pages: vec![PageObs::ABSENT; 8], hugetlb: None, locked_vm: None };
        let points = vec![
            (StepId { step: 0, child: Some(0), grandchild: None }, o()),
            (StepId { step: 0, child: None, grandchild: None }, o()),
            (StepId { step: 1, child: None, grandchild: None }, o()),
            (StepId { step: 2, child: None, grandchild: None }, o()),
        ];
        let cell = |k: &str| Cell { advice: "PAGEOUT".into(), kind: k.into(), outcome: "0".into() };
        assert_eq!(hits(&prog, &points, 4096), vec![cell("after_fork"), cell("anon_private")]);
    }

    #[test]
    fn a_dead_live_childs_later_madvise_reaches_no_cell() {
        // gen-11-1525: the child dies reading a hole; its later in_child madvise repeats the signal.
        let prog: Program = serde_json::from_str(
            r#"{"arena_pages":8,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"}],
                "steps":[{"op":"fork_live"},
                         {"op":"in_child","step":{"op":"read","page":6}},
                         {"op":"in_child","step":{"op":"madvise","page":0,"len_pages":1,"advice":"DODUMP"}},
                         {"op":"madvise","page":0,"len_pages":1,"advice":"DODUMP"}]}"#,
        )
        .unwrap();
        let o = || Observation { ret: Ret::Ok, vmas: vec![vma(0, 4, "rw-p", &["rd", "wr"])], pages: vec![PageObs::ABSENT; 8], hugetlb: None, locked_vm: None };
        let dead = || Observation { ret: Ret::Signal(simulator::observe::Signal::SIGSEGV), vmas: vec![], pages: vec![], hugetlb: None, locked_vm: None };
        let points = vec![
            (StepId { step: 0, child: Some(0), grandchild: None }, o()),
            (StepId { step: 0, child: None, grandchild: None }, o()),
            (StepId { step: 1, child: None, grandchild: None }, dead()),
            (StepId { step: 2, child: None, grandchild: None }, dead()),
            (StepId { step: 3, child: None, grandchild: None }, o()),
        ];
        let cell = Cell { advice: "DODUMP".into(), kind: "anon_private".into(), outcome: "0".into() };
        assert_eq!(hits(&prog, &points, 4096), vec![cell]);
    }

    #[test]
    fn summary_lists_gaps_wrong_reasons_and_cells_outside_the_space() {
        let model = simulator::KernelModel::from_facts(simulator::KernelFacts::profile("6.18").unwrap());
        let cell = |a: &str, k: &str, o: &str| Cell { advice: a.into(), kind: k.into(), outcome: o.into() };
        let mut m = BTreeMap::new();
        m.insert(cell("DONTNEED", "anon_private", "0"), 3);
        // DONTNEED on a locked VMA is EINVAL, never 0: reaching it means a rule is wrong.
        m.insert(cell("DONTNEED", "locked", "0"), 1);
        m.insert(cell("DONTNEED", "foreign", "0"), 1);
        let s = summarize(&model, &m);
        let pm = simulator::program::PidfdTarget::ALL.len() * reach::pm::PM_KINDS.len() * reach::pm::PM_OUTCOMES.len();
        assert_eq!(s.total, 28 * reach::KINDS.len() * 15 + pm);
        assert_eq!(s.reached, 1);
        assert_eq!(s.zero.len(), s.reachable - 1);
        assert!(s.zero.contains(&cell("DONTNEED", "locked", "EINVAL")));
        assert_eq!(s.unreachable_reached.len(), 1);
        assert_eq!(s.unreachable_reached[0].0, cell("DONTNEED", "locked", "0"));
        assert_eq!(s.outside, vec![(cell("DONTNEED", "foreign", "0"), 1)]);
        assert!(s.wrong());
        let text = render_summary(&s);
        assert!(text.contains("WRONG REASON: DONTNEED on locked -> 0"), "{text}");
        assert!(text.contains("COVERAGE GAP: DONTNEED on locked -> EINVAL"), "{text}");
        let j = to_json(&m, &s);
        assert_eq!(j["summary"]["unreachable_reached"], 1);
        assert_eq!(j["summary"]["cells"], s.total);
    }
}
