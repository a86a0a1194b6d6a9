//! mm/mremap.c: mremap in place, with MREMAP_MAYMOVE / MREMAP_FIXED / MREMAP_DONTUNMAP (do_mremap,
//! move_vma, copy_vma), and the merge of the moved VMA.
//!
//! Invariants: the moved range keeps its contents, flags and anon_vma; DONTUNMAP leaves the source VMA
//! in place with its PTEs cleared.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine, Pte, Vma};
use crate::observe::{Errno, Ret};

impl Machine {
    /// mremap(2) with flags 0 (`to: None`) or MREMAP_MAYMOVE|MREMAP_FIXED[|MREMAP_DONTUNMAP]
    /// [S 6.12 mm/mremap.c:SYSCALL_DEFINE5(mremap), mremap_to, vma_to_resize, vma_expandable, move_vma;
    /// mm/vma.c:copy_vma. 6.16+ (refactor; UNVERIFIED release): check_mremap_params, then check_prep_vma
    /// before mremap_to. 6.17+ (d23cb648e365): remap_move for same-size fixed moves].
    pub(crate) fn mremap(&mut self, model: &KernelModel, s: i64, old: i64, new: i64, to: Option<i64>, dontunmap: bool) -> Ret {
        if dontunmap && old != new {
            return Ret::Err(Errno::EINVAL);
        }
        if new == 0 {
            return Ret::Err(Errno::EINVAL);
        }
        let overlaps = |dst: i64, old: i64, new: i64| s + old > dst && dst + new > s;
        if model.mremap_multi && self.vma_at(s).is_some_and(|i| self.vmas[i].flags & vmf::HUGETLB != 0) {
            // 6.17+ (remap_move, check_prep_vma with align_hugetlb per VMA): not read yet.
            self.unknown.get_or_insert_with(|| "mremap of a hugetlb VMA on 6.17+ (remap_move) is not modelled".into());
            return Ret::Err(Errno::EINVAL);
        }
        if let Some(dst) = to {
            if model.mremap_checks_first && overlaps(dst, old, new) {
                return Ret::Err(Errno::EINVAL);
            }
            if model.mremap_multi && old == new {
                return match self.remap_move(model, s, old, dst, dontunmap) {
                    Ok(()) => Ret::Ok,
                    Err(errno) => Ret::Err(errno),
                };
            }
        }
        let Some(i) = self.vma_at(s) else { return Ret::Err(Errno::EFAULT) };
        if self.vmas[i].flags & vmf::SEALED != 0 {
            return Ret::Err(Errno::EPERM);
        }
        // hugetlb: both lengths are rounded up to whole huge pages; an unaligned old or new address, or
        // growth ("the underlying hugetlb reservation is not yet capable to handle split reservation"),
        // is EINVAL, before anything is unmapped [S 6.1, 6.12 mm/mremap.c:SYSCALL_DEFINE5(mremap)
        // "if (is_vm_hugetlb_page(vma))" (since 5.16, 550a7d60bd5e); S 6.16 mm/mremap.c:align_hugetlb].
        let (old, new) = if self.vmas[i].flags & vmf::HUGETLB != 0 {
            let up = |n: i64| (n + self.hp - 1) / self.hp * self.hp;
            let (old, new) = (up(old), up(new));
            if !self.huge_aligned(s) || to.is_some_and(|d| !self.huge_aligned(d)) || new > old {
                return Ret::Err(Errno::EINVAL);
            }
            (old, new)
        } else {
            (old, new)
        };
        let Some(dst) = to else {
            // In place: shrinking unmaps the tail; growing needs the range to end at the VMA's end and
            // free space after it, else ENOMEM (no MREMAP_MAYMOVE).
            if new <= old {
                if new < old {
                    if let Err(errno) = self.munmap_range(s + new, s + old) {
                        return Ret::Err(errno);
                    }
                }
                return Ret::Ok;
            }
            if let Err(errno) = self.check_prep_vma(s, old, new, false) {
                return Ret::Err(errno);
            }
            let v = self.vmas[i];
            let new_end = s + new;
            let next_start = self.vmas.get(i + 1).map(|n| n.start);
            if s + old != v.end || next_start.is_some_and(|n| n < new_end) {
                return Ret::Err(Errno::ENOMEM);
            }
            // vma_merge_extend: merge with an adjacent compatible next VMA, or just extend.
            let old_end = v.end;
            let merged = i + 1 < self.vmas.len() && {
                let n = self.vmas[i + 1];
                n.start == new_end
                    && Self::flags_file_match(model, &n, v.flags, v.obj)
                    && Self::anon_compatible_m(model, n.anon_vma, v.anon_vma)
                    && n.pgoff == v.pgoff + (new_end - v.start)
                    && Self::anon_pgoff_adjacent(model, v.flags, v.obj, v.anon_pgoff + (new_end - v.start), n.anon_pgoff)
            };
            if merged {
                let n = self.vmas.remove(i + 1);
                self.vmas[i].end = n.end;
                self.vmas[i].anon_vma = self.vmas[i].anon_vma.or(n.anon_vma);
                // The sticky VM_MAYBE_GUARD of the absorbed next VMA survives [T 6.18.44, case gen-8-3942].
                if model.guard_vma_flag {
                    self.vmas[i].flags |= n.flags & vmf::MAYBE_GUARD;
                }
            } else {
                self.vmas[i].end = new_end;
            }
            if self.vmas[i].flags & vmf::LOCKED != 0 {
                let _ = self.populate(model, i, old_end, new_end);
            }
            return Ret::Ok;
        };
        if model.mremap_checks_first {
            if let Err(errno) = self.check_prep_vma(s, old, new, dontunmap) {
                return Ret::Err(errno);
            }
        } else if overlaps(dst, old, new) {
            return Ret::Err(Errno::EINVAL);
        }
        match self.mremap_to(model, s, old, new, dst, dontunmap) {
            Ok(()) => Ret::Ok,
            Err(errno) => Ret::Err(errno),
        }
    }

    /// check_prep_vma / vma_to_resize: the source must start in a VMA and not run past its end; no
    /// DONTUNMAP or growth of VM_DONTEXPAND/VM_PFNMAP VMAs; sealed VMAs refuse
    /// [S 6.18 mm/mremap.c:check_prep_vma; S 6.12 mm/mremap.c:vma_to_resize, can_modify_vma].
    pub(crate) fn check_prep_vma(&self, s: i64, old: i64, new: i64, dontunmap: bool) -> Result<(), Errno> {
        let Some(i) = self.vma_at(s) else { return Err(Errno::EFAULT) };
        let v = self.vmas[i];
        if v.flags & vmf::SEALED != 0 {
            return Err(Errno::EPERM);
        }
        if dontunmap && v.flags & (vmf::DONTEXPAND | vmf::PFNMAP) != 0 {
            return Err(Errno::EINVAL);
        }
        // A shrinking move may cross VMA boundaries in the part it unmaps: only the kept head must lie in
        // one VMA [S 6.18 mm/mremap.c:check_prep_vma "We permit crossing of boundaries for the range
        // being unmapped due to a shrink"; S 6.12 mremap_to unmaps the tail before vma_to_resize;
        // T 6.18, case gen-1-136].
        if s + old.min(new) > v.end {
            return Err(Errno::EFAULT);
        }
        if new > old && v.flags & (vmf::DONTEXPAND | vmf::PFNMAP) != 0 {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    /// mremap_to: unmap the destination, drop a shrinking source's tail, (before 6.16: only now check
    /// the source), then move [S 6.12 mm/mremap.c:mremap_to; S 6.18 mm/mremap.c:mremap_to].
    pub(crate) fn mremap_to(&mut self, model: &KernelModel, s: i64, old: i64, new: i64, dst: i64, dontunmap: bool) -> Result<(), Errno> {
        self.munmap_range(dst, dst + new)?;
        let mut old = old;
        if old > new {
            self.munmap_range(s + new, s + old)?;
            old = new;
        }
        if !model.mremap_checks_first {
            self.check_prep_vma(s, old, new, dontunmap)?;
        }
        let i = self.vma_at(s).ok_or(Errno::EFAULT)?;
        self.move_vma(model, i, s, old, new, dst, dontunmap);
        Ok(())
    }

    /// remap_move (6.17+): a same-size fixed move may span several VMAs; each is moved on its own to
    /// the matching offset, so gaps are kept. A gap at the start → EFAULT; a VMA whose file has its own
    /// get_unmapped_area (ext4 here) may only be moved alone [S 6.17 mm/mremap.c:remap_move,
    /// vma_multi_allowed]. A failure part-way leaves the earlier VMAs moved.
    pub(crate) fn remap_move(&mut self, model: &KernelModel, s: i64, len: i64, dst: i64, dontunmap: bool) -> Result<(), Errno> {
        let e = s + len;
        let mut cur = s;
        let mut seen = false;
        let mut allowed = true;
        let mut last_end = 0;
        let mut target = dst;
        // for_each_vma_range visits each VMA meeting [s, e) once, in address order.
        while cur < e {
            let Some(i) = self.find_vma(cur) else { break };
            let v = self.vmas[i];
            if v.start >= e {
                break;
            }
            if !allowed {
                return Err(Errno::EFAULT);
            }
            if !seen && s < v.start {
                return Err(Errno::EFAULT);
            }
            let addr = v.start.max(cur);
            let piece = e.min(v.end) - addr;
            let offset = if seen { v.start - last_end } else { 0 };
            last_end = v.end;
            let new_addr = target + offset;
            // vma_multi_allowed refuses files with their own get_unmapped_area; anonymous memory, shmem
            // and ext4 files are all allowed [T 6.18: a move spanning an anon and an ext4 VMA succeeds].
            allowed = true;
            if seen && !allowed {
                return Err(Errno::EFAULT);
            }
            self.check_prep_vma(addr, piece, piece, dontunmap)?;
            self.mremap_to(model, addr, piece, piece, new_addr, dontunmap)?;
            seen = true;
            target = new_addr + piece;
            cur = addr + piece;
        }
        if seen {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    /// move_vma: copy the VMA to `dst` (merging there if it can), move the page tables (guard markers
    /// included), then unmap the old range, or with MREMAP_DONTUNMAP leave it mapped and empty.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn move_vma(&mut self, model: &KernelModel, mut i: usize, s: i64, old: i64, new: i64, dst: i64, dontunmap: bool) {
        let v = self.vmas[i];
        // A locked source is split around the range first (before the 6.16 refactor, and again with
        // needs_pre_split); 6.16 up to that fix does not split, and the whole source VMA loses
        // VM_LOCKED [S 7.3.4 mm/mremap.c:prep_move_vma; T 6.18, case gen-1-114; see
        // KernelModel::mremap_dontunmap_splits_locked].
        if dontunmap && v.flags & vmf::LOCKED != 0 && model.mremap_dontunmap_splits_locked {
            if s > v.start {
                self.split(i, s);
                i += 1;
            }
            if s + old < self.vmas[i].end {
                self.split(i, s + old);
            }
        }
        let v = self.vmas[i];
        // copy_vma: an anonymous VMA that was never faulted gets an address-based pgoff ("If anonymous vma
        // has not yet been faulted, update new pgoff") [S 6.18 mm/vma.c:copy_vma].
        let pgoff = if v.is_anonymous() && v.anon_vma.is_none() {
            self.base_vpn() + dst
        } else {
            v.pgoff + (s - v.start)
        };
        // The anonymous page offset moves with the address while unfaulted, and stays otherwise
        // [S 7.3.4 mm/vma.c:copy_vma "anon_pgoff = addr >> PAGE_SHIFT"].
        let anon_pgoff = if v.anon_vma.is_none() { self.base_vpn() + dst } else { v.anon_pgoff + (s - v.start) };
        let copy = Vma { start: dst, end: dst + new, flags: v.flags, obj: v.obj, pgoff, anon_pgoff, anon_vma: v.anon_vma };
        // Move the PTEs before the VMA list changes.
        let moved: Vec<Pte> = (s..s + old).map(|p| self.pte(p)).collect();
        self.clear_ptes(s, s + old);
        for (k, pte) in moved.into_iter().enumerate() {
            self.set_pte(dst + k as i64, pte);
        }
        let pos = self.vmas.iter().position(|w| w.start >= copy.end).unwrap_or(self.vmas.len());
        self.vmas.insert(pos, copy);
        // The source VMA may have shifted by the insertion.
        let src_idx = |m: &Machine| m.vmas.iter().position(|w| w.start <= s && s < w.end && (w.start, w.end) != (copy.start, copy.end));
        // copy_vma keeps an unfaulted source that stays (DONTUNMAP) out of the merge (6.12.115 to 6.15,
        // and again in 7.x); 6.12.0-6.12.114 and 6.16 up to that fix merge with it
        // [S 7.3.4 mm/vma.c:copy_vma; see KernelModel::mremap_kept_source_stays_apart].
        let skip_source = v.anon_vma.is_none() && dontunmap && model.mremap_kept_source_stays_apart;
        // 6.1.y: a kept, unfaulted source next to the destination blocks every merge there
        // ("disallow a self-merge ... simply do not attempt to merge") [S 6.1.192 mm/mmap.c:copy_vma;
        // T Debian 6.1.192, case gen-3-686].
        let adjacent = dst == v.end || v.start == dst + new;
        if !(skip_source && model.mremap_kept_source_blocks_merge && adjacent) {
            let keep_out = if skip_source { src_idx(self) } else { None };
            let _ = self.merge_inserted(model, pos, keep_out);
        }
        if v.flags & vmf::HUGETLB != 0 {
            self.huge_move_reservations(s, old, dst, src_idx(self));
        }
        if dontunmap {
            if let Some(j) = src_idx(self) {
                let base = self.base_vpn();
                let w = &mut self.vmas[j];
                // The kept source is no longer locked (vm_flags_clear(vma, VM_LOCKED_MASK))
                // [S 6.18 mm/mremap.c:dontunmap_complete; S 6.12 mm/mremap.c:move_vma].
                let was_locked = w.flags & vmf::LOCKED != 0;
                w.flags &= !(vmf::LOCKED | vmf::LOCKONFAULT);
                // 6.16.y also clears VM_ACCOUNT there (KernelModel::mremap_dontunmap_clears_source_account).
                if model.mremap_dontunmap_clears_source_account {
                    w.flags &= !vmf::ACCOUNT;
                }
                let w = *w;
                // mm->locked_vm keeps counting the source VMA that lost VM_LOCKED (6.16 to 7.2.6), or
                // what of it lies outside the moved range (7.2.9); the new VMA is counted either way
                // [S 6.18 mm/mremap.c:move_vma, vrm_stat_account, dontunmap_complete; T Debian 6.16.3,
                // 7.2.6, 7.2.9 and the 6.18.44 host; see KernelModel::mremap_dontunmap_locked_vm].
                if was_locked {
                    use crate::kernel::DontunmapLockedVm as L;
                    self.locked_vm_extra += match model.mremap_dontunmap_locked_vm {
                        L::Exact => 0,
                        L::CountsSourceVma => (w.end - w.start) as u64,
                        L::CountsSourceRest => (w.end - w.start - old) as u64,
                    };
                }
                if was_locked {
                    // ... but the pages it still maps stay mlocked (see `stale_mlock`).
                    for p in w.start..w.end {
                        match self.pte(p) {
                            Pte::Anon { folio, .. } => {
                                self.stale_mlock_anon.insert(folio);
                            }
                            Pte::Cache => {
                                self.stale_mlock.insert((w.obj.unwrap(), w.obj_page(p)));
                            }
                            _ => {}
                        }
                    }
                }
                let w = &mut self.vmas[j];
                if w.start == s && w.end == s + old {
                    w.anon_vma = None;
                    // 6.12 (and 7.x again) also gives the now unfaulted anonymous VMA an address-based
                    // pgoff; 6.18's dontunmap_complete only unlinks the anon_vma [S 6.12
                    // mm/mremap.c:move_vma; S 7.3.4 mm/mremap.c:dontunmap_complete; S 6.18 same;
                    // T 6.18, case gen-2-31058; see KernelModel::mremap_dontunmap_resets_pgoff].
                    if w.obj.is_none() && model.mremap_dontunmap_resets_pgoff {
                        w.pgoff = base + w.start;
                    }
                    // 7.x resets the anonymous page offset of any kind of VMA ("vma_set_anon_pgoff(vma,
                    // pgoff_unfaulted)") [S 7.3.4 mm/mremap.c:dontunmap_complete].
                    if model.mremap_dontunmap_resets_pgoff {
                        w.anon_pgoff = base + w.start;
                    }
                }
            }
        } else {
            let _ = self.munmap_range(s, s + old);
        }
        // A grown locked VMA has its new part faulted in (mm_populate after the move)
        // [S 6.18 mm/mremap.c:do_mremap "if (!failed && vrm->mlocked && vrm->new_len > vrm->old_len)
        // mm_populate(...)"; S 6.12 SYSCALL_DEFINE5(mremap), same test on `locked`].
        if new > old {
            if let Some(j) = self.vma_at(dst) {
                if self.vmas[j].flags & vmf::LOCKED != 0 {
                    let _ = self.populate(model, j, dst + old, dst + new);
                }
            }
        }
    }

    /// A hugetlb move: the moved range's reservations go with the new VMA, which shares the owner's
    /// reservation map (hugetlb_vm_op_open takes a reference); then the whole source VMA drops its
    /// reference and stops being an owner (clear_vma_resv_huge_pages, since 6.16 through
    /// fixup_hugetlb_reservations), so what is left of it after the source range is unmapped neither
    /// consumes nor gives back its reservations: they stay counted in HugePages_Rsvd until reboot (a leak
    /// on every version with hugetlb mremap, 5.16 on) [S 6.1, 6.12 mm/mremap.c:move_vma;
    /// S 6.16 mm/mremap.c:copy_vma_and_data; mm/hugetlb.c:clear_vma_resv_huge_pages,
    /// hugetlb_vm_op_close; docs/findings.md].
    fn huge_move_reservations(&mut self, s: i64, len: i64, dst: i64, src: Option<usize>) {
        for k in 0..len {
            let r = std::mem::replace(&mut self.huge_resv[(s + k) as usize], false);
            self.huge_resv[(dst + k) as usize] = r;
        }
        if let Some(j) = src {
            let w = &mut self.vmas[j];
            w.flags &= !vmf::RESV_OWNER;
            let (a, b) = (w.start, w.end);
            for p in a..b {
                // Leaked: still counted in Rsvd, never consumed or given back.
                self.huge_resv[p as usize] = false;
            }
        }
    }

    /// vma_merge_new_range for a VMA just inserted at vmas[i] (an mmap, or the copy mremap's copy_vma
    /// made, which carries the source's anon_vma). `keep_out`: a source VMA that stays and may not be
    /// merged with. Sticky flags (VM_MAYBE_GUARD on 6.18.y) survive into the merged VMA
    /// [S 6.18 mm/vma.c:vma_merge_new_range, can_vma_merge_left/right; T 6.18.44 for the sticky flag].
    pub(crate) fn merge_inserted(&mut self, model: &KernelModel, i: usize, keep_out: Option<usize>) -> usize {
        let v = self.vmas[i];
        let ok = |o: &Vma, idx: usize| {
            keep_out != Some(idx)
                && Self::flags_file_match(model, o, v.flags, v.obj)
                && Self::anon_compatible_m(model, o.anon_vma, v.anon_vma)
        };
        let left = i > 0 && {
            let p = self.vmas[i - 1];
            p.end == v.start
                && ok(&p, i - 1)
                && p.pgoff + p.pages() == v.pgoff
                && Self::anon_pgoff_adjacent(model, v.flags, v.obj, p.anon_pgoff + p.pages(), v.anon_pgoff)
        };
        let right = i + 1 < self.vmas.len() && {
            let n = self.vmas[i + 1];
            n.start == v.end
                && ok(&n, i + 1)
                && n.pgoff == v.pgoff + v.pages()
                && Self::anon_pgoff_adjacent(model, v.flags, v.obj, v.anon_pgoff + v.pages(), n.anon_pgoff)
                && (!left || Self::anon_pair_compatible(model, self.vmas[i - 1].anon_vma, n.anon_vma))
        };
        let sticky = |a: u64| if model.guard_vma_flag { a & vmf::MAYBE_GUARD } else { 0 };
        match (left, right) {
            (true, true) => {
                let n = self.vmas[i + 1];
                let p = &mut self.vmas[i - 1];
                p.end = n.end;
                p.flags = v.flags | sticky(p.flags | n.flags);
                p.anon_vma = p.anon_vma.or(v.anon_vma).or(n.anon_vma);
                self.vmas.drain(i..i + 2);
                i - 1
            }
            (true, false) => {
                let p = &mut self.vmas[i - 1];
                p.end = v.end;
                p.flags = v.flags | sticky(p.flags);
                p.anon_vma = p.anon_vma.or(v.anon_vma);
                self.vmas.remove(i);
                i - 1
            }
            (false, true) => {
                let n = &mut self.vmas[i + 1];
                n.start = v.start;
                n.pgoff = v.pgoff;
                n.anon_pgoff = v.anon_pgoff;
                n.flags = v.flags | sticky(n.flags);
                n.anon_vma = n.anon_vma.or(v.anon_vma);
                self.vmas.remove(i);
                i
            }
            (false, false) => i,
        }
    }
}
