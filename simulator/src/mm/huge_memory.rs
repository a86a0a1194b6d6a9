//! mm/huge_memory.c: whether a VMA can hold a PMD THP (thp_vma_suitable_order) and whether an anonymous
//! fault may allocate one.
//!
//! Invariant: a fault that may allocate a PMD THP is never guessed: it makes the step Unsupported.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine, Vma};

impl Machine {
    /// An anonymous fault in a VMA that holds an aligned PMD may allocate a PMD THP (or map the huge zero
    /// page) when THP is `always`, or `madvise` with VM_HUGEPAGE, and the VMA is not VM_NOHUGEPAGE
    /// [S 6.12 mm/memory.c:__handle_mm_fault, mm/huge_memory.c:do_huge_pmd_anonymous_page]. Not modelled.
    pub(crate) fn check_thp(&mut self, model: &KernelModel, v: &Vma) {
        use crate::kernel::ThpMode;
        let wanted = match model.thp_mode {
            ThpMode::Always => true,
            ThpMode::Madvise => v.flags & vmf::HUGEPAGE != 0,
            ThpMode::Never | ThpMode::Unavailable => false,
        };
        if wanted && v.flags & vmf::NOHUGEPAGE == 0 && self.holds_pmd(model, v) {
            self.unknown.get_or_insert_with(|| "an anonymous fault that may allocate a PMD THP is not modelled".into());
        }
    }

    /// Does `v` contain a PMD-aligned, PMD-sized range (thp_vma_suitable_order with addr = vm_end - PMD)?
    /// [S 6.12 include/linux/huge_mm.h:thp_vma_suitable_order; mm/huge_memory.c:__thp_vma_allowable_orders]
    pub(crate) fn holds_pmd(&self, model: &KernelModel, v: &Vma) -> bool {
        let pmd = model.ptrs_per_pte as i64;
        let vpn_end = self.base_vpn() + v.end;
        let haddr = (vpn_end - pmd).div_euclid(pmd) * pmd;
        let file_aligned = v.obj.is_none() || ((self.base_vpn() + v.start) - v.pgoff).rem_euclid(pmd) == 0;
        haddr >= self.base_vpn() + v.start && haddr + pmd <= vpn_end && file_aligned
    }
}
