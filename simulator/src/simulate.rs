//! The system-call entry: one program step on the model, and `simulate`, which runs a whole program
//! (with its fork children) and collects what each observation point may show.
//!
//! Invariant: after a step the model expects to be fatal, or does not know, no more points follow.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine, StepOut, Unsupported, MREMAP_MODELLED};
use crate::observe::{Allowed, Expect, Ret, Signal};
use crate::program::{ArenaGeometry, Program, Step, StepId};

impl Machine {
    pub(crate) fn run_step(&mut self, model: &KernelModel, step: &Step) -> Result<StepOut, Unsupported> {
        let out = self.run_step_inner(model, step)?;
        self.thp_fixup();
        match self.unknown.take() {
            Some(why) => Err(why),
            None => Ok(out),
        }
    }

    pub(crate) fn run_step_inner(&mut self, model: &KernelModel, step: &Step) -> Result<StepOut, Unsupported> {
        let ps = self.ps as i64;
        Ok(match *step {
            Step::Madvise { page, offset, len_pages, len_bytes, advice } => {
                let start = (self.arena.base as i64).wrapping_add(page.wrapping_mul(ps)).wrapping_add(offset) as u64;
                let len = len_pages.wrapping_mul(ps).wrapping_add(len_bytes) as u64;
                StepOut::Ret(self.madvise(model, start, len, advice.value())?)
            }
            Step::Write { page, fill } => self.access(model, page as i64, Some(fill)),
            Step::Read { page } => self.access(model, page as i64, None),
            Step::Mprotect { page, pages, prot } => {
                StepOut::Ret(self.mprotect(model, page as i64, (page + pages) as i64, prot))
            }
            Step::Munmap { page, pages } => StepOut::Ret(match self.munmap_range(page as i64, (page + pages) as i64) {
                Ok(()) => Ret::Ok,
                Err(errno) => Ret::Err(errno),
            }),
            Step::Mmap { ref map } => StepOut::Ret(self.mmap(model, map)),
            Step::Mlock { page, pages, onfault } => {
                StepOut::Ret(self.mlock(model, page as i64, (page + pages) as i64, onfault))
            }
            Step::Munlock { page, pages } => StepOut::Ret(self.munlock(model, page as i64, (page + pages) as i64)),
            Step::Fork { .. } => return Err("a fork inside a forked child is not modelled".into()),
            Step::ForkLive | Step::InChild { .. } | Step::ChildExit => {
                return Err("a live-fork step inside a forked child is not modelled".into())
            }
            Step::Mseal { page, pages } => StepOut::Ret(self.mseal(model, page as i64, (page + pages) as i64)),
            Step::Mremap { page, pages, new_pages, to, dontunmap } => {
                if !MREMAP_MODELLED {
                    return Err("mremap is not fully modelled yet (moves that resize, and the 6.17+ multi-VMA \
                                move, still diverge from 6.18)"
                        .into());
                }
                if self.touches_thp(page as i64, (page + pages) as i64) {
                    return Err("mremap of a THP (move_huge_pmd) is not modelled".into());
                }
                if model.mlock_limit_pages.is_some() && self.vmas.iter().any(|v| v.flags & vmf::LOCKED != 0) {
                    // Growing a VM_LOCKED VMA checks mlock_future_ok on the delta (EAGAIN) at a point of
                    // the 6.17+ checks the model does not place [S 6.12 mm/mremap.c:vma_to_resize], and
                    // what a move does to mm->locked_vm is not modelled: 6.18.44 kept it raised after
                    // an MREMAP_DONTUNMAP move of a VM_LOCKED range (gen-1-1476; the next scenario on
                    // that worker got EAGAIN for a MAP_LOCKED layout within the limit).
                    return Err("mremap while VM_LOCKED VMAs exist under RLIMIT_MEMLOCK is not modelled".into());
                }
                StepOut::Ret(self.mremap(model, page as i64, pages as i64, new_pages as i64, to.map(|t| t as i64), dontunmap))
            }
        })
    }
}

/// Why this program cannot run in this environment at all, before its first step: a disk file where the
/// scratch directory cannot hold one, or a layout mapping the kernel would refuse (MAP_LOCKED past
/// RLIMIT_MEMLOCK), which the worker could not set up. The runner does not send such a program to a
/// worker; the model answers it Unsupported with this reason.
pub fn environment_refusal(model: &KernelModel, arena: &ArenaGeometry, prog: &Program) -> Option<String> {
    if prog.files.iter().any(|f| f.kind == crate::program::FileKind::Disk) {
        if let Some(why) = &model.facts.disk_files_unavailable {
            return Some(why.clone());
        }
    }
    if model.mlock_limit_pages.is_some() && prog.maps.iter().any(|m| m.locked) {
        let mut m = Machine::new(model, arena, prog);
        for (i, map) in prog.maps.iter().enumerate() {
            if let Ret::Err(e) = m.mmap(model, map) {
                return Some(format!(
                    "layout map {i} (MAP_LOCKED, {} pages) fails with {e:?} under RLIMIT_MEMLOCK {} pages without CAP_IPC_LOCK",
                    map.pages,
                    model.mlock_limit_pages.unwrap_or(0)
                ));
            }
        }
    }
    None
}

fn fatal_point(sig: Signal) -> Expect {
    Expect::Allowed(Allowed { ret: vec![Ret::Signal(sig)], vmas: vec![], pages: vec![], hugetlb: None })
}

/// Run a program on the model: one expectation per observation point, in `Program::step_ids` order.
/// After a step the model expects to be fatal (a signal), or that it does not know, no more points follow.
pub fn simulate(model: &KernelModel, arena: &ArenaGeometry, prog: &Program) -> Vec<(StepId, Expect)> {
    if prog.uses_hugetlb() {
        let why = match (&model.facts.hugetlb_unavailable, model.hugetlb_pages) {
            (Some(why), _) => Some(why.clone()),
            (None, 0) => Some(format!(
                "hugetlb: the {} kB huge page of this kernel does not fit the {}-page arena (or there is no hugetlbfs)",
                model.facts.hugepage_kb, crate::program::HUGETLB_ARENA_PAGES
            )),
            _ => None,
        };
        if let (Some(why), Some(&first)) = (why, prog.step_ids().first()) {
            return vec![(first, Expect::Unsupported(why))];
        }
    }
    if let (Some(why), Some(&first)) = (environment_refusal(model, arena, prog), prog.step_ids().first()) {
        return vec![(first, Expect::Unsupported(why))];
    }
    let mut m = Machine::new(model, arena, prog);
    for map in &prog.maps {
        m.mmap(model, map);
    }
    let mut out = Vec::new();
    let mut live = Live::None;
    for (si, step) in prog.steps.iter().enumerate() {
        let id = StepId { step: si as u32, child: None };
        match (step, &mut live) {
            (Step::ForkLive, Live::None) if m.holds_thp() => {
                out.push((id, Expect::Unsupported(FORK_THP.into())));
                return out;
            }
            (Step::ForkLive, Live::None) => {
                m.forked = true;
                let mut c = m.fork_live();
                c.forked = true;
                out.push((StepId { step: si as u32, child: Some(0) }, Expect::Allowed(c.expect(model, Ret::Ok))));
                out.push((id, Expect::Allowed(m.expect(model, Ret::Ok))));
                live = Live::Alive(Box::new(c));
                continue;
            }
            (Step::InChild { step: cs }, Live::Alive(c)) => {
                match c.run_step(model, cs) {
                    Err(why) => {
                        out.push((id, Expect::Unsupported(why)));
                        return out;
                    }
                    Ok(StepOut::Fatal(sig)) => {
                        // The child dies; the worker reaps it and the parent goes on alone.
                        out.push((id, fatal_point(sig)));
                        m.objs = c.objs.clone();
                        m.take_child_pool(c);
                        m.live_child_gone();
                        live = Live::Dead(sig);
                    }
                    Ok(StepOut::Ret(r)) => {
                        Machine::sync_live(c, &mut m);
                        if let Some(why) = c.unknown.take() {
                            out.push((id, Expect::Unsupported(why)));
                            return out;
                        }
                        out.push((id, Expect::Allowed(c.expect(model, r))));
                    }
                }
                continue;
            }
            (Step::InChild { .. }, Live::Dead(sig)) => {
                out.push((id, fatal_point(*sig)));
                continue;
            }
            (Step::ChildExit, Live::Alive(_) | Live::Dead(_)) => {
                if let Live::Alive(c) = &mut live {
                    m.take_child_pool(c);
                }
                m.live_child_gone();
                live = Live::None;
                out.push((id, Expect::Allowed(m.expect(model, Ret::Ok))));
                continue;
            }
            (Step::ForkLive | Step::InChild { .. } | Step::ChildExit, _) | (Step::Fork { .. }, Live::Alive(_) | Live::Dead(_)) => {
                out.push((id, Expect::Unsupported(format!("{} out of order with the live child", step.op()))));
                return out;
            }
            _ => {}
        }
        if let Step::Fork { child } = step {
            if m.holds_thp() {
                out.push((id, Expect::Unsupported(FORK_THP.into())));
                return out;
            }
            m.forked = true;
            let mut c = m.fork_child();
            c.forked = true;
            out.push((StepId { step: si as u32, child: Some(0) }, Expect::Allowed(c.expect(model, Ret::Ok))));
            for (ci, cs) in child.iter().enumerate() {
                let cid = StepId { step: si as u32, child: Some(ci as u32 + 1) };
                match c.run_step(model, cs) {
                    Err(why) => {
                        out.push((cid, Expect::Unsupported(why)));
                        return out;
                    }
                    Ok(StepOut::Fatal(sig)) => {
                        out.push((cid, fatal_point(sig)));
                        break;
                    }
                    Ok(StepOut::Ret(r)) => out.push((cid, Expect::Allowed(c.expect(model, r)))),
                }
            }
            // What the child did to shared objects is visible to the parent; holes it punched unmap the
            // parent's page-cache PTEs too.
            m.objs = c.objs.clone();
            for (obj, first, last) in c.punched.clone() {
                if m.objs[obj].huge && m.huge_private_copies(obj, first, last) {
                    out.push((id, Expect::Unsupported(crate::kernel::fork::PUNCH_OTHER_COPIES.into())));
                    return out;
                }
                m.unmap_cache(obj, first, last);
            }
            // The child has exited (the worker reaps it before the parent is observed).
            m.take_child_pool(&mut c);
            out.push((id, Expect::Allowed(m.expect(model, Ret::Ok))));
            continue;
        }
        match m.run_step(model, step) {
            Err(why) => {
                out.push((id, Expect::Unsupported(why)));
                return out;
            }
            Ok(StepOut::Fatal(sig)) => {
                out.push((id, fatal_point(sig)));
                return out;
            }
            Ok(StepOut::Ret(r)) => {
                if let Live::Alive(c) = &mut live {
                    Machine::sync_live(&mut m, c);
                    if let Some(why) = m.unknown.take() {
                        out.push((id, Expect::Unsupported(why)));
                        return out;
                    }
                }
                out.push((id, Expect::Allowed(m.expect(model, r))))
            }
        }
    }
    out
}

/// copy_huge_pmd shares a PMD THP with the child, and a write on either side splits the PMD and copies
/// one page (do_huge_pmd_wp_page); none of it is modelled yet.
const FORK_THP: &str = "fork of a process that maps a THP is not modelled";

/// The live child of `simulate`, if any.
enum Live {
    None,
    Alive(Box<Machine>),
    /// Killed by this signal at an `in_child` step; the parent goes on until `child_exit`.
    Dead(Signal),
}

