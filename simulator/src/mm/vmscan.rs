//! mm/vmscan.c (with mm/madvise.c:madvise_cold_or_pageout_pte_range): MADV_COLD and MADV_PAGEOUT with
//! no swap device, and the splitting of large folios their walk does.
//!
//! Invariant: with no swap, only clean or page-cache pages mapped once are reclaimed.

use crate::machine::{vmf, Machine, Pte};

impl Machine {
    /// MADV_PAGEOUT's reclaim of [s, e) of vmas[i], with no swap device: exclusively mapped page-cache and
    /// shmem pages are unmapped (dirty ones stay cached: madvise is not kswapd, so reclaim only unmaps
    /// and re-activates them), clean lazy-free anonymous pages are discarded, other anonymous pages stay
    /// (add_to_swap fails), the zero page is skipped, and pages mapped more than once (in this process,
    /// a waiting parent or a live child) are left alone before reclaim sees them, so try_to_unmap_one
    /// never meets a lazy-free folio mapped twice here [S 6.12 mm/madvise.c:
    /// madvise_cold_or_pageout_pte_range ("folio_mapcount(folio) != folio_nr_pages(folio)");
    /// mm/vmscan.c:shrink_folio_list; mm/rmap.c:try_to_unmap_one; T spec §5 PAGEOUT; T 6.18.44, cases
    /// pageout_skips_page_shared_with_live_child, pageout_skips_file_page_mapped_by_live_child]. `reclaim` false is
    /// MADV_COLD, which shares the walk and so its splitting of large folios (`large_folio_walk`) but
    /// reclaims nothing.
    pub(crate) fn pageout(&mut self, i: usize, s: i64, e: i64, reclaim: bool) {
        let v = self.vmas[i];
        let mut p = s;
        while p < e {
            let mut nr = 1;
            match self.pte(p) {
                // An mlocked folio is unevictable: reclaim puts it back [S 6.12 mm/vmscan.c:
                // shrink_folio_list (folio_evictable)].
                Pte::Anon { folio, .. } if self.stale_mlock_anon.contains(&folio) => {}
                Pte::Cache if v.obj.is_some_and(|o| self.stale_mlock.contains(&(o, v.obj_page(p)))) => {}
                Pte::Anon { lazy: true, shared: false, .. } if reclaim => self.set_pte(p, Pte::None),
                // A droppable folio is never swap-backed, so reclaim discards it like a lazy-free one,
                // dirty or not ("Unlike MADV_FREE mappings, VM_DROPPABLE ones can be dropped even if
                // they've been dirtied"); the PTE goes, whatever reclaim then does with a dirty folio
                // [S 6.12 mm/rmap.c:folio_add_new_anon_rmap, try_to_unmap_one; T 6.18.44 probe: PAGEOUT
                // of a written droppable page left it absent, reading zero].
                Pte::Anon { shared: false, .. } if reclaim && v.flags & vmf::DROPPABLE != 0 => self.set_pte(p, Pte::None),
                // A lazy-free folio whose PTE was dirtied again: try_to_unmap_one moves the PTE's dirty
                // bit to the folio (PG_dirty), cannot discard it, maps it back and sets PG_swapbacked
                // again [S 6.12 mm/rmap.c:try_to_unmap_one ("MADV_FREE page check")].
                Pte::Anon { shared: false, freed: true, content, folio, .. } if reclaim => {
                    self.set_pte(p, Pte::Anon { content, lazy: false, shared: false, folio, freed: false, pgdirty: true })
                }
                Pte::Cache => {
                    let obj = v.obj.unwrap();
                    let idx = v.obj_page(p);
                    let (h, n) = self.objs[obj].folio(idx);
                    if n > 1 {
                        match self.large_folio_walk(i, p, e) {
                            Some(batch) => nr = batch,
                            None => continue,
                        }
                        // A whole, exclusively mapped folio is reclaimed as one: folio_mapcount equal
                        // to its number of pages.
                        let maps: usize = (h..h + n).map(|k| self.cache_mapcount(obj, k)).sum();
                        if maps != n || !reclaim {
                            p += nr;
                            continue;
                        }
                    } else if self.cache_mapcount(obj, idx) != 1 || !reclaim {
                        p += 1;
                        continue;
                    }
                    self.unmap_cache(obj, h, h + n);
                    let o = &mut self.objs[obj];
                    let shmem = o.file.is_none() || o.memfd;
                    match (shmem, o.dirty[idx]) {
                        // shmem without swap: shmem_writeout redirties and activates (PG_reclaim cleared).
                        (true, true) => {}
                        // A clean folio is freed from the cache; a shmem hole reads as zeros again.
                        (_, false) => {
                            for k in h..h + n {
                                o.cached[k] = false;
                                o.order[k] = 0;
                            }
                        }
                        // A dirty file folio is only unmapped: "Only kswapd can writeback filesystem
                        // folios", so it is flagged for immediate reclaim and activated.
                        (false, true) => {
                            for f in &mut o.flagged[h..h + n] {
                                *f = true;
                            }
                        }
                    }
                }
                _ => {}
            }
            p += nr;
        }
    }

    /// finish_fault on 6.18 maps the whole large folio of the faulting page-cache page when the folio lies
    /// inside the VMA, the page table and i_size and none of its PTEs is set yet; otherwise (and before
    /// 6.18, for files that are not shmem) only the faulting page [S 6.18 mm/memory.c:finish_fault ("mm:
    /// map entire large folio in finish_fault", Kiryl Shutsemau, with "do not populate page table
    /// entries beyond i_size"; 6.12 keeps nr_pages = 1 for non-shmem files); T 6.18, case gen-3-33983: a
    /// write fault on page 2 of an order-2 folio mapped pages 0-3].
    pub(crate) fn map_whole_folio(&mut self, i: usize, page: i64) {
        let v = self.vmas[i];
        let obj = v.obj.unwrap();
        let idx = v.obj_page(page);
        let (h, n) = self.objs[obj].folio(idx);
        if n == 1 {
            return;
        }
        let first = page - (idx - h) as i64;
        let last = first + n as i64;
        let ptrs = self.ptrs_per_pte;
        let table = |p: i64| (self.base_vpn() + p).div_euclid(ptrs);
        let fits = first >= v.start
            && last <= v.end
            && table(first) == table(last - 1)
            && h + n <= self.objs[obj].pages.len()
            && (first..last).all(|p| p == page || self.pte(p) == Pte::None);
        if fits {
            for p in first..last {
                self.set_pte(p, Pte::Cache);
            }
        }
    }

    /// madvise_cold_or_pageout_pte_range at page `p` of vmas[i] (below `e`), which maps a page of a large
    /// page-cache folio: the batch is the run of present PTEs from `p` mapping the folio's following
    /// pages, within the range and the page table (madvise_folio_pte_batch; write and dirty bits do not
    /// break it). A batch shorter than the folio means the folio is not fully mapped in the range, so the
    /// walk splits it to order 0 unless another process maps it (folio_maybe_mapped_shared): the split
    /// unmaps every PTE of the folio, in every VMA, and does not map file pages again, so nothing of it
    /// is reclaimed. Returns the batch length, or None after a split (the walk looks at `p` again and
    /// finds it unmapped) [S 6.12 mm/madvise.c:madvise_cold_or_pageout_pte_range; 6.18 the same with
    /// folio_maybe_mapped_shared; mm/huge_memory.c:__folio_split (unmap_folio; remap_page returns for
    /// file folios); T 6.18 probe: PAGEOUT after a partial punch unmapped every page; case
    /// pageout_part_of_large_folio_splits_and_unmaps_it].
    pub(crate) fn large_folio_walk(&mut self, i: usize, p: i64, e: i64) -> Option<i64> {
        let v = self.vmas[i];
        let obj = v.obj.unwrap();
        let idx = v.obj_page(p);
        let (h, n) = self.objs[obj].folio(idx);
        let ptrs = self.ptrs_per_pte;
        let table_end = ((self.base_vpn() + p).div_euclid(ptrs) + 1) * ptrs - self.base_vpn();
        let lim = e.min(table_end).min(p + (h + n - idx) as i64);
        let mut q = p;
        while q < lim && self.pte(q) == Pte::Cache {
            q += 1;
        }
        let nr = q - p;
        if nr as usize == n {
            return Some(nr);
        }
        // Mapped by another process (a waiting parent or a live child): more mappings in all than here.
        let here: usize = self
            .vmas
            .iter()
            .filter(|w| w.obj == Some(obj))
            .map(|w| (w.start..w.end).filter(|&q| self.pte(q) == Pte::Cache && (h..h + n).contains(&w.obj_page(q))).count())
            .sum();
        let shared = (h..h + n).map(|k| self.cache_mapcount(obj, k)).sum::<usize>() > here;
        if shared {
            return Some(nr);
        }
        let o = &mut self.objs[obj];
        for k in h..h + n {
            o.order[k] = 0;
        }
        self.unmap_cache(obj, h, h + n);
        None
    }
}
