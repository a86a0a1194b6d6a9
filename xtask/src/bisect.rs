//! `cargo xtask bisect (--series S | --kernels K1,K2,...) [--arch X] (--case FILE | --finding FILE |
//! --generate N --seed S) [--mutate NAME]... [--report FILE] [--no-build]`: find the first Debian kernel
//! whose behaviour changed.
//!
//! Invariant: bisection follows the kernels' own observations, never the model. The kernels are the
//! series' point releases (`debian::point_releases`), oldest to newest. With `--generate` the two ends
//! are compared (`compare::two_passes`: digests, then the differing scenarios in full), the differences
//! are grouped by signature (field kinds and call, `madcheck compare`'s `MADCHECK-GROUP`), and the first
//! scenario of each group is shrunk in a guest of the newest kernel against the model (`run
//! --hunt-shrink`; the model only steers the shrink, and the shrunk case is kept only if the two ends
//! still differ on it). Each probed kernel boots once and records every group's cases in full, three
//! times (`--repeat 3`); a case whose runs vary is flaky and not bisected, a kernel that does not boot or
//! run is skipped (git bisect's 125) and its neighbour tried. Every change gets a C reproducer expecting
//! the last old kernel's observations, compiled with plain gcc and run in both guests (exit 0, then 1).
//! Downloads and unpacked kernels are cached under target/qemu, so a second bisect boots at once.

use crate::compare::{self, Kernel};
use crate::util::{self, json_str};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask bisect (--series 6.12 | --kernels K1,K2,...) [--arch X] \
(--case FILE | --finding FILE | --generate N --seed S) [--mutate NAME]... [--report FILE] [--no-build]";

/// How often each probed kernel runs each case (flaky detection).
const RUNS: usize = 3;

/// One case to bisect: how the guest selects it, and the files it needs in /madcheck/extra.
#[derive(Clone, Debug)]
struct Case {
    /// The scenario id madcheck reports (`gen-1-128`, or the case file's id).
    id: String,
    /// The signature of the group it stands for.
    signature: String,
    select: Vec<String>,
    file: Option<(String, Vec<u8>)>,
    /// The host path of the case file (for the reproducer), or `--seed S --scenario I`.
    host_select: Vec<String>,
}

/// What one kernel showed: its observation set of every case, or why it could not be tested (125).
type Probe = Result<PathBuf, String>;

struct Bisect {
    kernels: Vec<Kernel>,
    cases: Vec<Case>,
    extra: Vec<String>,
    probes: BTreeMap<usize, Probe>,
    build: bool,
    log: Vec<String>,
}

impl Bisect {
    /// Kernel `i`'s observations of every case (booted once, cached).
    fn probe(&mut self, i: usize) -> Probe {
        if let Some(p) = self.probes.get(&i) {
            return p.clone();
        }
        let mut args: Vec<String> = vec!["--record-observations".into(), "full".into(), "--repeat".into(), RUNS.to_string()];
        args.extend(self.extra.iter().cloned());
        let mut files = Vec::new();
        for c in &self.cases {
            args.extend(c.select.iter().cloned());
            files.extend(c.file.iter().cloned());
        }
        let t = Instant::now();
        let p = compare::observe(&self.kernels[i], "bisect", &args, &files, std::mem::take(&mut self.build));
        self.log.push(match &p {
            Ok(_) => format!("{}: recorded {} cases x{RUNS} in {:.0}s", self.kernels[i].label(), self.cases.len(), t.elapsed().as_secs_f64()),
            Err(e) => format!("{}: skipped (125): {e}", self.kernels[i].label()),
        });
        eprintln!("xtask bisect: {}", self.log.last().map_or("", |s| s.as_str()));
        self.probes.insert(i, p.clone());
        p
    }

    /// Does kernel `i` behave like the oldest on `case`? `Err`: untestable (125) or flaky.
    fn same_as_oldest(&mut self, i: usize, case: &str) -> Result<bool, Verdict> {
        let old = self.probe(0).map_err(Verdict::Skip)?;
        let new = self.probe(i).map_err(Verdict::Skip)?;
        let report = compare::hunt_dir().join(format!("bisect-{}.json", self.kernels[i].label()));
        let (_, text, _) = compare::madcheck_compare(&old, &new, &report).map_err(Verdict::Skip)?;
        if compare::tagged(&text, "FLAKY").concat().iter().any(|x| x == case) {
            return Err(Verdict::Flaky);
        }
        Ok(!compare::tagged(&text, "DIFFERING-IDS").concat().iter().any(|x| x == case))
    }
}

enum Verdict {
    Skip(String),
    Flaky,
}

/// The result of one group's search.
struct Change {
    case: Case,
    /// `(last old, first new)` kernel indexes, or why there is none.
    found: Result<(usize, usize), String>,
    skipped: Vec<usize>,
    fields: String,
    repro: Option<(PathBuf, i32, i32)>,
}

/// Binary search for the first kernel that differs from the oldest on `case` (the newest does).
fn search(b: &mut Bisect, case: &str) -> (Result<(usize, usize), String>, Vec<usize>) {
    let (mut good, mut bad) = (0usize, b.kernels.len() - 1);
    let mut skipped: Vec<usize> = Vec::new();
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        // The untested-but-not-skipped kernel nearest the middle (git bisect skip).
        let mut order: Vec<usize> = (good + 1..bad).filter(|k| !skipped.contains(k)).collect();
        order.sort_by_key(|k| k.abs_diff(mid));
        let Some(&m) = order.first() else {
            return (Err(format!("every kernel between {} and {} was skipped", b.kernels[good].label(), b.kernels[bad].label())), skipped);
        };
        match b.same_as_oldest(m, case) {
            Ok(true) => good = m,
            Ok(false) => bad = m,
            Err(Verdict::Skip(_)) => skipped.push(m),
            Err(Verdict::Flaky) => return (Err(format!("flaky on {}: its {RUNS} runs differ", b.kernels[m].label())), skipped),
        }
    }
    (Ok((good, bad)), skipped)
}

fn madcheck() -> PathBuf {
    util::target_dir().join("release/madcheck")
}

/// The C reproducer of `case` expecting what kernel `old` showed; compiled with plain gcc.
fn reproducer(case: &Case, old: &Path, dir: &Path) -> Result<PathBuf, String> {
    let src = dir.join(format!("{}.c", case.id));
    let mut c = Command::new(madcheck());
    c.arg("repro").args(&case.host_select).arg("--expect").arg(old).arg("--out").arg(&src);
    if util::status(c)? != 0 {
        return Err(format!("madcheck repro of {} failed", case.id));
    }
    let bin = dir.join(&case.id);
    let mut cc = Command::new("gcc");
    cc.args(["-std=c99", "-O2", "-static", "-o"]).arg(&bin).arg(&src);
    if util::status(cc)? != 0 {
        return Err(format!("gcc failed on {}", src.display()));
    }
    Ok(bin)
}

/// Run a binary in a guest of `k` (`madcheck run --exec`): its exit code.
fn run_in(k: &Kernel, bin: &Path) -> Result<i32, String> {
    let name = bin.file_name().and_then(|n| n.to_str()).unwrap_or("repro").to_string();
    let data = std::fs::read(bin).map_err(|e| format!("read {}: {e}", bin.display()))?;
    let out = compare::observe(k, &format!("exec-{name}"), &["--exec".into(), format!("/madcheck/extra/{name}")], &[(name, data)], false)?;
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    let at = text.find("\"exit\":").ok_or(format!("{}: no exit code in the guest's report", out.display()))?;
    let digits: String = text[at + 7..].chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
    digits.parse().map_err(|_| format!("{}: bad exit code", out.display()))
}

/// The kernels of a series (point releases, oldest → newest) or as given.
fn kernel_list(series: Option<&str>, given: &[String], arch: &Option<String>) -> Result<Vec<Kernel>, String> {
    let Some(s) = series else {
        return Ok(given.iter().map(|n| Kernel { name: n.clone(), arch: arch.clone() }).collect());
    };
    let da = crate::debian::deb_arch(arch.as_deref().unwrap_or("x86_64"))?;
    let flavour = crate::debian::flavours(da).first().copied();
    let all = crate::debian::kernels(&crate::debian::Series::parse(s)?, da, flavour)?;
    Ok(crate::debian::point_releases(&all).into_iter().map(|k| Kernel { name: k.name, arch: arch.clone() }).collect())
}

/// A case file on the host as a bisect case.
fn file_case(path: &str, signature: &str) -> Result<Case, String> {
    let data = std::fs::read(path).map_err(|e| format!("{path}: cannot read: {e}"))?;
    let text = String::from_utf8_lossy(&data);
    let stem = Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or("case").to_string();
    // The id madcheck reports is the file's "id" field when it has one (findings do), else the stem.
    let id = text
        .split("\"id\"")
        .nth(1)
        .and_then(|r| r.split('"').nth(1))
        .map(String::from)
        .unwrap_or_else(|| stem.clone());
    let name = format!("{stem}.json");
    Ok(Case {
        id,
        signature: signature.into(),
        select: vec!["--case".into(), format!("/madcheck/extra/{name}")],
        file: Some((name, data)),
        host_select: vec!["--case".into(), path.into()],
    })
}

fn generated_case(seed: u64, index: u64, signature: &str) -> Case {
    let select = vec!["--seed".into(), seed.to_string(), "--scenario".into(), index.to_string()];
    Case { id: format!("gen-{seed}-{index}"), signature: signature.into(), select: select.clone(), file: None, host_select: select }
}

/// With `--generate`: the ends' differences grouped by signature, each group's first scenario, and its
/// shrunk case (shrunk in a guest of the newest kernel, else of the oldest).
fn generated_cases(b: &mut Bisect, generate: u64, seed: u64) -> Result<Vec<Case>, String> {
    let (ka, kb) = (b.kernels[0].clone(), b.kernels[b.kernels.len() - 1].clone());
    let p = compare::two_passes(&ka, &kb, generate, seed, RUNS, std::mem::take(&mut b.build), &b.extra)?;
    b.log.push(format!("ends, digest pass: {}; {} differ", p.digest_header, p.differing.len()));
    let (shown, text, _) = compare::madcheck_compare(&p.a, &p.b, &p.report)?;
    print!("{shown}");
    let mut cases = Vec::new();
    for g in compare::tagged(&text, "GROUP") {
        let Some((sig, ids)) = g.split_first() else { continue };
        let Some(first) = ids.first() else { continue };
        let Some(index) = first.rsplit('-').next().and_then(|i| i.parse::<u64>().ok()) else { continue };
        b.log.push(format!("group {sig}: {} (bisected with {first})", ids.join(" ")));
        cases.push(generated_case(seed, index, sig));
    }
    let mut shrunk = Vec::new();
    for k in [&kb, &ka] {
        let mut args: Vec<String> = vec!["--hunt-shrink".into(), "--seed".into(), seed.to_string()];
        args.extend(b.extra.iter().cloned());
        let todo: Vec<&Case> = cases.iter().filter(|c| !shrunk.iter().any(|s: &Case| s.signature == c.signature)).collect();
        if todo.is_empty() {
            break;
        }
        for c in &todo {
            args.extend(["--scenario".into(), c.select[3].clone()]);
        }
        let t = Instant::now();
        let rep = compare::observe(k, "shrink", &args, &[], false)?;
        let dir = util::target_dir().join("findings");
        let o = Command::new(madcheck()).arg("findings").arg(&rep).arg("--out").arg(&dir).output().map_err(|e| e.to_string())?;
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        b.log.push(format!("shrink on {} ({:.0}s): {}", k.label(), t.elapsed().as_secs_f64(), out.trim().replace('\n', "; ")));
        for f in compare::tagged(&out, "FINDING") {
            let (Some(from), Some(path)) = (f.first(), f.get(1)) else { continue };
            if let Some(c) = todo.iter().find(|c| &c.id == from) {
                shrunk.push(file_case(path, &c.signature)?);
            }
        }
    }
    // The originals stay in the set: when a shrunk case no longer differs between the ends, its group is
    // bisected with the original scenario.
    cases.extend(shrunk);
    Ok(cases)
}

pub fn main(args: &[String]) -> Result<i32, String> {
    let (mut series, mut given, mut arch, mut case, mut generate, mut seed) = (None, Vec::new(), None, None, None, 1u64);
    let (mut report, mut build, mut extra) = (None, true, Vec::new());
    let mut flags = crate::args::Flags::new(args);
    while let Some(f) = flags.next() {
        match f.name {
            "--series" => series = Some(flags.value(&f)?),
            "--kernels" => given = flags.value(&f)?.split(',').map(String::from).collect(),
            "--arch" => arch = Some(flags.value(&f)?),
            "--case" | "--finding" => case = Some(flags.value(&f)?),
            "--generate" => generate = Some(flags.value(&f)?.parse::<u64>().map_err(|_| "--generate: not a number")?),
            "--seed" => seed = flags.value(&f)?.parse().map_err(|_| "--seed: not a number")?,
            "--mutate" => extra.extend(["--mutate".to_string(), flags.value(&f)?]),
            "--report" => report = Some(PathBuf::from(flags.value(&f)?)),
            "--no-build" => build = false,
            _ => return Err(format!("unknown argument {:?} ({USAGE})", f.raw)),
        }
    }
    let start = Instant::now();
    let kernels = kernel_list(series.as_deref(), &given, &arch)?;
    if kernels.len() < 2 {
        return Err(format!("bisect needs at least two kernels, found {} ({USAGE})", kernels.len()));
    }
    compare::build_host(build)?;
    let mut b = Bisect { kernels, cases: Vec::new(), extra, probes: BTreeMap::new(), build, log: Vec::new() };
    b.log.push(format!("kernels: {}", b.kernels.iter().map(Kernel::label).collect::<Vec<_>>().join(" ")));
    eprintln!("xtask bisect: {}", b.log[0]);
    b.cases = match (&case, generate) {
        (Some(f), None) => vec![file_case(f, "case")?],
        (None, Some(n)) => generated_cases(&mut b, n, seed)?,
        _ => return Err(format!("give one of --case FILE, --finding FILE or --generate N ({USAGE})")),
    };
    let n = b.kernels.len();
    // Which cases differ between the ends (three runs each, on both): the ones to bisect.
    let to_bisect: Vec<Case> = if b.cases.is_empty() {
        Vec::new()
    } else {
        let mut v = Vec::new();
        for c in b.cases.clone() {
            let done = v.iter().any(|d: &Case| d.signature == c.signature && d.file.is_some());
            match b.same_as_oldest(n - 1, &c.id) {
                Ok(false) if !done => {
                    v.retain(|d: &Case| d.signature != c.signature);
                    v.push(c)
                }
                Ok(false) => {}
                Ok(true) => b.log.push(format!("{}: the ends agree on it (not bisected)", c.id)),
                Err(Verdict::Flaky) => b.log.push(format!("{}: flaky at the ends, not bisected", c.id)),
                Err(Verdict::Skip(e)) => return Err(format!("an end kernel cannot be tested: {e}")),
            }
        }
        v
    };
    let dir = compare::hunt_dir().join("bisect");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut changes = Vec::new();
    for c in to_bisect {
        let (found, skipped) = search(&mut b, &c.id);
        let mut ch = Change { case: c, found, skipped, fields: String::new(), repro: None };
        if let Ok((old, new)) = ch.found {
            let (po, pn) = (b.probe(old)?, b.probe(new)?);
            let (shown, _, _) = compare::madcheck_compare(&po, &pn, &dir.join(format!("{}.compare.json", ch.case.id)))?;
            ch.fields = shown.lines().filter(|l| l.starts_with(&ch.case.id)).collect::<Vec<_>>().join("\n");
            let bin = reproducer(&ch.case, &po, &dir)?;
            // A guest that cannot run the reproducer costs the check, not the bisect's report: the
            // exit code is then -1 (and `bisect` exits 1, as for any reproducer that does not give 0/1).
            let mut exit_in = |i: usize| {
                run_in(&b.kernels[i], &bin).unwrap_or_else(|e| {
                    eprintln!("xtask bisect: the reproducer did not run in {}: {e}", b.kernels[i].label());
                    b.log.push(format!("reproducer not run in {}: {e}", b.kernels[i].label()));
                    -1
                })
            };
            let (eo, en) = (exit_in(old), exit_in(new));
            ch.repro = Some((bin.with_extension("c"), eo, en));
        }
        changes.push(ch);
    }
    let elapsed = start.elapsed().as_secs_f64();
    // The terminal summary and the JSON report.
    println!("xtask bisect: {} kernels, {} cases, {:.0}s", n, b.cases.len(), elapsed);
    for l in &b.log {
        println!("  {l}");
    }
    let mut js = Vec::new();
    for ch in &changes {
        let label = |i: usize| b.kernels[i].label();
        match &ch.found {
            Ok((o, nw)) => {
                let (src, eo, en) = ch.repro.clone().unwrap_or_default();
                println!("CHANGE {} [{}]: last old {}, first new {}; reproducer {} exits {eo} on {}, {en} on {}", ch.case.id, ch.case.signature, label(*o), label(*nw), src.display(), label(*o), label(*nw));
                println!("  {}", ch.fields);
                js.push(format!(
                    "{{\"case\":{},\"signature\":{},\"select\":{},\"last_old\":{},\"first_new\":{},\"reproducer\":{},\"exit_old\":{eo},\"exit_new\":{en},\"fields\":{},\"skipped\":[{}]}}",
                    json_str(&ch.case.id), json_str(&ch.case.signature), json_str(&ch.case.host_select.join(" ")), json_str(&label(*o)), json_str(&label(*nw)),
                    json_str(&src.display().to_string()), json_str(&ch.fields),
                    ch.skipped.iter().map(|i| json_str(&label(*i))).collect::<Vec<_>>().join(",")
                ));
            }
            Err(why) => {
                println!("NOT BISECTED {} [{}]: {why}", ch.case.id, ch.case.signature);
                js.push(format!("{{\"case\":{},\"signature\":{},\"error\":{}}}", json_str(&ch.case.id), json_str(&ch.case.signature), json_str(why)));
            }
        }
    }
    let kernels_js: Vec<String> = (0..n)
        .map(|i| {
            let st = match b.probes.get(&i) {
                None => "not booted".to_string(),
                Some(Ok(_)) => "ok".to_string(),
                Some(Err(e)) => format!("skipped (125): {e}"),
            };
            format!("{{\"kernel\":{},\"status\":{}}}", json_str(&b.kernels[i].label()), json_str(&st))
        })
        .collect();
    let text = format!(
        "{{\"kind\":\"madcheck-bisect\",\"elapsed_s\":{elapsed:.1},\"kernels\":[{}],\"log\":[{}],\"changes\":[{}]}}\n",
        kernels_js.join(","),
        b.log.iter().map(|l| json_str(l)).collect::<Vec<_>>().join(","),
        js.join(",")
    );
    let report = report.unwrap_or_else(|| dir.join("report.json"));
    std::fs::write(&report, text).map_err(|e| format!("write {}: {e}", report.display()))?;
    println!("report: {}", report.display());
    let bad_repro = changes.iter().any(|c| c.repro.as_ref().is_some_and(|r| (r.1, r.2) != (0, 1)));
    Ok(i32::from(bad_repro))
}
