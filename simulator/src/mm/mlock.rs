//! mm/mlock.c: mlock, mlock2(MLOCK_ONFAULT) and munlock (apply_vma_lock_flags, mlock_fixup).
//!
//! Invariant: VM_LOCKED / VM_LOCKONFAULT change through one path (`lock_flags`), splitting and merging
//! like any flag change.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine};
use crate::observe::{Errno, Ret};

impl Machine {
    /// mlock / mlock2(MLOCK_ONFAULT) [S 6.18 mm/mlock.c:do_mlock, apply_vma_lock_flags, mlock_fixup;
    /// mm/gup.c:__mm_populate].
    pub(crate) fn mlock(&mut self, model: &KernelModel, s: i64, e: i64, onfault: bool) -> Ret {
        // The RLIMIT_MEMLOCK checks come first, before the range is looked at: can_do_mlock (a zero
        // limit without CAP_IPC_LOCK is EPERM), then mm->locked_vm plus the range, less what of the range
        // is locked already, past the limit is ENOMEM [S 6.12 mm/mlock.c:do_mlock,
        // count_mm_mlocked_page_nr].
        if let Some(limit) = model.mlock_limit_pages {
            if limit == 0 {
                return Ret::Err(Errno::EPERM);
            }
            let mut locked = (e - s) as u64 + self.locked_vm();
            if locked > limit {
                locked -= self.locked_pages_in(s, e);
            }
            if locked > limit {
                return Ret::Err(Errno::ENOMEM);
            }
        }
        let add = vmf::LOCKED | if onfault { vmf::LOCKONFAULT } else { 0 };
        if let Err(r) = self.lock_flags(model, s, e, add, vmf::LOCKED | vmf::LOCKONFAULT) {
            return r;
        }
        // __mm_populate(start, len, ignore_errors=0): a VMA that cannot be faulted (PROT_NONE: no
        // FOLL_FORCE without access) fails with EFAULT, which mlock reports as ENOMEM
        // [S mm/mlock.c:__mlock_posix_error_return].
        for (a, b) in self.for_each_vma_in(s, e) {
            let i = self.vma_at(a).unwrap();
            let v = self.vmas[i];
            // __mm_populate skips VM_IO|VM_PFNMAP; VM_LOCKONFAULT is never faulted in
            // [S 6.18 mm/gup.c:__mm_populate, populate_vma_page_range].
            if v.flags & (vmf::IO | vmf::PFNMAP) != 0 {
                continue;
            }
            if v.flags & vmf::LOCKONFAULT != 0 {
                continue;
            }
            // "we've never faulted in PROT_NONE pages" → -EFAULT [S 6.12 mm/gup.c:populate_vma_page_range].
            if v.flags & (vmf::READ | vmf::WRITE | vmf::EXEC) == 0 {
                return Ret::Err(Errno::ENOMEM);
            }
            // A guard marker fails GUP with -EFAULT, reported as ENOMEM; the pages before it stay
            // faulted in [S 6.12 mm/gup.c:__mm_populate; mm/mlock.c:__mlock_posix_error_return].
            if self.populate(model, i, a, b).is_err() {
                return Ret::Err(Errno::ENOMEM);
            }
        }
        Ret::Ok
    }

    /// mm->locked_vm: the pages of VM_LOCKED VMAs. mlock_fixup and __mmap_region never set VM_LOCKED
    /// on the VMAs they do not count (special, hugetlb), munmap subtracts what it removes, and a fork
    /// child starts at 0 with VM_LOCKED cleared [S 6.12 mm/mlock.c:mlock_fixup; mm/mmap.c:__mmap_region;
    /// mm/vma.c:vms_gather_munmap_vmas; kernel/fork.c:dup_mmap]. The worker locks nothing outside the
    /// arena. `locked_vm_extra` is what an MREMAP_DONTUNMAP move left counted on some kernels
    /// (`KernelModel::mremap_dontunmap_locked_vm`).
    pub(crate) fn locked_vm(&self) -> u64 {
        self.vmas.iter().filter(|v| v.flags & vmf::LOCKED != 0).map(|v| (v.end - v.start) as u64).sum::<u64>()
            + self.locked_vm_extra
    }

    /// Pages of `[s, e)` inside VM_LOCKED VMAs [S 6.12 mm/mlock.c:count_mm_mlocked_page_nr].
    pub(crate) fn locked_pages_in(&self, s: i64, e: i64) -> u64 {
        self.vmas
            .iter()
            .filter(|v| v.flags & vmf::LOCKED != 0)
            .map(|v| (v.end.min(e) - v.start.max(s)).max(0) as u64)
            .sum()
    }

    pub(crate) fn munlock(&mut self, model: &KernelModel, s: i64, e: i64) -> Ret {
        match self.lock_flags(model, s, e, 0, vmf::LOCKED | vmf::LOCKONFAULT) {
            Ok(()) => Ret::Ok,
            Err(r) => r,
        }
    }

    /// apply_vma_lock_flags: the range must be fully mapped; flags change VMA by VMA (a hole found on
    /// the way → ENOMEM, earlier VMAs keep their change) [S 6.18 mm/mlock.c:apply_vma_lock_flags; same
    /// walk in munlock].
    pub(crate) fn lock_flags(&mut self, model: &KernelModel, s: i64, e: i64, set: u64, clear: u64) -> Result<(), Ret> {
        if self.vma_at(s).is_none() {
            return Err(Ret::Err(Errno::ENOMEM));
        }
        let mut cur = s;
        while cur < e {
            let Some(i) = self.vma_at(cur) else { return Err(Ret::Err(Errno::ENOMEM)) };
            let v = self.vmas[i];
            let end = v.end.min(e);
            let nf = (v.flags & !clear) | set;
            // mlock_fixup leaves special, hugetlb (and DAX, droppable) VMAs alone
            // [S 6.18 mm/mlock.c:mlock_fixup "don't set VM_LOCKED or VM_LOCKONFAULT and don't count"].
            // A droppable VMA is populated all the same, as by mlock (VM_LOCKONFAULT is not set either;
            // T 6.18.44 probe: mlock2(MLOCK_ONFAULT) on a droppable page faulted it in, Locked 0).
            if nf != v.flags && v.flags & (vmf::SPECIAL | vmf::HUGETLB | vmf::DROPPABLE) == 0 {
                self.modify_flags(model, i, cur, end, nf);
            }
            cur = end;
        }
        Ok(())
    }
}
