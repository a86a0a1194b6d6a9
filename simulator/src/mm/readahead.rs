//! mm/readahead.c and mm/fadvise.c: the readahead windows MADV_WILLNEED and file faults read
//! (force_page_cache_ra, page_cache_ra_order, ondemand readahead).
//!
//! Invariant: readahead only fills the page cache (`FileObj::cached`, PG_readahead marks); it maps
//! nothing.

use crate::kernel::KernelModel;
use crate::machine::{Machine, Vma};

impl Machine {
    /// MADV_WILLNEED on a disk file: vfs_fadvise(POSIX_FADV_WILLNEED) over exactly the range's file
    /// pages → force_page_cache_ra, which reads up to max(io_pages, ra_pages) pages with no async mark,
    /// clipped to i_size; shmem (memfd, shared anonymous) only swaps in [S 6.12 mm/madvise.c:
    /// madvise_willneed; mm/fadvise.c:generic_fadvise; mm/readahead.c:force_page_cache_ra].
    pub(crate) fn willneed_file(&mut self, model: &KernelModel, v: &Vma, s: i64, e: i64) {
        let Some(obj) = v.obj else { return };
        let o = &self.objs[obj];
        if o.file.is_none() || o.memfd {
            return;
        }
        let (first, last) = (v.obj_page(s), v.obj_page(e).min(o.pages.len()));
        if first >= last || o.cached[first..last].iter().all(|&c| c) {
            return;
        }
        match model.ra_pages {
            Some(ra) if (last - first) as u64 <= ra => self.ra_window(model, obj, first, last - first, 0),
            _ => {
                self.unknown.get_or_insert_with(|| {
                    "WILLNEED readahead longer than read_ahead_kb (bdi io_pages) or with read_ahead_kb unknown"
                        .to_string()
                });
            }
        }
    }

    /// 6.16+ page_cache_ra_order for the VM_HUGEPAGE window (ra->order = HPAGE_PMD_ORDER, ext4 with
    /// large folios): from the PMD-aligned start, each step allocates the largest naturally aligned folio
    /// (at most PMD order, at most log2(size)) that ends before i_size; the first step whose range holds a
    /// cached page fails (-EEXIST) and the rest of the window falls back to do_page_cache_ra with order-0
    /// pages [S 6.12 mm/readahead.c:page_cache_ra_order, ra_alloc_folio: the same loop, which 6.16 stopped
    /// ramping by +2 orders (UNVERIFIED 6.18 source); T 6.18: an 8-page hole becomes one order-3 folio;
    /// cases gen-2-38448, gen-2-57174]. Large folios themselves are not modelled, so a step that would allocate one answers
    /// Unsupported, as does the PG_readahead mark at start + size − async_size landing on an allocated
    /// folio. What they change [T 6.18 probe, 8-page ext4 file punched whole, MADV_HUGEPAGE, read of page
    /// 3]: one order-3 folio; fault-around still maps the window page by page; REMOVE of pages 2-3 then
    /// unmaps all 8 PTEs (the split unmaps the whole folio and does not remap file pages) and leaves
    /// order-1 [0,2), order-0 4 and 5, order-1 [6,8) cached (consistent with try_folio_split in
    /// mm/truncate.c:truncate_inode_partial_folio, 6.15+, source UNVERIFIED); PAGEOUT then unmapped all.
    pub(crate) fn ra_order_pmd(&mut self, model: &KernelModel, obj: usize, idx: usize, rand: bool) {
        let pmd = model.ptrs_per_pte as usize;
        let start = idx / pmd * pmd;
        let size = if rand { pmd } else { 2 * pmd };
        let async_size = pmd;
        let eof = self.objs[obj].pages.len();
        if start >= eof {
            return;
        }
        let limit = (eof - 1).min(start + size - 1);
        let new_order = pmd.trailing_zeros().min(size.ilog2());
        let mark = start + size - async_size;
        let mut index = start;
        while index <= limit {
            let mut order = new_order;
            if index & ((1 << order) - 1) != 0 {
                order = index.trailing_zeros();
            }
            while order > 0 && index + (1 << order) - 1 > limit {
                order -= 1;
            }
            let n = 1usize << order;
            if self.objs[obj].cached[index..index + n].iter().any(|&c| c) {
                break;
            }
            // ra_alloc_folio flags the folio that holds `mark` PG_readahead; where 6.16+ puts that mark
            // for this window is not pinned by a probe (VM_RAND_READ puts it on the first folio).
            if (index..index + n).contains(&mark) {
                self.unknown.get_or_insert_with(|| {
                    "readahead under MADV_HUGEPAGE would flag a folio PG_readahead on ext4 (6.16+); \
                     the mark's placement is not modelled"
                        .to_string()
                });
                return;
            }
            // A PMD-order folio could be mapped by a PMD (filemap_map_pmd, do_set_pmd): not modelled.
            if order >= pmd.trailing_zeros() {
                self.unknown.get_or_insert_with(|| {
                    "readahead under MADV_HUGEPAGE builds a PMD-sized folio (PMD mapping not modelled)".to_string()
                });
                return;
            }
            let o = &mut self.objs[obj];
            for k in index..index + n {
                o.cached[k] = true;
                o.dirty[k] = false;
                o.order[k] = order as u8;
            }
            index += n;
        }
        if index <= limit && size > index - start {
            self.ra_window(model, obj, index, size - (index - start), async_size);
        }
    }

    /// do_page_cache_ra(start, size, async_size) on a disk file: clip to i_size, add every page of the
    /// window that is not cached (order 0 on ext4 before 6.16; read-around and VM_SEQ_READ windows use
    /// order 0 on 6.16+ too, ra->order = 0), and flag PG_readahead on the added page at the clipped end
    /// minus `async_size` [S 6.12 mm/readahead.c:do_page_cache_ra, page_cache_ra_unbounded].
    pub(crate) fn ra_window(&mut self, model: &KernelModel, obj: usize, start: usize, size: usize, async_size: usize) {
        let eof = self.objs[obj].pages.len();
        if start >= eof {
            return;
        }
        let nr = size.min(eof - start);
        // The relative mark nr − async_size is unsigned: past the window (never hit) when async_size is
        // 0 or larger than the clipped window.
        let mark = (async_size > 0 && nr >= async_size).then(|| start + nr - async_size);
        let unclipped = start + size - async_size.min(size);
        if !model.ra_mark_clipped && async_size > 0 && (mark.is_some() || unclipped < eof) {
            self.unknown.get_or_insert_with(|| {
                "readahead would flag a page of the file PG_readahead, whose index on this kernel is not modelled"
                    .to_string()
            });
        }
        let o = &mut self.objs[obj];
        for p in start..start + nr {
            if !o.cached[p] {
                o.cached[p] = true;
                o.dirty[p] = false;
                o.order[p] = 0;
                if model.ra_mark_clipped && Some(p) == mark {
                    o.flagged[p] = true;
                }
            }
        }
    }
}
