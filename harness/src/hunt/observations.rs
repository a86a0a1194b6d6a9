//! Observation sets: everything one kernel showed for a list of scenarios (`madcheck run
//! --record-observations digest|full`), and the point-by-point comparison of two of them (`madcheck
//! compare`), each difference explained by the two models' named behaviours or unexplained.

use crate::cli::RunArgs;
use cases::Provenance;
use serde::{Deserialize, Serialize};
use simulator::observe::{compare, Difference, Expect, Observation, Verdict};
use simulator::program::{StepId, ARENA};
use simulator::{KernelFacts, KernelModel};
use std::path::{Path, PathBuf};
use std::time::Instant;
use super::*;

use super::recording::RecordedPoint;

/// One scenario's observations in an observation set: a digest per point, and the points themselves
/// when recorded `full`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioObs {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Generated with `--destructive` (`cases::generate_with(seed, index, true)`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destructive: bool,
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
    /// The program of a named case (a generated scenario is rebuilt from seed and index), so `compare`
    /// can ask both kernels' models about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<simulator::Program>,
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


fn digest(o: &Observation) -> String {
    format!("{:016x}", crate::out::goldens::fnv1a64(&serde_json::to_vec(o).unwrap_or_default()))
}
/// Record the observations of every selected scenario on this kernel, `repeat` times each.
pub(super) fn record_run(a: &RunArgs, env: &Env, full: bool, repeat: usize) -> Result<i32, String> {
    let list = selected(a)?;
    let mut session = match setup(a, env)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let (host, model) = (session.host.clone(), session.model.clone());
    let target = &mut session.target;
    let start = Instant::now();
    let mut out: Vec<ScenarioObs> = Vec::with_capacity(list.len());
    for s in &list {
        let (seed, index, program) = match s.provenance {
            Provenance::Generated { seed, index } => (Some(seed), Some(index), None),
            Provenance::File { .. } => (None, None, Some(s.program.clone())),
        };
        let mut so = ScenarioObs { id: s.id.clone(), seed, index, destructive: a.destructive, digests: vec![], points: vec![], skipped: None, flaky: false, program };
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
    emit(a.report.as_deref(), &text)?;
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
    /// What groups differences for bisection: the kinds of the differing fields and the call at the
    /// point (`vmas@mprotect`); `digest@…` when only digests were recorded.
    pub signature: String,
}

/// The signature of a difference: the distinct field kinds, and the call at the point when the
/// scenario is a generated one (so its program is known here).
fn difference_signature(fields: &[Difference], seed: Option<u64>, index: Option<u64>, point: Option<StepId>) -> String {
    let mut kinds: Vec<String> = fields.iter().map(|f| cases::shrink::field_kind(&f.field)).collect();
    kinds.sort();
    kinds.dedup();
    let kinds = if kinds.is_empty() { "digest".to_string() } else { kinds.join("+") };
    let call = match (seed, index, point) {
        (Some(s), Some(i), Some(p)) => match cases::generate(s, i).program.step(p) {
            Some(simulator::Step::Madvise { advice, .. }) => advice.label().to_ascii_lowercase(),
            Some(st) => st.op().to_string(),
            None => "end".into(),
        },
        _ => "case".into(),
    };
    format!("{kinds}@{call}")
}

/// The scenarios whose repeated runs varied on either kernel: never compared, reported as flaky.
pub fn flaky_scenarios(a: &ObservationSet, b: &ObservationSet) -> Vec<String> {
    let mut v: Vec<String> = a.observations.iter().chain(&b.observations).filter(|s| s.flaky).map(|s| s.id.clone()).collect();
    v.sort();
    v.dedup();
    v
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
        if sa.skipped.is_some() || sb.skipped.is_some() || sa.flaky || sb.flaky || sa.digests == sb.digests {
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
        let program = match (sa.seed, sa.index) {
            (Some(seed), Some(index)) => Some(cases::generate_with(seed, index, sa.destructive).program),
            _ => sa.program.clone(),
        };
        let explained = match (program, point) {
            (Some(program), Some(p)) => {
                let ea = simulator::simulate(&ma, &ARENA, &program);
                let eb = simulator::simulate(&mb, &ARENA, &program);
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
            class: if explained { "explained".into() } else { "unexplained".into() },
            behaviours: if explained { behaviours.clone() } else { vec![] },
            signature: difference_signature(&fields, sa.seed, sa.index, point),
            fields,
        });
    }
    out
}

pub(super) fn cmd_compare(args: &[String]) -> Result<i32, String> {
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
    say!("MADCHECK-DIFFERING-IDS {}", diffs.iter().map(|d| d.scenario.as_str()).collect::<Vec<_>>().join(" "));
    let flaky = flaky_scenarios(&a, &b);
    say!("MADCHECK-FLAKY {}", flaky.join(" "));
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for d in &diffs {
        match groups.iter_mut().find(|g| g.0 == d.signature) {
            Some(g) => g.1.push(&d.scenario),
            None => groups.push((d.signature.clone(), vec![&d.scenario])),
        }
    }
    for (sig, ids) in &groups {
        say!("MADCHECK-GROUP {sig} {}", ids.join(" "));
    }
    say!("{} differences: {} explained, {unexplained} unexplained; {} flaky", diffs.len(), diffs.len() - unexplained, flaky.len());
    if let Some(bh) = diffs.iter().find(|d| d.class == "explained").map(|d| d.behaviours.clone()) {
        say!("behaviours that differ between the two models: {}", bh.join("; "));
    }
    if let Some(p) = report {
        let v = serde_json::json!({ "a": {"kernel": a.kernel, "arch": a.arch}, "b": {"kernel": b.kernel, "arch": b.arch},
            "scenarios": both, "differences": diffs, "unexplained": unexplained, "flaky": flaky });
        write_file(&p, &(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"))?;
    }
    Ok(i32::from(unexplained > 0))
}


#[cfg(test)]
mod tests {
    use super::*;

    fn set(release: &str, uname_version: &str, digest: &str, program: Option<simulator::Program>) -> ObservationSet {
        let mut facts = KernelFacts::profile("6.1").unwrap();
        facts.release = release.into();
        facts.uname_version = uname_version.into();
        facts.version = KernelFacts::upstream_version(release, uname_version);
        let p0 = StepId { step: 0, child: None, grandchild: None };
        ObservationSet {
            kind: OBSERVATION_SET.into(),
            kernel: release.into(),
            arch: "x86_64".into(),
            page_size: 4096,
            profile: "linux-6.1-x86_64-4k".into(),
            facts,
            scenarios: 1,
            elapsed_s: 0.0,
            exit_code: 0,
            observations: vec![ScenarioObs {
                id: "case".into(),
                seed: None,
                index: None,
                destructive: false,
                digests: vec![(p0, digest.into())],
                points: vec![],
                skipped: None,
                flaky: false,
                program,
            }],
        }
    }

    /// A named case's difference is explained by the models when the set carries its program: Debian
    /// 6.1.190 and 6.1.192 (told apart by `uname -v` alone) differ in
    /// `mremap_kept_source_stays_apart`, the MREMAP_DONTUNMAP finding's behaviour.
    #[test]
    fn a_named_case_is_explained_by_the_models() {
        let program: simulator::Program = serde_json::from_str(
            r#"{"arena_pages":2,"maps":[{"page":0,"pages":1,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"mremap","page":0,"pages":1,"new_pages":1,"to":1,"dontunmap":true}]}"#,
        )
        .unwrap();
        let old = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.190-1 (2026-10-16)";
        let new = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)";
        let d = compare_sets(&set("6.1.0-54-amd64", old, "a", Some(program.clone())), &set("6.1.0-57-amd64", new, "b", Some(program.clone())));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].class, "explained");
        assert_eq!(d[0].behaviours, vec!["mremap_kept_source_stays_apart: false -> true".to_string()]);
        // Without the program (a set recorded before it was kept) nothing can explain it.
        let d = compare_sets(&set("6.1.0-54-amd64", old, "a", None), &set("6.1.0-57-amd64", new, "b", None));
        assert_eq!(d[0].class, "unexplained");
        // Without the version field both are 6.1.0 to the model: the same answer, unexplained.
        let d = compare_sets(&set("6.1.0-54-amd64", "", "a", Some(program.clone())), &set("6.1.0-57-amd64", "", "b", Some(program)));
        assert_eq!(d[0].class, "unexplained");
    }
}
