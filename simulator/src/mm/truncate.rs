//! mm/truncate.c and mm/shmem.c: hole punching for MADV_REMOVE and fallocate(PUNCH_HOLE) (shmem_fallocate,
//! truncate_inode_pages_range, unmap_mapping_range), ftruncate (truncate_setsize, truncate_pagecache),
//! and fallocate's allocating modes (shmem_fallocate, ext4_do_fallocate).
//!
//! Invariant: a punched page leaves the page cache and every PTE that mapped it, in this process and in
//! the other one (live or waiting) through `Machine::punched`.

use crate::machine::{Machine, Pte};
use crate::observe::{Content, Errno, Ret};
use crate::program::{FallocMode, SealKind};

impl Machine {
    /// ftruncate of scenario file `file` to `pages` pages. An O_RDONLY fd is EINVAL [S 6.18 fs/open.c:
    /// do_ftruncate "!(file->f_mode & FMODE_WRITE)"; T 6.18.44]. Shrinking: truncate_pagecache unmaps every
    /// PTE past the new end with even_cows = 1 (private COW copies too; guard markers stay), drops the
    /// page-cache pages, and a later fault there is past i_size (SIGBUS, -EFAULT for GUP). Growing adds
    /// holes: uncached pages that read as zero [S 6.18 mm/truncate.c:truncate_pagecache,
    /// truncate_setsize; mm/shmem.c:shmem_setattr; T 6.18.44 probe: a COW copy past the new end was
    /// unmapped on tmpfs and ext4, regrown pages read 0]. Pages a shmem fallocate(KEEP_SIZE) allocated
    /// past the old end are removed by a shrink and come back dirty (not uptodate) with a grow
    /// [S 6.18 mm/shmem.c:shmem_setattr (shmem_truncate_range from the new size)]. hugetlbfs (hugetlb_vmtruncate, which frees
    /// huge pages and changes the pool counters) is not modelled.
    pub(crate) fn ftruncate(&mut self, file: usize, pages: usize) -> Result<Ret, String> {
        if self.closed_fds.contains(&file) {
            return Ok(Ret::Err(Errno::EBADF));
        }
        if self.objs[file].readonly {
            return Ok(Ret::Err(Errno::EINVAL));
        }
        // F_SEAL_SHRINK / F_SEAL_GROW: EPERM for a size change they forbid (the same size is 0)
        // [S 6.18 mm/shmem.c:shmem_setattr; fs/hugetlbfs/inode.c:hugetlbfs_setattr; T 6.18.44 probe].
        let old = self.objs[file].pages.len();
        let seals = self.seals(file);
        if (pages < old && seals & SealKind::Shrink.value() != 0) || (pages > old && seals & SealKind::Grow.value() != 0) {
            return Ok(Ret::Err(Errno::EPERM));
        }
        if self.objs[file].huge {
            return Err("ftruncate of a hugetlbfs file is not modelled".into());
        }
        if pages < old {
            self.punch(file, pages, old);
            for vi in 0..self.vmas.len() {
                let v = self.vmas[vi];
                if v.obj != Some(file) {
                    continue;
                }
                for p in v.start..v.end {
                    if v.obj_page(p) >= pages && !matches!(self.pte(p), Pte::Guard | Pte::None) {
                        self.set_pte(p, Pte::None);
                    }
                }
            }
        }
        self.objs[file].resize(pages);
        Ok(Ret::Ok)
    }

    /// fallocate on scenario file `file` over file pages [first, first + n). An O_RDONLY fd is EBADF
    /// [S 6.18 fs/open.c:vfs_fallocate "!(file->f_mode & FMODE_WRITE)"; T 6.18.44]. PUNCH_HOLE|KEEP_SIZE
    /// punches as MADV_REMOVE does (unmap_mapping_range with even_cows = 0; a range past i_size changes
    /// nothing and succeeds) [S 6.18 mm/shmem.c:shmem_fallocate; fs/ext4/inode.c:ext4_punch_hole via
    /// truncate_pagecache_range; T 6.18.44]. Mode 0 and KEEP_SIZE: [`Machine::allocate`]. hugetlbfs
    /// (hugetlbfs_punch_hole, hugetlbfs_fallocate, pool counters) is not modelled.
    pub(crate) fn fallocate(&mut self, file: usize, first: usize, n: usize, mode: FallocMode) -> Result<Ret, String> {
        if self.closed_fds.contains(&file) {
            return Ok(Ret::Err(Errno::EBADF));
        }
        if self.objs[file].readonly {
            return Ok(Ret::Err(Errno::EBADF));
        }
        if self.objs[file].huge {
            return Err("fallocate of a hugetlbfs file is not modelled".into());
        }
        // shmem_fallocate, under the inode lock: a hole punch of a write-sealed file is EPERM; any mode
        // reaching past i_size (KEEP_SIZE too) is EPERM under F_SEAL_GROW; allocating inside the file is
        // allowed under write seals [S 6.18 mm/shmem.c:shmem_fallocate; T 6.18.44 probe]. Disk files
        // have no seals.
        let seals = self.seals(file);
        if mode == FallocMode::PunchHole && seals & super::memfd::WRITE_SEALS != 0 {
            return Ok(Ret::Err(Errno::EPERM));
        }
        if mode != FallocMode::PunchHole && seals & SealKind::Grow.value() != 0 && first + n > self.objs[file].pages.len() {
            return Ok(Ret::Err(Errno::EPERM));
        }
        match mode {
            FallocMode::PunchHole => self.punch(file, first, first + n),
            FallocMode::Allocate | FallocMode::KeepSize => self.allocate(file, first, first + n, mode == FallocMode::Allocate),
        }
        Ok(Ret::Ok)
    }

    /// fallocate mode 0 (`extend`) or FALLOC_FL_KEEP_SIZE over file pages [first, last). Nothing mapped
    /// changes and no PTE is installed.
    /// * shmem: shmem_get_folio(SGP_FALLOC) allocates every hole in the range as a folio that is not
    ///   uptodate (it reads as zero; fault-around skips it; a fault zeroes it and marks it uptodate), and
    ///   every folio of the range, the already cached ones too, is marked dirty ("SGP_CACHE folios might
    ///   still be clean: we now need to mark those dirty too"). With KEEP_SIZE pages past i_size are
    ///   allocated too; mode 0 then sets i_size to the range's end when that is larger [S 6.18
    ///   mm/shmem.c:shmem_fallocate, shmem_get_folio_gfp ("fallocated folio", clear:)].
    /// * ext4 (disk files): ext4_do_fallocate allocates unwritten extents and, in mode 0, updates i_size;
    ///   the page cache is not touched [S 6.18 fs/ext4/extents.c:ext4_do_fallocate,
    ///   ext4_alloc_file_blocks].
    pub(crate) fn allocate(&mut self, file: usize, first: usize, last: usize, extend: bool) {
        let o = &mut self.objs[file];
        let shmem = o.file.is_none() || o.memfd;
        let size = o.pages.len();
        if shmem {
            for p in first..last.min(size) {
                o.mark_dirty(p);
            }
            if last > size {
                o.falloc_beyond.extend(first.max(size)..last);
            }
        }
        if extend && last > size {
            o.resize(last);
        }
    }

    /// close of scenario file `file`'s fd: EBADF the second time (the worker passes -1). Every VMA holds
    /// its own reference to the file, so the mappings, the page cache and a hugetlb file's pages and
    /// reservations stay while anything maps it [S 6.18 fs/file.c:close_fd; mm/mmap.c:__mmap_region
    /// (get_file for vm_file)]; a hugetlb memfd nothing maps any more is released at once
    /// (hugetlbfs_evict_inode, `huge_release_dead`).
    pub(crate) fn close_file(&mut self, file: usize) -> Ret {
        if !self.closed_fds.insert(file) {
            return Ret::Err(Errno::EBADF);
        }
        self.huge_release_dead();
        Ret::Ok
    }

    /// fallocate(PUNCH_HOLE|KEEP_SIZE) on an object: its pages read as zero from now on, and every PTE
    /// mapping the page-cache pages is unmapped; private COW copies survive (unmap_mapping_range with
    /// even_cows = 0) [S 6.18 mm/shmem.c:shmem_fallocate; fs/ext4 punch hole via truncate_pagecache_range].
    pub(crate) fn punch(&mut self, obj: usize, first: usize, last: usize) {
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
            let o = &mut self.objs[obj];
            o.falloc_beyond.retain(|&p| p < first || p >= last);
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
    pub(crate) fn punch_partial_folio(&mut self, obj: usize, h: usize, n: usize, first: usize, end: usize) {
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

    pub(crate) fn unmap_cache(&mut self, obj: usize, first: usize, last: usize) {
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
}
