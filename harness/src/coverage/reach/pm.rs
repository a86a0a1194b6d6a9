//! The process_madvise rows of the coverage space: one row per pidfd target, one column per shape of
//! the call, one outcome per answer class.
//!
//! Invariant: a call's column and outcome come from the program and the host's return only. The columns:
//! `refused_vector` (flags != 0, vlen > UIO_MAXIOV, a NULL vector with vlen > 0, or a length that does not
//! fit ssize_t: refused by the syscall before the pidfd is looked at), `nothing_to_walk` (the elements
//! add up to 0 bytes), `remote_advice` (COLD, PAGEOUT, WILLNEED, COLLAPSE: what another process takes)
//! and `other_advice`. In the two walked columns a byte count is `advised`, EBADF, ESRCH and ENOSYS keep
//! their names (the pidfd and the syscall), and every other errno is `errno` (the advice check, the
//! capability check or the failing element: which one is the model's business, not the matrix's).
//! Reachability follows `SYSCALL_DEFINE5(process_madvise)`'s check order per `KernelModel`.

use super::{Unreachable, Why};
use simulator::observe::{Errno, Ret};
use simulator::program::{IovElem, PidfdTarget, Step, UIO_MAXIOV};
use simulator::{KernelFacts, KernelModel};

pub const PM_KINDS: [&str; 4] = ["refused_vector", "nothing_to_walk", "remote_advice", "other_advice"];
pub const PM_OUTCOMES: [&str; 9] = ["advised", "0 bytes", "errno", "EINVAL", "EFAULT", "EBADF", "ESRCH", "EPERM", "ENOSYS"];

const CITE: &str = "S 6.18 mm/madvise.c:SYSCALL_DEFINE5(process_madvise), vector_madvise, process_madvise_remote_valid; \
                    S 6.1, 6.12 mm/madvise.c:SYSCALL_DEFINE5(process_madvise); S 6.12 lib/iov_iter.c:__import_iovec";

/// The row of a target.
pub fn pm_row(t: PidfdTarget) -> String {
    format!("process_madvise {}", t.name())
}

/// The column of a process_madvise call on page size `ps`.
pub fn pm_kind(iov: &Option<Vec<IovElem>>, vlen: Option<u64>, advice: i32, flags: u32, ps: u64) -> &'static str {
    let n = Step::pm_vlen(iov, vlen);
    let elems: Vec<(u64, u64)> =
        iov.iter().flatten().take(n as usize).map(|e| e.raw(simulator::program::ARENA.base, ps)).collect();
    if flags != 0 || n > UIO_MAXIOV || (iov.is_none() && n > 0) || elems.iter().any(|&(_, l)| (l as i64) < 0) {
        return "refused_vector";
    }
    if elems.iter().all(|&(_, l)| l == 0) {
        return "nothing_to_walk";
    }
    use simulator::program::Advice::*;
    match simulator::program::Advice::from_value(advice) {
        Some(Cold | Pageout | Willneed | Collapse) => "remote_advice",
        _ => "other_advice",
    }
}

/// The outcome class of a return in a column.
pub fn pm_outcome(kind: &str, ret: Ret) -> String {
    let walked = matches!(kind, "remote_advice" | "other_advice");
    match ret {
        Ret::Bytes(0) => "0 bytes".into(),
        Ret::Bytes(_) => "advised".into(),
        Ret::Err(e @ (Errno::EBADF | Errno::ESRCH | Errno::ENOSYS)) => format!("{e:?}"),
        Ret::Err(_) if walked => "errno".into(),
        r => r.to_string(),
    }
}

/// What a target and column can answer on this kernel, in the syscall's check order.
fn reachable(m: &KernelModel, t: PidfdTarget, kind: &str) -> Vec<&'static str> {
    use PidfdTarget as T;
    if !m.process_madvise {
        return vec!["ENOSYS"];
    }
    if kind == "refused_vector" {
        return vec!["EINVAL", "EFAULT"];
    }
    let cap = m.facts.cap_sys_nice;
    match t {
        T::BadFd | T::NotPidfd => vec!["EBADF"],
        T::PidfdSelf if !m.pidfd_self => vec!["EBADF"],
        T::ExitedChild => vec!["ESRCH"],
        // A live child killed by an earlier in_child fault has been reaped: ESRCH.
        T::LiveChild => match kind {
            "nothing_to_walk" => vec!["ESRCH", "EINVAL", if cap { "0 bytes" } else { "EPERM" }],
            "remote_advice" if cap => vec!["ESRCH", "advised", "errno"],
            _ => vec!["ESRCH", "errno"],
        },
        T::SelfPidfd | T::PidfdSelf => {
            let any = m.process_madvise_self_any_advice;
            let needs_cap = m.process_madvise_self_needs_cap && !cap;
            match kind {
                "nothing_to_walk" if needs_cap => vec!["EINVAL", "EPERM"],
                "nothing_to_walk" if any && m.process_madvise_self_checks_advice => vec!["0 bytes", "EINVAL"],
                "nothing_to_walk" if any => vec!["0 bytes"],
                "nothing_to_walk" => vec!["EINVAL", "0 bytes"],
                "remote_advice" if !needs_cap => vec!["advised", "errno"],
                "other_advice" if any && !needs_cap => vec!["advised", "errno"],
                _ => vec!["errno"],
            }
        }
    }
}

/// Every process_madvise cell with its class on this kernel (None: reachable).
pub fn pm_space(m: &KernelModel) -> Vec<(String, &'static str, String, Option<Unreachable>)> {
    // Another kernel (a profile, with and without CAP_SYS_NICE) reaching a cell makes it "not this kernel".
    let others: Vec<KernelModel> = ["4.5", "6.1", "6.12", "6.18"]
        .iter()
        .flat_map(|p| {
            [true, false].map(|cap| {
                let mut f = KernelFacts::profile(p).expect("profile");
                f.cap_sys_nice = cap;
                KernelModel::from_facts(f)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in PidfdTarget::ALL {
        for k in PM_KINDS {
            let here = reachable(m, t, k);
            for o in PM_OUTCOMES {
                let class = if here.contains(&o) {
                    None
                } else {
                    let elsewhere = others.iter().any(|x| reachable(x, t, k).contains(&o));
                    Some(Unreachable {
                        why: if elsewhere { Why::ThisKernel } else { Why::Never },
                        reason: format!(
                            "process_madvise {} on {k} answers only {} on this kernel",
                            t.name(),
                            here.join(", ")
                        ),
                        cite: CITE,
                    })
                };
                out.push((pm_row(t), k, o.to_string(), class));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(p: &str) -> KernelModel {
        KernelModel::from_facts(KernelFacts::profile(p).unwrap())
    }

    fn reach(m: &KernelModel, t: PidfdTarget, k: &str, o: &str) -> bool {
        pm_space(m).iter().any(|c| c.0 == pm_row(t) && c.1 == k && c.2 == o && c.3.is_none())
    }

    #[test]
    fn every_cell_is_classified_per_version() {
        for p in ["4.5", "6.1", "6.12", "6.18"] {
            let s = pm_space(&model(p));
            assert_eq!(s.len(), PidfdTarget::ALL.len() * PM_KINDS.len() * PM_OUTCOMES.len());
        }
        let (m45, m612, m618) = (model("4.5"), model("6.12"), model("6.18"));
        assert!(reach(&m45, PidfdTarget::SelfPidfd, "remote_advice", "ENOSYS"));
        assert!(!reach(&m45, PidfdTarget::SelfPidfd, "remote_advice", "advised"));
        assert!(!reach(&m612, PidfdTarget::SelfPidfd, "other_advice", "advised"), "6.12: only the remote set");
        assert!(reach(&m618, PidfdTarget::SelfPidfd, "other_advice", "advised"), "6.13+: any advice on self");
        assert!(reach(&m612, PidfdTarget::PidfdSelf, "remote_advice", "EBADF"), "no PIDFD_SELF before 6.15");
        assert!(!reach(&m618, PidfdTarget::PidfdSelf, "remote_advice", "EBADF"));
        assert!(!reach(&m618, PidfdTarget::LiveChild, "other_advice", "advised"), "another process: only the remote set");
        assert!(reach(&m618, PidfdTarget::ExitedChild, "refused_vector", "EFAULT"), "the vector is read before the pidfd");
    }
}
