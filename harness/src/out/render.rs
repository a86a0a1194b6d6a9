//! Text renderers: page-ruler diagrams of the arena, divergences and the run summary (a call is written
//! by `run::call`).
//!
//! Invariant: every function here is pure (data in, `String` out). Nothing prints; `main` decides where
//! text goes. The ruler functions take plain observation slices so golden snapshots, divergence reports
//! and case docs all draw the same picture.
//!
//! A ruler has one column per arena page:
//!
//! ```text
//! page   0000000000111111
//!        0123456789012345
//! vma    AAAABBBB....CCCC
//! state  ppp.zz..s.pp....
//! data   A00.00......f#..
//!        B
//! ```
//!
//! `vma`: a letter per VMA in VMA order (`.` unmapped). `state`: `.` absent, `p` present, `z` shared zero
//! page, `s` swap-format entry. `data` (present pages only): `0` all zero bytes, `f` original file
//! content, `#` anything else (hashed), and for a page filled with one byte its hex value read downwards
//! over two rows (upper case, so `F`/`f` never clash; a fill is the only thing with a second-row digit).

use crate::run::report::{self, DivergenceEntry, Report};
use crate::run::call::{render_map, render_point};
use crate::run::judge::{Divergence, ScenarioResult};
use simulator::observe::{
    render_page, render_ret_set, Content, Count, Expect, PageObs, Residency, VmaAllowed, VmaBacking, VmaObs,
};
use std::collections::BTreeSet;
use simulator::program::{Program, StepId};
use std::fmt::Write as _;

/// The letter of the `i`th VMA: A..Z, then a..z, then `*` (the legend still lists every VMA).
pub fn vma_letter(i: usize) -> char {
    match i {
        0..=25 => (b'A' + i as u8) as char,
        26..=51 => (b'a' + (i - 26) as u8) as char,
        _ => '*',
    }
}

fn state_char(p: &PageObs) -> char {
    match p.res {
        Residency::Absent => '.',
        Residency::Present => 'p',
        Residency::ZeroPage => 'z',
        Residency::Swap => 's',
    }
}

/// The two `data` rows for one page.
fn data_chars(p: &PageObs) -> (char, char) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    match p.content {
        None => ('.', ' '),
        Some(Content::Zero) => ('0', ' '),
        Some(Content::FilePage { .. }) => ('f', ' '),
        Some(Content::Hash(_)) => ('#', ' '),
        Some(Content::Fill(b)) => (HEX[(b >> 4) as usize] as char, HEX[(b & 15) as usize] as char),
    }
}

const LABEL: usize = 7;

fn label(out: &mut String, name: &str) {
    let _ = write!(out, "{name:<LABEL$}");
}

/// The page-index rows (hundreds only when the arena has more than 100 pages).
fn index_rows(out: &mut String, n: usize) {
    if n > 100 {
        label(out, "");
        out.extend((0..n).map(|p| char::from(b'0' + ((p / 100) % 10) as u8)));
        out.push('\n');
    }
    label(out, "page");
    out.extend((0..n).map(|p| char::from(b'0' + ((p / 10) % 10) as u8)));
    out.push('\n');
    label(out, "");
    out.extend((0..n).map(|p| char::from(b'0' + (p % 10) as u8)));
    out.push('\n');
}

/// Arenas wider than this print as runs of equal pages instead of one column per page.
const RULER_MAX: usize = 128;

/// The wide-arena form: one line per run of pages with the same VMA, residency and content, e.g.
/// `  [0,512)  A p 00` (a hugetlb arena is 1024 pages).
fn run_rows(out: &mut String, ranges: &[(i64, i64)], pages: &[PageObs]) {
    let key = |p: usize| {
        let v = ranges.iter().position(|&(s, e)| s <= p as i64 && (p as i64) < e).map(vma_letter).unwrap_or('.');
        let (d0, d1) = data_chars(&pages[p]);
        (v, state_char(&pages[p]), d0, d1)
    };
    let mut start = 0;
    while start < pages.len() {
        let k = key(start);
        let mut end = start + 1;
        while end < pages.len() && key(end) == k {
            end += 1;
        }
        let _ = writeln!(out, "  [{start},{end}) vma {} state {} data {}{}", k.0, k.1, k.2, k.3.to_string().trim());
        start = end;
    }
}

fn vma_row(out: &mut String, n: usize, ranges: &[(i64, i64)]) {
    label(out, "vma");
    for p in 0..n as i64 {
        let c = ranges.iter().position(|&(s, e)| s <= p && p < e).map(vma_letter).unwrap_or('.');
        out.push(c);
    }
    out.push('\n');
}

fn page_rows(out: &mut String, pages: &[PageObs]) {
    label(out, "state");
    out.extend(pages.iter().map(state_char));
    out.push('\n');
    let data: Vec<(char, char)> = pages.iter().map(data_chars).collect();
    label(out, "data");
    out.extend(data.iter().map(|d| d.0));
    out.push('\n');
    if data.iter().any(|d| d.1 != ' ') {
        label(out, "");
        let row: String = data.iter().map(|d| d.1).collect();
        out.push_str(row.trim_end());
        out.push('\n');
    }
}

fn backing_label(b: VmaBacking) -> String {
    match b {
        VmaBacking::Anon => "anon".into(),
        VmaBacking::Shmem => "shmem".into(),
        VmaBacking::File(i) => format!("file {i}"),
        VmaBacking::Hugetlb => "hugetlb".into(),
        VmaBacking::Foreign => "FOREIGN".into(),
    }
}

/// The arena as observed: ruler rows, then one legend line per VMA.
pub fn ruler_obs(vmas: &[VmaObs], pages: &[PageObs]) -> String {
    // An observation is an answer with one value everywhere: drawn the same way.
    let exact: Vec<VmaAllowed> = vmas.iter().map(VmaAllowed::exact).collect();
    let pages: Vec<Vec<PageObs>> = pages.iter().map(|p| vec![*p]).collect();
    ruler_allowed(&exact, &pages)
}

/// The arena as the model allows it. Pages show their first alternative; an `alts` row marks with `*`
/// the pages where the model allows more than one, and counts print as ranges (`lazyfree=0..=3`).
pub fn ruler_allowed(vmas: &[VmaAllowed], pages: &[Vec<PageObs>]) -> String {
    let mut out = String::new();
    let ranges: Vec<(i64, i64)> = vmas.iter().map(|v| (v.start, v.end)).collect();
    let first: Vec<PageObs> = pages.iter().map(|alts| alts.first().copied().unwrap_or(PageObs::ABSENT)).collect();
    if pages.len() > RULER_MAX {
        run_rows(&mut out, &ranges, &first);
    } else {
        index_rows(&mut out, pages.len());
        vma_row(&mut out, pages.len(), &ranges);
        page_rows(&mut out, &first);
    }
    if pages.len() <= RULER_MAX && pages.iter().any(|alts| alts.len() > 1) {
        label(&mut out, "alts");
        let row: String = pages.iter().map(|alts| if alts.len() > 1 { '*' } else { ' ' }).collect();
        out.push_str(row.trim_end());
        out.push('\n');
    }
    for (i, v) in vmas.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {} [{},{}) {} off={} {} flags=[{}] rss={} anon={} lazyfree={} locked={}",
            vma_letter(i),
            v.start,
            v.end,
            v.perms,
            v.offset,
            backing_label(v.backing),
            v.flags.join(" "),
            count(v.rss),
            count(v.anon),
            count(v.lazyfree),
            count(v.locked)
        );
        if v.hugetlb_shared.hi + v.hugetlb_private.hi > 0 {
            let _ = writeln!(out, "      hugetlb shared={} private={}", count(v.hugetlb_shared), count(v.hugetlb_private));
        }
        if v.anon_huge.hi > 0 {
            let _ = writeln!(out, "      AnonHugePages={}", count(v.anon_huge));
        }
        if v.swap.hi > 0 {
            let _ = writeln!(out, "      Swap={}", count(v.swap));
        }
        if let Some(k) = v.pkey {
            let _ = writeln!(out, "      ProtectionKey={k}");
        }
    }
    if vmas.is_empty() {
        out.push_str("  (no VMAs)\n");
    }
    for (p, alts) in pages.iter().enumerate().filter(|(_, a)| a.len() > 1) {
        let _ = writeln!(out, "  page {p} may be: {}", alts.iter().map(render_page).collect::<Vec<_>>().join(" | "));
    }
    out
}

fn count(c: Count) -> String {
    c.to_string()
}

/// Indent every line of `s` by `n` spaces.
pub fn indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    s.lines().map(|l| if l.is_empty() { "\n".to_string() } else { format!("{pad}{l}\n") }).collect()
}

/// One divergence, in full: where, the call, each differing field (expected above observed), the
/// expected-over-observed rulers of that point, and the command that replays it.
pub fn render_divergence(r: &ScenarioResult, d: &Divergence) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "DIVERGENCE {} at {}", r.id, report::step_label(d));
    if !d.call.is_empty() {
        let _ = writeln!(out, "  {}", d.call);
    }
    for diff in &d.diffs {
        let _ = writeln!(out, "  {}:", diff.field);
        let _ = writeln!(out, "    expected  {}", diff.expected);
        let _ = writeln!(out, "    observed  {}", diff.observed);
    }
    if let Some(a) = &d.expected {
        out.push_str("  expected arena:\n");
        out.push_str(&indent(&ruler_allowed(&a.vmas, &a.pages), 4));
    }
    if let Some(o) = &d.observed {
        out.push_str("  observed arena:\n");
        out.push_str(&indent(&ruler_obs(&o.vmas, &o.pages), 4));
    }
    let _ = writeln!(out, "  replay: {}", r.replay);
    out
}

/// The model's expectations for every point of a program (`madcheck simulate`).
pub fn render_expectations(prog: &Program, exp: &[(StepId, Expect)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "arena: {} pages", prog.arena_pages);
    for (i, m) in prog.maps.iter().enumerate() {
        let _ = writeln!(out, "map {i}: {}", render_map(m));
    }
    for (id, e) in exp {
        let _ = writeln!(out, "\n{}", render_point(prog, *id));
        match e {
            Expect::Unsupported(why) => {
                let _ = writeln!(out, "  unsupported: {why}");
            }
            Expect::Allowed(a) => {
                let _ = writeln!(out, "  ret ∈ {{{}}}", render_ret_set(&a.ret));
                out.push_str(&indent(&ruler_allowed(&a.vmas, &a.pages), 2));
                if let Some(h) = a.hugetlb {
                    let _ = writeln!(out, "  hugetlb pool: {h}");
                }
                if let Some(n) = a.locked_vm {
                    let _ = writeln!(out, "  locked_vm: {n} pages");
                }
            }
        }
    }
    if exp.is_empty() {
        out.push_str("\n(the model produced no expectations)\n");
    }
    out
}

/// The one-screen end-of-run summary.
pub fn render_summary(r: &Report, max_divergences: usize) -> String {
    let mut out = String::new();
    let v = &r.verdicts;
    let _ = writeln!(
        out,
        "madcheck: {} on {} ({} {}K pages), model {}{}",
        if r.exit_code == 0 { "PASS" } else { "FAIL" },
        r.kernel,
        r.arch,
        r.page_size / 1024,
        r.profile,
        if r.model.mutations.is_empty() {
            String::new()
        } else {
            format!(" MUTATED ({})", r.model.mutations.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "))
        }
    );
    let _ = writeln!(
        out,
        "  {} scenarios, {} steps in {:.2}s ({:.0} scenarios/s, {:.0} steps/s){}",
        r.scenarios,
        r.steps,
        r.elapsed_s,
        r.scenarios_per_s,
        r.steps_per_s,
        r.seed.map(|s| format!(", seed {s}")).unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "  match {}  diverge {}  expected-divergence {}  unsupported {}  poisoned {}  infra-error {}",
        v.matched, v.diverge, v.expected_divergence, v.unsupported, v.poisoned, v.infra_error
    );
    if r.not_run > 0 {
        let _ = writeln!(
            out,
            "  NOT RUN: {} of {} scenarios{}",
            r.not_run,
            r.scenarios_planned,
            if r.interrupted { " (interrupted)" } else { "" }
        );
    }
    if !r.unsupported_by_advice.is_empty() {
        let parts: Vec<String> = r.unsupported_by_advice.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "  unsupported by advice: {}", parts.join(", "));
        let mut reasons: Vec<(&String, &u64)> = r.unsupported_by_reason.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1));
        for (why, n) in reasons.iter().take(5) {
            let _ = writeln!(out, "    {n:>6}  {why}");
        }
        if reasons.len() > 5 {
            let _ = writeln!(out, "    ... {} more reasons in the report", reasons.len() - 5);
        }
    }
    for e in r.expected_divergences.iter().take(max_divergences) {
        let _ = writeln!(out, "  expected divergence {} at {} {}: {}", e.scenario, e.step, e.field, e.reason);
    }
    if r.expected_divergences.len() > max_divergences {
        let _ = writeln!(out, "  ... {} more expected divergences (with reasons) in the report", r.expected_divergences.len() - max_divergences);
    }
    for e in &r.reruns {
        let _ = writeln!(out, "  re-run {}: {} did not happen again on a fresh worker (an infrastructure event, not a divergence)", e.scenario, e.error);
    }
    for e in &r.stale_expected_divergences {
        let _ = writeln!(
            out,
            "  STALE expected-divergence entry {} at {} {} (no longer diverges: remove it from cases/expected_divergences.json)",
            e.scenario, e.step, e.field
        );
    }
    for e in r.infra_errors.iter().take(max_divergences) {
        let who = if e.scenario.is_empty() { "harness".to_string() } else { e.scenario.clone() };
        let _ = writeln!(out, "  INFRA ERROR {who}: {}", e.error);
    }
    if r.infra_errors.len() > max_divergences {
        let _ = writeln!(out, "  ... {} more infrastructure errors in the report", r.infra_errors.len() - max_divergences);
    }
    // One line per divergent scenario, first field only, so the summary stays on one screen.
    let mut seen = BTreeSet::new();
    let firsts: Vec<&DivergenceEntry> = r.divergences.iter().filter(|d| seen.insert(d.scenario.clone())).collect();
    for d in firsts.iter().take(max_divergences) {
        let _ = writeln!(out, "  diverge {} at {} {}  → {}", d.scenario, d.step, d.field, d.replay);
    }
    if firsts.len() > max_divergences {
        let _ = writeln!(out, "  ... {} more divergent scenarios in the report", firsts.len() - max_divergences);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(start: i64, end: i64) -> VmaObs {
        VmaObs {
            start,
            end,
            perms: "rw-p".into(),
            offset: 0,
            backing: VmaBacking::Anon,
            flags: vec![simulator::observe::VmFlag::named("rd"), simulator::observe::VmFlag::named("wr")],
            rss: 1,
            anon: 1,
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
    fn ruler_has_one_column_per_page() {
        let pages = vec![
            PageObs { res: Residency::Present, content: Some(Content::Fill(0xab)) },
            PageObs { res: Residency::ZeroPage, content: Some(Content::Zero) },
            PageObs::ABSENT,
            PageObs { res: Residency::Present, content: Some(Content::FilePage { file: 0, page: 0 }) },
        ];
        let r = ruler_obs(&[vma(0, 2), vma(3, 4)], &pages);
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines[0], "page   0000");
        assert_eq!(lines[1], "       0123");
        assert_eq!(lines[2], "vma    AA.B");
        assert_eq!(lines[3], "state  pz.p");
        assert_eq!(lines[4], "data   A0.f");
        assert_eq!(lines[5], "       B");
        assert!(lines[6].starts_with("  A [0,2) rw-p"));
    }

    #[test]
    fn allowed_ruler_marks_alternatives_and_ranges() {
        let v = VmaAllowed {
            start: 0,
            end: 2,
            perms: "rw-p".into(),
            offset: 0,
            backing: VmaBacking::Anon,
            flags: vec![],
            rss: Count { lo: 0, hi: 2 },
            anon: Count::exact(2),
            lazyfree: Count { lo: 0, hi: 3 },
            locked: Count::exact(0),
            hugetlb_shared: Count::exact(0),
            hugetlb_private: Count::exact(0),
            anon_huge: Count::exact(0),
            swap: Count::exact(0),
            pkey: None,
        };
        let pages = vec![vec![PageObs::ABSENT], vec![PageObs::ABSENT, PageObs { res: Residency::Present, content: Some(Content::Zero) }]];
        let r = ruler_allowed(&[v], &pages);
        assert!(r.contains("alts    *"), "{r}");
        assert!(r.contains("lazyfree=0..=3"), "{r}");
        assert!(r.contains("page 1 may be: Absent | Present Zero"), "{r}");
    }
}
