//! Goldens: the text a snapshot of a named case holds, and the check of the host kernel against the
//! recorded host goldens (`golden/snapshots/<profile>/host/<case>.snap`).
//!
//! Invariant: one pure renderer makes both sides. A golden body lists, for every observation point, the
//! call, its return and a page ruler (`render::ruler_allowed`). The simulator side is the model's answer
//! as it is. The host side is the observation *projected* onto the model's answer with one rule:
//!
//! > a field where the model allows several values (a set of returns, a count range such as
//! > `lazyfree=0..=3`, several page alternatives) is written as the model's set when the observed value
//! > lies inside it; everywhere else the observed value is written.
//!
//! So a host that agrees with the model renders byte for byte what the simulator renders (golden test
//! (b) is plain equality), a host golden does not flip when the kernel's own nondeterminism picks another
//! member of an allowed set, and a host value outside the model's answer is written as observed and shows
//! up in the diff. Points the model does not know (after `Unsupported`) are written as observed.
//!
//! The golden snapshot test (`harness/tests/goldens.rs`) and `madcheck run`'s golden check both use these functions, so they
//! agree on what a golden is.

use crate::host::Worker;
use crate::out::render;
use crate::run::call;
use crate::run::report::{GoldenMismatchEntry, Report};
use cases::Scenario;
use simulator::observe::{Allowed, Count, Expect, Observation, Ret, VmaAllowed};
use simulator::program::{Program, StepId};
use simulator::KernelModel;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a failing golden check tells the reader to run.
pub const BLESS_COMMAND: &str = "cargo xtask bless";

/// `golden/snapshots` of the checkout this binary was built from.
pub fn snapshot_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden/snapshots");
    p.canonicalize().unwrap_or(p)
}

/// `golden/snapshots/<profile>/<side>` where side is `host` or `sim`.
pub fn golden_dir(root: &Path, profile: &str, side: &str) -> PathBuf {
    root.join(profile).join(side)
}

/// The observation as an `Allowed` of single values.
fn exact(obs: &Observation) -> Allowed {
    Allowed {
        ret: vec![obs.ret],
        vmas: obs.vmas.iter().map(VmaAllowed::exact).collect(),
        pages: obs.pages.iter().map(|p| vec![*p]).collect(),
        hugetlb: obs.hugetlb, locked_vm: obs.locked_vm,
    }
}

/// The projection rule of the module doc: keep the model's set where it is a set that holds the observed
/// value, the observed value everywhere else.
pub fn project(obs: &Observation, allowed: &Allowed) -> Allowed {
    let mut out = exact(obs);
    if allowed.ret.len() > 1 && allowed.ret.contains(&obs.ret) {
        out.ret = allowed.ret.clone();
    }
    let same_layout = allowed.vmas.len() == obs.vmas.len()
        && allowed.vmas.iter().zip(&obs.vmas).all(|(a, o)| {
            (a.start, a.end, &a.perms, a.offset, a.backing) == (o.start, o.end, &o.perms, o.offset, o.backing)
        });
    if same_layout {
        let keep = |c: Count, v: u64| if c.lo != c.hi && c.contains(v) { c } else { Count::exact(v) };
        for ((v, a), o) in out.vmas.iter_mut().zip(&allowed.vmas).zip(&obs.vmas) {
            v.rss = keep(a.rss, o.rss);
            v.anon = keep(a.anon, o.anon);
            v.lazyfree = keep(a.lazyfree, o.lazyfree);
            v.locked = keep(a.locked, o.locked);
        }
    }
    if allowed.pages.len() == obs.pages.len() {
        for ((p, alts), o) in out.pages.iter_mut().zip(&allowed.pages).zip(&obs.pages) {
            if alts.len() > 1 && alts.contains(o) {
                *p = alts.clone();
            }
        }
    }
    out
}

fn ret_line(rets: &[Ret]) -> String {
    match rets {
        [one] => format!("  ret {one}\n"),
        many => format!("  ret ∈ {{{}}}\n", simulator::observe::render_ret_set(many)),
    }
}

fn point(out: &mut String, prog: &Program, id: StepId, a: &Allowed) {
    let _ = writeln!(out, "{}", call::render_point(prog, id));
    out.push_str(&ret_line(&a.ret));
    if a.vmas.is_empty() && a.pages.is_empty() {
        // A fatal signal: the process is gone.
        out.push_str("  (process gone)\n");
    } else {
        out.push_str(&render::indent(&render::ruler_allowed(&a.vmas, &a.pages), 2));
        if let Some(h) = a.hugetlb {
            let _ = writeln!(out, "  hugetlb pool: {h}");
        }
        if let Some(n) = a.locked_vm {
            let _ = writeln!(out, "  locked_vm: {n} pages");
        }
    }
    out.push('\n');
}

fn layout(out: &mut String, prog: &Program) {
    let _ = writeln!(out, "arena: {} pages", prog.arena_pages);
    for (i, f) in prog.files.iter().enumerate() {
        let _ = writeln!(out, "file {i}: {:?}, {} pages", f.kind, f.pages);
    }
    for (i, m) in prog.maps.iter().enumerate() {
        let _ = writeln!(out, "map {i}: {}", call::render_map(m));
    }
    out.push('\n');
}

/// The simulator's golden body. An unsupported point ends it with the model's reason.
pub fn render_sim(prog: &Program, exp: &[(StepId, Expect)]) -> String {
    let mut out = String::new();
    layout(&mut out, prog);
    for (id, e) in exp {
        match e {
            Expect::Allowed(a) => point(&mut out, prog, *id, a),
            Expect::Unsupported(why) => {
                let _ = writeln!(out, "{}", call::render_point(prog, *id));
                let _ = writeln!(out, "  UNSUPPORTED by the model: {why}");
                let _ = writeln!(out, "  (the model says nothing from here on; the host golden has the rest)");
                break;
            }
        }
    }
    out
}

/// The host's golden body: each observed point projected onto the model's answer for the same point.
pub fn render_host(prog: &Program, points: &[(StepId, Observation)], exp: &[(StepId, Expect)]) -> String {
    let mut out = String::new();
    layout(&mut out, prog);
    let mut model_knows = true;
    for (i, (id, obs)) in points.iter().enumerate() {
        let a = match exp.get(i) {
            Some((eid, Expect::Allowed(a))) if eid == id && model_knows => project(obs, a),
            Some((_, Expect::Unsupported(_))) => {
                model_knows = false;
                exact(obs)
            }
            _ => exact(obs),
        };
        point(&mut out, prog, *id, &a);
    }
    out
}

/// The host golden of a case this kernel never runs (a hugetlb case where no huge page fits the arena or
/// no pool could be had, or hugetlb with fork or mremap): the layout and the reason, so the recording
/// is still complete and a kernel that starts running it shows up as a diff.
pub fn not_run_body(model: &KernelModel, prog: &Program) -> Option<String> {
    // A program this environment cannot set up at all (a MAP_DROPPABLE layout before 6.11, tmpfs files
    // without a usable tmpfs, disk files without a scratch directory): the run answers it Unsupported
    // before any worker sees it, and so does its golden.
    if let Some(why) = simulator::environment_refusal(model, &simulator::program::ARENA, prog) {
        let mut out = String::new();
        layout(&mut out, prog);
        let _ = writeln!(out, "NOT RUN on this kernel: {why}");
        return Some(out);
    }
    if !prog.uses_hugetlb() {
        return None;
    }
    let (why, _) = crate::run::judge::hugetlb_refusal(model, prog, crate::host::guest::disposable_guest())?;
    let mut out = String::new();
    layout(&mut out, prog);
    let _ = writeln!(out, "NOT RUN on this kernel: {why}");
    Some(out)
}

/// Whether the sim golden says the model does not support the case.
pub fn sim_is_unsupported(exp: &[(StepId, Expect)]) -> bool {
    exp.iter().any(|(_, e)| matches!(e, Expect::Unsupported(_)))
}

/// The body of an insta `.snap` file: everything after the header (`---` … `---`).
pub fn snap_body(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(&rest[end + 5..])
}

/// insta trims the body it stores; compare bodies the same way.
pub fn same_body(a: &str, b: &str) -> bool {
    a.trim_end() == b.trim_end()
}

/// A small line diff: `-` recorded, `+` now, with two lines of context, for a terminal or a report.
pub fn line_diff(recorded: &str, now: &str) -> String {
    let a: Vec<&str> = recorded.trim_end().lines().collect();
    let b: Vec<&str> = now.trim_end().lines().collect();
    // Longest common subsequence table; bodies are a few hundred lines at most.
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] { l[i + 1][j + 1] + 1 } else { l[i + 1][j].max(l[i][j + 1]) };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || l[i][j + 1] > l[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let near = |k: usize| ops[k.saturating_sub(2)..(k + 3).min(ops.len())].iter().any(|o| o.0 != ' ');
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if *op != ' ' || near(k) {
            if skipped {
                out.push_str("  ...\n");
                skipped = false;
            }
            let _ = writeln!(out, "{op} {line}");
        } else {
            skipped = true;
        }
    }
    out
}

/// One case whose host behaviour differs from its recorded host golden.
#[derive(Clone, Debug)]
pub struct GoldenMismatch {
    pub case: String,
    pub golden: PathBuf,
    /// `line_diff(recorded, now)`.
    pub diff: String,
}

/// Run one named case on the host (up to three times while a run is poisoned, e.g. by reclaim from
/// someone else) and render its host golden body, projected through `clean` (a model without mutations).
pub fn render_host_case(worker: &mut Worker, clean: &KernelModel, s: &Scenario, timeout: Duration) -> Result<String, String> {
    if let Some(body) = not_run_body(clean, &s.program) {
        return Ok(body);
    }
    let mut why = String::new();
    for _ in 0..3 {
        match worker.run(&s.program, timeout) {
            Ok(r) if r.poisoned.is_none() && !r.timed_out => {
                let exp = simulator::simulate(clean, &simulator::program::ARENA, &s.program);
                return Ok(render_host(&s.program, &r.points, &exp));
            }
            Ok(r) => why = r.poisoned.unwrap_or_else(|| "the worker timed out".into()),
            Err(e) => return Err(e),
        }
    }
    Err(why)
}

/// Console markers of `madcheck run --emit-goldens` (how a guest under qemu hands its host goldens to
/// `cargo xtask bless --kernel`). Per case:
/// ```text
/// MADCHECK-GOLDEN-BEGIN <case id>
/// MADCHECK-GOLDEN <case id> <base64 chunk of at most 76 characters>      (repeated)
/// MADCHECK-GOLDEN-END <case id> bytes=<body length> fnv=<FNV-1a 64 of the body, hex>
/// ```
/// or `MADCHECK-GOLDEN-ERROR <case id> <why>`; and once, before them, `MADCHECK-GOLDEN-FACTS <the
/// KernelFacts as one line of JSON>`. Every data line names its case and the end line carries length
/// and hash, so a console line mangled by kernel messages is detected rather than recorded.
pub const EMIT_PREFIX: &str = "MADCHECK-GOLDEN";

/// FNV-1a 64: the integrity check of emitted goldens (xtask has its own copy; std only).
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The emitted block of one case (see `EMIT_PREFIX`).
pub fn emit_block(id: &str, body: &str) -> String {
    let mut out = format!("{EMIT_PREFIX}-BEGIN {id}\n");
    let b = base64(body.as_bytes());
    for chunk in b.as_bytes().chunks(76) {
        let _ = writeln!(out, "{EMIT_PREFIX} {id} {}", std::str::from_utf8(chunk).expect("base64 is ASCII"));
    }
    let _ = writeln!(out, "{EMIT_PREFIX}-END {id} bytes={} fnv={:016x}", body.len(), fnv1a64(body.as_bytes()));
    out
}

/// Render every named case's host golden and write the blocks to `out` (facts first).
pub fn emit_host_goldens(
    model: &KernelModel,
    scenarios: &[&Scenario],
    exe: &Path,
    timeout: Duration,
    out: &mut dyn std::io::Write,
) -> Result<usize, String> {
    let facts = serde_json::to_string(&model.facts).map_err(|e| e.to_string())?;
    writeln!(out, "{EMIT_PREFIX}-FACTS {facts}").map_err(|e| e.to_string())?;
    let mut worker = Worker::spawn(exe, None).map_err(|e| format!("cannot start a worker: {e}"))?;
    let mut clean = model.clone();
    clean.mutations.clear();
    let mut failed = 0;
    for s in scenarios {
        let block = match render_host_case(&mut worker, &clean, s, timeout) {
            Ok(body) => emit_block(&s.id, &body),
            Err(e) => {
                failed += 1;
                format!("{EMIT_PREFIX}-ERROR {} {}\n", s.id, e.replace('\n', " "))
            }
        };
        out.write_all(block.as_bytes()).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(failed)
}

/// The result of checking the host against its recorded goldens.
#[derive(Clone, Debug, Default)]
pub struct GoldenCheck {
    pub profile: String,
    pub dir: PathBuf,
    /// No golden directory exists for this profile: nothing was checked (not a failure).
    pub profile_missing: bool,
    /// Cases compared with a golden.
    pub checked: u64,
    /// Named cases of the run without a golden for this profile (not a failure).
    pub missing: Vec<String>,
    pub mismatches: Vec<GoldenMismatch>,
    /// Host runs that could not be used (worker failure, reclaim by someone else): not compared.
    pub skipped: Vec<(String, String)>,
}

/// Fold the host-golden check into the report: a mismatch makes the run fail.
pub fn add_goldens(r: &mut Report, c: &GoldenCheck) {
    r.golden_checked = c.checked;
    r.golden_missing = c.missing.len() as u64;
    r.golden_mismatches = c.mismatches.len() as u64;
    r.golden_mismatch_cases = c
        .mismatches
        .iter()
        .map(|m| GoldenMismatchEntry { scenario: m.case.clone(), golden: m.golden.display().to_string(), diff: m.diff.clone() })
        .collect();
    if r.golden_mismatches > 0 {
        r.exit_code = 1;
    }
}

/// Run every named case on the host once more and compare its golden body with
/// `<root>/<profile>/host/<id>.snap`. `exe` is the madcheck binary (re-executed as `exe worker`).
pub fn check_host(model: &KernelModel, scenarios: &[&Scenario], root: &Path, exe: &Path, timeout: Duration) -> GoldenCheck {
    let dir = golden_dir(root, &model.profile, "host");
    let mut check = GoldenCheck { profile: model.profile.clone(), dir: dir.clone(), ..GoldenCheck::default() };
    if scenarios.is_empty() {
        return check;
    }
    if !dir.is_dir() {
        check.profile_missing = true;
        check.missing = scenarios.iter().map(|s| s.id.clone()).collect();
        return check;
    }
    let mut worker = match Worker::spawn(exe, None) {
        Ok(w) => w,
        Err(e) => {
            check.skipped = scenarios.iter().map(|s| (s.id.clone(), format!("cannot start a worker: {e}"))).collect();
            return check;
        }
    };
    // The model is only used to project the host's nondeterminism; no mutation may leak into goldens.
    let mut clean = model.clone();
    clean.mutations.clear();
    for s in scenarios {
        let path = dir.join(format!("{}.snap", s.id));
        let Ok(text) = std::fs::read_to_string(&path) else {
            check.missing.push(s.id.clone());
            continue;
        };
        let Some(recorded) = snap_body(&text) else {
            check.mismatches.push(GoldenMismatch {
                case: s.id.clone(),
                golden: path,
                diff: "the golden file is not an insta snapshot (no `---` header)\n".into(),
            });
            continue;
        };
        // A hugetlb case this run could not run (no pool for this process: no privilege, or another run
        // owns it) says nothing about the kernel: not compared. (Where the kernel itself cannot, the
        // recording says NOT RUN and is compared.)
        if let (true, Some(why)) = (s.program.uses_hugetlb(), &clean.facts.hugetlb_unavailable) {
            check.skipped.push((s.id.clone(), why.clone()));
            continue;
        }
        // The same for a case this environment cannot set up (no usable scratch directory for its disk
        // file, a MAP_LOCKED layout past RLIMIT_MEMLOCK).
        if let Some(why) = simulator::environment_refusal(&clean, &simulator::program::ARENA, &s.program) {
            check.skipped.push((s.id.clone(), why));
            continue;
        }
        let now = match render_host_case(&mut worker, &clean, s, timeout) {
            Ok(now) => now,
            Err(why) => {
                check.skipped.push((s.id.clone(), why));
                continue;
            }
        };
        check.checked += 1;
        if !same_body(recorded, &now) {
            check.mismatches.push(GoldenMismatch { case: s.id.clone(), golden: path, diff: line_diff(recorded, &now) });
        }
    }
    check
}

/// The golden section of the terminal output.
pub fn render_check(c: &GoldenCheck, max: usize) -> String {
    let mut out = String::new();
    for m in c.mismatches.iter().take(max) {
        let _ = writeln!(out, "GOLDEN MISMATCH {}: this kernel behaves differently from the recorded one", m.case);
        let _ = writeln!(out, "  golden: {}", m.golden.display());
        let _ = writeln!(out, "  (- recorded, + this kernel)");
        out.push_str(&render::indent(&m.diff, 2));
        let _ = writeln!(out, "  if the new behaviour is right, re-record with `{BLESS_COMMAND}`\n");
    }
    if c.mismatches.len() > max {
        let _ = writeln!(out, "({} more golden mismatches are listed in the report)\n", c.mismatches.len() - max);
    }
    out
}

/// One summary line, or nothing when the run had no named case.
pub fn render_check_summary(c: &GoldenCheck) -> String {
    if c.checked == 0 && c.missing.is_empty() && c.skipped.is_empty() && c.mismatches.is_empty() {
        return String::new();
    }
    if c.profile_missing {
        return format!(
            "  goldens: none recorded for profile {} ({} cases not checked; record them with `{BLESS_COMMAND}`)\n",
            c.profile,
            c.missing.len()
        );
    }
    let mut s = format!(
        "  goldens ({}): checked {}  mismatch {}  missing {}{}\n",
        c.profile,
        c.checked,
        c.mismatches.len(),
        c.missing.len(),
        if c.skipped.is_empty() { String::new() } else { format!("  skipped {}", c.skipped.len()) }
    );
    for (id, why) in c.skipped.iter().take(5) {
        let _ = writeln!(s, "    golden check skipped {id}: {why}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulator::observe::{Content, PageObs, Residency, VmaBacking, VmaObs};

    fn obs(lazy: u64, ret: Ret) -> Observation {
        Observation {
            ret,
            vmas: vec![VmaObs {
                start: 0,
                end: 1,
                perms: "rw-p".into(),
                offset: 0,
                backing: VmaBacking::Anon,
                flags: vec![],
                rss: 1,
                anon: 1,
                lazyfree: lazy,
                locked: 0,
                hugetlb_shared: 0,
                hugetlb_private: 0,
                anon_huge: 0,
                swap: 0,
                pkey: None,
            }],
            pages: vec![PageObs { res: Residency::Present, content: Some(Content::Fill(1)) }],
            hugetlb: None,
            locked_vm: None,
        }
    }

    #[test]
    fn base64_and_blocks() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let b = emit_block("x", "arena: 8 pages\n");
        assert!(b.starts_with("MADCHECK-GOLDEN-BEGIN x\nMADCHECK-GOLDEN x YXJlbmE6IDggcGFnZXMK\n"));
        assert!(b.ends_with(&format!("MADCHECK-GOLDEN-END x bytes=15 fnv={:016x}\n", fnv1a64(b"arena: 8 pages\n"))));
    }

    #[test]
    fn sets_that_hold_the_observation_are_kept_and_others_are_not() {
        let mut a = exact(&obs(0, Ret::Ok));
        a.vmas[0].lazyfree = Count { lo: 0, hi: 1 };
        a.ret = vec![Ret::Ok, Ret::Err(simulator::observe::Errno::EAGAIN)];
        let p = project(&obs(1, Ret::Ok), &a);
        assert_eq!(p, a, "inside the sets: the model's sets");
        let p = project(&obs(3, Ret::Err(simulator::observe::Errno::EINVAL)), &a);
        assert_eq!(p.vmas[0].lazyfree, Count::exact(3));
        assert_eq!(p.ret, vec![Ret::Err(simulator::observe::Errno::EINVAL)]);
    }

    #[test]
    fn snap_body_skips_the_header_and_diff_marks_lines() {
        let t = "---\nsource: x\ninfo:\n  a: 1\n---\nline 1\nline 2\n";
        assert_eq!(snap_body(t), Some("line 1\nline 2\n"));
        let d = line_diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(d, "  a\n- b\n+ B\n  c\n");
    }
}
