//! mm/filemap.c: the page-cache side of a file fault: fault-around (filemap_map_pages) and the mmap
//! readahead decisions (do_sync_mmap_readahead, mmap_miss).
//!
//! Invariant: fault-around only maps pages already in the cache and never past EOF or the VMA.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine, Pte, Vma};

impl Machine {
    /// A read fault past EOF still runs fault-around first, which maps the window's cached pages below
    /// i_size (on a disk file only if a PTE table exists or the first of them is not the file's last
    /// page: see `fault_around`) [T 6.18, memfd probes; cases gen-15-4406, gen-2-4992, gen-26-9322].
    pub(crate) fn fault_around_past_eof(&mut self, model: &KernelModel, i: usize, page: i64) {
        self.fault_around(model, i, page);
    }

    /// do_fault_around for a read fault at `page` of the file or shmem VMA vmas[i]: map the cached,
    /// uptodate pages of the aligned window (clamped to the VMA, the page table and i_size). It runs
    /// before the page itself is looked up, so it also happens when that lookup then fails past EOF
    /// [S 6.12 mm/memory.c:do_read_fault; mm/filemap.c:filemap_map_pages; T 6.18, case gen-15-4406].
    pub(crate) fn fault_around(&mut self, model: &KernelModel, i: usize, page: i64) {
        let v = self.vmas[i];
        let Some(obj) = v.obj else { return };
        let nr = model.fault_around_pages as i64;
        if nr > 1 {
            let vpn = self.base_vpn() + page;
            let ptrs = model.ptrs_per_pte as i64;
            let pte_off = vpn.rem_euclid(ptrs);
            let vma_off = page - v.start;
            let from = (pte_off - pte_off.rem_euclid(nr)).max(pte_off - pte_off.min(vma_off));
            let to = (from + nr).min(ptrs).min(pte_off + v.pages() - vma_off) - 1;
            let o = &self.objs[obj];
            let uptodate = |p: i64| {
                let idx = v.obj_page(p);
                idx < o.pages.len() && o.cached[idx] && !o.flagged[idx]
            };
            // With no PTE table yet, filemap_map_pages installs the preallocated one only when the first
            // uptodate folio it finds ends before i_size (can_map_large, shmem excepted); a window whose
            // first such page is the file's last page then maps nothing [S 6.12.117 mm/filemap.c:
            // filemap_map_pages, filemap_map_pmd; T 6.18 probe: a past-EOF populate in a fresh PMD maps
            // no neighbour, in a PMD with a table it maps the last page; case gen-2-4992].
            let first = (from..=to).map(|off| page + (off - pte_off)).find(|&p| uptodate(p));
            // The test is on the folio: a large folio that holds the file's last page blocks it too
            // (can_map_large = file_end >= folio_next_index) [S 6.18 mm/filemap.c:filemap_map_pages].
            let shmem = o.file.is_none() || o.memfd;
            if model.fault_around_table_needs_folio_before_eof
                && !shmem
                && first.is_some_and(|p| {
                    let (h, n) = o.folio(v.obj_page(p));
                    h + n >= o.pages.len()
                })
            {
                match self.pte_tables[self.table_of(page)] {
                    Some(true) => {}
                    Some(false) => return,
                    None => {
                        self.unknown.get_or_insert_with(|| {
                            "fault-around whose first page is the file's last, with the page table's existence unknown"
                                .to_string()
                        });
                        return;
                    }
                }
            }
            let map: Vec<i64> =
                (from..=to).map(|off| page + (off - pte_off)).filter(|&p| self.pte(p) == Pte::None && uptodate(p)).collect();
            for p in map {
                self.set_pte(p, Pte::Cache);
            }
        }
    }

    /// filemap_fault / shmem_fault for `page` of `v`: a fault that needs the page allocates it in the
    /// page cache (a shmem hole, or a punched or evicted disk-file page, read back from the file: zeros
    /// in a hole). Returns true when the fault dropped the mmap lock and was retried (a disk-file miss).
    pub(crate) fn ensure_obj_page(&mut self, model: &KernelModel, v: &Vma, page: i64) -> bool {
        let idx = v.obj_page(page);
        let obj = v.obj.unwrap();
        let o = &mut self.objs[obj];
        if idx < o.flagged.len() && o.flagged[idx] {
            // filemap_fault finds PG_readahead and starts async readahead, which clears the flag (not
            // under VM_RAND_READ or with ra_pages 0) and may read any uncached page of the window back in
            // [S 6.12 mm/filemap.c:do_async_mmap_readahead, mm/readahead.c:page_cache_async_ra]. It drops
            // the mmap lock first, so the fault is retried and fault-around runs again (case gen-1-84103).
            if v.flags & vmf::RAND_READ == 0 && model.ra_pages != Some(0) {
                // PG_readahead is a folio flag: the whole folio loses it.
                let (h, n) = o.folio(idx);
                for f in &mut o.flagged[h..h + n] {
                    *f = false;
                }
                if o.cached.iter().any(|c| !c) {
                    self.unknown.get_or_insert_with(|| {
                        "async readahead over a disk file with uncached pages is not modelled".to_string()
                    });
                }
                return true;
            }
            return false;
        }
        if idx >= o.cached.len() || o.cached[idx] {
            return false;
        }
        if o.file.is_none() || o.memfd {
            // shmem_get_folio_gfp allocates the one page; there is no readahead [S 6.12 mm/shmem.c].
            o.cached[idx] = true;
            return false;
        }
        // A miss on a disk file: do_sync_mmap_readahead, then __filemap_get_folio(FGP_CREAT) allocates
        // the page if readahead did not, and filemap_read_folio reads it (also with the lock dropped).
        self.sync_mmap_readahead(model, v, idx);
        self.objs[obj].cached[idx] = true;
        true
    }

    /// do_sync_mmap_readahead for a page-cache miss at page `idx` of the disk file mapped by `v`
    /// [S 6.1, 6.12 mm/filemap.c; 6.18 has the same branches plus ra->order and the VM_EXEC window (the
    /// 6.16 "mm/filemap: allow arch to request folio size for exec memory" patch as posted; T 6.18: seeds
    /// 1-3 × 100,000 scenarios agree)]:
    /// * VM_HUGEPAGE (CONFIG_TRANSPARENT_HUGEPAGE): a PMD-aligned window of two PMDs (one under
    ///   VM_RAND_READ), async size one PMD, "even if readahead is disabled";
    /// * VM_EXEC on 6.16+: an exec-order window clipped to the VMA (not modelled);
    /// * VM_RAND_READ or ra_pages 0: no readahead;
    /// * VM_SEQ_READ: page_cache_sync_ra(ra_pages) forward from the page;
    /// * otherwise, unless mmap_miss > MMAP_LOTSAMISS (100): read-around, the window
    ///   [idx − ra_pages/2, +ra_pages) with async size ra_pages/4.
    ///
    /// Readahead only adds pages that are not cached, clipped to i_size; a punched hole reads as zeros
    /// without I/O (ext4_mpage_readpages zero-fills unmapped blocks and unlocks the folio at once), so
    /// the retried fault finds every added page uptodate and unlocked.
    pub(crate) fn sync_mmap_readahead(&mut self, model: &KernelModel, v: &Vma, idx: usize) {
        let obj = v.obj.unwrap();
        let flags = v.flags;
        let rand = flags & vmf::RAND_READ != 0;
        if flags & vmf::HUGEPAGE != 0 && model.thp {
            if model.ra_hugepage_large_folios {
                self.ra_order_pmd(model, obj, idx, rand);
                return;
            }
            let pmd = model.ptrs_per_pte as usize;
            let start = idx / pmd * pmd;
            self.ra_window(model, obj, start, if rand { pmd } else { 2 * pmd }, pmd);
            return;
        }
        if flags & vmf::EXEC != 0 && model.ra_exec_window {
            self.unknown.get_or_insert_with(|| {
                "readahead for an executable file mapping (exec_folio_order window) is not modelled".to_string()
            });
            return;
        }
        if rand {
            return;
        }
        let Some(ra) = model.ra_pages.map(|r| r as usize) else {
            self.unknown.get_or_insert_with(|| {
                "readahead on a disk file whose device's read_ahead_kb is unknown".to_string()
            });
            return;
        };
        if ra == 0 {
            return;
        }
        if flags & vmf::SEQ_READ != 0 {
            // page_cache_sync_ra(ra_pages), with prev_pos still -1 (no read(2) on the file): at index 0
            // a window of get_init_ra_size(ra, ra) = ra pages with async size ra/2; elsewhere, when the
            // cached run before the page is not longer than ra, a plain window of ra pages
            // [S 6.12 mm/readahead.c:page_cache_sync_ra].
            if idx == 0 {
                self.ra_window(model, obj, 0, ra, ra / 2);
            } else if idx <= ra {
                self.ra_window(model, obj, idx, ra, 0);
            } else {
                self.unknown.get_or_insert_with(|| {
                    "sequential readahead after a long cached run (ra state ramp-up) is not modelled".to_string()
                });
            }
            return;
        }
        // MMAP_LOTSAMISS: the counter only grows by one per miss, so at most 100 misses keep it in range.
        let o = &mut self.objs[obj];
        o.mmap_miss += 1;
        if o.mmap_miss > 100 {
            self.unknown.get_or_insert_with(|| {
                "more than MMAP_LOTSAMISS readahead misses on one file (mmap_miss hits not modelled)".to_string()
            });
            return;
        }
        let start = idx.saturating_sub(ra / 2);
        self.ra_window(model, obj, start, ra, ra / 4);
    }
}
