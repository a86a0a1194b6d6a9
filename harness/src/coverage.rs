//! Semantic coverage: which (advice, mapping kind, outcome) cells a run reached on the host kernel.
//!
//! Invariant: a cell is counted from what the kernel did (the host's return at that point) and from the
//! state the host showed just before the call (the previous observation point), never from the model.
//! A scenario is counted once per cell it reaches.

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

/// Every mapping kind the classifier can name, in table order.
pub const KINDS: [&str; 16] = [
    "anon_private",
    "anon_shared",
    "file_private_disk",
    "file_private_memfd",
    "file_shared_disk",
    "file_shared_memfd",
    "read_only",
    "prot_none",
    "locked",
    "guarded",
    "sealed",
    "after_fork",
    "hole",
    "hole_then_mapped",
    "front_end",
    "zero_length",
];

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
        let Some(Step::Madvise { page, offset, len_pages, len_bytes, advice }) = step else { continue };
        let before = i.checked_sub(1).map(|j| &points[j].1);
        let kind = match cases::validate::madvise_extent(*page, *offset, *len_pages, *len_bytes, page_size) {
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
    let shared = perms.get(3) == Some(&b's');
    match v.backing {
        VmaBacking::Anon => "anon_private".into(),
        VmaBacking::Shmem => "anon_shared".into(),
        VmaBacking::File(f) => file_kind(prog, f, shared),
        VmaBacking::Foreign => "foreign".into(),
    }
}

fn kind_from_layout(prog: &Program, first: i64, last: i64) -> String {
    let covers = |m: &&simulator::program::MapSpec| (m.page as i64) <= first && first < (m.page + m.pages) as i64;
    let Some(m) = prog.maps.iter().find(covers) else {
        let touches = prog.maps.iter().any(|m| (m.page as i64) < last && ((m.page + m.pages) as i64) > first);
        return if touches { "hole_then_mapped" } else { "hole" }.to_string();
    };
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
    }
}

fn file_kind(prog: &Program, file: u32, shared: bool) -> String {
    let medium = match prog.files.get(file as usize).map(|f| f.kind) {
        Some(FileKind::Memfd) => "memfd",
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

/// The matrix as JSON: every reached cell with its count, and per advice × kind the outcomes seen.
pub fn to_json(m: &BTreeMap<Cell, u64>) -> serde_json::Value {
    let cells: Vec<_> = m
        .iter()
        .map(|(c, n)| serde_json::json!({"advice": c.advice, "kind": c.kind, "outcome": c.outcome, "scenarios": n}))
        .collect();
    serde_json::json!({ "kinds": KINDS, "cells": cells })
}

/// A one-screen text table: one line per advice, one column per kind, each cell the outcomes reached
/// with their scenario counts (`0:12 EINVAL:3`), `-` where nothing reached it.
pub fn render(m: &BTreeMap<Cell, u64>) -> String {
    let mut by: BTreeMap<(String, String), Vec<(String, u64)>> = BTreeMap::new();
    let mut advices: Vec<String> = Vec::new();
    for (c, n) in m {
        by.entry((c.advice.clone(), c.kind.clone())).or_default().push((c.outcome.clone(), *n));
        if !advices.contains(&c.advice) {
            advices.push(c.advice.clone());
        }
    }
    let mut s = String::from("semantic coverage (scenarios reaching each advice x mapping kind x outcome on this kernel)\n");
    for a in &advices {
        s.push_str(&format!("{a}\n"));
        for k in KINDS {
            match by.get(&(a.clone(), k.to_string())) {
                Some(outs) => {
                    let cells: Vec<String> = outs.iter().map(|(o, n)| format!("{o}:{n}")).collect();
                    s.push_str(&format!("  {k:<18} {}\n", cells.join(" ")));
                }
                None => s.push_str(&format!("  {k:<18} -\n")),
            }
        }
    }
    s
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
            flags: flags.iter().map(|s| s.to_string()).collect(),
            rss: 0,
            anon: 0,
            lazyfree: 0,
            locked: 0,
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
        let obs = |ret, vmas: Vec<VmaObs>| Observation { ret, vmas, pages: vec![PageObs::ABSENT; 8] };
        let at = |step| StepId { step, child: None };
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
        let o = || Observation { ret: Ret::Ok, vmas: vec![vma(0, 4, "rw-p", &["rd", "wr"])], pages: vec![PageObs::ABSENT; 8] };
        let points = vec![
            (StepId { step: 0, child: Some(0) }, o()),
            (StepId { step: 0, child: None }, o()),
            (StepId { step: 1, child: None }, o()),
            (StepId { step: 2, child: None }, o()),
        ];
        let cell = |k: &str| Cell { advice: "PAGEOUT".into(), kind: k.into(), outcome: "0".into() };
        assert_eq!(hits(&prog, &points, 4096), vec![cell("after_fork"), cell("anon_private")]);
    }
}
