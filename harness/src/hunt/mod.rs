//! Regression hunting on this kernel: shrink a difference to a small named case, turn a case into a C
//! reproducer, record this kernel's observations, and check a case for `git bisect run`.
//!
//! Invariant: the candidates come from `cases::shrink` (pure); this module only runs them, on one
//! long-lived worker, and keeps a candidate only when the same kind of difference appears at the
//! corresponding point. A shrink result is re-run [`STABILITY_RUNS`] times before it is written, and a
//! result that does not reproduce every time is reported as flaky, never as a finding. Commands return
//! exit codes and never print from library code paths other than the command functions themselves
//! (which `main` calls, as it calls `cmd_run`).

pub mod csource;

/// Print a line to stdout, ignoring a closed pipe (`madcheck shrink ... | head` must not panic).
macro_rules! say {
    ($($t:tt)*) => { say_raw(&(format!($($t)*) + "\n")) };
}

fn say_raw(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

use crate::cli::RunArgs;
use crate::host::{HostRun, Worker};
use crate::runner::{self, Outcome};
use cases::shrink::{self, field_kind};
use cases::{Provenance, Scenario};
use serde::{Deserialize, Serialize};
use simulator::observe::{compare, Difference, Expect, Observation, Verdict};
use simulator::program::{Program, StepId, ARENA};
use simulator::{KernelFacts, KernelModel};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a shrunk result is re-run to call it stable.
pub const STABILITY_RUNS: usize = 3;

/// What `main` lends the hunt commands (its model and pool setup), so both use one implementation.
pub struct Env {
    pub detect_host: fn(Option<&Path>) -> Result<KernelFacts, i32>,
    pub build_model: fn(&RunArgs, &KernelFacts) -> Result<KernelModel, String>,
    pub hugetlb_pool: fn(&mut KernelModel) -> crate::hugepool::HugePool,
}

/// The difference a shrink keeps: at this point, a field of this kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub point: StepId,
    /// `field_kind` of the first differing field (`page[].res`).
    pub kind: String,
}

/// The signature of an outcome: the first divergent point and its first field's kind.
pub fn signature(o: &Outcome) -> Option<(Signature, Vec<Difference>)> {
    let Outcome::Diverge(d) = o else { return None };
    let point = d.step?;
    let first = d.diffs.first()?;
    Some((Signature { point, kind: field_kind(&first.field) }, d.diffs.clone()))
}

/// Does `o` show the difference `want` (at `point`, with a field of `want.kind` among its fields)?
fn shows(o: &Outcome, point: StepId, kind: &str) -> bool {
    match o {
        Outcome::Diverge(d) => d.step == Some(point) && d.diffs.iter().any(|f| field_kind(&f.field) == kind),
        _ => false,
    }
}

/// Something that runs a program and says how it came out: the host kernel against the model.
pub trait Target {
    fn run(&mut self, prog: &Program) -> Outcome;
}

/// The host kernel, judged against a model, on one worker.
pub struct HostTarget {
    pub worker: Worker,
    pub model: KernelModel,
    pub timeout: Duration,
    pub runs: u64,
}

impl HostTarget {
    pub fn new(model: KernelModel, timeout: Duration) -> Result<HostTarget, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the madcheck executable: {e}"))?;
        let worker = Worker::spawn(&exe, None).map_err(|e| format!("cannot start a worker: {e}"))?;
        Ok(HostTarget { worker, model, timeout, runs: 0 })
    }

    /// This kernel's observations of `prog` (poisoned runs retried), or why there are none.
    pub fn observe(&mut self, prog: &Program) -> Result<HostRun, String> {
        if prog.uses_hugetlb() {
            if let Some((why, _)) = runner::hugetlb_refusal(&self.model, prog) {
                return Err(why);
            }
        }
        let mut last = String::new();
        for _ in 0..=runner::POISON_RETRIES {
            self.runs += 1;
            let h = self.worker.run(prog, self.timeout)?;
            match &h.poisoned {
                Some(why) => last = why.clone(),
                None => return Ok(h),
            }
        }
        Err(format!("poisoned on every attempt: {last}"))
    }
}

impl Target for HostTarget {
    fn run(&mut self, prog: &Program) -> Outcome {
        let host = match self.observe(prog) {
            Ok(h) => h,
            Err(why) => return Outcome::Unsupported { reason: why, advice: String::new() },
        };
        let exp = simulator::machine::simulate(&self.model, &ARENA, prog);
        runner::judge(prog, &exp, &host, self.timeout)
    }
}

/// What a shrink produced.
#[derive(Clone, Debug)]
pub struct Shrunk {
    pub program: Program,
    pub signature: Signature,
    /// The differing fields of the final program at its point.
    pub diffs: Vec<Difference>,
    pub runs: u64,
    pub accepted: Vec<String>,
    /// How many of the [`STABILITY_RUNS`] re-runs showed the difference.
    pub stable_runs: usize,
}

/// Greedy shrink: take the first candidate that still shows the difference, start over from it, stop
/// when none does. `None` when the original does not show a difference at all.
pub fn shrink_program(target: &mut dyn Target, prog: &Program) -> Option<Shrunk> {
    let first = target.run(prog);
    let (mut sig, mut diffs) = signature(&first)?;
    let mut cur = prog.clone();
    let mut runs = 1;
    let mut accepted = Vec::new();
    'outer: loop {
        for c in shrink::candidates(&cur, Some(sig.point.step)) {
            let Some(point) = c.point(sig.point) else { continue };
            runs += 1;
            let o = target.run(&c.program);
            if shows(&o, point, &sig.kind) {
                if let Outcome::Diverge(d) = &o {
                    diffs = d.diffs.clone();
                }
                sig.point = point;
                cur = c.program;
                accepted.push(c.what);
                continue 'outer;
            }
        }
        break;
    }
    let mut stable_runs = 0;
    for _ in 0..STABILITY_RUNS {
        runs += 1;
        if shows(&target.run(&cur), sig.point, &sig.kind) {
            stable_runs += 1;
        }
    }
    Some(Shrunk { program: cur, signature: sig, diffs, runs, accepted, stable_runs })
}

/// A snake_case id for a finding: the call at its point, the field kind, and a hash of the program.
pub fn finding_id(prog: &Program, sig: &Signature) -> String {
    let call = match prog.step(sig.point) {
        Some(simulator::Step::Madvise { advice, .. }) => advice.label().to_ascii_lowercase(),
        Some(s) => s.op().to_string(),
        None => "step".into(),
    };
    let kind: String = sig.kind.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let kind: Vec<&str> = kind.split('_').filter(|s| !s.is_empty()).collect();
    let json = serde_json::to_vec(prog).unwrap_or_default();
    let h = crate::goldens::fnv1a64(&json) & 0xffff_ffff;
    let call: String = call.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{call}_{}_differs_{h:08x}", kind.join("_"))
}

/// A scenario file (FORMAT.md) with a provenance object, as a JSON value.
pub fn case_json(id: &str, description: &str, provenance: serde_json::Value, prog: &Program) -> serde_json::Value {
    let mut v = serde_json::json!({ "id": id, "description": description, "provenance": provenance });
    if let (Some(obj), Ok(serde_json::Value::Object(p))) = (v.as_object_mut(), serde_json::to_value(prog)) {
        obj.extend(p);
    }
    v
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// The default findings directory: `target/findings` of the checkout madcheck was built from.
pub fn default_findings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/findings")
}

/// Own flags of the hunt commands, taken out before the rest goes through the `run` parser.
struct Own {
    out: Option<PathBuf>,
    expect: Option<String>,
    rest: Vec<String>,
}

fn split_own(args: &[String]) -> Result<Own, String> {
    let mut own = Own { out: None, expect: None, rest: vec!["run".into()] };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        if flag == "--out" || flag == "--expect" {
            let v = inline.or_else(|| it.next().cloned()).ok_or(format!("{flag} needs a value"))?;
            if flag == "--out" {
                own.out = Some(PathBuf::from(v));
            } else {
                own.expect = Some(v);
            }
        } else {
            own.rest.push(a.clone());
        }
    }
    Ok(own)
}

fn parse(sub: &str, args: &[String]) -> Result<(Own, RunArgs), String> {
    let own = split_own(args)?;
    match crate::cli::parse(&own.rest) {
        Ok(crate::cli::Command::Run(a)) => Ok((own, a)),
        Ok(_) => Err(format!("{sub}: unexpected arguments")),
        Err(e) => Err(format!("{sub}: {e}")),
    }
}

/// The one scenario `--case FILE` or `--seed S --scenario I` names.
fn one_scenario(sub: &str, a: &RunArgs) -> Result<Scenario, String> {
    match (a.cases.as_slice(), a.scenarios.as_slice()) {
        ([f], []) => {
            let s = cases::load_scenario(f).map_err(|e| e.to_string())?;
            cases::validate(&s).map_err(|e| e.to_string())?;
            Ok(s)
        }
        ([], [i]) => Ok(cases::generate(a.seed, *i)),
        _ => Err(format!("{sub} needs exactly one --case FILE or --seed S --scenario I")),
    }
}

pub const USAGE: &str = "\
  madcheck shrink (--case FILE | --seed S --scenario I) [--out DIR] [--mutate NAME]... [--profile-facts P]
  madcheck repro --case FILE | --seed S --scenario I [--expect model|FILE] [--out FILE.c] [--mutate NAME]...
  madcheck record (--case FILE | --seed S --scenario I) [--out FILE]
  madcheck check (--case FILE | --cases DIR) [--expect golden|model|FILE]
  madcheck run --record-observations digest|full [run flags] --report FILE   (an observation set)
  madcheck compare A.json B.json [--report FILE]   (two observation sets, point by point)";

/// Dispatch a hunt subcommand; `None` when `args` is not one.
pub fn main(args: &[String], env: &Env) -> Option<i32> {
    let sub = args.first()?.as_str();
    let rest = &args[1..];
    let r = match sub {
        "shrink" => cmd_shrink(rest, env),
        "repro" => cmd_repro(rest, env),
        "record" => cmd_record(rest, env),
        "check" => cmd_check(rest, env),
        "compare" => cmd_compare(rest),
        // A run that records this kernel's observations instead of judging them (what a guest does for
        // `cargo xtask compare` and `bisect`): the report is an observation set.
        "run" if rest.iter().any(|a| GUEST_MODES.iter().any(|m| a.split('=').next() == Some(*m))) => cmd_guest_run(rest, env),
        _ => return None,
    };
    Some(match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("madcheck: {e}");
            2
        }
    })
}

/// Host facts and the model, or the exit code (1: cannot detect; 2: bad --profile-facts).
fn setup(a: &RunArgs, env: &Env) -> Result<(KernelFacts, KernelModel), i32> {
    let host = (env.detect_host)(a.kernel_config.as_deref())?;
    let model = (env.build_model)(a, &host).map_err(|e| {
        eprintln!("madcheck: {e}");
        2
    })?;
    Ok((host, model))
}

fn provenance_of(s: &Scenario) -> serde_json::Value {
    match &s.provenance {
        Provenance::Generated { seed, index } => serde_json::json!({ "seed": seed, "index": index }),
        Provenance::File { path } => serde_json::json!({ "path": path }),
    }
}

fn cmd_shrink(args: &[String], env: &Env) -> Result<i32, String> {
    let (own, a) = parse("shrink", args)?;
    let scenario = one_scenario("shrink", &a)?;
    let (host, mut model) = match setup(&a, env) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let _pool = (env.hugetlb_pool)(&mut model);
    let mut target = HostTarget::new(model.clone(), Duration::from_millis(a.timeout_ms))?;
    let start = Instant::now();
    let Some(s) = shrink_program(&mut target, &scenario.program) else {
        say!("shrink {}: no difference between this kernel and the model: nothing to shrink", scenario.id);
        return Ok(1);
    };
    let elapsed = start.elapsed();
    let (before, after) = (shrink::size(&scenario.program), shrink::size(&s.program));
    say!(
        "shrink {}: {} at {} ({} steps, {} maps, {} files, {} arena pages -> {} steps, {} maps, {} files, {} arena pages) in {} runs, {:.2} s",
        scenario.id, s.signature.kind, s.signature.point, before.0, before.1, before.2, before.3, after.0, after.1, after.2, after.3,
        s.runs, elapsed.as_secs_f64()
    );
    for w in &s.accepted {
        say!("  kept: {w}");
    }
    if s.stable_runs < STABILITY_RUNS {
        say!("FLAKY: the shrunk case showed the difference in {} of {STABILITY_RUNS} re-runs; not written as a finding", s.stable_runs);
        return Ok(1);
    }
    let id = finding_id(&s.program, &s.signature);
    let dir = own.out.clone().unwrap_or_else(default_findings_dir);
    let prov = serde_json::json!({
        "kind": "shrunk",
        "from": provenance_of(&scenario),
        "from_id": scenario.id,
        "kernel": host.release,
        "arch": host.arch,
        "page_size": host.page_size,
        "model": model.profile,
        "mutations": model.mutations.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "point": s.signature.point.to_string(),
        "kind_of_difference": s.signature.kind,
        "differed": s.diffs,
        "runs": s.runs,
        "stable_runs": s.stable_runs,
    });
    let desc = format!("shrunk from {}: {} differs at {} on {}", scenario.id, s.signature.kind, s.signature.point, host.release);
    let json = case_json(&id, &desc, prov, &s.program);
    let path = dir.join(format!("{id}.json"));
    write_file(&path, &(serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"))?;
    // Every finding gets its reproducer, against the model it was shrunk against.
    let exp = simulator::machine::simulate(&model, &ARENA, &s.program);
    let c = repro_source(&id, &s.program, &exp, model.page_size, vec![desc.clone(), format!("expectation: the model {}", model.profile)]);
    let cpath = dir.join(format!("{id}.c"));
    write_file(&cpath, &c)?;
    for d in &s.diffs {
        say!("  {}:\n    expected  {}\n    observed  {}", d.field, d.expected, d.observed);
    }
    say!("  finding: {}\n  reproducer: {}", path.display(), cpath.display());
    Ok(0)
}

/// The C reproducer of `prog` against `points`.
pub fn repro_source(id: &str, prog: &Program, points: &[(StepId, Expect)], page_size: u64, about: Vec<String>) -> String {
    let calls = points.iter().map(|(pid, _)| crate::render::render_point(prog, *pid)).collect();
    csource::generate(&csource::Repro { id, program: prog, points, calls, page_size, about })
}

/// One kernel's observations of one scenario (`madcheck record`; `--expect FILE` reads it back).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recording {
    pub scenario: String,
    pub kernel: String,
    pub arch: String,
    pub page_size: u64,
    pub points: Vec<RecordedPoint>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedPoint {
    pub id: StepId,
    pub obs: Observation,
}

pub fn load_recording(path: &Path) -> Result<Recording, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a madcheck recording (madcheck record): {e}", path.display()))
}

fn cmd_record(args: &[String], env: &Env) -> Result<i32, String> {
    let (own, a) = parse("record", args)?;
    let scenario = one_scenario("record", &a)?;
    let (host, mut model) = match setup(&a, env) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let _pool = (env.hugetlb_pool)(&mut model);
    let mut target = HostTarget::new(model, Duration::from_millis(a.timeout_ms))?;
    let run = match target.observe(&scenario.program) {
        Ok(r) => r,
        Err(why) => {
            eprintln!("madcheck: record {}: cannot run here: {why}", scenario.id);
            return Ok(125);
        }
    };
    let rec = Recording {
        scenario: scenario.id.clone(),
        kernel: host.release,
        arch: host.arch,
        page_size: host.page_size,
        points: run.points.into_iter().map(|(id, obs)| RecordedPoint { id, obs }).collect(),
    };
    let text = serde_json::to_string_pretty(&rec).unwrap_or_default() + "\n";
    match own.out {
        Some(p) => write_file(&p, &text)?,
        None => say_raw(&text),
    }
    Ok(0)
}

fn cmd_repro(args: &[String], env: &Env) -> Result<i32, String> {
    let (own, a) = parse("repro", args)?;
    let scenario = one_scenario("repro", &a)?;
    let prog = &scenario.program;
    let (points, page_size, about) = match own.expect.as_deref() {
        None | Some("model") => {
            // The model needs no kernel when the facts are given.
            let host = match &a.profile_facts {
                Some(_) => KernelFacts::profile("6.18").expect("known profile"),
                None => match (env.detect_host)(a.kernel_config.as_deref()) {
                    Ok(f) => f,
                    Err(code) => return Ok(code),
                },
            };
            let model = (env.build_model)(&a, &host)?;
            let exp = simulator::machine::simulate(&model, &ARENA, prog);
            (exp, model.page_size, format!("expectation: the model {} (mutations: {:?})", model.profile, model.mutations))
        }
        Some(file) => {
            let rec = load_recording(Path::new(file))?;
            if rec.scenario != scenario.id {
                eprintln!("madcheck: warning: {file} records scenario {}, not {}", rec.scenario, scenario.id);
            }
            let pts: Vec<(StepId, Observation)> = rec.points.iter().map(|p| (p.id, p.obs.clone())).collect();
            (csource::exact_points(&pts), rec.page_size, format!("expectation: what {} ({}) showed, recorded in {file}", rec.kernel, rec.arch))
        }
    };
    let src = repro_source(&scenario.id.replace('-', "_"), prog, &points, page_size, vec![format!("scenario: {}", scenario.origin()), about]);
    match own.out {
        Some(p) => write_file(&p, &src)?,
        None => say_raw(&src),
    }
    Ok(0)
}

/// `madcheck check`: 0 every case behaves as expected, 1 one does not, 125 none could be tested here.
fn cmd_check(args: &[String], env: &Env) -> Result<i32, String> {
    let (own, a) = parse("check", args)?;
    let mut list = Vec::new();
    for f in &a.cases {
        list.push(cases::load_scenario(f).map_err(|e| e.to_string())?);
    }
    for d in &a.case_dirs {
        list.extend(cases::load_dir(d).map_err(|e| e.to_string())?);
    }
    if list.is_empty() {
        return Err("check needs --case FILE or --cases DIR".into());
    }
    let (_host, mut model) = match setup(&a, env) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let _pool = (env.hugetlb_pool)(&mut model);
    let timeout = Duration::from_millis(a.timeout_ms);
    let (mut good, mut bad, mut untestable) = (0, 0, 0);
    match own.expect.as_deref() {
        Some("golden") => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let refs: Vec<&Scenario> = list.iter().collect();
            let root = a.goldens.clone().unwrap_or_else(crate::goldens::snapshot_root);
            let c = crate::goldens::check_host(&model, &refs, &root, &exe, timeout);
            say_raw(&crate::goldens::render_check(&c, 20));
            bad = c.mismatches.len();
            untestable = c.missing.len() + c.skipped.len();
            good = c.checked as usize - bad;
        }
        None | Some("model") => {
            let mut target = HostTarget::new(model.clone(), timeout)?;
            for s in &list {
                match target.run(&s.program) {
                    Outcome::Match => good += 1,
                    Outcome::Diverge(d) => {
                        bad += 1;
                        say!("BAD {}: {} at {}", s.id, d.diffs.first().map_or("?", |f| f.field.as_str()), d.step.map_or("?".into(), |p| p.to_string()));
                        for f in &d.diffs {
                            say!("  {}:\n    expected  {}\n    observed  {}", f.field, f.expected, f.observed);
                        }
                    }
                    Outcome::Unsupported { reason, .. } | Outcome::Poisoned(reason) | Outcome::InfraError(reason) => {
                        untestable += 1;
                        say!("SKIP {}: {reason}", s.id);
                    }
                }
            }
        }
        Some(file) => {
            let rec = load_recording(Path::new(file))?;
            let [s] = list.as_slice() else {
                return Err("check --expect FILE takes one --case (the scenario the recording is of)".into());
            };
            let mut target = HostTarget::new(model.clone(), timeout)?;
            match target.observe(&s.program) {
                Err(why) => {
                    untestable += 1;
                    say!("SKIP {}: {why}", s.id);
                }
                Ok(run) => match first_difference(&rec, &run.points) {
                    None => good += 1,
                    Some((id, diffs)) => {
                        bad += 1;
                        say!("BAD {}: differs from {} at {id}", s.id, rec.kernel);
                        for f in &diffs {
                            say!("  {}:\n    expected  {}\n    observed  {}", f.field, f.expected, f.observed);
                        }
                    }
                },
            }
        }
    }
    say!("check: {good} good, {bad} bad, {untestable} cannot be tested here");
    Ok(if bad > 0 {
        1
    } else if good == 0 {
        125
    } else {
        0
    })
}

/// The first point where `points` differs from a recording (every field, exactly), with its fields.
pub fn first_difference(rec: &Recording, points: &[(StepId, Observation)]) -> Option<(String, Vec<Difference>)> {
    let want: Vec<(StepId, Observation)> = rec.points.iter().map(|p| (p.id, p.obs.clone())).collect();
    let exact = csource::exact_points(&want);
    for i in 0..exact.len().max(points.len()) {
        match (exact.get(i), points.get(i)) {
            (Some((wid, e)), Some((hid, o))) if wid == hid => {
                if let Verdict::Diverge(d) = compare(e, o) {
                    return Some((wid.to_string(), d));
                }
            }
            (w, h) => {
                let ids = |v: &mut dyn Iterator<Item = StepId>| v.map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
                let d = Difference {
                    field: "points".into(),
                    expected: format!("[{}]", ids(&mut exact.iter().map(|x| x.0))),
                    observed: format!("[{}]", ids(&mut points.iter().map(|x| x.0))),
                };
                let at = w.map(|x| x.0).or(h.map(|x| x.0)).map_or("?".into(), |x| x.to_string());
                return Some((at, vec![d]));
            }
        }
    }
    None
}

/// One scenario's observations in an observation set: a digest per point, and the points themselves
/// when recorded `full`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioObs {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// `(point, fnv1a64 of the observation's JSON)`.
    pub digests: Vec<(StepId, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<RecordedPoint>,
    /// Why the scenario could not run here (never compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Repeated runs of the scenario showed different observations.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flaky: bool,
}

/// Everything one kernel showed for a list of scenarios (`madcheck run --record-observations`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObservationSet {
    pub kind: String,
    pub kernel: String,
    pub arch: String,
    pub page_size: u64,
    pub profile: String,
    pub facts: KernelFacts,
    pub scenarios: usize,
    pub elapsed_s: f64,
    pub exit_code: i32,
    pub observations: Vec<ScenarioObs>,
}

pub const OBSERVATION_SET: &str = "madcheck-observations";

fn digest(o: &Observation) -> String {
    format!("{:016x}", crate::goldens::fnv1a64(&serde_json::to_vec(o).unwrap_or_default()))
}

/// The `run` flags that make a guest (or the host) do a hunting job instead of the judged run; the
/// result goes to `--report`, which a guest prints on its console (`init.rs`).
pub const GUEST_MODES: [&str; 3] = ["--record-observations", "--hunt-shrink", "--exec"];

/// What a hunting `run` was asked to do.
#[derive(Default)]
struct GuestJob {
    record: Option<String>,
    repeat: usize,
    shrink: bool,
    exec: Option<PathBuf>,
}

fn cmd_guest_run(args: &[String], env: &Env) -> Result<i32, String> {
    let mut job = GuestJob { repeat: 1, ..GuestJob::default() };
    let mut rest = vec!["run".to_string()];
    let mut it = args.iter();
    while let Some(x) = it.next() {
        let (flag, inline) = match x.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (x.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned()).ok_or(format!("{flag} needs a value"));
        match flag {
            "--record-observations" => job.record = Some(value()?),
            "--repeat" => job.repeat = value()?.parse().map_err(|_| "--repeat: not a number".to_string())?,
            "--hunt-shrink" => job.shrink = true,
            "--exec" => job.exec = Some(PathBuf::from(value()?)),
            _ => rest.push(x.clone()),
        }
    }
    let a = match crate::cli::parse(&rest) {
        Ok(crate::cli::Command::Run(a)) => a,
        Ok(_) => return Err("run: unexpected arguments".into()),
        Err(e) => return Err(e.to_string()),
    };
    if let Some(exe) = &job.exec {
        return guest_exec(exe, &a);
    }
    if job.shrink {
        return guest_shrink(&a, env);
    }
    let full = match job.record.as_deref() {
        Some("digest") => false,
        Some("full") => true,
        other => return Err(format!("--record-observations: {other:?} is not digest or full")),
    };
    record_run(&a, env, full, job.repeat.max(1))
}

/// Run a program (a C reproducer) and report its exit code and output.
fn guest_exec(exe: &Path, a: &RunArgs) -> Result<i32, String> {
    let o = std::process::Command::new(exe).output().map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let code = o.status.code().unwrap_or(128);
    let v = serde_json::json!({
        "kind": "madcheck-exec", "exe": exe.display().to_string(), "exit": code,
        "output": format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        "kernel": crate::detect::detect_host().map(|f| f.release).unwrap_or_default(),
        "scenarios": 0, "exit_code": 0,
    });
    let text = v.to_string() + "\n";
    match &a.report {
        Some(p) => write_file(p, &text)?,
        None => say_raw(&text),
    }
    Ok(0)
}

/// The selected scenarios of a run: case files, directories, `--scenario` indexes, then generated.
fn selected(a: &RunArgs) -> Result<Vec<Scenario>, String> {
    let mut list: Vec<Scenario> = Vec::new();
    for f in &a.cases {
        list.push(cases::load_scenario(f).map_err(|e| e.to_string())?);
    }
    for d in &a.case_dirs {
        list.extend(cases::load_dir(d).map_err(|e| e.to_string())?);
    }
    let mut seen = std::collections::BTreeSet::new();
    for &i in a.scenarios.iter().chain(&(0..a.generate_count()).collect::<Vec<_>>()) {
        if seen.insert(i) {
            list.push(cases::generate(a.seed, i));
        }
    }
    Ok(list)
}

/// Record the observations of every selected scenario on this kernel, `repeat` times each.
fn record_run(a: &RunArgs, env: &Env, full: bool, repeat: usize) -> Result<i32, String> {
    let list = selected(a)?;
    let (host, mut model) = match setup(a, env) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let _pool = (env.hugetlb_pool)(&mut model);
    let mut target = HostTarget::new(model.clone(), Duration::from_millis(a.timeout_ms))?;
    let start = Instant::now();
    let mut out: Vec<ScenarioObs> = Vec::with_capacity(list.len());
    for s in &list {
        let (seed, index) = match s.provenance {
            Provenance::Generated { seed, index } => (Some(seed), Some(index)),
            Provenance::File { .. } => (None, None),
        };
        let mut so = ScenarioObs { id: s.id.clone(), seed, index, digests: vec![], points: vec![], skipped: None, flaky: false };
        for r in 0..repeat {
            match target.observe(&s.program) {
                Ok(run) => {
                    let d: Vec<(StepId, String)> = run.points.iter().map(|(id, o)| (*id, digest(o))).collect();
                    if r == 0 {
                        so.digests = d;
                        if full {
                            so.points = run.points.into_iter().map(|(id, obs)| RecordedPoint { id, obs }).collect();
                        }
                    } else if d != so.digests {
                        so.flaky = true;
                    }
                }
                Err(why) => {
                    so.skipped = Some(why);
                    break;
                }
            }
        }
        out.push(so);
    }
    let set = ObservationSet {
        kind: OBSERVATION_SET.into(),
        kernel: host.release.clone(),
        arch: host.arch.clone(),
        page_size: host.page_size,
        profile: model.profile.clone(),
        facts: host,
        scenarios: out.len(),
        elapsed_s: start.elapsed().as_secs_f64(),
        exit_code: 0,
        observations: out,
    };
    let text = serde_json::to_string(&set).unwrap_or_default() + "\n";
    match &a.report {
        Some(p) => write_file(p, &text)?,
        None => say_raw(&text),
    }
    Ok(0)
}

pub fn load_set(path: &Path) -> Result<ObservationSet, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    // A guest's report wraps the set: {"guest": ..., "report": set}.
    let v = if v.get("report").is_some() { v["report"].clone() } else { v };
    serde_json::from_value(v).map_err(|e| format!("{}: not an observation set (madcheck run --record-observations): {e}", path.display()))
}

/// The named behaviours (fields of `KernelModel`) whose values differ between two kernels' models.
pub fn behaviour_differences(a: &KernelModel, b: &KernelModel) -> Vec<String> {
    let (Ok(serde_json::Value::Object(x)), Ok(serde_json::Value::Object(y))) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return vec![];
    };
    x.iter()
        .filter(|(k, v)| !matches!(k.as_str(), "profile" | "facts" | "mutations") && y.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {} -> {}", v, y.get(k).cloned().unwrap_or_default()))
        .collect()
}

/// One scenario that the two kernels showed differently.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KernelDifference {
    pub scenario: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The first point whose observation differs.
    pub point: String,
    /// The fields that differ there (only when both sets were recorded full).
    pub fields: Vec<Difference>,
    /// `explained`: the two kernels' models also answer differently at that point (with the behaviours
    /// whose values differ); `unexplained`: they answer the same, so one kernel disagrees with its model.
    pub class: String,
    pub behaviours: Vec<String>,
}

/// Compare two observation sets point by point (digests, and the fields where recorded full).
pub fn compare_sets(a: &ObservationSet, b: &ObservationSet) -> Vec<KernelDifference> {
    let ma = KernelModel::from_facts(a.facts.clone());
    let mb = KernelModel::from_facts(b.facts.clone());
    let behaviours = behaviour_differences(&ma, &mb);
    let by_id: std::collections::HashMap<&str, &ScenarioObs> = b.observations.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut out = Vec::new();
    for sa in &a.observations {
        let Some(sb) = by_id.get(sa.id.as_str()) else { continue };
        if sa.skipped.is_some() || sb.skipped.is_some() || sa.digests == sb.digests {
            continue;
        }
        let at = sa.digests.iter().zip(&sb.digests).position(|(x, y)| x != y).unwrap_or(sa.digests.len().min(sb.digests.len()));
        let point = sa.digests.get(at).or(sb.digests.get(at)).map(|p| p.0);
        let fields = match (sa.points.get(at), sb.points.get(at)) {
            (Some(pa), Some(pb)) if pa.id == pb.id => {
                let exp = csource::exact_points(&[(pa.id, pa.obs.clone())]);
                match compare(&exp[0].1, &pb.obs) {
                    Verdict::Diverge(d) => d,
                    _ => vec![],
                }
            }
            _ if sa.digests.len() != sb.digests.len() => vec![Difference {
                field: "points".into(),
                expected: format!("{} points", sa.digests.len()),
                observed: format!("{} points", sb.digests.len()),
            }],
            _ => vec![],
        };
        // Explained when the models, given the same scenario, answer differently at this point.
        let explained = match (sa.seed, sa.index, point) {
            (Some(seed), Some(index), Some(p)) => {
                let s = cases::generate(seed, index);
                let ea = simulator::machine::simulate(&ma, &ARENA, &s.program);
                let eb = simulator::machine::simulate(&mb, &ARENA, &s.program);
                let get = |e: &[(StepId, Expect)]| e.iter().find(|x| x.0 == p).map(|x| x.1.clone());
                get(&ea) != get(&eb)
            }
            _ => false,
        };
        out.push(KernelDifference {
            scenario: sa.id.clone(),
            seed: sa.seed,
            index: sa.index,
            point: point.map_or("?".into(), |p| p.to_string()),
            fields,
            class: if explained { "explained".into() } else { "unexplained".into() },
            behaviours: if explained { behaviours.clone() } else { vec![] },
        });
    }
    out
}

fn cmd_compare(args: &[String]) -> Result<i32, String> {
    let mut files = Vec::new();
    let mut report = None;
    let mut it = args.iter();
    while let Some(x) = it.next() {
        if x == "--report" {
            report = Some(PathBuf::from(it.next().ok_or("--report needs a value")?));
        } else if x.starts_with("--") {
            return Err(format!("compare: unknown flag {x}"));
        } else {
            files.push(PathBuf::from(x));
        }
    }
    let [fa, fb] = files.as_slice() else { return Err("compare takes two observation sets: A.json B.json".into()) };
    let (a, b) = (load_set(fa)?, load_set(fb)?);
    let diffs = compare_sets(&a, &b);
    let both = a.observations.iter().filter(|s| s.skipped.is_none()).count();
    say!("madcheck compare: {} ({}) vs {} ({}), {} scenarios", a.kernel, a.arch, b.kernel, b.arch, both);
    say!("{:<14} {:<10} {:<12} {:<28} {}", "scenario", "point", "class", "field", "A -> B");
    for d in &diffs {
        let f = d.fields.first();
        say!(
            "{:<14} {:<10} {:<12} {:<28} {}",
            d.scenario,
            d.point,
            d.class,
            f.map_or("(digest)", |f| f.field.as_str()),
            f.map_or(String::new(), |f| format!("{} -> {}", f.expected, f.observed))
        );
    }
    let unexplained = diffs.iter().filter(|d| d.class == "unexplained").count();
    // For xtask (std only): the generated scenarios that differ, one machine-readable line.
    let idx: Vec<String> = diffs.iter().filter_map(|d| d.index.map(|i| format!("{}:{i}", d.seed.unwrap_or(0)))).collect();
    say!("MADCHECK-DIFFERING {}", idx.join(" "));
    say!("{} differences: {} explained, {unexplained} unexplained", diffs.len(), diffs.len() - unexplained);
    if let Some(bh) = diffs.iter().find(|d| d.class == "explained").map(|d| d.behaviours.clone()) {
        say!("behaviours that differ between the two models: {}", bh.join("; "));
    }
    if let Some(p) = report {
        let v = serde_json::json!({ "a": {"kernel": a.kernel, "arch": a.arch}, "b": {"kernel": b.kernel, "arch": b.arch},
            "scenarios": both, "differences": diffs, "unexplained": unexplained });
        write_file(&p, &(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"))?;
    }
    Ok(i32::from(unexplained > 0))
}

/// Shrink every selected scenario that diverges from the model (in a guest: from the model of the other
/// kernel, given as `--profile-facts`), and report the findings as case JSON.
fn guest_shrink(a: &RunArgs, env: &Env) -> Result<i32, String> {
    let list = selected(a)?;
    let (host, mut model) = match setup(a, env) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let _pool = (env.hugetlb_pool)(&mut model);
    let mut target = HostTarget::new(model.clone(), Duration::from_millis(a.timeout_ms))?;
    let mut findings = Vec::new();
    for sc in &list {
        let Some(s) = shrink_program(&mut target, &sc.program) else {
            findings.push(serde_json::json!({ "from": sc.id, "none": "no difference from the model" }));
            continue;
        };
        let id = finding_id(&s.program, &s.signature);
        let prov = serde_json::json!({
            "kind": "shrunk", "from": provenance_of(sc), "from_id": sc.id, "kernel": host.release, "arch": host.arch,
            "page_size": host.page_size, "model": model.profile, "point": s.signature.point.to_string(),
            "kind_of_difference": s.signature.kind, "differed": s.diffs, "runs": s.runs, "stable_runs": s.stable_runs,
        });
        let desc = format!("shrunk from {}: {} differs at {} on {} (model {})", sc.id, s.signature.kind, s.signature.point, host.release, model.profile);
        findings.push(serde_json::json!({ "from": sc.id, "id": id, "stable_runs": s.stable_runs, "case": case_json(&id, &desc, prov, &s.program) }));
    }
    let v = serde_json::json!({ "kind": "madcheck-shrink", "kernel": host.release, "model": model.profile,
        "scenarios": list.len(), "exit_code": 0, "findings": findings });
    let text = v.to_string() + "\n";
    match &a.report {
        Some(p) => write_file(p, &text)?,
        None => say_raw(&text),
    }
    Ok(0)
}
