//! kernel/fork.c (dup_mmap, copy_page_range): a fork child's address space, and keeping a parent and a
//! live child consistent after each step.
//!
//! Invariants: VM_DONTCOPY VMAs are not copied and VM_WIPEONFORK ones are copied empty; an anonymous page
//! is COW-shared exactly while both processes map the same folio.

use crate::machine::{vmf, AnonVma, Machine, Pte};

/// Why a hole punched in a hugetlb file by one process of a fork is not followed into the other.
pub(crate) const PUNCH_OTHER_COPIES: &str =
    "a hugetlbfs hole punch reaching private copies mapped by the other process of a fork is not modelled";

impl Machine {
    /// The child's address space right after fork [S 6.18 kernel/fork.c:dup_mmap; mm/memory.c:
    /// copy_page_range, vma_needs_copy; mm/rmap.c:anon_vma_fork].
    pub(crate) fn fork_child(&self) -> Machine {
        let mut c = self.clone();
        c.punched.clear();
        // Every other process that maps the objects: this one, and the ones it shares them with (its own
        // parent, for a grandchild), so page-cache mapcounts count all of them.
        c.other_cache_maps = self.other_cache_maps.iter().copied().chain(self.cache_maps()).collect();
        c.vmas.clear();
        c.ptes = vec![Pte::None; self.ptes.len()];
        // copy_pmd_range allocates the child's PTE table for a copied VMA where the parent has one
        // (even if all its entries are none) [S 6.12 mm/memory.c:copy_pmd_range, copy_pte_range].
        c.pte_tables = vec![Some(false); self.pte_tables.len()];
        // The child's private hugetlb VMAs own no reservation map (hugetlb_dup_vma_private clears
        // vm_private_data), so it holds no reservation [S 6.1, 6.12 kernel/fork.c:dup_mmap;
        // mm/hugetlb.c:hugetlb_dup_vma_private, hugetlb_vm_op_open].
        c.huge_resv = vec![false; self.huge_resv.len()];
        // The child's mm->locked_vm starts at 0 (mm_init), and no VMA of it is VM_LOCKED.
        c.locked_vm_extra = 0;
        c.other_objs = self.vmas.iter().filter_map(|v| v.obj).chain(self.other_objs.iter().copied()).collect();
        for v in &self.vmas {
            // VM_DONTCOPY: the child has no VMA there (dup_mmap: "if (mpnt->vm_flags & VM_DONTCOPY) ...
            // continue").
            if v.flags & vmf::DONTCOPY != 0 {
                continue;
            }
            let mut n = *v;
            // mlock is not inherited (dup_mmap clears VM_LOCKED_MASK in the child's copy).
            n.flags &= !(vmf::LOCKED | vmf::LOCKONFAULT | vmf::RESV_OWNER);
            if v.flags & vmf::WIPEONFORK != 0 {
                // The child gets the VMA empty and without an anon_vma (dup_mmap: "if (tmp->vm_flags &
                // VM_WIPEONFORK) tmp->anon_vma = NULL", and copy_page_range is skipped).
                n.anon_vma = None;
                c.vmas.push(n);
                continue;
            }
            // anon_vma_fork: a fresh anon_vma whose chain also holds the parent's.
            n.anon_vma = v.anon_vma.map(|_| {
                let id = c.next_anon_vma;
                c.next_anon_vma += 1;
                AnonVma { id, forked: true }
            });
            // Page tables are copied only where a fault could not rebuild them: VMAs with an anon_vma
            // (or PFNMAP/MIXEDMAP, uffd-wp). hugetlb VMAs follow the same rule since 6.0 ("hugetlb: lazy
            // page table copies in fork()"); copy_hugetlb_page_range then maps the parent's private huge
            // pages COW-shared and its page-cache pages as they are [S 6.1, 6.12 mm/memory.c:
            // vma_needs_copy, copy_page_range; mm/hugetlb.c:copy_hugetlb_page_range].
            // 6.18.y/6.19+: VM_MAYBE_GUARD VMAs too, so guard markers survive fork
            // [S mm/memory.c:vma_needs_copy after "mm: introduce VM_MAYBE_GUARD"].
            if v.anon_vma.is_some() || v.flags & (vmf::PFNMAP | vmf::MIXEDMAP | vmf::MAYBE_GUARD) != 0 {
                for t in self.table_of(v.start)..=self.table_of(v.end - 1) {
                    if c.pte_tables[t] != Some(true) {
                        c.pte_tables[t] = self.pte_tables[t];
                    }
                }
                for p in v.start..v.end {
                    let pte = match self.pte(p) {
                        Pte::Anon { shared: _, content, lazy, folio, freed, pgdirty } => {
                            Pte::Anon { content, lazy, shared: true, folio, freed, pgdirty }
                        }
                        other => other,
                    };
                    c.set_pte(p, pte);
                }
            }
            c.vmas.push(n);
        }
        c
    }

    /// The (object, page) of every page-cache page this process maps.
    pub(crate) fn cache_maps(&self) -> Vec<(usize, usize)> {
        self.vmas
            .iter()
            .flat_map(|v| (v.start..v.end).filter(|&p| self.pte(p) == Pte::Cache).map(move |p| (v.obj.unwrap(), v.obj_page(p))))
            .collect()
    }

    /// The identities of the anonymous pages this process maps.
    pub(crate) fn anon_folios(&self) -> std::collections::BTreeSet<u32> {
        self.ptes.iter().filter_map(|p| if let Pte::Anon { folio, .. } = *p { Some(folio) } else { None }).collect()
    }

    /// GUP with FOLL_TOUCH|FOLL_WRITE on a present anonymous page whose PTE is clean (a lazy-free one)
    /// sets PG_dirty, so reclaim will not discard it [S 6.12 mm/gup.c:follow_page_pte ("set_page_dirty"),
    /// populate_vma_page_range, faultin_page_range; T 6.18.44, case gen-3-1880 (POPULATE_WRITE after FREE,
    /// then PAGEOUT keeps the pages)].
    pub(crate) fn touch_write(&mut self, p: i64) {
        if let Pte::Anon { lazy: true, content, shared, folio, freed, .. } = self.pte(p) {
            self.set_pte(p, Pte::Anon { content, lazy: false, shared, folio, freed, pgdirty: true });
        }
    }

    /// Mark each anonymous page shared exactly when the other process still maps the same page.
    pub(crate) fn mark_shared(&mut self, other: &std::collections::BTreeSet<u32>) {
        for p in self.ptes.iter_mut() {
            if let Pte::Anon { folio, shared, .. } = p {
                *shared = other.contains(folio);
            }
        }
    }

    /// A parent and its live child after a step of `actor` (either of them): both map the same
    /// page-cache and shmem objects, so the other sees the new contents and cache state, and a hole the
    /// actor punched unmaps the other's PTEs of it too (unmap_mapping_range walks every mm)
    /// [S 6.12 mm/shmem.c:shmem_fallocate; mm/truncate.c:truncate_pagecache_range]. An anonymous page
    /// stays COW-shared (mapcount 2) only while both still map it: a write on either side copies it
    /// for the writer (wp_page_copy, the page's refcount is above 1), a zap or unmap drops one mapping
    /// [S 6.12 mm/memory.c:do_wp_page, wp_can_reuse_anon_folio; mm/rmap.c:folio_remove_rmap_ptes].
    /// Page-cache mapcounts count both processes' PTEs.
    pub fn sync_live(actor: &mut Machine, other: &mut Machine) {
        other.objs = actor.objs.clone();
        // The hugetlb pool is global.
        other.huge = actor.huge;
        actor.other_objs = other.vmas.iter().filter_map(|v| v.obj).collect();
        other.other_objs = actor.vmas.iter().filter_map(|v| v.obj).collect();
        for (obj, first, last) in std::mem::take(&mut actor.punched) {
            if other.objs[obj].huge && other.huge_private_copies(obj, first, last) {
                actor.unknown.get_or_insert_with(|| PUNCH_OTHER_COPIES.into());
            }
            other.unmap_cache(obj, first, last);
        }
        let next = actor.next_folio.max(other.next_folio);
        actor.next_folio = next;
        other.next_folio = next;
        let (fa, fo) = (actor.anon_folios(), other.anon_folios());
        actor.mark_shared(&fo);
        other.mark_shared(&fa);
        // PG_swapbacked and PG_dirty belong to the folio: what the actor did to them shows on the
        // other's PTE of the same page (its own PTE dirty bit, `lazy`, stays its own).
        let flags: std::collections::BTreeMap<u32, (bool, bool)> = actor
            .ptes
            .iter()
            .filter_map(|p| if let Pte::Anon { folio, freed, pgdirty, .. } = *p { Some((folio, (freed, pgdirty))) } else { None })
            .collect();
        for p in other.ptes.iter_mut() {
            if let Pte::Anon { folio, freed, pgdirty, lazy, .. } = p {
                if let Some(&(f, d)) = flags.get(folio) {
                    *freed = f;
                    *pgdirty = d;
                    *lazy &= f;
                }
            }
        }
        actor.other_cache_maps = other.cache_maps();
        other.other_cache_maps = actor.cache_maps();
    }

    /// The live child is gone (exit, or a fatal signal): exit_mmap drops all its mappings, so every
    /// page it shared is the parent's alone again; a later write reuses it in place (refcount 1)
    /// [S 6.12 kernel/exit.c:exit_mm; mm/mmap.c:exit_mmap; mm/memory.c:wp_can_reuse_anon_folio].
    pub fn live_child_gone(&mut self) {
        self.other_cache_maps.clear();
        self.mark_shared(&Default::default());
        // MAP_HUGETLB objects only the child still mapped go with it.
        self.other_objs.clear();
        self.huge_release_dead();
    }

    /// The pool after a fork child (plain or live) exited: its huge pages and reservations are settled
    /// (`huge_exit`), and the parent sees the global counters as the child left them.
    pub fn take_child_pool(&mut self, child: &mut Machine) {
        child.other_objs = self.vmas.iter().filter_map(|v| v.obj).chain(self.other_objs.iter().copied()).collect();
        child.huge_exit();
        self.objs = child.objs.clone();
        self.huge = child.huge;
    }

    /// The child's address space right after a fork whose child stays alive: as for `fork_child`
    /// (DONTFORK VMAs missing, WIPEONFORK VMAs empty, guard markers copied, mlock not inherited), and
    /// from then on both processes see each other (`sync_live`), so the parent's copied anonymous pages
    /// are COW-shared too [S 6.12 kernel/fork.c:dup_mmap; mm/memory.c:copy_present_pte].
    pub fn fork_live(&mut self) -> Machine {
        self.punched.clear();
        let mut c = self.fork_child();
        Machine::sync_live(self, &mut c);
        c
    }
}
