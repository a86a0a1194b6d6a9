//! mm/mseal.c: mseal (do_mseal). The checks a seal imposes live with the calls they refuse: mprotect
//! (`mm/mprotect.rs`), madvise's discard advice (`mm/madvise.rs`, can_modify_vma_madv), munmap and mremap.
//!
//! Invariants: a hole anywhere in the range is ENOMEM with nothing sealed; VM_SEALED is never cleared.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine};
use crate::observe::{Errno, Ret};

impl Machine {
    /// mseal(2): ENOSYS before 6.10; a hole anywhere in the range → ENOMEM with nothing sealed; then
    /// VM_SEALED on every VMA, splitting and merging like any flag change
    /// [S 6.12 mm/mseal.c:do_mseal, check_mm_seal, apply_mm_seal, mseal_fixup].
    pub(crate) fn mseal(&mut self, model: &KernelModel, s: i64, e: i64) -> Ret {
        if !model.mseal {
            return Ret::Err(Errno::ENOSYS);
        }
        let mut cur = s;
        while cur < e {
            let Some(i) = self.vma_at(cur) else { return Ret::Err(Errno::ENOMEM) };
            cur = self.vmas[i].end;
        }
        let mut cur = s;
        while cur < e {
            let i = self.vma_at(cur).expect("checked above");
            let v = self.vmas[i];
            let end = v.end.min(e);
            if v.flags & vmf::SEALED == 0 {
                if let Err(errno) = self.modify_flags_checked(model, i, cur, end, v.flags | vmf::SEALED) {
                    return Ret::Err(errno);
                }
            }
            cur = end;
        }
        Ret::Ok
    }
}
