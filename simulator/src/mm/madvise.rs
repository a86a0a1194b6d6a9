//! mm/madvise.c: the madvise(2) front end (check order, length rounding, the VMA walk with its ENOMEM
//! for holes) and the per-VMA advice (madvise_vma_behavior), delegating to the files of the advice's
//! kernel home (ksm, khugepaged, vmscan, hugetlb).
//!
//! Invariants: a refused advice changes nothing in the VMA it refuses; behaviour the model does not know
//! sets `Machine::unknown` and the step answers Unsupported.

use crate::kernel::{KernelModel, Mutation};
use crate::machine::{vmf, Machine, Pte, Unsupported, GUARDS_MODELLED};
use crate::mm::khugepaged::hugepage_madvise;
use crate::observe::{Errno, Ret};
use crate::program::Advice;

impl Machine {
    /// The syscall front end, then the VMA walk [S 6.18 mm/madvise.c:madvise_should_skip,
    /// is_valid_madvise, madvise_do_behavior, madvise_walk_vmas; 4.5 SYSCALL_DEFINE3(madvise)].
    pub(crate) fn madvise(&mut self, model: &KernelModel, start: u64, len_in: u64, value: i32) -> Result<Ret, Unsupported> {
        let ps = self.ps;
        let adv = Advice::from_value(value);
        if model.hwpoison_before_validation && matches!(adv, Some(Advice::Hwpoison | Advice::SoftOffline)) && model.memory_failure {
            return Err("HWPOISON/SOFT_OFFLINE are not modelled".into());
        }
        if !model.advice_valid(value) {
            return Ok(Ret::Err(Errno::EINVAL));
        }
        let adv = adv.expect("valid advice has a name");
        if start % ps != 0 {
            return Ok(Ret::Err(Errno::EINVAL));
        }
        // PAGE_ALIGN and `start + len` wrap at the kernel's word size (KernelModel::word_bits).
        let (start, len_in) = (model.word(start), model.word(len_in));
        let len = model.word(len_in.wrapping_add(ps - 1) & !(ps - 1));
        if len_in != 0 && len == 0 {
            return Ok(Ret::Err(Errno::EINVAL));
        }
        let end = model.word(start.wrapping_add(len));
        if end < start {
            return Ok(Ret::Err(Errno::EINVAL));
        }
        if len == 0 {
            return Ok(Ret::Ok);
        }
        let base = self.arena.base as i128;
        let s = ((start as i128 - base) / ps as i128) as i64;
        let e = ((end as i128 - base) / ps as i128) as i64;
        match adv {
            Advice::Hwpoison | Advice::SoftOffline => {
                return Err(format!("advice {} (memory-failure injection) is not modelled yet", adv.name()))
            }
            Advice::GuardInstall | Advice::GuardRemove if !GUARDS_MODELLED => {
                return Err(format!("advice {} is not modelled yet", adv.name()))
            }
            Advice::PopulateRead | Advice::PopulateWrite if model.populate_linear => {
                return Ok(self.populate_linear(model, adv == Advice::PopulateWrite, s, e));
            }
            _ => {}
        }
        Ok(self.walk(model, adv, s, e))
    }

    /// 6.9+: madvise_populate → faultin_page_range over [s, e) in address order; a hole → ENOMEM, a VMA
    /// the access is not allowed on → EINVAL, both after the pages before it were faulted in
    /// [S 6.12 mm/madvise.c:madvise_populate, mm/gup.c:faultin_page_range, __get_user_pages
    /// (FOLL_MADV_POPULATE), check_vma_flags].
    pub(crate) fn populate_linear(&mut self, model: &KernelModel, write: bool, s: i64, e: i64) -> Ret {
        let mut cur = s;
        while cur < e {
            let Some(i) = self.vma_at(cur) else { return Ret::Err(Errno::ENOMEM) };
            let end = self.vmas[i].end.min(e);
            if let Err(errno) = self.populate_vma(model, i, cur, end, write) {
                return Ret::Err(errno);
            }
            cur = end;
        }
        Ret::Ok
    }

    /// Fault in [s, e) of vmas[i] as MADV_POPULATE_(READ|WRITE) does, without FOLL_FORCE.
    pub(crate) fn populate_vma(&mut self, model: &KernelModel, i: usize, s: i64, e: i64, write: bool) -> Result<(), Errno> {
        let v = self.vmas[i];
        // check_vma_flags: VM_IO|VM_PFNMAP, missing VM_WRITE for a write, missing VM_READ for a read
        // → -EFAULT, which FOLL_MADV_POPULATE reports as -EINVAL [S 6.12 mm/gup.c].
        if v.flags & (vmf::IO | vmf::PFNMAP) != 0
            || (write && v.flags & vmf::WRITE == 0)
            || (!write && v.flags & vmf::READ == 0)
        {
            return Err(Errno::EINVAL);
        }
        // check_vma_flags: the thread's PKRU denies the access to the VMA's key → -EFAULT, which
        // FOLL_MADV_POPULATE reports as -EINVAL like a missing VM_READ/VM_WRITE [S 6.12 mm/gup.c:
        // check_vma_flags (arch_vma_access_permitted, not foreign); T Debian 6.12.118 x86_64 under qemu
        // -cpu max (PKU): POPULATE_READ on an access-disabled key and POPULATE_WRITE on a
        // write-disabled one are EINVAL, cases pkey_*_populate_*].
        if !self.pkru_allows(&v, write) {
            return Err(Errno::EINVAL);
        }
        for p in s..e {
            if self.pte(p) == Pte::Guard {
                // The fault handler answers VM_FAULT_SIGSEGV → -EFAULT [T spec §5 GUARD_INSTALL].
                return Err(Errno::EFAULT);
            }
            if self.past_eof(i, p) {
                // VM_FAULT_SIGBUS → -EFAULT [S 6.18 mm/madvise.c:madvise_populate]; a read fault first
                // maps the cached neighbours (write faults have no fault-around).
                if !write {
                    self.fault_around_past_eof(model, i, p);
                }
                return Err(Errno::EFAULT);
            }
            if write {
                // A write fault: allocate or COW-break; shared mappings just map (and dirty) the page.
                let needs = match self.pte(p) {
                    Pte::Anon { shared, .. } => shared,
                    Pte::Cache => v.flags & vmf::SHARED == 0,
                    _ => true,
                };
                if needs {
                    self.fault_write(model, i, p, None);
                }
                self.touch_write(p);
            } else {
                self.fault_read(model, i, p);
            }
        }
        Ok(())
    }

    /// madvise_walk_vmas: apply per VMA; a hole sets ENOMEM but the walk goes on; the first per-VMA
    /// error returns at once [S 6.18 mm/madvise.c:madvise_walk_vmas; T spec §2.3].
    pub(crate) fn walk(&mut self, model: &KernelModel, adv: Advice, s: i64, e: i64) -> Ret {
        let mut unmapped = false;
        let mut cur = s;
        loop {
            let Some(i) = self.find_vma(cur) else { return Ret::Err(Errno::ENOMEM) };
            if cur < self.vmas[i].start {
                unmapped = true;
                cur = self.vmas[i].start;
                if cur >= e {
                    break;
                }
            }
            let end = self.vmas[i].end.min(e);
            if let Err(errno) = self.advise_vma(model, adv, i, cur, end) {
                return Ret::Err(errno);
            }
            cur = end;
            if cur >= e {
                break;
            }
        }
        if unmapped {
            Ret::Err(Errno::ENOMEM)
        } else {
            Ret::Ok
        }
    }

    /// madvise_vma_behavior for [s, e) inside vmas[i] [S 6.18 mm/madvise.c].
    pub(crate) fn advise_vma(&mut self, model: &KernelModel, adv: Advice, i: usize, s: i64, e: i64) -> Result<(), Errno> {
        let v = self.vmas[i];
        let mut nf = v.flags;
        // can_modify_vma_madv: "discard" advice on a sealed, private anonymous, non-writable VMA → EPERM,
        // checked per VMA first (6.12+) [S 6.12 mm/mseal.c:is_madv_discard, is_ro_anon]; 6.18 also
        // counts GUARD_INSTALL [T spec §5 mseal]. "Not writable" is also a key this thread's PKRU
        // write-disables (WD or AD): `!arch_vma_access_permitted(vma, true, false, false)` [S 6.12
        // mm/mseal.c:is_ro_anon; S 6.18 mm/madvise.c:can_madvise_modify].
        if v.flags & vmf::SEALED != 0
            && v.obj.is_none()
            && v.flags & vmf::SHARED == 0
            && (v.flags & vmf::WRITE == 0 || !self.pkru_allows(&v, true))
        {
            let discard = matches!(
                adv,
                Advice::Free | Advice::Dontneed | Advice::DontneedLocked | Advice::Remove | Advice::Dontfork | Advice::Wipeonfork
            ) || (adv == Advice::GuardInstall && model.mseal_refuses_guard_install);
            if discard {
                return Err(Errno::EPERM);
            }
        }
        if v.flags & vmf::HUGETLB != 0 {
            if let Some(r) = self.advise_hugetlb(model, adv, i, s, e) {
                return r;
            }
        }
        match adv {
            Advice::Willneed => {
                // Anonymous: swap-in readahead (nothing swapped here) or EBADF without CONFIG_SWAP;
                // files: vfs_fadvise readahead. No PTE changes [S 6.18 madvise_willneed; T spec §4.7].
                if v.obj.is_none() && model.willneed_anon_ebadf {
                    return Err(Errno::EBADF);
                }
                self.willneed_file(model, &v, s, e);
                return Ok(());
            }
            Advice::Dontneed => {
                // madvise_dontneed_free_valid_vma: VM_LOCKED|VM_PFNMAP → EINVAL (hugetlb has its own
                // rules, not reachable here) [S 6.18; T spec §5 DONTNEED].
                if v.flags & (vmf::LOCKED | vmf::PFNMAP) != 0 {
                    return Err(Errno::EINVAL);
                }
                if model.mutations.contains(&Mutation::DontneedKeepsAnon) {
                    for p in s..e {
                        if !matches!(self.pte(p), Pte::Anon { .. }) || self.vmas[i].obj.is_some() {
                            self.set_pte(p, Pte::None);
                        }
                    }
                    return Ok(());
                }
                self.zap(s, e);
                self.reclaim_empty_tables(model, s, e);
                return Ok(());
            }
            Advice::Free => {
                if v.flags & (vmf::LOCKED | vmf::PFNMAP) != 0 {
                    return Err(Errno::EINVAL);
                }
                if model.free_falls_back_to_dontneed {
                    // 4.5-4.11 without swap: FREE is DONTNEED [S 4.5 mm/madvise.c:madvise_free].
                    self.zap(s, e);
                    return Ok(());
                }
                // madvise_free_single_vma: anonymous VMAs only [S 6.18].
                if !v.is_anonymous() {
                    return Err(Errno::EINVAL);
                }
                // madvise_free_pte_range: present anon pages are marked lazy-free (clean); the zero
                // page and empty PTEs are skipped [S 6.18 mm/madvise.c]. A folio shared with another
                // process is marked too: only a PG_dirty or swap-cache folio must be mapped once
                // (folio_mapcount check); here anon folios are never PG_dirty (zap does not dirty anon
                // folios, and the only path that does, try_to_unmap_one on a re-dirtied lazy-free
                // page, is not tracked: UNVERIFIED for that page once shared) [S 6.12 mm/madvise.c:
                // madvise_free_pte_range; mm/memory.c:zap_present_folio_ptes; T 6.18.44, case
                // free_on_page_shared_with_live_child]. The other process's PTE stays dirty, so only
                // this side shows LazyFree (smaps_account needs a clean PTE).
                if let Err(why) = self.thp_lru_advice(model, s, e, adv) {
                    self.unknown.get_or_insert(why);
                    return Ok(());
                }
                for p in s..e {
                    if let Pte::Anon { content, shared, folio, pgdirty, .. } = self.pte(p) {
                        // A PG_dirty folio must be mapped once to be cleaned and freed; a shared one is
                        // skipped, its PTE left dirty [S 6.12 mm/madvise.c:madvise_free_pte_range;
                        // T 6.18.44, case free_skips_redirtied_page_shared_with_live_child].
                        if pgdirty && shared {
                            continue;
                        }
                        self.set_pte(p, Pte::Anon { content, lazy: true, shared, folio, freed: true, pgdirty: false });
                    }
                }
                return Ok(());
            }
            Advice::Remove => return self.remove(model, i, s, e),
            Advice::DontneedLocked => {
                // Like DONTNEED, but VM_LOCKED is allowed (5.18, 9457056ac426) [S 6.12
                // mm/madvise.c:madvise_dontneed_free_valid_vma].
                if v.flags & vmf::PFNMAP != 0 {
                    return Err(Errno::EINVAL);
                }
                self.zap(s, e);
                self.reclaim_empty_tables(model, s, e);
                return Ok(());
            }
            Advice::Cold | Advice::Pageout => {
                // can_madv_lru_vma [S 6.12 mm/madvise.c].
                if v.flags & (vmf::LOCKED | vmf::PFNMAP | vmf::HUGETLB) != 0 {
                    return Err(Errno::EINVAL);
                }
                if let Err(why) = self.thp_lru_advice(model, s, e, adv) {
                    self.unknown.get_or_insert(why);
                    return Ok(());
                }
                self.pageout(i, s, e, adv == Advice::Pageout);
                // Otherwise COLD only deactivates pages and clears young bits: nothing a process can
                // observe besides timing [T spec §5 COLD].
                return Ok(());
            }
            Advice::PopulateRead | Advice::PopulateWrite => {
                // ≤6.8: per VMA inside the walk [S 6.1 mm/madvise.c:madvise_populate].
                return self.populate_vma(model, i, s, e, adv == Advice::PopulateWrite);
            }
            Advice::Collapse => return self.madvise_collapse(model, &v, s, e),
            Advice::GuardInstall | Advice::GuardRemove => return self.guard(model, adv, i, s, e),
            Advice::Hugepage | Advice::Nohugepage => nf = hugepage_madvise(adv, nf),
            Advice::Mergeable | Advice::Unmergeable => match self.ksm_madvise(model, adv, nf) {
                Some(flags) => nf = flags,
                None => return Ok(()),
            },
            // The readahead hints, DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK and DONTDUMP/DODUMP flag changes
            // and their refusals [S 6.18 mm/madvise.c:madvise_vma_behavior; S 4.5 madvise_behavior].
            Advice::Normal => nf &= !(vmf::RAND_READ | vmf::SEQ_READ),
            Advice::Sequential => nf = (nf & !vmf::RAND_READ) | vmf::SEQ_READ,
            Advice::Random => {
                if !model.mutations.contains(&Mutation::RandomSetsNoFlag) {
                    nf = (nf & !vmf::SEQ_READ) | vmf::RAND_READ;
                }
            }
            Advice::Dontfork => nf |= vmf::DONTCOPY,
            Advice::Dofork => {
                // VM_IO only; 7.x refuses all of VM_SPECIAL, hugetlb's VM_DONTEXPAND included
                // [S 6.18, S 7.3.4 mm/madvise.c:madvise_vma_behavior; KernelModel::dofork_refuses_special].
                let refused = if model.dofork_refuses_special { vmf::SPECIAL } else { vmf::IO };
                if nf & refused != 0 {
                    return Err(Errno::EINVAL);
                }
                nf &= !vmf::DONTCOPY;
            }
            Advice::Wipeonfork => {
                // "MADV_WIPEONFORK is only supported on anonymous memory" [S 6.18; T spec §5].
                if v.obj.is_some() || nf & vmf::SHARED != 0 {
                    return Err(Errno::EINVAL);
                }
                nf |= vmf::WIPEONFORK;
            }
            Advice::Keeponfork => {
                // A droppable VMA keeps VM_WIPEONFORK [S 6.12 mm/madvise.c:madvise_vma_behavior
                // (MADV_KEEPONFORK: "if (vma->vm_flags & VM_DROPPABLE) return -EINVAL"); T 6.18.44].
                if nf & vmf::DROPPABLE != 0 {
                    return Err(Errno::EINVAL);
                }
                nf &= !vmf::WIPEONFORK
            }
            Advice::Dontdump => nf |= vmf::DONTDUMP,
            Advice::Dodump => {
                // "if (!is_vm_hugetlb_page(vma) && new_flags & VM_SPECIAL) return -EINVAL" (4.19+), and
                // 6.11+ "|| (vma->vm_flags & VM_DROPPABLE)" [S 6.12 mm/madvise.c:madvise_vma_behavior;
                // T 6.18.44].
                if (nf & vmf::HUGETLB == 0 && nf & vmf::SPECIAL != 0) || nf & vmf::DROPPABLE != 0 {
                    return Err(Errno::EINVAL);
                }
                nf &= !vmf::DONTDUMP;
            }
            _ => unreachable!("filtered in madvise()"),
        }
        // madvise_update_vma: nothing to do when the flags do not change [S 6.18].
        if nf != v.flags {
            self.modify_flags_checked(model, i, s, e, nf)?;
        }
        Ok(())
    }

    /// MADV_GUARD_INSTALL / MADV_GUARD_REMOVE [S 7.x mm/madvise.c:madvise_guard_install,
    /// madvise_guard_remove, is_valid_guard_vma; T spec §5]. 6.15+: any VMA but VM_SPECIAL and hugetlb
    /// (and VM_LOCKED for INSTALL); 6.13-6.14: private anonymous VMAs only (man page; UNVERIFIED in code).
    /// INSTALL zaps present pages and leaves existing markers; with the 6.18.y backport it sets the
    /// sticky VM_MAYBE_GUARD on the whole VMA without a split and prepares an anon_vma only for
    /// anonymous VMAs; before it, anon_vma_prepare runs for every VMA so fork copies the markers.
    pub(crate) fn guard(&mut self, model: &KernelModel, adv: Advice, i: usize, s: i64, e: i64) -> Result<(), Errno> {
        let v = self.vmas[i];
        let install = adv == Advice::GuardInstall;
        let mut disallowed = vmf::SPECIAL | vmf::HUGETLB;
        if install {
            disallowed |= vmf::LOCKED;
        }
        if v.flags & disallowed != 0 {
            return Err(Errno::EINVAL);
        }
        if !model.guard_any_vma && (v.obj.is_some() || v.flags & vmf::SHARED != 0 || v.flags & vmf::MAYWRITE == 0) {
            return Err(Errno::EINVAL);
        }
        if install && self.touches_thp(s, e) {
            self.unknown.get_or_insert_with(|| "GUARD_INSTALL over a THP is not modelled".into());
            return Ok(());
        }
        if !install {
            for p in s..e {
                if self.pte(p) == Pte::Guard {
                    self.set_pte(p, Pte::None);
                }
            }
            return Ok(());
        }
        if model.guard_vma_flag {
            self.vmas[i].flags |= vmf::MAYBE_GUARD;
            if v.is_anonymous() {
                self.anon_vma_prepare(model, i);
            }
        } else {
            self.anon_vma_prepare(model, i);
        }
        for p in s..e {
            self.set_pte(p, Pte::Guard);
        }
        Ok(())
    }

    /// madvise_remove [S 6.18 mm/madvise.c]: VM_LOCKED → EINVAL; no file → EINVAL; not a shared
    /// mapping that may be written → EACCES; then punch a hole in the file.
    pub(crate) fn remove(&mut self, model: &KernelModel, i: usize, s: i64, e: i64) -> Result<(), Errno> {
        let v = self.vmas[i];
        if v.flags & vmf::LOCKED != 0 {
            return Err(Errno::EINVAL);
        }
        let Some(obj) = v.obj else { return Err(Errno::EINVAL) };
        let writable = if model.remove_needs_maywrite_only { vmf::MAYWRITE } else { vmf::WRITE };
        if v.flags & vmf::SHARED == 0 || v.flags & writable == 0 {
            return Err(Errno::EACCES);
        }
        // vfs_fallocate(PUNCH_HOLE|KEEP_SIZE) → shmem_fallocate: EPERM on a write-sealed file, also
        // through a mapping made writable before the seal [S 6.18 mm/shmem.c:shmem_fallocate;
        // T 6.18.44 probe: F_SEAL_FUTURE_WRITE under a `rd wr sh mw` mapping].
        if self.seals(obj) & super::memfd::WRITE_SEALS != 0 {
            return Err(Errno::EPERM);
        }
        let first = v.obj_page(s);
        let last = v.obj_page(e);
        self.punch(obj, first, last);
        Ok(())
    }
}

/// Advice process_madvise takes for another process's mm (6.1+: COLLAPSE joined COLD, PAGEOUT and
/// WILLNEED) [S 6.1, 6.12 mm/madvise.c:process_madvise_behavior_valid; S 6.18 process_madvise_remote_valid;
/// T 6.18.44 process_madvise_live_child_refuses_dontneed].
pub(crate) fn process_madvise_remote_valid(value: i32) -> bool {
    matches!(Advice::from_value(value), Some(Advice::Cold | Advice::Pageout | Advice::Willneed | Advice::Collapse))
}

/// The largest byte count one read/write-style call handles (`INT_MAX & PAGE_MASK`); import_iovec caps
/// the total there [S 6.12 lib/iov_iter.c:__import_iovec, include/linux/fs.h:MAX_RW_COUNT].
fn max_rw_count(ps: u64) -> u64 {
    (i32::MAX as u64) & !(ps - 1)
}

/// What process_madvise does before it walks a vector: the checks in the kernel's order, and the target.
/// `live_child_alive`: the live child of `fork_live` exists and has not died. `Ok((elements, remote))`
/// when the call reaches vector_madvise.
/// [S 6.18 mm/madvise.c:SYSCALL_DEFINE5(process_madvise); S 6.1, 6.12 same, with the advice check before
/// mm_access; S 6.12 lib/iov_iter.c:__import_iovec, iovec_from_user, copy_iovec_from_user;
/// S 6.12 kernel/pid.c:pidfd_get_task; S 6.12 kernel/fork.c:mm_access]
pub(crate) fn process_madvise_gate(
    model: &KernelModel,
    base: u64,
    target: crate::program::PidfdTarget,
    live_child_alive: bool,
    iov: &Option<Vec<crate::program::IovElem>>,
    vlen: u64,
    value: i32,
    flags: u32,
) -> Result<(Vec<(u64, u64)>, bool), Ret> {
    use crate::program::{PidfdTarget as T, UIO_MAXIOV};
    let ps = model.page_size;
    if !model.process_madvise {
        return Err(Ret::Err(Errno::ENOSYS));
    }
    if flags != 0 {
        return Err(Ret::Err(Errno::EINVAL));
    }
    // import_iovec: more than UIO_MAXIOV elements, then the copy (NULL faults), then a length that does
    // not fit ssize_t.
    if vlen > UIO_MAXIOV {
        return Err(Ret::Err(Errno::EINVAL));
    }
    let elems: Vec<(u64, u64)> = match iov {
        _ if vlen == 0 => Vec::new(),
        None => return Err(Ret::Err(Errno::EFAULT)),
        Some(v) => v.iter().take(vlen as usize).map(|e| e.raw(base, ps)).map(|(s, l)| (model.word(s), model.word(l))).collect(),
    };
    // iov_len is size_t; a length that is negative as ssize_t (the kernel's word) is EINVAL.
    if elems.iter().any(|&(_, len)| model.ssize_negative(len)) {
        return Err(Ret::Err(Errno::EINVAL));
    }
    // pidfd_get_task: -1 and a non-pidfd file are EBADF (pidfd_get_pid); a reaped process is ESRCH.
    let remote = match target {
        T::SelfPidfd => false,
        T::PidfdSelf if model.pidfd_self => false,
        T::PidfdSelf | T::BadFd | T::NotPidfd => return Err(Ret::Err(Errno::EBADF)),
        T::ExitedChild => return Err(Ret::Err(Errno::ESRCH)),
        T::LiveChild if live_child_alive => true,
        T::LiveChild => return Err(Ret::Err(Errno::ESRCH)),
    };
    if !model.process_madvise_self_any_advice && !process_madvise_remote_valid(value) {
        return Err(Ret::Err(Errno::EINVAL));
    }
    // mm_access(PTRACE_MODE_READ_FSCREDS): the live child is the caller's own fork, same credentials.
    if model.process_madvise_self_any_advice && remote && !process_madvise_remote_valid(value) {
        return Err(Ret::Err(Errno::EINVAL));
    }
    if !remote && model.process_madvise_self_checks_advice && !model.advice_valid(value) {
        return Err(Ret::Err(Errno::EINVAL));
    }
    if (remote || model.process_madvise_self_needs_cap) && !model.facts.cap_sys_nice {
        return Err(Ret::Err(Errno::EPERM));
    }
    Ok((elems, remote))
}

impl Machine {
    /// vector_madvise: do_madvise on each element in turn until one fails. The iterator starts on element
    /// 0 even when it is empty, but advancing past an element also skips the empty ones after it, so a
    /// later zero-length element is never looked at (its address may be anything); nothing runs when the
    /// total is 0. The return is the total of the lengths (as given, not rounded) of the elements before
    /// the failing one, or the failing element's errno when that total is 0. [S 6.18 mm/madvise.c:
    /// vector_madvise; S 6.12 SYSCALL_DEFINE5(process_madvise) loop; S 6.12 lib/iov_iter.c:
    /// iov_iter_iovec_advance; T 6.18.44 process_madvise_skips_later_empty_elements]
    pub(crate) fn vector_madvise(&mut self, model: &KernelModel, elems: &[(u64, u64)], value: i32) -> Result<Ret, Unsupported> {
        let cap = max_rw_count(self.ps);
        let total = elems.iter().fold(0u64, |t, &(_, l)| t.saturating_add(l)).min(cap);
        let mut done = 0u64;
        let mut err = None;
        let mut i = 0;
        while done < total && i < elems.len() {
            let (start, len) = elems[i];
            let len = len.min(total - done);
            if let Ret::Err(e) = self.madvise(model, start, len, value)? {
                err = Some(e);
                break;
            }
            done += len;
            i += 1;
            while i < elems.len() && elems[i].1 == 0 {
                i += 1;
            }
        }
        Ok(match err {
            Some(e) if done == 0 => Ret::Err(e),
            _ => Ret::Bytes(done),
        })
    }
}
