//! mm/khugepaged.c: MADV_HUGEPAGE / MADV_NOHUGEPAGE (hugepage_madvise) and MADV_COLLAPSE's refusals
//! (madvise_collapse).
//!
//! Invariant: MADV_COLLAPSE of private anonymous memory is modelled PMD range by PMD range; of file and
//! shmem pages it answers Unsupported. khugepaged itself (the daemon) is not modelled: it scans only mms
//! registered by a VM_HUGEPAGE VMA or `always` mode, and sleeps scan_sleep_millisecs (10 s by default)
//! between passes [S 6.18 mm/khugepaged.c:khugepaged_wait_work, khugepaged_enter_vma] — but the
//! registration that finds its list empty wakes it at once, so now and then it collapses a range in the
//! middle of a scenario (gen-7-139). That is timing, not semantics: the runner re-runs a divergent
//! scenario during which khugepaged/pages_collapsed moved, and lists it (harness/src/host/khugepaged.rs).

use crate::kernel::{KernelModel, Mutation};
use crate::machine::{vmf, Machine, Pte, ThpPmd, Vma};
use crate::observe::Content;
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
    /// MADV_COLLAPSE on [s, e) of vmas[i] (6.1+). thp_vma_allowable_order(.., PMD_ORDER) without sysfs
    /// enforcement (so in every THP mode): VM_NOHUGEPAGE, VM_SPECIAL/VM_HUGETLB, or a VMA that cannot
    /// hold one aligned PMD → EINVAL [S 6.12 mm/khugepaged.c:madvise_collapse,
    /// mm/huge_memory.c:__thp_vma_allowable_orders]. Then each aligned PMD range wholly inside [s, e)
    /// is collapsed on its own (a range holding none returns 0): one already mapped by a PMD (a THP or
    /// the huge zero page) counts as done (SCAN_PMD_MAPPED); one with no PTE table fails with
    /// SCAN_PMD_NULL; up to 6.12 one whose present pages include no writable PTE (only empty PTEs and zero
    /// pages, or a VMA without VM_WRITE) fails with SCAN_PAGE_RO (`collapse_needs_writable_pte`);
    /// otherwise a new THP replaces the PTE table,
    /// holding the old pages' contents and zeros (max_ptes_none is not applied to MADV_COLLAPSE).
    /// Every failed range moves on to the next; the call returns 0 when all succeeded, else
    /// madvise_collapse_errno(last failure), EINVAL for both failures above [S 6.12, 6.18
    /// mm/khugepaged.c:madvise_collapse, hpage_collapse_scan_pmd, find_pmd_or_thp_or_none,
    /// madvise_collapse_errno; T 6.18 probe, cases collapse_*]. The allocation is assumed to succeed
    /// (ENOMEM otherwise, see `thp_fault` on why the model does not branch).
    pub(crate) fn madvise_collapse(&mut self, model: &KernelModel, v: &Vma, s: i64, e: i64) -> Result<(), Errno> {
        // THP marked unsupported at boot: thp_vma_allowable_order fails for every VMA
        // [S 7.2 mm/huge_memory.c:__thp_vma_allowable_orders (thp_disabled_by_hw); see
        // KernelModel::thp_disabled_by_hw].
        if model.thp_disabled_by_hw {
            return Err(Errno::EINVAL);
        }
        let small = !self.holds_pmd(model, v);
        if small && model.mutations.contains(&Mutation::CollapseSmallUnsupported) {
            self.unknown.get_or_insert_with(|| "mutation collapse-small-unsupported".into());
            return Ok(());
        }
        if v.flags & (vmf::NOHUGEPAGE | vmf::SPECIAL | vmf::HUGETLB) != 0 || small {
            return Err(Errno::EINVAL);
        }
        if v.obj.is_some() || v.flags & vmf::SHARED != 0 {
            self.unknown.get_or_insert_with(|| "MADV_COLLAPSE of file or shmem pages (hpage_collapse_scan_file) is not modelled".into());
            return Ok(());
        }
        // An anonymous VMA nothing has faulted in yet has no anon_vma: thp_vma_allowable_orders allows it
        // only for faults and smaps → EINVAL [S 6.12 mm/huge_memory.c:__thp_vma_allowable_orders
        // ("if (!vma->anon_vma)"); T 6.18, case collapse_before_any_fault_is_einval].
        if v.anon_vma.is_none() {
            return Err(Errno::EINVAL);
        }
        let pmd = self.pmd_pages();
        let first = self.pmd_start(s + pmd - 1);
        // hstart = start rounded up, hend = end rounded down: a range inside one PMD range that does not
        // start on its boundary has hstart > hend, and "(hend - hstart) >> HPAGE_PMD_SHIFT" wraps to a
        // count thps can never equal → madvise_collapse_errno(SCAN_FAIL) = EINVAL; hstart == hend (no
        // whole PMD, but one boundary) → 0 [S 6.12 mm/khugepaged.c:madvise_collapse; T 6.18, cases
        // collapse_inside_one_pmd_range_is_einval, collapse_of_less_than_a_pmd_from_its_start_is_0].
        // 7.x returns 0 there instead (no whole PMD range to collapse) [T Debian 7.3.4 x86_64: cases
        // collapse_inside_one_pmd_range_is_einval and gen-1-200 answer 0; see
        // KernelModel::collapse_inverted_range_is_einval].
        if first > self.pmd_start(e) {
            return if model.collapse_inverted_range_is_einval { Err(Errno::EINVAL) } else { Ok(()) };
        }
        let mut failed = false;
        let mut h = first;
        while h + pmd <= e {
            if self.thp.contains_key(&h) {
                h += pmd;
                continue;
            }
            if self.pte_tables.get(self.table_of(h)).copied().flatten() != Some(true) {
                if self.pte_tables.get(self.table_of(h)).copied().flatten().is_none() {
                    self.unknown.get_or_insert_with(|| "MADV_COLLAPSE where the model does not know whether the PTE table exists".into());
                    return Ok(());
                }
                failed = true;
                if model.collapse_stops_at_pmd_null {
                    break;
                }
                h += pmd;
                continue;
            }
            // Is some PTE writable? Only the kernels that refuse a read-only range ask (SCAN_PAGE_RO).
            let (mut writable, mut unsure) = (false, false);
            for p in h..h + pmd {
                match self.pte(p) {
                    Pte::None | Pte::Zero => {}
                    Pte::Anon { shared: false, .. } if v.flags & vmf::LOCKED == 0 => {
                        // After a fork the parent's PTEs are write-protected until written again; the
                        // model does not track that bit.
                        unsure |= self.forked;
                        writable |= v.flags & vmf::WRITE != 0 && !self.forked;
                    }
                    _ => {
                        self.unknown.get_or_insert_with(|| {
                            "MADV_COLLAPSE over guard markers, mlocked pages or pages shared with a live child is not modelled".into()
                        });
                        return Ok(());
                    }
                }
            }
            match (model.collapse_needs_writable_pte, writable, unsure) {
                (Some(false), _, _) | (_, true, _) => {}
                (Some(true), false, false) => {
                    failed = true;
                    h += pmd;
                    continue;
                }
                _ => {
                    self.unknown.get_or_insert_with(|| {
                        "MADV_COLLAPSE of a PMD range without a known writable PTE on a kernel where that is not verified".into()
                    });
                    return Ok(());
                }
            }
            let folio = self.next_folio;
            self.next_folio += 1;
            for p in h..h + pmd {
                let content = match self.pte(p) {
                    Pte::Anon { content, .. } => content,
                    _ => Content::Zero,
                };
                self.ptes[p as usize] = Pte::Anon { content, lazy: false, shared: false, folio, freed: false, pgdirty: false };
            }
            self.large.insert(folio);
            self.thp.insert(h, ThpPmd::Anon);
            h += pmd;
        }
        if failed {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}
