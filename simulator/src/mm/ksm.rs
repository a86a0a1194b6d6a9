//! mm/ksm.c: MADV_MERGEABLE / MADV_UNMERGEABLE (ksm_madvise, vma_ksm_compatible).
//!
//! Invariant: ksmd's merging is never modelled. With ksmd stopped no KSM page can exist, so the advice
//! only sets or clears VM_MERGEABLE; with ksmd running the step answers Unsupported.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine};
use crate::program::Advice;

impl Machine {
    /// ksm_madvise on one VMA with flags `nf`: the new flags, or `None` when there is nothing to do
    /// (the call still succeeds, with no flag change and no split).
    pub(crate) fn ksm_madvise(&mut self, model: &KernelModel, adv: Advice, nf: u64) -> Option<u64> {
        if adv == Advice::Mergeable {
            // ksm_madvise: ignored (0, no flag, no split) on KSM-incompatible VMAs, droppable ones
            // included from 6.11 [S 6.12 mm/ksm.c:ksm_madvise, vma_ksm_compatible; T 6.18.44].
            let incompatible = vmf::SHARED
                | vmf::MAYSHARE
                | vmf::PFNMAP
                | vmf::IO
                | vmf::DONTEXPAND
                | vmf::HUGETLB
                | vmf::MIXEDMAP
                | vmf::DROPPABLE;
            if nf & vmf::MERGEABLE != 0 || nf & incompatible != 0 {
                return None;
            }
            if model.ksm_running {
                self.unknown.get_or_insert_with(|| "ksmd is running: KSM merging is asynchronous and not modelled".into());
            }
            return Some(nf | vmf::MERGEABLE);
        }
        // ksm_madvise: nothing to do without VM_MERGEABLE; else unmerge and clear it
        // [S 6.12 mm/ksm.c:ksm_madvise]. No KSM page can exist while ksmd is stopped, so
        // unmerge_ksm_pages has nothing to break.
        if nf & vmf::MERGEABLE == 0 {
            return None;
        }
        // 6.16.y also loses VM_SEALED here (KernelModel::unmergeable_clears_sealed).
        let lost = if model.unmergeable_clears_sealed { vmf::SEALED } else { 0 };
        Some(nf & !vmf::MERGEABLE & !lost)
    }
}
