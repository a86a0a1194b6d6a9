//! What an observation of the machine may show: maps/smaps records, page residency and contents, and the
//! hugetlb pool deltas, as an `Allowed` set (fs/proc/task_mmu.c: show_map_vma, show_smap, pagemap_read).
//!
//! Invariant: every field the harness observes is answered here, exactly or as a stated set, never
//! skipped.

use crate::kernel::KernelModel;
use crate::machine::{flag_names, vmf, Machine, Pte};
use crate::observe::{Allowed, Content, Count, PageObs, Residency, Ret, VmaAllowed, VmaBacking};

impl Machine {
    /// The model's expectation of what /proc shows now.
    pub fn expect(&self, model: &KernelModel, ret: Ret) -> Allowed {
        let kb = self.ps / 1024;
        let mut vmas = Vec::new();
        // smaps per VMA: Rss counts present normal pages (not the zero page, not guard markers), Anonymous
        // the anonymous ones, Pss divides by the mapcount, Locked is Pss on a VM_LOCKED VMA
        // [S 6.18 fs/proc/task_mmu.c:smaps_pte_entry, smaps_account, __show_smap; T spec §6.2].
        for (vi, v) in self.vmas.iter().enumerate() {
            let (mut rss, mut anon, mut lazy) = (0u64, 0u64, 0u64);
            // The lazy-free pages of PMD-mapped THPs, counted at once (see `lazyfree` below).
            let mut lazy_large = 0u64;
            let mut pss_bytes = 0u128;
            let (mut ht_shared, mut ht_private) = (0u64, 0u64);
            if v.flags & vmf::HUGETLB != 0 {
                // smaps_hugetlb_range: hugetlb pages are not in Rss; each mapped huge page counts as
                // Shared_Hugetlb when mapped more than once, else Private_Hugetlb [S 6.1 (page_mapcount
                // >= 2), 6.12 (folio_likely_mapped_shared) fs/proc/task_mmu.c; T 6.18].
                let mut p = v.start;
                while p < v.end {
                    match self.pte(p) {
                        // A private huge page a fork child and its parent both map (COW) counts as shared
                        // in both [T 6.12.118 guest, gen-1-210 with --destructive].
                        Pte::Anon { shared: true, .. } => ht_shared += self.hp as u64,
                        Pte::Anon { .. } => ht_private += self.hp as u64,
                        Pte::Cache => {
                            if self.cache_mapcount(v.obj.unwrap(), v.obj_page(p)) > 1 {
                                ht_shared += self.hp as u64;
                            } else {
                                ht_private += self.hp as u64;
                            }
                        }
                        _ => {}
                    }
                    p += self.hp.max(1);
                }
            }
            // 6.1's smaps_pmd_entry looks the THP up with follow_trans_huge_pmd(FOLL_DUMP), which gives
            // NULL for a protnone PMD: a PMD-mapped THP in a PROT_NONE VMA is not counted at all
            // [S 6.1 fs/proc/task_mmu.c:smaps_pmd_entry; mm/huge_memory.c:follow_trans_huge_pmd
            // ("pmd_protnone(*pmd) && !gup_can_follow_protnone(flags)"); T Debian 6.1.192 x86_64 and
            // arm64, case collapse_in_a_prot_none_vma_succeeds; see KernelModel::smaps_skips_protnone_pmd].
            let protnone = v.flags & (vmf::READ | vmf::WRITE | vmf::EXEC) == 0;
            let skip_pmd = |p: i64| {
                model.smaps_skips_protnone_pmd && protnone && self.thp.get(&self.pmd_start(p)) == Some(&crate::machine::ThpPmd::Anon)
            };
            for p in (v.start..v.end).filter(|&p| v.flags & vmf::HUGETLB == 0 && !skip_pmd(p)) {
                match self.pte(p) {
                    Pte::None | Pte::Zero | Pte::Guard => {}
                    Pte::Anon { lazy: l, shared, .. } => {
                        rss += 1;
                        anon += 1;
                        if l {
                            lazy += 1;
                        }
                        // A page COW-shared with a live process has mapcount 2: half of it counts in
                        // PSS, and so in Locked [S 6.12 fs/proc/task_mmu.c:smaps_account,
                        // smaps_page_accumulate].
                        pss_bytes += self.ps as u128 / if shared { 2 } else { 1 };
                    }
                    Pte::Cache => {
                        rss += 1;
                        let mapcount = self.cache_mapcount(v.obj.unwrap(), v.obj_page(p)).max(1);
                        pss_bytes += self.ps as u128 / mapcount as u128;
                    }
                }
            }
            // smaps prints kB; the harness converts kB to pages by flooring, so do the same.
            let locked = if v.flags & vmf::LOCKED != 0 { (pss_bytes / 1024) as u64 / kb } else { 0 };
            let backing = match v.obj {
                None => VmaBacking::Anon,
                Some(o) => match self.objs[o].file {
                    Some(f) => VmaBacking::File(f),
                    None if self.objs[o].huge => VmaBacking::Hugetlb,
                    None => VmaBacking::Shmem,
                },
            };
            // LazyFree lags: a page counts only once the per-CPU lazyfree folio batch holding it has
            // been drained (by this or any task on the CPU, or when the batch fills), so any count
            // from 0 to the number of clean lazy-free pages is possible [S 6.18 mm/swap.c:
            // folio_mark_lazyfree, lru_lazyfree; fs/proc/task_mmu.c:smaps_account; T spec §4.1].
            // A droppable folio is never swap-backed, so no batch stands between MADV_FREE cleaning its
            // PTE and smaps counting it: exact [S 6.12 mm/rmap.c:folio_add_new_anon_rmap (no
            // __folio_set_swapbacked for VM_DROPPABLE); fs/proc/task_mmu.c:smaps_account; T 6.18.44:
            // LazyFree 4 kB right after FREE of one written droppable page].
            // A large folio never waits in the batch: adding it moves the whole batch to the LRU at
            // once, clearing PG_swapbacked, so the lazy-free pages of a THP still PMD-mapped count
            // exactly [S 6.1 mm/swap.c:mark_page_lazyfree, folio_batch_add_and_move
            // (!folio_may_be_lru_cached); S 6.12 mm/swap.c:__folio_batch_add_and_move; include/linux/
            // swap.h:folio_may_be_lru_cached (!folio_test_large); T 6.18.44: case
            // thp_free_whole_pmd_keeps_a_lazyfree_thp, LazyFree 2048 kB]. A THP split after FREE keeps
            // its cleared flag but the model no longer tells its pages from small ones, so they stay in
            // the range. Small pages stay a range: which of them are still batched depends on other
            // tasks draining the CPU and, for an unpinned (golden-check) worker, on which CPUs it ran.
            // Where `smaps_lazyfree_thp_exact` is off (releases not measured yet) the THP's pages are in
            // the range like small ones. A PMD-mapped THP counts as a whole: smaps_pmd_entry passes pmd_dirty, so once any page of
            // it was written after FREE (the write sets the PMD's dirty bit) none of it counts
            // [S 6.12 fs/proc/task_mmu.c:smaps_pmd_entry, smaps_account (`!dirty`)].
            let pmd = if model.smaps_lazyfree_thp_exact { self.pmd_pages() } else { 0 };
            let mut h = if pmd > 0 { self.pmd_start(v.start) } else { v.end };
            while pmd > 0 && h < v.end {
                if h >= v.start && h + pmd <= v.end && self.thp.get(&h) == Some(&crate::machine::ThpPmd::Anon) && !skip_pmd(h) {
                    let l = (h..h + pmd).filter(|&p| matches!(self.pte(p), Pte::Anon { lazy: true, .. })).count() as u64;
                    lazy -= l;
                    if l == pmd as u64 {
                        lazy_large += l;
                    }
                }
                h += pmd;
            }
            let lazyfree = if !model.smaps_lazyfree {
                Count::exact(0)
            } else if v.flags & vmf::DROPPABLE != 0 {
                Count::exact(lazy_large + lazy)
            } else {
                Count { lo: lazy_large, hi: lazy_large + lazy }
            };
            vmas.push(VmaAllowed {
                start: v.start,
                end: v.end,
                perms: format!(
                    "{}{}{}{}",
                    if v.flags & vmf::READ != 0 { 'r' } else { '-' },
                    if v.flags & vmf::WRITE != 0 { 'w' } else { '-' },
                    if v.flags & vmf::EXEC != 0 { 'x' } else { '-' },
                    if v.flags & vmf::MAYSHARE != 0 { 's' } else { 'p' }
                ),
                // maps prints 0 for anonymous VMAs, vm_pgoff for file and shmem VMAs
                // [S fs/proc/task_mmu.c:show_map_vma].
                offset: if v.obj.is_some() { v.pgoff as u64 } else { 0 },
                backing,
                flags: flag_names(model, v.flags),
                rss: Count::exact(rss),
                anon: Count::exact(anon),
                lazyfree,
                locked: Count::exact(locked),
                hugetlb_shared: Count::exact(ht_shared),
                hugetlb_private: Count::exact(ht_private),
                anon_huge: Count::exact(if model.smaps_skips_protnone_pmd && v.flags & (vmf::READ | vmf::WRITE | vmf::EXEC) == 0 {
                    0
                } else {
                    self.anon_huge_pages(vi)
                }),
                // The model has no swap device: nothing is ever swapped out (PAGEOUT of an anonymous or
                // shmem page keeps it, `vmscan`), so Swap is 0; a kernel with swap shows it as a
                // divergence [S 6.18 fs/proc/task_mmu.c:smaps_pte_entry (is_swap_pte → mss->swap),
                // smaps_account; T 6.18.44: no swap on the host, Swap 0 kB everywhere].
                swap: Count::exact(0),
                // `ProtectionKey:` only where the CPU has keys [S 6.12 arch/x86/kernel/setup.c:arch_show_smap].
                pkey: (model.pkeys == crate::kernel::Pkeys::X86).then(|| crate::mm::pkeys::vma_pkey(v)),
            });
        }
        // pagemap: a guard marker is a swap-format entry, the zero page is present (told apart only with
        // PFNs) [S 6.18 fs/proc/task_mmu.c:pte_to_pagemap_entry; T spec §6.4].
        let pages = (0..self.arena_pages as i64)
            .map(|p| {
                let one = match (self.pte(p), self.vma_at(p)) {
                    (Pte::None, _) | (_, None) => PageObs::ABSENT,
                    (Pte::Guard, Some(_)) => PageObs { res: Residency::Swap, content: None },
                    // The huge zero page is present with its own PFNs, not the shared zero page's
                    // [S 6.18 fs/proc/task_mmu.c:pagemap_pmd_range; T 6.18 probe].
                    (Pte::Zero, Some(_)) if self.huge_zero_at(p) => {
                        PageObs { res: Residency::Present, content: Some(Content::Zero) }
                    }
                    (Pte::Zero, Some(_)) => PageObs {
                        res: if model.zero_page_visible { Residency::ZeroPage } else { Residency::Present },
                        content: Some(Content::Zero),
                    },
                    (_, Some(i)) => PageObs { res: Residency::Present, content: self.content_at(i, p) },
                };
                vec![one]
            })
            .collect();
        let locked_vm = self.observe_locked.then(|| self.locked_vm());
        Allowed { ret: vec![ret], vmas, pages, hugetlb: self.observe_huge.then_some(self.huge), locked_vm }
    }

    /// How many PTEs of this process map page `page` of object `obj`.
    pub(crate) fn cache_mapcount(&self, obj: usize, page: usize) -> usize {
        let here: usize = self
            .vmas
            .iter()
            .filter(|v| v.obj == Some(obj))
            .map(|v| (v.start..v.end).filter(|&p| v.obj_page(p) == page && self.pte(p) == Pte::Cache).count())
            .sum();
        here + self.other_cache_maps.iter().filter(|&&m| m == (obj, page)).count()
    }
}
