//! mm/hugetlb.c: hugetlb mappings: split refusals, reservations (HugePages_Rsvd), faults, unmap, punch
//! and the advice hugetlb VMAs refuse or treat specially.
//!
//! Invariants: hugetlb VMAs split only at huge page boundaries and never merge; the pool deltas
//! (`HugeDelta`) follow every reservation and allocation.

use crate::kernel::KernelModel;
use crate::machine::{vmf, FileObj, Machine, Pte, Vma};
use crate::observe::pool_free_unreserved;
use crate::observe::{Content, Errno};
use crate::program::Advice;

impl Machine {
    /// Is arena page `p` on a huge page boundary (in virtual addresses)?
    pub(crate) fn huge_aligned(&self, p: i64) -> bool {
        self.hp > 0 && (self.base_vpn() + p).rem_euclid(self.hp) == 0
    }

    /// The huge page holding arena page `p`: its first arena page.
    pub(crate) fn huge_start(&self, p: i64) -> i64 {
        p - (self.base_vpn() + p).rem_euclid(self.hp)
    }

    /// hugetlb_vm_op_split: a hugetlb VMA splits only at a huge page boundary, else EINVAL
    /// [S 6.12 mm/hugetlb.c:hugetlb_vm_op_split; T spec §3.3: RANDOM on 4K inside hugetlb → EINVAL].
    pub(crate) fn huge_split_refused(&self, v: &Vma, at: i64) -> bool {
        v.flags & vmf::HUGETLB != 0 && !self.huge_aligned(at)
    }

    /// hugetlb_reserve_pages at mmap: a shared mapping reserves every huge page of its file range that the
    /// inode's reserve map does not hold yet (region_chg); a private one reserves the whole range for
    /// itself [S 6.12 mm/hugetlb.c:hugetlb_reserve_pages; T 6.18: HugePages_Rsvd +n at mmap].
    pub(crate) fn huge_reserve(&mut self, v: &Vma) {
        let obj = v.obj.expect("hugetlb VMAs have a file");
        let mut p = v.start;
        while p < v.end {
            if v.flags & vmf::MAYSHARE != 0 {
                let idx = v.obj_page(p);
                let o = &mut self.objs[obj];
                if idx < o.region.len() && !o.region[idx] {
                    for r in &mut o.region[idx..(idx + self.hp as usize).min(o.pages.len())] {
                        *r = true;
                    }
                    if !o.cached[idx] {
                        self.huge.rsvd += 1;
                    }
                }
            } else if let Some(r) = self.huge_resv.get_mut(p as usize) {
                *r = true;
                self.huge.rsvd += 1;
            }
            p += self.hp;
        }
    }

    /// Drop the mappings of [s, e) (huge-aligned) of the hugetlb VMA `v`: a private page is freed unless
    /// the other process (fork) still maps it; at munmap an owner's reservations not consumed are given
    /// back (hugetlb_vm_op_close; a fork child or an mremap-orphaned VMA owns none); a zapped private page
    /// of an owner that is freed gets its reservation back where the kernel restores it
    /// [S 6.12 mm/hugetlb.c:__unmap_hugepage_range ("Restore the reservation for anonymous page",
    /// __vma_private_lock), hugetlb_vm_op_close, free_huge_folio; absent in 6.1 (S Debian 6.1.192);
    /// T 6.18: DONTNEED of a private page gives Free +1, Rsvd +1].
    pub(crate) fn huge_unmap(&mut self, v: &Vma, s: i64, e: i64, munmap: bool) {
        let owner = v.flags & vmf::RESV_OWNER != 0;
        let mut p = s;
        while p < e {
            if let Pte::Anon { shared, .. } = self.pte(p) {
                // A page the other process still maps gets no reservation back, neither now nor when the
                // other process frees it, and the owner's next fault there takes an unreserved page: the
                // source read (restore_reserve set on the folio, vma_add_reservation) predicted both, the
                // kernel does neither [T 6.12.118 guest: cases/destructive/
                // hugetlb_live_fork_dontneed_restores_nothing_while_the_child_maps_the_page, probes in
                // docs/findings.md].
                if self.restore_on_zap && owner && !shared {
                    self.huge_resv[p as usize] = true;
                    self.huge.rsvd += 1;
                }
                // free_huge_folio once nobody maps it.
                if !shared {
                    self.huge.free += 1;
                }
            }
            if munmap && v.flags & vmf::MAYSHARE == 0 && owner {
                if let Some(r) = self.huge_resv.get_mut(p as usize) {
                    if *r {
                        *r = false;
                        self.huge.rsvd -= 1;
                    }
                }
            }
            for q in p..(p + self.hp).min(e) {
                self.set_pte(q, Pte::None);
            }
            p += self.hp;
        }
    }

    /// A huge page taken from the free, unreserved pool (no reservation is consumed). The run makes sure
    /// `pool_free_unreserved(hp)` such pages exist when a scenario starts; past that the allocation may fail
    /// (SIGBUS, or the parent's COW unmapping the page from a fork child: unmap_ref_private), which the
    /// model does not know [S 6.12 mm/hugetlb.c:alloc_hugetlb_folio, dequeue_hugetlb_folio_vma,
    /// hugetlb_wp].
    fn huge_take_unreserved(&mut self) {
        if self.huge.free - self.huge.rsvd <= -pool_free_unreserved(self.hp as u64) {
            self.unknown.get_or_insert_with(|| {
                "the huge page pool may be exhausted here (SIGBUS or unmap_ref_private): not modelled".into()
            });
        }
        self.huge.free -= 1;
    }

    /// The process exits (a fork child, plain or live): exit_mmap unmaps every VMA, so private huge pages
    /// only it maps are freed and the reservations its own mappings own are given back; MAP_HUGETLB
    /// objects nobody maps any more are released [S 6.12 mm/mmap.c:exit_mmap; mm/hugetlb.c:
    /// hugetlb_vm_op_close].
    pub(crate) fn huge_exit(&mut self) {
        for v in std::mem::take(&mut self.vmas) {
            if v.flags & vmf::HUGETLB != 0 {
                self.huge_unmap(&v, v.start, v.end, true);
            }
        }
        self.huge_release_dead();
    }

    /// A MAP_HUGETLB object (or a hugetlb memfd whose fd was closed) whose last mapping went away is released (its pages freed, its reservations
    /// returned) [S 6.12 fs/hugetlbfs/inode.c:hugetlbfs_evict_inode, remove_inode_hugepages,
    /// hugetlb_unreserve_pages; T 6.18: Free back only after the last part is unmapped].
    pub(crate) fn huge_release_dead(&mut self) {
        for o in 0..self.objs.len() {
            let obj = &self.objs[o];
            // A hugetlb memfd lives on while its fd is open (`closed_fds`).
            let open_fd = obj.file.is_some_and(|f| !self.closed_fds.contains(&(f as usize)));
            if !obj.huge || open_fd || obj.dead || self.vmas.iter().any(|v| v.obj == Some(o)) || self.other_objs.contains(&o) {
                continue;
            }
            let hp = self.hp.max(1) as usize;
            let (mut freed, mut unreserved) = (0, 0);
            for idx in (0..obj.pages.len()).step_by(hp) {
                if obj.cached[idx] {
                    freed += 1;
                } else if obj.region[idx] {
                    unreserved += 1;
                }
            }
            self.huge.free += freed;
            self.huge.rsvd -= unreserved;
            self.objs[o].dead = true;
        }
    }

    /// A fault on `page` of the hugetlb VMA vmas[i] maps a whole huge page [S 6.12 mm/hugetlb.c:
    /// hugetlb_fault, hugetlb_no_page, hugetlb_wp]. Shared: the file's page, allocated into the page cache
    /// if missing (consuming the inode's reservation when the reserve map holds it). Private: a read maps
    /// the file's page when it is cached; otherwise (or on a write to the file's page) a private page is
    /// allocated — zeroed, or a copy of the file page — consuming the VMA's reservation if it still holds
    /// one. There is no zero page for hugetlb.
    pub(crate) fn huge_fault(&mut self, model: &KernelModel, i: usize, page: i64, write: bool, data: Option<Content>) {
        let v = self.vmas[i];
        let hs = self.huge_start(page);
        let he = hs + self.hp;
        let obj = v.obj.expect("hugetlb VMAs have a file");
        let idx = v.obj_page(hs);
        let shared = v.flags & vmf::MAYSHARE != 0;
        let pte = self.pte(page);
        let cached = self.objs[obj].cached.get(idx).copied().unwrap_or(false);
        if shared {
            if pte == Pte::None {
                if !cached {
                    let hpn = self.hp as usize;
                    let o = &mut self.objs[obj];
                    self.huge.free -= 1;
                    if o.region[idx] {
                        self.huge.rsvd -= 1;
                    }
                    for k in idx..(idx + hpn).min(o.pages.len()) {
                        o.cached[k] = true;
                        o.region[k] = true;
                        o.pages[k] = Content::Zero;
                    }
                }
                for q in hs..he {
                    self.set_pte(q, Pte::Cache);
                }
            }
            if let (true, Some(d)) = (write, data) {
                let k = v.obj_page(page);
                self.objs[obj].pages[k] = d;
            }
            return;
        }
        match pte {
            // A write to a private page the other process (fork) still maps copies it (hugetlb_wp): the
            // owner's COW avoids its reserves (cow_from_owner), a child has none, so the copy comes from
            // the free, unreserved pool [S 6.12 mm/hugetlb.c:hugetlb_wp, alloc_hugetlb_folio; S 6.1 the
            // same with outside_reserve].
            Pte::Anon { shared: true, .. } if write => {
                self.huge_take_unreserved();
                let folio = self.next_folio;
                self.next_folio += 1;
                for q in hs..he {
                    if let Pte::Anon { content, .. } = self.pte(q) {
                        self.set_pte(q, Pte::Anon { content, lazy: false, shared: false, folio, freed: false, pgdirty: false });
                    }
                }
            }
            Pte::Anon { .. } => {}
            Pte::Cache if !write => return,
            Pte::None if !write && cached => {
                for q in hs..he {
                    self.set_pte(q, Pte::Cache);
                }
                return;
            }
            _ => {
                // A new private page: a copy of the file's page when there is one, else zeroed, from the
                // VMA's reservation when it still holds one (an owner), else from the unreserved pool.
                if self.huge_resv[hs as usize] {
                    self.huge.free -= 1;
                    self.huge_resv[hs as usize] = false;
                    self.huge.rsvd -= 1;
                } else {
                    self.huge_take_unreserved();
                }
                // A private huge page needs the VMA's anon_vma (vmf_anon_prepare), which decides whether
                // fork copies the page tables [S 6.12 mm/hugetlb.c:hugetlb_no_page, hugetlb_wp].
                self.anon_vma_prepare(model, i);
                // One folio: the huge page.
                let folio = self.next_folio;
                self.next_folio += 1;
                for q in hs..he {
                    let k = v.obj_page(q);
                    let c = if cached { self.objs[obj].pages[k] } else { Content::Zero };
                    self.set_pte(q, Pte::Anon { content: c, lazy: false, shared: false, folio, freed: false, pgdirty: false });
                }
            }
        }
        if let (true, Some(d), Pte::Anon { folio, freed, pgdirty, .. }) = (write, data, self.pte(page)) {
            self.set_pte(page, Pte::Anon { content: d, lazy: false, shared: false, folio, freed, pgdirty });
        }
    }

    /// The advice with their own hugetlb rules; `None` for the ones the generic code handles (flag
    /// changes go through `modify_flags_checked`).
    pub(crate) fn advise_hugetlb(&mut self, model: &KernelModel, adv: Advice, i: usize, s: i64, e: i64) -> Option<Result<(), Errno>> {
        let v = self.vmas[i];
        Some(match adv {
            // vfs_fadvise(WILLNEED) on hugetlbfs does nothing: its mapping has no readahead
            // [S 6.12 mm/fadvise.c:generic_fadvise; T spec §5 WILLNEED: hugetlb OK].
            Advice::Willneed => Ok(()),
            // madvise_dontneed_free_valid_vma: the start must be huge-page aligned (else EINVAL), the end is
            // rounded down, and an empty range is 0 (5.18+; 6.1.y ALIGN_DOWN) [S 6.1, 6.12 mm/madvise.c;
            // T spec §5 DONTNEED].
            Advice::Dontneed | Advice::DontneedLocked => {
                if !self.huge_aligned(s) {
                    return Some(Err(Errno::EINVAL));
                }
                let end = e - (self.base_vpn() + e).rem_euclid(self.hp);
                if end > s {
                    self.huge_unmap(&v, s, end, false);
                }
                Ok(())
            }
            Advice::Free => Err(Errno::EINVAL),
            Advice::Remove => {
                // madvise_remove's checks (a private hugetlb mapping → EACCES [T spec §5 REMOVE]), then
                // hugetlbfs_punch_hole.
                let writable = if model.remove_needs_maywrite_only { vmf::MAYWRITE } else { vmf::WRITE };
                if v.flags & vmf::SHARED == 0 || v.flags & writable == 0 {
                    return Some(Err(Errno::EACCES));
                }
                // hugetlbfs_punch_hole refuses a write-sealed file before zeroing or removing anything
                // [S 6.12, 6.18 fs/hugetlbfs/inode.c:hugetlbfs_punch_hole].
                if self.seals(v.obj.unwrap()) & super::memfd::WRITE_SEALS != 0 {
                    return Some(Err(Errno::EPERM));
                }
                self.huge_punch(v.obj.unwrap(), v.obj_page(s), v.obj_page(e));
                Ok(())
            }
            _ => return None,
        })
    }

    /// hugetlbfs_punch_hole over file pages [first, last): whole huge pages inside are removed from the
    /// file and unmapped everywhere (private copies stay), while pages that are only reserved stay
    /// reserved; the partial huge pages at the edges are zeroed in place if present
    /// [S 6.12 fs/hugetlbfs/inode.c:hugetlbfs_punch_hole, hugetlbfs_zero_partial_page,
    /// remove_inode_hugepages, hugetlb_unreserve_pages; T spec §5 REMOVE (4 KiB REMOVE zeroes 4 KiB)].
    pub(crate) fn huge_punch(&mut self, obj: usize, first: usize, last: usize) {
        let hp = self.hp as usize;
        let hole_start = first.div_ceil(hp) * hp;
        let hole_end = last / hp * hp;
        let zero = |o: &mut FileObj, a: usize, b: usize| {
            for k in a..b.min(o.pages.len()) {
                if o.cached[k] {
                    o.pages[k] = Content::Zero;
                }
            }
        };
        if first < hole_start {
            zero(&mut self.objs[obj], first, last.min(hole_start));
        }
        if last > hole_end && last > hole_start {
            zero(&mut self.objs[obj], hole_end, last);
        }
        if hole_end > hole_start {
            // hugetlb_vmdelete_list unmaps the range from every VMA of the file, private ones included,
            // so private copies (anonymous huge pages) go too, freed, with their reservation given back
            // where zapping restores it [S 6.12 fs/hugetlbfs/inode.c:hugetlbfs_punch_hole,
            // hugetlb_vmdelete_list (unmap_hugepage_range with no zap flags); mm/hugetlb.c:
            // __unmap_hugepage_range; T 6.18, case gen-1-14048].
            for vi in 0..self.vmas.len() {
                let v = self.vmas[vi];
                if v.obj != Some(obj) || v.flags & vmf::MAYSHARE != 0 {
                    continue;
                }
                let mut p = v.start;
                while p < v.end {
                    let k = v.obj_page(p);
                    if k >= hole_start && k < hole_end && matches!(self.pte(p), Pte::Anon { .. }) {
                        self.huge_unmap(&v, p, p + hp as i64, false);
                    }
                    p += hp as i64;
                }
            }
            let o = &mut self.objs[obj];
            for idx in (hole_start..hole_end.min(o.pages.len())).step_by(hp) {
                // Only pages present in the file are removed, each with its reserve-map entry
                // (hugetlb_unreserve_pages(index, index + 1, freed = 1): no Rsvd change); a page that is
                // only reserved keeps its reservation [S 6.12 fs/hugetlbfs/inode.c:
                // remove_inode_single_folio; T 6.18, case gen-1-933].
                if !o.cached[idx] {
                    continue;
                }
                self.huge.free += 1;
                for k in idx..idx + hp {
                    o.cached[k] = false;
                    o.region[k] = false;
                    o.pages[k] = Content::Zero;
                }
            }
            self.unmap_cache(obj, hole_start, hole_end);
            // The other process of a fork loses its PTEs of the hole too (hugetlb_vmdelete_list walks the
            // file's i_mmap, every mm), and no longer counts in this one's mapcounts there
            // [T 6.12.118 guest, gen-2-1154 and gen-2-2344 with --destructive].
            self.punched.push((obj, hole_start, hole_end));
            self.other_cache_maps.retain(|&(o, k)| !(o == obj && k >= hole_start && k < hole_end));
        }
    }

    /// Does this process map private copies (anonymous huge pages) of file pages [first, last) of `obj`?
    /// A hole punched by the other process of a fork would unmap and maybe free them, which the model
    /// does not follow across processes.
    pub(crate) fn huge_private_copies(&self, obj: usize, first: usize, last: usize) -> bool {
        self.vmas.iter().any(|v| {
            v.obj == Some(obj)
                && v.flags & vmf::MAYSHARE == 0
                && (v.start..v.end).any(|p| {
                    let k = v.obj_page(p);
                    k >= first && k < last && matches!(self.pte(p), Pte::Anon { .. })
                })
        })
    }
}
