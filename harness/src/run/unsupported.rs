//! The expected unsupported set of a kernel profile (`golden/snapshots/<profile>/unsupported.json`):
//! which scenarios of the default suite and the corpus the model cannot answer on that profile, and why.
//!
//! A model change that turns a known answer into `Unsupported` loses coverage without any divergence,
//! so an unsupported outcome is checked like a golden: a scenario inside the set's scope that is
//! unsupported without an entry (or for another reason) fails the run, and so does an entry whose
//! scenario ran and was answered (stale). Scenarios outside the scope (other seeds, larger runs, cases
//! outside the recorded corpus) are only counted, by reason. `--allow-unsupported` turns the check off.
//!
//! Invariant: the set is data recorded from a run (`--record-unsupported`, written by `cargo xtask
//! bless`), never edited to make a run pass.

use crate::run::judge::{Outcome, ScenarioResult};
use crate::run::report::{InfraErrorEntry, Report};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// The scenarios a set speaks for: `generate(seed, 0..generated)` and the named cases listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub seed: Option<u64>,
    pub generated: u64,
    /// Named case ids (sorted).
    pub cases: Vec<String>,
    /// The generated scenarios were drawn with `--destructive` (`cases::generate_with(seed, index,
    /// true)`), which changes some of them under the same `gen-<seed>-<index>` id: a set speaks for the
    /// generated scenarios of one mode only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destructive: bool,
}

impl Scope {
    pub fn contains(&self, id: &str) -> bool {
        match generated_index(id) {
            Some((seed, index)) => self.seed == Some(seed) && index < self.generated,
            None => self.cases.binary_search_by(|c| c.as_str().cmp(id)).is_ok(),
        }
    }

    /// `contains`, for a run whose generated scenarios were drawn with `destructive` or not: generated
    /// scenarios of the other mode are outside the scope (counted, not checked).
    pub fn contains_in_mode(&self, id: &str, destructive: bool) -> bool {
        self.contains(id) && (generated_index(id).is_none() || self.destructive == destructive)
    }
}

/// `gen-<seed>-<index>` → (seed, index).
fn generated_index(id: &str) -> Option<(u64, u64)> {
    let rest = id.strip_prefix("gen-")?;
    let (seed, index) = rest.split_once('-')?;
    Some((seed.parse().ok()?, index.parse().ok()?))
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsupportedEntry {
    pub scenario: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsupportedSet {
    pub profile: String,
    pub scope: Scope,
    pub entries: Vec<UnsupportedEntry>,
}

/// `<root>/<profile>/unsupported.json`.
pub fn set_path(root: &Path, profile: &str) -> std::path::PathBuf {
    root.join(profile).join("unsupported.json")
}

/// Load a set; `Ok(None)` when the file does not exist. Errors name the file and the JSON position.
pub fn load(path: &Path) -> Result<Option<UnsupportedSet>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let set: UnsupportedSet =
        serde_json::from_str(&text).map_err(|e| format!("{}: not a valid unsupported set: {e}", path.display()))?;
    for (i, e) in set.entries.iter().enumerate() {
        if !set.scope.contains(&e.scenario) || e.reason.trim().is_empty() {
            return Err(format!("{}: entries[{i}]: scenario {:?} is outside the set's scope or has no reason", path.display(), e.scenario));
        }
    }
    Ok(Some(set))
}

/// The set this run would record: its scope, and every unsupported scenario with its reason.
pub fn record(profile: &str, mut scope: Scope, results: &[ScenarioResult]) -> UnsupportedSet {
    scope.cases.sort();
    let mut entries: Vec<UnsupportedEntry> = results
        .iter()
        .filter(|r| scope.contains(&r.id))
        .filter_map(|r| match &r.outcome {
            Outcome::Unsupported { reason, .. } => Some(UnsupportedEntry { scenario: r.id.clone(), reason: reason.clone() }),
            _ => None,
        })
        .collect();
    entries.sort();
    UnsupportedSet { profile: profile.to_string(), scope, entries }
}

/// The check of one run against a set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Check {
    /// In scope, unsupported, and not in the set with that reason.
    pub unexpected: Vec<InfraErrorEntry>,
    /// In the set, ran, and not unsupported with that reason.
    pub stale: Vec<UnsupportedEntry>,
}

pub fn check(set: &UnsupportedSet, destructive: bool, results: &[ScenarioResult]) -> Check {
    let listed: BTreeSet<(&str, &str)> = set.entries.iter().map(|e| (e.scenario.as_str(), e.reason.as_str())).collect();
    let mut c = Check::default();
    let mut ran = std::collections::BTreeMap::new();
    for r in results {
        let reason = match &r.outcome {
            Outcome::Unsupported { reason, .. } => Some(reason.as_str()),
            _ => None,
        };
        ran.insert(r.id.as_str(), reason);
        if let Some(reason) = reason {
            if set.scope.contains_in_mode(&r.id, destructive) && !listed.contains(&(r.id.as_str(), reason)) {
                c.unexpected.push(InfraErrorEntry { scenario: r.id.clone(), error: reason.to_string(), replay: r.replay.clone() });
            }
        }
    }
    for e in &set.entries {
        // An entry whose scenario did not run (a smaller run, an interrupted one, the other generation
        // mode) is not stale.
        if !set.scope.contains_in_mode(&e.scenario, destructive) {
            continue;
        }
        if let Some(got) = ran.get(e.scenario.as_str()) {
            if *got != Some(e.reason.as_str()) {
                c.stale.push(e.clone());
            }
        }
    }
    c
}

/// Fold the check into the report: the set used, what failed, and the exit code unless allowed.
/// `is_env_reason`: whether a reason is one this run gives for scenarios it cannot run here for want of
/// privilege or resources (the hugetlb pool, a usable scratch directory, RLIMIT_MEMLOCK); those depend on
/// the machine, not the model, and are not checked (`env_reasons`).
pub fn add_to_report(
    rep: &mut Report,
    path: &Path,
    set: Option<&UnsupportedSet>,
    results: &[ScenarioResult],
    destructive: bool,
    allow: bool,
    is_env_reason: &dyn Fn(&str) -> bool,
) {
    let Some(set) = set else {
        rep.unsupported_set = format!("none recorded ({})", path.display());
        return;
    };
    rep.unsupported_set = path.display().to_string();
    let mut c = check(set, destructive, results);
    c.unexpected.retain(|e| !is_env_reason(&e.error));
    if !allow && (!c.unexpected.is_empty() || !c.stale.is_empty()) {
        rep.exit_code = rep.exit_code.max(1);
    }
    rep.unsupported_allowed = allow;
    rep.unexpected_unsupported = c.unexpected;
    rep.stale_unsupported = c.stale;
}

/// The reasons of this run that come from the machine rather than the model: no hugetlb pool, a scratch
/// directory that cannot hold disk files, no usable tmpfs directory, and the RLIMIT_MEMLOCK answers (which exist only under a limit).
pub fn env_reasons(model: &simulator::KernelModel) -> impl Fn(&str) -> bool + '_ {
    move |why: &str| {
        Some(why) == model.facts.hugetlb_unavailable.as_deref()
            || Some(why) == model.facts.disk_files_unavailable.as_deref()
            || Some(why) == model.facts.tmpfs_files_unavailable.as_deref()
            || (model.mlock_limit_pages.is_some() && why.contains("RLIMIT_MEMLOCK"))
    }
}

/// The summary lines for a run's unsupported check.
pub fn render(rep: &Report, shown: usize) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    if rep.unsupported_set.starts_with("none recorded") {
        let _ = writeln!(
            o,
            "  unsupported set: {} for profile {}: unsupported scenarios are counted, not checked (record one with `cargo xtask bless`)",
            rep.unsupported_set, rep.profile
        );
        return o;
    }
    let verdict = if rep.unsupported_allowed { " (--allow-unsupported: not failing the run)" } else { "" };
    for e in rep.unexpected_unsupported.iter().take(shown) {
        let _ = writeln!(
            o,
            "  UNEXPECTED unsupported: {} ({}), not in {}{verdict}\n    replay: {}",
            e.scenario, e.error, rep.unsupported_set, e.replay
        );
    }
    if rep.unexpected_unsupported.len() > shown {
        let _ = writeln!(o, "  ... {} more unexpected unsupported scenarios in the report", rep.unexpected_unsupported.len() - shown);
    }
    for e in &rep.stale_unsupported {
        let _ = writeln!(
            o,
            "  STALE unsupported entry {} ({}): the scenario is answered now; re-record {} with `cargo xtask bless`{verdict}",
            e.scenario, e.reason, rep.unsupported_set
        );
    }
    let _ = writeln!(
        o,
        "  unsupported set ({}): {} unexpected, {} stale",
        rep.unsupported_set,
        rep.unexpected_unsupported.len(),
        rep.stale_unsupported.len()
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(id: &str, reason: Option<&str>) -> ScenarioResult {
        let outcome = match reason {
            Some(r) => Outcome::Unsupported { reason: r.into(), advice: "x".into() },
            None => Outcome::Match,
        };
        ScenarioResult { ordinal: 0, id: id.into(), replay: format!("replay {id}"), steps: 1, outcome, coverage: vec![], rerun: None }
    }

    fn set() -> UnsupportedSet {
        let scope = Scope { seed: Some(1), generated: 100, cases: vec!["a_case".into()], destructive: false };
        record("p", scope, &[res("gen-1-5", Some("thp")), res("gen-1-6", None), res("a_case", Some("ksm"))])
    }

    #[test]
    fn scope_is_the_seed_the_count_and_the_listed_cases() {
        let s = set().scope;
        assert!(s.contains("gen-1-0") && s.contains("gen-1-99") && s.contains("a_case"));
        assert!(!s.contains("gen-1-100") && !s.contains("gen-2-5") && !s.contains("other_case"));
    }

    #[test]
    fn a_new_unsupported_scenario_or_reason_is_unexpected() {
        let s = set();
        assert_eq!(s.entries.len(), 2);
        let c = check(&s, false, &[res("gen-1-5", Some("thp")), res("gen-1-6", Some("readahead")), res("a_case", Some("ksm"))]);
        assert_eq!(c.unexpected.iter().map(|e| e.scenario.as_str()).collect::<Vec<_>>(), ["gen-1-6"]);
        assert!(c.stale.is_empty());
        let c = check(&s, false, &[res("gen-1-5", Some("another reason"))]);
        assert_eq!((c.unexpected.len(), c.stale.len()), (1, 1));
    }

    #[test]
    fn out_of_scope_is_counted_not_checked_and_an_answered_entry_is_stale() {
        let s = set();
        let c = check(&s, false, &[res("gen-2-6", Some("thp")), res("gen-1-500", Some("thp")), res("other_case", Some("x"))]);
        assert_eq!(c, Check::default());
        let c = check(&s, false, &[res("gen-1-5", None)]);
        assert_eq!(c.stale, vec![UnsupportedEntry { scenario: "gen-1-5".into(), reason: "thp".into() }]);
        assert!(c.unexpected.is_empty());
    }

    #[test]
    fn generated_scenarios_of_the_other_mode_are_out_of_scope() {
        // A set recorded without --destructive says nothing of a destructive run's generated scenarios
        // (the same ids, other programs), and the reverse; named cases are the same in both modes.
        let s = set();
        let c = check(&s, true, &[res("gen-1-6", Some("hugetlb mremap")), res("gen-1-5", None), res("a_case", Some("ksm"))]);
        assert_eq!(c, Check::default());
        let c = check(&s, true, &[res("a_case", None)]);
        assert_eq!(c.stale, vec![UnsupportedEntry { scenario: "a_case".into(), reason: "ksm".into() }]);
        let mut d = s.clone();
        d.scope.destructive = true;
        let c = check(&d, true, &[res("gen-1-6", Some("hugetlb mremap"))]);
        assert_eq!(c.unexpected.len(), 1);
        let c = check(&d, false, &[res("gen-1-6", Some("hugetlb mremap"))]);
        assert!(c.unexpected.is_empty());
    }
}
