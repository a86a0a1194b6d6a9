//! The classifier: `RULES` first, then the walk over the VMAs a range of each kind may meet
//! (madvise_walk_vmas), and the whole cell space of one kernel (`space`).

use crate::coverage::reach::rules::{VmaRule, MEMORY_FAILURE, POPULATE, RULES, VMA_RULES};
use crate::coverage::reach::table::{advice_row, advice_rows, At, Ctx, Kind, Shape, Unreachable, Why, KINDS, OUTCOMES};
use simulator::observe::{Errno, Ret};
use simulator::program::Advice;
use simulator::KernelModel;

/// The per-VMA outcomes of `a` on a VMA of shape `s`: the errors (each with its rule), and whether the
/// advice can succeed there.
fn on_vma(m: &KernelModel, a: Advice, s: &Shape) -> (Vec<(Errno, &'static VmaRule)>, bool) {
    let mut errs = Vec::new();
    for r in VMA_RULES {
        if r.advice.contains(&a) && (r.on)(s, m) {
            errs.push((r.errno, r));
            if r.always {
                return (errs, false);
            }
        }
    }
    (errs, true)
}

/// The outcomes the walk can give for a range starting on `kind` (already past the front end).
fn walk_outcomes(m: &KernelModel, a: Advice, kind: &Kind) -> Vec<Ret> {
    let mut shapes = Shape::all(m);
    if matches!(kind.at, At::AfterFork) {
        // A fork with hugetlb mappings is destructive: never run on a host (judge::hugetlb_refusal), and
        // the default suite this space describes has none. A guest run with --destructive and --coverage
        // may reach such cells and report them as WRONG REASON.
        shapes.retain(|s| !s.backing.hugetlb());
    }
    let later: Vec<Ret> = shapes
        .iter()
        .flat_map(|s| on_vma(m, a, s).0)
        .filter(|(_, r)| !r.first_only)
        .map(|(e, _)| Ret::Err(e))
        .collect();
    let mut out = Vec::new();
    let start = |pred: fn(&Shape) -> bool, out: &mut Vec<Ret>| {
        for s in shapes.iter().filter(|s| pred(s)) {
            let (errs, ok) = on_vma(m, a, s);
            out.extend(errs.iter().map(|(e, _)| Ret::Err(*e)));
            if ok {
                // It may succeed here and go on into a hole or any other VMA.
                out.extend([Ret::Ok, Ret::Err(Errno::ENOMEM)]);
                out.extend(later.iter().copied());
            }
        }
    };
    let populate_stops = POPULATE.contains(&a) && m.populate_linear;
    // After a hole the walk returns ENOMEM only if every VMA it then meets lets the advice through.
    let any_ok = shapes.iter().any(|s| on_vma(m, a, s).1);
    match kind.at {
        At::Start(pred) => start(pred, &mut out),
        At::Hole => out.push(Ret::Err(Errno::ENOMEM)),
        At::HoleThenMapped => {
            if populate_stops {
                out.push(Ret::Err(Errno::ENOMEM));
            } else {
                out.extend(later.iter().copied());
                if any_ok {
                    out.push(Ret::Err(Errno::ENOMEM));
                }
            }
        }
        At::AfterFork => {
            start(|_| true, &mut out);
            out.push(Ret::Err(Errno::ENOMEM));
            if !populate_stops {
                out.extend(later.iter().copied());
            }
        }
        At::FrontEnd | At::ZeroLength => {}
    }
    out.sort();
    out.dedup();
    out
}

/// Classify one cell on this kernel: `None` when reachable.
pub fn classify(m: &KernelModel, advice: Option<Advice>, kind: &Kind, outcome: Ret) -> Option<Unreachable> {
    let c = Ctx { m, advice, kind, outcome };
    if let Some(r) = RULES.iter().find(|r| (r.when)(&c)) {
        return Some(Unreachable { why: r.why, reason: r.reason.to_string(), cite: r.cite });
    }
    // Past the rules, an advice this kernel refuses has outcome EINVAL, which every kind reaches.
    let a = advice.filter(|_| c.valid())?;
    if MEMORY_FAILURE.contains(&a) {
        // What the memory-failure rule above leaves: front end, len 0, hole, a child's hole.
        return None;
    }
    let front = |what: &str| Unreachable {
        why: Why::Never,
        reason: format!("{what} before any VMA is looked at"),
        cite: "S 6.18 mm/madvise.c:madvise_should_skip; spec §2",
    };
    match kind.at {
        At::FrontEnd if outcome != Ret::Err(Errno::EINVAL) => {
            return Some(front("an unaligned start or a length that rounds to 0 or wraps is EINVAL"))
        }
        At::ZeroLength if outcome != Ret::Ok => return Some(front("a length of 0 returns 0")),
        At::FrontEnd | At::ZeroLength => return None,
        _ => {}
    }
    let outs = walk_outcomes(m, a, kind);
    if outs.contains(&outcome) {
        return None;
    }
    Some(explain(m, a, kind, outcome))
}

/// Why the walk cannot give `outcome` for `a` on `kind`.
fn explain(m: &KernelModel, a: Advice, kind: &Kind, outcome: Ret) -> Unreachable {
    let walk = "S 6.18 mm/madvise.c:madvise_walk_vmas";
    match kind.at {
        At::Hole => Unreachable {
            why: Why::Never,
            reason: "no VMA in the range: the walk returns ENOMEM".into(),
            cite: walk,
        },
        At::HoleThenMapped if outcome == Ret::Ok => Unreachable {
            why: Why::Never,
            reason: "the range starts in a hole, so the call cannot return 0 (ENOMEM unless a VMA's error beats it)"
                .into(),
            cite: walk,
        },
        At::HoleThenMapped if outcome == Ret::Err(Errno::ENOMEM) => Unreachable {
            why: Why::ThisKernel,
            reason: format!("{} fails on every VMA, and a VMA's error beats the hole's ENOMEM", a.name()),
            cite: walk,
        },
        At::HoleThenMapped if POPULATE.contains(&a) && m.populate_linear => Unreachable {
            why: Why::ThisKernel,
            reason: "POPULATE faults linearly and stops at the first hole with ENOMEM (6.9+)".into(),
            cite: "S 6.12 mm/madvise.c:madvise_populate; simulator/src/kernel.rs populate_linear",
        },
        At::Start(pred) => {
            // Every shape of the kind fails at once: name the rule that stops the first of them.
            let shapes: Vec<Shape> = Shape::all(m).into_iter().filter(pred).collect();
            let stops: Vec<Option<&VmaRule>> = shapes
                .iter()
                .map(|s| match on_vma(m, a, s) {
                    (errs, false) => errs.last().map(|(_, r)| *r),
                    (_, true) => None,
                })
                .collect();
            match stops.first() {
                Some(Some(r)) if stops.iter().all(Option::is_some) => Unreachable {
                    why: r.why,
                    reason: format!(
                        "{} fails on the first VMA with {:?} ({}), and the walk returns the first VMA's error at once",
                        a.name(),
                        r.errno,
                        r.reason
                    ),
                    cite: r.cite,
                },
                _ => no_vma_gives(a, outcome),
            }
        }
        _ => no_vma_gives(a, outcome),
    }
}

fn no_vma_gives(a: Advice, outcome: Ret) -> Unreachable {
    Unreachable {
        why: Why::ThisKernel,
        reason: format!("{} returns {outcome} on no VMA madcheck can map here (reason::VMA_RULES)", a.name()),
        cite: "S 6.18 mm/madvise.c:madvise_vma_behavior",
    }
}

/// The whole cell space on this kernel: (row, kind, outcome, classification).
pub fn space(m: &KernelModel) -> Vec<(String, &'static str, Ret, Option<Unreachable>)> {
    let mut out = Vec::new();
    for a in advice_rows() {
        for k in &KINDS {
            for o in OUTCOMES {
                out.push((advice_row(a), k.name, o, classify(m, a, k, o)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulator::program::Advice::*;
    use simulator::KernelFacts;

    fn model(p: &str) -> KernelModel {
        KernelModel::from_facts(KernelFacts::profile(p).unwrap())
    }

    fn reach(m: &KernelModel, a: Option<Advice>, k: &str, o: Ret) -> bool {
        let kind = KINDS.iter().find(|x| x.name == k).unwrap();
        classify(m, a, kind, o).is_none()
    }

    #[test]
    fn pinned_cells_on_6_18() {
        let m = model("6.18");
        let e = |x| Ret::Err(x);
        assert!(reach(&m, Some(Dontneed), "anon_private", Ret::Ok));
        assert!(!reach(&m, Some(Dontneed), "locked", Ret::Ok));
        assert!(reach(&m, Some(Dontneed), "locked", e(Errno::EINVAL)));
        assert!(reach(&m, Some(Dontneed), "anon_shared", e(Errno::EPERM)), "via a sealed read-only VMA later");
        assert!(!reach(&m, Some(Free), "anon_shared", Ret::Ok));
        assert!(!reach(&m, Some(Free), "anon_shared", e(Errno::ENOMEM)));
        assert!(!reach(&m, Some(Free), "anon_private", e(Errno::EACCES)));
        assert!(reach(&m, Some(Remove), "anon_shared", e(Errno::EACCES)), "a private file VMA later");
        assert!(!reach(&m, Some(Willneed), "anon_private", e(Errno::EBADF)), "CONFIG_SWAP=y");
        assert!(!reach(&m, Some(Hwpoison), "anon_private", e(Errno::EINVAL)), "never run over a mapping");
        assert!(reach(&m, Some(Hwpoison), "hole", e(Errno::EINVAL)));
        assert!(!reach(&m, Some(PopulateRead), "hole_then_mapped", e(Errno::EINVAL)), "stops at the hole");
        assert!(reach(&m, None, "sealed", e(Errno::EINVAL)));
        assert!(!reach(&m, None, "sealed", Ret::Ok));
        assert!(!reach(&m, Some(Normal), "anon_private", e(Errno::EAGAIN)));
    }

    #[test]
    fn version_gates() {
        let m61 = model("6.1");
        assert!(!reach(&m61, Some(GuardInstall), "anon_private", Ret::Ok));
        assert!(!reach(&m61, Some(Dontneed), "sealed", Ret::Ok));
        assert!(reach(&m61, Some(PopulateRead), "hole_then_mapped", Ret::Err(Errno::EINVAL)), "per VMA in the walk");
        let m45 = model("4.5");
        assert!(reach(&m45, Some(Free), "anon_shared", Ret::Ok), "FREE falls back to DONTNEED");
        assert!(!reach(&m45, Some(Cold), "anon_private", Ret::Ok));
    }

    #[test]
    fn every_kind_and_outcome_is_classified_without_panicking() {
        for p in ["4.5", "6.1", "6.12", "6.18"] {
            let s = space(&model(p));
            assert_eq!(s.len(), advice_rows().len() * KINDS.len() * OUTCOMES.len());
            assert!(s.iter().any(|c| c.3.is_none()));
        }
    }
}
