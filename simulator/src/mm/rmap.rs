//! mm/rmap.c: anon_vma allocation and reuse (__anon_vma_prepare, find_mergeable_anon_vma).
//!
//! Invariant: an anon_vma inherited through fork (`AnonVma::forked`) is never reused by a neighbour.

use crate::kernel::KernelModel;
use crate::machine::{vmf, AnonVma, Machine, Vma};

impl Machine {
    pub(crate) fn new_anon_vma(&mut self) -> AnonVma {
        let id = self.next_anon_vma;
        self.next_anon_vma += 1;
        AnonVma { id, forked: false }
    }

    /// anon_vma_prepare: reuse a compatible neighbour's anon_vma (next first, then prev) if it was not
    /// inherited through fork, else allocate [S 6.18 mm/rmap.c:__anon_vma_prepare,
    /// find_mergeable_anon_vma, reusable_anon_vma, anon_vma_compatible].
    pub(crate) fn anon_vma_prepare(&mut self, model: &KernelModel, i: usize) {
        if self.vmas[i].anon_vma.is_some() {
            return;
        }
        let v = self.vmas[i];
        // anon_vma_compatible(a, b): adjacent, same file, flags equal except access bits and the flags
        // that do not stop a merge (soft-dirty; the sticky VM_MAYBE_GUARD where the kernel has it: "mm:
        // implement sticky VMA flags" made it `~(VM_ACCESS_FLAGS | VM_IGNORE_MERGE)` [S 6.18.y/6.19
        // mm/vma.c:anon_vma_compatible; T 6.18.44, cases guard_flag_vma_lends_anon_vma_to_a_faulting_neighbour and
        // guard_flag_neighbour_without_vm_account_keeps_its_own_anon_vma,
        // found as gen-2-53209]), and pgoff contiguous.
        let compat = |a: &Vma, b: &Vma| {
            let mask = !(vmf::READ | vmf::WRITE | vmf::EXEC | Self::ignore_merge(model));
            a.end == b.start
                && a.obj == b.obj
                && (a.flags ^ b.flags) & mask == 0
                && b.pgoff == a.pgoff + a.pages()
                // 7.x: "if (vma_end_anon_pgoff(a) != vma_start_anon_pgoff(b)) return false" (equal to the
                // pgoff test for anonymous VMAs) [S 7.3.4 mm/vma.c:anon_vma_compatible].
                && (!model.private_file_merge_needs_anon_pgoff || b.anon_pgoff == a.anon_pgoff + a.pages())
        };
        let mut found = None;
        if let Some(n) = self.vmas.get(i + 1) {
            if compat(&v, n) {
                if let Some(av) = n.anon_vma {
                    if !av.forked {
                        found = Some(av);
                    }
                }
            }
        }
        if found.is_none() && i > 0 {
            let p = self.vmas[i - 1];
            if compat(&p, &v) {
                if let Some(av) = p.anon_vma {
                    if !av.forked {
                        found = Some(av);
                    }
                }
            }
        }
        let av = match found {
            Some(av) => av,
            None => self.new_anon_vma(),
        };
        self.vmas[i].anon_vma = Some(av);
    }
}
