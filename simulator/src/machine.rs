//! The model proper: a process's arena (VMAs, PTEs, files) and what each call does to it.
//!
//! Invariant: `Machine` is a plain value. `simulate` never does I/O; every rule is a function of the
//! machine, the call and the `KernelModel`, and cites where it comes from (kernel file:function and the
//! versions it holds for, a probe in ../shared/spec/probes, or the madcheck case that showed it).
//! Behaviour the model does not know becomes `Expect::Unsupported`, never a guess.
//!
//! Addresses are arena-relative page numbers (`i64`); page 0 is `ArenaGeometry::base`.
//!
//! A fork child that stays alive (`fork_live` … `child_exit`) is a second `Machine`. After every step of
//! either process, `Machine::sync_live` copies the shared page-cache objects to the other one, applies
//! holes punched by the actor to the other's PTEs, marks each anonymous page COW-shared exactly when both
//! still map the same folio, and records the other's page-cache PTEs for mapcounts.

use crate::kernel::{KernelModel, Mutation};
use crate::observe::{
    Allowed, Content, Count, Errno, Expect, HugeDelta, PageObs, Residency, Ret, Signal, VmaAllowed, VmaBacking,
};
use crate::program::{Advice, ArenaGeometry, Backing, FileSpec, MapSpec, Program, Prot, Step, StepId};

/// vm_flags bits (include/linux/mm.h), by kernel bit number so that sorting by bit gives smaps order.
pub mod vmf {
    pub const READ: u64 = 1 << 0;
    pub const WRITE: u64 = 1 << 1;
    pub const EXEC: u64 = 1 << 2;
    pub const SHARED: u64 = 1 << 3;
    pub const MAYREAD: u64 = 1 << 4;
    pub const MAYWRITE: u64 = 1 << 5;
    pub const MAYEXEC: u64 = 1 << 6;
    pub const MAYSHARE: u64 = 1 << 7;
    pub const MAYBE_GUARD: u64 = 1 << 11;
    pub const LOCKED: u64 = 1 << 13;
    pub const IO: u64 = 1 << 14;
    pub const SEQ_READ: u64 = 1 << 15;
    pub const RAND_READ: u64 = 1 << 16;
    pub const DONTCOPY: u64 = 1 << 17;
    pub const DONTEXPAND: u64 = 1 << 18;
    pub const LOCKONFAULT: u64 = 1 << 19;
    pub const ACCOUNT: u64 = 1 << 20;
    pub const NORESERVE: u64 = 1 << 21;
    pub const HUGETLB: u64 = 1 << 22;
    pub const WIPEONFORK: u64 = 1 << 25;
    pub const DONTDUMP: u64 = 1 << 26;
    pub const SOFTDIRTY: u64 = 1 << 27;
    pub const HUGEPAGE: u64 = 1 << 29;
    pub const NOHUGEPAGE: u64 = 1 << 30;
    pub const MERGEABLE: u64 = 1 << 31;
    /// VM_SEALED (6.10+, 64-bit), printed `sl` after every other flag.
    pub const SEALED: u64 = 1 << 63;
    pub const PFNMAP: u64 = 1 << 10;
    pub const MIXEDMAP: u64 = 1 << 28;
    /// VM_SPECIAL (include/linux/mm.h).
    pub const SPECIAL: u64 = IO | DONTEXPAND | PFNMAP | MIXEDMAP;
}

/// smaps VmFlags mnemonics by bit (fs/proc/task_mmu.c:show_smap_vma_flags, 6.18; per-version gaps are
/// applied in `flag_names`).
const MNEMONICS: [(u64, &str); 30] = [
    (vmf::READ, "rd"),
    (vmf::WRITE, "wr"),
    (vmf::EXEC, "ex"),
    (vmf::SHARED, "sh"),
    (vmf::MAYREAD, "mr"),
    (vmf::MAYWRITE, "mw"),
    (vmf::MAYEXEC, "me"),
    (vmf::MAYSHARE, "ms"),
    (1 << 8, "gd"),
    (1 << 9, "um"),
    (vmf::PFNMAP, "pf"),
    (vmf::MAYBE_GUARD, "gu"),
    (1 << 12, "uw"),
    (vmf::LOCKED, "lo"),
    (vmf::IO, "io"),
    (vmf::SEQ_READ, "sr"),
    (vmf::RAND_READ, "rr"),
    (vmf::DONTCOPY, "dc"),
    (vmf::DONTEXPAND, "de"),
    (vmf::LOCKONFAULT, "lf"),
    (vmf::ACCOUNT, "ac"),
    (vmf::NORESERVE, "nr"),
    (vmf::HUGETLB, "ht"),
    (1 << 23, "sf"),
    (vmf::WIPEONFORK, "wf"),
    (vmf::DONTDUMP, "dd"),
    (vmf::SOFTDIRTY, "sd"),
    (vmf::MIXEDMAP, "mm"),
    (vmf::HUGEPAGE, "hg"),
    (vmf::NOHUGEPAGE, "nh"),
];

/// The VmFlags line for `flags` on this kernel.
pub fn flag_names(model: &KernelModel, flags: u64) -> Vec<String> {
    let mut out = Vec::new();
    for (bit, name) in MNEMONICS {
        if flags & bit == 0 {
            continue;
        }
        // VM_LOCKONFAULT had no mnemonic before 6.12, and the unnamed bit prints as "??"
        // [S 6.1 fs/proc/task_mmu.c:show_smap_vma_flags; T Debian 6.1.192 under qemu: "lo ?? ac"].
        if bit == vmf::LOCKONFAULT && !model.lockonfault_mnemonic {
            out.push("??".to_string());
            continue;
        }
        out.push(name.to_string());
    }
    if flags & vmf::MERGEABLE != 0 {
        out.push("mg".to_string());
    }
    if flags & vmf::SEALED != 0 {
        out.push("sl".to_string());
    }
    out
}

/// An anon_vma: identity plus whether the VMA's anon_vma_chain has more than one entry (inherited
/// through fork), which blocks merges [S 6.18 mm/vma.c:vma_had_uncowed_parents].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnonVma {
    pub id: u32,
    pub forked: bool,
}

/// A page-cache object: a scenario file or the shmem object behind one MAP_SHARED|MAP_ANONYMOUS mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileObj {
    /// `Some(i)` for `files[i]`; `None` for anonymous shmem.
    pub file: Option<u32>,
    pub memfd: bool,
    /// Current content of each page of the object (its size is i_size).
    pub pages: Vec<Content>,
    /// Whether each page is in the page cache (uptodate). Scenario files are written whole at creation;
    /// anonymous shmem starts empty; a punched hole drops its pages.
    pub cached: Vec<bool>,
    /// PG_dirty per page: scenario files are written with pwrite (dirty); shmem pages allocated by a read
    /// fault are clean until written.
    pub dirty: Vec<bool>,
    /// PG_reclaim, which is the same bit as PG_readahead: set on a dirty disk-file page that PAGEOUT
    /// unmapped but could not write back; fault-around skips such pages [S 6.12 mm/vmscan.c:
    /// shrink_folio_list; mm/filemap.c:next_uptodate_folio].
    pub flagged: Vec<bool>,
    /// The order of the page-cache folio holding each cached page (0 for uncached pages). A large folio
    /// is naturally aligned in the file, and its pages agree on `cached`, `dirty` and `flagged` (folio
    /// flags). Only 6.16+ readahead under MADV_HUGEPAGE builds them on ext4 (`ra_order_pmd`).
    pub order: Vec<u8>,
    /// Synchronous mmap readahead misses so far on this file's `struct file` (one per scenario file,
    /// shared by all its mappings and a fork child): an upper bound of f_ra.mmap_miss, which hits only
    /// lower [S 6.12 mm/filemap.c:do_sync_mmap_readahead, do_async_mmap_readahead, filemap_map_pages].
    pub mmap_miss: u32,
    /// A hugetlbfs object (a `FileKind::Hugetlb` memfd, or the file behind one MAP_HUGETLB mapping).
    /// Its per-page vectors are still per base page, but change a whole huge page at a time.
    pub huge: bool,
    /// hugetlbfs: the inode's reserve map (resv_map regions): the page is reserved or instantiated for
    /// shared mappings [S 6.12 mm/hugetlb.c:hugetlb_reserve_pages, region_chg/region_add/region_del].
    pub region: Vec<bool>,
    /// The object is gone (the last mapping of a MAP_HUGETLB|MAP_SHARED object was unmapped).
    pub dead: bool,
}

impl FileObj {
    /// The folio holding cached page `idx`: its first page and its number of pages.
    fn folio(&self, idx: usize) -> (usize, usize) {
        let n = 1usize << self.order.get(idx).copied().unwrap_or(0);
        (idx / n * n, n)
    }

    /// Set the dirty bit of the folio holding page `idx` (folio_mark_dirty dirties the whole folio).
    fn mark_dirty(&mut self, idx: usize) {
        let (h, n) = self.folio(idx);
        for d in &mut self.dirty[h..(h + n).min(self.pages.len())] {
            *d = true;
        }
    }

    /// Split the large folio [h, h + n) so that page `at` ends up in an order-0 folio, non-uniformly:
    /// each step halves the piece holding `at` and leaves its buddy whole, so an order-3 folio split at
    /// its page 2 becomes [0,2), 2, 3, [4,8) [S 6.18 mm/huge_memory.c:folio_split, __split_unmapped_folio
    /// (uniform_split false); T 6.18 probe in `ra_order_pmd`].
    fn split_at(&mut self, h: usize, n: usize, at: usize) {
        let (mut head, mut order) = (h, n.trailing_zeros() as u8);
        while order > 0 {
            order -= 1;
            let half = 1usize << order;
            let (lo, hi) = (head, head + half);
            let (keep, other) = if at < hi { (lo, hi) } else { (hi, lo) };
            for o in &mut self.order[other..other + half] {
                *o = order;
            }
            head = keep;
        }
        self.order[at] = 0;
    }
}

/// A `vm_area_struct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: i64,
    pub end: i64,
    pub flags: u64,
    /// Index into `Machine::objs` (vm_file), or None for private anonymous memory.
    pub obj: Option<usize>,
    /// vm_pgoff: file page of `start`; for private anonymous VMAs the virtual page number at mmap time.
    pub pgoff: i64,
    pub anon_vma: Option<AnonVma>,
}

impl Vma {
    fn pages(&self) -> i64 {
        self.end - self.start
    }
    fn is_anonymous(&self) -> bool {
        self.obj.is_none()
    }
    fn obj_page(&self, page: i64) -> usize {
        (self.pgoff + (page - self.start)) as usize
    }
}

/// A PTE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pte {
    None,
    /// The shared zero page.
    Zero,
    /// A private anonymous page (including a COW copy in a private file mapping). `lazy`: marked by
    /// MADV_FREE and still clean. `shared`: still COW-shared with a live forked process (mapcount 2).
    /// `folio`: the page's identity, kept by fork and mremap, so that a parent and its live child can
    /// tell which of their pages are still one COW-shared page. Two folio flags follow it (a live parent
    /// and child agree on them, see `sync_live`): `freed`, the folio is lazy-free (MADV_FREE cleared
    /// PG_swapbacked; `lazy` adds that this PTE is still clean), and `pgdirty`, PG_dirty, which only
    /// reclaim of a re-dirtied lazy-free page sets here.
    Anon { content: Content, lazy: bool, shared: bool, folio: u32, freed: bool, pgdirty: bool },
    /// The page-cache page of the VMA's object at this address.
    Cache,
    /// A guard marker (MADV_GUARD_INSTALL): a non-present swap-format entry; any access is SIGSEGV.
    Guard,
}

/// The modelled process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub ps: u64,
    /// PTRS_PER_PTE, for `pte_tables`.
    ptrs_per_pte: i64,
    pub arena: ArenaGeometry,
    pub arena_pages: u32,
    pub objs: Vec<FileObj>,
    /// Sorted, non-overlapping.
    pub vmas: Vec<Vma>,
    /// One per arena page.
    pub ptes: Vec<Pte>,
    next_anon_vma: u32,
    /// Object page ranges punched (MADV_REMOVE) by a forked child, to unmap from the parent afterwards.
    punched: Vec<(usize, usize, usize)>,
    /// Set when a step reached behaviour the model does not know; the step then answers Unsupported.
    unknown: Option<String>,
    /// The (object, page) of every page-cache page the other process maps (the waiting parent of a
    /// forked child, or the live child of a parent and the parent of a live child), which count in this
    /// process's mapcounts.
    other_cache_maps: Vec<(usize, usize)>,
    /// The next anonymous page identity (`Pte::Anon::folio`); a live parent and child share the counter.
    next_folio: u32,
    /// Pages still mlocked (PG_mlocked, on the unevictable LRU) although no VM_LOCKED VMA maps them any
    /// more: MREMAP_DONTUNMAP clears VM_LOCKED on the kept source without munlocking the pages it still
    /// maps [S 6.18 mm/mremap.c:dontunmap_complete (vm_flags_clear only); T 6.18, case
    /// mremap_dontunmap_leaves_pages_mlocked_so_pageout_skips_them]. Page-cache pages by (object, page),
    /// anonymous ones by folio.
    stale_mlock: std::collections::BTreeSet<(usize, usize)>,
    stale_mlock_anon: std::collections::BTreeSet<u32>,
    /// Per page table (PTRS_PER_PTE pages, counted from the table holding arena page 0): whether the PTE
    /// table exists (`None`: not known). A worker starts each scenario with the arena window unmapped,
    /// so with no table [S 6.12 mm/memory.c:free_pgd_range]; any installed entry allocates it; an
    /// unmap that leaves no VMA in its PMD range frees it.
    pte_tables: Vec<Option<bool>>,
    /// The huge page size in base pages (0: the kernel has no hugetlb huge page that fits the arena).
    hp: i64,
    /// The HugePages_Free/Rsvd/Surp changes since the scenario started.
    huge: HugeDelta,
    /// Whether the program observes the hugetlb pool (it uses hugetlb).
    observe_huge: bool,
    /// Private hugetlb mappings: a reservation is held and not yet consumed for the huge page starting at
    /// this arena page (the private VMA's resv_map) [S 6.12 mm/hugetlb.c:hugetlb_reserve_pages,
    /// vma_needs_reservation, alloc_hugetlb_folio].
    huge_resv: Vec<bool>,
    /// `KernelModel::hugetlb_zap_restores_reservation`.
    restore_on_zap: bool,
}

/// Why a step could not be modelled.
type Unsupported = String;

/// mremap is modelled: 0 divergences over 10,000 generated scenarios with mremap drawn for seeds 1-30
/// on 6.18.44. Set to false to make every mremap step answer Unsupported again.
const MREMAP_MODELLED: bool = true;

/// GUARD_INSTALL/GUARD_REMOVE are modelled (guard markers as swap-format PTEs).
const GUARDS_MODELLED: bool = true;

/// Outcome of one step on the model.
enum StepOut {
    Ret(Ret),
    Fatal(Signal),
}

impl Machine {
    pub fn new(model: &KernelModel, arena: &ArenaGeometry, prog: &Program) -> Machine {
        let objs = prog
            .files
            .iter()
            .enumerate()
            .map(|(i, f): (usize, &FileSpec)| FileObj {
                file: Some(i as u32),
                memfd: f.kind == crate::program::FileKind::Memfd,
                pages: (0..f.pages).map(|p| Content::FilePage { file: i as u32, page: p }).collect(),
                cached: vec![true; f.pages as usize],
                dirty: vec![true; f.pages as usize],
                flagged: vec![false; f.pages as usize],
                order: vec![0; f.pages as usize],
                mmap_miss: 0,
                huge: false,
                region: Vec::new(),
                dead: false,
            })
            .map(|mut o| {
                // A hugetlbfs memfd starts as holes: hugetlbfs has no write_iter, so nothing was written
                // [S 6.12 fs/hugetlbfs/inode.c:hugetlbfs_file_operations].
                if prog.files[o.file.unwrap() as usize].kind == crate::program::FileKind::Hugetlb {
                    let n = o.pages.len();
                    o.huge = true;
                    o.pages = vec![Content::Zero; n];
                    o.cached = vec![false; n];
                    o.dirty = vec![false; n];
                    o.region = vec![false; n];
                }
                o
            })
            .collect();
        Machine {
            ps: model.page_size,
            ptrs_per_pte: model.ptrs_per_pte as i64,
            arena: *arena,
            arena_pages: prog.arena_pages,
            objs,
            vmas: Vec::new(),
            ptes: vec![Pte::None; prog.arena_pages as usize],
            next_anon_vma: 1,
            punched: Vec::new(),
            unknown: None,
            other_cache_maps: Vec::new(),
            next_folio: 1,
            stale_mlock: Default::default(),
            stale_mlock_anon: Default::default(),
            pte_tables: vec![Some(false); Self::tables_for(model, arena, prog.arena_pages)],
            hp: model.hugetlb_pages as i64,
            restore_on_zap: model.hugetlb_zap_restores_reservation,
            huge: HugeDelta::default(),
            observe_huge: prog.uses_hugetlb(),
            huge_resv: vec![false; prog.arena_pages as usize],
        }
    }

    fn base_vpn(&self) -> i64 {
        (self.arena.base / self.ps) as i64
    }

    fn vma_at(&self, page: i64) -> Option<usize> {
        self.vmas.iter().position(|v| v.start <= page && page < v.end)
    }

    /// find_vma: the first VMA that ends after `page`.
    fn find_vma(&self, page: i64) -> Option<usize> {
        self.vmas.iter().position(|v| v.end > page)
    }

    fn pte(&self, page: i64) -> Pte {
        self.ptes.get(page as usize).copied().unwrap_or(Pte::None)
    }

    /// A fault at `page` of vmas[i] that finds no PTE and lies past the end of the VMA's object (a file
    /// or shmem mapping grown by mremap) fails: SIGBUS for an access, -EFAULT for GUP
    /// [S 6.18 mm/filemap.c:filemap_fault (VM_FAULT_SIGBUS past i_size); mm/shmem.c:shmem_get_folio_gfp;
    /// T 6.18, cases gen-1-3349, gen-1-7726].
    fn past_eof(&self, i: usize, page: i64) -> bool {
        let v = &self.vmas[i];
        match v.obj {
            Some(o) => self.pte(page) == Pte::None && v.obj_page(page) >= self.objs[o].pages.len(),
            None => false,
        }
    }

    fn set_pte(&mut self, page: i64, pte: Pte) {
        if let Some(p) = self.ptes.get_mut(page as usize) {
            *p = pte;
            if pte != Pte::None {
                let t = self.table_of(page);
                self.pte_tables[t] = Some(true);
            }
        }
    }

    fn tables_for(model: &KernelModel, arena: &ArenaGeometry, pages: u32) -> usize {
        let ptrs = model.ptrs_per_pte.max(1);
        let first = arena.base / model.page_size;
        ((first + pages as u64).div_ceil(ptrs) - first / ptrs).max(1) as usize
    }

    fn ptrs(&self) -> i64 {
        self.ptrs_per_pte.max(1)
    }

    /// Index into `pte_tables` of the table mapping arena page `page`.
    fn table_of(&self, page: i64) -> usize {
        let ptrs = self.ptrs();
        ((self.base_vpn() + page).div_euclid(ptrs) - self.base_vpn().div_euclid(ptrs)) as usize
    }

    /// free_pgtables after an unmap of [s, e): a table whose PMD range no longer holds any VMA is freed
    /// (floor and ceiling are the neighbouring VMAs) [S 6.12 mm/memory.c:free_pgd_range].
    fn free_empty_tables(&mut self, s: i64, e: i64) {
        if s >= e {
            return;
        }
        let ptrs = self.ptrs();
        for t in self.table_of(s.max(0))..=self.table_of((e - 1).max(0)).min(self.pte_tables.len() - 1) {
            let lo = (self.base_vpn().div_euclid(ptrs) + t as i64) * ptrs - self.base_vpn();
            let hi = lo + ptrs;
            if !self.vmas.iter().any(|v| v.end > lo && v.start < hi) {
                self.pte_tables[t] = Some(false);
            }
        }
    }

    fn new_anon_vma(&mut self) -> AnonVma {
        let id = self.next_anon_vma;
        self.next_anon_vma += 1;
        AnonVma { id, forked: false }
    }

    // ---------------------------------------------------------------------------------------------
    // VMA surgery: split, merge, and the shared "modify flags on a range" path.

    /// split_vma at `page` (which lies strictly inside vmas[i]); both halves keep the anon_vma
    /// [S 6.18 mm/vma.c:__split_vma].
    fn split(&mut self, i: usize, page: i64) {
        let v = self.vmas[i];
        debug_assert!(v.start < page && page < v.end);
        let mut right = v;
        right.start = page;
        right.pgoff = v.pgoff + (page - v.start);
        self.vmas[i].end = page;
        self.vmas.insert(i + 1, right);
    }

    /// Flags that do not stop a merge: VM_SOFTDIRTY always [S 4.5..6.18 mm/vma.c:is_mergeable_vma];
    /// VM_MAYBE_GUARD on kernels with the sticky guard flag [T 6.18.44].
    fn ignore_merge(model: &KernelModel) -> u64 {
        vmf::SOFTDIRTY | if model.guard_vma_flag { vmf::MAYBE_GUARD } else { 0 }
    }

    /// is_mergeable_vma: same flags (bar the ignored ones) and same file [S 6.18 mm/vma.c].
    fn flags_file_match(model: &KernelModel, a: &Vma, flags: u64, obj: Option<usize>) -> bool {
        (a.flags ^ flags) & !Self::ignore_merge(model) == 0 && a.obj == obj
    }

    /// is_mergeable_anon_vma for merging `src` (the range's anon_vma) into the neighbour `tgt`.
    /// 6.16+ (UNVERIFIED release) [S 7.x mm/vma.c]: equal, or one side has none and the side that has
    /// one was not inherited through fork. Before [S 6.12/6.1 mm/vma.c, mm/mmap.c]: when either is
    /// missing, only a target whose own anon_vma_chain is a single entry accepts, so a target with no
    /// anon_vma at all never takes a source that has one [T Debian 6.12.117, case gen-3-524].
    fn anon_compatible_m(model: &KernelModel, tgt: Option<AnonVma>, src: Option<AnonVma>) -> bool {
        if model.anon_merge_by_owner {
            return Self::anon_compatible(tgt, src);
        }
        match (tgt, src) {
            (Some(t), None) => !t.forked,
            (None, Some(_)) => false,
            (None, None) => true,
            (Some(t), Some(s)) => t.id == s.id,
        }
    }

    /// are_anon_vmas_compatible(prev, next) for a merge on both sides: before 6.16 any missing side is fine.
    fn anon_pair_compatible(model: &KernelModel, a: Option<AnonVma>, b: Option<AnonVma>) -> bool {
        if model.anon_merge_by_owner {
            return Self::anon_compatible(a, b);
        }
        match (a, b) {
            (Some(x), Some(y)) => x.id == y.id,
            _ => true,
        }
    }

    /// The 6.16+ rule (see `anon_compatible_m`).
    fn anon_compatible(tgt: Option<AnonVma>, src: Option<AnonVma>) -> bool {
        match (tgt, src) {
            (None, Some(s)) => !s.forked,
            (Some(t), None) => !t.forked,
            (None, None) => true,
            (Some(t), Some(s)) => t.id == s.id,
        }
    }

    /// vma_modify_flags on [s, e) inside vmas[i] (6.18 mm/vma.c:vma_merge_existing_range, then
    /// split_vma at the edges when no merge happened). Returns the index of the VMA now covering
    /// [s, e). `new_flags` is what the caller wants on the range.
    fn modify_flags(&mut self, model: &KernelModel, i: usize, s: i64, e: i64, new_flags: u64) -> usize {
        let mid = self.vmas[i];
        debug_assert!(mid.start <= s && e <= mid.end && s < e);
        let left_side = s == mid.start;
        let right_side = e == mid.end;
        let pgoff = mid.pgoff + (s - mid.start);
        let special = new_flags & vmf::SPECIAL != 0;
        // can_vma_merge_left / can_vma_merge_after.
        let merge_left = !special
            && left_side
            && i > 0
            && {
                let p = self.vmas[i - 1];
                p.end == s
                    && Self::flags_file_match(model, &p, new_flags, mid.obj)
                    && Self::anon_compatible_m(model, p.anon_vma, mid.anon_vma)
                    && p.pgoff + p.pages() == pgoff
            };
        // can_vma_merge_right / can_vma_merge_before; with a left merge, prev and next must also be
        // compatible with each other [S 6.18 mm/vma.c:can_vma_merge_right].
        let merge_right = !special
            && right_side
            && i + 1 < self.vmas.len()
            && {
                let n = self.vmas[i + 1];
                n.start == e
                    && Self::flags_file_match(model, &n, new_flags, mid.obj)
                    && Self::anon_compatible_m(model, n.anon_vma, mid.anon_vma)
                    && n.pgoff == pgoff + (e - s)
                    && (!merge_left || {
                        let p = self.vmas[i - 1];
                        Self::anon_pair_compatible(model, p.anon_vma, n.anon_vma)
                    })
            };
        let sticky = |a: u64| if model.guard_vma_flag { a & vmf::MAYBE_GUARD } else { 0 };
        let anon_of = |a: Option<AnonVma>, b: Option<AnonVma>| a.or(b);
        match (merge_left, merge_right) {
            (true, true) => {
                // prev absorbs middle and next.
                let n = self.vmas[i + 1];
                let p = &mut self.vmas[i - 1];
                p.end = n.end;
                p.flags = new_flags | sticky(p.flags | n.flags | mid.flags);
                p.anon_vma = anon_of(anon_of(p.anon_vma, mid.anon_vma), n.anon_vma);
                self.vmas.drain(i..i + 2);
                i - 1
            }
            (true, false) => {
                let p = &mut self.vmas[i - 1];
                p.end = e;
                p.flags = new_flags | sticky(p.flags | mid.flags);
                p.anon_vma = anon_of(p.anon_vma, mid.anon_vma);
                if right_side {
                    self.vmas.remove(i);
                } else {
                    self.vmas[i].start = e;
                    self.vmas[i].pgoff = mid.pgoff + (e - mid.start);
                }
                i - 1
            }
            (false, true) => {
                let n = &mut self.vmas[i + 1];
                n.start = s;
                n.pgoff = pgoff;
                n.flags = new_flags | sticky(n.flags | mid.flags);
                n.anon_vma = anon_of(n.anon_vma, mid.anon_vma);
                if left_side {
                    self.vmas.remove(i);
                    i
                } else {
                    self.vmas[i].end = s;
                    i + 1
                }
            }
            (false, false) => {
                let mut i = i;
                if s > mid.start {
                    self.split(i, s);
                    i += 1;
                }
                if e < self.vmas[i].end {
                    self.split(i, e);
                }
                self.vmas[i].flags = new_flags;
                i
            }
        }
    }

    /// Apply `f(old_flags) -> Result<new_flags>` to every VMA in [s, e), as mprotect/mlock/madvise do.
    /// Returns the first error; a gap gives ENOMEM (at once for mprotect/mlock, which stop at the
    /// first hole; madvise has its own walk).
    fn for_each_vma_in(&mut self, s: i64, e: i64) -> Vec<(i64, i64)> {
        self.vmas
            .iter()
            .filter(|v| v.end > s && v.start < e)
            .map(|v| (v.start.max(s), v.end.min(e)))
            .collect()
    }

    // ---------------------------------------------------------------------------------------------
    // Faults and page-table operations.

    /// anon_vma_prepare: reuse a compatible neighbour's anon_vma (next first, then prev) if it was not
    /// inherited through fork, else allocate [S 6.18 mm/rmap.c:__anon_vma_prepare,
    /// find_mergeable_anon_vma, reusable_anon_vma, anon_vma_compatible].
    fn anon_vma_prepare(&mut self, i: usize) {
        if self.vmas[i].anon_vma.is_some() {
            return;
        }
        let v = self.vmas[i];
        // anon_vma_compatible(a, b): adjacent, same file, flags equal except access bits and soft-dirty,
        // and pgoff contiguous.
        let compat = |a: &Vma, b: &Vma| {
            let mask = !(vmf::READ | vmf::WRITE | vmf::EXEC | vmf::SOFTDIRTY);
            a.end == b.start && a.obj == b.obj && (a.flags ^ b.flags) & mask == 0 && b.pgoff == a.pgoff + a.pages()
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

    /// Content a Cache PTE at `page` shows.
    fn cache_content(&self, v: &Vma, page: i64) -> Content {
        let o = &self.objs[v.obj.expect("cache pte in a file vma")];
        o.pages.get(v.obj_page(page)).copied().unwrap_or(Content::Zero)
    }

    /// The content of the page mapped at `page` (for a present PTE).
    fn content_at(&self, i: usize, page: i64) -> Option<Content> {
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
    fn fault_read(&mut self, model: &KernelModel, i: usize, page: i64) {
        if self.pte(page) != Pte::None {
            return;
        }
        let v = self.vmas[i];
        if v.flags & vmf::HUGETLB != 0 {
            self.huge_fault(i, page, false, None);
            return;
        }
        if v.obj.is_none() {
            self.check_thp(model, &v);
            self.set_pte(page, Pte::Zero);
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

    /// A read fault past EOF still runs fault-around first, which maps the window's cached pages below
    /// i_size (on a disk file only if a PTE table exists or the first of them is not the file's last
    /// page: see `fault_around`) [T 6.18, memfd probes; cases gen-15-4406, gen-2-4992, gen-26-9322].
    fn fault_around_past_eof(&mut self, model: &KernelModel, i: usize, page: i64) {
        self.fault_around(model, i, page);
    }

    /// do_fault_around for a read fault at `page` of the file or shmem VMA vmas[i]: map the cached,
    /// uptodate pages of the aligned window (clamped to the VMA, the page table and i_size). It runs
    /// before the page itself is looked up, so it also happens when that lookup then fails past EOF
    /// [S 6.12 mm/memory.c:do_read_fault; mm/filemap.c:filemap_map_pages; T 6.18, case gen-15-4406].
    fn fault_around(&mut self, model: &KernelModel, i: usize, page: i64) {
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
    fn ensure_obj_page(&mut self, model: &KernelModel, v: &Vma, page: i64) -> bool {
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
    fn sync_mmap_readahead(&mut self, model: &KernelModel, v: &Vma, idx: usize) {
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

    /// MADV_WILLNEED on a disk file: vfs_fadvise(POSIX_FADV_WILLNEED) over exactly the range's file
    /// pages → force_page_cache_ra, which reads up to max(io_pages, ra_pages) pages with no async mark,
    /// clipped to i_size; shmem (memfd, shared anonymous) only swaps in [S 6.12 mm/madvise.c:
    /// madvise_willneed; mm/fadvise.c:generic_fadvise; mm/readahead.c:force_page_cache_ra].
    fn willneed_file(&mut self, model: &KernelModel, v: &Vma, s: i64, e: i64) {
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
    fn ra_order_pmd(&mut self, model: &KernelModel, obj: usize, idx: usize, rand: bool) {
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
    fn ra_window(&mut self, model: &KernelModel, obj: usize, start: usize, size: usize, async_size: usize) {
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

    /// A write fault on `page` in vmas[i] that stores `data` (None: break COW / allocate without changing
    /// bytes, as GUP with FOLL_WRITE does when populating).
    fn fault_write(&mut self, model: &KernelModel, i: usize, page: i64, data: Option<Content>) {
        let v = self.vmas[i];
        if v.flags & vmf::HUGETLB != 0 {
            self.huge_fault(i, page, true, data);
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
        if v.obj.is_none() {
            self.check_thp(model, &v);
        }
        self.anon_vma_prepare(i);
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
    fn zap(&mut self, s: i64, e: i64) {
        for p in s.max(0)..e.min(self.arena_pages as i64) {
            if self.pte(p) != Pte::Guard {
                self.set_pte(p, Pte::None);
            }
        }
    }

    /// Unmapping: every entry goes, guard markers too (munmap frees the page tables of the range; only
    /// zaps keep markers) [S 6.18 mm/vma.c:vms_clear_ptes → unmap_vmas with a NULL zap_details;
    /// mm/memory.c:zap_nonpresent_ptes; T spec §5 GUARD_INSTALL "munmap removes them"].
    fn clear_ptes(&mut self, s: i64, e: i64) {
        for p in s.max(0)..e.min(self.arena_pages as i64) {
            self.set_pte(p, Pte::None);
        }
    }

    /// Populate [s, e) of vmas[i] as __mm_populate / populate_vma_page_range do: a write fault for
    /// private writable mappings (to break COW), a read fault otherwise [S 6.18 mm/gup.c].
    /// Stops with Err at a guard marker (GUP fails with -EFAULT there), after faulting the pages before it.
    fn populate(&mut self, model: &KernelModel, i: usize, s: i64, e: i64) -> Result<(), ()> {
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

    // ---------------------------------------------------------------------------------------------
    // mmap / munmap / mprotect / mlock.

    /// vm_flags of a new mapping [S 6.18 mm/mmap.c:do_mmap, mm/vma.c:__mmap_region].
    fn new_vma_flags(model: &KernelModel, m: &MapSpec) -> u64 {
        let mut f = vmf::MAYREAD | vmf::MAYWRITE | vmf::MAYEXEC;
        if m.prot.read {
            f |= vmf::READ;
        }
        if m.prot.write {
            f |= vmf::WRITE;
        }
        if m.prot.exec {
            f |= vmf::EXEC;
        }
        if m.backing.is_shared() {
            // Files are opened O_RDWR, so MAP_SHARED keeps VM_SHARED and VM_MAYWRITE (do_mmap drops both only
            // for an fd without FMODE_WRITE) [S 6.18 mm/mmap.c:do_mmap, case MAP_SHARED].
            f |= vmf::SHARED | vmf::MAYSHARE;
        }
        // accountable_mapping(): private, writable, not NORESERVE → VM_ACCOUNT [S mm/vma.c].
        if !m.backing.is_shared() && m.prot.write {
            f |= vmf::ACCOUNT;
        }
        if m.locked {
            f |= vmf::LOCKED;
        }
        if model.softdirty_new_vmas {
            f |= vmf::SOFTDIRTY;
        }
        f
    }

    /// munmap [s, e): VMAs are gathered in address order; a sealed one fails the call with EPERM before
    /// anything is removed, though a split already made at the start stays
    /// [S 6.12 mm/vma.c:vms_gather_munmap_vmas (can_modify_vma)].
    fn munmap_range(&mut self, s: i64, e: i64) -> Result<(), Errno> {
        let mut i = 0;
        let mut doomed = Vec::new();
        while i < self.vmas.len() {
            let v = self.vmas[i];
            if v.end <= s || v.start >= e {
                i += 1;
                continue;
            }
            if v.flags & vmf::SEALED != 0 {
                return Err(Errno::EPERM);
            }
            if v.start < s {
                if self.huge_split_refused(&v, s) {
                    return Err(Errno::EINVAL);
                }
                self.split(i, s);
                i += 1;
                continue;
            }
            if v.end > e {
                if self.huge_split_refused(&v, e) {
                    return Err(Errno::EINVAL);
                }
                self.split(i, e);
            }
            doomed.push(i);
            i += 1;
        }
        for &i in &doomed {
            let v = self.vmas[i];
            if v.flags & vmf::HUGETLB != 0 {
                self.huge_unmap(&v, v.start, v.end, true);
            }
        }
        for i in doomed.into_iter().rev() {
            self.vmas.remove(i);
        }
        self.clear_ptes(s, e);
        self.free_empty_tables(s, e);
        self.huge_release_dead();
        Ok(())
    }

    /// mmap(MAP_FIXED): unmap, then insert, merging with compatible neighbours
    /// [S 6.18 mm/vma.c:__mmap_region, vma_merge_new_range].
    fn mmap(&mut self, model: &KernelModel, m: &MapSpec) -> Ret {
        let s = m.page as i64;
        let e = s + m.pages as i64;
        let huge = m.backing.is_map_hugetlb() || m.backing.file().is_some_and(|(f, _)| self.objs[f as usize].huge);
        if huge {
            let off = m.backing.file().map_or(0, |(_, o)| o as i64);
            if self.hp == 0 {
                self.unknown.get_or_insert_with(|| "this kernel has no hugetlb huge page that fits the arena".into());
                return Ret::Ok;
            }
            if !self.huge_aligned(s) || !self.huge_aligned(e) || off % self.hp != 0 {
                self.unknown.get_or_insert_with(|| "a hugetlb mmap not aligned to the huge page size is not modelled".into());
                return Ret::Ok;
            }
        }
        if let Err(errno) = self.munmap_range(s, e) {
            // 6.1 mmap_region answers any failure to unmap the old range (a refused hugetlb split) with
            // ENOMEM [S 6.1 mm/mmap.c:mmap_region "if (do_mas_munmap(...)) return -ENOMEM"; T Debian
            // 6.1.192, gen-1-2489]; 6.12+ passes the error on [S 6.12 mm/mmap.c:__mmap_region].
            return Ret::Err(if model.mmap_unmap_error_is_enomem { Errno::ENOMEM } else { errno });
        }
        let mut flags = Self::new_vma_flags(model, m);
        if huge {
            // hugetlbfs_file_mmap sets VM_HUGETLB|VM_DONTEXPAND; accountable_mapping is false for
            // hugetlbfs files; __mmap_region drops VM_LOCKED on hugetlb (but do_mmap still populates)
            // [S 6.12 fs/hugetlbfs/inode.c:hugetlbfs_file_mmap; mm/mmap.c:accountable_mapping,
            // mmap_region; T 6.18: `rd wr mr mw me de ht`].
            flags |= vmf::HUGETLB | vmf::DONTEXPAND;
            flags &= !(vmf::ACCOUNT | vmf::LOCKED | vmf::LOCKONFAULT);
        }
        let (obj, pgoff) = match m.backing {
            // A private anonymous mapping's vm_pgoff is its virtual page number [S 6.18 mm/mmap.c:do_mmap,
            // "pgoff = addr >> PAGE_SHIFT" for MAP_PRIVATE without a file].
            Backing::AnonPrivate => (None, self.base_vpn() + s),
            Backing::AnonShared => {
                // shmem_zero_setup: a fresh shmem object per mapping, pgoff 0 [S 6.18 mm/mmap.c:do_mmap
                // (MAP_SHARED anonymous: pgoff = 0), mm/vma.c:__mmap_new_file_vma, mm/shmem.c:shmem_zero_setup].
                self.objs.push(FileObj {
                    file: None,
                    memfd: true,
                    pages: vec![Content::Zero; m.pages as usize],
                    cached: vec![false; m.pages as usize],
                    dirty: vec![false; m.pages as usize],
                    flagged: vec![false; m.pages as usize],
                    order: vec![0; m.pages as usize],
                    mmap_miss: 0,
                    huge: false,
                    region: Vec::new(),
                    dead: false,
                });
                (Some(self.objs.len() - 1), 0)
            }
            Backing::HugetlbPrivate | Backing::HugetlbShared => {
                // hugetlb_file_setup: a fresh hugetlbfs file of the mapping's size, pgoff 0
                // [S 6.12 mm/mmap.c:ksys_mmap_pgoff (MAP_HUGETLB)].
                let n = m.pages as usize;
                self.objs.push(FileObj {
                    file: None,
                    memfd: false,
                    pages: vec![Content::Zero; n],
                    cached: vec![false; n],
                    dirty: vec![false; n],
                    flagged: vec![false; n],
                    order: vec![0; n],
                    mmap_miss: 0,
                    huge: true,
                    region: vec![false; n],
                    dead: false,
                });
                (Some(self.objs.len() - 1), 0)
            }
            Backing::FilePrivate { file, offset } | Backing::FileShared { file, offset } => {
                (Some(file as usize), offset as i64)
            }
        };
        let new = Vma { start: s, end: e, flags, obj, pgoff, anon_vma: None };
        if huge {
            self.huge_reserve(&new);
        }
        let pos = self.vmas.iter().position(|v| v.start >= e).unwrap_or(self.vmas.len());
        self.vmas.insert(pos, new);
        let i = self.merge_new(model, pos);
        if m.populate || m.locked {
            // MAP_POPULATE / VM_LOCKED: mm_populate with errors ignored [S mm/mmap.c:do_mmap].
            let v = self.vmas[i];
            if v.flags & (vmf::READ | vmf::WRITE | vmf::EXEC) != 0 {
                let _ = self.populate(model, i, s, e);
            }
        }
        Ret::Ok
    }

    /// vma_merge_new_range for the just-inserted vmas[i] (an mmap: it has no anon_vma).
    fn merge_new(&mut self, model: &KernelModel, i: usize) -> usize {
        // "Special VMAs are unmergeable" (hugetlb carries VM_DONTEXPAND; its flags are set by the
        // hugetlbfs mmap hook, after the first merge attempt, so they never match a neighbour either)
        // [S 6.12 mm/vma.c:vma_merge_new_range; T spec §3.2].
        if self.vmas[i].flags & vmf::SPECIAL != 0 {
            return i;
        }
        if model.mmap_expand_next_first {
            return self.merge_new_pre_612(model, i);
        }
        self.merge_inserted(model, i, None)
    }

    /// mmap_region before 6.12: try the next VMA (with no anon_vma), then the previous one judged
    /// against the anon_vma of the next if that matched, then vma_expand over both
    /// [S 6.1 mm/mmap.c:mmap_region "Attempt to expand an old mapping"; T Debian 6.1.192, gen-3-1472].
    fn merge_new_pre_612(&mut self, model: &KernelModel, i: usize) -> usize {
        let v = self.vmas[i];
        let right = i + 1 < self.vmas.len() && {
            let n = self.vmas[i + 1];
            n.start == v.end
                && Self::flags_file_match(model, &n, v.flags, v.obj)
                && Self::anon_compatible_m(model, n.anon_vma, None)
                && n.pgoff == v.pgoff + v.pages()
        };
        let src = if right { self.vmas[i + 1].anon_vma } else { None };
        let left = i > 0 && {
            let p = self.vmas[i - 1];
            p.end == v.start
                && Self::flags_file_match(model, &p, v.flags, v.obj)
                && Self::anon_compatible_m(model, p.anon_vma, src)
                && p.pgoff + p.pages() == v.pgoff
        };
        match (left, right) {
            (true, true) => {
                let n = self.vmas[i + 1];
                let p = &mut self.vmas[i - 1];
                p.end = n.end;
                p.anon_vma = p.anon_vma.or(n.anon_vma);
                self.vmas.drain(i..i + 2);
                i - 1
            }
            (true, false) => {
                self.vmas[i - 1].end = v.end;
                self.vmas.remove(i);
                i - 1
            }
            (false, true) => {
                let n = &mut self.vmas[i + 1];
                n.start = v.start;
                n.pgoff = v.pgoff;
                self.vmas.remove(i);
                i
            }
            (false, false) => i,
        }
    }

    /// mprotect [S 6.18 mm/mprotect.c:do_mprotect_pkey, mprotect_fixup].
    fn mprotect(&mut self, model: &KernelModel, s: i64, e: i64, prot: Prot) -> Ret {
        // The range must start inside a VMA; every gap met on the way ends the call with ENOMEM after
        // the VMAs before it were changed.
        match self.vma_at(s) {
            Some(_) => {}
            None => return Ret::Err(Errno::ENOMEM),
        }
        let mut cur = s;
        while cur < e {
            let Some(i) = self.vma_at(cur) else { return Ret::Err(Errno::ENOMEM) };
            let v = self.vmas[i];
            let end = v.end.min(e);
            // mprotect_fixup refuses a sealed VMA; the VMAs before it keep their change
            // [S 6.12 mm/mprotect.c:mprotect_fixup].
            if v.flags & vmf::SEALED != 0 {
                return Ret::Err(Errno::EPERM);
            }
            let mut nf = v.flags & !(vmf::READ | vmf::WRITE | vmf::EXEC);
            if prot.read {
                nf |= vmf::READ;
            }
            if prot.write {
                nf |= vmf::WRITE;
            }
            if prot.exec {
                nf |= vmf::EXEC;
            }
            if nf & vmf::WRITE != 0 {
                // A private mapping that becomes writable is charged: VM_ACCOUNT
                // [S 6.18 mm/mprotect.c:mprotect_fixup, "if (newflags & VM_WRITE)"].
                if v.flags & (vmf::ACCOUNT | vmf::WRITE | vmf::HUGETLB | vmf::SHARED | vmf::NORESERVE) == 0 {
                    nf |= vmf::ACCOUNT;
                }
            } else if model.mprotect_unaccounts_anon && v.flags & vmf::ACCOUNT != 0 && v.is_anonymous() && v.anon_vma.is_none() {
                // "cannot reduce our commit ... except in the anonymous case where no anon_vma has yet
                // to be assigned" [S 6.18 mm/mprotect.c:mprotect_fixup].
                nf &= !vmf::ACCOUNT;
            }
            if nf != v.flags {
                let j = match self.modify_flags_checked(model, i, cur, end, nf) {
                    Ok(j) => j,
                    Err(errno) => return Ret::Err(errno),
                };
                // "Private VM_LOCKED VMA becoming writable: trigger COW to avoid major faults next time"
                // [S 6.12 mm/mprotect.c:mprotect_fixup].
                if v.flags & (vmf::WRITE | vmf::SHARED | vmf::LOCKED) == vmf::LOCKED && nf & vmf::WRITE != 0 {
                    let _ = self.populate(model, j, cur, end);
                }
            }
            cur = end;
        }
        Ret::Ok
    }

    /// mlock / mlock2(MLOCK_ONFAULT) [S 6.18 mm/mlock.c:do_mlock, apply_vma_lock_flags, mlock_fixup;
    /// mm/gup.c:__mm_populate].
    fn mlock(&mut self, model: &KernelModel, s: i64, e: i64, onfault: bool) -> Ret {
        let add = vmf::LOCKED | if onfault { vmf::LOCKONFAULT } else { 0 };
        if let Err(r) = self.lock_flags(model, s, e, add, vmf::LOCKED | vmf::LOCKONFAULT) {
            return r;
        }
        // __mm_populate(start, len, ignore_errors=0): a VMA that cannot be faulted (PROT_NONE: no
        // FOLL_FORCE without access) fails with EFAULT, which mlock reports as ENOMEM
        // [S mm/mlock.c:__mlock_posix_error_return].
        for (a, b) in self.for_each_vma_in(s, e) {
            let i = self.vma_at(a).unwrap();
            let v = self.vmas[i];
            // __mm_populate skips VM_IO|VM_PFNMAP; VM_LOCKONFAULT is never faulted in
            // [S 6.18 mm/gup.c:__mm_populate, populate_vma_page_range].
            if v.flags & (vmf::IO | vmf::PFNMAP) != 0 {
                continue;
            }
            if v.flags & vmf::LOCKONFAULT != 0 {
                continue;
            }
            // "we've never faulted in PROT_NONE pages" → -EFAULT [S 6.12 mm/gup.c:populate_vma_page_range].
            if v.flags & (vmf::READ | vmf::WRITE | vmf::EXEC) == 0 {
                return Ret::Err(Errno::ENOMEM);
            }
            // A guard marker fails GUP with -EFAULT, reported as ENOMEM; the pages before it stay
            // faulted in [S 6.12 mm/gup.c:__mm_populate; mm/mlock.c:__mlock_posix_error_return].
            if self.populate(model, i, a, b).is_err() {
                return Ret::Err(Errno::ENOMEM);
            }
        }
        Ret::Ok
    }

    fn munlock(&mut self, model: &KernelModel, s: i64, e: i64) -> Ret {
        match self.lock_flags(model, s, e, 0, vmf::LOCKED | vmf::LOCKONFAULT) {
            Ok(()) => Ret::Ok,
            Err(r) => r,
        }
    }

    /// apply_vma_lock_flags: the range must be fully mapped; flags change VMA by VMA (a hole found on
    /// the way → ENOMEM, earlier VMAs keep their change) [S 6.18 mm/mlock.c:apply_vma_lock_flags; same
    /// walk in munlock].
    fn lock_flags(&mut self, model: &KernelModel, s: i64, e: i64, set: u64, clear: u64) -> Result<(), Ret> {
        if self.vma_at(s).is_none() {
            return Err(Ret::Err(Errno::ENOMEM));
        }
        let mut cur = s;
        while cur < e {
            let Some(i) = self.vma_at(cur) else { return Err(Ret::Err(Errno::ENOMEM)) };
            let v = self.vmas[i];
            let end = v.end.min(e);
            let nf = (v.flags & !clear) | set;
            // mlock_fixup leaves special, hugetlb (and DAX, droppable) VMAs alone
            // [S 6.18 mm/mlock.c:mlock_fixup "don't set VM_LOCKED or VM_LOCKONFAULT and don't count"].
            if nf != v.flags && v.flags & vmf::SPECIAL == 0 && v.flags & vmf::HUGETLB == 0 {
                self.modify_flags(model, i, cur, end, nf);
            }
            cur = end;
        }
        Ok(())
    }

    /// mseal(2): ENOSYS before 6.10; a hole anywhere in the range → ENOMEM with nothing sealed; then
    /// VM_SEALED on every VMA, splitting and merging like any flag change
    /// [S 6.12 mm/mseal.c:do_mseal, check_mm_seal, apply_mm_seal, mseal_fixup].
    fn mseal(&mut self, model: &KernelModel, s: i64, e: i64) -> Ret {
        if !model.mseal {
            return Ret::Err(Errno::ENOSYS);
        }
        let mut cur = s;
        while cur < e {
            let Some(i) = self.vma_at(cur) else { return Ret::Err(Errno::ENOMEM) };
            cur = self.vmas[i].end;
        }
        let mut cur = s;
        while cur < e {
            let i = self.vma_at(cur).expect("checked above");
            let v = self.vmas[i];
            let end = v.end.min(e);
            if v.flags & vmf::SEALED == 0 {
                if let Err(errno) = self.modify_flags_checked(model, i, cur, end, v.flags | vmf::SEALED) {
                    return Ret::Err(errno);
                }
            }
            cur = end;
        }
        Ret::Ok
    }

    /// mremap(2) with flags 0 (`to: None`) or MREMAP_MAYMOVE|MREMAP_FIXED[|MREMAP_DONTUNMAP]
    /// [S 6.12 mm/mremap.c:SYSCALL_DEFINE5(mremap), mremap_to, vma_to_resize, vma_expandable, move_vma;
    /// mm/vma.c:copy_vma. 6.16+ (refactor; UNVERIFIED release): check_mremap_params, then check_prep_vma
    /// before mremap_to. 6.17+ (d23cb648e365): remap_move for same-size fixed moves].
    fn mremap(&mut self, model: &KernelModel, s: i64, old: i64, new: i64, to: Option<i64>, dontunmap: bool) -> Ret {
        if dontunmap && old != new {
            return Ret::Err(Errno::EINVAL);
        }
        if new == 0 {
            return Ret::Err(Errno::EINVAL);
        }
        let overlaps = |dst: i64| s + old > dst && dst + new > s;
        if let Some(dst) = to {
            if model.mremap_checks_first && overlaps(dst) {
                return Ret::Err(Errno::EINVAL);
            }
            if model.mremap_multi && old == new {
                return match self.remap_move(model, s, old, dst, dontunmap) {
                    Ok(()) => Ret::Ok,
                    Err(errno) => Ret::Err(errno),
                };
            }
        }
        let Some(i) = self.vma_at(s) else { return Ret::Err(Errno::EFAULT) };
        if self.vmas[i].flags & vmf::SEALED != 0 {
            return Ret::Err(Errno::EPERM);
        }
        let Some(dst) = to else {
            // In place: shrinking unmaps the tail; growing needs the range to end at the VMA's end and
            // free space after it, else ENOMEM (no MREMAP_MAYMOVE).
            if new <= old {
                if new < old {
                    if let Err(errno) = self.munmap_range(s + new, s + old) {
                        return Ret::Err(errno);
                    }
                }
                return Ret::Ok;
            }
            if let Err(errno) = self.check_prep_vma(s, old, new, false) {
                return Ret::Err(errno);
            }
            let v = self.vmas[i];
            let new_end = s + new;
            let next_start = self.vmas.get(i + 1).map(|n| n.start);
            if s + old != v.end || next_start.is_some_and(|n| n < new_end) {
                return Ret::Err(Errno::ENOMEM);
            }
            // vma_merge_extend: merge with an adjacent compatible next VMA, or just extend.
            let old_end = v.end;
            let merged = i + 1 < self.vmas.len() && {
                let n = self.vmas[i + 1];
                n.start == new_end
                    && Self::flags_file_match(model, &n, v.flags, v.obj)
                    && Self::anon_compatible_m(model, n.anon_vma, v.anon_vma)
                    && n.pgoff == v.pgoff + (new_end - v.start)
            };
            if merged {
                let n = self.vmas.remove(i + 1);
                self.vmas[i].end = n.end;
                self.vmas[i].anon_vma = self.vmas[i].anon_vma.or(n.anon_vma);
                // The sticky VM_MAYBE_GUARD of the absorbed next VMA survives [T 6.18.44, case gen-8-3942].
                if model.guard_vma_flag {
                    self.vmas[i].flags |= n.flags & vmf::MAYBE_GUARD;
                }
            } else {
                self.vmas[i].end = new_end;
            }
            if self.vmas[i].flags & vmf::LOCKED != 0 {
                let _ = self.populate(model, i, old_end, new_end);
            }
            return Ret::Ok;
        };
        if model.mremap_checks_first {
            if let Err(errno) = self.check_prep_vma(s, old, new, dontunmap) {
                return Ret::Err(errno);
            }
        } else if overlaps(dst) {
            return Ret::Err(Errno::EINVAL);
        }
        match self.mremap_to(model, s, old, new, dst, dontunmap) {
            Ok(()) => Ret::Ok,
            Err(errno) => Ret::Err(errno),
        }
    }

    /// check_prep_vma / vma_to_resize: the source must start in a VMA and not run past its end; no
    /// DONTUNMAP or growth of VM_DONTEXPAND/VM_PFNMAP VMAs; sealed VMAs refuse
    /// [S 6.18 mm/mremap.c:check_prep_vma; S 6.12 mm/mremap.c:vma_to_resize, can_modify_vma].
    fn check_prep_vma(&self, s: i64, old: i64, new: i64, dontunmap: bool) -> Result<(), Errno> {
        let Some(i) = self.vma_at(s) else { return Err(Errno::EFAULT) };
        let v = self.vmas[i];
        if v.flags & vmf::SEALED != 0 {
            return Err(Errno::EPERM);
        }
        if dontunmap && v.flags & (vmf::DONTEXPAND | vmf::PFNMAP) != 0 {
            return Err(Errno::EINVAL);
        }
        // A shrinking move may cross VMA boundaries in the part it unmaps: only the kept head must lie in
        // one VMA [S 6.18 mm/mremap.c:check_prep_vma "We permit crossing of boundaries for the range
        // being unmapped due to a shrink"; S 6.12 mremap_to unmaps the tail before vma_to_resize;
        // T 6.18, case gen-1-136].
        if s + old.min(new) > v.end {
            return Err(Errno::EFAULT);
        }
        if new > old && v.flags & (vmf::DONTEXPAND | vmf::PFNMAP) != 0 {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    /// mremap_to: unmap the destination, drop a shrinking source's tail, (before 6.16: only now check
    /// the source), then move [S 6.12 mm/mremap.c:mremap_to; S 6.18 mm/mremap.c:mremap_to].
    fn mremap_to(&mut self, model: &KernelModel, s: i64, old: i64, new: i64, dst: i64, dontunmap: bool) -> Result<(), Errno> {
        self.munmap_range(dst, dst + new)?;
        let mut old = old;
        if old > new {
            self.munmap_range(s + new, s + old)?;
            old = new;
        }
        if !model.mremap_checks_first {
            self.check_prep_vma(s, old, new, dontunmap)?;
        }
        let i = self.vma_at(s).ok_or(Errno::EFAULT)?;
        self.move_vma(model, i, s, old, new, dst, dontunmap);
        Ok(())
    }

    /// remap_move (6.17+): a same-size fixed move may span several VMAs; each is moved on its own to
    /// the matching offset, so gaps are kept. A gap at the start → EFAULT; a VMA whose file has its own
    /// get_unmapped_area (ext4 here) may only be moved alone [S 6.17 mm/mremap.c:remap_move,
    /// vma_multi_allowed]. A failure part-way leaves the earlier VMAs moved.
    fn remap_move(&mut self, model: &KernelModel, s: i64, len: i64, dst: i64, dontunmap: bool) -> Result<(), Errno> {
        let e = s + len;
        let mut cur = s;
        let mut seen = false;
        let mut allowed = true;
        let mut last_end = 0;
        let mut target = dst;
        // for_each_vma_range visits each VMA meeting [s, e) once, in address order.
        while cur < e {
            let Some(i) = self.find_vma(cur) else { break };
            let v = self.vmas[i];
            if v.start >= e {
                break;
            }
            if !allowed {
                return Err(Errno::EFAULT);
            }
            if !seen && s < v.start {
                return Err(Errno::EFAULT);
            }
            let addr = v.start.max(cur);
            let piece = e.min(v.end) - addr;
            let offset = if seen { v.start - last_end } else { 0 };
            last_end = v.end;
            let new_addr = target + offset;
            // vma_multi_allowed refuses files with their own get_unmapped_area; anonymous memory, shmem
            // and ext4 files are all allowed [T 6.18: a move spanning an anon and an ext4 VMA succeeds].
            allowed = true;
            if seen && !allowed {
                return Err(Errno::EFAULT);
            }
            self.check_prep_vma(addr, piece, piece, dontunmap)?;
            self.mremap_to(model, addr, piece, piece, new_addr, dontunmap)?;
            seen = true;
            target = new_addr + piece;
            cur = addr + piece;
        }
        if seen {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    /// move_vma: copy the VMA to `dst` (merging there if it can), move the page tables (guard markers
    /// included), then unmap the old range, or with MREMAP_DONTUNMAP leave it mapped and empty.
    #[allow(clippy::too_many_arguments)]
    fn move_vma(&mut self, model: &KernelModel, mut i: usize, s: i64, old: i64, new: i64, dst: i64, dontunmap: bool) {
        let v = self.vmas[i];
        // Before the 6.16 refactor a locked source was split around the range first; 6.18 does not
        // split, and the whole source VMA loses VM_LOCKED [T 6.18, case gen-1-114].
        if dontunmap && v.flags & vmf::LOCKED != 0 && !model.mremap_checks_first {
            if s > v.start {
                self.split(i, s);
                i += 1;
            }
            if s + old < self.vmas[i].end {
                self.split(i, s + old);
            }
        }
        let v = self.vmas[i];
        // copy_vma: an anonymous VMA that was never faulted gets an address-based pgoff ("If anonymous vma
        // has not yet been faulted, update new pgoff") [S 6.18 mm/vma.c:copy_vma].
        let pgoff = if v.is_anonymous() && v.anon_vma.is_none() {
            self.base_vpn() + dst
        } else {
            v.pgoff + (s - v.start)
        };
        let copy = Vma { start: dst, end: dst + new, flags: v.flags, obj: v.obj, pgoff, anon_vma: v.anon_vma };
        // Move the PTEs before the VMA list changes.
        let moved: Vec<Pte> = (s..s + old).map(|p| self.pte(p)).collect();
        self.clear_ptes(s, s + old);
        for (k, pte) in moved.into_iter().enumerate() {
            self.set_pte(dst + k as i64, pte);
        }
        let pos = self.vmas.iter().position(|w| w.start >= copy.end).unwrap_or(self.vmas.len());
        self.vmas.insert(pos, copy);
        // The source VMA may have shifted by the insertion.
        let src_idx = |m: &Machine| m.vmas.iter().position(|w| w.start <= s && s < w.end && (w.start, w.end) != (copy.start, copy.end));
        // copy_vma (6.12) keeps an unfaulted source that stays (DONTUNMAP) out of the merge; 6.18 merges
        // with it [T 6.18, case gen-1-1475].
        let skip_source = v.anon_vma.is_none() && dontunmap && !model.mremap_checks_first;
        // 6.1.y: a kept, unfaulted source next to the destination blocks every merge there
        // ("disallow a self-merge ... simply do not attempt to merge") [S 6.1.192 mm/mmap.c:copy_vma;
        // T Debian 6.1.192, case gen-3-686].
        let adjacent = dst == v.end || v.start == dst + new;
        if !(skip_source && model.mremap_kept_source_blocks_merge && adjacent) {
            let keep_out = if skip_source { src_idx(self) } else { None };
            let _ = self.merge_inserted(model, pos, keep_out);
        }
        if dontunmap {
            if let Some(j) = src_idx(self) {
                let base = self.base_vpn();
                let w = &mut self.vmas[j];
                // The kept source is no longer locked (vm_flags_clear(vma, VM_LOCKED_MASK))
                // [S 6.18 mm/mremap.c:dontunmap_complete; S 6.12 mm/mremap.c:move_vma].
                let was_locked = w.flags & vmf::LOCKED != 0;
                w.flags &= !(vmf::LOCKED | vmf::LOCKONFAULT);
                let w = *w;
                if was_locked {
                    // ... but the pages it still maps stay mlocked (see `stale_mlock`).
                    for p in w.start..w.end {
                        match self.pte(p) {
                            Pte::Anon { folio, .. } => {
                                self.stale_mlock_anon.insert(folio);
                            }
                            Pte::Cache => {
                                self.stale_mlock.insert((w.obj.unwrap(), w.obj_page(p)));
                            }
                            _ => {}
                        }
                    }
                }
                let w = &mut self.vmas[j];
                if w.start == s && w.end == s + old {
                    w.anon_vma = None;
                    // 6.12 also gives the now unfaulted anonymous VMA an address-based pgoff; 6.18's
                    // dontunmap_complete only unlinks the anon_vma [S 6.12 mm/mremap.c:move_vma;
                    // S 6.18 mm/mremap.c:dontunmap_complete; T 6.18, case gen-2-31058].
                    if w.obj.is_none() && !model.mremap_checks_first {
                        w.pgoff = base + w.start;
                    }
                }
            }
        } else {
            let _ = self.munmap_range(s, s + old);
        }
        // A grown locked VMA has its new part faulted in (mm_populate after the move)
        // [S 6.18 mm/mremap.c:do_mremap "if (!failed && vrm->mlocked && vrm->new_len > vrm->old_len)
        // mm_populate(...)"; S 6.12 SYSCALL_DEFINE5(mremap), same test on `locked`].
        if new > old {
            if let Some(j) = self.vma_at(dst) {
                if self.vmas[j].flags & vmf::LOCKED != 0 {
                    let _ = self.populate(model, j, dst + old, dst + new);
                }
            }
        }
    }

    /// vma_merge_new_range for a VMA just inserted at vmas[i] (an mmap, or the copy mremap's copy_vma
    /// made, which carries the source's anon_vma). `keep_out`: a source VMA that stays and may not be
    /// merged with. Sticky flags (VM_MAYBE_GUARD on 6.18.y) survive into the merged VMA
    /// [S 6.18 mm/vma.c:vma_merge_new_range, can_vma_merge_left/right; T 6.18.44 for the sticky flag].
    fn merge_inserted(&mut self, model: &KernelModel, i: usize, keep_out: Option<usize>) -> usize {
        let v = self.vmas[i];
        let ok = |o: &Vma, idx: usize| {
            keep_out != Some(idx)
                && Self::flags_file_match(model, o, v.flags, v.obj)
                && Self::anon_compatible_m(model, o.anon_vma, v.anon_vma)
        };
        let left = i > 0 && {
            let p = self.vmas[i - 1];
            p.end == v.start && ok(&p, i - 1) && p.pgoff + p.pages() == v.pgoff
        };
        let right = i + 1 < self.vmas.len() && {
            let n = self.vmas[i + 1];
            n.start == v.end
                && ok(&n, i + 1)
                && n.pgoff == v.pgoff + v.pages()
                && (!left || Self::anon_pair_compatible(model, self.vmas[i - 1].anon_vma, n.anon_vma))
        };
        let sticky = |a: u64| if model.guard_vma_flag { a & vmf::MAYBE_GUARD } else { 0 };
        match (left, right) {
            (true, true) => {
                let n = self.vmas[i + 1];
                let p = &mut self.vmas[i - 1];
                p.end = n.end;
                p.flags = v.flags | sticky(p.flags | n.flags);
                p.anon_vma = p.anon_vma.or(v.anon_vma).or(n.anon_vma);
                self.vmas.drain(i..i + 2);
                i - 1
            }
            (true, false) => {
                let p = &mut self.vmas[i - 1];
                p.end = v.end;
                p.flags = v.flags | sticky(p.flags);
                p.anon_vma = p.anon_vma.or(v.anon_vma);
                self.vmas.remove(i);
                i - 1
            }
            (false, true) => {
                let n = &mut self.vmas[i + 1];
                n.start = v.start;
                n.pgoff = v.pgoff;
                n.flags = v.flags | sticky(n.flags);
                n.anon_vma = n.anon_vma.or(v.anon_vma);
                self.vmas.remove(i);
                i
            }
            (false, false) => i,
        }
    }

    // ---------------------------------------------------------------------------------------------
    // madvise.

    /// The syscall front end, then the VMA walk [S 6.18 mm/madvise.c:madvise_should_skip,
    /// is_valid_madvise, madvise_do_behavior, madvise_walk_vmas; 4.5 SYSCALL_DEFINE3(madvise)].
    fn madvise(&mut self, model: &KernelModel, start: u64, len_in: u64, value: i32) -> Result<Ret, Unsupported> {
        let ps = self.ps;
        let adv = Advice::from_value(value);
        if model.hwpoison_before_validation && matches!(adv, Some(Advice::Hwpoison | Advice::SoftOffline)) && model.memory_failure {
            return Err("HWPOISON/SOFT_OFFLINE are not modelled".into());
        }
        if !model.advice_valid(value) {
            return Ok(Ret::Err(Errno::EINVAL));
        }
        let adv = adv.expect("valid advice has a name");
        if start % ps != 0 {
            return Ok(Ret::Err(Errno::EINVAL));
        }
        let len = len_in.wrapping_add(ps - 1) & !(ps - 1);
        if len_in != 0 && len == 0 {
            return Ok(Ret::Err(Errno::EINVAL));
        }
        let end = start.wrapping_add(len);
        if end < start {
            return Ok(Ret::Err(Errno::EINVAL));
        }
        if len == 0 {
            return Ok(Ret::Ok);
        }
        let base = self.arena.base as i128;
        let s = ((start as i128 - base) / ps as i128) as i64;
        let e = ((end as i128 - base) / ps as i128) as i64;
        match adv {
            Advice::Hwpoison | Advice::SoftOffline => {
                return Err(format!("advice {} (memory-failure injection) is not modelled yet", adv.name()))
            }
            Advice::GuardInstall | Advice::GuardRemove if !GUARDS_MODELLED => {
                return Err(format!("advice {} is not modelled yet", adv.name()))
            }
            Advice::PopulateRead | Advice::PopulateWrite if model.populate_linear => {
                return Ok(self.populate_linear(model, adv == Advice::PopulateWrite, s, e));
            }
            _ => {}
        }
        Ok(self.walk(model, adv, s, e))
    }

    /// 6.9+: madvise_populate → faultin_page_range over [s, e) in address order; a hole → ENOMEM, a VMA
    /// the access is not allowed on → EINVAL, both after the pages before it were faulted in
    /// [S 6.12 mm/madvise.c:madvise_populate, mm/gup.c:faultin_page_range, __get_user_pages
    /// (FOLL_MADV_POPULATE), check_vma_flags].
    fn populate_linear(&mut self, model: &KernelModel, write: bool, s: i64, e: i64) -> Ret {
        let mut cur = s;
        while cur < e {
            let Some(i) = self.vma_at(cur) else { return Ret::Err(Errno::ENOMEM) };
            let end = self.vmas[i].end.min(e);
            if let Err(errno) = self.populate_vma(model, i, cur, end, write) {
                return Ret::Err(errno);
            }
            cur = end;
        }
        Ret::Ok
    }

    /// Fault in [s, e) of vmas[i] as MADV_POPULATE_(READ|WRITE) does, without FOLL_FORCE.
    fn populate_vma(&mut self, model: &KernelModel, i: usize, s: i64, e: i64, write: bool) -> Result<(), Errno> {
        let v = self.vmas[i];
        // check_vma_flags: VM_IO|VM_PFNMAP, missing VM_WRITE for a write, missing VM_READ for a read
        // → -EFAULT, which FOLL_MADV_POPULATE reports as -EINVAL [S 6.12 mm/gup.c].
        if v.flags & (vmf::IO | vmf::PFNMAP) != 0
            || (write && v.flags & vmf::WRITE == 0)
            || (!write && v.flags & vmf::READ == 0)
        {
            return Err(Errno::EINVAL);
        }
        for p in s..e {
            if self.pte(p) == Pte::Guard {
                // The fault handler answers VM_FAULT_SIGSEGV → -EFAULT [T spec §5 GUARD_INSTALL].
                return Err(Errno::EFAULT);
            }
            if self.past_eof(i, p) {
                // VM_FAULT_SIGBUS → -EFAULT [S 6.18 mm/madvise.c:madvise_populate]; a read fault first
                // maps the cached neighbours (write faults have no fault-around).
                if !write {
                    self.fault_around_past_eof(model, i, p);
                }
                return Err(Errno::EFAULT);
            }
            if write {
                // A write fault: allocate or COW-break; shared mappings just map (and dirty) the page.
                let needs = match self.pte(p) {
                    Pte::Anon { shared, .. } => shared,
                    Pte::Cache => v.flags & vmf::SHARED == 0,
                    _ => true,
                };
                if needs {
                    self.fault_write(model, i, p, None);
                }
                self.touch_write(p);
            } else {
                self.fault_read(model, i, p);
            }
        }
        Ok(())
    }

    /// madvise_walk_vmas: apply per VMA; a hole sets ENOMEM but the walk goes on; the first per-VMA
    /// error returns at once [S 6.18 mm/madvise.c:madvise_walk_vmas; T spec §2.3].
    fn walk(&mut self, model: &KernelModel, adv: Advice, s: i64, e: i64) -> Ret {
        let mut unmapped = false;
        let mut cur = s;
        loop {
            let Some(i) = self.find_vma(cur) else { return Ret::Err(Errno::ENOMEM) };
            if cur < self.vmas[i].start {
                unmapped = true;
                cur = self.vmas[i].start;
                if cur >= e {
                    break;
                }
            }
            let end = self.vmas[i].end.min(e);
            if let Err(errno) = self.advise_vma(model, adv, i, cur, end) {
                return Ret::Err(errno);
            }
            cur = end;
            if cur >= e {
                break;
            }
        }
        if unmapped {
            Ret::Err(Errno::ENOMEM)
        } else {
            Ret::Ok
        }
    }

    /// madvise_vma_behavior for [s, e) inside vmas[i] [S 6.18 mm/madvise.c].
    fn advise_vma(&mut self, model: &KernelModel, adv: Advice, i: usize, s: i64, e: i64) -> Result<(), Errno> {
        let v = self.vmas[i];
        let mut nf = v.flags;
        // can_modify_vma_madv: "discard" advice on a sealed, private anonymous, non-writable VMA → EPERM,
        // checked per VMA first (6.12+) [S 6.12 mm/mseal.c:is_madv_discard, is_ro_anon]; 6.18 also
        // counts GUARD_INSTALL [T spec §5 mseal].
        if v.flags & vmf::SEALED != 0 && v.obj.is_none() && v.flags & (vmf::SHARED | vmf::WRITE) == 0 {
            let discard = matches!(
                adv,
                Advice::Free | Advice::Dontneed | Advice::DontneedLocked | Advice::Remove | Advice::Dontfork | Advice::Wipeonfork
            ) || (adv == Advice::GuardInstall && model.mseal_refuses_guard_install);
            if discard {
                return Err(Errno::EPERM);
            }
        }
        if v.flags & vmf::HUGETLB != 0 {
            if let Some(r) = self.advise_hugetlb(model, adv, i, s, e) {
                return r;
            }
        }
        match adv {
            Advice::Willneed => {
                // Anonymous: swap-in readahead (nothing swapped here) or EBADF without CONFIG_SWAP;
                // files: vfs_fadvise readahead. No PTE changes [S 6.18 madvise_willneed; T spec §4.7].
                if v.obj.is_none() && model.willneed_anon_ebadf {
                    return Err(Errno::EBADF);
                }
                self.willneed_file(model, &v, s, e);
                return Ok(());
            }
            Advice::Dontneed => {
                // madvise_dontneed_free_valid_vma: VM_LOCKED|VM_PFNMAP → EINVAL (hugetlb has its own
                // rules, not reachable here) [S 6.18; T spec §5 DONTNEED].
                if v.flags & (vmf::LOCKED | vmf::PFNMAP) != 0 {
                    return Err(Errno::EINVAL);
                }
                if model.mutations.contains(&Mutation::DontneedKeepsAnon) {
                    for p in s..e {
                        if !matches!(self.pte(p), Pte::Anon { .. }) || self.vmas[i].obj.is_some() {
                            self.set_pte(p, Pte::None);
                        }
                    }
                    return Ok(());
                }
                self.zap(s, e);
                return Ok(());
            }
            Advice::Free => {
                if v.flags & (vmf::LOCKED | vmf::PFNMAP) != 0 {
                    return Err(Errno::EINVAL);
                }
                if model.free_falls_back_to_dontneed {
                    // 4.5-4.11 without swap: FREE is DONTNEED [S 4.5 mm/madvise.c:madvise_free].
                    self.zap(s, e);
                    return Ok(());
                }
                // madvise_free_single_vma: anonymous VMAs only [S 6.18].
                if !v.is_anonymous() {
                    return Err(Errno::EINVAL);
                }
                // madvise_free_pte_range: present anon pages are marked lazy-free (clean); the zero
                // page and empty PTEs are skipped [S 6.18 mm/madvise.c]. A folio shared with another
                // process is marked too: only a PG_dirty or swap-cache folio must be mapped once
                // (folio_mapcount check); here anon folios are never PG_dirty (zap does not dirty anon
                // folios, and the only path that does, try_to_unmap_one on a re-dirtied lazy-free
                // page, is not tracked: UNVERIFIED for that page once shared) [S 6.12 mm/madvise.c:
                // madvise_free_pte_range; mm/memory.c:zap_present_folio_ptes; T 6.18.44, case
                // free_on_page_shared_with_live_child]. The other process's PTE stays dirty, so only
                // this side shows LazyFree (smaps_account needs a clean PTE).
                for p in s..e {
                    if let Pte::Anon { content, shared, folio, pgdirty, .. } = self.pte(p) {
                        // A PG_dirty folio must be mapped once to be cleaned and freed; a shared one is
                        // skipped, its PTE left dirty [S 6.12 mm/madvise.c:madvise_free_pte_range;
                        // T 6.18.44, case free_skips_redirtied_page_shared_with_live_child].
                        if pgdirty && shared {
                            continue;
                        }
                        self.set_pte(p, Pte::Anon { content, lazy: true, shared, folio, freed: true, pgdirty: false });
                    }
                }
                return Ok(());
            }
            Advice::Remove => return self.remove(model, i, s, e),
            Advice::DontneedLocked => {
                // Like DONTNEED, but VM_LOCKED is allowed (5.18, 9457056ac426) [S 6.12
                // mm/madvise.c:madvise_dontneed_free_valid_vma].
                if v.flags & vmf::PFNMAP != 0 {
                    return Err(Errno::EINVAL);
                }
                self.zap(s, e);
                return Ok(());
            }
            Advice::Cold | Advice::Pageout => {
                // can_madv_lru_vma [S 6.12 mm/madvise.c].
                if v.flags & (vmf::LOCKED | vmf::PFNMAP | vmf::HUGETLB) != 0 {
                    return Err(Errno::EINVAL);
                }
                self.pageout(i, s, e, adv == Advice::Pageout);
                // Otherwise COLD only deactivates pages and clears young bits: nothing a process can
                // observe besides timing [T spec §5 COLD].
                return Ok(());
            }
            Advice::PopulateRead | Advice::PopulateWrite => {
                // ≤6.8: per VMA inside the walk [S 6.1 mm/madvise.c:madvise_populate].
                return self.populate_vma(model, i, s, e, adv == Advice::PopulateWrite);
            }
            Advice::Collapse => {
                // thp_vma_allowable_order(.., PMD_ORDER) without sysfs enforcement: VM_NOHUGEPAGE,
                // VM_SPECIAL/VM_HUGETLB, or a VMA that cannot hold one aligned PMD → EINVAL
                // [S 6.12 mm/khugepaged.c:madvise_collapse, mm/huge_memory.c:__thp_vma_allowable_orders].
                if v.flags & (vmf::NOHUGEPAGE | vmf::SPECIAL | vmf::HUGETLB) != 0 || !self.holds_pmd(model, &v) {
                    return Err(Errno::EINVAL);
                }
                self.unknown.get_or_insert_with(|| "MADV_COLLAPSE on a VMA large enough for a PMD THP is not modelled".into());
                return Ok(());
            }
            Advice::GuardInstall | Advice::GuardRemove => return self.guard(model, adv, i, s, e),
            // hugepage_madvise: set one, clear the other; 4.8+ on any VMA (spec §5; the 4.5-4.7 EINVAL on
            // shared and special VMAs is not in any profile's rules) [S 6.18 mm/khugepaged.c:hugepage_madvise].
            Advice::Hugepage => {
                nf = (nf & !vmf::NOHUGEPAGE) | vmf::HUGEPAGE;
            }
            Advice::Nohugepage => {
                nf = (nf & !vmf::HUGEPAGE) | vmf::NOHUGEPAGE;
            }
            Advice::Mergeable => {
                // ksm_madvise: ignored (0, no flag, no split) on KSM-incompatible VMAs
                // [S 6.12 mm/ksm.c:ksm_madvise, vma_ksm_compatible].
                let incompatible = vmf::SHARED | vmf::MAYSHARE | vmf::PFNMAP | vmf::IO | vmf::DONTEXPAND | vmf::HUGETLB | vmf::MIXEDMAP;
                if nf & vmf::MERGEABLE != 0 || nf & incompatible != 0 {
                    return Ok(());
                }
                if model.ksm_running {
                    self.unknown.get_or_insert_with(|| "ksmd is running: KSM merging is asynchronous and not modelled".into());
                }
                nf |= vmf::MERGEABLE;
            }
            Advice::Unmergeable => {
                // ksm_madvise: nothing to do without VM_MERGEABLE; else unmerge and clear it
                // [S 6.12 mm/ksm.c:ksm_madvise]. No KSM page can exist while ksmd is stopped, so
                // unmerge_ksm_pages has nothing to break.
                if nf & vmf::MERGEABLE == 0 {
                    return Ok(());
                }
                nf &= !vmf::MERGEABLE;
            }
            // The readahead hints, DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK and DONTDUMP/DODUMP flag changes
            // and their refusals [S 6.18 mm/madvise.c:madvise_vma_behavior; S 4.5 madvise_behavior].
            Advice::Normal => nf &= !(vmf::RAND_READ | vmf::SEQ_READ),
            Advice::Sequential => nf = (nf & !vmf::RAND_READ) | vmf::SEQ_READ,
            Advice::Random => {
                if !model.mutations.contains(&Mutation::RandomSetsNoFlag) {
                    nf = (nf & !vmf::SEQ_READ) | vmf::RAND_READ;
                }
            }
            Advice::Dontfork => nf |= vmf::DONTCOPY,
            Advice::Dofork => {
                if nf & vmf::IO != 0 {
                    return Err(Errno::EINVAL);
                }
                nf &= !vmf::DONTCOPY;
            }
            Advice::Wipeonfork => {
                // "MADV_WIPEONFORK is only supported on anonymous memory" [S 6.18; T spec §5].
                if v.obj.is_some() || nf & vmf::SHARED != 0 {
                    return Err(Errno::EINVAL);
                }
                nf |= vmf::WIPEONFORK;
            }
            Advice::Keeponfork => nf &= !vmf::WIPEONFORK,
            Advice::Dontdump => nf |= vmf::DONTDUMP,
            Advice::Dodump => {
                // "if (!is_vm_hugetlb_page(vma) && new_flags & VM_SPECIAL) return -EINVAL" (4.19+; 6.11+
                // also VM_DROPPABLE, which no scenario maps).
                if nf & vmf::HUGETLB == 0 && nf & vmf::SPECIAL != 0 {
                    return Err(Errno::EINVAL);
                }
                nf &= !vmf::DONTDUMP;
            }
            _ => unreachable!("filtered in madvise()"),
        }
        // madvise_update_vma: nothing to do when the flags do not change [S 6.18].
        if nf != v.flags {
            self.modify_flags_checked(model, i, s, e, nf)?;
        }
        Ok(())
    }

    /// An anonymous fault in a VMA that holds an aligned PMD may allocate a PMD THP (or map the huge zero
    /// page) when THP is `always`, or `madvise` with VM_HUGEPAGE, and the VMA is not VM_NOHUGEPAGE
    /// [S 6.12 mm/memory.c:__handle_mm_fault, mm/huge_memory.c:do_huge_pmd_anonymous_page]. Not modelled.
    fn check_thp(&mut self, model: &KernelModel, v: &Vma) {
        use crate::kernel::ThpMode;
        let wanted = match model.thp_mode {
            ThpMode::Always => true,
            ThpMode::Madvise => v.flags & vmf::HUGEPAGE != 0,
            ThpMode::Never | ThpMode::Unavailable => false,
        };
        if wanted && v.flags & vmf::NOHUGEPAGE == 0 && self.holds_pmd(model, v) {
            self.unknown.get_or_insert_with(|| "an anonymous fault that may allocate a PMD THP is not modelled".into());
        }
    }

    /// MADV_GUARD_INSTALL / MADV_GUARD_REMOVE [S 7.x mm/madvise.c:madvise_guard_install,
    /// madvise_guard_remove, is_valid_guard_vma; T spec §5]. 6.15+: any VMA but VM_SPECIAL and hugetlb
    /// (and VM_LOCKED for INSTALL); 6.13-6.14: private anonymous VMAs only (man page; UNVERIFIED in code).
    /// INSTALL zaps present pages and leaves existing markers; with the 6.18.y backport it sets the
    /// sticky VM_MAYBE_GUARD on the whole VMA without a split and prepares an anon_vma only for
    /// anonymous VMAs; before it, anon_vma_prepare runs for every VMA so fork copies the markers.
    fn guard(&mut self, model: &KernelModel, adv: Advice, i: usize, s: i64, e: i64) -> Result<(), Errno> {
        let v = self.vmas[i];
        let install = adv == Advice::GuardInstall;
        let mut disallowed = vmf::SPECIAL | vmf::HUGETLB;
        if install {
            disallowed |= vmf::LOCKED;
        }
        if v.flags & disallowed != 0 {
            return Err(Errno::EINVAL);
        }
        if !model.guard_any_vma && (v.obj.is_some() || v.flags & vmf::SHARED != 0 || v.flags & vmf::MAYWRITE == 0) {
            return Err(Errno::EINVAL);
        }
        if !install {
            for p in s..e {
                if self.pte(p) == Pte::Guard {
                    self.set_pte(p, Pte::None);
                }
            }
            return Ok(());
        }
        if model.guard_vma_flag {
            self.vmas[i].flags |= vmf::MAYBE_GUARD;
            if v.is_anonymous() {
                self.anon_vma_prepare(i);
            }
        } else {
            self.anon_vma_prepare(i);
        }
        for p in s..e {
            self.set_pte(p, Pte::Guard);
        }
        Ok(())
    }

    /// Does `v` contain a PMD-aligned, PMD-sized range (thp_vma_suitable_order with addr = vm_end - PMD)?
    /// [S 6.12 include/linux/huge_mm.h:thp_vma_suitable_order; mm/huge_memory.c:__thp_vma_allowable_orders]
    fn holds_pmd(&self, model: &KernelModel, v: &Vma) -> bool {
        let pmd = model.ptrs_per_pte as i64;
        let vpn_end = self.base_vpn() + v.end;
        let haddr = (vpn_end - pmd).div_euclid(pmd) * pmd;
        let file_aligned = v.obj.is_none() || ((self.base_vpn() + v.start) - v.pgoff).rem_euclid(pmd) == 0;
        haddr >= self.base_vpn() + v.start && haddr + pmd <= vpn_end && file_aligned
    }

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
    fn pageout(&mut self, i: usize, s: i64, e: i64, reclaim: bool) {
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
    fn map_whole_folio(&mut self, i: usize, page: i64) {
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
    fn large_folio_walk(&mut self, i: usize, p: i64, e: i64) -> Option<i64> {
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

    /// madvise_remove [S 6.18 mm/madvise.c]: VM_LOCKED → EINVAL; no file → EINVAL; not a shared
    /// mapping that may be written → EACCES; then punch a hole in the file.
    fn remove(&mut self, model: &KernelModel, i: usize, s: i64, e: i64) -> Result<(), Errno> {
        let v = self.vmas[i];
        if v.flags & vmf::LOCKED != 0 {
            return Err(Errno::EINVAL);
        }
        let Some(obj) = v.obj else { return Err(Errno::EINVAL) };
        let writable = if model.remove_needs_maywrite_only { vmf::MAYWRITE } else { vmf::WRITE };
        if v.flags & vmf::SHARED == 0 || v.flags & writable == 0 {
            return Err(Errno::EACCES);
        }
        let first = v.obj_page(s);
        let last = v.obj_page(e);
        self.punch(obj, first, last);
        Ok(())
    }

    /// fallocate(PUNCH_HOLE|KEEP_SIZE) on an object: its pages read as zero from now on, and every PTE
    /// mapping the page-cache pages is unmapped; private COW copies survive (unmap_mapping_range with
    /// even_cows = 0) [S 6.18 mm/shmem.c:shmem_fallocate; fs/ext4 punch hole via truncate_pagecache_range].
    fn punch(&mut self, obj: usize, first: usize, last: usize) {
        let end = last.min(self.objs[obj].pages.len());
        if first < end {
            // truncate_inode_pages_range handles the folios holding the range's first and last pages
            // (truncate_inode_partial_folio) before removing the folios fully inside.
            let (h, n) = self.objs[obj].folio(first);
            self.punch_partial_folio(obj, h, n, first, end);
            if end > h + n {
                let (h, n) = self.objs[obj].folio(end - 1);
                self.punch_partial_folio(obj, h, n, first, end);
            }
        }
        {
            for p in first.min(end)..end {
                self.stale_mlock.remove(&(obj, p));
                let o = &mut self.objs[obj];
                o.pages[p] = Content::Zero;
                o.cached[p] = false;
                o.dirty[p] = false;
                o.flagged[p] = false;
                o.order[p] = 0;
            }
        }
        self.unmap_cache(obj, first, last);
        self.punched.push((obj, first, last));
    }

    /// truncate_inode_partial_folio for a large folio [h, h + n) that the punched range [first, end)
    /// covers only in part: the folio is split non-uniformly at the range's first page, then the piece
    /// holding the page after the range (if the range ends inside the folio) at that page, so that the
    /// pieces inside the range can be dropped. Splitting unmaps every PTE of the folio in every VMA and
    /// process, pages outside the range included, and maps no file page back; the pieces outside the
    /// range stay cached with the folio's dirty bit [S 6.18 mm/truncate.c:truncate_inode_partial_folio
    /// (try_folio_split at split_at, then split_at2), mm/huge_memory.c:__folio_split (unmap_folio;
    /// remap_page returns for file folios); ext4 punches without writeback in data=ordered mode
    /// (S 6.12 fs/ext4/inode.c:ext4_truncate_page_cache_block_range); T 6.18 probe: REMOVE of pages 2-3
    /// of an order-3 folio unmapped all 8 PTEs and left [0,2), 4, 5, [6,8); cases gen-2-47446,
    /// remove_part_of_large_folio_unmaps_the_rest]. The split can fail (an xarray node allocation
    /// under memory pressure, or a racing reference); a quiet worker has neither, so that is not modelled.
    fn punch_partial_folio(&mut self, obj: usize, h: usize, n: usize, first: usize, end: usize) {
        if n == 1 || (first <= h && h + n <= end) {
            return;
        }
        self.unmap_cache(obj, h, h + n);
        self.punched.push((obj, h, h + n));
        let o = &mut self.objs[obj];
        let (at, stop) = (first.max(h), end.min(h + n));
        o.split_at(h, n, at);
        if stop < h + n {
            let (h2, n2) = o.folio(stop);
            if n2 > 1 {
                o.split_at(h2, n2, stop);
            }
        }
    }

    fn unmap_cache(&mut self, obj: usize, first: usize, last: usize) {
        for vi in 0..self.vmas.len() {
            let v = self.vmas[vi];
            if v.obj != Some(obj) {
                continue;
            }
            for p in v.start..v.end {
                let op = v.obj_page(p);
                if op >= first && op < last && self.pte(p) == Pte::Cache {
                    self.set_pte(p, Pte::None);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // hugetlb.

    /// Is arena page `p` on a huge page boundary (in virtual addresses)?
    fn huge_aligned(&self, p: i64) -> bool {
        self.hp > 0 && (self.base_vpn() + p).rem_euclid(self.hp) == 0
    }

    /// The huge page holding arena page `p`: its first arena page.
    fn huge_start(&self, p: i64) -> i64 {
        p - (self.base_vpn() + p).rem_euclid(self.hp)
    }

    /// hugetlb_vm_op_split: a hugetlb VMA splits only at a huge page boundary, else EINVAL
    /// [S 6.12 mm/hugetlb.c:hugetlb_vm_op_split; T spec §3.3: RANDOM on 4K inside hugetlb → EINVAL].
    fn huge_split_refused(&self, v: &Vma, at: i64) -> bool {
        v.flags & vmf::HUGETLB != 0 && !self.huge_aligned(at)
    }

    /// `modify_flags` with the hugetlb split rule: vma_modify splits at the start first and then at the
    /// end, so a refused end split leaves the start split made (hugetlb VMAs never merge: VM_SPECIAL)
    /// [S 6.18 mm/vma.c:vma_modify; 6.1 mm/madvise.c:madvise_update_vma; mm/mprotect.c:mprotect_fixup].
    fn modify_flags_checked(&mut self, model: &KernelModel, i: usize, s: i64, e: i64, nf: u64) -> Result<usize, Errno> {
        let v = self.vmas[i];
        if v.flags & vmf::HUGETLB == 0 {
            return Ok(self.modify_flags(model, i, s, e, nf));
        }
        let mut i = i;
        if s > v.start {
            if self.huge_split_refused(&v, s) {
                return Err(Errno::EINVAL);
            }
            if e < v.end && self.huge_split_refused(&v, e) {
                self.split(i, s);
                return Err(Errno::EINVAL);
            }
        } else if e < v.end && self.huge_split_refused(&v, e) {
            return Err(Errno::EINVAL);
        }
        if s > v.start {
            self.split(i, s);
            i += 1;
        }
        if e < self.vmas[i].end {
            self.split(i, e);
        }
        self.vmas[i].flags = nf;
        Ok(i)
    }

    /// hugetlb_reserve_pages at mmap: a shared mapping reserves every huge page of its file range that the
    /// inode's reserve map does not hold yet (region_chg); a private one reserves the whole range for
    /// itself [S 6.12 mm/hugetlb.c:hugetlb_reserve_pages; T 6.18: HugePages_Rsvd +n at mmap].
    fn huge_reserve(&mut self, v: &Vma) {
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

    /// Drop the mappings of [s, e) (huge-aligned) of the hugetlb VMA `v`: private pages are freed; at
    /// munmap the private reservations not consumed are given back (hugetlb_vm_op_close); at DONTNEED a
    /// freed private anonymous page gets its reservation back where the kernel restores it
    /// [S 6.12 mm/hugetlb.c:__unmap_hugepage_range ("Restore the reservation for anonymous page"),
    /// hugetlb_vm_op_close, free_huge_folio; absent in 6.1 (S Debian 6.1.192); T 6.18: DONTNEED of a
    /// private page gives Free +1, Rsvd +1].
    fn huge_unmap(&mut self, v: &Vma, s: i64, e: i64, munmap: bool) {
        let mut p = s;
        while p < e {
            if matches!(self.pte(p), Pte::Anon { .. }) {
                self.huge.free += 1;
                if !munmap && self.restore_on_zap {
                    self.huge_resv[p as usize] = true;
                    self.huge.rsvd += 1;
                }
            }
            if munmap && v.flags & vmf::MAYSHARE == 0 {
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

    /// A MAP_HUGETLB object whose last mapping went away is released (its pages freed, its reservations
    /// returned) [S 6.12 fs/hugetlbfs/inode.c:hugetlbfs_evict_inode, remove_inode_hugepages,
    /// hugetlb_unreserve_pages; T 6.18: Free back only after the last part is unmapped].
    fn huge_release_dead(&mut self) {
        for o in 0..self.objs.len() {
            let obj = &self.objs[o];
            if !obj.huge || obj.file.is_some() || obj.dead || self.vmas.iter().any(|v| v.obj == Some(o)) {
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
    fn huge_fault(&mut self, i: usize, page: i64, write: bool, data: Option<Content>) {
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
            Pte::Anon { .. } => {}
            Pte::Cache if !write => return,
            Pte::None if !write && cached => {
                for q in hs..he {
                    self.set_pte(q, Pte::Cache);
                }
                return;
            }
            _ => {
                // A new private page: a copy of the file's page when there is one, else zeroed.
                self.huge.free -= 1;
                if self.huge_resv[hs as usize] {
                    self.huge_resv[hs as usize] = false;
                    self.huge.rsvd -= 1;
                }
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
    fn advise_hugetlb(&mut self, model: &KernelModel, adv: Advice, i: usize, s: i64, e: i64) -> Option<Result<(), Errno>> {
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
    fn huge_punch(&mut self, obj: usize, first: usize, last: usize) {
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
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Accesses and fork.

    /// A user-space write of a whole page, or a read of one byte. No VMA, or an access the VMA's
    /// protection denies → SIGSEGV [S 6.18 arch/x86/mm/fault.c:do_user_addr_fault, bad_area, access_error];
    /// a guard marker → SIGSEGV [S 6.18 mm/memory.c:handle_pte_marker (PTE_MARKER_GUARD →
    /// VM_FAULT_SIGSEGV)]; a file page past EOF → SIGBUS (`past_eof`).
    fn access(&mut self, model: &KernelModel, page: i64, write: Option<u8>) -> StepOut {
        let Some(i) = self.vma_at(page) else { return StepOut::Fatal(Signal::SIGSEGV) };
        let v = self.vmas[i];
        if self.pte(page) == Pte::Guard {
            return StepOut::Fatal(Signal::SIGSEGV);
        }
        let needs_fault = match write {
            Some(_) => v.flags & vmf::WRITE != 0,
            None => v.flags & vmf::READ != 0,
        };
        if needs_fault && self.past_eof(i, page) {
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

    /// The child's address space right after fork [S 6.18 kernel/fork.c:dup_mmap; mm/memory.c:
    /// copy_page_range, vma_needs_copy; mm/rmap.c:anon_vma_fork].
    fn fork_child(&self) -> Machine {
        let mut c = self.clone();
        c.punched.clear();
        c.other_cache_maps = self.cache_maps();
        c.vmas.clear();
        c.ptes = vec![Pte::None; self.ptes.len()];
        // copy_pmd_range allocates the child's PTE table for a copied VMA where the parent has one
        // (even if all its entries are none) [S 6.12 mm/memory.c:copy_pmd_range, copy_pte_range].
        c.pte_tables = vec![Some(false); self.pte_tables.len()];
        for v in &self.vmas {
            // VM_DONTCOPY: the child has no VMA there (dup_mmap: "if (mpnt->vm_flags & VM_DONTCOPY) ...
            // continue").
            if v.flags & vmf::DONTCOPY != 0 {
                continue;
            }
            let mut n = *v;
            // mlock is not inherited (dup_mmap clears VM_LOCKED_MASK in the child's copy).
            n.flags &= !(vmf::LOCKED | vmf::LOCKONFAULT);
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
            // (or PFNMAP/MIXEDMAP, uffd-wp).
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
    fn cache_maps(&self) -> Vec<(usize, usize)> {
        self.vmas
            .iter()
            .flat_map(|v| (v.start..v.end).filter(|&p| self.pte(p) == Pte::Cache).map(move |p| (v.obj.unwrap(), v.obj_page(p))))
            .collect()
    }

    /// The identities of the anonymous pages this process maps.
    fn anon_folios(&self) -> std::collections::BTreeSet<u32> {
        self.ptes.iter().filter_map(|p| if let Pte::Anon { folio, .. } = *p { Some(folio) } else { None }).collect()
    }

    /// GUP with FOLL_TOUCH|FOLL_WRITE on a present anonymous page whose PTE is clean (a lazy-free one)
    /// sets PG_dirty, so reclaim will not discard it [S 6.12 mm/gup.c:follow_page_pte ("set_page_dirty"),
    /// populate_vma_page_range, faultin_page_range; T 6.18.44, case gen-3-1880 (POPULATE_WRITE after FREE,
    /// then PAGEOUT keeps the pages)].
    fn touch_write(&mut self, p: i64) {
        if let Pte::Anon { lazy: true, content, shared, folio, freed, .. } = self.pte(p) {
            self.set_pte(p, Pte::Anon { content, lazy: false, shared, folio, freed, pgdirty: true });
        }
    }

    /// Mark each anonymous page shared exactly when the other process still maps the same page.
    fn mark_shared(&mut self, other: &std::collections::BTreeSet<u32>) {
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
        for (obj, first, last) in std::mem::take(&mut actor.punched) {
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

    fn run_step(&mut self, model: &KernelModel, step: &Step) -> Result<StepOut, Unsupported> {
        let out = self.run_step_inner(model, step)?;
        match self.unknown.take() {
            Some(why) => Err(why),
            None => Ok(out),
        }
    }

    fn run_step_inner(&mut self, model: &KernelModel, step: &Step) -> Result<StepOut, Unsupported> {
        let ps = self.ps as i64;
        Ok(match *step {
            Step::Madvise { page, offset, len_pages, len_bytes, advice } => {
                let start = (self.arena.base as i64).wrapping_add(page.wrapping_mul(ps)).wrapping_add(offset) as u64;
                let len = len_pages.wrapping_mul(ps).wrapping_add(len_bytes) as u64;
                StepOut::Ret(self.madvise(model, start, len, advice.value())?)
            }
            Step::Write { page, fill } => self.access(model, page as i64, Some(fill)),
            Step::Read { page } => self.access(model, page as i64, None),
            Step::Mprotect { page, pages, prot } => {
                StepOut::Ret(self.mprotect(model, page as i64, (page + pages) as i64, prot))
            }
            Step::Munmap { page, pages } => StepOut::Ret(match self.munmap_range(page as i64, (page + pages) as i64) {
                Ok(()) => Ret::Ok,
                Err(errno) => Ret::Err(errno),
            }),
            Step::Mmap { ref map } => StepOut::Ret(self.mmap(model, map)),
            Step::Mlock { page, pages, onfault } => {
                StepOut::Ret(self.mlock(model, page as i64, (page + pages) as i64, onfault))
            }
            Step::Munlock { page, pages } => StepOut::Ret(self.munlock(model, page as i64, (page + pages) as i64)),
            Step::Fork { .. } => return Err("a fork inside a forked child is not modelled".into()),
            Step::ForkLive | Step::InChild { .. } | Step::ChildExit => {
                return Err("a live-fork step inside a forked child is not modelled".into())
            }
            Step::Mseal { page, pages } => StepOut::Ret(self.mseal(model, page as i64, (page + pages) as i64)),
            Step::Mremap { page, pages, new_pages, to, dontunmap } => {
                if !MREMAP_MODELLED {
                    return Err("mremap is not fully modelled yet (moves that resize, and the 6.17+ multi-VMA \
                                move, still diverge from 6.18)"
                        .into());
                }
                if self.vmas.iter().any(|v| v.flags & vmf::HUGETLB != 0) {
                    // Never generated: hugetlb with mremap leaks huge pages on 6.18 hosts.
                    return Err("mremap with hugetlb mappings is not modelled".into());
                }
                StepOut::Ret(self.mremap(model, page as i64, pages as i64, new_pages as i64, to.map(|t| t as i64), dontunmap))
            }
        })
    }

    // ---------------------------------------------------------------------------------------------
    // Observation.

    /// The model's expectation of what /proc shows now.
    pub fn expect(&self, model: &KernelModel, ret: Ret) -> Allowed {
        let kb = self.ps / 1024;
        let mut vmas = Vec::new();
        // smaps per VMA: Rss counts present normal pages (not the zero page, not guard markers), Anonymous
        // the anonymous ones, Pss divides by the mapcount, Locked is Pss on a VM_LOCKED VMA
        // [S 6.18 fs/proc/task_mmu.c:smaps_pte_entry, smaps_account, __show_smap; T spec §6.2].
        for v in &self.vmas {
            let (mut rss, mut anon, mut lazy) = (0u64, 0u64, 0u64);
            let mut pss_bytes = 0u128;
            let (mut ht_shared, mut ht_private) = (0u64, 0u64);
            if v.flags & vmf::HUGETLB != 0 {
                // smaps_hugetlb_range: hugetlb pages are not in Rss; each mapped huge page counts as
                // Shared_Hugetlb when mapped more than once, else Private_Hugetlb [S 6.1 (page_mapcount
                // >= 2), 6.12 (folio_likely_mapped_shared) fs/proc/task_mmu.c; T 6.18].
                let mut p = v.start;
                while p < v.end {
                    match self.pte(p) {
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
            for p in (v.start..v.end).filter(|_| v.flags & vmf::HUGETLB == 0) {
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
            let lazyfree = if model.smaps_lazyfree { Count { lo: 0, hi: lazy } } else { Count::exact(0) };
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
            });
        }
        // pagemap: a guard marker is a swap-format entry, the zero page is present (told apart only with
        // PFNs) [S 6.18 fs/proc/task_mmu.c:pte_to_pagemap_entry; T spec §6.4].
        let pages = (0..self.arena_pages as i64)
            .map(|p| {
                let one = match (self.pte(p), self.vma_at(p)) {
                    (Pte::None, _) | (_, None) => PageObs::ABSENT,
                    (Pte::Guard, Some(_)) => PageObs { res: Residency::Swap, content: None },
                    (Pte::Zero, Some(_)) => PageObs {
                        res: if model.zero_page_visible { Residency::ZeroPage } else { Residency::Present },
                        content: Some(Content::Zero),
                    },
                    (_, Some(i)) => PageObs { res: Residency::Present, content: self.content_at(i, p) },
                };
                vec![one]
            })
            .collect();
        Allowed { ret: vec![ret], vmas, pages, hugetlb: self.observe_huge.then_some(self.huge) }
    }

    /// How many PTEs of this process map page `page` of object `obj`.
    fn cache_mapcount(&self, obj: usize, page: usize) -> usize {
        let here: usize = self
            .vmas
            .iter()
            .filter(|v| v.obj == Some(obj))
            .map(|v| (v.start..v.end).filter(|&p| v.obj_page(p) == page && self.pte(p) == Pte::Cache).count())
            .sum();
        here + self.other_cache_maps.iter().filter(|&&m| m == (obj, page)).count()
    }
}

fn fatal_point(sig: Signal) -> Expect {
    Expect::Allowed(Allowed { ret: vec![Ret::Signal(sig)], vmas: vec![], pages: vec![], hugetlb: None })
}

/// Run a program on the model: one expectation per observation point, in `Program::step_ids` order.
/// After a step the model expects to be fatal (a signal), or that it does not know, no more points follow.
pub fn simulate(model: &KernelModel, arena: &ArenaGeometry, prog: &Program) -> Vec<(StepId, Expect)> {
    if prog.uses_hugetlb() {
        let why = match (&model.facts.hugetlb_unavailable, model.hugetlb_pages) {
            (Some(why), _) => Some(why.clone()),
            (None, 0) => Some(format!(
                "hugetlb: the {} kB huge page of this kernel does not fit the {}-page arena (or there is no hugetlbfs)",
                model.facts.hugepage_kb, arena.max_pages
            )),
            _ => None,
        };
        if let (Some(why), Some(&first)) = (why, prog.step_ids().first()) {
            return vec![(first, Expect::Unsupported(why))];
        }
    }
    let mut m = Machine::new(model, arena, prog);
    for map in &prog.maps {
        m.mmap(model, map);
    }
    let mut out = Vec::new();
    let mut live = Live::None;
    for (si, step) in prog.steps.iter().enumerate() {
        let id = StepId { step: si as u32, child: None };
        match (step, &mut live) {
            (Step::ForkLive, Live::None) => {
                if m.vmas.iter().any(|v| v.flags & vmf::HUGETLB != 0) {
                    out.push((id, Expect::Unsupported("fork with hugetlb mappings is not modelled".into())));
                    return out;
                }
                let c = m.fork_live();
                out.push((StepId { step: si as u32, child: Some(0) }, Expect::Allowed(c.expect(model, Ret::Ok))));
                out.push((id, Expect::Allowed(m.expect(model, Ret::Ok))));
                live = Live::Alive(Box::new(c));
                continue;
            }
            (Step::InChild { step: cs }, Live::Alive(c)) => {
                match c.run_step(model, cs) {
                    Err(why) => {
                        out.push((id, Expect::Unsupported(why)));
                        return out;
                    }
                    Ok(StepOut::Fatal(sig)) => {
                        // The child dies; the worker reaps it and the parent goes on alone.
                        out.push((id, fatal_point(sig)));
                        m.objs = c.objs.clone();
                        m.live_child_gone();
                        live = Live::Dead(sig);
                    }
                    Ok(StepOut::Ret(r)) => {
                        Machine::sync_live(c, &mut m);
                        out.push((id, Expect::Allowed(c.expect(model, r))));
                    }
                }
                continue;
            }
            (Step::InChild { .. }, Live::Dead(sig)) => {
                out.push((id, fatal_point(*sig)));
                continue;
            }
            (Step::ChildExit, Live::Alive(_) | Live::Dead(_)) => {
                m.live_child_gone();
                live = Live::None;
                out.push((id, Expect::Allowed(m.expect(model, Ret::Ok))));
                continue;
            }
            (Step::ForkLive | Step::InChild { .. } | Step::ChildExit, _) | (Step::Fork { .. }, Live::Alive(_) | Live::Dead(_)) => {
                out.push((id, Expect::Unsupported(format!("{} out of order with the live child", step.op()))));
                return out;
            }
            _ => {}
        }
        if let Step::Fork { child } = step {
            if m.vmas.iter().any(|v| v.flags & vmf::HUGETLB != 0) {
                out.push((id, Expect::Unsupported("fork with hugetlb mappings is not modelled".into())));
                return out;
            }
            let mut c = m.fork_child();
            out.push((StepId { step: si as u32, child: Some(0) }, Expect::Allowed(c.expect(model, Ret::Ok))));
            for (ci, cs) in child.iter().enumerate() {
                let cid = StepId { step: si as u32, child: Some(ci as u32 + 1) };
                match c.run_step(model, cs) {
                    Err(why) => {
                        out.push((cid, Expect::Unsupported(why)));
                        return out;
                    }
                    Ok(StepOut::Fatal(sig)) => {
                        out.push((cid, fatal_point(sig)));
                        break;
                    }
                    Ok(StepOut::Ret(r)) => out.push((cid, Expect::Allowed(c.expect(model, r)))),
                }
            }
            // What the child did to shared objects is visible to the parent; holes it punched unmap the
            // parent's page-cache PTEs too.
            m.objs = c.objs.clone();
            for (obj, first, last) in c.punched.clone() {
                m.unmap_cache(obj, first, last);
            }
            out.push((id, Expect::Allowed(m.expect(model, Ret::Ok))));
            continue;
        }
        match m.run_step(model, step) {
            Err(why) => {
                out.push((id, Expect::Unsupported(why)));
                return out;
            }
            Ok(StepOut::Fatal(sig)) => {
                out.push((id, fatal_point(sig)));
                return out;
            }
            Ok(StepOut::Ret(r)) => {
                if let Live::Alive(c) = &mut live {
                    Machine::sync_live(&mut m, c);
                }
                out.push((id, Expect::Allowed(m.expect(model, r))))
            }
        }
    }
    out
}

/// The live child of `simulate`, if any.
enum Live {
    None,
    Alive(Box<Machine>),
    /// Killed by this signal at an `in_child` step; the parent goes on until `child_exit`.
    Dead(Signal),
}
