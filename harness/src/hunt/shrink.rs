//! Shrinking: run `cases::shrink` candidates on a target and keep the first that still shows the same
//! kind of difference at the corresponding point; every result is re-run [`STABILITY_RUNS`] times and a
//! result that does not reproduce every time is flaky, never a finding.

use crate::cli::RunArgs;
use crate::host::{HostRun, Worker};
use crate::run::{judge::{self as runner, Outcome}, runner::POISON_RETRIES};
use cases::shrink::{self as cshrink, field_kind};
use serde::{Deserialize, Serialize};
use simulator::observe::{Difference, Expect};
use simulator::program::{Program, StepId, ARENA};
use simulator::KernelModel;
use std::time::{Duration, Instant};
use super::*;

/// How often a shrunk result is re-run to call it stable.
pub const STABILITY_RUNS: usize = 3;

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
            if let Some((why, _)) = runner::hugetlb_refusal(&self.model, prog, crate::host::guest::disposable_guest()) {
                return Err(why);
            }
        }
        let mut last = String::new();
        for _ in 0..=POISON_RETRIES {
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
        let exp = simulator::simulate(&self.model, &ARENA, prog);
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
        for c in cshrink::candidates(&cur, Some(sig.point.step)) {
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
    let h = crate::out::goldens::fnv1a64(&json) & 0xffff_ffff;
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

pub(super) fn cmd_shrink(args: &[String], env: &Env) -> Result<i32, String> {
    let (own, a, scenario) = parse_one("shrink", args)?;
    let mut session = match setup(&a, env)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let (host, model) = (session.host.clone(), session.model.clone());
    let target = &mut session.target;
    let start = Instant::now();
    let Some(s) = shrink_program(target, &scenario.program) else {
        say!("shrink {}: no difference between this kernel and the model: nothing to shrink", scenario.id);
        return Ok(1);
    };
    let elapsed = start.elapsed();
    let (before, after) = (cshrink::size(&scenario.program), cshrink::size(&s.program));
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
    let dir = own.out.clone().unwrap_or_else(default_findings_dir);
    let (path, cpath) = write_finding(&dir, &scenario, &s, &host, &model)?;
    for d in &s.diffs {
        say!("  {}:\n    expected  {}\n    observed  {}", d.field, d.expected, d.observed);
    }
    say!("  finding: {}\n  reproducer: {}", path.display(), cpath.display());
    Ok(0)
}

/// A shrunk result as a named case: its id, description and the case JSON, whose provenance says where
/// it came from (seed and index or file), the kernel, arch and page size, the model, and what differed.
pub fn finding_case(from: &Scenario, s: &Shrunk, host: &KernelFacts, model: &KernelModel) -> (String, String, serde_json::Value) {
    let id = finding_id(&s.program, &s.signature);
    let prov = serde_json::json!({
        "kind": "shrunk",
        "from": provenance_of(from),
        "from_id": from.id,
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
    let desc = format!("shrunk from {}: {} differs at {} on {} (model {})", from.id, s.signature.kind, s.signature.point, host.release, model.profile);
    let json = case_json(&id, &desc, prov, &s.program);
    (id, desc, json)
}

/// Write a finding (`<dir>/<id>.json`) and its C reproducer against the model it was shrunk against
/// (`<dir>/<id>.c`).
pub fn write_finding(dir: &Path, from: &Scenario, s: &Shrunk, host: &KernelFacts, model: &KernelModel) -> Result<(PathBuf, PathBuf), String> {
    let (id, desc, json) = finding_case(from, s, host, model);
    let path = dir.join(format!("{id}.json"));
    write_file(&path, &(serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"))?;
    let exp = simulator::simulate(model, &ARENA, &s.program);
    let c = repro_source(&id, &s.program, &exp, model.page_size, vec![desc, format!("expectation: the model {}", model.profile)]);
    let cpath = dir.join(format!("{id}.c"));
    write_file(&cpath, &c)?;
    Ok((path, cpath))
}

/// What `madcheck run` does after a run with divergences: shrink the first divergent scenario of each
/// signature (at most `max` of them) on one worker and write each stable result as a finding under
/// `dir`. Returns the lines to print.
pub fn shrink_divergences(model: &KernelModel, host: &KernelFacts, divergent: &[Scenario], dir: &Path, timeout: Duration, max: usize) -> Vec<String> {
    let mut target = match HostTarget::new(model.clone(), timeout) {
        Ok(t) => t,
        Err(e) => return vec![format!("shrink: {e}")],
    };
    let (mut lines, mut seen) = (Vec::new(), Vec::new());
    for sc in divergent {
        if seen.len() >= max {
            lines.push(format!("shrink: {max} findings written; the other divergences are not shrunk (madcheck shrink --case/--scenario)"));
            break;
        }
        let Some((sig, _)) = signature(&target.run(&sc.program)) else { continue };
        let key = (sig.kind.clone(), sc.program.step(sig.point).map(|s| s.op()));
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let t = Instant::now();
        match shrink_program(&mut target, &sc.program) {
            Some(s) if s.stable_runs == STABILITY_RUNS => match write_finding(dir, sc, &s, host, model) {
                Ok((p, c)) => lines.push(format!(
                    "shrunk {} ({} steps -> {}, {} runs, {:.1} s): {} (reproducer {})",
                    sc.id, sc.program.steps.len(), s.program.steps.len(), s.runs, t.elapsed().as_secs_f64(), p.display(), c.display()
                )),
                Err(e) => lines.push(format!("shrink {}: {e}", sc.id)),
            },
            Some(s) => lines.push(format!("shrink {}: FLAKY ({} of {STABILITY_RUNS} re-runs), not written", sc.id, s.stable_runs)),
            None => lines.push(format!("shrink {}: the divergence did not reproduce on a re-run", sc.id)),
        }
    }
    lines
}

/// The C reproducer of `prog` against `points`.
pub fn repro_source(id: &str, prog: &Program, points: &[(StepId, Expect)], page_size: u64, about: Vec<String>) -> String {
    let calls = points.iter().map(|(pid, _)| crate::run::call::render_point(prog, *pid)).collect();
    csource::generate(&csource::Repro { id, program: prog, points, calls, page_size, about })
}
/// Shrink every selected scenario that diverges from the model (in a guest: from the model of the other
/// kernel, given as `--profile-facts`), and report the findings as case JSON.
pub(super) fn guest_shrink(a: &RunArgs, env: &Env) -> Result<i32, String> {
    let mut session = match setup(a, env)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let Session { host, model, target, .. } = &mut session;
    let list = selected(a)?;
    let mut findings = Vec::new();
    for sc in &list {
        let Some(s) = shrink_program(target, &sc.program) else {
            findings.push(serde_json::json!({ "from": sc.id, "none": "no difference from the model" }));
            continue;
        };
        let (id, _, case) = finding_case(sc, &s, &host, &model);
        findings.push(serde_json::json!({ "from": sc.id, "id": id, "stable_runs": s.stable_runs, "case": case }));
    }
    let v = serde_json::json!({ "kind": "madcheck-shrink", "kernel": host.release, "model": model.profile,
        "scenarios": list.len(), "exit_code": 0, "findings": findings });
    let text = v.to_string() + "\n";
    emit(a.report.as_deref(), &text)?;
    Ok(0)
}

