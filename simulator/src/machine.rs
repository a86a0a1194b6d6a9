//! The model's state: a process's arena (VMAs, PTEs, page-cache objects, page tables, the hugetlb pool
//! deltas) and the helpers every rule uses to read and set it. What each call does to it is in `crate::mm`
//! (laid out like the kernel's mm/), `crate::kernel::fork` and `crate::simulate`.
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

use crate::kernel::KernelModel;
use crate::observe::{
    Content, HugeDelta, Ret, Signal, VmFlag,
};
use crate::program::{ArenaGeometry, FileSpec, Program};

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
    /// Model-internal, never printed: a private hugetlb VMA that owns its reservation map
    /// (HPAGE_RESV_OWNER in vm_private_data): set at mmap, kept by splits, absent in a fork child's copy
    /// (hugetlb_dup_vma_private) and cleared on the whole source VMA of an mremap move
    /// (clear_vma_resv_huge_pages) [S 6.1, 6.12 mm/hugetlb.c].
    pub const RESV_OWNER: u64 = 1 << 40;
    /// VM_DROPPABLE (6.11+, 64-bit; bit 40 in the kernel, a model bit here), printed `dp` after `mg`
    /// [S 6.12 include/linux/mm.h; fs/proc/task_mmu.c:show_smap_vma_flags; T 6.18.44 probe:
    /// `rd wr mr mw me nr wf dd dp`].
    pub const DROPPABLE: u64 = 1 << 41;
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
pub fn flag_names(model: &KernelModel, flags: u64) -> Vec<VmFlag> {
    let mut out = Vec::with_capacity((flags & ALL_MNEMONIC_BITS).count_ones() as usize + 3);
    for (bit, name) in MNEMONICS {
        if flags & bit == 0 {
            continue;
        }
        // VM_LOCKONFAULT had no mnemonic before 6.12, and the unnamed bit prints as "??"
        // [S 6.1 fs/proc/task_mmu.c:show_smap_vma_flags; T Debian 6.1.192 under qemu: "lo ?? ac"].
        if bit == vmf::LOCKONFAULT && !model.lockonfault_mnemonic {
            out.push(VmFlag::named("??"));
            continue;
        }
        out.push(VmFlag::named(name));
    }
    if flags & vmf::MERGEABLE != 0 {
        out.push(VmFlag::named("mg"));
    }
    if flags & vmf::DROPPABLE != 0 {
        out.push(VmFlag::named("dp"));
    }
    if flags & vmf::SEALED != 0 {
        out.push(VmFlag::named("sl"));
    }
    out
}

/// Every bit `MNEMONICS` names (the capacity `flag_names` reserves).
const ALL_MNEMONIC_BITS: u64 = {
    let mut all = 0;
    let mut i = 0;
    while i < MNEMONICS.len() {
        all |= MNEMONICS[i].0;
        i += 1;
    }
    all
};

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
    /// shmem: a memfd, a tmpfs file, or anonymous shared memory (not a disk file, not hugetlbfs).
    pub memfd: bool,
    /// The scenario's fd for this file is O_RDONLY (`FileSpec::readonly`); false for anonymous objects.
    pub readonly: bool,
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
    /// shmem: pages at or past i_size that fallocate(FALLOC_FL_KEEP_SIZE) allocated (dirty, not
    /// uptodate). They stay in the page cache, invisible, until a truncation or a hole punch removes them;
    /// a later grow of i_size brings them back dirty [S 6.18 mm/shmem.c:shmem_fallocate (SGP_FALLOC may
    /// allocate past i_size; folio_mark_dirty), shmem_setattr].
    pub falloc_beyond: std::collections::BTreeSet<usize>,
    /// The inode's memfd seals (F_SEAL_* bits): `None` where the filesystem has none (a disk file, whose
    /// F_ADD_SEALS is EINVAL). A tmpfs or hugetlbfs inode starts with F_SEAL_SEAL; a memfd created with
    /// MFD_ALLOW_SEALING with none [S 6.18 mm/memfd.c:memfd_file_seals_ptr, memfd_create;
    /// mm/shmem.c:__shmem_get_inode; fs/hugetlbfs/inode.c:hugetlbfs_get_inode].
    pub seals: Option<u32>,
}

impl FileObj {
    /// The folio holding cached page `idx`: its first page and its number of pages.
    pub(crate) fn folio(&self, idx: usize) -> (usize, usize) {
        let n = 1usize << self.order.get(idx).copied().unwrap_or(0);
        (idx / n * n, n)
    }

    /// Set i_size to `n` pages: new pages are holes (zero, not cached, clean), except those a shmem
    /// fallocate(KEEP_SIZE) allocated past the old end, which come back dirty.
    /// A shrink, or a "resize" to the same size, runs shmem_truncate_range from the new size to the end,
    /// dropping those [S 6.18 mm/shmem.c:shmem_setattr "newsize <= oldsize"].
    pub(crate) fn resize(&mut self, n: usize) {
        if n <= self.pages.len() {
            self.falloc_beyond.retain(|&p| p < n);
        }
        self.pages.resize(n, Content::Zero);
        self.cached.resize(n, false);
        self.dirty.resize(n, false);
        self.flagged.resize(n, false);
        self.order.resize(n, 0);
        let back: Vec<usize> = self.falloc_beyond.range(..n).copied().collect();
        for p in back {
            self.dirty[p] = true;
            self.falloc_beyond.remove(&p);
        }
    }

    /// Set the dirty bit of the folio holding page `idx` (folio_mark_dirty dirties the whole folio).
    pub(crate) fn mark_dirty(&mut self, idx: usize) {
        let (h, n) = self.folio(idx);
        for d in &mut self.dirty[h..(h + n).min(self.pages.len())] {
            *d = true;
        }
    }

    /// Split the large folio [h, h + n) so that page `at` ends up in an order-0 folio, non-uniformly:
    /// each step halves the piece holding `at` and leaves its buddy whole, so an order-3 folio split at
    /// its page 2 becomes [0,2), 2, 3, [4,8) [S 6.18 mm/huge_memory.c:folio_split, __split_unmapped_folio
    /// (uniform_split false); T 6.18 probe in `ra_order_pmd`].
    pub(crate) fn split_at(&mut self, h: usize, n: usize, at: usize) {
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
    /// The anonymous page offset of `start` (7.x's vma_start_anon_pgoff): the virtual page number at mmap
    /// time for every VMA, carried like `pgoff` through splits and faulted moves. Equal to `pgoff` for
    /// private anonymous VMAs; only MAP_PRIVATE file merges read it, and only where
    /// `KernelModel::private_file_merge_needs_anon_pgoff` [S 7.3.4 mm/vma.h:vma_start_anon_pgoff].
    pub anon_pgoff: i64,
    pub anon_vma: Option<AnonVma>,
}

impl Vma {
    pub(crate) fn pages(&self) -> i64 {
        self.end - self.start
    }
    pub(crate) fn is_anonymous(&self) -> bool {
        self.obj.is_none()
    }
    pub(crate) fn obj_page(&self, page: i64) -> usize {
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
    pub(crate) ptrs_per_pte: i64,
    pub arena: ArenaGeometry,
    pub arena_pages: u32,
    pub objs: Vec<FileObj>,
    /// Sorted, non-overlapping.
    pub vmas: Vec<Vma>,
    /// One per arena page.
    pub ptes: Vec<Pte>,
    pub(crate) next_anon_vma: u32,
    /// Object page ranges punched (MADV_REMOVE) by a forked child, to unmap from the parent afterwards.
    pub(crate) punched: Vec<(usize, usize, usize)>,
    /// Set when a step reached behaviour the model does not know; the step then answers Unsupported.
    pub(crate) unknown: Option<String>,
    /// The (object, page) of every page-cache page the other process maps (the waiting parent of a
    /// forked child, or the live child of a parent and the parent of a live child), which count in this
    /// process's mapcounts.
    pub(crate) other_cache_maps: Vec<(usize, usize)>,
    /// The next anonymous page identity (`Pte::Anon::folio`); a live parent and child share the counter.
    pub(crate) next_folio: u32,
    /// Pages still mlocked (PG_mlocked, on the unevictable LRU) although no VM_LOCKED VMA maps them any
    /// more: MREMAP_DONTUNMAP clears VM_LOCKED on the kept source without munlocking the pages it still
    /// maps [S 6.18 mm/mremap.c:dontunmap_complete (vm_flags_clear only); T 6.18, case
    /// mremap_dontunmap_leaves_pages_mlocked_so_pageout_skips_them]. Page-cache pages by (object, page),
    /// anonymous ones by folio.
    pub(crate) stale_mlock: std::collections::BTreeSet<(usize, usize)>,
    pub(crate) stale_mlock_anon: std::collections::BTreeSet<u32>,
    /// Per page table (PTRS_PER_PTE pages, counted from the table holding arena page 0): whether the PTE
    /// table exists (`None`: not known). A worker starts each scenario with the arena window unmapped,
    /// so with no table [S 6.12 mm/memory.c:free_pgd_range]; any installed entry allocates it; an
    /// unmap that leaves no VMA in its PMD range frees it.
    pub(crate) pte_tables: Vec<Option<bool>>,
    /// The huge page size in base pages (0: the kernel has no hugetlb huge page that fits the arena).
    pub(crate) hp: i64,
    /// The HugePages_Free/Rsvd/Surp changes since the scenario started.
    pub(crate) huge: HugeDelta,
    /// Whether the program observes the hugetlb pool (it uses hugetlb).
    pub(crate) observe_huge: bool,
    /// Whether the program observes `mm->locked_vm` (it can lock memory).
    pub(crate) observe_locked: bool,
    /// Pages `mm->locked_vm` counts beyond the VM_LOCKED VMAs (`KernelModel::mremap_dontunmap_locked_vm`).
    pub(crate) locked_vm_extra: u64,
    /// Private hugetlb mappings: a reservation is held and not yet consumed for the huge page starting at
    /// this arena page (the private VMA's resv_map) [S 6.12 mm/hugetlb.c:hugetlb_reserve_pages,
    /// vma_needs_reservation, alloc_hugetlb_folio].
    pub(crate) huge_resv: Vec<bool>,
    /// `KernelModel::hugetlb_zap_restores_reservation`.
    pub(crate) restore_on_zap: bool,
    /// MAP_HUGETLB objects the other process (a live child, or the parent of a fork child) still maps, so
    /// they are not released when this one unmaps them.
    pub(crate) other_objs: std::collections::BTreeSet<usize>,
    /// PMD mappings of the arena (`crate::mm::huge_memory`): the arena page where the PMD's range starts
    /// → what it maps. The PTEs of its pages still say what each page holds (`Pte::Anon` of one folio,
    /// or `Pte::Zero` for the huge zero page); this records that a PMD, not a PTE table, maps them.
    pub(crate) thp: std::collections::BTreeMap<i64, ThpPmd>,
    /// `Pte::Anon::folio` ids of anonymous large (PMD-order) folios, mapped by a PMD or, after
    /// split_huge_pmd, by PTEs.
    pub(crate) large: std::collections::BTreeSet<u32>,
    /// This process forked (or is a fork child): its anonymous PTEs may be write-protected for COW.
    pub(crate) forked: bool,
    /// Scenario files whose fd this process closed (`Step::Close`); fd tables are per process, so a
    /// fork child inherits this and a live child's later changes are its own.
    pub(crate) closed_fds: std::collections::BTreeSet<usize>,
    /// The mm's protection-key allocation map (mm->context.pkey_allocation_map) and the thread's PKRU
    /// (`crate::mm::pkeys`).
    pub(crate) pkey_map: u16,
    pub(crate) pkru: u32,
}

/// What a PMD maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThpPmd {
    /// An anonymous PMD THP (its folio is in `Machine::large`).
    Anon,
    /// The huge zero page: read-only, not counted in Rss, shown present in pagemap with the huge zero
    /// page's PFNs (which are not the shared zero page's).
    HugeZero,
}

/// Why a step could not be modelled.
pub(crate) type Unsupported = String;

/// mremap is modelled: 0 divergences over 10,000 generated scenarios with mremap drawn for seeds 1-30
/// on 6.18.44. Set to false to make every mremap step answer Unsupported again.
pub(crate) const MREMAP_MODELLED: bool = true;

/// GUARD_INSTALL/GUARD_REMOVE are modelled (guard markers as swap-format PTEs).
pub(crate) const GUARDS_MODELLED: bool = true;

/// Outcome of one step on the model.
pub(crate) enum StepOut {
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
                memfd: matches!(f.kind, crate::program::FileKind::Memfd | crate::program::FileKind::Tmpfs),
                readonly: f.readonly,
                pages: (0..f.pages).map(|p| Content::FilePage { file: i as u32, page: p }).collect(),
                cached: vec![true; f.pages as usize],
                dirty: vec![true; f.pages as usize],
                flagged: vec![false; f.pages as usize],
                order: vec![0; f.pages as usize],
                mmap_miss: 0,
                huge: false,
                region: Vec::new(),
                dead: false,
                falloc_beyond: Default::default(),
                seals: match f.kind {
                    crate::program::FileKind::Disk => None,
                    _ if f.sealing => Some(0),
                    _ => Some(crate::program::SealKind::Seal.value()),
                },
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
            observe_locked: prog.locks(),
            locked_vm_extra: 0,
            huge_resv: vec![false; prog.arena_pages as usize],
            other_objs: Default::default(),
            thp: Default::default(),
            large: Default::default(),
            forked: false,
            closed_fds: Default::default(),
            pkey_map: Machine::pkeys_init(model).0,
            pkru: Machine::pkeys_init(model).1,
        }
    }

    pub(crate) fn base_vpn(&self) -> i64 {
        (self.arena.base / self.ps) as i64
    }

    pub(crate) fn vma_at(&self, page: i64) -> Option<usize> {
        self.vmas.iter().position(|v| v.start <= page && page < v.end)
    }

    /// find_vma: the first VMA that ends after `page`.
    pub(crate) fn find_vma(&self, page: i64) -> Option<usize> {
        self.vmas.iter().position(|v| v.end > page)
    }

    pub(crate) fn pte(&self, page: i64) -> Pte {
        self.ptes.get(page as usize).copied().unwrap_or(Pte::None)
    }

    /// A fault at `page` of vmas[i] that finds no PTE and lies past the end of the VMA's object (a file
    /// or shmem mapping grown by mremap) fails: SIGBUS for an access, -EFAULT for GUP
    /// [S 6.18 mm/filemap.c:filemap_fault (VM_FAULT_SIGBUS past i_size); mm/shmem.c:shmem_get_folio_gfp;
    /// T 6.18, cases gen-1-3349, gen-1-7726].
    pub(crate) fn past_eof(&self, i: usize, page: i64) -> bool {
        let v = &self.vmas[i];
        match v.obj {
            Some(o) => self.pte(page) == Pte::None && v.obj_page(page) >= self.objs[o].pages.len(),
            None => false,
        }
    }

    pub(crate) fn set_pte(&mut self, page: i64, pte: Pte) {
        if let Some(p) = self.ptes.get_mut(page as usize) {
            *p = pte;
            if pte != Pte::None {
                let t = self.table_of(page);
                self.pte_tables[t] = Some(true);
            }
        }
    }

    pub(crate) fn tables_for(model: &KernelModel, arena: &ArenaGeometry, pages: u32) -> usize {
        let ptrs = model.ptrs_per_pte.max(1);
        let first = arena.base / model.page_size;
        ((first + pages as u64).div_ceil(ptrs) - first / ptrs).max(1) as usize
    }

    pub(crate) fn ptrs(&self) -> i64 {
        self.ptrs_per_pte.max(1)
    }

    /// Index into `pte_tables` of the table mapping arena page `page`.
    pub(crate) fn table_of(&self, page: i64) -> usize {
        let ptrs = self.ptrs();
        ((self.base_vpn() + page).div_euclid(ptrs) - self.base_vpn().div_euclid(ptrs)) as usize
    }

    /// free_pgtables after an unmap of [s, e): a table whose PMD range no longer holds any VMA is freed
    /// (floor and ceiling are the neighbouring VMAs) [S 6.12 mm/memory.c:free_pgd_range].
    pub(crate) fn free_empty_tables(&mut self, s: i64, e: i64) {
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
}
