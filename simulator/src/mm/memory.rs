//! mm/memory.c: faults (read, write, COW, the zero page), zap, population, and a user access.
//!
//! Invariants: a PTE is only installed inside a VMA that allows the access; installing one allocates its
//! PTE table; zap clears PTEs and never touches the page cache.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine, Pte, StepOut, Vma};
use crate::observe::{Content, Ret, Signal};

impl Machine {
    /// Content a Cache PTE at `page` shows.
    pub(crate) fn cache_content(&self, v: &Vma, page: i64) -> Content {
        let o = &self.objs[v.obj.expect("cache pte in a file vma")];
        o.pages.get(v.obj_page(page)).copied().unwrap_or(Content::Zero)
    }

    /// The content of the page mapped at `page` (for a present PTE).
    pub(crate) fn content_at(&self, i: usize, page: i64) -> Option<Content> {
        match self.pte(page) {
            Pte::None => None,
            Pte::Zero => Some(Content::Zero),
            Pte::Anon { content, .. } => Some(content),
            Pte::Cache => Some(self.cache_content(&self.vmas[i], page)),
            Pte::Guard => None,
        }
    }

    /// A read fault (or a read-populate) on `page` in vmas[i]: do_anonymous_page maps the zero page for
    /// private anonymous memory [S 6.18 mm/memory.c:do_anonymous_page]; a file or shmem read fault first
    /// maps the cached, uptodate pages of an aligned window around the address (fault-around, clamped to
    /// the VMA, the page table and i_size), then reads in the faulting page itself
    /// [S 6.12 mm/memory.c:do_read_fault, do_fault_around; mm/filemap.c:filemap_map_pages,
    /// next_uptodate_folio]. A page-cache miss on a disk file drops the mmap (or VMA) lock for readahead
    /// and answers VM_FAULT_RETRY; the retried fault (FAULT_FLAG_TRIED) runs fault-around again, which
    /// now also maps what readahead added [S 6.12 mm/filemap.c:filemap_fault, maybe_unlock_mmap_for_io;
    /// arch/x86/mm/fault.c:do_user_addr_fault; mm/gup.c:faultin_page for populate].
    pub(crate) fn fault_read(&mut self, model: &KernelModel, i: usize, page: i64) {
        if self.pte(page) != Pte::None {
            return;
        }
        let v = self.vmas[i];
        if v.flags & vmf::HUGETLB != 0 {
            self.huge_fault(model, i, page, false, None);
            return;
        }
        if v.obj.is_none() {
            if !self.thp_fault(model, i, page, false, None) {
                self.set_pte(page, Pte::Zero);
            }
            return;
        }
        self.fault_around(model, i, page);
        if self.ensure_obj_page(model, &v, page) {
            self.fault_around(model, i, page);
        }
        // Fault-around may have mapped the page itself; if not, __do_fault and finish_fault map it (with
        // its whole large folio on 6.18, see `map_whole_folio`; T 6.18, case
        // remove_inside_a_large_folio_splits_it_and_unmaps_all_of_it).
        let fresh = self.pte(page) == Pte::None;
        self.set_pte(page, Pte::Cache);
        if fresh && model.finish_fault_maps_whole_folio {
            self.map_whole_folio(i, page);
        }
    }

    /// A write fault on `page` in vmas[i] that stores `data` (None: break COW / allocate without changing
    /// bytes, as GUP with FOLL_WRITE does when populating).
    pub(crate) fn fault_write(&mut self, model: &KernelModel, i: usize, page: i64, data: Option<Content>) {
        let v = self.vmas[i];
        if v.flags & vmf::HUGETLB != 0 {
            self.huge_fault(model, i, page, true, data);
            return;
        }
        if v.flags & vmf::SHARED != 0 || (v.obj.is_some() && v.flags & vmf::MAYSHARE != 0) {
            // Shared: the page-cache page itself is written [S mm/memory.c:do_shared_fault].
            self.ensure_obj_page(model, &v, page);
            let idx = v.obj_page(page);
            let o = &mut self.objs[v.obj.unwrap()];
            if let Some(d) = data {
                o.pages[idx] = d;
            }
            // do_shared_fault / wp_page_shared dirty the page (populate-write too), and with it the whole
            // folio.
            if idx < o.dirty.len() {
                o.mark_dirty(idx);
            }
            let fresh = self.pte(page) == Pte::None;
            self.set_pte(page, Pte::Cache);
            if fresh && model.finish_fault_maps_whole_folio {
                self.map_whole_folio(i, page);
            }
            return;
        }
        if v.obj.is_none()
            && (self.pte(page) == Pte::None || (self.pte(page) == Pte::Zero && self.huge_zero_at(page)))
            && self.thp_fault(model, i, page, true, data)
        {
            return;
        }
        // Private: a private anonymous page, COW-copied from whatever was mapped (zero page, page-cache
        // page) or from the file [S mm/memory.c:do_anonymous_page, do_cow_fault, wp_page_copy].
        let old = match self.pte(page) {
            Pte::Anon { content, .. } => content,
            Pte::Zero => Content::Zero,
            Pte::Cache => self.cache_content(&v, page),
            // Callers check for markers first (an access there is SIGSEGV, a populate stops).
            Pte::Guard => return,
            Pte::None => match v.obj {
                None => Content::Zero,
                Some(_) => {
                    self.ensure_obj_page(model, &v, page);
                    self.cache_content(&v, page)
                }
            },
        };
        self.anon_vma_prepare(model, i);
        // A write to an exclusive anonymous page changes it in place (a writable PTE does not fault; a
        // write-protected one left over from fork is reused once the folio's refcount is 1), so the folio
        // keeps its identity and flags; only the PTE is dirty again [S 6.12 mm/memory.c:do_wp_page,
        // wp_can_reuse_anon_folio]. Anything else gets a new folio (do_anonymous_page, wp_page_copy).
        if let Pte::Anon { shared: false, folio, freed, pgdirty, .. } = self.pte(page) {
            self.set_pte(page, Pte::Anon { content: data.unwrap_or(old), lazy: false, shared: false, folio, freed, pgdirty });
            return;
        }
        let folio = self.next_folio;
        self.next_folio += 1;
        self.set_pte(
            page,
            Pte::Anon { content: data.unwrap_or(old), lazy: false, shared: false, folio, freed: false, pgdirty: false },
        );
    }

    /// zap_page_range_single: drop the PTEs of [s, e) but keep guard markers, which only munmap (or
    /// GUARD_REMOVE) drops [S 6.18 mm/memory.c:zap_nonpresent_ptes; T spec §5 GUARD_INSTALL].
    pub(crate) fn zap(&mut self, s: i64, e: i64) {
        self.zap_thps(s, e);
        for p in s.max(0)..e.min(self.arena_pages as i64) {
            if self.pte(p) != Pte::Guard {
                self.set_pte(p, Pte::None);
            }
        }
    }

    /// After a DONTNEED zap of [s, e): a PTE table whose whole PMD range lies inside [s, e) and which is
    /// now empty (no page, no guard marker) is freed (`KernelModel::dontneed_reclaims_pte_tables`).
    pub(crate) fn reclaim_empty_tables(&mut self, model: &KernelModel, s: i64, e: i64) {
        if !model.dontneed_reclaims_pte_tables || s >= e {
            return;
        }
        let pmd = self.ptrs();
        let mut h = self.pmd_start(s + pmd - 1);
        while h + pmd <= e {
            if h >= 0 && h + pmd <= self.arena_pages as i64 && (h..h + pmd).all(|p| self.pte(p) == Pte::None) {
                let t = self.table_of(h);
                if self.pte_tables[t].is_some() {
                    self.pte_tables[t] = Some(false);
                }
            }
            h += pmd;
        }
    }

    /// Unmapping: every entry goes, guard markers too (munmap frees the page tables of the range; only
    /// zaps keep markers) [S 6.18 mm/vma.c:vms_clear_ptes → unmap_vmas with a NULL zap_details;
    /// mm/memory.c:zap_nonpresent_ptes; T spec §5 GUARD_INSTALL "munmap removes them"].
    pub(crate) fn clear_ptes(&mut self, s: i64, e: i64) {
        self.zap_thps(s, e);
        for p in s.max(0)..e.min(self.arena_pages as i64) {
            self.set_pte(p, Pte::None);
        }
    }

    /// Populate [s, e) of vmas[i] as __mm_populate / populate_vma_page_range do: a write fault for
    /// private writable mappings (to break COW), a read fault otherwise [S 6.18 mm/gup.c].
    /// Stops with Err at a guard marker (GUP fails with -EFAULT there), after faulting the pages before it.
    pub(crate) fn populate(&mut self, model: &KernelModel, i: usize, s: i64, e: i64) -> Result<(), ()> {
        let v = self.vmas[i];
        // "the VM_LOCKONFAULT case has never used faultin_page()" [S 6.12 mm/gup.c:populate_vma_page_range].
        if v.flags & vmf::LOCKONFAULT != 0 {
            return Ok(());
        }
        // "we've never faulted in PROT_NONE pages" → -EFAULT, nothing faulted (reached by mremap growing
        // a locked PROT_NONE VMA) [S 6.12 mm/gup.c:populate_vma_page_range; T 6.18, case gen-1-3876].
        if v.flags & (vmf::READ | vmf::WRITE | vmf::EXEC) == 0 {
            return Err(());
        }
        let write = v.flags & (vmf::WRITE | vmf::SHARED) == vmf::WRITE;
        for p in s..e {
            if self.pte(p) == Pte::Guard {
                return Err(());
            }
            if self.past_eof(i, p) {
                if !write {
                    self.fault_around_past_eof(model, i, p);
                }
                return Err(());
            }
            if write {
                // FOLL_WRITE on a COW-shared page faults and copies it (can_follow_write_pte refuses a
                // write-protected PTE) [S 6.12 mm/gup.c:populate_vma_page_range, can_follow_write_pte;
                // mm/memory.c:wp_can_reuse_anon_folio].
                if !matches!(self.pte(p), Pte::Anon { shared: false, .. }) {
                    self.fault_write(model, i, p, None);
                }
                self.touch_write(p);
            } else {
                self.fault_read(model, i, p);
            }
        }
        Ok(())
    }

    /// A user-space write of a whole page, or a read of one byte. No VMA, or an access the VMA's
    /// protection denies → SIGSEGV [S 6.18 arch/x86/mm/fault.c:do_user_addr_fault, bad_area, access_error];
    /// a guard marker → SIGSEGV [S 6.18 mm/memory.c:handle_pte_marker (PTE_MARKER_GUARD →
    /// VM_FAULT_SIGSEGV)]; a file page past EOF → SIGBUS (`past_eof`).
    pub(crate) fn access(&mut self, model: &KernelModel, page: i64, write: Option<u8>) -> StepOut {
        let Some(i) = self.vma_at(page) else { return StepOut::Fatal(Signal::SIGSEGV) };
        let v = self.vmas[i];
        // A key whose PKRU bits deny the access: SIGSEGV (SEGV_PKUERR) from access_error, before any
        // fault is handled, so neither a guard marker nor EOF is reached [S 6.12 arch/x86/mm/fault.c:
        // access_error (X86_PF_PK, arch_vma_access_permitted), bad_area_access_error].
        if !self.pkru_allows(&v, write.is_some()) {
            return StepOut::Fatal(Signal::SIGSEGV);
        }
        if self.pte(page) == Pte::Guard {
            return StepOut::Fatal(Signal::SIGSEGV);
        }
        let needs_fault = match write {
            Some(_) => v.flags & vmf::WRITE != 0,
            None => v.flags & vmf::READ != 0,
        };
        if needs_fault && self.past_eof(i, page) {
            // A read fault runs fault-around before the page lookup fails past EOF, so the window's
            // cached pages below i_size are mapped even though the access gets SIGBUS; seen once a caught
            // fault (`try_read`) lets the process go on [S 6.12 mm/memory.c:do_read_fault; T 6.18,
            // gen-1-3068: try_read of page 8 past EOF maps file pages 3-5 at arena pages 5-7].
            if write.is_none() && v.obj.is_some() {
                self.fault_around_past_eof(model, i, page);
            }
            return StepOut::Fatal(Signal::SIGBUS);
        }
        match write {
            Some(fill) => {
                if v.flags & vmf::WRITE == 0 {
                    return StepOut::Fatal(Signal::SIGSEGV);
                }
                let c = if fill == 0 { Content::Zero } else { Content::Fill(fill) };
                self.fault_write(model, i, page, Some(c));
            }
            None => {
                // x86 and arm64: any of read/write/exec makes a page readable by the fault handler's
                // access check (vma_is_accessible); write-only is not generated (UNVERIFIED for arm64).
                if v.flags & vmf::READ == 0 {
                    return StepOut::Fatal(Signal::SIGSEGV);
                }
                self.fault_read(model, i, page);
            }
        }
        StepOut::Ret(Ret::Ok)
    }
}
