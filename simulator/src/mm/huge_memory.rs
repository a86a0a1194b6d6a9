//! mm/huge_memory.c: PMD-sized anonymous THPs. Whether a VMA can hold one (thp_vma_suitable_order),
//! the fault that allocates one or maps the huge zero page (do_huge_pmd_anonymous_page), zapping a whole
//! one (zap_huge_pmd), splitting the PMD mapping (split_huge_pmd) and splitting the folio (split_folio).
//!
//! Invariant: a PMD mapping (`Machine::thp`) always lies wholly inside one VMA and maps 512 (PMD-many)
//! pages whose PTE entries say what they hold: `Pte::Anon` of one large folio, or `Pte::Zero` for the
//! huge zero page. Anything the model does not know about a THP (fork, mremap, guard markers over one,
//! a fault whose page table state is unknown) makes the step Unsupported; the allocation itself is
//! assumed to succeed (see `thp_fault`).

use crate::kernel::{KernelModel, ThpMode};
use crate::machine::{vmf, Machine, Pte, ThpPmd, Vma};
use crate::observe::Content;

impl Machine {
    /// PMD size in base pages.
    pub(crate) fn pmd_pages(&self) -> i64 {
        self.ptrs()
    }

    /// The arena page where the PMD range holding `page` starts.
    pub(crate) fn pmd_start(&self, page: i64) -> i64 {
        let pmd = self.pmd_pages();
        (self.base_vpn() + page).div_euclid(pmd) * pmd - self.base_vpn()
    }

    /// May an anonymous fault in `v` allocate a PMD THP, as far as the THP mode and the VMA's flags go?
    /// `always`, or `madvise` with VM_HUGEPAGE, and not VM_NOHUGEPAGE; private anonymous VMAs only
    /// (shmem THP is governed by shmem_enabled, not modelled) [S 6.18 mm/huge_memory.c:
    /// __thp_vma_allowable_orders, include/linux/huge_mm.h:vma_thp_disabled; T 6.18 probe, cases
    /// thp_write_fault_in_hugepage_vma_maps_pmd_thp, thp_write_fault_without_hugepage_in_madvise_mode_is_4k].
    pub(crate) fn thp_wanted(&self, model: &KernelModel, v: &Vma) -> bool {
        let wanted = match model.thp_mode {
            ThpMode::Always => true,
            ThpMode::Madvise => v.flags & vmf::HUGEPAGE != 0,
            ThpMode::Never | ThpMode::Unavailable => false,
        };
        wanted && v.flags & (vmf::NOHUGEPAGE | vmf::SHARED | vmf::HUGETLB | vmf::SPECIAL) == 0 && v.obj.is_none()
    }

    /// An anonymous fault on `page` of vmas[i] that finds no PTE: when THP is wanted, the aligned PMD
    /// range holding `page` lies inside the VMA and the PMD is empty (no PTE table), the fault maps a
    /// PMD: a write (or a read with use_zero_page off) allocates a zeroed THP, a read maps the huge zero
    /// page [S 6.18 mm/memory.c:__handle_mm_fault (pmd_none → create_huge_pmd), mm/huge_memory.c:
    /// do_huge_pmd_anonymous_page, thp_vma_suitable_order; T 6.18 probe: 512 pages present,
    /// AnonHugePages 2048 kB; a read shows 512 present pages, Rss 0]. Returns whether it did.
    ///
    /// The allocation is assumed to succeed: with `defrag=madvise` a VM_HUGEPAGE fault may compact and
    /// reclaim directly (GFP_TRANSHUGE), and in `always` mode it only tries (GFP_TRANSHUGE_LIGHT, no
    /// direct reclaim) [S 6.18 mm/huge_memory.c:vma_thp_gfp_mask]; a failure falls back to a 4K page
    /// (count_vm_event(THP_FAULT_FALLBACK)). The model does not branch on that: a host short of free
    /// 2 MiB blocks shows it as a divergence in AnonHugePages.
    pub(crate) fn thp_fault(&mut self, model: &KernelModel, i: usize, page: i64, write: bool, data: Option<Content>) -> bool {
        let v = self.vmas[i];
        let h = self.pmd_start(page);
        // A write on the huge zero page allocates a THP whatever the VMA's flags say now (6.18's
        // do_huge_zero_wp_pmd does not look at them) [T 6.18 probe: NOHUGEPAGE on the VMA, then a write
        // → AnonHugePages 2048 kB; case thp_write_on_huge_zero_page_after_nohugepage_still_maps_thp].
        let on_huge_zero = write && self.thp.get(&h) == Some(&ThpPmd::HugeZero);
        if !on_huge_zero && !self.thp_wanted(model, &v) {
            return false;
        }
        let pmd = self.pmd_pages();
        if h < v.start || h + pmd > v.end || h + pmd > self.arena_pages as i64 {
            return false;
        }
        match self.thp.get(&h) {
            Some(ThpPmd::Anon) => return false,
            Some(ThpPmd::HugeZero) => {
                if !write {
                    return true;
                }
                match model.thp_huge_zero_wp_allocates {
                    Some(true) => {}
                    _ => {
                        self.unknown.get_or_insert_with(|| {
                            "a write fault on the huge zero page is only verified on 6.18+ (do_huge_zero_wp_pmd)".into()
                        });
                        return true;
                    }
                }
            }
            None => match self.pte_tables.get(self.table_of(h)).copied().flatten() {
                Some(false) => {}
                Some(true) => return false,
                None => {
                    self.unknown.get_or_insert_with(|| {
                        "an anonymous fault that may allocate a PMD THP where the model does not know whether the PTE table exists".into()
                    });
                    return true;
                }
            },
        }
        // do_huge_pmd_anonymous_page prepares the anon_vma before it looks at the fault's kind, so a
        // read that maps the huge zero page gives the VMA one too (unlike do_anonymous_page's zero page)
        // [S 6.18 mm/huge_memory.c:do_huge_pmd_anonymous_page; T 6.18, gen-1-6549: mprotect PROT_NONE
        // keeps VM_ACCOUNT after such a read, gen-1-1863: COLLAPSE then passes the anon_vma check].
        self.anon_vma_prepare(model, i);
        if !write && model.thp_use_zero_page && self.thp.get(&h).is_none() {
            for p in h..h + pmd {
                self.set_pte(p, Pte::Zero);
            }
            self.thp.insert(h, ThpPmd::HugeZero);
            return true;
        }
        let folio = self.next_folio;
        self.next_folio += 1;
        for p in h..h + pmd {
            let content = if p == page { data.unwrap_or(Content::Zero) } else { Content::Zero };
            self.set_pte(p, Pte::Anon { content, lazy: false, shared: false, folio, freed: false, pgdirty: false });
        }
        self.large.insert(folio);
        self.thp.insert(h, ThpPmd::Anon);
        true
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

    /// The PMD mappings [h, h + PMD) that overlap [s, e).
    pub(crate) fn thps_in(&self, s: i64, e: i64) -> Vec<(i64, ThpPmd)> {
        let pmd = self.pmd_pages();
        self.thp.range(s - pmd + 1..e).map(|(&h, &k)| (h, k)).collect()
    }

    /// Is any page of [s, e) mapped by a PMD or part of an anonymous large folio?
    pub(crate) fn touches_thp(&self, s: i64, e: i64) -> bool {
        !self.thps_in(s, e).is_empty()
            || (s.max(0)..e.min(self.arena_pages as i64))
                .any(|p| matches!(self.pte(p), Pte::Anon { folio, .. } if self.large.contains(&folio)))
    }

    /// Before a zap of [s, e): a PMD wholly inside goes with its deposited page table (zap_huge_pmd:
    /// the next fault there may map a PMD again); one partly inside is split to PTEs first, which stay
    /// (__split_huge_pmd) [S 6.18 mm/memory.c:zap_pmd_range; mm/huge_memory.c:zap_huge_pmd;
    /// T 6.18 probe, cases thp_dontneed_whole_pmd_frees_it_and_the_next_fault_maps_a_new_thp,
    /// thp_dontneed_inside_splits_pmd_and_keeps_the_rest].
    pub(crate) fn zap_thps(&mut self, s: i64, e: i64) {
        let pmd = self.pmd_pages();
        for (h, _) in self.thps_in(s, e) {
            self.thp.remove(&h);
            if s <= h && h + pmd <= e {
                for p in h..h + pmd {
                    self.ptes[p as usize] = Pte::None;
                }
                let t = self.table_of(h);
                self.pte_tables[t] = Some(false);
            }
        }
    }

    /// split_folio of the large anonymous folio `folio`: every PMD mapping it becomes PTEs, and from 6.12
    /// each zero-filled subpage is mapped to the shared zero page instead (not in VM_LOCKED VMAs); the
    /// other subpages become order-0 folios of their own [S 6.12 mm/huge_memory.c:__split_huge_page;
    /// mm/migrate.c:try_to_map_unused_to_zeropage; T 6.18 probe: FREE, COLD or PAGEOUT of one page of a
    /// THP whose page 0 was written leaves Rss 1 and 511 shared-zero-page PTEs].
    pub(crate) fn split_folio(&mut self, model: &KernelModel, folio: u32) {
        self.large.remove(&folio);
        let hs: Vec<i64> = self.thp.iter().filter(|(_, k)| **k == ThpPmd::Anon).map(|(&h, _)| h).collect();
        for h in hs {
            if matches!(self.pte(h), Pte::Anon { folio: f, .. } if f == folio) {
                self.thp.remove(&h);
            }
        }
        for p in 0..self.arena_pages as i64 {
            let Pte::Anon { content, lazy, shared, folio: f, freed, pgdirty } = self.pte(p) else { continue };
            if f != folio {
                continue;
            }
            let locked = self.vma_at(p).is_some_and(|i| self.vmas[i].flags & vmf::LOCKED != 0);
            if model.thp_split_maps_zero_subpages && content == Content::Zero && !locked {
                self.ptes[p as usize] = Pte::Zero;
                continue;
            }
            let id = self.next_folio;
            self.next_folio += 1;
            self.ptes[p as usize] = Pte::Anon { content, lazy, shared, folio: id, freed, pgdirty };
        }
    }

    /// Does the process map a THP (by PMD or by PTEs)?
    pub(crate) fn holds_thp(&self) -> bool {
        !self.thp.is_empty() || !self.large.is_empty()
    }

    /// The large folios with a page in [s, e).
    pub(crate) fn large_folios_in(&self, s: i64, e: i64) -> Vec<u32> {
        let mut out: Vec<u32> = (s.max(0)..e.min(self.arena_pages as i64))
            .filter_map(|p| match self.pte(p) {
                Pte::Anon { folio, .. } if self.large.contains(&folio) => Some(folio),
                _ => None,
            })
            .collect();
        out.dedup();
        out
    }

    /// Do the pages of [s, e) map all of large folio `folio`, and nothing else maps it?
    pub(crate) fn covers_folio(&self, folio: u32, s: i64, e: i64) -> bool {
        let is = |p: i64| matches!(self.pte(p), Pte::Anon { folio: f, .. } if f == folio);
        let inside = (s.max(0)..e.min(self.arena_pages as i64)).filter(|&p| is(p)).count() as i64;
        let all = (0..self.arena_pages as i64).filter(|&p| is(p)).count() as i64;
        inside == all && all == self.pmd_pages()
    }

    /// After every step: a PMD mapping no longer wholly inside one VMA was split when the VMA was
    /// (vma_adjust_trans_huge → split_huge_pmd_if_needed on every __split_vma) [S 6.18 mm/vma.c:
    /// __split_vma; mm/huge_memory.c:vma_adjust_trans_huge; T 6.18 probe: mprotect or munmap of page
    /// 511 of a THP leaves AnonHugePages 0, MADV_NOHUGEPAGE of page 3 too], and a mapping whose
    /// pages are no longer all the one folio (or the zero page) was split by whatever changed them.
    /// Folio ids no page maps any more leave `large`.
    pub(crate) fn thp_fixup(&mut self) {
        let pmd = self.pmd_pages();
        let hs: Vec<(i64, ThpPmd)> = self.thp.iter().map(|(&h, &k)| (h, k)).collect();
        for (h, k) in hs {
            let inside = self.vma_at(h).is_some_and(|i| self.vmas[i].end >= h + pmd);
            let intact = match (k, self.pte(h)) {
                (ThpPmd::HugeZero, _) => (h..h + pmd).all(|p| self.pte(p) == Pte::Zero),
                (ThpPmd::Anon, Pte::Anon { folio, .. }) => {
                    (h..h + pmd).all(|p| matches!(self.pte(p), Pte::Anon { folio: f, .. } if f == folio))
                }
                _ => false,
            };
            if !inside || !intact {
                self.thp.remove(&h);
            }
        }
        if !self.large.is_empty() {
            let mapped: std::collections::BTreeSet<u32> = self
                .ptes
                .iter()
                .filter_map(|p| match p {
                    Pte::Anon { folio, .. } => Some(*folio),
                    _ => None,
                })
                .collect();
            self.large.retain(|f| mapped.contains(f));
        }
    }

    /// AnonHugePages of vmas[i], in base pages: the anonymous THPs it maps with a PMD (smaps_pmd_entry
    /// counts PMD mappings only, and the huge zero page not at all) [S 6.18 fs/proc/task_mmu.c:
    /// smaps_pmd_entry, smaps_account; T 6.18 probe: 2048 kB after a write fault, 0 after a read fault
    /// and after any split].
    pub(crate) fn anon_huge_pages(&self, i: usize) -> u64 {
        let v = &self.vmas[i];
        self.thp.iter().filter(|(&h, &k)| k == ThpPmd::Anon && h >= v.start && h < v.end).count() as u64
            * self.pmd_pages() as u64
    }

    /// Is `page` mapped by the huge zero page (present in pagemap, but not the shared zero page's PFN)?
    pub(crate) fn huge_zero_at(&self, page: i64) -> bool {
        let h = self.pmd_start(page);
        self.thp.get(&h) == Some(&ThpPmd::HugeZero)
    }
}

impl Machine {
    /// MADV_FREE, MADV_COLD and MADV_PAGEOUT over [s, e) of one VMA, for the large folios there, before
    /// the per-page rules run on what is left. The huge zero page is never touched (madvise_free_huge_pmd
    /// and madvise_cold_or_pageout_pte_range skip it, and pte_offset_map finds no table under it). A
    /// folio the range covers only in part is split (split_folio, see `split_folio`) [S 6.18
    /// mm/madvise.c:madvise_free_pte_range, madvise_cold_or_pageout_pte_range; mm/huge_memory.c:
    /// madvise_free_huge_pmd]. A folio covered whole stays large: FREE marks it lazy-free (PMD and all,
    /// T 6.18 probe: LazyFree and AnonHugePages 2048 kB), COLD only deactivates it, PAGEOUT reclaims it:
    /// without swap add_to_swap fails and shrink_folio_list splits it, unless it is a clean lazy-free
    /// one, which is discarded, leaving an empty PTE table [S 6.18 mm/vmscan.c:shrink_folio_list; mm/rmap.c:
    /// try_to_unmap_one, unmap_huge_pmd_locked; T 6.18 probe: PAGEOUT of a whole written THP leaves
    /// Rss 1; after FREE it leaves nothing]. Returns Err(reason) where the model does not know.
    pub(crate) fn thp_lru_advice(&mut self, model: &KernelModel, s: i64, e: i64, adv: crate::program::Advice) -> Result<(), String> {
        use crate::program::Advice;
        for folio in self.large_folios_in(s, e) {
            let whole = self.covers_folio(folio, s, e);
            let pages: Vec<i64> = (0..self.arena_pages as i64)
                .filter(|&p| matches!(self.pte(p), Pte::Anon { folio: f, .. } if f == folio))
                .collect();
            let h = pages[0];
            let pmd_mapped = self.thp.get(&h) == Some(&ThpPmd::Anon);
            if pages.iter().any(|&p| matches!(self.pte(p), Pte::Anon { shared: true, .. })) {
                return Err("a THP shared with a forked process is not modelled".into());
            }
            match adv {
                Advice::Free | Advice::Cold if whole => {}
                Advice::Pageout if whole => {
                    let lazy = pages.iter().filter(|&&p| matches!(self.pte(p), Pte::Anon { lazy: true, .. })).count();
                    let freed = pages.iter().any(|&p| matches!(self.pte(p), Pte::Anon { freed: true, .. }));
                    if lazy == pages.len() && pmd_mapped && model.lazyfree_thp_pmd_discard {
                        // Discarded at PMD level: __discard_anon_folio_pmd_locked frees the deposited
                        // PTE table too, so the next fault maps a new THP [S 6.12.115 mm/huge_memory.c:
                        // __discard_anon_folio_pmd_locked; T Debian 6.16.3 … 7.2.11, case
                        // thp_pageout_after_free_discards_the_whole_thp; docs/findings.md item 13].
                        self.zap_thps(h, h + self.pmd_pages());
                    } else if lazy == pages.len() && pmd_mapped {
                        // Split, then discarded PTE by PTE: unlike zap_huge_pmd this leaves a (now
                        // empty) PTE table under the PMD: the next fault there maps a 4K page [T 6.18,
                        // case thp_pageout_after_free_discards_the_whole_thp].
                        self.zap_thps(h, h + self.pmd_pages());
                        let t = self.table_of(h);
                        self.pte_tables[t] = Some(true);
                    } else if freed && pmd_mapped && model.lazyfree_thp_dirty_pmd_aborts {
                        // Written again after FREE, and the PMD-level discard fails on the dirty PMD:
                        // it sets PG_dirty and PG_swapbacked, and try_to_unmap_one aborts the walk
                        // without splitting, so the THP stays PMD-mapped [S 7.2 mm/rmap.c:
                        // try_to_unmap_one (walk_abort), mm/huge_memory.c:__discard_anon_folio_pmd_locked;
                        // T Debian 6.16.3 … 7.2.11, case
                        // thp_pageout_after_free_and_a_write_splits_pmd_but_keeps_every_page].
                        for &p in &pages {
                            if let Pte::Anon { content, shared, folio, .. } = self.pte(p) {
                                self.ptes[p as usize] = Pte::Anon { content, lazy: false, shared, folio, freed: false, pgdirty: true };
                            }
                        }
                    } else if freed && pmd_mapped {
                        // Written again after FREE: the PMD is dirty, so try_to_unmap_one cannot discard
                        // the folio; it sets PG_swapbacked again and splits the PMD (TTU_SPLIT_HUGE_PMD,
                        // which moves the PMD's dirty bit to PG_dirty); the folio stays large and
                        // PTE-mapped [S 6.18 mm/rmap.c:try_to_unmap_one; mm/huge_memory.c:
                        // __split_huge_pmd_locked; T 6.18 probe: FREE, write one page, PAGEOUT leaves 512
                        // present, AnonHugePages and LazyFree 0, no zero pages; case
                        // thp_pageout_after_free_and_a_write_splits_pmd_but_keeps_every_page].
                        self.thp.remove(&h);
                        for &p in &pages {
                            if let Pte::Anon { content, shared, folio, .. } = self.pte(p) {
                                self.ptes[p as usize] = Pte::Anon { content, lazy: false, shared, folio, freed: false, pgdirty: true };
                            }
                        }
                    } else if lazy > 0 || freed {
                        return Err("PAGEOUT of a lazy-free THP mapped by PTEs is not modelled".into());
                    } else {
                        self.split_folio(model, folio);
                    }
                }
                _ => self.split_folio(model, folio),
            }
        }
        Ok(())
    }
}
