//! One scenario on this kernel: a recording of its observations (`madcheck record`), its C reproducer
//! (`madcheck repro`), and the verdict `git bisect run` wants (`madcheck check`: 0, 1 or 125).

use crate::run::judge::Outcome;
use cases::Scenario;
use serde::{Deserialize, Serialize};
use simulator::observe::{compare, Difference, Observation, Verdict};
use simulator::program::{StepId, ARENA};
use simulator::KernelFacts;
use std::path::Path;
use std::time::Duration;
use super::*;

use super::shrink::{repro_source, Target};

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

/// The recording of `scenario` in FILE: a `madcheck record` file, or an observation set recorded `full`
/// that holds the scenario (what `cargo xtask bisect` keeps of each kernel, possibly as a guest's
/// wrapped report).
pub fn load_recording(path: &Path, scenario: &str) -> Result<Recording, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let v = if v.get("report").is_some() { v["report"].clone() } else { v };
    if v.get("kind").and_then(|k| k.as_str()) != Some(OBSERVATION_SET) {
        return serde_json::from_value(v).map_err(|e| format!("{}: not a madcheck recording (madcheck record): {e}", path.display()));
    }
    let so = v["observations"].as_array().and_then(|l| l.iter().find(|o| o["id"] == scenario));
    let Some(so) = so else { return Err(format!("{}: the observation set has no scenario {scenario}", path.display())) };
    let points: Vec<RecordedPoint> = serde_json::from_value(so["points"].clone()).unwrap_or_default();
    if points.is_empty() {
        return Err(format!("{}: scenario {scenario} was recorded as digests only (record it --record-observations full)", path.display()));
    }
    let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Ok(Recording { scenario: scenario.into(), kernel: field("kernel"), arch: field("arch"), page_size: v["page_size"].as_u64().unwrap_or(4096), points })
}

pub(super) fn cmd_record(args: &[String], env: &Env) -> Result<i32, String> {
    let (own, a, scenario) = parse_one("record", args)?;
    let mut session = match setup(&a, env)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let host = session.host.clone();
    let run = match session.target.observe(&scenario.program) {
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
    emit(own.out.as_deref(), &text)?;
    Ok(0)
}

pub(super) fn cmd_repro(args: &[String], env: &Env) -> Result<i32, String> {
    let (own, a, scenario) = parse_one("repro", args)?;
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
            let exp = simulator::simulate(&model, &ARENA, prog);
            (exp, model.page_size, format!("expectation: the model {} (mutations: {:?})", model.profile, model.mutations))
        }
        Some(file) => {
            let rec = load_recording(Path::new(file), &scenario.id)?;
            if rec.scenario != scenario.id {
                eprintln!("madcheck: warning: {file} records scenario {}, not {}", rec.scenario, scenario.id);
            }
            let pts: Vec<(StepId, Observation)> = rec.points.iter().map(|p| (p.id, p.obs.clone())).collect();
            (csource::exact_points(&pts), rec.page_size, format!("expectation: what {} ({}) showed, recorded in {file}", rec.kernel, rec.arch))
        }
    };
    let src = repro_source(&scenario.id.replace('-', "_"), prog, &points, page_size, vec![format!("scenario: {}", scenario.origin()), about]);
    emit(own.out.as_deref(), &src)?;
    Ok(0)
}

/// `madcheck check`: 0 every case behaves as expected, 1 one does not, 125 none could be tested here.
pub(super) fn cmd_check(args: &[String], env: &Env) -> Result<i32, String> {
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
    let mut session = match setup(&a, env)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let (_host, model) = (session.host.clone(), session.model.clone());
    let target = &mut session.target;
    let timeout = Duration::from_millis(a.timeout_ms);
    let (mut good, mut bad, mut untestable) = (0, 0, 0);
    match own.expect.as_deref() {
        Some("golden") => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let refs: Vec<&Scenario> = list.iter().collect();
            let root = a.goldens.clone().unwrap_or_else(crate::out::goldens::snapshot_root);
            let c = crate::out::goldens::check_host(&model, &refs, &root, &exe, timeout);
            say_raw(&crate::out::goldens::render_check(&c, 20));
            bad = c.mismatches.len();
            untestable = c.missing.len() + c.skipped.len();
            good = c.checked as usize - bad;
        }
        None | Some("model") => {
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
            let [s] = list.as_slice() else {
                return Err("check --expect FILE takes one --case (the scenario the recording is of)".into());
            };
            let rec = load_recording(Path::new(file), &s.id)?;
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

