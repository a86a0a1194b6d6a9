//! The run report: counts, divergences, expected divergences, throughput and the kernel model, as one
//! serde value written as JSON; plus the expected-divergence list it is checked against.
//!
//! Invariant: a `Report` is a pure function of (run header, scenario results, expected-divergence
//! entries), so a partial report written mid-run and the final one use the same code and agree. An
//! expected divergence never hides a new one: a divergence is expected only when every differing field
//! of its point is covered by an entry, and an entry that matches nothing in a run that included its
//! scenario is stale and fails the run.

use crate::run::judge::{Divergence, Outcome, ScenarioResult};
use serde::{Deserialize, Serialize};
use simulator::KernelModel;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// One entry of `cases/expected_divergences.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedEntry {
    /// Scenario id (`gen-1-42` or a case id).
    pub scenario: String,
    /// StepId display (`3`, `4.child1`) or `*` for any point.
    pub step: String,
    /// Field prefix: `page[`, `vma[0].flags`, `ret`, ...
    pub field: String,
    pub reason: String,
    /// Only for runs whose model profile is this one (`linux-7.2-ppc64le-64k`): a divergence that one
    /// kernel build or machine shows and others do not. Absent: every run. An entry for another
    /// profile neither covers a divergence nor goes stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// The entries that apply to a run of `profile` (unscoped ones and those naming it).
pub fn for_profile(entries: Vec<ExpectedEntry>, profile: &str) -> Vec<ExpectedEntry> {
    entries.into_iter().filter(|e| e.profile.as_deref().is_none_or(|p| p == profile)).collect()
}

impl ExpectedEntry {
    fn covers(&self, scenario: &str, step: &str, field: &str) -> bool {
        self.scenario == scenario && (self.step == "*" || self.step == step) && field.starts_with(&self.field)
    }
}

/// Load the expected-divergence list. Errors name the file and, for JSON errors, the line and column.
pub fn load_expected(path: &Path) -> Result<Vec<ExpectedEntry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let entries: Vec<ExpectedEntry> =
        serde_json::from_str(&text).map_err(|e| format!("{}: not a valid expected-divergence list: {e}", path.display()))?;
    for (i, e) in entries.iter().enumerate() {
        if e.scenario.is_empty() || e.step.is_empty() || e.reason.trim().is_empty() {
            return Err(format!("{}: entry {i}: `scenario`, `step` and `reason` must be non-empty", path.display()));
        }
    }
    Ok(entries)
}

/// Facts about the run that are not per scenario.
#[derive(Clone, Debug)]
pub struct RunHeader {
    pub kernel: String,
    pub arch: String,
    pub page_size: u64,
    pub model: KernelModel,
    /// The generator seed, when any scenario was generated.
    pub seed: Option<u64>,
    /// Scenarios planned (results may be fewer when the run was cut short).
    pub planned: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    #[serde(rename = "match")]
    pub matched: u64,
    pub diverge: u64,
    pub unsupported: u64,
    pub poisoned: u64,
    pub expected_divergence: u64,
    pub infra_error: u64,
}

/// One differing field of a divergent point (flat, so the JSON is easy to grep and diff).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DivergenceEntry {
    pub scenario: String,
    pub step: String,
    pub call: String,
    pub field: String,
    pub expected: String,
    pub observed: String,
    pub replay: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedHit {
    pub scenario: String,
    pub step: String,
    pub field: String,
    pub expected: String,
    pub observed: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfraErrorEntry {
    /// Empty for errors not tied to a scenario (a worker that would not start).
    pub scenario: String,
    pub error: String,
    pub replay: String,
}

/// How many unsupported scenarios a report lists by name (all are counted).
pub const UNSUPPORTED_LISTED: usize = 200;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub kernel: String,
    pub arch: String,
    pub page_size: u64,
    pub profile: String,
    pub seed: Option<u64>,
    /// Scenarios with a result.
    pub scenarios: u64,
    pub scenarios_planned: u64,
    /// Scenarios never run (interrupted or no live worker).
    pub not_run: u64,
    /// Observation points produced by the host (one call plus its full observation each).
    pub steps: u64,
    pub verdicts: Verdicts,
    pub unsupported_by_reason: BTreeMap<String, u64>,
    pub unsupported_by_advice: BTreeMap<String, u64>,
    /// The unsupported scenarios themselves (the first `UNSUPPORTED_LISTED`), each with its reason and
    /// replay command.
    #[serde(default)]
    pub unsupported: Vec<InfraErrorEntry>,
    pub divergences: Vec<DivergenceEntry>,
    pub expected_divergences: Vec<ExpectedHit>,
    pub stale_expected_divergences: Vec<ExpectedEntry>,
    pub poisoned: Vec<InfraErrorEntry>,
    pub infra_errors: Vec<InfraErrorEntry>,
    pub elapsed_s: f64,
    pub scenarios_per_s: f64,
    pub steps_per_s: f64,
    /// False for checkpoints written while the run was still going, and for interrupted runs.
    pub complete: bool,
    pub interrupted: bool,
    /// The verdict of the run: 0 pass, 1 fail.
    pub exit_code: i32,
    pub model: KernelModel,
    /// Named cases whose host behaviour differs from the recorded host golden of this profile
    /// (`golden/snapshots/<profile>/host/`): this kernel behaves differently from the recorded one.
    /// Set by `out::goldens::add_goldens`; any mismatch fails the run.
    #[serde(default)]
    pub golden_mismatches: u64,
    /// Named cases with no host golden for this profile (not a failure).
    #[serde(default)]
    pub golden_missing: u64,
    #[serde(default)]
    pub golden_checked: u64,
    #[serde(default)]
    pub golden_mismatch_cases: Vec<GoldenMismatchEntry>,
    /// The expected unsupported set checked (`golden/snapshots/<profile>/unsupported.json`), or
    /// `none recorded (<path>)`. Set by `run::unsupported::add_to_report`.
    #[serde(default)]
    pub unsupported_set: String,
    /// `--allow-unsupported`: unexpected and stale entries are listed but do not fail the run.
    #[serde(default)]
    pub unsupported_allowed: bool,
    /// Unsupported scenarios inside the set's scope that the set does not list (with that reason).
    #[serde(default)]
    pub unexpected_unsupported: Vec<InfraErrorEntry>,
    /// Entries of the set whose scenario ran and was not unsupported for that reason.
    #[serde(default)]
    pub stale_unsupported: Vec<crate::run::unsupported::UnsupportedEntry>,
    /// `--record-unsupported`: the set this run records (every unsupported scenario, uncapped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsupported_record: Option<crate::run::unsupported::UnsupportedSet>,
    /// Scenarios whose first host run ended by a signal or a hang that did not happen again on a fresh
    /// worker (a worker killed or stopped from outside): infrastructure events, not divergences.
    #[serde(default)]
    pub reruns: Vec<InfraErrorEntry>,
    /// The signal (SIGINT, SIGTERM, SIGHUP) that stopped the run early, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// `MADCHECK_INJECT_FAULTS`: the faults done to workers on purpose and which worker took each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_injection: Option<Vec<String>>,
}

/// One golden mismatch in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldenMismatchEntry {
    pub scenario: String,
    pub golden: String,
    /// Line diff, `-` recorded and `+` this kernel.
    pub diff: String,
}

/// How one scenario's outcome is classified against the expected entries.
pub enum Class<'a> {
    Match,
    Diverge(&'a Divergence),
    Expected(&'a Divergence, Vec<(usize, String)>),
    Unsupported,
    Poisoned,
    Infra,
}

/// Classify one result; for expected divergences, which entries (by index) covered which field.
pub fn classify<'a>(r: &'a ScenarioResult, entries: &[ExpectedEntry]) -> Class<'a> {
    match &r.outcome {
        Outcome::Match => Class::Match,
        Outcome::Unsupported { .. } => Class::Unsupported,
        Outcome::Poisoned(_) => Class::Poisoned,
        Outcome::InfraError(_) => Class::Infra,
        Outcome::Diverge(d) => {
            let step = step_label(d);
            let mut used = Vec::new();
            for diff in &d.diffs {
                match entries.iter().position(|e| e.covers(&r.id, &step, &diff.field)) {
                    Some(k) => used.push((k, diff.field.clone())),
                    None => return Class::Diverge(d),
                }
            }
            Class::Expected(d, used)
        }
    }
}

pub fn step_label(d: &Divergence) -> String {
    d.step.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
}

/// Build the report. `results` are the kept results (`runner::Keep`), `elided` counts the plain matches
/// the runner did not keep. `global_errors` are infrastructure errors not tied to a scenario.
pub fn build(
    h: &RunHeader,
    results: &[ScenarioResult],
    elided: crate::run::runner::Elided,
    entries: &[ExpectedEntry],
    global_errors: &[String],
    elapsed: Duration,
    complete: bool,
    interrupted: bool,
) -> Report {
    let mut v = Verdicts::default();
    let mut by_reason = BTreeMap::new();
    let mut by_advice = BTreeMap::new();
    let mut divergences = Vec::new();
    let mut expected = Vec::new();
    let mut poisoned = Vec::new();
    let mut infra: Vec<InfraErrorEntry> = global_errors
        .iter()
        .map(|e| InfraErrorEntry { scenario: String::new(), error: e.clone(), replay: String::new() })
        .collect();
    let mut used = BTreeSet::new();
    let mut unsupported = Vec::new();
    // The plain matches the runner counted and did not keep (`runner::Keep`).
    v.matched += elided.matched;
    let mut steps = elided.steps;
    let ran_count = results.len() as u64 + elided.matched;
    let mut reruns = Vec::new();
    for r in results {
        steps += r.steps;
        if let Some(why) = &r.rerun {
            reruns.push(InfraErrorEntry { scenario: r.id.clone(), error: why.clone(), replay: r.replay.clone() });
        }
        match classify(r, entries) {
            Class::Match => v.matched += 1,
            Class::Unsupported => {
                v.unsupported += 1;
                if let Outcome::Unsupported { reason, advice } = &r.outcome {
                    *by_reason.entry(reason.clone()).or_insert(0) += 1;
                    *by_advice.entry(advice.clone()).or_insert(0) += 1;
                    if unsupported.len() < UNSUPPORTED_LISTED {
                        unsupported.push(InfraErrorEntry { scenario: r.id.clone(), error: reason.clone(), replay: r.replay.clone() });
                    }
                }
            }
            Class::Poisoned => {
                v.poisoned += 1;
                if let Outcome::Poisoned(why) = &r.outcome {
                    poisoned.push(InfraErrorEntry { scenario: r.id.clone(), error: why.clone(), replay: r.replay.clone() });
                }
            }
            Class::Infra => {
                v.infra_error += 1;
                if let Outcome::InfraError(e) = &r.outcome {
                    infra.push(InfraErrorEntry { scenario: r.id.clone(), error: e.clone(), replay: r.replay.clone() });
                }
            }
            Class::Diverge(d) => {
                v.diverge += 1;
                for diff in &d.diffs {
                    divergences.push(DivergenceEntry {
                        scenario: r.id.clone(),
                        step: step_label(d),
                        call: d.call.clone(),
                        field: diff.field.clone(),
                        expected: diff.expected.clone(),
                        observed: diff.observed.clone(),
                        replay: r.replay.clone(),
                    });
                }
            }
            Class::Expected(d, hits) => {
                v.expected_divergence += 1;
                for (k, field) in hits {
                    used.insert(k);
                    let diff = d.diffs.iter().find(|x| x.field == field).expect("hit names a diff");
                    expected.push(ExpectedHit {
                        scenario: r.id.clone(),
                        step: step_label(d),
                        field,
                        expected: diff.expected.clone(),
                        observed: diff.observed.clone(),
                        reason: entries[k].reason.clone(),
                    });
                }
            }
        }
    }
    // Only scenarios that actually ran can make an entry stale.
    let ran: BTreeSet<&str> = results.iter().map(|r| r.id.as_str()).collect();
    let stale: Vec<ExpectedEntry> = entries
        .iter()
        .enumerate()
        .filter(|(k, e)| !used.contains(k) && ran.contains(e.scenario.as_str()))
        .map(|(_, e)| e.clone())
        .collect();
    let secs = elapsed.as_secs_f64();
    let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let not_run = (h.planned as u64).saturating_sub(ran_count);
    let failed = v.diverge > 0 || v.infra_error > 0 || !infra.is_empty() || !stale.is_empty() || not_run > 0;
    Report {
        kernel: h.kernel.clone(),
        arch: h.arch.clone(),
        page_size: h.page_size,
        profile: h.model.profile.clone(),
        seed: h.seed,
        scenarios: ran_count,
        scenarios_planned: h.planned as u64,
        not_run,
        steps,
        verdicts: v,
        unsupported_by_reason: by_reason,
        unsupported_by_advice: by_advice,
        unsupported,
        divergences,
        expected_divergences: expected,
        stale_expected_divergences: stale,
        poisoned,
        infra_errors: infra,
        elapsed_s: secs,
        scenarios_per_s: rate(ran_count),
        steps_per_s: rate(steps),
        complete,
        interrupted,
        exit_code: i32::from(failed),
        model: h.model.clone(),
        golden_mismatches: 0,
        golden_missing: 0,
        golden_checked: 0,
        golden_mismatch_cases: Vec::new(),
        unsupported_set: String::new(),
        unsupported_allowed: false,
        unexpected_unsupported: Vec::new(),
        stale_unsupported: Vec::new(),
        unsupported_record: None,
        reruns,
        stopped_by: None,
        fault_injection: None,
    }
}

/// Write JSON atomically (temporary file, then rename), so a reader never sees half a report and a crash
/// mid-write leaves the previous checkpoint intact.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| format!("cannot serialise the report: {e}"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create directory: {e}", dir.display()))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, text + "\n").map_err(|e| format!("{}: cannot write: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulator::observe::Difference;
    use simulator::program::StepId;

    fn div(id: &str, fields: &[&str]) -> ScenarioResult {
        ScenarioResult {
            ordinal: 0,
            id: id.into(),
            replay: "r".into(),
            steps: 3,
            outcome: Outcome::Diverge(Divergence {
                step: Some(StepId { step: 2, child: None, grandchild: None }),
                call: "step 2: read(page 0)".into(),
                diffs: fields
                    .iter()
                    .map(|f| Difference { field: f.to_string(), expected: "e".into(), observed: "o".into() })
                    .collect(),
                expected: None,
                observed: None,
            }),
            coverage: Vec::new(),
            rerun: None,
        }
    }

    fn entry(s: &str, step: &str, field: &str) -> ExpectedEntry {
        ExpectedEntry { scenario: s.into(), step: step.into(), field: field.into(), reason: "known".into(), profile: None }
    }

    #[test]
    fn profile_scoped_entries_apply_to_their_profile_only() {
        let mut scoped = entry("a", "*", "ret");
        scoped.profile = Some("linux-7.2-ppc64le-64k".into());
        let es = vec![scoped.clone(), entry("b", "*", "ret")];
        assert_eq!(for_profile(es.clone(), "linux-7.2-ppc64le-64k"), es);
        // Another profile's run: the scoped entry neither covers `a` nor goes stale.
        let other = for_profile(es, "linux-6.18-x86_64-4k");
        assert_eq!(other, vec![entry("b", "*", "ret")]);
        let rs = vec![div("a", &["ret"])];
        let mut h = header();
        h.planned = 1;
        let r = build(&h, &rs, Default::default(), &other, &[], Duration::from_secs(1), true, false);
        assert_eq!((r.verdicts.diverge, r.stale_expected_divergences.len()), (1, 0));
    }

    fn header() -> RunHeader {
        RunHeader {
            kernel: "k".into(),
            arch: "x86_64".into(),
            page_size: 4096,
            model: KernelModel::from_facts(simulator::KernelFacts::profile("6.18").unwrap()),
            seed: Some(1),
            planned: 2,
        }
    }

    #[test]
    fn expected_only_when_every_field_is_covered() {
        let rs = vec![div("a", &["page[1].res", "vma[0].rss"]), div("b", &["ret"])];
        let es = vec![entry("a", "*", "page["), entry("a", "2", "vma[0]"), entry("b", "3", "ret")];
        let r = build(&header(), &rs, Default::default(), &es, &[], Duration::from_secs(1), true, false);
        assert_eq!(r.verdicts.expected_divergence, 1);
        assert_eq!(r.verdicts.diverge, 1);
        // `b`'s entry names step 3, but b diverged at step 2: stale, and the run fails.
        assert_eq!(r.stale_expected_divergences, vec![entry("b", "3", "ret")]);
        assert_eq!(r.exit_code, 1);
    }

    #[test]
    fn entries_for_scenarios_not_run_are_not_stale() {
        let rs = vec![div("a", &["ret"])];
        let es = vec![entry("a", "*", "ret"), entry("zzz", "*", "ret")];
        let mut h = header();
        h.planned = 1;
        let r = build(&h, &rs, Default::default(), &es, &[], Duration::from_secs(1), true, false);
        assert!(r.stale_expected_divergences.is_empty());
        assert_eq!(r.exit_code, 0);
        assert_eq!(r.expected_divergences[0].reason, "known");
    }
}
