//! mm/khugepaged.c: MADV_HUGEPAGE / MADV_NOHUGEPAGE (hugepage_madvise) and MADV_COLLAPSE's refusals
//! (madvise_collapse).
//!
//! Invariant: no collapse is ever modelled. A COLLAPSE that the kernel would attempt answers
//! Unsupported; only its EINVAL refusals are rules.

use crate::kernel::{KernelModel, Mutation};
use crate::machine::{vmf, Machine, Vma};
use crate::observe::Errno;
use crate::program::Advice;

/// hugepage_madvise: set one, clear the other; 4.8+ on any VMA (spec §5; the 4.5-4.7 EINVAL on shared
/// and special VMAs is not in any profile's rules) [S 6.18 mm/khugepaged.c:hugepage_madvise].
pub(crate) fn hugepage_madvise(adv: Advice, nf: u64) -> u64 {
    if adv == Advice::Hugepage {
        (nf & !vmf::NOHUGEPAGE) | vmf::HUGEPAGE
    } else {
        (nf & !vmf::HUGEPAGE) | vmf::NOHUGEPAGE
    }
}

impl Machine {
    /// thp_vma_allowable_order(.., PMD_ORDER) without sysfs enforcement: VM_NOHUGEPAGE,
    /// VM_SPECIAL/VM_HUGETLB, or a VMA that cannot hold one aligned PMD → EINVAL
    /// [S 6.12 mm/khugepaged.c:madvise_collapse, mm/huge_memory.c:__thp_vma_allowable_orders].
    pub(crate) fn madvise_collapse(&mut self, model: &KernelModel, v: &Vma) -> Result<(), Errno> {
        let small = !self.holds_pmd(model, v);
        if small && model.mutations.contains(&Mutation::CollapseSmallUnsupported) {
            self.unknown.get_or_insert_with(|| "mutation collapse-small-unsupported".into());
            return Ok(());
        }
        if v.flags & (vmf::NOHUGEPAGE | vmf::SPECIAL | vmf::HUGETLB) != 0 || small {
            return Err(Errno::EINVAL);
        }
        self.unknown.get_or_insert_with(|| "MADV_COLLAPSE on a VMA large enough for a PMD THP is not modelled".into());
        Ok(())
    }
}
