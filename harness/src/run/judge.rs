//! The judge: the result of one scenario (`Outcome`, `Divergence`, `ScenarioResult`) and the pure
//! comparison that decides it (`judge`), plus which hugetlb programs are never run (`hugetlb_refusal`).
//!
//! Invariant: pure functions of the program, the model's expectations and the host's observations; no
//! processes, clocks or threads. The runner, the report and every output share these types, and this
//! module imports none of them (only the host's `HostRun`, `call` and the coverage `Cell`).

use crate::host::HostRun;
use crate::run::call;
use simulator::observe::{compare, Allowed, Difference, Expect, Observation, Verdict};
use simulator::program::{Program, Step, StepId};
use simulator::KernelModel;
use std::time::Duration;

/// The first divergent point of a scenario, with every differing field of that point.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// `None` when the difference is not at one point (e.g. the host stopped without a point).
    pub step: Option<StepId>,
    /// The call at that point, rendered (`step 2: madvise(page 0, 2 pages, DONTNEED)`).
    pub call: String,
    pub diffs: Vec<Difference>,
    /// What the model allowed and the host showed at that point, for the rulers.
    pub expected: Option<Allowed>,
    pub observed: Option<Observation>,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Match,
    Diverge(Divergence),
    /// The model does not know a behaviour the scenario reaches: `reason`, at a step using `advice`
    /// (advice name, or the op name for non-madvise steps).
    Unsupported { reason: String, advice: String },
    /// The host left the model's scope on every attempt.
    Poisoned(String),
    /// The harness itself failed (worker protocol, simulator panic); says nothing about the kernel.
    InfraError(String),
}

#[derive(Clone, Debug)]
pub struct ScenarioResult {
    /// Position in the job list, so results can be put back in order.
    pub ordinal: usize,
    pub id: String,
    pub replay: String,
    /// Observation points the host produced (for the simulator-only bench: the model's points).
    pub steps: u64,
    pub outcome: Outcome,
    /// The semantic-coverage cells the host reached (full runs only).
    pub coverage: Vec<crate::coverage::Cell>,
    /// The first host run diverged by a signal or a hang that did not happen again on a fresh worker:
    /// an infrastructure event (a worker killed or stopped from outside), said here; the outcome is the
    /// second run's.
    pub rerun: Option<String>,
}

/// Why a hugetlb program must not run on this host, and the feature to count it under. `guest`: this is
/// a disposable qemu guest (`init::disposable_guest`), which may run the destructive classes.
pub fn hugetlb_refusal(model: &KernelModel, prog: &Program, guest: bool) -> Option<(String, &'static str)> {
    if let Some(why) = &model.facts.hugetlb_unavailable {
        return Some((why.clone(), "hugetlb"));
    }
    if model.hugetlb_pages == 0 && model.facts.hugepage_kb == 0 {
        // /proc/meminfo has no Hugepagesize: CONFIG_HUGETLBFS is off or no huge page size registered
        // (32-bit ARM selects ARCH_SUPPORTS_HUGETLBFS only with ARM_LPAE [S 7.2 arch/arm/Kconfig]; s390x
        // without EDAT under TCG).
        return Some(("hugetlb: this kernel has no huge page size (/proc/meminfo has no Hugepagesize)".into(), "hugetlb"));
    }
    if model.hugetlb_pages == 0 {
        let why = format!("hugetlb: the {} kB huge page does not fit the arena (or there is no hugetlbfs)", model.facts.hugepage_kb);
        return Some((why, "hugetlb"));
    }
    let (destructive, what) = destructive_class(prog)?;
    if guest {
        return None;
    }
    Some((format!("{destructive} is never run outside a disposable qemu guest (cargo xtask qemu ... --destructive)"), what))
}

/// The destructive class of a hugetlb program, if it has one: hugetlb with mremap (leaks huge pages
/// until reboot on 6.18) or with fork (COW of huge pages, reservations of the child; an empty pool
/// unmaps pages from the child), and the feature to count it under.
pub fn destructive_class(prog: &Program) -> Option<(&'static str, &'static str)> {
    fn has(steps: &[Step], op: &str) -> bool {
        steps.iter().any(|s| s.op() == op || matches!(s, Step::Fork { child } if has(child, op)) || matches!(s, Step::InChild { step } if has(std::slice::from_ref(step), op)))
    }
    if !prog.uses_hugetlb() {
        return None;
    }
    if has(&prog.steps, "mremap") {
        return Some(("hugetlb with mremap (it leaks huge pages until reboot on 6.18)", "mremap"));
    }
    if has(&prog.steps, "fork") || has(&prog.steps, "fork_live") {
        return Some(("hugetlb with fork", "fork"));
    }
    None
}

fn advice_at(prog: &Program, id: StepId) -> String {
    match prog.step(id) {
        Some(Step::Madvise { advice, .. }) => advice.label(),
        Some(s) => s.op().to_string(),
        None => "?".into(),
    }
}

fn ids(points: impl Iterator<Item = StepId>) -> String {
    let v: Vec<String> = points.map(|id| id.to_string()).collect();
    format!("[{}]", v.join(", "))
}

/// Compare the model's expectations with the host's points, in order, and stop at the first divergent
/// point (later points are its consequences). Pure.
pub fn judge(prog: &Program, expect: &[(StepId, Expect)], host: &HostRun, timeout: Duration) -> Outcome {
    let n = expect.len().max(host.points.len());
    for i in 0..n {
        match (expect.get(i), host.points.get(i)) {
            // The model does not know what happens from here, whatever the host did.
            (Some((id, Expect::Unsupported(why))), _) => {
                return Outcome::Unsupported { reason: why.clone(), advice: advice_at(prog, *id) };
            }
            (Some((mid, exp)), Some((hid, obs))) if mid == hid => match compare(exp, obs) {
                Verdict::Match => continue,
                Verdict::Diverge(diffs) => {
                    let expected = match exp {
                        Expect::Allowed(a) => Some(a.clone()),
                        Expect::Unsupported(_) => None,
                    };
                    return Outcome::Diverge(Divergence {
                        step: Some(*mid),
                        call: call::render_point(prog, *mid),
                        diffs,
                        expected,
                        observed: Some(obs.clone()),
                    });
                }
                Verdict::Unsupported(why) => {
                    return Outcome::Unsupported { reason: why, advice: advice_at(prog, *mid) }
                }
                Verdict::Poisoned(why) => return Outcome::Poisoned(why),
            },
            // Past what arrived from a worker that hung: the timeout is the difference.
            (_, None) if host.timed_out => break,
            (m, h) => {
                let at = m.map(|x| x.0).or(h.map(|x| x.0));
                let diff = Difference {
                    field: "points".into(),
                    expected: ids(expect.iter().map(|x| x.0)),
                    observed: ids(host.points.iter().map(|x| x.0)),
                };
                return Outcome::Diverge(Divergence {
                    step: at,
                    call: at.map(|id| call::render_point(prog, id)).unwrap_or_default(),
                    diffs: vec![diff],
                    expected: m.and_then(|x| match &x.1 {
                        Expect::Allowed(a) => Some(a.clone()),
                        Expect::Unsupported(_) => None,
                    }),
                    observed: h.map(|x| x.1.clone()),
                });
            }
        }
    }
    if host.timed_out {
        // The point after the last one that arrived is where the worker hung.
        let all = prog.step_ids();
        let at = all.get(host.points.len()).copied();
        return Outcome::Diverge(Divergence {
            step: at,
            call: at.map(|id| call::render_point(prog, id)).unwrap_or_default(),
            diffs: vec![Difference {
                field: "timeout".into(),
                expected: "the scenario completes".into(),
                observed: format!("worker killed after {} ms, {} points arrived", timeout.as_millis(), host.points.len()),
            }],
            expected: None,
            observed: None,
        });
    }
    Outcome::Match
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use simulator::observe::{PageObs, Ret};
    use simulator::program::{Backing, MapSpec, Prot};

    pub(in crate::run) fn prog() -> Program {
        Program {
            arena_pages: 2,
            files: vec![],
            maps: vec![MapSpec {
                page: 0,
                pages: 2,
                prot: Prot::RW,
                backing: Backing::AnonPrivate,
                populate: false,
                locked: false,
                noreserve: false,
            }],
            steps: vec![Step::Write { page: 0, fill: 1 }, Step::Read { page: 1 }],
            word_bits: None,
        }
    }

    pub(in crate::run) fn obs(ret: Ret) -> Observation {
        Observation { ret, vmas: vec![], pages: vec![PageObs::ABSENT, PageObs::ABSENT], hugetlb: None, locked_vm: None }
    }

    fn allow(ret: Ret) -> Expect {
        Expect::Allowed(Allowed { ret: vec![ret], vmas: vec![], pages: vec![vec![PageObs::ABSENT]; 2], hugetlb: None, locked_vm: None })
    }

    fn id(step: u32) -> StepId {
        StepId { step, child: None, grandchild: None }
    }

    pub(in crate::run) fn host(points: Vec<(StepId, Observation)>) -> HostRun {
        HostRun { points, poisoned: None, timed_out: false }
    }

    #[test]
    fn matching_points_match() {
        let p = prog();
        let e = vec![(id(0), allow(Ret::Ok)), (id(1), allow(Ret::Ok))];
        let h = host(vec![(id(0), obs(Ret::Ok)), (id(1), obs(Ret::Ok))]);
        assert!(matches!(judge(&p, &e, &h, Duration::from_secs(1)), Outcome::Match));
    }

    #[test]
    fn first_divergent_point_wins() {
        let p = prog();
        let e = vec![(id(0), allow(Ret::Ok)), (id(1), allow(Ret::Ok))];
        let bad = Ret::Err(simulator::observe::Errno::EINVAL);
        let h = host(vec![(id(0), obs(bad)), (id(1), obs(bad))]);
        match judge(&p, &e, &h, Duration::from_secs(1)) {
            Outcome::Diverge(d) => {
                assert_eq!(d.step, Some(id(0)));
                assert_eq!(d.diffs[0].field, "ret");
                assert_eq!(d.call, "step 0: write(page 0, fill 0x01)");
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn missing_points_name_both_lists() {
        let p = prog();
        let h = host(vec![(id(0), obs(Ret::Ok))]);
        match judge(&p, &[], &h, Duration::from_secs(1)) {
            Outcome::Diverge(d) => {
                assert_eq!(d.diffs[0].field, "points");
                assert_eq!(d.diffs[0].expected, "[]");
                assert_eq!(d.diffs[0].observed, "[0]");
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn unsupported_names_the_advice_or_op() {
        let p = prog();
        let e = vec![(id(0), allow(Ret::Ok)), (id(1), Expect::Unsupported("reads".into()))];
        let h = host(vec![(id(0), obs(Ret::Ok)), (id(1), obs(Ret::Ok))]);
        match judge(&p, &e, &h, Duration::from_secs(1)) {
            Outcome::Unsupported { reason, advice } => assert_eq!((reason.as_str(), advice.as_str()), ("reads", "read")),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn timeout_is_a_divergence_after_matching_points() {
        let p = prog();
        let e = vec![(id(0), allow(Ret::Ok)), (id(1), allow(Ret::Ok))];
        let h = HostRun { points: vec![(id(0), obs(Ret::Ok))], poisoned: None, timed_out: true };
        match judge(&p, &e, &h, Duration::from_millis(5)) {
            Outcome::Diverge(d) => {
                assert_eq!(d.diffs[0].field, "timeout");
                assert_eq!(d.step, Some(id(1)));
            }
            o => panic!("{o:?}"),
        }
    }
}
