//! The system-call entry: one program step on the model, and `simulate`, which runs a whole program
//! (with its fork children) and collects what each observation point may show.
//!
//! Invariant: after a step the model expects to be fatal, or does not know, no more points follow.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine, StepOut, Unsupported, MREMAP_MODELLED};
use crate::observe::{Allowed, Expect, Ret, Signal};
use crate::mm::madvise::process_madvise_gate;
use crate::program::{ArenaGeometry, PidfdTarget, Program, Step, StepId};

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
            // A caught fault: `access` returns the signal before it changes anything (the fault handler
            // refuses the access before it allocates: arch/x86/mm/fault.c:do_user_addr_fault access_error,
            // bad_area_access_error; a guard marker: VM_FAULT_SIGSEGV from mm/memory.c:handle_pte_marker), so the
            // state stays as it was and the signal is this step's result [T 6.18.44 try_* corpus cases].
            Step::TryWrite { page, fill } => match self.access(model, page as i64, Some(fill)) {
                StepOut::Fatal(sig) => StepOut::Ret(Ret::Signal(sig)),
                out => out,
            },
            Step::TryRead { page } => match self.access(model, page as i64, None) {
                StepOut::Fatal(sig) => StepOut::Ret(Ret::Signal(sig)),
                out => out,
            },
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
            // A fork child's own fork is `simulate`'s (fork_in_child); a grandchild may not fork.
            Step::Fork { .. } => return Err("a fork inside a grandchild is not modelled".into()),
            Step::ForkLive | Step::InChild { .. } | Step::ChildExit => {
                return Err("a live-fork step inside a forked child is not modelled".into())
            }
            Step::Mseal { page, pages } => StepOut::Ret(self.mseal(model, page as i64, (page + pages) as i64)),
            Step::Ftruncate { file, pages } => StepOut::Ret(self.ftruncate(file as usize, pages as usize)?),
            Step::Close { file } => StepOut::Ret(self.close_file(file as usize)),
            Step::Seal { file, ref seals } => StepOut::Ret(self.add_seals(file as usize, seals)),
            Step::Fallocate { file, page, pages, mode } => {
                StepOut::Ret(self.fallocate(file as usize, page as usize, pages as usize, mode)?)
            }
            // On the caller's own mm; a live child's mm is `simulate`'s (with no live child alive, the
            // gate answers ESRCH for it).
            Step::ProcessMadvise { target, ref iov, vlen, advice, flags } => {
                let vlen = Step::pm_vlen(iov, vlen);
                match crate::mm::madvise::process_madvise_gate(model, self.arena.base, target, false, iov, vlen, advice.value(), flags) {
                    Err(ret) => StepOut::Ret(ret),
                    Ok((elems, _)) => StepOut::Ret(self.vector_madvise(model, &elems, advice.value())?),
                }
            }
            Step::PkeyAlloc { rights } => StepOut::Ret(self.pkey_alloc(model, rights)?),
            Step::PkeyFree { pkey } => StepOut::Ret(self.pkey_free(model, pkey)?),
            Step::PkeyMprotect { page, pages, prot, pkey } => {
                StepOut::Ret(self.pkey_mprotect(model, page as i64, (page + pages) as i64, prot, pkey)?)
            }
            Step::PkeySet { pkey, rights } => StepOut::Ret(self.pkey_set(model, pkey, rights)?),
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
                    // the 6.17+ checks the model does not place [S 6.12 mm/mremap.c:vma_to_resize]. (What
                    // a DONTUNMAP move leaves in mm->locked_vm is modelled, `mremap_dontunmap_locked_vm`,
                    // but not yet checked against the limit in this order.)
                    return Err("mremap while VM_LOCKED VMAs exist under RLIMIT_MEMLOCK is not modelled".into());
                }
                StepOut::Ret(self.mremap(model, page as i64, pages as i64, new_pages as i64, to.map(|t| t as i64), dontunmap))
            }
        })
    }
}

/// Why this program cannot run in this environment at all, before its first step: a disk file where the
/// scratch directory cannot hold one, a tmpfs file without a usable tmpfs directory, or a layout mapping the kernel would refuse (MAP_LOCKED past
/// RLIMIT_MEMLOCK), which the worker could not set up. The runner does not send such a program to a
/// worker; the model answers it Unsupported with this reason.
pub fn environment_refusal(model: &KernelModel, arena: &ArenaGeometry, prog: &Program) -> Option<String> {
    if let Some(w) = prog.word_bits.filter(|&w| w != model.word_bits) {
        // Its arguments are written for the other `size_t`: on this kernel they could mean a range
        // outside the arena (cases/FORMAT.md, "Madvise arithmetic").
        return Some(format!(
            "the scenario's madvise arithmetic is written for a {w}-bit kernel (word_bits); this kernel's word is {} bits",
            model.word_bits
        ));
    }
    if prog.files.iter().any(|f| f.kind == crate::program::FileKind::Disk) {
        if let Some(why) = &model.facts.disk_files_unavailable {
            return Some(why.clone());
        }
    }
    if !model.map_droppable && prog.maps.iter().any(|m| m.backing == crate::program::Backing::AnonDroppable) {
        // The layout cannot be set up: MAP_DROPPABLE is EINVAL before 6.11 (an unknown map type) and
        // unsupported on 32-bit kernels [S 6.12 mm/mmap.c:do_mmap].
        return Some("a MAP_DROPPABLE layout mapping needs a 64-bit kernel 6.11 or later (KernelModel::map_droppable)".into());
    }
    if prog.files.iter().any(|f| f.kind == crate::program::FileKind::Tmpfs) {
        if let Some(why) = &model.facts.tmpfs_files_unavailable {
            return Some(why.clone());
        }
    }
    if model.pkeys != crate::kernel::Pkeys::X86 && uses_pkey_set(&prog.steps) {
        // WRPKRU is #UD without x86 PKU (OSPKE): the worker cannot run the step at all.
        return Some(format!(
            "pkey_set needs x86 protection keys (PKU with OSPKE); this kernel's CPU has none usable ({}, pkey_alloc: {})",
            model.facts.arch,
            match model.facts.pkeys {
                None => "not detected".to_string(),
                Some(p) if p.available => "available".to_string(),
                Some(p) => format!("{:?}", p.alloc_errno.unwrap_or(crate::observe::Errno::ENOSPC)),
            }
        ));
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

/// Is there a `pkey_set` step anywhere (fork children and `in_child` included)?
fn uses_pkey_set(steps: &[Step]) -> bool {
    steps.iter().any(|s| match s {
        Step::PkeySet { .. } => true,
        Step::Fork { child } => uses_pkey_set(child),
        Step::InChild { step } => uses_pkey_set(std::slice::from_ref(&**step)),
        _ => false,
    })
}

fn fatal_point(sig: Signal) -> Expect {
    Expect::Allowed(Allowed { ret: vec![Ret::Signal(sig)], vmas: vec![], pages: vec![], hugetlb: None, locked_vm: None })
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
        let id = StepId { step: si as u32, child: None, grandchild: None };
        match (step, &mut live) {
            (Step::ForkLive, Live::None) if m.holds_thp() => {
                out.push((id, Expect::Unsupported(FORK_THP.into())));
                return out;
            }
            (Step::ForkLive, Live::None) => {
                m.forked = true;
                let mut c = m.fork_live();
                c.forked = true;
                out.push((StepId { step: si as u32, child: Some(0), grandchild: None }, Expect::Allowed(c.expect(model, Ret::Ok))));
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
                        if !live_point(model, c, &mut m, id, r, &mut out) {
                            return out;
                        }
                    }
                }
                continue;
            }
            // process_madvise of the live child's mm: the parent calls, the point is the child's view.
            (Step::ProcessMadvise { target: PidfdTarget::LiveChild, iov, vlen, advice, flags }, Live::Alive(c)) => {
                let vlen = Step::pm_vlen(iov, *vlen);
                let r = match process_madvise_gate(model, m.arena.base, PidfdTarget::LiveChild, true, iov, vlen, advice.value(), *flags) {
                    Err(ret) => ret,
                    Ok((elems, _)) => match c.vector_madvise(model, &elems, advice.value()) {
                        Ok(r) => r,
                        Err(why) => {
                            out.push((id, Expect::Unsupported(why)));
                            return out;
                        }
                    },
                };
                if !live_point(model, c, &mut m, id, r, &mut out) {
                    return out;
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
            (Step::Close { file }, Live::Alive(_)) if m.objs[*file as usize].huge => {
                // The live child's copy of the fd keeps a hugetlb memfd alive after the parent's close.
                out.push((id, Expect::Unsupported("close of a hugetlb memfd while a live child exists is not modelled".into())));
                return out;
            }
            (Step::Seal { .. }, Live::Alive(_)) => {
                // Seals live on the inode the live child maps too: its mappings count for F_SEAL_WRITE's
                // EBUSY and its later calls meet the seals, which sync_live does not carry over.
                out.push((id, Expect::Unsupported("seal while a live child exists is not modelled".into())));
                return out;
            }
            (Step::Ftruncate { .. }, Live::Alive(_)) => {
                // Shrinking would also unmap the live child's COW copies past the new end (even_cows),
                // which sync_live does not carry over.
                out.push((id, Expect::Unsupported("ftruncate while a live child exists is not modelled".into())));
                return out;
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
            out.push((StepId { step: si as u32, child: Some(0), grandchild: None }, Expect::Allowed(c.expect(model, Ret::Ok))));
            for (ci, cs) in child.iter().enumerate() {
                let cid = StepId { step: si as u32, child: Some(ci as u32 + 1), grandchild: None };
                if let Step::Fork { child: gsteps } = cs {
                    if !fork_in_child(model, &mut c, si as u32, ci as u32 + 1, gsteps, &mut out) {
                        return out;
                    }
                    continue;
                }
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

/// A fork step inside the fork child `c` (child step `cstep` - 1 of the fork at `step`): the grandchild
/// inherits the child's mm as the child inherited the parent's (DONTFORK VMAs missing, WIPEONFORK VMAs
/// empty, anon_vma chains, COW-shared pages, guard markers, mseal, mlock not inherited) [S 6.12
/// kernel/fork.c:dup_mmap; mm/memory.c:copy_page_range], runs its steps (points `step.child<cstep>.child<g>`)
/// and exits; what it did to shared objects is the child's, holes it punched unmap the child's PTEs (and,
/// carried in `punched`, the parent's), then the child's view is the point `step.child<cstep>`. `false`
/// when the model does not cover something (the point is Unsupported and the scenario ends).
fn fork_in_child(model: &KernelModel, c: &mut Machine, step: u32, cstep: u32, gsteps: &[Step], out: &mut Vec<(StepId, Expect)>) -> bool {
    let cid = StepId { step, child: Some(cstep), grandchild: None };
    let gid = |g: u32| StepId { step, child: Some(cstep), grandchild: Some(g) };
    if c.holds_thp() {
        out.push((gid(0), Expect::Unsupported(FORK_THP.into())));
        return false;
    }
    let mut g = c.fork_child();
    g.forked = true;
    out.push((gid(0), Expect::Allowed(g.expect(model, Ret::Ok))));
    for (gi, gs) in gsteps.iter().enumerate() {
        let id = gid(gi as u32 + 1);
        match g.run_step(model, gs) {
            Err(why) => {
                out.push((id, Expect::Unsupported(why)));
                return false;
            }
            Ok(StepOut::Fatal(sig)) => {
                out.push((id, fatal_point(sig)));
                break;
            }
            Ok(StepOut::Ret(r)) => out.push((id, Expect::Allowed(g.expect(model, r)))),
        }
    }
    c.objs = g.objs.clone();
    for (obj, first, last) in g.punched.clone() {
        if c.objs[obj].huge && c.huge_private_copies(obj, first, last) {
            out.push((cid, Expect::Unsupported(crate::kernel::fork::PUNCH_OTHER_COPIES.into())));
            return false;
        }
        c.unmap_cache(obj, first, last);
        c.punched.push((obj, first, last));
    }
    c.take_child_pool(&mut g);
    out.push((cid, Expect::Allowed(c.expect(model, Ret::Ok))));
    true
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

/// The point of a step the live child ran (an `in_child` step, or process_madvise of its mm): what it
/// did to shared objects is carried to the parent, then the child's view is the point. `false` when
/// the child met something the model does not cover (the point is Unsupported and the scenario ends).
fn live_point(model: &KernelModel, c: &mut Machine, m: &mut Machine, id: StepId, r: Ret, out: &mut Vec<(StepId, Expect)>) -> bool {
    Machine::sync_live(c, m);
    if let Some(why) = c.unknown.take() {
        out.push((id, Expect::Unsupported(why)));
        return false;
    }
    out.push((id, Expect::Allowed(c.expect(model, r))));
    true
}
