//! mm/mmap.c (with mm/vma.c:__mmap_region and do_vmi_munmap): mmap and munmap of the arena.
//!
//! Invariants: a new mapping gets the vm_flags do_mmap gives it and merges with its neighbours only as
//! vma_merge_new_range allows; munmap frees PTE tables no VMA uses any more.

use crate::kernel::KernelModel;
use crate::machine::{vmf, FileObj, Machine, Vma};
use crate::observe::{Content, Errno, Ret};
use crate::program::{Backing, MapSpec};

impl Machine {
    /// vm_flags of a new mapping [S 6.18 mm/mmap.c:do_mmap, mm/vma.c:__mmap_region].
    pub(crate) fn new_vma_flags(model: &KernelModel, m: &MapSpec, readonly_fd: bool) -> u64 {
        let mut f = vmf::MAYREAD | vmf::MAYWRITE | vmf::MAYEXEC;
        if m.prot.read {
            f |= vmf::READ;
        }
        if m.prot.write {
            f |= vmf::WRITE;
        }
        if m.prot.exec {
            f |= vmf::EXEC;
        }
        if m.backing.is_shared() {
            // MAP_SHARED of an fd without FMODE_WRITE (an O_RDONLY file) keeps VM_MAYSHARE but drops VM_SHARED
            // and VM_MAYWRITE, so maps still shows `s` while VmFlags has no `sh`/`mw`, and mprotect cannot
            // add PROT_WRITE [S 6.18 mm/mmap.c:do_mmap, case MAP_SHARED; T 6.18.44: `r--s`, `rd mr me ms`].
            f |= vmf::SHARED | vmf::MAYSHARE;
            if readonly_fd {
                f &= !(vmf::SHARED | vmf::MAYWRITE);
            }
        }
        if m.backing == Backing::AnonDroppable {
            // "If the pages can be dropped, then it doesn't make sense to reserve them", and "they're
            // volatile enough that they shouldn't survive forks or coredumps" [S 6.12 mm/mmap.c:do_mmap,
            // case MAP_DROPPABLE; T 6.18.44: `rd wr mr mw me nr wf dd dp`].
            f |= vmf::DROPPABLE | vmf::NORESERVE | vmf::WIPEONFORK | vmf::DONTDUMP;
        }
        if m.noreserve && model.facts.overcommit_memory != Some(2) {
            // "We honor MAP_NORESERVE if allowed to overcommit": VM_NORESERVE (smaps `nr`) unless
            // vm.overcommit_memory is 2 (OVERCOMMIT_NEVER); hugetlb sets it regardless (see `mmap`)
            // [S 6.18 mm/mmap.c:do_mmap; fs/proc/task_mmu.c:show_smap_vma_flags `nr`].
            f |= vmf::NORESERVE;
        }
        // accountable_mapping(): private, writable, not NORESERVE → VM_ACCOUNT [S mm/vma.c].
        if !m.backing.is_shared() && m.prot.write && f & vmf::NORESERVE == 0 {
            f |= vmf::ACCOUNT;
        }
        if m.locked {
            f |= vmf::LOCKED;
        }
        if model.softdirty_new_vmas {
            f |= vmf::SOFTDIRTY;
        }
        f
    }

    /// munmap [s, e): VMAs are gathered in address order; a sealed one fails the call with EPERM before
    /// anything is removed, though a split already made at the start stays
    /// [S 6.12 mm/vma.c:vms_gather_munmap_vmas (can_modify_vma)].
    pub(crate) fn munmap_range(&mut self, s: i64, e: i64) -> Result<(), Errno> {
        let mut i = 0;
        let mut doomed = Vec::new();
        while i < self.vmas.len() {
            let v = self.vmas[i];
            if v.end <= s || v.start >= e {
                i += 1;
                continue;
            }
            if v.flags & vmf::SEALED != 0 {
                return Err(Errno::EPERM);
            }
            if v.start < s {
                if self.huge_split_refused(&v, s) {
                    return Err(Errno::EINVAL);
                }
                self.split(i, s);
                i += 1;
                continue;
            }
            if v.end > e {
                if self.huge_split_refused(&v, e) {
                    return Err(Errno::EINVAL);
                }
                self.split(i, e);
            }
            doomed.push(i);
            i += 1;
        }
        for &i in &doomed {
            let v = self.vmas[i];
            if v.flags & vmf::HUGETLB != 0 {
                self.huge_unmap(&v, v.start, v.end, true);
            }
        }
        for i in doomed.into_iter().rev() {
            self.vmas.remove(i);
        }
        self.clear_ptes(s, e);
        self.free_empty_tables(s, e);
        self.huge_release_dead();
        Ok(())
    }

    /// mmap(MAP_FIXED): unmap, then insert, merging with compatible neighbours
    /// [S 6.18 mm/vma.c:__mmap_region, vma_merge_new_range].
    pub(crate) fn mmap(&mut self, model: &KernelModel, m: &MapSpec) -> Ret {
        let s = m.page as i64;
        let e = s + m.pages as i64;
        // A file mapping of a closed fd: fget fails first [S 6.18 mm/mmap.c:ksys_mmap_pgoff "file =
        // fget(fd); if (!file) return -EBADF"].
        if m.backing.file().is_some_and(|(f, _)| self.closed_fds.contains(&(f as usize))) {
            return Ret::Err(Errno::EBADF);
        }
        self.pkey_exec_only_unknown(model, m.prot);
        let huge = m.backing.is_map_hugetlb() || m.backing.file().is_some_and(|(f, _)| self.objs[f as usize].huge);
        if huge {
            let off = m.backing.file().map_or(0, |(_, o)| o as i64);
            if self.hp == 0 {
                self.unknown.get_or_insert_with(|| "this kernel has no hugetlb huge page that fits the arena".into());
                return Ret::Ok;
            }
            if !self.huge_aligned(s) || !self.huge_aligned(e) || off % self.hp != 0 {
                self.unknown.get_or_insert_with(|| "a hugetlb mmap not aligned to the huge page size is not modelled".into());
                return Ret::Ok;
            }
        }
        if m.locked {
            if let Some(limit) = model.mlock_limit_pages {
                // do_mmap, before anything is unmapped: MAP_LOCKED needs can_do_mlock (EPERM), and
                // mlock_future_ok counts the whole length on top of mm->locked_vm, the VMAs a MAP_FIXED
                // is about to replace included (EAGAIN) [S 6.12 mm/mmap.c:do_mmap, mlock_future_ok].
                if limit == 0 {
                    return Ret::Err(Errno::EPERM);
                }
                // A hugetlb length counts too (do_mmap checks before __mmap_region drops VM_LOCKED; the
                // mapping is whole huge pages, so ksys_mmap_pgoff's rounding changes nothing), though it
                // never adds to mm->locked_vm.
                if m.pages as u64 + self.locked_vm() > limit {
                    return Ret::Err(Errno::EAGAIN);
                }
            }
        }
        if m.backing == Backing::AnonDroppable {
            // Before 6.11 MAP_DROPPABLE (0x08) is an unknown map type; from 6.11 "a locked or stack area
            // makes no sense to be droppable" (MAP_LOCKED → EINVAL), after the RLIMIT_MEMLOCK checks
            // above and before anything is unmapped [S 6.12 mm/mmap.c:do_mmap (switch (flags &
            // MAP_TYPE), default -EINVAL); T 6.18.44 probe: MAP_LOCKED|MAP_DROPPABLE → EINVAL].
            if !model.map_droppable && model.map_droppable_type_known {
                return Ret::Err(Errno::EOPNOTSUPP);
            }
            if !model.map_droppable || m.locked {
                return Ret::Err(Errno::EINVAL);
            }
        }
        // MAP_SHARED with PROT_WRITE of an fd opened O_RDONLY: EACCES, before anything is unmapped (after
        // the mlock checks above) [S 6.18 mm/mmap.c:do_mmap, case MAP_SHARED; T 6.18.44].
        let readonly_fd = m.backing.file().is_some_and(|(f, _)| self.objs[f as usize].readonly);
        if readonly_fd && m.backing.is_shared() && m.prot.write {
            return Ret::Err(Errno::EACCES);
        }
        let seal = self.mmap_seal_check(model, m);
        if let super::memfd::SealCheck::Eperm { early: true } = seal {
            return Ret::Err(Errno::EPERM);
        }
        if let Err(errno) = self.munmap_range(s, e) {
            // 6.1 mmap_region answers any failure to unmap the old range (a refused hugetlb split) with
            // ENOMEM [S 6.1 mm/mmap.c:mmap_region "if (do_mas_munmap(...)) return -ENOMEM"; T Debian
            // 6.1.192, gen-1-2489]; 6.12+ passes the error on [S 6.12 mm/mmap.c:__mmap_region].
            return Ret::Err(if model.mmap_unmap_error_is_enomem { Errno::ENOMEM } else { errno });
        }
        if let super::memfd::SealCheck::Eperm { early: false } = seal {
            // 6.1: shmem_mmap's seal_check_write refuses it in mmap_region, after the old range is gone.
            return Ret::Err(Errno::EPERM);
        }
        let mut flags = Self::new_vma_flags(model, m, readonly_fd);
        if let super::memfd::SealCheck::Ok { drop_maywrite: true } = seal {
            flags &= !vmf::MAYWRITE;
        }
        if huge {
            // hugetlbfs_file_mmap sets VM_HUGETLB|VM_DONTEXPAND; accountable_mapping is false for
            // hugetlbfs files; __mmap_region drops VM_LOCKED on hugetlb (but do_mmap still populates)
            // [S 6.12 fs/hugetlbfs/inode.c:hugetlbfs_file_mmap; mm/mmap.c:accountable_mapping,
            // mmap_region; T 6.18: `rd wr mr mw me de ht`].
            flags |= vmf::HUGETLB | vmf::DONTEXPAND;
            flags &= !(vmf::ACCOUNT | vmf::LOCKED | vmf::LOCKONFAULT);
            // "hugetlb applies strict overcommit unless MAP_NORESERVE": on a hugetlbfs file MAP_NORESERVE
            // sets VM_NORESERVE whatever vm.overcommit_memory says [S 6.18 mm/mmap.c:do_mmap].
            if m.noreserve {
                flags |= vmf::NORESERVE;
            }
        }
        let (obj, pgoff) = match m.backing {
            // A private anonymous mapping's vm_pgoff is its virtual page number [S 6.18 mm/mmap.c:do_mmap,
            // "pgoff = addr >> PAGE_SHIFT" for MAP_PRIVATE without a file].
            Backing::AnonPrivate | Backing::AnonDroppable => (None, self.base_vpn() + s),
            Backing::AnonShared => {
                // shmem_zero_setup: a fresh shmem object per mapping, pgoff 0 [S 6.18 mm/mmap.c:do_mmap
                // (MAP_SHARED anonymous: pgoff = 0), mm/vma.c:__mmap_new_file_vma, mm/shmem.c:shmem_zero_setup].
                self.objs.push(FileObj {
                    file: None,
                    memfd: true,
                    readonly: false,
                    pages: vec![Content::Zero; m.pages as usize],
                    cached: vec![false; m.pages as usize],
                    dirty: vec![false; m.pages as usize],
                    flagged: vec![false; m.pages as usize],
                    order: vec![0; m.pages as usize],
                    mmap_miss: 0,
                    huge: false,
                    region: Vec::new(),
                    dead: false,
                    falloc_beyond: Default::default(),
                    seals: Some(crate::program::SealKind::Seal.value()),
                });
                (Some(self.objs.len() - 1), 0)
            }
            Backing::HugetlbPrivate | Backing::HugetlbShared => {
                // hugetlb_file_setup: a fresh hugetlbfs file of the mapping's size, pgoff 0
                // [S 6.12 mm/mmap.c:ksys_mmap_pgoff (MAP_HUGETLB)].
                let n = m.pages as usize;
                self.objs.push(FileObj {
                    file: None,
                    memfd: false,
                    readonly: false,
                    pages: vec![Content::Zero; n],
                    cached: vec![false; n],
                    dirty: vec![false; n],
                    flagged: vec![false; n],
                    order: vec![0; n],
                    mmap_miss: 0,
                    huge: true,
                    region: vec![false; n],
                    dead: false,
                    falloc_beyond: Default::default(),
                    seals: Some(crate::program::SealKind::Seal.value()),
                });
                (Some(self.objs.len() - 1), 0)
            }
            Backing::FilePrivate { file, offset } | Backing::FileShared { file, offset } => {
                (Some(file as usize), offset as i64)
            }
        };
        // "const pgoff_t anon_pgoff = addr >> PAGE_SHIFT" [S 7.3.4 mm/vma.c:mmap_region].
        let mut new = Vma { start: s, end: e, flags, obj, pgoff, anon_pgoff: self.base_vpn() + s, anon_vma: None };
        // VM_NORESERVE: hugetlb_reserve_pages returns before anything is reserved ("Only apply hugepage
        // reservation if asked. At fault time, an attempt will be made for VM_NORESERVE to allocate a page
        // without using reserves"), so no HugePages_Rsvd at mmap and no HPAGE_RESV_OWNER for a private
        // mapping; a MAP_HUGETLB file is set up with VM_NORESERVE too [S 6.18 mm/hugetlb.c:
        // hugetlb_reserve_pages; mm/mmap.c:ksys_mmap_pgoff (hugetlb_file_setup)].
        let reserve = huge && flags & vmf::NORESERVE == 0;
        if reserve && flags & vmf::MAYSHARE == 0 {
            // A private hugetlb mapping owns its reservation map (set_vma_resv_flags(vma,
            // HPAGE_RESV_OWNER)) [S 6.12 mm/hugetlb.c:hugetlb_reserve_pages].
            new.flags |= vmf::RESV_OWNER;
        }
        if reserve {
            self.huge_reserve(&new);
        }
        let pos = self.vmas.iter().position(|v| v.start >= e).unwrap_or(self.vmas.len());
        self.vmas.insert(pos, new);
        let i = self.merge_new(model, pos);
        if m.populate || m.locked {
            // MAP_POPULATE / VM_LOCKED: mm_populate with errors ignored [S mm/mmap.c:do_mmap].
            let v = self.vmas[i];
            if v.flags & (vmf::READ | vmf::WRITE | vmf::EXEC) != 0 {
                let _ = self.populate(model, i, s, e);
            }
        }
        Ret::Ok
    }
}
