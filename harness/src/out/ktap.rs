//! KTAP v1 rendering of a run, as kselftest and KernelCI read it (Documentation/dev-tools/ktap.rst).
//!
//! Invariant: a pure function of the results (and each scenario's program, for its observation points);
//! no I/O. One top-level test per scenario, named by its id; inside it one subtest per observation point
//! (`prog.step_ids()`, in order). Leaf results follow the run's verdicts one to one:
//! - a matching scenario: every point `ok`;
//! - a divergent one: the points before the first divergent point `ok`, that point `not ok` with one
//!   diagnostic line per differing field, the points after it `ok ... # SKIP` (they are not compared:
//!   they are consequences of the first difference);
//! - an expected divergence: the point `ok ... # XFAIL reason` (kselftest's spelling), so it counts as
//!   passed, as it does in the report;
//! - unsupported and poisoned scenarios are one leaf, `ok N id # SKIP reason`;
//! - an infrastructure error is one leaf, `not ok`, with the error as a diagnostic.
//!
//! Failures not tied to a scenario (stale expected-divergence entries, workers that would not start, a
//! run cut short) add one final test, `madcheck_run`, that is `not ok`, so a consumer that only counts
//! leaves still sees that the run failed.
//!
//! Names never contain `#` (the KTAP directive separator) and no line contains a newline.

use crate::run::report::{self, Class, ExpectedEntry, Report};
use crate::run::judge::{Outcome, ScenarioResult};
use simulator::program::{Program, StepId};
use std::fmt::Write;

/// One line's worth of text: no newlines, no `#` (which would start a directive in a name).
fn clean(s: &str) -> String {
    s.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else if c == '#' { '_' } else { c }).collect()
}

/// Diagnostic text may contain `#`; only newlines are flattened.
fn diag(s: &str) -> String {
    s.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect()
}

fn point_name(prog: &Program, id: StepId) -> String {
    clean(&crate::run::call::render_point(prog, id))
}

/// Render the run. `program_of(result)` gives the scenario's program (for its observation points); when
/// it is `None`, a divergent scenario is rendered as a single leaf.
pub fn render(
    rep: &Report,
    results: &[ScenarioResult],
    entries: &[ExpectedEntry],
    program_of: &dyn Fn(&ScenarioResult) -> Option<Program>,
) -> String {
    let run_failures = run_failures(rep);
    let total = results.len() + usize::from(!run_failures.is_empty());
    let mut o = String::new();
    let _ = writeln!(o, "KTAP version 1");
    let _ = writeln!(o, "# madcheck: {} {} {}K pages, model {}", rep.kernel, rep.arch, rep.page_size / 1024, rep.profile);
    let _ = writeln!(o, "1..{total}");
    for (n, r) in results.iter().enumerate() {
        scenario(&mut o, n + 1, r, entries, program_of);
    }
    if !run_failures.is_empty() {
        for f in &run_failures {
            let _ = writeln!(o, "# {}", diag(f));
        }
        let _ = writeln!(o, "not ok {} madcheck_run", results.len() + 1);
    }
    o
}

/// Why the run failed beyond its scenarios' verdicts.
fn run_failures(rep: &Report) -> Vec<String> {
    let mut v = Vec::new();
    for e in rep.infra_errors.iter().filter(|e| e.scenario.is_empty()) {
        v.push(format!("infrastructure error: {}", e.error));
    }
    for e in &rep.stale_expected_divergences {
        v.push(format!(
            "stale expected-divergence entry: scenario {} step {} field {} ({}) matched nothing",
            e.scenario, e.step, e.field, e.reason
        ));
    }
    if !rep.unsupported_allowed {
        for e in &rep.unexpected_unsupported {
            v.push(format!("unexpected unsupported scenario {} ({}): not in {}", e.scenario, e.error, rep.unsupported_set));
        }
        for e in &rep.stale_unsupported {
            v.push(format!("stale unsupported entry {} ({}) in {}: the scenario is answered now", e.scenario, e.reason, rep.unsupported_set));
        }
    }
    if rep.not_run > 0 {
        v.push(format!("{} of {} planned scenarios never ran", rep.not_run, rep.scenarios_planned));
    }
    v
}

fn scenario(
    o: &mut String,
    n: usize,
    r: &ScenarioResult,
    entries: &[ExpectedEntry],
    program_of: &dyn Fn(&ScenarioResult) -> Option<Program>,
) {
    let id = clean(&r.id);
    match report::classify(r, entries) {
        Class::Unsupported => {
            let why = match &r.outcome {
                Outcome::Unsupported { reason, advice } => format!("unsupported ({advice}): {reason}"),
                _ => unreachable!("classified as unsupported"),
            };
            let _ = writeln!(o, "ok {n} {id} # SKIP {}", diag(&why));
        }
        Class::Poisoned => {
            let why = match &r.outcome {
                Outcome::Poisoned(p) => p.clone(),
                _ => unreachable!("classified as poisoned"),
            };
            let _ = writeln!(o, "ok {n} {id} # SKIP poisoned: {}", diag(&why));
        }
        Class::Infra => {
            if let Outcome::InfraError(e) = &r.outcome {
                let _ = writeln!(o, "# infrastructure error: {}", diag(e));
            }
            let _ = writeln!(o, "# replay: {}", diag(&r.replay));
            let _ = writeln!(o, "not ok {n} {id}");
        }
        Class::Match => {
            let Some(prog) = program_of(r) else {
                let _ = writeln!(o, "ok {n} {id}");
                return;
            };
            let points = prog.step_ids();
            if points.is_empty() {
                let _ = writeln!(o, "ok {n} {id}");
                return;
            }
            header(o, &id, points.len());
            for (k, p) in points.iter().enumerate() {
                let _ = writeln!(o, "    ok {} {}", k + 1, point_name(&prog, *p));
            }
            let _ = writeln!(o, "ok {n} {id}");
        }
        Class::Diverge(d) | Class::Expected(d, _) => {
            let expected_reasons: Option<Vec<String>> = match report::classify(r, entries) {
                Class::Expected(_, hits) => Some(hits.iter().map(|(k, _)| entries[*k].reason.clone()).collect()),
                _ => None,
            };
            let prog = program_of(r);
            let points = prog.as_ref().map(|p| p.step_ids()).unwrap_or_default();
            let at = d.step.and_then(|s| points.iter().position(|p| *p == s));
            let diffs: Vec<String> = d
                .diffs
                .iter()
                .map(|x| format!("{}: expected {}, observed {}", x.field, diag(&x.expected), diag(&x.observed)))
                .collect();
            let ok_word = if expected_reasons.is_some() { "ok" } else { "not ok" };
            let (Some(prog), Some(at)) = (prog.as_ref(), at) else {
                // No point to attach the difference to (e.g. the host stopped without one): one leaf.
                let _ = writeln!(o, "# {}", clean(&d.call));
                for x in &diffs {
                    let _ = writeln!(o, "# {x}");
                }
                let _ = writeln!(o, "# replay: {}", diag(&r.replay));
                let _ = writeln!(o, "{ok_word} {n} {id}");
                return;
            };
            header(o, &id, points.len());
            for (k, p) in points.iter().enumerate() {
                let name = point_name(prog, *p);
                if k < at {
                    let _ = writeln!(o, "    ok {} {name}", k + 1);
                } else if k == at {
                    for x in &diffs {
                        let _ = writeln!(o, "    # {x}");
                    }
                    match &expected_reasons {
                        Some(reasons) => {
                            let _ = writeln!(o, "    ok {} {name} # XFAIL {}", k + 1, diag(&reasons.join("; ")));
                        }
                        None => {
                            let _ = writeln!(o, "    # replay: {}", diag(&r.replay));
                            let _ = writeln!(o, "    not ok {} {name}", k + 1);
                        }
                    }
                } else {
                    let _ = writeln!(o, "    ok {} {name} # SKIP not compared: after the first divergent point", k + 1);
                }
            }
            let _ = writeln!(o, "{ok_word} {n} {id}");
        }
    }
}

fn header(o: &mut String, id: &str, points: usize) {
    let _ = writeln!(o, "    KTAP version 1");
    let _ = writeln!(o, "    # Subtest: {id}");
    let _ = writeln!(o, "    1..{points}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::RunHeader;
    use crate::run::judge::Divergence;
    use simulator::observe::Difference;
    use std::time::Duration;

    fn prog() -> Program {
        cases::generate(7, 0).program
    }

    fn res(id: &str, outcome: Outcome) -> ScenarioResult {
        ScenarioResult {
            ordinal: 0,
            id: id.into(),
            replay: "cargo xtask run --seed 7 --scenario 0".into(),
            steps: 1,
            outcome,
            coverage: Vec::new(),
            rerun: None,
        }
    }

    fn rep(results: &[ScenarioResult], entries: &[ExpectedEntry]) -> Report {
        let h = RunHeader {
            kernel: "6.1.0-56-amd64".into(),
            arch: "x86_64".into(),
            page_size: 4096,
            model: simulator::KernelModel::from_facts(simulator::KernelFacts::profile("6.1").unwrap()),
            seed: Some(7),
            planned: results.len(),
        };
        report::build(&h, results, Default::default(), entries, &[], Duration::from_secs(1), true, false)
    }

    #[test]
    fn verdicts_map_to_leaves() {
        let p = prog();
        let ids = p.step_ids();
        let div = Divergence {
            step: Some(ids[ids.len() - 1]),
            call: "x # y".into(),
            diffs: vec![Difference { field: "ret".into(), expected: "0".into(), observed: "-1\nEINVAL".into() }],
            expected: None,
            observed: None,
        };
        let results = vec![
            res("gen-7-0", Outcome::Match),
            res("gen-7-1", Outcome::Diverge(div)),
            res("gen-7-2", Outcome::Unsupported { reason: "readahead".into(), advice: "write".into() }),
            res("gen-7-3", Outcome::InfraError("worker died".into())),
        ];
        let r = rep(&results, &[]);
        let text = render(&r, &results, &[], &|_| Some(p.clone()));
        assert!(text.starts_with("KTAP version 1\n"));
        assert!(text.contains("\n1..4\n"));
        assert_eq!(text.matches("\n    not ok ").count(), 1);
        assert!(text.contains("    # ret: expected 0, observed -1 EINVAL\n"));
        assert!(text.contains("\nnot ok 2 gen-7-1\n"));
        assert!(text.contains("\nok 3 gen-7-2 # SKIP unsupported (write): readahead\n"));
        assert!(text.contains("\nnot ok 4 gen-7-3\n"));
        assert!(!text.lines().any(|l| l.trim_start().starts_with("ok") && l.split(" # ").next().unwrap().contains('#')));
    }

    #[test]
    fn expected_divergences_are_xfail_and_stale_entries_fail_the_run() {
        let p = prog();
        let ids = p.step_ids();
        let div = Divergence {
            step: Some(ids[0]),
            call: "c".into(),
            diffs: vec![Difference { field: "ret".into(), expected: "0".into(), observed: "-1".into() }],
            expected: None,
            observed: None,
        };
        let results = vec![res("gen-7-1", Outcome::Diverge(div))];
        let entries = vec![
            ExpectedEntry { scenario: "gen-7-1".into(), step: "*".into(), field: "ret".into(), reason: "known".into(), profile: None },
            ExpectedEntry { scenario: "gen-7-1".into(), step: "9".into(), field: "vmas".into(), reason: "old".into(), profile: None },
        ];
        let r = rep(&results, &entries);
        let text = render(&r, &results, &entries, &|_| Some(p.clone()));
        assert!(text.contains(" # XFAIL known\n"), "{text}");
        assert!(text.contains("\nok 1 gen-7-1\n"));
        assert!(text.contains("\n1..2\n"));
        assert!(text.ends_with("not ok 2 madcheck_run\n"), "{text}");
    }
}
